"""The decoder's half of Whisper's per-token backward: ``d Y / d enc`` for a token's logit
``Y`` without dense gradients of the cross-attention keys and values.

METHOD.md "Sensitivity" for an encoder-decoder model runs through the decoder to the
encoder output ``enc`` (T, d) and on through the encoder (:mod:`.whisper_backward`). Here
the decoder sees ``enc + delta`` for a zero leaf ``delta``: ``d Y / d delta = d Y / d enc``.
Each cross-attention (N decoder positions, H heads) is written so that autograd's backward
to ``delta`` is two products of rank H x N, (T x HN)(HN x d), instead of the (T, d)
gradients of its keys and values times their (d, d) projections.
"""

from __future__ import annotations

import torch

PROBE_ATTENTION = "gradnap_probe"


def _probe_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kw):
    """transformers' eager attention, except in a cross-attention that
    :func:`decoder_on_probe` marked with a zero leaf ``delta`` (T, d): there the keys and
    values are those of ``enc + delta``, written so that the backward to ``delta`` is two
    products of rank H x N per layer instead of dense (T, d) gradients of the keys and
    values times their (d, d) projections.

    Scores ``S_h = q_h K_h^T + (q_h Wk_h) delta^T`` and output ``P_h V_h + (P_h delta) Wv_h^T``
    (``Wk_h``, ``Wv_h``: head h's (dh, d) rows of the projections; the value bias is in
    ``V``). The added terms are zero in the forward; ``q_h Wk_h`` and ``P_h`` enter them
    detached, which drops only gradient terms that are multiplied by ``delta = 0``.
    """
    from transformers.models.whisper.modeling_whisper import eager_attention_forward

    delta = getattr(module, "_gradnap_delta", None)
    if delta is None:
        return eager_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kw
        )
    b, heads, n, dh = query.shape
    t, d = delta.shape
    if b != 1 or attention_mask is not None:
        raise ValueError("the probe attention takes one sequence and no cross-attention mask")
    scale = dh**-0.5 if scaling is None else scaling  # as eager: Whisper passes 1.0
    with torch.no_grad():
        a = torch.einsum("hnk,hkd->hnd", query[0], module.k_proj.weight.view(heads, dh, d))
    # (delta a^T)^T rather than a delta^T: the backward then yields d delta as (T, d)
    # directly instead of its transpose, which autograd would copy
    extra = (delta @ a.reshape(heads * n, d).T).T.view(1, heads, n, t)
    scores = (torch.matmul(query, key.transpose(2, 3)) + extra) * scale
    p = torch.softmax(scores, dim=-1)
    z = (p.detach().reshape(heads * n, t) @ delta).view(heads, n, d)
    wv = module.v_proj.weight.view(heads, dh, d)
    out = torch.matmul(p, value) + torch.einsum("hnd,hkd->hnk", z, wv)[None]
    return out.transpose(1, 2).contiguous(), p


def decoder_on_probe(model, ids: torch.Tensor, enc: torch.Tensor):
    """Teacher-forced decoder forward on ``enc`` (T, d) in which every cross-attention
    sees ``enc + delta``, ``delta`` a zero leaf (:func:`_probe_attention`): the gradient of
    anything the decoder computes with respect to ``delta`` is its gradient with respect to
    ``enc``. Runs with the probe attention (transformers' eager attention elsewhere: with a
    few dozen queries its backward costs 0.6x the CPU flash kernel's); the model's setting
    and the marks are restored on exit, also on error. Returns the last hidden state
    (N, d) and ``delta``.
    """
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    if PROBE_ATTENTION not in AttentionInterface._global_mapping:
        AttentionInterface.register(PROBE_ATTENTION, _probe_attention)
        # the decoder's causal mask as eager attention gets it (an unregistered name gets none)
        AttentionMaskInterface.register(PROBE_ATTENTION, eager_mask)
    delta = torch.zeros_like(enc, requires_grad=True)
    cross = [layer.encoder_attn for layer in model.model.decoder.layers]
    config = model.model.decoder.config
    attn = config._attn_implementation
    try:
        config._attn_implementation = PROBE_ATTENTION
        for module in cross:
            module._gradnap_delta = delta
        with torch.enable_grad():
            out = model.model.decoder(input_ids=ids, encoder_hidden_states=enc[None].detach())
            hidden = out.last_hidden_state[0]
    finally:
        config._attn_implementation = attn
        for module in cross:
            module.__dict__.pop("_gradnap_delta", None)
    return hidden, delta
