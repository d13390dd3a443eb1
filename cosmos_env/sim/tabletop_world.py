"""The tabletop physics world without any Gymnasium plumbing: scene and layout sampling,
the end-effector action, the state vector and rendering."""

from __future__ import annotations

import cv2
import mujoco  # MUJOCO_GL was set by cosmos_env/__init__.py, imported first
import numpy as np

from cosmos_env.data.spec import ActionSpec
from cosmos_env.sim import state_layout as sl
from cosmos_env.sim.camera import camera_projection
from cosmos_env.sim.offscreen import OffscreenRenderer
from cosmos_env.sim.scene import Scene, SceneRanges, default_scene, sample_scene
from cosmos_env.sim.scene_appearance import SceneAppearance
from cosmos_env.sim.tabletop_xml import FINGER_TRAVEL, GRIPPER_HOME, tabletop_xml
from cosmos_env.sim.tasks import BOWL_RADIUS, ZONE_RADIUS

# Bridge V2's 7-d end-effector delta at 5 Hz; the gripper entry is absolute (0 closed, 1 open).
BRIDGE_ACTION_SPEC = ActionSpec(
    names=("dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"),
    units=("m", "m", "m", "rad", "rad", "rad", "open_fraction"),
    low=(-0.04, -0.04, -0.04, -0.25, -0.25, -0.25, 0.0),
    high=(0.04, 0.04, 0.04, 0.25, 0.25, 0.25, 1.0),
)

WORKSPACE_LOW = np.array([-0.25, -0.2, 0.025])  # finger tips stay just above the table
WORKSPACE_HIGH = np.array([0.25, 0.28, 0.25])
MAX_TILT = 0.3  # rad; roll and pitch are clamped so the gripper stays roughly vertical
MAX_YAW = np.pi / 2
OBJECT_REGION_LOW = np.array([-0.2, -0.1])
OBJECT_REGION_HIGH = np.array([0.2, 0.22])


def _euler_to_quat(roll: float, pitch: float, yaw: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.array([roll, pitch, yaw]), "xyz")
    return quat


