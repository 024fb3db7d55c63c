"""Open the report in headless Chromium (Debian's chromium + chromium-driver, driven by
selenium; nothing downloads a browser): the page loads with no failed resource and no
console error, the link to a layer page works, the group picker shows the chosen group
(by link and by menu), the compare view shows two groups side by side, and a screenshot
is taken."""

import functools
import http.server
import shutil
import threading

import pytest
import torch

from gradnap.report import ReportOptions, build_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("chromedriver")),
    reason="Debian's chromium and chromium-driver are not installed (scripts/setup.sh as root)",
)


@pytest.fixture()
def served_report(small_result, tmp_path):
    spec, tree = small_result
    opts = ReportOptions(featvis_layers=["conv2"], min_count=1, featvis_steps=2)
    index = build_report(tree, tmp_path / "r", spec, options=opts, progress=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", tmp_path
    server.shutdown()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


FAILED = """
return performance.getEntriesByType('resource')
    .filter(e => e.responseStatus !== undefined && e.initiatorType !== 'audio'
                 && (e.responseStatus >= 400 || e.responseStatus === 0))
    .map(e => e.name + ' ' + e.responseStatus)
    .concat(Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
    .map(i => 'image ' + i.src));
"""


def shown(driver) -> list[str]:
    """The ids of the group sections on screen."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('section.group'))"
        ".filter(s => s.offsetParent !== null).map(s => s.id)"
    )


def check_page(driver):
    assert driver.execute_script("return document.readyState") == "complete"
    assert driver.execute_script(FAILED) == []
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == [], errors


def test_report_in_headless_chromium(served_report):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, tmp_path = served_report
    driver = browser()
    try:
        driver.get(url + "index.html")
        check_page(driver)
        assert driver.title == "gradnap report"
        driver.find_element(By.LINK_TEXT, "conv2").click()  # click 1: a layer
        assert driver.current_url.endswith("layer-conv2.html")
        check_page(driver)
        driver.find_element(By.CSS_SELECTOR, 'a[href="#phoneme-AA"]').click()  # click 2: a group
        assert driver.current_url.endswith("#phoneme-AA")
        section = driver.find_element(By.ID, "phoneme-AA")
        assert "phoneme:AA" in section.text
        assert shown(driver) == ["phoneme-AA"]  # the picker shows that group only
        heatmap = section.find_element(By.CSS_SELECTOR, "img.hm-img")
        assert heatmap.is_displayed() and heatmap.size["height"] >= 32  # 32 neurons, >= 1 px
        assert "time offset (ms)" in section.text and "neuron" in section.text
        # the picker's menu
        Select(driver.find_element(By.ID, "pick")).select_by_value("phoneme-T")
        assert driver.current_url.endswith("#phoneme-T") and shown(driver) == ["phoneme-T"]
        # compare: two groups side by side
        Select(driver.find_element(By.ID, "compare")).select_by_value("phoneme-AE")
        assert driver.current_url.endswith("#phoneme-T~phoneme-AE")
        assert sorted(shown(driver)) == ["phoneme-AE", "phoneme-T"]
        left = driver.find_element(By.ID, "phoneme-T").rect
        right = driver.find_element(By.ID, "phoneme-AE").rect
        assert abs(left["y"] - right["y"]) < 2 and right["x"] >= left["x"] + left["width"]
        check_page(driver)
        shot = tmp_path / "layer.png"
        assert driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        driver.back()  # the fragment keeps the state: back to one group
        assert shown(driver) == ["phoneme-T"]
        # the check does see a missing file (on a page not visited yet: no cache)
        next((tmp_path / "r" / "figures" / "conv3").glob("gradnap_*.png")).unlink()
        driver.get(url + "layer-conv3.html")
        assert driver.execute_script(FAILED)
    finally:
        driver.quit()


LOAD_AUDIO = """
const audios = Array.from(document.querySelectorAll('audio'));
audios.forEach(a => { a.preload = 'metadata'; a.load(); });
return audios.length;
"""
AUDIO_STATES = "return Array.from(document.querySelectorAll('audio')).map(a => a.readyState);"


def audio_ready(driver, timeout=60):
    """Every <audio> of the page loads its metadata (readyState >= HAVE_METADATA = 1)."""
    import time

    n = driver.execute_script(LOAD_AUDIO)
    deadline = time.time() + timeout
    states = driver.execute_script(AUDIO_STATES)
    while min(states, default=1) < 1 and time.time() < deadline:
        time.sleep(0.1)
        states = driver.execute_script(AUDIO_STATES)
    assert all(s >= 1 for s in states), states
    return n


def test_every_audio_element_loads(tmp_path):
    """The clips of the top neurons' events and the optimal input's sound all load."""
    import gradnap
    from gradnap.models import Wav2Letter
    from tests.conftest import write_librispeech

    root = write_librispeech(tmp_path / "corpus", {"19-198-0000": "HELLO", "84-121-0000": "ZOO"})
    torch.manual_seed(0)
    model = Wav2Letter.from_preset("tiny").eval()
    tree = gradnap.profiles(
        model, root, layers=["input", "conv2"], include_blank=True, group_by=["speaker"],
        progress=False,
    )  # fmt: skip
    opts = ReportOptions(
        groups=["speaker:19"], min_count=1, featvis_layers=["conv2"], featvis_steps=2
    )
    index = build_report(tree, tmp_path / "r", model, options=opts, progress=False)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser()
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/layer-conv2.html")
        check_page(driver)
        assert audio_ready(driver) >= 26  # 5 neurons x 5 events, and the optimal input
        check_page(driver)
    finally:
        driver.quit()
        server.shutdown()


def test_a_whisper_token_report_in_headless_chromium(tmp_path):
    """A report of token events (a tiny random Whisper: groups ``token:▁w4``, phonemes at
    the token's aligned time, speakers; no model, so no optimal inputs) loads with nothing
    failing, and its layer page shows a word-start token's group by the menu."""
    pytest.importorskip("transformers")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from gradnap.profiling.token_profile import TokenProfiler
    from tests.profiling.test_tokens import N_FRAMES, PROMPT, features, tiny_model
    from tests.profiling.test_whisper_profile import Tok, phones

    prof = TokenProfiler(
        tiny_model(), layers=["input", "encoder.layers.1"],
        group_by=["token", "phoneme", "speaker"], prompt=PROMPT, eot=-1, special=10**6,
        max_new_tokens=6, tokenizer=Tok(),
    )  # fmt: skip
    for i in range(2):
        prof.update(features(i + 1), f"s{i}", phones(), n_frames=N_FRAMES, index=i)
    tree = prof.result()
    word = next(str(g) for g in tree["group"].values if str(g).startswith("token:▁"))
    index = build_report(tree, tmp_path / "r", None, options=ReportOptions(min_count=1),
                         progress=False)  # fmt: skip
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    driver = browser()
    try:
        driver.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        check_page(driver)
        assert word in driver.page_source
        driver.find_element(By.LINK_TEXT, "encoder.layers.1").click()
        assert "layer-encoder-layers-1" in driver.current_url
        check_page(driver)
        menu = Select(driver.find_element(By.ID, "pick"))
        option = next(o for o in menu.options if o.text.startswith(word + " "))
        menu.select_by_value(option.get_attribute("value"))
        assert shown(driver) == [option.get_attribute("value")]
        section = driver.find_element(By.ID, option.get_attribute("value"))
        assert word in section.text
        heatmap = section.find_element(By.CSS_SELECTOR, "img.hm-img")
        assert heatmap.is_displayed() and heatmap.size["height"] >= 32  # 32 channels
        check_page(driver)
    finally:
        driver.quit()
        server.shutdown()
