"""Reward, success and termination of world-model steps, for any world: the world's own
functions of the predicted state where it defines them, else the model's learned heads.

Which source scored what is public (``Scorer.sources``, and every env step's ``info``), so
a researcher can tell a simulator-exact reward from a learned one.
"""

from __future__ import annotations

import numpy as np
import torch

from cosmos_env.data.world import World
from cosmos_env.dynamics.release import WorldModel

SOURCES = ("world", "learned", "none")


class Scorer:
    """Scores batches of steps (prev_states (N, S), actions (N, A) in [-1, 1],
    next_states (N, S), world units) of ``world_model``, in ``world`` (None: store-only).

    ``sources`` maps "reward", "is_success" and "is_terminal" to "world" (the world's
    function), "learned" (the outcome heads) or "none" (neither knows it: success and
    termination are then always False). A reward nobody defines is an error.
    """

    def __init__(self, world_model: WorldModel, world: World | None) -> None:
        self.wm, self.world = world_model, world
        learned = set(world_model.outcomes) if _has_heads(world_model) else set()
        world_has = {
            "reward": bool(world and world.has_reward),
            "is_success": bool(world and world.has_success),
            "is_terminal": bool(world and world.has_termination),
        }
        self.sources = {
            key: "world" if has else ("learned" if key in learned else "none")
            for key, has in world_has.items()
        }
        if self.sources["reward"] == "none":
            raise ValueError(
                f"{world_model.source}: its world {world_model.world.name!r} defines no reward "
                "function and the model has no learned reward head; retrain it with "
                "dynamics.outcome_heads={width:256} (make-world-model does)"
            )

    def score(
        self, prev_states: np.ndarray, actions: np.ndarray, next_states: np.ndarray
    ) -> dict[str, np.ndarray]:
        """{"reward": float64 (N,), "is_success": bool (N,), "is_terminal": bool (N,)}."""
        learned = {}
        if "learned" in self.sources.values():
            learned = self.wm.dynamics.predict_outcome(
                torch.as_tensor(prev_states, dtype=torch.float32),
                torch.as_tensor(actions, dtype=torch.float32),
                torch.as_tensor(next_states, dtype=torch.float32),
            )
        physical = self.wm.world.action_spec.scale(np.asarray(actions, np.float64))
        out = {}
        for key, source in self.sources.items():
            if source == "world":
                out[key] = self._world_value(key, prev_states, physical, next_states)
            elif source == "learned":
                value = learned[key].double().numpy()
                out[key] = value if key == "reward" else value > 0.5
            else:
                out[key] = np.zeros(len(next_states), bool)
        out["reward"] = np.asarray(out["reward"], np.float64)
        return out

    def _world_value(self, key, prev_states, physical, next_states) -> np.ndarray:
        if key == "reward":
            return self.world.reward(prev_states, physical, next_states)
        if key == "is_success":
            return np.asarray(self.world.success(next_states), bool)
        return np.asarray(self.world.terminated(next_states), bool)

    def initial_success(self, states: np.ndarray) -> np.ndarray:
        """Success of reset states (N, S): the world's function, else False (learned heads
        score steps, not single states)."""
        if self.sources["is_success"] == "world":
            return np.asarray(self.world.success(states), bool)
        return np.zeros(len(states), bool)


def _has_heads(wm: WorldModel) -> bool:
    return getattr(wm.dynamics, "outcome", None) is not None
