"""The oracle of the any-model tests: plain autograd, one backward per event.

Hooks only *store* each module's raw output (the tensor the model itself goes on with);
the gradient with respect to it is then brought to (channels, time) afterwards. Nothing of
gradnap's layout, capture or timing code is used.
"""

from __future__ import annotations

import numpy as np
import torch


def plain_gradients(model, model_input, taps, logits_of, t, c):
    """``taps``: name -> (module, pick, time_axis): ``pick(output)`` is the tensor, its
    gradient is moved to (E, C, T) by putting ``time_axis`` last. ``logits_of(return value)``
    -> (K, T). Returns ({name: (E, C, T)}, {"input": (E, *input.shape[1:])}, logits)."""
    store = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name, pick=pick: store.__setitem__(name, pick(out))
        )
        for name, (module, pick, _) in taps.items()
    ]
    x = model_input.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            ret = model(x)
    finally:
        for h in handles:
            h.remove()
    logits = logits_of(ret)
    names = list(taps)
    tensors = [x] + [store[n] for n in names]
    grads = {n: [] for n in ["input"] + names}
    for tt, cc in zip(t.tolist(), c.tolist()):
        gs = torch.autograd.grad(logits[cc, tt], tensors, retain_graph=True, allow_unused=True)
        for n, g, ten in zip(["input"] + names, gs, tensors):
            grads[n].append(torch.zeros_like(ten) if g is None else g)
    out = {}
    for n in ["input"] + names:
        g = torch.cat(grads[n])  # (E, ...)
        if n == "input":
            out[n] = g.reshape(len(g), -1, g.shape[-1])
        else:
            axis = taps[n][2]
            out[n] = g.movedim(axis, -1).reshape(len(g), -1, g.shape[axis])
    return out, logits.detach()


def assert_windows_equal(got, want, layers, rel=1e-6):
    """gradnap's windows (full utterance, start 0) equal the plain gradients: max abs diff
    <= rel x max|G| in every layer."""
    for n in layers:
        w = got[n]
        assert torch.all(w.start == 0), n
        assert w.values.shape == want[n].shape, (n, w.values.shape, want[n].shape)
        scale = float(want[n].abs().max())
        assert scale > 0, n
        diff = float((w.values - want[n]).abs().max())
        assert diff <= rel * scale, f"{n}: {diff / scale:.2e} of max|G|"


def assert_trees_close(a, b, rel=1e-6):
    assert sorted(map(str, a["group"].values)) == sorted(map(str, b["group"].values))
    assert set(a.children) == set(b.children)
    for layer in a.children:
        da, db = a[layer].to_dataset(), b[layer].to_dataset()
        db = db.sel(group=da["group"].values)
        for var in da.data_vars:
            if var == "split_half_r":
                continue
            scale = max(float(np.nan_to_num(np.abs(da[var].values)).max()), 1e-30)
            np.testing.assert_allclose(
                da[var].values, db[var].values, rtol=0, atol=rel * scale, err_msg=f"{layer}/{var}"
            )
