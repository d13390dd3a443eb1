"""Behaviour cloning: a small CNN that maps the front-camera frame and the gripper's
proprioception to the expert's action.

The network sees what a frame-based policy may see in both the MuJoCo env and the
world-model envs: the frame, uint8 (64, 64, 3), and ``info["state"]``'s gripper slots
(position (3,) and finger opening (1,), metres). In the world model those come from its
predicted state, so a policy trained on MuJoCo episodes runs unchanged in either env.

A release is ``model.safetensors`` + ``config.json`` (+ ``card.md``); the proprioception
statistics travel as buffers in the weights, so a loaded policy standardises its inputs
exactly as training did. ``policies/train_bc.py`` trains and releases it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cosmos_env import checkpoint
from cosmos_env.sim import state_layout as sl
from policies.base import BatchPolicy, batch_states

KIND = "bc-policy"  # config.json's "kind": what `BCPolicy.load` accepts
PROPRIO_SLOTS = ("gripper_pos", "gripper_opening")  # state slots the policy reads, in order


@dataclass
class BCConfig:
    """The network: strided 3x3 convs (``channels``, each halving the frame), a spatial
    softmax, and an MLP of ``depth`` hidden layers of ``hidden`` units."""

    channels: list[int] = field(default_factory=lambda: [16, 32, 128])
    hidden: int = 256
    depth: int = 2
    groups: int = 8  # GroupNorm groups (must divide every entry of channels)
    image_size: int = 64
    proprio_dim: int = 4
    action_dim: int = 7


def proprio_from_states(states: np.ndarray) -> np.ndarray:
    """float32 (N, 4) = gripper_pos (3, metres) and gripper_opening (1, metres) of
    states (N, 36)."""
    return np.concatenate([sl.get(states, name) for name in PROPRIO_SLOTS], -1).astype(np.float32)


class SpatialSoftmax(nn.Module):
    """(B, C, H, W) feature maps -> (B, 2C) expected (x, y) in [-1, 1] of each channel's
    softmax. Why: pushing depends on where the gripper, cube and zone are, and keypoints
    give positions with few parameters (Levine et al. 2016; robomimic's default)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        coords = torch.linspace(-1.0, 1.0, size)
        ys, xs = torch.meshgrid(coords, coords, indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys], -1).reshape(-1, 2), persistent=False)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(x.flatten(2) / self.log_temperature.exp(), dim=-1)  # (B, C, HW)
        return (weights @ self.grid).flatten(1)  # (B, 2C)


class BCNet(nn.Module):
    """frame (B, 3, S, S) in [-1, 1] and raw proprio (B, 4) in metres -> action (B, 7) in
    [-1, 1]. The proprio is standardised inside with the ``proprio_mean``/``proprio_std``
    buffers (set from the training data by `set_proprio_stats`, saved with the weights)."""

    def __init__(self, cfg: BCConfig) -> None:
        super().__init__()
        if any(c % cfg.groups for c in cfg.channels):
            raise ValueError(f"groups={cfg.groups} must divide every channel in {cfg.channels}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        in_ch = 3
        for ch in cfg.channels:
            layers += [nn.Conv2d(in_ch, ch, 3, 2, 1), nn.GroupNorm(cfg.groups, ch), nn.SiLU()]
            in_ch = ch
        self.encoder = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax(cfg.image_size // 2 ** len(cfg.channels))
        # Late fusion: the frame is summarised first, then joined with the proprioception.
        mlp: list[nn.Module] = []
        width = 2 * in_ch + cfg.proprio_dim
        for _ in range(cfg.depth):
            mlp += [nn.Linear(width, cfg.hidden), nn.SiLU()]
            width = cfg.hidden
        mlp.append(nn.Linear(width, cfg.action_dim))
        self.head = nn.Sequential(*mlp)
        self.register_buffer("proprio_mean", torch.zeros(cfg.proprio_dim))
        self.register_buffer("proprio_std", torch.ones(cfg.proprio_dim))

    @torch.no_grad()
    def set_proprio_stats(self, mean: np.ndarray, std: np.ndarray) -> None:
        """Standardise proprio (4,) with these training-data statistics (metres)."""
        self.proprio_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.proprio_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def forward(self, frames: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        features = self.keypoints(self.encoder(frames))  # (B, 2C)
        proprio = (proprio - self.proprio_mean) / self.proprio_std  # (B, 4)
        return torch.tanh(self.head(torch.cat([features, proprio], -1)))  # (B, A)


def frames_to_unit(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    return frames.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


class BCPolicy(BatchPolicy):
    """A trained `BCNet` behind the policy protocol: ``act_batch(obs uint8 (N, 64, 64, 3),
    info with "state" (N, 36)) -> float32 (N, 7)`` in [-1, 1], deterministic (no
    sampling, so ``reset``'s seed changes nothing)."""

    name = "bc"

    def __init__(self, net: BCNet, name: str = "bc", source: Path | None = None) -> None:
        super().__init__()
        self.net = net.eval()
        self.name = name
        self.source = source

    @classmethod
    def load(cls, path: str | Path, name: str = "bc") -> BCPolicy:
        """A release directory (``model.safetensors`` + ``config.json``) -> the policy."""
        directory = checkpoint.resolve(path)
        config = checkpoint.read_config(directory)
        if config.get("kind") != KIND:
            raise checkpoint.CheckpointError(
                f"{directory} holds a {config.get('kind')!r} checkpoint, not a {KIND!r} "
                "release; train one with `python -m policies.train_bc`"
            )
        net = BCNet(BCConfig(**config["model"]))
        checkpoint.load_weights(directory, net)
        return cls(net, name, directory)

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        size = self.net.cfg.image_size
        obs = np.asarray(obs)
        if obs.dtype != np.uint8 or obs.ndim != 4 or obs.shape[1:] != (size, size, 3):
            raise ValueError(
                f"BCPolicy expects frames uint8 (N, {size}, {size}, 3) as the env returns "
                f"them, got {obs.dtype} {obs.shape}; use act() for a single frame"
            )
        states = batch_states(info, len(obs), "BCPolicy")
        if states.shape[1] != sl.STATE_DIM:
            raise ValueError(
                f"BCPolicy reads the gripper from a {sl.STATE_DIM}-d tabletop state, got "
                f"info['state'] of shape {states.shape}"
            )
        with torch.inference_mode():
            frames = frames_to_unit(torch.from_numpy(obs))
            actions = self.net(frames, torch.from_numpy(proprio_from_states(states)))
        return actions.numpy().astype(np.float32)
