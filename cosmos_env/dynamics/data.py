"""Training windows for latent dynamics: cached tokenizer latents of every frame, with
the actions and states of their stores, held in memory (a few hundred MB at most).

A window is K context latents (rows t-K+1..t), their actions, and the target latent
t+1 with its state. Rows before an episode's start repeat its first latent with zero
actions, the same padding the world-model env uses when it resets from one frame.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cosmos_env.data.held_out import held_out_first_frames
from cosmos_env.data.spec import ActionSpec
from cosmos_env.data.store import EpisodeStore, StoreError
from cosmos_env.dynamics.outcome_heads import OUTCOMES
from cosmos_env.tokenizer.cache import load_cache
from cosmos_env.tokenizer.data import store_paths
from cosmos_env.tokenizer.model import Tokenizer


@dataclass
class LatentEpisodes:
    """Concatenated episodes: latents (N, C, h, w) float16, or token indices (N, h, w)
    int32 for a discrete tokenizer (float16 cannot hold indices up to 64000), actions
    (N, A) float32, states (N, S) float32, the outcome columns ``outcomes`` (N, 3) float32
    (reward, is_terminal, is_success of the row; a store without a flag column gives 0),
    ``starts``/``ends`` (E,) row bounds of each episode and ``instructions`` (E,) each
    episode's language instruction ("" where the store has none)."""

    latents: np.ndarray
    actions: np.ndarray
    states: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    outcomes: np.ndarray | None = None
    instructions: list[str] | None = None

    def __post_init__(self) -> None:
        if self.outcomes is None:  # no outcome columns: rewards and flags read as 0
            self.outcomes = np.zeros((len(self.latents), len(OUTCOMES)), np.float32)
        if self.instructions is None:
            self.instructions = [""] * len(self.starts)

    @property
    def n_frames(self) -> int:
        return len(self.latents)


def select_stores(data: str | Path, pattern: str) -> list[Path]:
    """Stores under ``data`` whose directory name matches the glob ``pattern``."""
    paths = [p for p in store_paths(data) if fnmatch.fnmatch(p.name, pattern)]
    if not paths:
        raise StoreError(f"no store under {data} matches {pattern!r}")
    return paths


def store_action_spec(paths: list[Path]) -> ActionSpec:
    """The action spec all ``paths`` share; stores whose actions mean different things
    cannot train one model."""
    specs = {path: EpisodeStore.open(path).action_spec for path in paths}
    first = specs[paths[0]]
    for path, spec in specs.items():
        if spec != first:
            raise StoreError(
                f"{path} has action spec {spec}, but {paths[0]} has {first}: train on stores "
                "of one action spec"
            )
    return first


def outcome_columns(paths: list[Path]) -> tuple[str, ...]:
    """The outcome columns (``OUTCOMES``) learned heads can be trained on: reward always;
    a flag where every store at ``paths`` records it and it is True somewhere (a head for
    an event the data never shows would only ever say no)."""
    stores = [EpisodeStore.open(p) for p in paths]

    def seen(key: str) -> bool:
        if not all(key in s.features for s in stores):
            return False
        return any(s.get_rows(0, s.n_frames, keys=[key])[key].any() for s in stores)

    return ("reward", *(k for k in OUTCOMES[1:] if seen(k)))


def load_latent_episodes(
    paths: list[Path],
    tokenizer: Tokenizer,
    split: str,
    val_fraction: float,
    seed: int = 0,
    action_free: bool = False,
) -> LatentEpisodes:
    """The ``split`` ("train" / "val") episodes of every store, read from their caches.
    ``action_free`` reads the latents alone (actions and states (N, 0), outcomes 0): what
    pre-training across worlds of different action and state spaces learns from."""
    parts: dict[str, list[np.ndarray]] = {
        "latents": [],
        "actions": [],
        "states": [],
        "outcomes": [],
    }
    lengths: list[int] = []
    instructions: list[str] = []
    for path in paths:
        store = EpisodeStore.open(path)
        cache = load_cache(store, tokenizer)
        train, val = store.split(val_fraction, seed)
        episodes = train if split == "train" else val
        all_latents = cache[:]
        tokens = np.issubdtype(all_latents.dtype, np.integer)  # a discrete tokenizer's cache
        dtype = np.int32 if tokens else np.float16
        for ep in episodes:
            lo, hi = store.episode_bounds(int(ep))
            parts["latents"].append(all_latents[lo:hi].astype(dtype))
            lengths.append(hi - lo)
            instructions.append(store.instruction(int(ep)))
            if action_free:
                for key in ("actions", "states"):
                    parts[key].append(np.zeros((hi - lo, 0), np.float32))
                parts["outcomes"].append(np.zeros((hi - lo, len(OUTCOMES)), np.float32))
                continue
            flags = [k for k in OUTCOMES[1:] if k in store.features]
            rows = store.get_rows(lo, hi, keys=["action", "state", "reward", *flags])
            parts["actions"].append(rows["action"].astype(np.float32))
            parts["states"].append(rows["state"].astype(np.float32))
            outcome = [rows[k] if k in rows else np.zeros(hi - lo) for k in OUTCOMES]
            parts["outcomes"].append(np.stack(outcome, 1).astype(np.float32))
    if not lengths:
        raise StoreError(f"no {split} episodes in {[str(p) for p in paths]}")
    ends = np.cumsum(lengths)
    return LatentEpisodes(
        **{k: np.concatenate(v) for k, v in parts.items()},
        starts=ends - np.asarray(lengths),
        ends=ends,
        instructions=instructions,
    )


