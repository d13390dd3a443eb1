"""Gymnasium env of the tabletop with a language instruction per episode (Cosmos's
instruction-conditioned post-training, checkable against MuJoCo)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from cosmos_env.sim.instructions import (
    Instruction,
    encode_instruction,
    parse_instruction,
    split_instructions,
)
from cosmos_env.sim.object_names import object_phrase
from cosmos_env.sim.scene import SLOT_DEFAULTS
from cosmos_env.sim.state_layout import OBJECT_NAMES
from cosmos_env.sim.tabletop_env import TabletopEnv

SPLITS = ("seen", "held_out", "all")


class InstructedTabletopEnv(TabletopEnv):
    """The tabletop (`TabletopEnv`, three objects by default) where each episode follows an
    instruction over tasks x objects x goals (``sim/instructions.py``): "push the red cube
    into the green zone", "put the blue cylinder in the yellow bowl", "move the gripper to
    the left of the yellow bowl". With fewer objects, only the instructions that name the
    present ones are drawn.

    ## Instructions
    ``reset`` draws one from ``instructions`` (``"seen"``: the training combinations,
    ``"held_out"``: the combinations held out of training, ``"all"``) with the env's
    ``np_random``, or takes ``options={"instruction": text}``; ``instruction`` (and
    ``info["instruction"]``) is its text, naming the objects as the camera shows them.

    ## State, reward, success
    ``info["state"]`` is the tabletop state followed by the instruction's one-hot slots
    (``self.state_spec``'s ``instruction`` role); reward and success are the instruction's
    (`Instruction.dense_reward`, `Instruction.success`), read from that state.
    """

    def __init__(self, instructions: str = "seen", n_objects: int = 3, **kwargs: Any) -> None:
        if instructions not in SPLITS:
            raise ValueError(f"instructions must be one of {SPLITS}, got {instructions!r}")
        kwargs.pop("task", None)  # the registration's task: always "instruct" here
        super().__init__(task="instruct", n_objects=n_objects, **kwargs)
        seen, held = split_instructions()
        present = set(OBJECT_NAMES[:n_objects]) | {"gripper", "zone", "bowl"}
        pool = {"seen": seen, "held_out": held, "all": seen + held}[instructions]
        self.choices = tuple(i for i in pool if {i.object, i.goal} <= present)
        if not self.choices:
            raise ValueError(
                f"no {instructions} instruction names only the {n_objects} object(s) "
                f"{', '.join(OBJECT_NAMES[:n_objects])}: use more objects (n_objects=3)"
            )
        self.current: Instruction = self.choices[0]
        self.state_names = self.state_spec.dim_names()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        text = (options or {}).get("instruction")
        gym.Env.reset(self, seed=seed)
        self.world.reset(self.np_random)  # the scene first, then the instruction
        if text is None:
            self.current = self.choices[int(self.np_random.integers(len(self.choices)))]
        else:
            self.current = parse_instruction(str(text), self.phrases())
            if self.current not in self.choices:
                raise ValueError(
                    f"{text!r} is not among this env's instructions ({len(self.choices)}: "
                    "a held-out combination, or an object the scene lacks)"
                )
        return self._get_obs(), self._get_info()

    def phrases(self) -> dict[str, str]:
        """Object slot -> what the camera shows ("cylinder" -> "blue cylinder")."""
        return object_phrases(self.world.scene.objects)

    @property
    def instruction(self) -> str:
        return self.current.text(self.phrases())

    def _get_info(self) -> dict[str, Any]:
        state = np.concatenate([self.world.state(), encode_instruction(self.current)])
        success = bool(self.current.success(state))
        return {"state": state, "is_success": success, "instruction": self.instruction}


def object_phrases(looks) -> dict[str, str]:
    """Object slot -> what the camera shows of a scene's object ``looks`` in slot order
    ("cylinder" -> "blue cylinder")."""
    phrases = {}
    for name, look in zip(OBJECT_NAMES, looks, strict=False):
        if look.rgba is None:  # a drawn look that keeps its slot's own colour
            look = replace(look, rgba=SLOT_DEFAULTS[name].rgba)
        phrases[name] = object_phrase(look)
    return phrases
