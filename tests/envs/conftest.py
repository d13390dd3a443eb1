"""Shared by the env tests: world-model envs made from a checkpoint and closed afterwards."""

import gymnasium as gym
import pytest

import cosmos_env  # noqa: F401  (registers the envs)

ENV_ID = "cosmos_env/WorldModel-Tabletop-Push-v0"


@pytest.fixture
def open_envs():
    """``factory(checkpoint, **kwargs)`` -> ``gym.make(ENV_ID, checkpoint=...)``; every env
    made is closed when the test ends."""
    envs = []

    def factory(checkpoint, **kwargs):
        env = gym.make(ENV_ID, checkpoint=str(checkpoint), **kwargs)
        envs.append(env)
        return env

    yield factory
    for env in envs:
        env.close()
