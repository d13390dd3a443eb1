"""Stable-Baselines3 adapter: a Gymnasium 1.x ``VectorEnv`` (such as the natively batched
``WorldModelVectorEnv``) seen through SB3's ``VecEnv`` API.

    from stable_baselines3 import PPO
    from cosmos_env.envs.sb3 import make_sb3_vec_env

    venv = make_sb3_vec_env(num_envs=8)
    PPO("CnnPolicy", venv).learn(10_000)

SB3 expects the observation returned for a finished sub-env to be the first observation of
its next episode, with the last one in ``infos[i]["terminal_observation"]``: that is
Gymnasium's ``SAME_STEP`` autoreset, so the adapter requires it (and switches a
``WorldModelVectorEnv`` built with ``NEXT_STEP`` over before its first step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from cosmos_env.envs.vector_env import WorldModelVectorEnv

DEFAULT_ENV_ID = "cosmos_env/WorldModel-Tabletop-Push-v0"


def _same_step(venv: VectorEnv) -> None:
    """Make sure ``venv`` autoresets in SAME_STEP mode, or raise naming the fix."""
    mode = venv.metadata.get("autoreset_mode")
    if mode == AutoresetMode.SAME_STEP:
        return
    base = venv.unwrapped
    if isinstance(base, WorldModelVectorEnv) and mode == AutoresetMode.NEXT_STEP:
        # Safe before the adapter's first reset: the mode is only read in step().
        base.autoreset_mode = AutoresetMode.SAME_STEP
        base.metadata = {**base.metadata, "autoreset_mode": AutoresetMode.SAME_STEP}
        return
    raise ValueError(
        f"SB3VecEnvAdapter needs a vector env that autoresets in SAME_STEP mode, got {mode!r}: "
        "create it with gymnasium.make_vec(..., vector_kwargs={'autoreset_mode': "
        "AutoresetMode.SAME_STEP}) (sync/async) or autoreset_mode=AutoresetMode.SAME_STEP "
        "(vector_entry_point), or use make_sb3_vec_env"
    )


def infos_to_list(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's vector info (a dict of per-env arrays, each with an optional ``_key``
    bool mask, nested dicts alike) as SB3's list of ``num_envs`` per-env dicts."""
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get(f"_{key}")
        values = infos_to_list(value, num_envs) if isinstance(value, dict) else value
        for i in range(num_envs):
            if mask is None or mask[i]:
                out[i][key] = values[i]
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    return a == b


def _same_options(options: list[dict]) -> bool:
    """Whether every sub-env's reset options are the same (SB3 keeps one dict per env)."""
    first = options[0]
    return all(o.keys() == first.keys() and all(_equal(o[k], first[k]) for k in o) for o in options)


