"""Scripted controllers for Gymnasium MuJoCo worlds, the counterpart of the tabletop's
``experts.py``: each acts on the recorded state ``concat(qpos, qvel)`` and returns an
action in the env's own units, degraded by ``noise`` in [0, 1] as `ScriptedExpert` is
(noise 0: the controller; 1: uniform random actions).

`gym_expert` looks one up by env id; an env without one raises.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Reacher-v5: two links of 0.1 m and 0.11 m (to the fingertip) from the origin; qpos is
# (joint0, joint1, target_x, target_y), qvel the same four; torques in [-1, 1].
REACHER_LINKS = (0.1, 0.11)
REACHER_KP = 0.3  # torque per radian of joint error (the motors' gear is 200)
REACHER_KD = 0.05  # torque per rad/s of joint speed
REACHER_ELBOW_LIMIT = 3.0  # rad, joint1's range


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def reacher_inverse_kinematics(target: np.ndarray, elbow_sign: float) -> np.ndarray:
    """Joint angles (2,) that put the fingertip on ``target`` (x, y), elbow bent to the side
    of ``elbow_sign``; a target out of reach gives the arm stretched towards it."""
    l1, l2 = REACHER_LINKS
    x, y = float(target[0]), float(target[1])
    cos_elbow = np.clip((x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2), -1.0, 1.0)
    elbow = elbow_sign * np.arccos(cos_elbow)
    shoulder = np.arctan2(y, x) - np.arctan2(l2 * np.sin(elbow), l1 + l2 * np.cos(elbow))
    return np.array([shoulder, np.clip(elbow, -REACHER_ELBOW_LIMIT, REACHER_ELBOW_LIMIT)])


def reacher_controller(state: np.ndarray) -> np.ndarray:
    """PD torques (2,) in [-1, 1] towards the inverse-kinematics joint angles of the target,
    choosing the elbow side nearer the arm's current pose."""
    state = np.asarray(state, np.float64)
    angles, target, speeds = state[:2], state[2:4], state[4:6]
    options = [reacher_inverse_kinematics(target, sign) for sign in (1.0, -1.0)]
    errors = [np.r_[_wrap(q[0] - angles[0]), q[1] - angles[1]] for q in options]
    error = min(errors, key=lambda e: float(np.abs(e).sum()))
    return np.clip(REACHER_KP * error - REACHER_KD * speeds, -1.0, 1.0)


def reacher_fingertip(state: np.ndarray) -> np.ndarray:
    """Forward kinematics: the fingertip's (x, y) for Reacher-v5 states (..., 8)."""
    state = np.asarray(state, np.float64)
    l1, l2 = REACHER_LINKS
    a, b = state[..., 0], state[..., 0] + state[..., 1]
    return np.stack([l1 * np.cos(a) + l2 * np.cos(b), l1 * np.sin(a) + l2 * np.sin(b)], -1)


# Pusher-v5: a 7-joint arm in zero gravity pushes a cylinder (radius 0.05 m) to a goal.
PUSHER_KP = 5.0  # desired fingertip speed (m/s) per metre of error, before the 1 m/s cap
PUSHER_KV = 1.0  # torque per rad/s of joint-speed error
PUSHER_BEHIND = 0.06  # m: the approach point behind the object, on the goal line
PUSHER_ALIGNED = 0.04  # m: lateral offset from the goal line within which it pushes
PUSHER_TORQUE = 1.0  # of the motors' 2.0: full torque costs more control reward than it gains


