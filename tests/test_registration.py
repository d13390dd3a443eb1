"""Contract tests: every registered env passes Gymnasium's and Stable-Baselines3's checkers."""

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import cosmos_env  # noqa: F401  (registers the envs)
from cosmos_env.registration import GENERIC_ID, registered_env_ids

# The generic id runs any release: the checkers run it on the shipped push model.
KWARGS = {GENERIC_ID: {"checkpoint": "diffusion-push"}}


def test_registry_lists_tabletop_tasks():
    ids = registered_env_ids()
    assert "cosmos_env/Tabletop-Push-v0" in ids
    assert "cosmos_env/Tabletop-PickPlace-v0" in ids
    assert all(env_id in gym.registry for env_id in ids)


@pytest.mark.parametrize("env_id", registered_env_ids())
def test_gymnasium_check_env(env_id):
    env = gym.make(env_id, **KWARGS.get(env_id, {}))
    gym_check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", registered_env_ids())
def test_sb3_check_env(env_id):
    env = gym.make(env_id, **KWARGS.get(env_id, {}))
    sb3_check_env(env, warn=True)
    env.close()
