"""Scene randomisation of the tabletop: the ranges a scene is drawn from (`SceneRanges`,
one typed dataclass per part, built from the ``world.scene`` config) and one drawn scene
(`Scene`: per object slot a shape kind, size and colour; table and floor colours; light
direction and intensity; the front camera's pose jitter; how many objects).

The object slots keep their state names (``cube``, ``cylinder``, ``block``,
``state_layout.OBJECT_NAMES``) whatever shape they are drawn with; the cube slot is the
task object. The default ranges draw nothing and give today's fixed scene, so the default
world renders and simulates exactly as before. `sample_scene` is deterministic in its rng.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from cosmos_env.sim.state_layout import OBJECT_NAMES
from cosmos_env.sim.tasks import CUBE_HALF

# MuJoCo geom size at scale 1 of each shape kind: about 4 cm across and at most 4 cm tall,
# so that the scripted grasp (finger gap 1.2 cm + opening 1.5..4.5 cm) and push work.
SHAPE_SIZES: dict[str, tuple[float, ...]] = {
    "box": (0.02, 0.02, 0.02),  # half sizes
    "cylinder": (0.02, 0.02),  # radius, half length
    "sphere": (0.02,),  # radius
    "capsule": (0.017, 0.004),  # radius, half length of the straight part
    "ellipsoid": (0.022, 0.018, 0.02),  # semi axes
}
SCALE_LIMITS = (0.85, 1.15)  # every shape: the scripted experts grasp and push it (at 0.8 not)
CAMERA_SHIFT_LIMIT = 0.05  # metres per axis: the table stays in view
CAMERA_ROTATE_LIMIT = 10.0  # degrees per axis


@dataclass(frozen=True)
class ObjectLook:
    """One object of a scene: MuJoCo geom ``shape`` with ``size`` (at scale 1) times
    ``scale``; ``rgba`` None keeps the slot's own colour; ``spawn_z`` (m) is the height of
    its centre when it is placed (None: a resting object's half height). Drawn shapes
    roll against ``rolling_friction`` (m, contact ``condim`` 6), so that a pushed sphere
    stops within about a centimetre and the push expert keeps up with it."""

    shape: str
    size: tuple[float, ...]
    scale: float = 1.0
    rgba: tuple[float, float, float, float] | None = None
    spawn_z: float | None = None
    condim: int = 6
    rolling_friction: float = 0.01

    @property
    def geom_size(self) -> tuple[float, ...]:
        return tuple(s * self.scale for s in self.size)

    @property
    def half_height(self) -> float:
        size = self.geom_size  # the last entry is the half height, but for a capsule's cap
        return size[0] + size[-1] if self.shape == "capsule" else size[-1]

    @property
    def drop_z(self) -> float:
        return self.half_height if self.spawn_z is None else self.spawn_z


# Today's objects: shape, size, colour, spawn height (the block has always been dropped
# from the cube's height) and contact (no rolling friction).
_TODAY = {"condim": 4, "rolling_friction": 0.001}
SLOT_DEFAULTS: dict[str, ObjectLook] = {
    "cube": ObjectLook("box", (CUBE_HALF,) * 3, 1.0, (0.85, 0.15, 0.12, 1.0), CUBE_HALF, **_TODAY),
    "cylinder": ObjectLook("cylinder", (0.02, 0.025), 1.0, (0.15, 0.3, 0.85, 1.0), 0.025, **_TODAY),
    "block": ObjectLook(
        "box", (0.015, 0.03, 0.015), 1.0, (0.6, 0.2, 0.75, 1.0), CUBE_HALF, **_TODAY
    ),
}


def _pair(value: Any, where: str, low: float = -np.inf, high: float = np.inf) -> tuple:
    """``value`` as a (low, high) range inside [low, high], or a ValueError naming it."""
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(f"{where}: give a range [low, high], got {value!r}")
    lo, hi = (float(v) for v in value)
    if lo > hi:
        raise ValueError(f"{where}: low {lo:g} > high {hi:g}; give [low, high] with low <= high")
    if lo < low or hi > high:
        raise ValueError(f"{where}: [{lo:g}, {hi:g}] must lie within [{low:g}, {high:g}]")
    return lo, hi


def _intersect(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


@dataclass(frozen=True)
class ColourRange:
    """An HSV box of colours, each channel a [low, high] range in [0, 1]."""

    hue: tuple[float, float] = (0.0, 1.0)
    saturation: tuple[float, float] = (0.5, 0.9)
    value: tuple[float, float] = (0.5, 0.9)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _pair(getattr(self, f.name), f.name, 0.0, 1.0))

    def draw(self, u: np.ndarray) -> tuple[float, float, float, float]:
        """RGBA (alpha 1) of the HSV colour at uniform numbers ``u`` (3,) in [0, 1)."""
        h, s, v = (lo + (hi - lo) * x for (lo, hi), x in zip(self._boxes(), u, strict=True))
        return (*(float(c) for c in colorsys.hsv_to_rgb(h, s, v)), 1.0)

    def _boxes(self) -> tuple[tuple[float, float], ...]:
        return self.hue, self.saturation, self.value

    def intersects(self, other: ColourRange) -> bool:
        return all(_intersect(a, b) for a, b in zip(self._boxes(), other._boxes(), strict=True))

    @classmethod
    def of_rgba(cls, rgba: Sequence[float]) -> ColourRange:
        """The one-colour range of an RGBA colour."""
        hsv = colorsys.rgb_to_hsv(*rgba[:3])
        return cls(*((c, c) for c in hsv))


@dataclass(frozen=True)
class ObjectRanges:
    """What an object slot is drawn from: a shape kind from ``shapes`` (empty: the slot's
    own shape and size), a colour from ``colour`` (None: the slot's own colour) and a size
    ``scale`` in [low, high] (within `SCALE_LIMITS`)."""

    shapes: tuple[str, ...] = ()
    colour: ColourRange | None = None
    scale: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        _coerce_nested(self)
        if isinstance(self.shapes, str):
            raise ValueError(f"shapes: give a list of shape kinds, got {self.shapes!r}")
        unknown = [s for s in self.shapes if s not in SHAPE_SIZES]
        if unknown:
            raise ValueError(
                f"shapes: unknown shape kind {unknown[0]!r}; choose from {sorted(SHAPE_SIZES)}"
            )
        object.__setattr__(self, "shapes", tuple(self.shapes))
        object.__setattr__(self, "scale", _pair(self.scale, "scale", *SCALE_LIMITS))

    def draw(self, slot: str, u: np.ndarray) -> ObjectLook:
        """The look of ``slot`` at uniform numbers ``u`` (5,): shape, h, s, v, scale. The
        slot's own shape keeps its own contact (and spawn height at scale 1)."""
        look = SLOT_DEFAULTS[slot]
        if self.shapes:
            shape = _choice(self.shapes, u[0])
            look = ObjectLook(shape, SHAPE_SIZES[shape])
        scale = _span(self.scale, u[4])
        return replace(
            look,
            scale=scale,
            rgba=look.rgba if self.colour is None else self.colour.draw(u[1:4]),
            spawn_z=look.spawn_z if scale == 1.0 else None,
        )

    def looks(self, slot: str) -> tuple[set[str], ColourRange]:
        """The shape kinds and colours this can give ``slot``."""
        own = SLOT_DEFAULTS[slot]
        shapes = set(self.shapes) or {own.shape}
        return shapes, self.colour or ColourRange.of_rgba(own.rgba)


def _choice(items: Sequence[str], u: float) -> str:
    return items[min(int(u * len(items)), len(items) - 1)]


@dataclass(frozen=True)
class SceneRanges:
    """The ranges one episode's scene is drawn from; the defaults draw today's scene.

    Every ``*_deg``/``*_m`` range is an offset from today's value, drawn per axis;
    ``light_intensity`` scales the directional light and ``ambient`` the headlight.
    ``count`` [low, high] in 1..3 objects per episode (None: the world's ``n_objects``);
    ``task_object`` (None: ``objects``) replaces ``objects`` for the cube slot, which a
    held-out scene uses to show a task object that pre-training never does.
    """

    count: tuple[int, int] | None = None
    objects: ObjectRanges = field(default_factory=ObjectRanges)
    task_object: ObjectRanges | None = None
    table: ColourRange | None = None  # None: the wood texture
    floor: ColourRange | None = None  # None: today's grey
    light_yaw_deg: tuple[float, float] = (0.0, 0.0)  # about the vertical
    light_pitch_deg: tuple[float, float] = (0.0, 0.0)  # elevation above the table
    light_intensity: tuple[float, float] = (1.0, 1.0)
    ambient: tuple[float, float] = (1.0, 1.0)
    camera_shift_m: tuple[float, float] = (0.0, 0.0)  # world x, y, z
    camera_rotate_deg: tuple[float, float] = (0.0, 0.0)  # about the camera's x, y, z

    def __post_init__(self) -> None:
        _coerce_nested(self)
        if self.count is not None:
            lo, hi = _pair(self.count, "count")
            if lo != int(lo) or hi != int(hi) or lo < 1 or hi > len(OBJECT_NAMES):
                raise ValueError(
                    f"count: objects per episode must be whole numbers in "
                    f"1..{len(OBJECT_NAMES)}, got {list(self.count)}"
                )
            object.__setattr__(self, "count", (int(lo), int(hi)))
        limits = {
            "light_yaw_deg": (-180.0, 180.0),
            "light_pitch_deg": (-60.0, 60.0),
            "light_intensity": (0.0, 3.0),
            "ambient": (0.0, 2.0),
            "camera_shift_m": (-CAMERA_SHIFT_LIMIT, CAMERA_SHIFT_LIMIT),
            "camera_rotate_deg": (-CAMERA_ROTATE_LIMIT, CAMERA_ROTATE_LIMIT),
        }
        for name, (low, high) in limits.items():
            object.__setattr__(self, name, _pair(getattr(self, name), name, low, high))

    @property
    def is_default(self) -> bool:
        """True when these ranges draw nothing: every episode shows today's scene."""
        return self == SceneRanges()

    def object_ranges(self, slot: str) -> ObjectRanges:
        if slot == OBJECT_NAMES[0] and self.task_object is not None:
            return self.task_object
        return self.objects

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (lists for ranges) that `from_dict` reads back."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str = "scene") -> SceneRanges:
        """Ranges from config data (``world.scene``): unknown keys and bad ranges raise a
        ValueError naming the key, e.g. ``scene.objects.scale``."""
        return _build(cls, d or {}, where)


_NESTED = {
    (SceneRanges, "objects"): ObjectRanges,
    (SceneRanges, "task_object"): ObjectRanges,
    (SceneRanges, "table"): ColourRange,
    (SceneRanges, "floor"): ColourRange,
    (ObjectRanges, "colour"): ColourRange,
}


def _coerce_nested(obj: Any) -> None:
    """Nested parts given as mappings (``objects={"shapes": [...]}``) become dataclasses."""
    for (cls, key), nested in _NESTED.items():
        value = getattr(obj, key) if isinstance(obj, cls) else None
        if isinstance(value, Mapping):
            object.__setattr__(obj, key, _build(nested, value, key))


def _build(cls: type, d: Any, where: str) -> Any:
    if isinstance(d, cls):
        return d
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: expected a mapping of {cls.__name__} keys, got {d!r}")
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}; known keys: {known}")
    kwargs = {}
    for key, value in d.items():
        nested = _NESTED.get((cls, key))
        is_nested = nested is not None and value is not None
        kwargs[key] = _build(nested, value, f"{where}.{key}") if is_nested else value
    try:
        return cls(**kwargs)
    except ValueError as e:
        raise ValueError(f"{where}.{e}") from None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Scene:
    """One episode's scene. ``objects`` are the present objects in slot order (cube
    first); None colours and zero offsets keep today's values."""

    objects: tuple[ObjectLook, ...]
    table_rgba: tuple[float, float, float, float] | None = None
    floor_rgba: tuple[float, float, float, float] | None = None
    light_yaw_deg: float = 0.0
    light_pitch_deg: float = 0.0
    light_intensity: float = 1.0
    ambient: float = 1.0
    camera_shift_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    camera_rotate_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def slots(self) -> tuple[str, ...]:
        """The state slots of the present objects."""
        return OBJECT_NAMES[: len(self.objects)]

    @property
    def geometry(self) -> tuple[tuple[str, tuple[float, ...]], ...]:
        """(shape, geom size) per object: what the compiled model holds."""
        return tuple((o.shape, o.geom_size) for o in self.objects)


def default_scene(n_objects: int = 2) -> Scene:
    """Today's scene with the first ``n_objects`` objects."""
    if not 1 <= n_objects <= len(OBJECT_NAMES):
        raise ValueError(f"n_objects must be 1..{len(OBJECT_NAMES)}, got {n_objects}")
    return Scene(tuple(SLOT_DEFAULTS[name] for name in OBJECT_NAMES[:n_objects]))


_DRAWS = 1 + 5 * len(OBJECT_NAMES) + 3 + 3 + 4 + 6  # uniform numbers per scene


def sample_scene(rng: np.random.Generator, ranges: SceneRanges, n_objects: int = 2) -> Scene:
    """One scene drawn from ``ranges`` with ``rng`` (``n_objects`` objects unless
    ``ranges.count`` is set). Default ranges draw nothing from ``rng``; others draw a fixed
    number of uniforms, so widening one range leaves the other draws of a seed as they were."""
    if ranges.is_default:
        return default_scene(n_objects)
    u = iter(np.split(rng.random(_DRAWS), np.cumsum([1, 15, 3, 3, 4, 3])))
    n = n_objects
    (c,) = next(u)
    if ranges.count is not None:
        lo, hi = ranges.count
        n = lo + min(int(c * (hi - lo + 1)), hi - lo)
    per_slot = next(u).reshape(len(OBJECT_NAMES), 5)
    looks = tuple(
        ranges.object_ranges(slot).draw(slot, per_slot[i]) for i, slot in enumerate(OBJECT_NAMES)
    )
    table, floor = next(u), next(u)
    light = zip(_light_ranges(ranges), next(u), strict=True)
    yaw, pitch, intensity, ambient = (_span(bounds, x) for bounds, x in light)
    shift, rotate = next(u), next(u)
    return Scene(
        looks[:n],
        table_rgba=None if ranges.table is None else ranges.table.draw(table),
        floor_rgba=None if ranges.floor is None else ranges.floor.draw(floor),
        light_yaw_deg=yaw,
        light_pitch_deg=pitch,
        light_intensity=intensity,
        ambient=ambient,
        camera_shift_m=tuple(_span(ranges.camera_shift_m, x) for x in shift),
        camera_rotate_deg=tuple(_span(ranges.camera_rotate_deg, x) for x in rotate),
    )


def _light_ranges(r: SceneRanges) -> tuple[tuple[float, float], ...]:
    return r.light_yaw_deg, r.light_pitch_deg, r.light_intensity, r.ambient


def _span(bounds: tuple[float, float], u: float) -> float:
    return float(bounds[0] + (bounds[1] - bounds[0]) * u)


def can_produce(ranges: SceneRanges, obj: ObjectRanges) -> bool:
    """Whether ``ranges`` can draw, in any object slot, an object that ``obj`` can too
    (a shared shape kind, overlapping colour and scale ranges). A held-out object is one
    that the pre-training ranges cannot produce: ``not can_produce(pretrain, held_out)``.
    ``obj`` must name its shapes and colour."""
    if not obj.shapes or obj.colour is None:
        raise ValueError("can_produce needs an object with explicit shapes and colour")
    slots = OBJECT_NAMES if ranges.count is None else OBJECT_NAMES[: ranges.count[1]]
    for slot in slots:
        theirs = ranges.object_ranges(slot)
        shapes, colour = theirs.looks(slot)
        if (
            shapes & set(obj.shapes)
            and colour.intersects(obj.colour)
            and _intersect(theirs.scale, obj.scale)
        ):
            return True
    return False