class PusherController:
    """Push-to-goal for Pusher-v5 on its state ``concat(qpos, qvel)`` (22,): the fingertip
    goes to a point behind the object on the object-goal line, then drives through it.

    Operational-space control: forward kinematics and the fingertip Jacobian on a scratch
    copy of the env's model, damped least squares for the joint speeds (joints at a limit
    that the solution would push further are dropped and it is solved again), and torques
    proportional to the joint-speed error. It moves the object towards the goal in most
    episodes; it is a graded-suite expert, not an optimal pusher.
    """

    def __init__(self) -> None:
        import gymnasium as gym
        import mujoco

        self._mujoco = mujoco
        env = gym.make("Pusher-v5").unwrapped
        self.model = env.model
        self.data = mujoco.MjData(self.model)
        body = lambda name: mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, name)  # noqa: E731
        self.tip, self.object, self.goal = body("tips_arm"), body("object"), body("goal")
        self.low, self.high = self.model.jnt_range[:7, 0], self.model.jnt_range[:7, 1]
        env.close()

    def target(self, tip: np.ndarray, obj: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """Where the fingertip should head (3,): behind the object, or through it."""
        line = goal[:2] - obj[:2]
        line = line / (np.linalg.norm(line) + 1e-8)
        along = float(np.dot(tip[:2] - obj[:2], line))
        lateral = float(np.linalg.norm(tip[:2] - obj[:2] - along * line))
        if along < -0.02 and lateral < PUSHER_ALIGNED:
            return np.r_[obj[:2] + 0.1 * line, obj[2]]
        return np.r_[obj[:2] - PUSHER_BEHIND * line, obj[2]]

    def joint_speeds(self, jacobian: np.ndarray, q: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Damped least-squares joint speeds (7,) for fingertip velocity ``v`` (3,)."""
        free = np.ones(7, bool)
        for _ in range(3):
            jac = jacobian * free
            qd = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), v)
            blocked = ((q > self.high - 0.05) & (qd > 0)) | ((q < self.low + 0.05) & (qd < 0))
            if not (blocked & free).any():
                break
            free &= ~blocked
        return qd

    def __call__(self, state: np.ndarray) -> np.ndarray:
        mujoco, data = self._mujoco, self.data
        state = np.asarray(state, np.float64)
        data.qpos[:], data.qvel[:] = state[:11], state[11:22]
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_comPos(self.model, data)
        tip = data.xpos[self.tip].copy()
        v = PUSHER_KP * (self.target(tip, data.xpos[self.object], data.xpos[self.goal]) - tip)
        v = v * min(1.0, 1.0 / (np.linalg.norm(v) + 1e-8))
        jacobian = np.zeros((3, self.model.nv))
        mujoco.mj_jacBody(self.model, data, jacobian, None, self.tip)
        qd = self.joint_speeds(jacobian[:, :7], state[:7], v)
        return np.clip(PUSHER_KV * (qd - state[11:18]), -PUSHER_TORQUE, PUSHER_TORQUE)


Controller = Callable[[np.ndarray], np.ndarray]
# env id -> (controller factory, action dims, action bound): the env's own Box is
# [-bound, bound] per dimension
CONTROLLERS: dict[str, tuple[Callable[[], Controller], int, float]] = {
    "Reacher-v5": (lambda: reacher_controller, 2, 1.0),
    "Pusher-v5": (PusherController, 7, 2.0),
}


class GymExpert:
    """A controller degraded by ``noise``: with probability ``noise`` an action is replaced
    by a uniform random one in [low, high], otherwise it gets Gaussian noise of std
    ``0.5 * noise`` of the half-range; actions clipped to the Box."""

    def __init__(
        self,
        controller: Callable[[np.ndarray], np.ndarray],
        low: np.ndarray,
        high: np.ndarray,
        noise: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be in [0, 1], got {noise}")
        self.controller = controller
        self.low, self.high = np.asarray(low, np.float64), np.asarray(high, np.float64)
        self.noise = float(noise)
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, state: np.ndarray) -> np.ndarray:
        """Action float32 (A,) in the env's units for a state ``concat(qpos, qvel)``."""
        action = np.asarray(self.controller(np.asarray(state)), np.float64)
        if self.noise > 0:
            if self.rng.random() < self.noise:
                action = self.rng.uniform(self.low, self.high)
            else:
                half = (self.high - self.low) / 2
                action = action + self.rng.normal(0.0, 0.5 * self.noise, action.shape) * half
        return np.clip(action, self.low, self.high).astype(np.float32)


def gym_expert(env_id: str, noise: float = 0.0, seed: int | None = None) -> GymExpert:
    """The scripted expert of Gymnasium env ``env_id``; a ValueError for an env without."""
    if env_id not in CONTROLLERS:
        raise ValueError(
            f"no scripted expert for {env_id!r} (there is one for {sorted(CONTROLLERS)}); "
            "use policy=random or policy=module:factory"
        )
    factory, dims, bound = CONTROLLERS[env_id]
    return GymExpert(factory(), -np.full(dims, bound), np.full(dims, bound), noise, seed)
