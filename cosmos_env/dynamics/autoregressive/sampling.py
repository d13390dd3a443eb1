"""Token sampling for the autoregressive world model: temperature, top-k and nucleus
(top-p) sampling of one categorical per row, with randomness only from the generator
passed in. The factorised model calls it once per digit head."""

from __future__ import annotations

import torch


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Logits (..., V) with every class outside the top-k and outside the nucleus set to
    -inf. ``top_k`` 0 keeps all classes; ``top_p`` 1.0 keeps all. The nucleus is the
    smallest set of most likely classes whose total probability is >= ``top_p`` (the most
    likely class is always kept)."""
    if top_k < 0 or not 0.0 < top_p <= 1.0:
        raise ValueError(f"need top_k >= 0 and 0 < top_p <= 1, got {top_k}, {top_p}")
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        before = probs.cumsum(-1) - probs  # probability of the classes ranked above
        drop_sorted = before >= top_p  # the set already reached top_p without this class
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_logits(
    logits: torch.Tensor,
    generator: torch.Generator | None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> torch.Tensor:
    """Sample class indices (...,) int64 from logits (..., V).

    ``temperature`` 0 returns the argmax (and draws nothing from the generator); otherwise
    logits are divided by it, filtered by ``top_k``/``top_p`` (see ``filter_logits``) and
    one class per row is drawn with ``torch.multinomial`` from ``generator``.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        return logits.argmax(-1)
    logits = filter_logits(logits.float() / temperature, top_k, top_p)
    probs = logits.softmax(-1).reshape(-1, logits.shape[-1])  # (M, V)
    drawn = torch.multinomial(probs, 1, generator=generator)  # (M, 1)
    return drawn.view(logits.shape[:-1])
