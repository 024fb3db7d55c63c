import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gradnap.corpus.align import Aligner, align_corpus
from gradnap.corpus.engines import Job, festival
from gradnap.corpus.textgrid import find_alignment
from gradnap.data import read_corpus

pytestmark = pytest.mark.skipif(shutil.which("festival") is None, reason="festival missing")


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fest")
    return festival.synthesize(
        "kal_diphone", [Job("u", "the birch canoe slid on the smooth planks")], Path(tmp)
    )[0]


def test_aligner_matches_the_synthesizer_timings(spoken):
    aligned = Aligner().align(spoken.audio, 16000, "the birch canoe slid on the smooth planks")
    assert [w[0] for w in aligned.words] == "the birch canoe slid on the smooth planks".split()
    ref = [p for p in spoken.phones if p[0] != "sil"]
    got = [p for p in aligned.phones if p[0] != "sil"]
    assert [p[0] for p in got] == [p[0] for p in ref]
    errors = [abs(a[1] - b[1]) for a, b in zip(got, ref)]
    assert np.median(errors) < 0.03


def test_oov_words_get_a_g2p_pronunciation(spoken):
    aligner = Aligner()
    aligned = aligner.align(spoken.audio, 16000, "the gradnap canoe slid on the smooth planks")
    assert "gradnap" in aligner.oov and aligner.oov["gradnap"].startswith("G R")
    assert aligned.words[1][0] == "gradnap"


def test_align_corpus_writes_textgrids_and_skips_failures(spoken, tmp_path):
    root = tmp_path / "c" / "1"
    root.mkdir(parents=True)
    sf.write(root / "a.wav", spoken.audio, 16000)
    (root / "a.txt").write_text("the birch canoe slid on the smooth planks")
    sf.write(root / "b.wav", np.zeros(1600, np.float32), 16000)
    (root / "b.txt").write_text("x")
    corpus = read_corpus(tmp_path / "c")
    written, failures, oov = align_corpus(corpus, tmp_path / "tg", progress=False)
    assert written + len(failures) == 2
    assert find_alignment(corpus[0], tmp_path / "tg", corpus.root).words[0][0] == "the"
    for uid, _ in failures:
        assert not (tmp_path / "tg" / "1" / f"{uid}.TextGrid").exists()


def test_stereo_at_44k_is_mixed_down_before_resampling(spoken):
    import librosa

    mono = librosa.resample(spoken.audio.astype(np.float32), orig_sr=16000, target_sr=44100)
    stereo = np.stack([mono, 0.5 * mono], axis=1)  # (frames, channels), as soundfile reads it
    aligned = Aligner().align(stereo, 44100, "the birch canoe slid on the smooth planks")
    assert [w[0] for w in aligned.words] == "the birch canoe slid on the smooth planks".split()
    assert aligned.duration == pytest.approx(len(spoken.audio) / 16000, abs=0.01)
