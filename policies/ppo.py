"""Stable-Baselines3 PPO trained inside the world-model vector env, behind the policy
protocol so that it runs in MuJoCo too.

    python -m policies.ppo --steps 20000 --out outputs/policies/ppo-push [--checkpoint DIR]
    python -m policies.ppo --convert TRUSTED.zip --out DIR   # an SB3 .zip -> a release

The agent sees only what the env returns: the predicted frame (64, 64, 3), read by SB3's
NatureCNN; the reward is the task's dense reward on the world model's state. The trained
policy is a release directory (`policies.sb3_release`: safetensors + JSON, nothing
pickled). SB3 is a dev dependency (``pip install -e .[dev]``), imported only here and
there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from cosmos_env.checkpoint import CheckpointError
from policies.base import BatchPolicy


class PPOPolicy(BatchPolicy):
    """A trained SB3 PPO policy network: ``act_batch(obs uint8 (N, 64, 64, 3))`` -> float32
    (N, 7) in [-1, 1], the deterministic (mean) action."""

    name = "ppo"

    def __init__(self, policy: Any, name: str = "ppo", source: Path | None = None) -> None:
        super().__init__()
        self.policy, self.name, self.source = policy, name, source

    @classmethod
    def load(
        cls, path: str | Path, name: str = "ppo", trust_remote_code: bool = False
    ) -> PPOPolicy:
        """A release directory (`train_ppo`, `save`), rebuilt from JSON and safetensors.

        An SB3 ``.zip`` loads only with ``trust_remote_code=True``, and only one you trust:
        SB3 unpickles its entries with cloudpickle, and unpickling runs arbitrary code that
        the file's author chose. Convert a trusted zip once (`save`, ``--convert``)."""
        path = Path(path)
        if path.is_dir():
            from policies.sb3_release import load_sb3_policy

            return cls(load_sb3_policy(path), name, path)
        if not path.exists():
            raise FileNotFoundError(
                f"no PPO model at {path}; train one with python -m policies.ppo"
            )
        if not trust_remote_code:
            raise CheckpointError(
                f"refusing to load {path}: it is a file, not a release directory, i.e. an SB3 "
                ".zip, and loading one unpickles its entries, which runs arbitrary code. Use a "
                "release (python -m policies.ppo writes one); for a zip you trust, convert it "
                f"once with `python -m policies.ppo --convert {path} --out DIR`, or pass "
                'trust_remote_code=True (zoo spec key "trust_remote_code": true)'
            )
        from stable_baselines3 import PPO

        return cls(PPO.load(str(path), device="cpu").policy, name, path)

    def save(self, directory: str | Path, card: str = "", **extra) -> Path:
        """Write the policy as a release directory (float32: it acts exactly the same)."""
        from policies.sb3_release import save_sb3_policy

        return save_sb3_policy(directory, self.policy, card, algorithm="PPO", **extra)

    def act_batch(self, obs: np.ndarray, info: dict[str, Any] | None = None) -> np.ndarray:
        actions, _ = self.policy.predict(np.asarray(obs), deterministic=True)
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
    ``checkpoint``); releases the policy to the directory ``out`` and returns a summary."""
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
    venv.close()
    world = str(checkpoint or "the shipped default")
    training = {"steps": model.num_timesteps, "seconds": seconds, "world_model": world}
    training |= {"num_envs": num_envs, "n_steps": n_steps, "seed": seed}
    card = (
        f"# PPO policy\n\nSB3 PPO, {model.num_timesteps} steps in {num_envs} envs of the world "
        f"model {world}. Load it with `PPOPolicy.load(DIR)` or the zoo's "
        '`{"kind": "ppo", "checkpoint": DIR}`.\n'
    )
    PPOPolicy(model.policy).save(out, card, training=training)
    return {"steps": model.num_timesteps, "seconds": seconds, "path": str(out)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="PPO inside the world-model env")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=Path("outputs/policies/ppo-push"))
    parser.add_argument("--num-envs", type=int, default=16)
    parser.add_argument("--checkpoint", default=None, help="world model (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--convert",
        type=Path,
        default=None,
        metavar="ZIP",
        help="instead of training, convert an SB3 .zip YOU TRUST to a release at --out "
        "(reading a .zip unpickles it, which runs any code it holds)",
    )
    args = parser.parse_args(argv)
    if args.convert is not None:
        policy = PPOPolicy.load(args.convert, trust_remote_code=True)
        print(policy.save(args.out, converted_from=str(args.convert)))
        return
    print(train_ppo(args.steps, args.out, args.num_envs, args.checkpoint, args.seed))


if __name__ == "__main__":
    main()
