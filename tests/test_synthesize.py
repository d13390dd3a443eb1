"""``python -m cosmos_env synthesize``: policies rolled out in a world model into a store
marked synthetic, deterministic under the seed, with the MuJoCo task's spec and reward."""

import json

import numpy as np
import pytest

from cosmos_env.__main__ import main
from cosmos_env.data import EpisodeStore
from cosmos_env.sim.tabletop_world import BRIDGE_ACTION_SPEC
from cosmos_env.sim.tasks import get_task

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthesize(out, checkpoint, capsys, *extra: str) -> dict:
    args = ["synthesize", f"checkpoint={checkpoint}", "episodes=2", "max_steps=4"]
    assert main([*args, "noise=0.3", f"out={out}", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_synthesize_writes_a_synthetic_store_from_the_world_model(
    tiny_world_model_dir, tmp_path, capsys
):
    summary = synthesize(tmp_path / "a.zarr", tiny_world_model_dir, capsys)
    store = EpisodeStore.open(summary["out"])
    assert store.n_episodes == 2 and store.n_frames == 2 * 5 and store.is_complete
    extra = store.attrs["extra"]
    assert extra["synthetic"] is True and extra["synthesize"]["noise"] == 0.3
    assert extra["world_model"]["backend"] == "diffusion"
    assert extra["world_model"]["checkpoint"] == tiny_world_model_dir.name
    assert store.action_spec == BRIDGE_ACTION_SPEC  # the MuJoCo task's action, same units
    assert store.instruction(0) == get_task("push").instruction
    assert store.source_id(1).startswith("world-model-diffusion-push/")
    ep = store.load_episode(0)
    # Rewards are the task's reward of the world model's predicted states.
    expected = get_task("push").reward(ep["state"][1:])
    np.testing.assert_allclose(ep["reward"][1:], expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(ep["action"]) <= 1.0) and not ep["action"][-1].any()

    again = EpisodeStore.open(synthesize(tmp_path / "b.zarr", tiny_world_model_dir, capsys)["out"])
    for key in ("rgb", "state", "action"):  # same seed, same episodes
        assert np.array_equal(again.load_episode(1)[key], store.load_episode(1)[key])


def test_synthesize_refuses_a_world_model_of_another_task(tiny_world_model_dir, tmp_path):
    with pytest.raises(ValueError, match="is a world model of 'tabletop-push', but this env id"):
        main(
            [
                "synthesize",
                f"checkpoint={tiny_world_model_dir}",
                "task=pick_place",
                f"out={tmp_path / 'x.zarr'}",
            ]
        )
