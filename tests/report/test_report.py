"""The HTML report: every layer and group reachable, files beside the pages, no network."""

import re

from gradnap.report import ReportOptions, build_report
from gradnap.report.build import slug


def test_report_pages_and_links(small_result, tmp_path):
    spec, tree = small_result
    opts = ReportOptions(
        groups=["phoneme:AA"], featvis_layers=["conv2"], min_count=1, featvis_steps=3
    )
    index = build_report(tree, tmp_path / "r", spec, options=opts, progress=False)
    html = index.read_text()
    pages = re.findall(r'href="(layer-[^"]+\.html)"', html)
    assert len(set(pages)) == len(tree.children)
    # every local reference exists; nothing points to the network
    for page in [index] + [index.parent / p for p in set(pages)]:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text
        for ref in re.findall(r'(?:src|href)="(?!data:)([^"#]+)"', text):
            assert (page.parent / ref).is_file(), f"{page.name}: {ref}"
    conv2 = (index.parent / "layer-conv2.html").read_text()
    for g in map(str, tree["group"].values):  # every group has its anchor and its link
        assert f'id="{slug(g)}"' in conv2 and f'href="#{slug(g)}"' in conv2
    assert "<audio" in conv2 and "optimal_input_conv2_phoneme-AA.wav" in conv2
    assert "split-half reliability" in conv2
    figs = index.parent / "figures"
    assert (figs / "silhouette_per_layer.svg").is_file()
    assert (figs / "input_profiles_AA_AE_IY_T.png").is_file()
    assert (figs / "representation_power.csv").read_text().startswith("grouping,layer")


def test_many_groups_are_capped_per_grouping(small_result, tmp_path):
    spec, tree = small_result
    opts = ReportOptions(max_groups=2, min_count=1, featvis_layers=[], groups=[])
    index = build_report(tree, tmp_path / "r", None, options=opts, progress=False)
    conv1 = (index.parent / "layer-conv1.html").read_text()
    phonemes = [str(g) for g in tree["group"].values if str(g).startswith("phoneme:")]
    drawn = [g for g in phonemes if f'id="{slug(g)}"' in conv1]
    assert len(drawn) == 2
    counts = dict(zip(map(str, tree["group"].values), tree["count"].values))
    assert min(counts[g] for g in drawn) >= max(counts[g] for g in phonemes if g not in drawn)
    assert "groups with fewer events are not drawn" in index.read_text()


def test_layer_pages_let_you_listen_to_the_top_neurons(tmp_path):
    """Chosen groups get, per top neuron, its top events' clips (<audio>, WAV files of
    +-250 ms) and mean log-mel; a result without a corpus says so instead."""
    import soundfile as sf

    import gradnap
    from gradnap.models import Wav2Letter
    from tests.conftest import write_librispeech

    root = write_librispeech(tmp_path / "corpus", {"19-198-0000": "HELLO", "84-121-0000": "ZOO"})
    tree = gradnap.profiles(
        Wav2Letter.from_preset("tiny").eval(), root, layers=["conv2"], include_blank=True,
        group_by=["speaker"], progress=False,
    )  # fmt: skip
    opts = ReportOptions(groups=["speaker:19"], min_count=1, featvis_layers=[])
    index = build_report(tree, tmp_path / "r", None, options=opts, progress=False)
    page = (index.parent / "layer-conv2.html").read_text()
    clips = re.findall(r'<audio controls preload="none" src="(figures/listen/[^"]+\.wav)"', page)
    assert len(clips) == 25  # 5 neurons x 5 events
    for clip in set(clips):
        wav, sr = sf.read(index.parent / clip)
        assert sr == 16000 and len(wav) == 8000
    assert len(re.findall(r'src="figures/listen/conv2/speaker-19_n\d+\.png"', page)) == 5
    # each mean log-mel is drawn with axes (Hz on a mel scale, ms from the event) and its scale
    listen = page[page.index('<div class="listen">') :]
    assert listen.count("time from the event (ms)") == 5
    assert listen.count("frequency (Hz, mel scale)") == 5
    assert listen.count('src="figures/colorbar-magma.png"') == 5
    assert (index.parent / "figures" / "colorbar-magma.png").is_file()
    for ref in re.findall(r'src="(figures/listen/[^"]+)"', page):
        assert (index.parent / ref).is_file()


def test_a_write_error_is_one_line_naming_the_file_and_leaves_no_index(
    small_result, tmp_path, monkeypatch
):
    """A full disk partway through: OutputError naming the file and the reason, and no
    index.html (written last), so the cut-short report does not look whole."""
    import errno

    import pytest

    from gradnap.outputs import OutputError
    from gradnap.report import build

    spec, tree = small_result
    real, calls = build._write_text, []

    def full_disk(path, text):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(build, "_write_text", full_disk)
    out = tmp_path / "r"
    opts = ReportOptions(min_count=1, featvis_layers=[])
    with pytest.raises(OutputError) as info:
        build_report(tree, out, None, options=opts, progress=False)
    assert str(info.value) == f"{calls[1]}: cannot write the report (No space left on device)"
    assert not (out / "index.html").exists()
