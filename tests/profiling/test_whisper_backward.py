"""The Whisper encoder backward's helpers: the subnormal flush is scoped and restores the
thread's setting; the workspace hands out reused buffers."""

import torch

from gradnap.profiling.whisper_backward import _Workspace, flush_subnormals


def _subnormal() -> float:
    return float(torch.tensor(1e-30) * torch.tensor(1e-10))  # 1e-40: subnormal in float32


def test_flush_subnormals_is_scoped_and_restores_the_setting():
    assert _subnormal() != 0.0  # torch's default: subnormals kept
    with flush_subnormals():
        assert _subnormal() == 0.0
        x = torch.full((4,), 1e-20)
        assert torch.count_nonzero(x * x) == 0  # 1e-40 flushed inside a tensor op too
    assert _subnormal() != 0.0
    try:
        torch.set_flush_denormal(True)  # already on: left on after the block
        with flush_subnormals():
            assert _subnormal() == 0.0
        assert _subnormal() == 0.0
    finally:
        torch.set_flush_denormal(False)
    assert _subnormal() != 0.0


def test_workspace_reuses_a_buffer_by_name_and_grows_it():
    ws = _Workspace()
    like = torch.zeros(1)
    a = ws("x", (2, 3), like)
    b = ws("x", (3, 2), like)
    assert a.data_ptr() == b.data_ptr() and b.shape == (3, 2) and b.is_contiguous()
    c = ws("x", (4, 4), like)  # larger: a new buffer under the same name
    assert c.numel() == 16 and ws("x", (2, 2), like).data_ptr() == c.data_ptr()
    assert ws("y", (2, 3), like).data_ptr() != c.data_ptr()
    assert ws("x", (2, 2), torch.zeros(1, dtype=torch.float64)).dtype == torch.float64
