"""The policies ``generate`` records with: the built-in ones (``scripted``, ``random``,
``play``) and a user's ``package.module:factory``, each seeded per episode so that a store
does not depend on the worker count."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from cosmos_env.config import GenerateConfig

BUILT_IN_POLICIES = ("scripted", "random", "play")
Act = Callable[[Any, dict], np.ndarray]  # (obs, info) -> action in the env's action space


def policy_factory(path: str) -> Callable[[gym.Env], Any]:
    """The user's policy factory that ``policy=package.module:factory`` names."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr or ":" in attr:
        raise ValueError(f"policy={path!r}: name a factory as package.module:factory")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"policy={path!r}: cannot import the factory: {e}") from e
    if not callable(factory):
        raise ValueError(f"policy={path!r} names a {type(factory).__name__}, not a factory")
    return factory


def check_policy(cfg: GenerateConfig) -> None:
    """Refuse an unknown policy, a factory that does not import, or a Gymnasium env without
    a scripted expert, before any worker starts."""
    if cfg.policy not in BUILT_IN_POLICIES:
        if ":" not in cfg.policy:
            raise ValueError(
                f"unknown policy {cfg.policy!r}; choose scripted, random, play or "
                "package.module:factory (factory(env) returns a policy)"
            )
        policy_factory(cfg.policy)
    elif cfg.policy == "scripted" and cfg.world.name == "gym" and cfg.env_id:
        from cosmos_env.sim.gym_experts import gym_expert

        gym_expert(cfg.env_id)  # raises for an env without a scripted expert


def user_policy(cfg: GenerateConfig, env: gym.Env) -> Any:
    """``factory(env)``: an object with ``act(obs, info)`` or a callable ``(obs, info)``."""
    policy = policy_factory(cfg.policy)(env)
    if not callable(getattr(policy, "act", None)) and not callable(policy):
        raise ValueError(
            f"policy={cfg.policy!r}: factory(env) returned a {type(policy).__name__}, which "
            "has no act(obs, info) and is not a callable (obs, info) -> action"
        )
    return policy


def episode_policy(cfg: GenerateConfig, env: gym.Env, seed: int, user: Any = None) -> Act:
    """The policy of one episode, seeded with the episode's seed; ``user`` is the worker's
    `user_policy` when ``cfg.policy`` names a factory."""
    if cfg.policy == "scripted":
        if cfg.world.name == "gym":
            from cosmos_env.sim.gym_experts import gym_expert

            expert = gym_expert(cfg.env_id, cfg.noise, seed=seed)
        else:
            from cosmos_env.sim.experts import ScriptedExpert

            expert = ScriptedExpert(cfg.task, cfg.noise, seed=seed)
        return lambda obs, info: expert.act(info["state"])
    if cfg.policy == "random":
        rng = np.random.default_rng(seed)
        space = env.action_space
        return lambda obs, info: rng.uniform(space.low, space.high).astype(space.dtype)
    if cfg.policy == "play":
        from cosmos_env.sim.play import SmoothRandom, TabletopPlay

        if cfg.world.name == "tabletop":
            play = TabletopPlay(seed)
            return lambda obs, info: play.act(info["state"])
        smooth = SmoothRandom(env.action_space.low, env.action_space.high, seed)
        return lambda obs, info: smooth.act(obs)
    if callable(getattr(user, "reset", None)):
        user.reset(seed=seed)
    return user.act if callable(getattr(user, "act", None)) else user