class TabletopWorld:
    """A table, a floating parallel-jaw gripper and up to three objects.

    Each `reset` draws the episode's `Scene` from ``scene`` (``sim/scene.py``): a new
    geometry (object count, shapes, sizes) recompiles the model, keeping the renderer's
    GL context; colours, light and camera pose are written into the compiled model.
    ``self.scene`` is the current episode's scene.

    Args:
        n_objects: 1..3 objects (unless ``scene.count`` draws it); the cube is always the
            task object.
        scene: the ranges each episode's scene is drawn from; None: today's fixed scene.
        image_size: side of the square rendered frames, in pixels.
        supersample: render at ``supersample`` times the size and area-average down, so
            edges are anti-aliased as a real camera's pixels are (and easier to tokenize).
        control_hz: actions per second (Bridge: 5 Hz); physics substeps fill the gap.
        physics_dt: MuJoCo timestep in seconds.
    """

    def __init__(
        self,
        n_objects: int = 2,
        image_size: int = 64,
        control_hz: float = 5.0,
        physics_dt: float = 0.004,
        supersample: int = 2,
        scene: SceneRanges | None = None,
    ) -> None:
        self.n_objects = n_objects
        self.image_size = image_size
        self.control_hz = control_hz
        self.supersample = supersample
        self.physics_dt = physics_dt
        self.scene_ranges = scene if scene is not None else SceneRanges()
        self.substeps = max(1, round(1.0 / (control_hz * physics_dt)))
        self._renderer: OffscreenRenderer | None = None
        self._euler = np.zeros(3)  # commanded (roll, pitch, yaw) of the gripper
        self._build(default_scene(n_objects))

    def _build(self, scene: Scene) -> None:
        """Compile the model of ``scene``'s geometry (objects, shapes, sizes)."""
        xml = tabletop_xml(
            len(scene.objects), self.image_size * self.supersample, self.physics_dt, scene.objects
        )
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)
        self._geometry = scene.geometry
        self._zone_body = self.model.body("zone").id
        self._bowl_body = self.model.body("bowl").id
        self._object_names = scene.slots
        self._appearance = SceneAppearance(self.model, scene.slots)
        if self._renderer is not None:
            self._renderer.set_model(self.model)
        self.scene = scene

    def _set_scene(self, scene: Scene) -> None:
        if scene.geometry != self._geometry:
            self._build(scene)
        self._appearance.apply(scene)
        self.scene = scene

    # -- layout ---------------------------------------------------------------------------
    def reset(self, rng: np.random.Generator) -> None:
        """Draw the episode's scene (nothing is drawn for the default ranges), then place
        zone, bowl and objects at random non-overlapping spots; gripper home, open."""
        self._set_scene(sample_scene(rng, self.scene_ranges, self.n_objects))
        mujoco.mj_resetData(self.model, self.data)
        spots = self._sample_spots(rng)
        self.model.body_pos[self._zone_body, :2] = spots["zone"]
        self.model.body_pos[self._bowl_body, :2] = spots["bowl"]
        for name, look in zip(self._object_names, self.scene.objects, strict=True):
            qadr = self.model.jnt_qposadr[self.model.joint(f"{name}_free").id]
            yaw = rng.uniform(-np.pi, np.pi)
            self.data.qpos[qadr : qadr + 3] = [*spots[name], look.drop_z + 0.001]
            self.data.qpos[qadr + 3 : qadr + 7] = _euler_to_quat(0.0, 0.0, yaw)
        home = np.array(GRIPPER_HOME) + np.r_[rng.uniform(-0.05, 0.05, 2), 0.0]
        self._euler[:] = 0.0
        self._set_gripper_pose(home)
        self.data.mocap_pos[0] = home
        self.data.mocap_quat[0] = _euler_to_quat(*self._euler)
        self.data.ctrl[:] = FINGER_TRAVEL
        fingers = [self.model.joint(j).id for j in ("finger_left", "finger_right")]
        self.data.qpos[self.model.jnt_qposadr[fingers]] = FINGER_TRAVEL
        mujoco.mj_forward(self.model, self.data)
        # Let objects settle so the first frame shows a resting scene.
        for _ in range(10):
            mujoco.mj_step(self.model, self.data)

    def _sample_spots(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        # (name, clearance radius); the bowl and zone need room around them.
        wanted = [("zone", ZONE_RADIUS), ("bowl", BOWL_RADIUS + 0.01)]
        wanted += [(name, 0.035) for name in self._object_names]
        clearance = dict(wanted)
        for _attempt in range(200):
            spots: dict[str, np.ndarray] = {}
            for name, radius in wanted:
                for _try in range(50):
                    xy = rng.uniform(OBJECT_REGION_LOW + radius, OBJECT_REGION_HIGH - radius)
                    if all(
                        np.linalg.norm(xy - other) > radius + clearance[o] + 0.01
                        for o, other in spots.items()
                    ):
                        spots[name] = xy
                        break
            if len(spots) == len(wanted):
                return spots
        raise RuntimeError("could not place the tabletop objects without overlap")

    def _set_gripper_pose(self, pos: np.ndarray) -> None:
        qadr = self.model.jnt_qposadr[self.model.joint("gripper_free").id]
        self.data.qpos[qadr : qadr + 3] = pos
        self.data.qpos[qadr + 3 : qadr + 7] = _euler_to_quat(*self._euler)

    # -- dynamics -------------------------------------------------------------------------
    def apply_action(self, physical_action: np.ndarray) -> None:
        """Advance one control step (1/control_hz s) under a physical 7-d action
        ``[dx, dy, dz (m), droll, dpitch, dyaw (rad), gripper open fraction in 0..1]``."""
        a = np.asarray(physical_action, dtype=np.float64)
        start = self.data.mocap_pos[0].copy()
        target = np.clip(start + a[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
        self._euler = np.clip(
            self._euler + a[3:6], [-MAX_TILT, -MAX_TILT, -MAX_YAW], [MAX_TILT, MAX_TILT, MAX_YAW]
        )
        self.data.mocap_quat[0] = _euler_to_quat(*self._euler)
        self.data.ctrl[:] = np.clip(a[6], 0.0, 1.0) * FINGER_TRAVEL
        # Move the mocap target along a straight line so the weld never jerks the gripper.
        for k in range(1, self.substeps + 1):
            self.data.mocap_pos[0] = start + (target - start) * min(1.0, 2.0 * k / self.substeps)
            mujoco.mj_step(self.model, self.data)

    # -- observation ----------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """The task state vector, float32 (STATE_DIM,); layout in ``state_layout``."""
        s = np.zeros(sl.STATE_DIM, dtype=np.float32)
        grip = self.data.body("gripper")
        s[sl.slot("gripper_pos")] = grip.xpos
        s[sl.slot("gripper_quat")] = grip.xquat
        s[sl.slot("gripper_opening")] = self.gripper_opening()
        for name in self._object_names:
            body = self.data.body(name)
            s[sl.slot(f"{name}_pos")] = body.xpos
            s[sl.slot(f"{name}_quat")] = body.xquat
            s[sl.slot(f"{name}_present")] = 1.0
        s[sl.slot("zone_pos")] = self.model.body_pos[self._zone_body, :2]
        s[sl.slot("bowl_pos")] = self.model.body_pos[self._bowl_body, :2]
        return s

    def gripper_opening(self) -> float:
        left = self.data.joint("finger_left").qpos[0]
        right = self.data.joint("finger_right").qpos[0]
        return float(left + right)

    def projection(self, camera: str = "front") -> np.ndarray:
        """The camera's (3, 4) pinhole projection to normalised image coordinates (see
        ``sim.camera.camera_projection``) in the current scene: the front camera is fixed
        to the world, but a scene's camera jitter moves it from episode to episode."""
        mujoco.mj_forward(self.model, self.data)
        return camera_projection(self.model, self.data, camera)

    def render(self, camera: str = "front") -> np.ndarray:
        """RGB frame, uint8 (image_size, image_size, 3)."""
        if self._renderer is None:
            size = self.image_size * self.supersample
            self._renderer = OffscreenRenderer(self.model, size, size)
        frame = self._renderer.render(self.data, camera)
        if self.supersample == 1:
            return frame
        size = (self.image_size, self.image_size)
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
