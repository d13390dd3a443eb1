"""MJCF for the tabletop world, generated so that the objects (count, shapes, sizes) and
render size are parameters rather than copies of one XML file."""

from __future__ import annotations

import math
from collections.abc import Sequence

from cosmos_env.sim.scene import SLOT_DEFAULTS, ObjectLook, default_scene
from cosmos_env.sim.state_layout import OBJECT_NAMES
from cosmos_env.sim.tasks import BOWL_RADIUS, BOWL_RIM_Z, ZONE_RADIUS

FINGER_TRAVEL = 0.04  # metres per finger; opening = sum of both fingers
GRIPPER_HOME = (0.0, -0.12, 0.14)


def _numbers(values: Sequence[float]) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _object_bodies(objects: Sequence[ObjectLook]) -> str:
    bodies = []
    for i, (name, look) in enumerate(zip(OBJECT_NAMES[: len(objects)], objects, strict=True)):
        # the slot's own colour: a scene's colours are written into the compiled model
        rgba = _numbers(SLOT_DEFAULTS[name].rgba)
        geom = f'<geom type="{look.shape}" size="{_numbers(look.geom_size)}" rgba="{rgba}"'
        contact = f'friction="1.0 0.01 {look.rolling_friction:g}" condim="{look.condim}"'
        bodies.append(
            f'<body name="{name}" pos="{0.1 * i} 0.3 0.05">'
            f'<freejoint name="{name}_free"/>'
            f'{geom} mass="0.05" {contact}/></body>'
        )
    return "\n".join(bodies)


def _bowl_walls(n_walls: int = 12) -> str:
    # A ring of thin boxes: a bowl that contact handles robustly without a mesh.
    half_len = BOWL_RADIUS * math.tan(math.pi / n_walls) + 0.002
    walls = []
    for k in range(n_walls):
        angle = 2 * math.pi * k / n_walls
        x, y = BOWL_RADIUS * math.cos(angle), BOWL_RADIUS * math.sin(angle)
        walls.append(
            f'<geom type="box" size="0.004 {half_len:.4f} {BOWL_RIM_Z / 2}" '
            f'pos="{x:.4f} {y:.4f} {BOWL_RIM_Z / 2}" euler="0 0 {angle:.4f}" '
            'rgba="0.95 0.75 0.1 1"/>'
        )
    return "\n".join(walls)


def _header(physics_dt: float, offscreen: int) -> str:
    """Compiler, physics options, headless visual settings and the table's assets."""
    return f"""
<mujoco model="tabletop">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{physics_dt}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <visual>
    <quality shadowsize="0" offsamples="0"/>
    <global offwidth="{offscreen}" offheight="{offscreen}"/>
    <headlight ambient="0.45 0.45 0.45" diffuse="0.5 0.5 0.5" specular="0 0 0"/>
  </visual>
  <asset>
    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.6 0.65"
             rgb2="0.2 0.22 0.25" width="32" height="32"/>
    <texture name="wood" type="2d" builtin="flat" rgb1="0.72 0.58 0.42" width="8" height="8"/>
    <material name="table" texture="wood" specular="0.05"/>
  </asset>
"""


