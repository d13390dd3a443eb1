"""Words for a drawn object (`ObjectLook`): its colour and shape, as an instruction names it
("the blue ball"), so that the instruction of a randomised scene says what the camera shows
instead of the fixed scene's "red cube"."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

from cosmos_env.sim.scene import ObjectLook

SHAPE_NOUNS = {
    "box": "cube",
    "cylinder": "cylinder",
    "sphere": "ball",
    "capsule": "capsule",
    "ellipsoid": "egg",
}
# Upper hue bound (HSV, in [0, 1)) of each colour name, in order around the circle.
HUE_NAMES = (
    (0.04, "red"),
    (0.11, "orange"),
    (0.19, "yellow"),
    (0.45, "green"),
    (0.53, "cyan"),
    (0.70, "blue"),
    (0.80, "purple"),
    (0.96, "magenta"),
    (1.01, "red"),
)


def colour_name(rgba: Sequence[float]) -> str:
    """A colour word for an RGB(A) colour in [0, 1]: grey, white or black when it has
    little saturation, else the hue's name."""
    hue, saturation, value = colorsys.rgb_to_hsv(*(float(c) for c in rgba[:3]))
    if value < 0.2:
        return "black"
    if saturation < 0.25:
        return "white" if value > 0.8 else "grey"
    return next(name for bound, name in HUE_NAMES if hue < bound)


def object_phrase(look: ObjectLook) -> str:
    """The object's colour and shape, e.g. "blue ball" ("purple block" for an elongated
    box); a look without a colour raises."""
    if look.rgba is None:
        raise ValueError("object_phrase needs a look with its colour (rgba)")
    noun = SHAPE_NOUNS[look.shape]
    if look.shape == "box" and max(look.size) > 1.5 * min(look.size):
        noun = "block"  # an elongated box (the block slot's bar) is no cube to the eye
    return f"{colour_name(look.rgba)} {noun}"
