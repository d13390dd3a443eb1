"""Tiny stores for the exporter tests: 3 episodes of 4-7 frames, 32x32 rgb, 4-d state and a
Bridge-like 7-d action spec. (A uniquely named module: ``import conftest`` is ambiguous when
several test folders have one.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cosmos_env.data import ActionSpec, EpisodeStore, standard_features

SIZE, S = 32, 4
LENGTHS = (4, 7, 5)
INSTRUCTIONS = ("push the red cube left", "lift the cube ✓", "push the red cube left")


def action_spec() -> ActionSpec:
    return ActionSpec(
        names=("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"),
        units=("m", "m", "m", "rad", "rad", "rad", "1"),
        low=(-0.05, -0.05, -0.05, -0.25, -0.25, -0.25, 0.0),
        high=(0.05, 0.05, 0.05, 0.25, 0.25, 0.25, 1.0),
    )


def make_frames(i: int, length: int, size: int = SIZE) -> np.ndarray:
    """(T, size, size, 3) uint8: smooth gradients plus a moving square, so that a video codec
    reproduces them closely (noise would not survive 4:2:0 chroma subsampling)."""
    y, x = np.mgrid[0:size, 0:size]
    frames = np.empty((length, size, size, 3), np.uint8)
    for t in range(length):
        frames[t, ..., 0] = 40 + 5 * x
        frames[t, ..., 1] = 30 + 4 * y + 20 * i
        frames[t, ..., 2] = 120
        c = 4 + 3 * t  # a square moving right, 3 pixels a frame
        frames[t, 8:20, c : c + 8] = (230, 230, 40)
    return frames


def make_episode(i: int, length: int, size: int = SIZE) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + i)
    action = rng.uniform(-1, 1, (length, 7)).astype(np.float32)
    action[-1] = 0.0  # padding action of the last row
    reward = rng.standard_normal(length).astype(np.float32)
    reward[0] = 0.0  # nothing received on arriving at the first row
    return {
        "rgb": make_frames(i, length, size),
        "state": rng.standard_normal((length, S)).astype(np.float32),
        "action": action,
        "reward": reward,
    }


def fill_store(
    path: Path, lengths: tuple[int, ...] = LENGTHS, size: int = SIZE
) -> list[dict[str, np.ndarray]]:
    """Create a finalized store at `path` (size x size frames); return its episodes."""
    episodes = [make_episode(i, n, size) for i, n in enumerate(lengths)]
    features = standard_features(size, size, S, 7, ("x", "y", "z", "g"), action_spec().names)
    with EpisodeStore.create(
        path,
        features=features,
        action_spec=action_spec(),
        fps=5.0,
        world="tabletop",
        camera={"name": "front"},
        robot="floating gripper",
    ) as store:
        for i, ep in enumerate(episodes):
            store.append_episode(ep, INSTRUCTIONS[i % len(INSTRUCTIONS)], f"src-{i}")
    return episodes
