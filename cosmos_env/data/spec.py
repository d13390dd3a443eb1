"""Feature schema and action spec of an episode store, and validation of episodes against them.

A store's schema is a ``dict[str, FeatureSpec]``: one entry per ``data/<key>`` array, giving
the dtype and the per-frame shape (the time axis is not part of ``shape``). The action spec
says what the env-facing actions in [-1, 1] mean in physical units.

A store holds camera frames as ``rgb``, or, when it was imported from data that ships only
another tokenizer's codes (e.g. 1X's MAGVIT2 tokens), as one or more integer ``tokens_<name>``
features instead: ``rgb`` may be left out when at least one ``tokens_*`` feature is present.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Every store carries these keys; the boundary flags may be left out of an appended episode
# and are then filled in (see `complete_episode`).
REQUIRED_FEATURES: dict[str, str] = {
    "rgb": "uint8",
    "state": "float32",
    "action": "float32",
    "reward": "float32",
    "is_first": "bool",
    "is_last": "bool",
}
BOUNDARY_KEYS = ("is_first", "is_last")
# Prefix of integer token-grid features (another tokenizer's codes); a store with at least one
# of them may go without rgb (a "token store").
TOKEN_PREFIX = "tokens_"


@dataclass(frozen=True)
class ActionSpec:
    """Meaning of the action vector: per-dimension name, unit and physical range.

    Actions cross the env boundary as float32 in [-1, 1]; `scale` maps them linearly onto
    [low, high] per dimension, `unscale` maps back. Values outside [-1, 1] map linearly
    outside [low, high] (no clipping: callers decide).
    """

    names: tuple[str, ...]
    units: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __post_init__(self) -> None:
        for field in ("names", "units", "low", "high"):
            object.__setattr__(self, field, tuple(getattr(self, field)))
        n = len(self.names)
        if n == 0:
            raise ValueError("ActionSpec needs at least one dimension")
        if not (len(self.units) == len(self.low) == len(self.high) == n):
            raise ValueError(
                f"ActionSpec fields differ in length: names={n}, units={len(self.units)}, "
                f"low={len(self.low)}, high={len(self.high)}"
            )
        if len(set(self.names)) != n:
            raise ValueError(f"ActionSpec names must be unique, got {self.names}")
        object.__setattr__(self, "low", tuple(float(x) for x in self.low))
        object.__setattr__(self, "high", tuple(float(x) for x in self.high))
        bounds = zip(self.names, self.low, self.high, strict=True)
        bad = [nm for nm, lo, hi in bounds if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi)]
        if bad:
            raise ValueError(f"ActionSpec needs low < high (and finite) for every dim; bad: {bad}")

    @property
    def dim(self) -> int:
        """Number of action dimensions A."""
        return len(self.names)

    def _bounds(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.dtype]:
        if a.shape[-1:] != (self.dim,):
            raise ValueError(f"action has shape {a.shape}; expected (..., {self.dim})")
        dtype = a.dtype if np.issubdtype(a.dtype, np.floating) else np.dtype(np.float32)
        return np.asarray(self.low, dtype), np.asarray(self.high, dtype), dtype

    def scale(self, a: np.ndarray) -> np.ndarray:
        """Map normalised actions (..., A) in [-1, 1] to physical units in [low, high]."""
        a = np.asarray(a)
        low, high, dtype = self._bounds(a)
        return (low + (a.astype(dtype) + 1.0) * 0.5 * (high - low)).astype(dtype)

    def unscale(self, x: np.ndarray) -> np.ndarray:
        """Map physical actions (..., A) in [low, high] to [-1, 1]; inverse of `scale`."""
        x = np.asarray(x)
        low, high, dtype = self._bounds(x)
        return (2.0 * (x.astype(dtype) - low) / (high - low) - 1.0).astype(dtype)

    def to_dict(self) -> dict[str, list]:
        """JSON-ready dict (lists, not tuples)."""
        return {k: list(getattr(self, k)) for k in ("names", "units", "low", "high")}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionSpec:
        """Inverse of `to_dict`; unknown keys raise."""
        _check_keys("ActionSpec", d, {"names", "units", "low", "high"}, set())
        return cls(tuple(d["names"]), tuple(d["units"]), tuple(d["low"]), tuple(d["high"]))


@dataclass(frozen=True)
class FeatureSpec:
    """One ``data/<name>`` array: numpy dtype name and per-frame shape (time axis excluded).

    ``names`` optionally names the elements of the last axis (e.g. state dimensions, or
    ("r", "g", "b")); it must match ``shape[-1]``.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        try:
            dtype = np.dtype(self.dtype)
        except TypeError as e:
            raise ValueError(f"feature {self.name!r}: unknown dtype {self.dtype!r}") from e
        if dtype.kind not in "biuf":
            raise ValueError(f"feature {self.name!r}: dtype {dtype} is not bool/int/float")
        object.__setattr__(self, "dtype", dtype.name)
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if any(s < 1 for s in self.shape):
            raise ValueError(f"feature {self.name!r}: shape {self.shape} has a dim < 1")
        if self.names is not None:
            object.__setattr__(self, "names", tuple(self.names))
            if not self.shape or len(self.names) != self.shape[-1]:
                raise ValueError(
                    f"feature {self.name!r}: {len(self.names)} names for shape {self.shape}; "
                    "names label the last axis"
                )

    @property
    def row_bytes(self) -> int:
        """Uncompressed bytes of one frame of this feature."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        names = None if self.names is None else list(self.names)
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "names": names}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureSpec:
        """Inverse of `to_dict`; unknown keys raise."""
        _check_keys("FeatureSpec", d, {"name", "dtype", "shape"}, {"names"})
        names = d.get("names")
        return cls(
            d["name"], d["dtype"], tuple(d["shape"]), None if names is None else tuple(names)
        )


def _check_keys(what: str, d: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    missing, unknown = required - set(d), set(d) - required - optional
    if missing or unknown:
        raise ValueError(f"{what} dict: missing keys {sorted(missing)}, unknown {sorted(unknown)}")


def standard_features(
    height: int,
    width: int,
    state_dim: int,
    action_dim: int,
    state_names: tuple[str, ...] | None = None,
    action_names: tuple[str, ...] | None = None,
) -> dict[str, FeatureSpec]:
    """The required schema: rgb (H, W, 3) uint8, state (S,), action (A,), reward () float32,
    is_first/is_last () bool. Add extra keys to the returned dict as needed."""
    specs = [
        FeatureSpec("rgb", "uint8", (height, width, 3)),
        FeatureSpec("state", "float32", (state_dim,), state_names),
        FeatureSpec("action", "float32", (action_dim,), action_names),
        FeatureSpec("reward", "float32", ()),
        FeatureSpec("is_first", "bool", ()),
        FeatureSpec("is_last", "bool", ()),
    ]
    return {s.name: s for s in specs}


def token_keys(features: Mapping[str, FeatureSpec]) -> list[str]:
    """The ``tokens_*`` features of a schema (integer token grids), in schema order."""
    return [key for key in features if key.startswith(TOKEN_PREFIX)]


def check_schema(features: Mapping[str, FeatureSpec], action_spec: ActionSpec) -> None:
    """Raise ValueError unless `features` holds the required keys with the right dtypes.

    ``rgb`` may be absent when at least one ``tokens_*`` feature (integer dtype, per-frame
    shape of at least one axis) is present: a token store.
    """
    for key, spec in features.items():
        if spec.name != key:
            raise ValueError(f"features[{key!r}].name is {spec.name!r}; they must match")
    tokens = token_keys(features)
    for key in tokens:
        spec = features[key]
        if np.dtype(spec.dtype).kind not in "iu" or not spec.shape:
            raise ValueError(
                f"token feature {key!r} must be an integer grid, got {spec.dtype} {spec.shape}"
            )
    for key, dtype in REQUIRED_FEATURES.items():
        if key == "rgb" and key not in features and tokens:
            continue  # a token store: its frames come as another tokenizer's codes
        if key not in features:
            hint = " or at least one tokens_* feature" if key == "rgb" else ""
            raise ValueError(f"features lack required key {key!r}{hint} (see standard_features)")
        if features[key].dtype != dtype:
            raise ValueError(f"feature {key!r} must be {dtype}, schema says {features[key].dtype}")
    expected_shape = {"reward": (), "is_first": (), "is_last": (), "action": (action_spec.dim,)}
    for key, shape in expected_shape.items():
        if features[key].shape != shape:
            raise ValueError(f"feature {key!r} must have shape {shape}, got {features[key].shape}")
    rgb, state = features["rgb"].shape if "rgb" in features else None, features["state"].shape
    if rgb is not None and (len(rgb) != 3 or rgb[2] != 3):
        raise ValueError(f"feature 'rgb' must have shape (H, W, 3), got {rgb}")
    if len(state) != 1:
        raise ValueError(f"feature 'state' must have shape (S,), got {state}")


def complete_episode(
    features: Mapping[str, FeatureSpec], episode: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Validate one episode against the schema and return it with boundary flags filled in.

    `episode` maps every schema key to an array (T, *shape) of the schema dtype, T >= 1;
    ``is_first``/``is_last`` may be omitted (then built as [True, False, ...] and
    [..., False, True]). Raises ValueError naming the key and the problem; no casting.
    """
    unknown = sorted(set(episode) - set(features))
    if unknown:
        raise ValueError(f"episode has unknown keys {unknown}; the schema has {sorted(features)}")
    missing = sorted(set(features) - set(episode) - set(BOUNDARY_KEYS))
    if missing:
        raise ValueError(f"episode is missing key {missing[0]!r} (missing: {missing})")
    out = {k: _check_array(features[k], v) for k, v in episode.items()}
    lengths = {k: v.shape[0] for k, v in out.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"episode arrays differ in length (time axis): {lengths}")
    n = next(iter(lengths.values()))
    if n < 1:
        raise ValueError("episode has length 0; an episode needs at least one frame")
    first, last = np.zeros(n, bool), np.zeros(n, bool)
    first[0], last[-1] = True, True
    for key, expected in (("is_first", first), ("is_last", last)):
        if key not in out:
            out[key] = expected
        elif not np.array_equal(out[key], expected):
            where = "first" if key == "is_first" else "last"
            raise ValueError(f"{key!r} must be True on the {where} row only, got {out[key]}")
    return out


def _check_array(spec: FeatureSpec, value: Any) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{spec.name!r}: expected a numpy array, got {type(value).__name__}")
    if value.dtype != np.dtype(spec.dtype):
        raise ValueError(
            f"{spec.name!r}: dtype {value.dtype}, schema says {spec.dtype} "
            f"(cast with .astype(np.{spec.dtype}))"
        )
    if value.ndim != 1 + len(spec.shape) or value.shape[1:] != spec.shape:
        dims = ", ".join(["T", *map(str, spec.shape)])
        raise ValueError(f"{spec.name!r}: shape {value.shape}, schema says ({dims})")
    if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
        rows = np.unique(np.nonzero(~np.isfinite(value.reshape(len(value), -1)))[0])
        raise ValueError(f"{spec.name!r}: NaN or inf at rows {rows[:10].tolist()}")
    return value
