import numpy as np
import pytest
import soundfile as sf

from gradnap.audio.io import AudioError, audio_info, load_audio
from tests.conftest import tone


def test_load_roundtrip(tmp_path):
    sf.write(tmp_path / "a.flac", tone(0.5), 16000)
    wav, sr = load_audio(tmp_path / "a.flac")
    assert sr == 16000 and wav.dtype == np.float32 and len(wav) == 8000
    assert audio_info(tmp_path / "a.flac") == (8000, 16000)


def test_truncated_wav_and_flac(tmp_path):
    for ext in ("wav", "flac"):
        sf.write(tmp_path / f"a.{ext}", tone(1.0), 16000)
        data = (tmp_path / f"a.{ext}").read_bytes()
        (tmp_path / f"t.{ext}").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"t\.wav: truncated audio"):
        audio_info(tmp_path / "t.wav")
    with pytest.raises(AudioError, match=r"t\.flac: unreadable or truncated"):
        load_audio(tmp_path / "t.flac")


def test_garbage(tmp_path):
    (tmp_path / "g.flac").write_bytes(b"not audio at all" * 10)
    with pytest.raises(AudioError, match=r"g\.flac: unreadable audio"):
        load_audio(tmp_path / "g.flac")
