"""Stable-Baselines3 PPO trained inside the world-model vector env, behind the policy
protocol so that it runs in MuJoCo too.

    python -m policies.ppo --steps 20000 --out outputs/policies/ppo-push.zip [--checkpoint DIR]

The agent sees only what the env returns: the predicted frame (64, 64, 3), read by SB3's
NatureCNN; the reward is the task's dense reward on the world model's state. SB3 is a dev
dependency (``pip install -e .[dev]``), imported only here.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from policies.base import BatchPolicy


class PPOPolicy(BatchPolicy):
    """A saved SB3 PPO model: ``act_batch(obs uint8 (N, 64, 64, 3))`` -> float32 (N, 7) in
    [-1, 1], the deterministic (mean) action."""

    name = "ppo"

    def __init__(self, model: Any, name: str = "ppo") -> None:
        super().__init__()
        self.model, self.name = model, name

    @classmethod
    def load(cls, path: str | Path, name: str = "ppo") -> PPOPolicy:
        from stable_baselines3 import PPO

        if not Path(path).exists():
            raise FileNotFoundError(
                f"no PPO model at {path}; train one with python -m policies.ppo"
            )
        return cls(PPO.load(str(path), device="cpu"), name)

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        actions, _ = self.model.predict(np.asarray(obs), deterministic=True)
        return np.clip(actions, -1.0, 1.0).astype(np.float32)


def train_ppo(
    steps: int,
    out: str | Path,
    num_envs: int = 16,
    checkpoint: str | None = None,
    seed: int = 0,
    n_steps: int = 64,
    **env_kwargs: Any,
) -> dict:
    """PPO for ``steps`` env steps in ``num_envs`` world-model envs (the shipped model, or
    ``checkpoint``); saves the model to ``out`` (a .zip) and returns a summary."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import Logger

    from cosmos_env.envs.sb3 import make_sb3_vec_env

    if checkpoint is not None:
        env_kwargs["checkpoint"] = checkpoint
    venv = make_sb3_vec_env(num_envs=num_envs, **env_kwargs)
    venv.seed(seed)
    model = PPO(
        "CnnPolicy", venv, n_steps=n_steps, batch_size=min(256, n_steps * num_envs), seed=seed
    )
    # SB3's default logger makes a folder under /tmp on every learn(); nothing reads it.
    model.set_logger(Logger(folder=None, output_formats=[]))
    start = time.perf_counter()
    model.learn(total_timesteps=steps, progress_bar=False)
    seconds = time.perf_counter() - start
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    venv.close()
    return {"steps": model.num_timesteps, "seconds": seconds, "path": str(out)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PPO inside the world-model env")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("outputs/policies/ppo-push.zip"))
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--checkpoint", default=None, help="world model (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(train_ppo(args.steps, args.out, args.num_envs, args.checkpoint, args.seed))


if __name__ == "__main__":
    main()
