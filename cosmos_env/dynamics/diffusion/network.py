"""A DiT over one latent frame, conditioned on past latent frames, the noise level and the
actions. Context frames are concatenated to the noisy frame along channels (as DIAMOND
does), so the transformer attends over the h*w tokens of one frame, not K+1 frames."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cosmos_env.dynamics.action_embedding import ActionEmbedding
from cosmos_env.dynamics.conditioning import Conditioning
from cosmos_env.dynamics.diffusion.config import DiffusionConfig
from cosmos_env.dynamics.norms import RMSNorm
from cosmos_env.dynamics.text_conditioning import TextCrossAttention


class NoiseEmbedding(nn.Module):
    """c_noise (B,) -> (B, D): sinusoidal features, then an MLP."""

    def __init__(self, width: int, n_freqs: int = 64) -> None:
        super().__init__()
        freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), n_freqs))
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2 * n_freqs, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, c_noise: torch.Tensor) -> torch.Tensor:
        angles = c_noise[:, None] * self.freqs  # (B, F)
        return self.mlp(torch.cat([angles.cos(), angles.sin()], dim=1))


class Attention(nn.Module):
    """Multi-head self-attention with RMS-normalised queries and keys."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.q_norm = RMSNorm(width // heads)
        self.k_norm = RMSNorm(width // heads)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        q, k = self.q_norm(q), self.k_norm(k)  # (B, N, H, Dh)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        )
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class ConvMLP(nn.Module):
    """Token MLP with a depthwise 3x3 convolution over the token grid between its two
    layers (Mix-FFN): a locality prior that moving objects are local shifts, for a
    fraction of the MLP's cost. ``side`` 0 gives the plain MLP."""

    def __init__(self, width: int, hidden: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.fc1 = nn.Linear(width, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden) if side else None
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # (B, N, Hd)
        if self.dwconv is not None:
            b, n, c = h.shape
            grid = h.transpose(1, 2).reshape(b, c, self.side, self.side)
            h = h + self.dwconv(grid).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(h, approximate="tanh"))


class DiTBlock(nn.Module):
    """AdaLN-zero transformer block; its modulation is a low-rank map of the conditioning
    embedding plus a global term shared by all blocks (AdaLN-LoRA, as in Cosmos)."""

    def __init__(
        self, width: int, heads: int, mlp_ratio: float, rank: int, side: int, text_width: int = 0
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads)
        # Instruction models: the tokens read the text after attending to each other.
        self.cross = TextCrossAttention(width, text_width, heads) if text_width else None
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = ConvMLP(width, int(width * mlp_ratio), side)
        self.adaln = nn.Sequential(
            nn.SiLU(), nn.Linear(width, rank, bias=False), nn.Linear(rank, 6 * width)
        )
        nn.init.zeros_(self.adaln[-1].weight)
        nn.init.zeros_(self.adaln[-1].bias)

    def forward(
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        shared: torch.Tensor,
        text: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        mod = (self.adaln(emb) + shared).chunk(6, dim=1)  # 6 x (B, D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mod
        x = x + gate1[:, None] * self.attn(_modulate(self.norm1(x), shift1, scale1))
        if self.cross is not None:
            x = self.cross(x, text, text_mask)
        return x + gate2[:, None] * self.mlp(_modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    """F(c_in * x, c_noise, context, cond) -> (B, C, h, w), the EDM network output.

    Inputs: ``x`` (B, C, h, w) noisy latent already scaled by c_in; ``c_noise`` (B,);
    ``context`` (B, K, C, h, w) standardised past latents; ``cond`` the `Conditioning`:
    actions (through AdaLN), task states (AdaLN; state-track models), keypoint maps (read
    with the frames; keypoint models) and text tokens (cross-attention; instruction models).
    """

    def __init__(self, cfg: DiffusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        net = cfg.net
        d, p, c = net.width, net.patch, cfg.latent_channels
        self.embed = nn.Linear(((cfg.context + 1) * c + cfg.keypoint_channels) * p * p, d)
        side = cfg.latent_size // p
        # Factorised position embedding: a row term plus a column term.
        self.pos_row = nn.Parameter(torch.randn(side, 1, d) * 0.02)
        self.pos_col = nn.Parameter(torch.randn(1, side, d) * 0.02)
        self.noise_embedding = NoiseEmbedding(d)
        self.shared_adaln = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.action_embedding = ActionEmbedding(cfg.action_dim, cfg.context, d, 6 * d)
        # The state track conditions the same two ways, on the K context states and the
        # next frame's state.
        self.state_embedding = (
            ActionEmbedding(cfg.state_dim, cfg.context + 1, d, 6 * d)
            if cfg.state_track is not None
            else None
        )
        text_width = cfg.text.encoder.width if cfg.text is not None else 0
        self.blocks = nn.ModuleList(
            DiTBlock(
                d, net.heads, net.mlp_ratio, net.adaln_rank, side if net.conv_mlp else 0, text_width
            )
            for _ in range(net.depth)
        )
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_adaln = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, c * p * p)
        for layer in (self.shared_adaln[-1], self.final_adaln[-1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(
        self, x: torch.Tensor, c_noise: torch.Tensor, context: torch.Tensor, cond: Conditioning
    ) -> torch.Tensor:
        b, c, h, w = x.shape
        p = self.cfg.net.patch
        planes = [context.flatten(1, 2), x]
        if self.cfg.keypoint_channels:
            if cond.maps is None:
                raise ValueError("this model reads keypoint maps; pass maps (B, M, h, w)")
            planes.insert(1, cond.maps.to(x.dtype))
        frames = torch.cat(planes, dim=1)  # (B, (K+1)C [+ M], h, w)
        tokens = F.pixel_unshuffle(frames, p).flatten(2).transpose(1, 2)  # (B, N, (K+1)Cp^2)
        pos = (self.pos_row + self.pos_col).flatten(0, 1)  # (N, D)
        x_tok = self.embed(tokens) + pos
        act_time, act_adaln = self.action_embedding(cond.actions, cond.action_mask)
        emb = self.noise_embedding(c_noise) + act_time  # (B, D)
        if self.state_embedding is not None:
            if cond.states is None:
                raise ValueError("this model conditions on task states; pass states (B, K+1, S)")
            state_time, state_adaln = self.state_embedding(cond.states)
            emb, act_adaln = emb + state_time, act_adaln + state_adaln
        if self.cfg.text is not None and cond.text is None:
            raise ValueError("this model follows instructions; pass text tokens (B, L, D)")
        shared = self.shared_adaln(emb) + act_adaln  # (B, 6D)
        for block in self.blocks:
            x_tok = block(x_tok, emb, shared, cond.text, cond.text_mask)
        shift, scale = self.final_adaln(emb).chunk(2, dim=1)
        out = self.out(_modulate(self.final_norm(x_tok), shift, scale))  # (B, N, Cp^2)
        out = out.transpose(1, 2).reshape(b, c * p * p, h // p, w // p)
        return F.pixel_shuffle(out, p)  # (B, C, h, w)
