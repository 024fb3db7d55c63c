"""Profiles of token events (Whisper): a tiny random Whisper over 2 utterances, the
GradNAP of a token group against a reference computed by hand from ``token_crops``, the
groups' names, the phoneme labels at the input's alignment time, and the refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers", reason="the whisper extra: pip install 'gradnap[whisper]'")

from gradnap.corpus.textgrid import Alignment  # noqa: E402
from gradnap.decode.whisper import greedy_tokens  # noqa: E402
from gradnap.profiling import tokens as T  # noqa: E402
from gradnap.profiling.token_profile import TokenProfiler  # noqa: E402
from tests.profiling.test_tokens import N_FRAMES, PROMPT, features, tiny_model  # noqa: E402

NEW_TOKENS = 6


class Tok:
    """Even ids start a word (``" w4"``), odd ones continue it (``"x5"``)."""

    def decode(self, ids):
        return "".join(f" w{i}" if i % 2 == 0 else f"x{i}" for i in ids)


def phones() -> Alignment:
    """A hand-made phone alignment of the 1.01 s utterance: AA, B, sil in thirds."""
    return Alignment(
        phones=[("AA", 0.0, 0.35), ("B", 0.35, 0.7), ("sil", 0.7, 1.2)],
        words=[("ab", 0.0, 0.7)],
        duration=1.2,
    )


def profiler(model, group_by=("token", "phoneme", "speaker")) -> TokenProfiler:
    return TokenProfiler(
        model, group_by=group_by, prompt=PROMPT, eot=-1, special=10**6,
        max_new_tokens=NEW_TOKENS, tokenizer=Tok(), max_memory=2**20,
    )  # fmt: skip


def test_token_profile_matches_a_reference_from_token_crops():
    model = tiny_model()
    xs = [features(1), features(2)]
    prof = profiler(model)
    for i, x in enumerate(xs):
        prof.update(x, speaker="s1", alignment=phones(), n_frames=N_FRAMES, index=i)
    tree = prof.result()

    # the reference: every event's crops from token_crops, then the means by hand
    crops, names = {}, []
    for x in xs:
        toks = greedy_tokens(model, x, NEW_TOKENS, PROMPT, eot=-1)
        events = T.token_events(toks, Tok(), len(PROMPT), special=10**6)
        c = T.token_crops(model, x, N_FRAMES, [*PROMPT, *toks], events)
        for name, tc in c.items():
            crops.setdefault(name, []).append(tc)
        names += [e.name for e in events]
    group = max(set(names), key=names.count)
    assert names.count(group) >= 2
    member = torch.tensor([n == group for n in names])
    assert tree["/"]["n_events"].item() == len(names)
    labels = [str(g) for g in tree["group"].values]
    assert f"token:{group}" in labels and any(g.startswith("token:▁w") for g in labels)
    assert {"speaker:s1"} <= set(labels)
    assert {g for g in labels if g.startswith("phoneme:")} <= {"phoneme:AA", "phoneme:B",
                                                              "phoneme:sil"}  # fmt: skip
    for layer in ("input", "conv1", "encoder.layers.1"):
        a = torch.cat([tc.activation for tc in crops[layer]]).double()
        g = torch.cat([tc.gradient for tc in crops[layer]]).double()
        mean_g = g[member].mean(0)
        ref = (a[member].mean(0) - a.mean(0)) * mean_g.abs() / mean_g.abs().max()
        got = tree[layer]["gradnap"].sel(group=f"token:{group}").values
        assert got.shape == tuple(ref.shape)
        torch.testing.assert_close(torch.from_numpy(got), ref, atol=1e-6, rtol=0)
    # the phoneme of each event: the phone at its input-layer alignment time
    seconds = torch.cat([tc.seconds for tc in crops["input"]])
    want = {}
    for s in seconds.tolist():
        p = "AA" if s < 0.35 else "B" if s < 0.7 else "sil"
        want[p] = want.get(p, 0) + 1
    counts = tree["/"]["count"]
    for p, n in want.items():
        assert counts.sel(group=f"phoneme:{p}").item() == n


def test_token_profile_has_every_variant_and_the_result_format():
    prof = profiler(tiny_model(), group_by=("token",))
    prof.update((features(1), N_FRAMES), index=0)
    tree = prof.result()
    ds = tree["encoder.layers.0"].to_dataset()
    for var in ("gradnap", "navai", "nap", "count", "split_half_r"):
        assert var in ds
    assert ds.sizes["offset"] == 25 and tree["input"].to_dataset().sizes["offset"] == 50
    assert ds.attrs["frame_ms"] == 20.0


def test_batch_events_bounds_the_tokens_per_backward(monkeypatch):
    """``max_events=2`` (what ``gradnap.profiles(..., batch_events=2)`` and ``--batch-events
    2`` pass): every batched backward holds at most 2 tokens, and the profiles equal those
    of the default batches (at most ``CPU_BATCH_EVENTS`` tokens on the CPU)."""
    from gradnap.profiling import token_profile
    from gradnap.profiling.tokens import CPU_BATCH_EVENTS

    seen = {}
    real = token_profile.iter_token_gradients

    def spy(*args, **kwargs):
        for part, tape, grads in real(*args, **kwargs):
            seen.setdefault(kwargs["max_events"], []).append(part.stop - part.start)
            yield part, tape, grads

    monkeypatch.setattr(token_profile, "iter_token_gradients", spy)
    model = tiny_model()
    trees = []
    for bound in (2, None):
        prof = profiler(model, group_by=("token",))
        prof.max_memory, prof.max_events = 2**40, bound
        prof.update(features(1), n_frames=N_FRAMES, index=0)
        trees.append(prof.result())
    n = sum(seen[2])
    assert n > CPU_BATCH_EVENTS and max(seen[2]) == 2 and len(seen[2]) == -(-n // 2)
    assert seen[None] == [min(CPU_BATCH_EVENTS, n - i) for i in range(0, n, CPU_BATCH_EVENTS)]
    assert prof.config()["max_events"] is None and '"max_events": 2' in trees[0].attrs["config"]
    for layer in ("input", "encoder.layers.1"):
        torch.testing.assert_close(
            torch.from_numpy(trees[0][layer]["gradnap"].values),
            torch.from_numpy(trees[1][layer]["gradnap"].values), atol=1e-6, rtol=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="max_events"):
        TokenProfiler(model, max_events=0).update(features(1), n_frames=N_FRAMES)


@pytest.mark.parametrize("grouping", ["grapheme", "target", "correct"])
def test_token_profile_refuses_groupings_of_ctc_frames(grouping):
    with pytest.raises(ValueError, match="CTC output frames"):
        profiler(tiny_model(), group_by=("token", grouping)).update(features(1), n_frames=N_FRAMES)


def test_phoneme_needs_an_alignment_and_ctc_models_refuse_token():
    with pytest.raises(ValueError, match="alignment"):
        profiler(tiny_model(), group_by=("phoneme",)).update(features(1), n_frames=N_FRAMES)
    from gradnap.profiling.groupings import EventContext, Token

    with pytest.raises(ValueError, match="encoder-decoder"):
        Token().check(EventContext(torch.zeros(3), None, []))


# --- the real weights on real speech: the CLI end to end ----------------------------------


def test_cli_profiles_whisper_tiny_en_on_real_speech(tiny_en, aligned_cards, tmp_path,
                                                     registry_gives):  # fmt: skip
    """``gradnap profile --model whisper-tiny.en --group-by token,phoneme`` on a clip of
    pocketsphinx-testdata (aligned by ``gradnap align``'s aligner), then ``summary``. One
    clip: each costs a transcription and a backward through the 30 s encoder window."""
    from typer.testing import CliRunner

    from gradnap.cli.main import app
    from gradnap.decode.whisper import mel_frequencies
    from gradnap.profiling import load_profiles

    registry_gives(tiny_en)
    out = tmp_path / "r.nc"
    r = CliRunner().invoke(app, [
        "profile", "--model", "whisper-tiny.en", "--corpus", str(aligned_cards),
        "--limit", "1", "--out", str(out), "--group-by", "token,phoneme", "--batch-events", "3",
    ])  # fmt: skip
    assert r.exit_code == 0, r.output
    tree = load_profiles(out)
    assert '"max_events": 3' in tree.attrs["config"]  # --batch-events reaches the profiler
    groupings = {str(g) for g in tree["grouping"].values}
    assert groupings == {"token", "phoneme"} and int(tree["n_events"]) >= 2
    assert "encoder.layers.3" in tree.children and "gradnap" in tree["conv2"].to_dataset()
    freq = tree["input"].to_dataset()["frequency"]  # mel Hz, for formants and the report
    assert freq.attrs["units"] == "Hz" and np.allclose(freq.values, mel_frequencies())
    r = CliRunner().invoke(app, ["summary", str(out)])
    assert r.exit_code == 0 and "token" in r.output, r.output
