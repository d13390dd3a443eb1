import gymnasium as gym
import numpy as np
import pytest

from cosmos_env.sim.gym_experts import gym_expert, reacher_fingertip, reacher_inverse_kinematics


def _final_distances(noise: float | None, episodes: int = 6) -> np.ndarray:
    """Fingertip-target distance (m) after a full Reacher-v5 episode; noise None: random."""
    env = gym.make("Reacher-v5")
    data, out = env.unwrapped.data, []
    for ep in range(episodes):
        env.reset(seed=ep)
        expert = None if noise is None else gym_expert("Reacher-v5", noise, seed=ep)
        rng = np.random.default_rng(ep)
        done = False
        while not done:
            state = np.r_[data.qpos, data.qvel]
            action = rng.uniform(-1, 1, 2) if expert is None else expert.act(state)
            *_, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
        tip = env.unwrapped.get_body_com("fingertip")[:2]
        np.testing.assert_allclose(reacher_fingertip(np.r_[data.qpos, data.qvel]), tip, atol=1e-5)
        out.append(np.linalg.norm(tip - data.qpos[2:4]))
    env.close()
    return np.asarray(out)


def test_reacher_expert_reaches_the_target_and_noise_grades_it():
    expert, noisy, random = (_final_distances(n) for n in (0.0, 0.5, None))
    assert expert.max() < 0.005  # within half a centimetre of every target
    assert expert.mean() < 0.05 * random.mean()
    assert expert.mean() < noisy.mean() < random.mean()


def test_reacher_inverse_kinematics_puts_the_fingertip_on_the_target():
    for target in ([0.15, 0.05], [-0.1, -0.12], [0.0, 0.2]):
        for sign in (1.0, -1.0):
            angles = reacher_inverse_kinematics(np.array(target), sign)
            np.testing.assert_allclose(reacher_fingertip(np.r_[angles, 0, 0]), target, atol=1e-9)


def test_expert_actions_stay_in_the_box_and_repeat_under_a_seed():
    state = np.r_[0.3, -0.2, 0.1, 0.1, 0.5, -0.5, 0.0, 0.0]
    a = [gym_expert("Reacher-v5", 0.7, seed=3).act(state) for _ in range(2)]
    np.testing.assert_array_equal(a[0], a[1])
    assert a[0].dtype == np.float32 and np.all(np.abs(a[0]) <= 1.0)
    with pytest.raises(ValueError, match="noise must be in"):
        gym_expert("Reacher-v5", 1.5)


def test_envs_without_an_expert_are_refused():
    with pytest.raises(ValueError, match=r"no scripted expert for 'Hopper-v5'.*Reacher-v5"):
        gym_expert("Hopper-v5")


def _pusher_returns(noise: float | None, episodes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(object-goal distance at the end minus at the start (m), return) per Pusher-v5
    episode of 100 steps; noise None: the zero action."""
    env = gym.make("Pusher-v5")
    pusher, moved, returns = env.unwrapped, [], []
    data = pusher.data
    for ep in range(episodes):
        env.reset(seed=ep)
        expert = None if noise is None else gym_expert("Pusher-v5", noise, seed=ep)
        gap = lambda: np.linalg.norm(pusher.get_body_com("object") - pusher.get_body_com("goal"))  # noqa: E731
        start, total, done = gap(), 0.0, False
        while not done:
            action = np.zeros(7) if expert is None else expert.act(np.r_[data.qpos, data.qvel])
            _, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        moved.append(gap() - start)
        returns.append(total)
    env.close()
    return np.asarray(moved), np.asarray(returns)


def test_pusher_expert_pushes_the_object_towards_the_goal_and_noise_grades_it():
    (moved, expert), (_, idle), (_, random) = (_pusher_returns(n) for n in (0.0, None, 1.0))
    assert moved.mean() < -0.03  # the object ends nearer the goal
    assert expert.mean() > idle.mean() > random.mean()
    action = gym_expert("Pusher-v5", 1.0, seed=0).act(np.zeros(22))
    assert action.shape == (7,) and np.all(np.abs(action) <= 2.0)
