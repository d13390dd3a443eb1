"""Stable-Baselines3 policies as releases, like every other checkpoint here: the policy
network's state dict in ``model.safetensors`` and what rebuilds it as plain JSON in
``config.json`` (observation and action spaces with shapes, dtypes and bounds; the policy
class, its activation and feature extractor by name from allow-lists; its other keyword
arguments). Loading unpickles nothing, where an SB3 ``.zip`` stores classes and spaces as
cloudpickle. A release acts; it keeps no optimizer state to resume training from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import stable_baselines3
from gymnasium import spaces
from stable_baselines3.common.policies import (
    ActorCriticCnnPolicy,
    ActorCriticPolicy,
    BasePolicy,
    MultiInputActorCriticPolicy,
)
from stable_baselines3.common.torch_layers import CombinedExtractor, FlattenExtractor, NatureCNN
from torch import nn

from cosmos_env import checkpoint
from cosmos_env.checkpoint import CheckpointError

KIND = "sb3-policy"  # config.json's "kind"

POLICY_CLASSES = {
    c.__name__: c for c in (ActorCriticPolicy, ActorCriticCnnPolicy, MultiInputActorCriticPolicy)
}
# Constructor arguments that are classes, stored by name from these tables.
CLASS_ARGUMENTS = {
    "activation_fn": {
        c.__name__: c for c in (nn.Tanh, nn.ReLU, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU)
    },
    "features_extractor_class": {
        c.__name__: c for c in (NatureCNN, FlattenExtractor, CombinedExtractor)
    },
}
# Left out: the spaces (stored apart) and the optimizer and its schedule (a release acts).
_NOT_STORED = {"observation_space", "action_space", "lr_schedule"}
_NOT_STORED |= {"optimizer_class", "optimizer_kwargs"}
_NUMERIC_KINDS = "biuf"  # numpy dtype kinds a Box may hold


def _bound(values: np.ndarray) -> Any:
    """A Box bound as JSON: one number when every entry is equal, else nested lists."""
    flat = values.ravel()
    return flat[0].item() if flat.size and (flat == flat[0]).all() else values.tolist()


def space_to_json(space: spaces.Space) -> dict[str, Any]:
    """A Gymnasium space (Box, Discrete, MultiDiscrete, MultiBinary, Dict) -> plain JSON."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": space.dtype.name,
            "low": _bound(space.low),
            "high": _bound(space.high),
        }
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": space.nvec.tolist()}
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": np.asarray(space.n).tolist()}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_json(v) for k, v in space.spaces.items()}}
    raise ValueError(
        f"cannot store a {type(space).__name__} space as JSON; supported: Box, "
        "Discrete, MultiDiscrete, MultiBinary, Dict"
    )


def space_from_json(data: dict[str, Any]) -> spaces.Space:
    """Inverse of `space_to_json`; an unknown type or a non-numeric dtype is a ValueError."""
    kind = data.get("type")
    if kind == "Box":
        dtype = np.dtype(data["dtype"])
        if dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"Box dtype {dtype} is not numeric")
        shape = tuple(int(n) for n in data["shape"])
        low, high = (np.broadcast_to(np.asarray(data[k], dtype), shape) for k in ("low", "high"))
        return spaces.Box(low=low.copy(), high=high.copy(), shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.asarray(data["nvec"], np.int64))
    if kind == "MultiBinary":
        return spaces.MultiBinary(data["n"])
    if kind == "Dict":
        return spaces.Dict({k: space_from_json(v) for k, v in data["spaces"].items()})
    raise ValueError(
        f"space type {kind!r} unknown; known: Box, Discrete, MultiDiscrete, MultiBinary, Dict"
    )


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float | str):
        return True
    if isinstance(value, list | tuple):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def policy_kwargs_to_json(policy: BasePolicy) -> dict[str, Any]:
    """The policy's constructor arguments (as SB3 saves them) as plain JSON; a class
    outside `CLASS_ARGUMENTS` or any other non-JSON value is a ValueError naming it."""
    kwargs = policy._get_constructor_parameters()  # what SB3's own save records
    if hasattr(policy, "share_features_extractor"):  # not in SB3's list, but an argument
        kwargs["share_features_extractor"] = policy.share_features_extractor
    out = {}
    for key, value in kwargs.items():
        if key in _NOT_STORED:
            continue
        if key in CLASS_ARGUMENTS:
            value = getattr(value, "__name__", value)
            if value not in CLASS_ARGUMENTS[key]:
                raise ValueError(
                    f"policy argument {key}={value!r} is not one a release can store by name "
                    f"(allowed: {sorted(CLASS_ARGUMENTS[key])})"
                )
        elif not _is_plain(value):
            raise ValueError(f"policy argument {key}={value!r} is not plain JSON")
        out[key] = value
    return out


def save_sb3_policy(directory: str | Path, policy: BasePolicy, card: str = "", **extra) -> Path:
    """Release ``policy`` (an allow-listed SB3 policy) to ``directory`` atomically, float32
    weights (so it acts exactly as before), ``extra`` recorded in config.json."""
    name = type(policy).__name__
    if POLICY_CLASSES.get(name) is not type(policy):
        raise ValueError(f"cannot release a {name}; supported: {sorted(POLICY_CLASSES)}")
    config = {
        "kind": KIND,
        "policy_class": name,
        "observation_space": space_to_json(policy.observation_space),
        "action_space": space_to_json(policy.action_space),
        "policy_kwargs": policy_kwargs_to_json(policy),
        "stable_baselines3": stable_baselines3.__version__,
        **extra,
    }
    return checkpoint.save_release(Path(directory), policy, config, card)


def _constant_schedule(_progress: float) -> float:
    return 0.0  # a release is never trained further: no learning rate


def build_sb3_policy(config: dict[str, Any], where: str = "config.json") -> BasePolicy:
    """A freshly initialised policy from a release's config (`save_sb3_policy`)."""
    name = config.get("policy_class")
    if name not in POLICY_CLASSES:
        raise CheckpointError(
            f"{where} names policy class {name!r}, which a release may not load; "
            f"allowed: {sorted(POLICY_CLASSES)}"
        )
    kwargs = dict(config.get("policy_kwargs", {}))
    for key, table in CLASS_ARGUMENTS.items():
        if key in kwargs:
            if kwargs[key] not in table:
                raise CheckpointError(
                    f"{where} has {key}={kwargs[key]!r}; allowed: {sorted(table)}"
                )
            kwargs[key] = table[kwargs[key]]
    try:
        obs_space = space_from_json(config["observation_space"])
        action_space = space_from_json(config["action_space"])
        return POLICY_CLASSES[name](obs_space, action_space, _constant_schedule, **kwargs)
    except (AttributeError, KeyError, TypeError, ValueError, AssertionError) as e:
        raise CheckpointError(f"{where} does not describe a valid {name}: {e!r}") from e


def load_sb3_policy(directory: str | Path) -> BasePolicy:
    """A release directory -> its SB3 policy on the CPU in eval mode, weights checked
    against the sha256 in config.json."""
    directory = checkpoint.resolve(directory)
    config = checkpoint.read_config(directory)
    if config.get("kind") != KIND:
        raise CheckpointError(
            f"{directory} holds a {config.get('kind')!r} checkpoint, not a {KIND!r} release; "
            "train one with `python -m policies.ppo`"
        )
    policy = build_sb3_policy(config, f"{directory}/config.json")
    checkpoint.load_weights(directory, policy)
    policy.set_training_mode(False)
    return policy