def _gripper(home: Sequence[float]) -> str:
    """The mocap target and the parallel-jaw gripper welded to it, at ``home`` (x, y, z)."""
    hx, hy, hz = home
    return f"""    <body name="mocap" mocap="true" pos="{hx} {hy} {hz}"/>
    <body name="gripper" pos="{hx} {hy} {hz}" gravcomp="1">
      <freejoint name="gripper_free"/>
      <geom name="palm" type="box" size="0.018 0.05 0.012" pos="0 0 0.03" mass="0.3"
            rgba="0.25 0.25 0.28 1"/>
      <geom name="wrist" type="cylinder" size="0.012 0.03" pos="0 0 0.07" mass="0.05"
            rgba="0.5 0.5 0.55 1" contype="0" conaffinity="0"/>
      <camera name="wrist" pos="0 -0.06 0.06" xyaxes="1 0 0 0 0.5 0.87" fovy="70"/>
      <body name="finger_left" pos="0 0.006 0" gravcomp="1">
        <joint name="finger_left" type="slide" axis="0 1 0" range="0 {FINGER_TRAVEL}"
               damping="2" armature="0.01"/>
        <geom type="box" size="0.012 0.005 0.022" pos="0 0.005 0" mass="0.02"
              friction="1.5 0.01 0.001" condim="4" rgba="0.7 0.7 0.72 1"/>
      </body>
      <body name="finger_right" pos="0 -0.006 0" gravcomp="1">
        <joint name="finger_right" type="slide" axis="0 -1 0" range="0 {FINGER_TRAVEL}"
               damping="2" armature="0.01"/>
        <geom type="box" size="0.012 0.005 0.022" pos="0 -0.005 0" mass="0.02"
              friction="1.5 0.01 0.001" condim="4" rgba="0.7 0.7 0.72 1"/>
      </body>
    </body>"""


def tabletop_xml(
    n_objects: int = 2,
    image_size: int = 64,
    physics_dt: float = 0.004,
    objects: Sequence[ObjectLook] | None = None,
) -> str:
    """The tabletop scene: table, mocap-driven parallel-jaw gripper, ``n_objects`` objects
    (cube first), a target zone and a bowl, a fixed front camera and a wrist camera.
    ``objects`` (one `ObjectLook` per object, slot order) replaces today's shapes and sizes
    (``scene.SLOT_DEFAULTS``); it must hold ``n_objects`` of them."""
    if not 1 <= n_objects <= len(OBJECT_NAMES):
        raise ValueError(f"n_objects must be 1..{len(OBJECT_NAMES)}, got {n_objects}")
    objects = default_scene(n_objects).objects if objects is None else tuple(objects)
    if len(objects) != n_objects:
        raise ValueError(f"objects holds {len(objects)} objects, not n_objects={n_objects}")
    offscreen = image_size  # a larger offscreen buffer costs render time for nothing
    return f"""{_header(physics_dt, offscreen)}  <worldbody>
    <light directional="true" pos="0.3 -0.3 1" dir="-0.3 0.3 -1" diffuse="0.4 0.4 0.4"/>
    <geom name="floor" type="plane" pos="0 0 -0.6" size="2 2 0.1" rgba="0.3 0.3 0.32 1"/>
    <geom name="table" type="box" pos="0 0.05 -0.02" size="0.32 0.28 0.02" material="table"
          friction="0.8 0.01 0.001"/>
    <camera name="front" pos="0 -0.47 0.45" xyaxes="1 0 0 0 0.7 0.71" fovy="45"/>
    <body name="zone" pos="0.1 0.1 0">
      <geom type="cylinder" size="{ZONE_RADIUS} 0.0008" pos="0 0 0.0008" rgba="0.2 0.75 0.3 1"
            contype="0" conaffinity="0"/>
    </body>
    <body name="bowl" pos="-0.12 0.12 0">
      <geom type="cylinder" size="{BOWL_RADIUS} 0.002" pos="0 0 0.002" rgba="0.95 0.75 0.1 1"/>
      {_bowl_walls()}
    </body>
{_gripper(GRIPPER_HOME)}
    {_object_bodies(objects)}
  </worldbody>
  <equality>
    <weld body1="mocap" body2="gripper" solref="0.02 1"/>
  </equality>
  <contact>
    <exclude body1="gripper" body2="finger_left"/>
    <exclude body1="gripper" body2="finger_right"/>
  </contact>
  <actuator>
    <position name="finger_left" joint="finger_left" kp="200" ctrlrange="0 {FINGER_TRAVEL}"
              forcerange="-8 8"/>
    <position name="finger_right" joint="finger_right" kp="200" ctrlrange="0 {FINGER_TRAVEL}"
              forcerange="-8 8"/>
  </actuator>
</mujoco>
"""
