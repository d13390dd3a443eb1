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

from cosmos_env.dynamics.conditioning import TextIds
from cosmos_env.dynamics.norms import RMSNorm
from cosmos_env.text.encoder import TextEncoder, TextEncoderConfig
from cosmos_env.text.vocabulary import Vocabulary


@dataclass
class TextConfig:
    """The instruction encoder, its vocabulary (``words``; training fills it in from the
    stores' instructions) and ``dropout``: the share of training windows whose instruction
    is swapped for the null text, so that the unconditional prediction classifier-free
    guidance needs is learned. The diffusion backend drops those windows' actions with it
    (for an instruction model this rate replaces ``edm.action_dropout``), so that guidance
    is on the instruction and the actions together."""

    encoder: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    words: list[str] = field(default_factory=list)
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"text.dropout must be in [0, 1), got {self.dropout}")


# How `track_config.build_config` builds a TextConfig from a release's config.json.
TEXT_NESTED: dict[type, dict[str, type]] = {TextConfig: {"encoder": TextEncoderConfig}}


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

    def token_ids(
        self, texts: Sequence[str], pad: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (B, L) and mask (B, L) of ``texts``, each through the pre-guard first
        (a refused text raises `TextRefused` before any model sees it); L is the longest
        text's length, or the encoder's ``max_len`` with ``pad`` (rows of a rollout that
        are replaced one by one keep one shape)."""
        ids, mask = self.vocabulary.encode(texts, self.cfg.encoder.max_len)
        ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
        if pad:
            extra = self.cfg.encoder.max_len - ids.shape[1]
            ids, mask = F.pad(ids, (0, extra)), F.pad(mask, (0, extra))
        return ids, mask

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

    def tokens(
        self, text: TextIds | None, batch: int, dropped: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text tokens (B, L, D) and mask (B, L) of ``text`` for a batch of ``batch`` rows:
        the null text where ``dropped`` (B,) is True, and everywhere when ``text`` is None
        (no instruction)."""
        if text is None:
            return self.null(batch)
        if text.ids.shape[0] != batch:
            raise ValueError(f"text has {text.ids.shape[0]} rows for a batch of {batch}")
        return self(text.ids, text.mask, dropped)


def vocabulary_words(instructions: Sequence[str]) -> list[str]:
    """The vocabulary (sorted distinct words, each text guarded) of training episodes'
    instructions; an error when they have none."""
    given = [t for t in instructions if t.strip()]
    if not given:
        raise ValueError(
            "an instruction model trains on stores with instructions (meta/instruction), "
            "and these have none: record them with task=instruct, or set dynamics.text=null"
        )
    return list(Vocabulary.from_texts(given).words)


class InstructionTable:
    """Token ids of every training episode's instruction, guarded and encoded once:
    called with episode indices (B,), returns their `TextIds`. An episode without an
    instruction is an error that names it."""

    def __init__(self, conditioner: TextConditioner, instructions: Sequence[str]) -> None:
        missing = [i for i, t in enumerate(instructions) if not t.strip()]
        if missing:
            raise ValueError(
                f"{len(missing)} training episodes (e.g. {missing[:3]}) have no instruction; "
                "an instruction model needs one per episode"
            )
        distinct = sorted(set(instructions))
        self.ids, self.mask = conditioner.token_ids(distinct)  # (T, L)
        position = {t: i for i, t in enumerate(distinct)}
        self.index = torch.tensor([position[t] for t in instructions])  # (E,)

    def __call__(self, episodes) -> TextIds:
        rows = self.index[torch.as_tensor(episodes)]
        return TextIds(self.ids[rows], self.mask[rows])


def fill_vocabulary(dynamics_cfg, instructions: Sequence[str]) -> None:
    """An instruction model's config (``dynamics_cfg.text``) gains the vocabulary of the
    training episodes' ``instructions`` unless it has one (a base being post-trained)."""
    if dynamics_cfg.text is not None and not dynamics_cfg.text.words:
        dynamics_cfg.text.words = vocabulary_words(instructions)


def attach_instructions(model: nn.Module, batcher, instructions: Sequence[str]) -> None:
    """Training windows of ``batcher`` carry their episode's instruction ids when
    ``model`` follows instructions (``model.text``)."""
    if model.text is not None:
        batcher.instruction_ids = InstructionTable(model.text, instructions)