class SB3VecEnvAdapter(VecEnv):
    """A Gymnasium ``VectorEnv`` as a Stable-Baselines3 ``VecEnv``.

    Spaces are the vector env's single-env spaces. ``step`` returns observations,
    float32 rewards (N,), dones = terminated | truncated (N,) and a list of N info dicts:

    - a running sub-env's info is its step info (``state``, ``is_success`` for the world
      model);
    - a finished sub-env's info is the info of its last step (so ``is_success`` says
      whether that episode succeeded, as SB3's callbacks read it), plus
      ``terminal_observation`` (its last observation) and ``TimeLimit.truncated``; the
      returned observation is already the first one of its next episode, whose info goes
      to ``reset_infos[i]`` as in SB3's ``DummyVecEnv``.

    ``TimeLimit.truncated`` is set for every sub-env: True where the episode was cut by
    the time limit without terminating. Episode returns and lengths for SB3's logger come
    from wrapping the adapter in ``VecMonitor``.

    ``seed(s)`` and ``set_options`` apply at the next ``reset()``: the seeds go to the
    vector env as the list ``[s, s + 1, ...]``; it takes one options dict, so every
    sub-env's options must be the same. The vector env is one object for all sub-envs:
    ``get_attr`` reads the attribute from it (through its wrappers) and returns one
    reference per requested index; ``set_attr`` and ``env_method`` act on it once, so they
    accept only ``indices`` covering every sub-env (``env_method`` returns the one result
    repeated). ``env_is_wrapped`` checks the sub-envs of a ``SyncVectorEnv`` and is False
    for natively batched envs, which have no per-env ``gymnasium.Env`` to wrap.
    """

    def __init__(self, venv: VectorEnv) -> None:
        if not isinstance(venv, VectorEnv):
            raise TypeError(
                f"SB3VecEnvAdapter wraps a gymnasium.vector.VectorEnv, got {type(venv).__name__}; "
                "build one with gymnasium.make_vec or make_sb3_vec_env"
            )
        _same_step(venv)
        self.venv = venv
        self._actions: np.ndarray | None = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    # -- stepping ------------------------------------------------------------------------

    def reset(self) -> VecEnvObs:
        seeds = None if any(s is None for s in self._seeds) else list(self._seeds)
        first = self._options[0]
        if not _same_options(self._options):
            raise ValueError(
                "the vector env takes one options dict for all sub-envs; call "
                "set_options(dict) with the same options for every sub-env"
            )
        obs, infos = self.venv.reset(seed=seeds, options=dict(first) if first else None)
        self.reset_infos = infos_to_list(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async(actions)")
        actions, self._actions = self._actions, None
        obs, rewards, terminated, truncated, infos = self.venv.step(actions)
        terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
        dones = terminated | truncated
        step_infos = infos_to_list(infos, self.num_envs)
        final_infos = infos_to_list(infos.get("final_info", {}), self.num_envs)
        final_obs = infos.get("final_obs")
        out = []
        for i in range(self.num_envs):
            info = step_infos[i]
            if dones[i]:
                self.reset_infos[i] = info
                info = dict(final_infos[i])
                info["terminal_observation"] = final_obs[i]
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            out.append(info)
        return obs, np.asarray(rewards, np.float32), dones, out

    def close(self) -> None:
        self.venv.close()

    # -- attributes and methods ----------------------------------------------------------

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)

    def _all(self, indices: VecEnvIndices, what: str) -> None:
        if sorted(self._indices(indices)) != list(range(self.num_envs)):
            raise ValueError(
                f"{what} acts on the whole vector env, so indices must cover all "
                f"{self.num_envs} sub-envs (or be None), got {indices}"
            )

    def _owner(self, name: str) -> Any:
        """The first env along the wrapper chain that has attribute ``name``."""
        env = self.venv
        while not hasattr(env, name):
            if not hasattr(env, "env"):
                raise AttributeError(f"the vector env {self.venv} has no attribute {name!r}")
            env = env.env
        return env

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self._owner(attr_name), attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        self._all(indices, "set_attr")
        try:
            owner = self._owner(attr_name)
        except AttributeError:
            owner = self.venv.unwrapped
        setattr(owner, attr_name, value)

    def env_method(
        self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs
    ) -> list[Any]:
        self._all(indices, "env_method")
        result = getattr(self._owner(method_name), method_name)(*method_args, **method_kwargs)
        return [result for _ in range(self.num_envs)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        envs = getattr(self.venv.unwrapped, "envs", None)
        if envs is None:
            return [False for _ in self._indices(indices)]
        return [is_wrapped(envs[i], wrapper_class) for i in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        if frames is None:
            return [None] * self.num_envs
        return list(frames)


def make_sb3_vec_env(
    env_id: str = DEFAULT_ENV_ID, num_envs: int = 8, **kwargs: Any
) -> SB3VecEnvAdapter:
    """``gymnasium.make_vec(env_id, num_envs)`` through the env's native vector entry point,
    in SAME_STEP autoreset mode, as an SB3 ``VecEnv``; ``kwargs`` go to the env
    (``checkpoint=``, ``max_episode_steps=``, ``terminate_on_success=``, ...)."""
    mode = AutoresetMode(kwargs.pop("autoreset_mode", AutoresetMode.SAME_STEP))
    if mode != AutoresetMode.SAME_STEP:
        raise ValueError("SB3 needs autoreset_mode=SAME_STEP; leave autoreset_mode out")
    venv = gym.make_vec(
        env_id,
        num_envs=num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=AutoresetMode.SAME_STEP,
        **kwargs,
    )
    return SB3VecEnvAdapter(venv)
