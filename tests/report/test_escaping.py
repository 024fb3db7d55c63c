"""User data reaches the report as text, never as markup or script (issue 13, security)."""

import re
import shutil

import pytest
import torch

from gradnap.corpus.textgrid import Alignment
from gradnap.models import Wav2Letter
from gradnap.profiling import ModelSpec, Profiler
from gradnap.report import ReportOptions, build_report
from gradnap.report.build import slug

HOSTILE_SPEAKER = "<img src=x onerror=alert(1)>"
HOSTILE_WORD = "<script>alert(2)</script>"


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory):
    torch.manual_seed(0)
    model = Wav2Letter.from_preset("tiny").eval()
    with torch.no_grad():
        top = dict(model.layers())["conv11"].conv.conv
        top.weight.mul_(50)
    spec = ModelSpec.from_wav2letter(model)
    prof = Profiler(spec, group_by=["grapheme", "word", "speaker"], layers=["input", "conv1"])
    g = torch.Generator().manual_seed(1)
    speakers = [HOSTILE_SPEAKER, "f_01", "f-01", HOSTILE_SPEAKER]
    for i, speaker in enumerate(speakers):
        words = [(HOSTILE_WORD, 0.0, 1.0), ("plain", 1.0, 2.0)]
        prof.update(
            torch.randn(128, 200, generator=g),
            speaker=speaker,
            alignment=Alignment(words, [("AA", 0.0, 2.0)], 2.0),
            index=i,
        )
    tree = prof.result()
    opts = ReportOptions(featvis_layers=[], min_count=1)
    out = tmp_path_factory.mktemp("hostile") / "report"
    index = build_report(tree, out, spec, options=opts, progress=False)
    return tree, index


def test_slug_is_unique_and_safe():
    names = ["speaker:f_01", "speaker:f-01", "speaker:f 01", HOSTILE_SPEAKER, HOSTILE_WORD]
    slugs = [slug(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    assert all(re.fullmatch(r"[A-Za-z0-9-]+", s) for s in slugs)
    assert slug("phoneme:AA") == "phoneme-AA" and slug("grapheme:<space>") == "grapheme-space"


def test_hostile_names_are_escaped_everywhere(hostile_report):
    tree, index = hostile_report
    groups = set(map(str, tree["group"].values))
    assert f"speaker:{HOSTILE_SPEAKER}" in groups and f"word:{HOSTILE_WORD}" in groups
    pages = [index] + sorted(index.parent.glob("layer-*.html"))
    assert len(pages) == 3
    for page in pages:
        html = page.read_text()
        assert HOSTILE_SPEAKER not in html and HOSTILE_WORD not in html, page.name
        assert "<script>alert" not in html and "<img src=x" not in html
    layer = (index.parent / "layer-conv1.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in layer
    assert "word:&lt;script&gt;alert(2)&lt;/script&gt;" in layer  # shown as text, not run
    ids = re.findall(r'id="([^"]+)"', layer)
    assert len(ids) == len(set(ids))  # f_01 and f-01 have their own ids
    assert f'id="{slug("speaker:f_01")}"' in layer and f'id="{slug("speaker:f-01")}"' in layer


@pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Debian's chromium and chromium-driver are not installed (scripts/setup.sh as root)",
)
def test_hostile_report_runs_no_script_in_chromium(hostile_report):
    from selenium.common.exceptions import NoAlertPresentException

    from tests.report.test_browser import browser

    _, index = hostile_report
    driver = browser()
    try:
        for page in [index, index.parent / "layer-conv1.html"]:
            driver.get(page.as_uri())
            assert driver.execute_script("return document.readyState") == "complete"
            with pytest.raises(NoAlertPresentException):
                driver.switch_to.alert.text  # noqa: B018 - raises when no dialog is open
            assert driver.execute_script("return window.__pwned === undefined")
    finally:
        driver.quit()
