"""PPO policies: a release (safetensors + JSON) round-trips with identical actions, and an
SB3 .zip, which unpickles on load, is refused unless the caller trusts it."""

import base64
import json
import pathlib
import pickle
import zipfile

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

from cosmos_env.checkpoint import CheckpointError
from cosmos_env.envs.sb3 import make_sb3_vec_env
from policies.ppo import PPOPolicy, main
from policies.sb3_release import space_from_json, space_to_json
from policies.zoo import make_policy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OBS = np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)


class Touch:
    """Unpickling this creates ``path``: what any code in a pickle could do instead."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def __reduce__(self):
        return (pathlib.Path.touch, (self.path,))


def crafted_zip(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """An SB3-style .zip whose ``data`` entry holds a pickled ``policy_class`` that creates
    ``marker`` when SB3's loader unpickles it."""
    payload = base64.b64encode(pickle.dumps(Touch(marker))).decode()
    data = {"policy_class": {":type:": "<class 'type'>", ":serialized:": payload}}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("data", json.dumps(data))
        z.writestr("_stable_baselines3_version", "2.4.0")
    return path


@pytest.fixture(scope="module")
def trained(tiny_world_model_dir):
    """A tiny PPO model trained for 16 steps in the tiny world model."""
    venv = make_sb3_vec_env(num_envs=2, checkpoint=str(tiny_world_model_dir), max_episode_steps=3)
    model = PPO(
        "CnnPolicy",
        venv,
        n_steps=8,
        batch_size=8,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={"features_extractor_kwargs": {"features_dim": 32}},
    )
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.learn(16)
    venv.close()
    return model


def test_a_crafted_zip_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"
    zip_path = crafted_zip(tmp_path / "evil.zip", marker)
    with pytest.raises(CheckpointError, match="unpickles its entries, which runs arbitrary code"):
        PPOPolicy.load(zip_path)
    for spec in ({}, {"trust_remote_code": False}):
        with pytest.raises(CheckpointError, match="--convert"):
            make_policy({"kind": "ppo", "checkpoint": str(zip_path), **spec})
    with pytest.raises(ValueError, match="must be true or false"):
        make_policy({"kind": "ppo", "checkpoint": str(zip_path), "trust_remote_code": "yes"})
    assert not marker.exists()
    # The payload is live: trusting the file runs it, which is why the flag says so.
    with pytest.raises(Exception):  # noqa: B017 (the zip has no policy; the code ran first)
        PPOPolicy.load(zip_path, trust_remote_code=True)
    assert marker.exists()


def test_release_round_trips_with_identical_actions(trained, tmp_path):
    expected = np.clip(trained.predict(OBS, deterministic=True)[0], -1, 1)
    PPOPolicy(trained.policy).save(tmp_path / "release")
    config = json.loads((tmp_path / "release" / "config.json").read_text())
    assert config["policy_class"] == "ActorCriticCnnPolicy"
    assert config["policy_kwargs"]["features_extractor_class"] == "NatureCNN"
    assert set(config["sha256"]) == {"model.safetensors"}
    policy = make_policy({"kind": "ppo", "checkpoint": str(tmp_path / "release")})
    assert policy.policy.observation_space == trained.policy.observation_space
    assert policy.policy.action_space == trained.policy.action_space
    actions = policy.act_batch(OBS)
    assert actions.dtype == np.float32 and actions.shape == (4, 7)
    np.testing.assert_array_equal(actions, expected)


def test_a_trusted_zip_converts_to_the_same_policy(trained, tmp_path):
    trained.save(tmp_path / "trusted.zip")
    main(["--convert", str(tmp_path / "trusted.zip"), "--out", str(tmp_path / "converted")])
    converted = PPOPolicy.load(tmp_path / "converted")
    direct = PPOPolicy.load(tmp_path / "trusted.zip", trust_remote_code=True)
    np.testing.assert_array_equal(converted.act_batch(OBS), direct.act_batch(OBS))


def test_a_release_names_only_allowed_classes(trained, tmp_path):
    directory = PPOPolicy(trained.policy).save(tmp_path / "release")
    good = json.loads((directory / "config.json").read_text())
    edits = {
        "policy_class": ("os.system", "may not load"),
        "activation_fn": ("builtins.eval", "activation_fn='builtins.eval'; allowed"),
        "kind": ("bc-policy", "not a 'sb3-policy' release"),
    }
    for key, (value, message) in edits.items():
        config = json.loads(json.dumps(good))
        if key == "activation_fn":
            config["policy_kwargs"][key] = value
        else:
            config[key] = value
        (directory / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match=message):
            PPOPolicy.load(directory)


def test_spaces_round_trip_through_plain_json():
    low, high = np.array([-1.0, 0.0], np.float32), np.array([1.0, np.inf], np.float32)
    box = spaces.Box(low, high, dtype=np.float32)
    for space in (
        spaces.Box(0, 255, (3, 8, 8), np.uint8),
        box,
        spaces.Discrete(5, start=1),
        spaces.MultiDiscrete([3, 4]),
        spaces.MultiBinary(6),
        spaces.Dict({"image": spaces.Box(0, 255, (8, 8, 3), np.uint8), "state": box}),
    ):
        assert space_from_json(json.loads(json.dumps(space_to_json(space)))) == space
    with pytest.raises(ValueError, match="not numeric"):
        space_from_json({"type": "Box", "shape": [1], "dtype": "object", "low": 0, "high": 1})
