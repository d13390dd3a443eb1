"""Instruction conditioning shared by both backends: the config, the text conditioner
(vocabulary + encoder, with the guidance dropout) and the cross-attention a frame
generator's tokens use to read the text.

The cross-attention's output projection starts at zero, so a model that gains it (a base
post-trained to follow instructions) predicts exactly as before until training moves it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_env.dynamics.norms import RMSNorm
from cosmos_env.text.encoder import TextEncoder, TextEncoderConfig
from cosmos_env.text.vocabulary import Vocabulary


@dataclass
class TextConfig:
    """The instruction encoder and its vocabulary (``words``; training fills it in from
    the stores' instructions). Guidance drops the text of the same training windows whose
    actions it drops (the backend's own dropout rate), so that the unconditional
    prediction classifier-free guidance needs is learned."""

    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    words: list[str] = field(default_factory=list)


class TextCrossAttention(nn.Module):
    """Tokens (B, N, D) attend to text tokens (B, L, Dt) (padding masked out), residually;
    RMS-normalised queries and keys, as the DiT's self-attention."""

    def __init__(self, width: int, text_width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(text_width, 2 * width)
        self.q_norm = RMSNorm(width // heads)
        self.k_norm = RMSNorm(width // heads)
        self.proj = nn.Linear(width, width)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        dh = d // self.heads
        q = self.q_norm(self.q(self.norm(x)).view(b, n, self.heads, dh))
        k, v = self.kv(text.to(x.dtype)).view(b, -1, 2, self.heads, dh).unbind(2)
        k = self.k_norm(k)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask[:, None, None]
        )  # (B, H, N, Dh)
        return x + self.proj(out.transpose(1, 2).reshape(b, n, d))


class TextConditioner(nn.Module):
    """Instructions -> text tokens: the vocabulary of ``cfg.words`` and the encoder; a
    training batch's dropped rows get the encoder's learned null text."""

    def __init__(self, cfg: TextConfig) -> None:
        super().__init__()
        if not cfg.words:
            raise ValueError(
                "text.words is empty: training fills the vocabulary in from the stores' "
                "instructions (meta/instruction)"
            )
        self.cfg = cfg
        self.vocabulary = Vocabulary(tuple(cfg.words))
        self.encoder = TextEncoder(cfg.encoder, len(self.vocabulary))

    def token_ids(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, L) and mask (B, L) of ``texts``, each through the pre-guard first
        (a refused text raises `TextRefused` before any model sees it)."""
        ids, mask = self.vocabulary.encode(texts, self.cfg.encoder.max_len)
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def forward(
        self, ids: torch.Tensor, mask: torch.Tensor, dropped: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text tokens (B, L, D) and mask (B, L) of token ids; rows where ``dropped`` (B,)
        is True get the null text."""
        tokens = self.encoder(ids, mask)
        if dropped is not None:
            tokens, mask = self.encoder.drop(tokens, mask, dropped)
        return tokens, mask

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional text (B, 1, D) and its mask (B, 1)."""
        return self.encoder.null(batch)
