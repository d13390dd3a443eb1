"""A small text encoder trained with the world model: token ids (B, L) -> text tokens
(B, L, D) that the frame generator cross-attends to.

Why train one here: the instructions are short template sentences over a few dozen words,
so a two-layer transformer learns what they mean from the episodes themselves; a
pretrained sentence encoder would add a download (forbidden at run time) or a large wheel
for meaning the corpus does not need. Classifier-free guidance needs an "unconditional"
text: `TextEncoder.null` is a learned one-token text that training swaps in for a share of
the instructions (``drop``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TextEncoderConfig:
    """Width, depth and heads of the encoder; ``max_len`` words per instruction."""

    width: int = 128
    depth: int = 2
    heads: int = 4
    max_len: int = 16


class TextEncoder(nn.Module):
    """Word embeddings plus learned positions, then pre-norm transformer layers."""

    def __init__(self, cfg: TextEncoderConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.width
        self.embed = nn.Embedding(vocab_size, d, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(cfg.max_len, d) * 0.02)
        self.null_token = nn.Parameter(torch.randn(d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Text tokens (B, L, D) of token ids (B, L) int64 with validity ``mask`` (B, L)
        bool; padded positions are zero."""
        length = ids.shape[1]
        if length > self.cfg.max_len:
            raise ValueError(f"{length} words; this encoder reads at most {self.cfg.max_len}")
        x = self.embed(ids) + self.pos[:length]
        x = self.layers(x, src_key_padding_mask=~mask)
        return self.norm(x) * mask[..., None]

    def null(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The unconditional text: tokens (B, 1, D) and mask (B, 1)."""
        tokens = self.norm(self.null_token).expand(batch, 1, -1)
        return tokens, torch.ones(batch, 1, dtype=torch.bool, device=tokens.device)

    def drop(
        self, tokens: torch.Tensor, mask: torch.Tensor, dropped: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training's guidance dropout: the texts (tokens (B, L, D), mask (B, L)) of rows
        where ``dropped`` (B,) bool is True become the null text, padded to L."""
        null_tokens, null_mask = self.null(len(tokens))
        pad = tokens.shape[1] - 1
        null_tokens = torch.cat(
            [null_tokens, tokens.new_zeros(len(tokens), pad, tokens.shape[2])], 1
        )
        null_mask = torch.cat([null_mask, mask.new_zeros(len(mask), pad)], 1)
        keep = ~dropped
        tokens = torch.where(keep[:, None, None], tokens, null_tokens)
        return tokens, torch.where(keep[:, None], mask, null_mask)
