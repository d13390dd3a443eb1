"""The zoo: build any policy from a small spec dict, as the benchmark suites list them.

    make_policy({"kind": "scripted", "noise": 0.25})
    make_policy({"kind": "bc", "checkpoint": "outputs/policies/bc-push/step_1000"})
    make_policy({"kind": "cem"}, world_model=wm)
    make_policy({"kind": "ppo", "checkpoint": "outputs/policies/ppo-push"})

Classes are imported lazily, so listing the zoo does not load torch models or SB3.
"""

from __future__ import annotations

from typing import Any

from cosmos_env.dynamics.release import WorldModel
from policies.base import Policy

KINDS = {
    "random": "uniform random actions",
    "scripted": "the MuJoCo expert on info['state'] (noise 0 = expert, 1 = random)",
    "bc": "behaviour cloning release (checkpoint=DIR)",
    "cem": "CEM-MPC imagining in the diffusion world model's state track",
    "ppo": "Stable-Baselines3 PPO trained in the world-model env (checkpoint=DIR; an SB3 "
    ".zip only with trust_remote_code=true: unpickling it runs arbitrary code)",
}


def _options(spec: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    unknown = set(spec) - allowed - {"kind", "name"}
    if unknown:
        raise ValueError(
            f"unknown keys {sorted(unknown)} for a {spec['kind']!r} policy; it takes "
            f"{sorted(allowed) or 'no options'}"
        )
    return {k: v for k, v in spec.items() if k in allowed}


def _checkpoint(spec: dict[str, Any], allowed: frozenset[str] = frozenset()) -> str:
    _options(spec, {"checkpoint", *allowed})
    if not spec.get("checkpoint"):
        raise ValueError(f"a {spec['kind']!r} policy needs checkpoint=PATH (a trained release)")
    return str(spec["checkpoint"])


def make_policy(
    spec: dict[str, Any], task: str = "push", world_model: WorldModel | None = None, seed=None
) -> Policy:
    """A policy from ``spec`` (``kind`` plus that kind's options; optional ``name``);
    ``world_model`` is the one a CEM planner imagines in (default: the shipped model)."""
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown policy kind {kind!r}; choose one of {sorted(KINDS)}")
    if kind == "random":
        from policies.base import RandomPolicy

        _options(spec, set())
        policy = RandomPolicy(seed)
    elif kind == "scripted":
        from policies.scripted import ScriptedPolicy

        policy = ScriptedPolicy(task, seed=seed, **_options(spec, {"noise"}))
    elif kind == "bc":
        from policies.bc import BCPolicy

        policy = BCPolicy.load(_checkpoint(spec))
    elif kind == "cem":
        from policies.cem import CEMPolicy

        allowed = {"horizon", "population", "elites", "iterations", "init_std", "min_std"}
        allowed |= {"fixed", "checkpoint"}
        policy = CEMPolicy(task, world_model, seed=seed, **_options(spec, allowed))
    else:
        from policies.ppo import PPOPolicy

        path = _checkpoint(spec, frozenset({"trust_remote_code"}))
        trust = spec.get("trust_remote_code", False)
        if not isinstance(trust, bool):
            raise ValueError(f"trust_remote_code must be true or false, got {trust!r}")
        policy = PPOPolicy.load(path, trust_remote_code=trust)
    if "name" in spec:
        policy.name = str(spec["name"])
    return policy