def held_out_reset_frames(
    paths: list[Path], n: int, val_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """First frames (n, H, W, 3) and states (n, S) of held-out episodes, spread over the
    stores: the env's default reset frames, shipped with a release."""
    per_store = -(-n // len(paths))
    parts = [held_out_first_frames(str(p), val_fraction, seed) for p in paths]
    frames = np.concatenate([f[:per_store] for f, _ in parts])[:n]
    states = np.concatenate([s[:per_store] for _, s in parts])[:n]
    return frames, states


def window_rows(t: np.ndarray, starts: np.ndarray, context: int) -> tuple[np.ndarray, np.ndarray]:
    """Context rows (B, K) ending at rows ``t`` (B,), clamped to each episode's start, and a
    (B, K) mask that is False on the padding rows."""
    offsets = np.arange(-context + 1, 1)
    rows = t[:, None] + offsets
    valid = rows >= starts[:, None]
    return np.where(valid, rows, starts[:, None]), valid


class WindowBatcher:
    """Random batches of (context, actions, target, target_state, context_states) tensors,
    and ``text`` (the windows' instructions as token ids) once ``instruction_ids`` is set:
    a function from episode indices (B,) to `TextIds` (an instruction model's
    `InstructionTable`)."""

    def __init__(self, episodes: LatentEpisodes, context: int) -> None:
        self.episodes, self.context = episodes, context
        self.instruction_ids: Callable[[np.ndarray], object] | None = None
        lengths = episodes.ends - episodes.starts
        # Every row that has a successor in its episode can end a context.
        self.anchor_rows = np.concatenate(
            [np.arange(s, e - 1) for s, e in zip(episodes.starts, episodes.ends, strict=True)]
        )
        self.anchor_starts = np.repeat(episodes.starts, lengths - 1)
        self.anchor_episodes = np.repeat(np.arange(len(lengths)), lengths - 1)

    def __len__(self) -> int:
        return len(self.anchor_rows)

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        ep = self.episodes
        t, starts = self.anchor_rows[indices], self.anchor_starts[indices]
        rows, valid = window_rows(t, starts, self.context)
        actions = ep.actions[rows] * valid[..., None]  # padding rows carry zero actions
        return {
            "context": torch.from_numpy(ep.latents[rows].astype(np.float32)),  # (B, K, C, h, w)
            "actions": torch.from_numpy(actions),  # (B, K, A)
            "target": torch.from_numpy(ep.latents[t + 1].astype(np.float32)),  # (B, C, h, w)
            "target_state": torch.from_numpy(ep.states[t + 1]),  # (B, S)
            "context_states": torch.from_numpy(ep.states[rows]),  # (B, K, S), padding repeats
            **self._text(indices),
        }

    def _text(self, indices: np.ndarray) -> dict:
        if self.instruction_ids is None:
            return {}
        return {"text": self.instruction_ids(self.anchor_episodes[indices])}

    def sample_states(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Uniform windows of states and actions only (no latents): ``context_states``
        (B, K, S), ``actions`` (B, K, A), ``target_state`` (B, S) and the target row's
        ``outcomes`` (OUTCOMES -> (B,)); cheap, so the state track and the outcome heads
        can train on larger batches than the denoiser."""
        ep = self.episodes
        indices = rng.integers(0, len(self), batch_size)
        t, starts = self.anchor_rows[indices], self.anchor_starts[indices]
        rows, valid = window_rows(t, starts, self.context)
        outcomes = torch.from_numpy(ep.outcomes[t + 1])
        return {
            "context_states": torch.from_numpy(ep.states[rows]),
            "actions": torch.from_numpy(ep.actions[rows] * valid[..., None]),
            "target_state": torch.from_numpy(ep.states[t + 1]),
            "outcomes": {key: outcomes[:, i] for i, key in enumerate(OUTCOMES)},
        }

    def sample_unrolled(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """Windows one step longer: the context (B, K, ...) and its actions end at row t,
        ``next_action`` (B, A) and ``next_state`` (B, S) are row t+1's and the target is
        row t+2, so training can predict t+1 first and learn t+2 from its own prediction."""
        ep = self.episodes
        ok = np.flatnonzero(self.anchor_rows + 2 < np.repeat(ep.ends, ep.ends - ep.starts - 1))
        indices = ok[rng.integers(0, len(ok), batch_size)]
        batch, t = self.batch(indices), self.anchor_rows[indices]
        batch["next_action"] = torch.from_numpy(ep.actions[t + 1])
        batch["next_state"] = torch.from_numpy(ep.states[t + 1])
        batch["target"] = torch.from_numpy(ep.latents[t + 2].astype(np.float32))
        batch["target_state"] = torch.from_numpy(ep.states[t + 2])
        return batch

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        early_fraction: float = 0.0,
        early_steps: int = 16,
    ) -> dict[str, torch.Tensor]:
        """Uniform windows, except that ``early_fraction`` of the batch ends within the
        first ``early_steps`` rows of an episode: every world-model episode starts from a
        reset frame with a padded context, so those windows are what every rollout meets."""
        indices = rng.integers(0, len(self), batch_size)
        n_early = int(round(batch_size * early_fraction))
        if n_early:
            early = np.flatnonzero(self.anchor_rows - self.anchor_starts < early_steps)
            indices[:n_early] = early[rng.integers(0, len(early), n_early)]
        return self.batch(indices)
