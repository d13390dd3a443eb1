"""benchmarks/worlds.py and benchmarks/world_ranking.py on a tiny world model: every key the
issue names is there and in range, the simulator and the world model start identical, and
the reports render."""

import json

import numpy as np
import pytest
from benchmark_modules import load_benchmark


@pytest.fixture(scope="module")
def tiny(tiny_world_model_dir):
    from cosmos_env.dynamics.release import load_world_model

    return load_world_model(tiny_world_model_dir)


def test_worlds_only_names_a_world_it_knows(tmp_path, monkeypatch):
    worlds = load_benchmark("worlds")
    argv = ["worlds.py", "--only", "cosmos_env/WorldModel-Nowhere-v0", "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", argv)
    with pytest.raises(SystemExit, match="WorldModel-Nowhere-v0.*not among the worlds"):
        worlds.main()
    assert not (tmp_path / "worlds.json").exists()


def test_worlds_measures_fidelity_rewards_and_speed(tiny):
    worlds = load_benchmark("worlds")
    row = worlds.measure(tiny, episodes=2, seconds=0.01)
    for key in ("psnr_h1", "psnr_mean_h1_16", "psnr_h16", "copy_last_psnr_h16"):
        assert np.isfinite(row[key]), key
    assert row["gain_h16_db"] == pytest.approx(row["psnr_h16"] - row["copy_last_psnr_h16"])
    assert -1 <= row["reward_pearson"] <= 1 and -1 <= row["return_pearson"] <= 1
    assert 0 <= row["success_agreement"] <= 1  # the tabletop has success
    assert row["ratio_b64"] == pytest.approx(row["fps_b64"] / row["simulator_fps"])
    assert row["ratio_b64_compiled"] > 0
    low, high = row["reward_pearson_ci95"]
    assert (low <= row["reward_pearson"] <= high) or not np.isfinite(low)
    assert row["score_sources"]["reward"] == "world" and row["world"] == "tabletop-push"
    table = worlds.table({"worlds": {"tabletop-push": row}})
    assert "| tabletop-push |" in table and "ratio b64 compiled" in table
    json.dumps(row)


def test_the_shipped_worlds_are_the_per_world_ids():
    worlds = load_benchmark("worlds")
    targets = worlds.targets()
    assert targets["cosmos_env/WorldModel-Tabletop-Push-v0"] == "diffusion-push"
    assert targets["cosmos_env/WorldModel-Reacher-v5"] == "diffusion-reacher"
    assert targets["cosmos_env/WorldModel-Pusher-v5"] == "diffusion-pusher"


def test_world_ranking_scores_a_graded_suite_from_the_same_starts(tiny):
    ranking = load_benchmark("world_ranking")
    result = ranking.rank(tiny, episodes=2, steps=6)
    assert list(result["policies"]) == [f"scripted-{n}" for n in ranking.NOISES] + ["zero"]
    assert result["steps"] == 6
    for scores in result["policies"].values():
        assert 0 <= scores["simulator_success"] <= 1 and 0 <= scores["world_model_success"] <= 1
    for score in ("return", "success"):
        assert set(result[score]) == {"pearson", "spearman", "mmrv"}
        assert result[score]["mmrv"] >= 0  # in the score's units: success rates give [0, 1]
    assert result["success"]["mmrv"] <= 1
    json.dumps(result)


def test_world_ranking_tells_an_instructed_world_its_instructions_in_turn(
    tiny_instruct_world_model_dir, tiny
):
    from cosmos_env.dynamics.release import load_world_model
    from cosmos_env.guardrails.text import TextRefused

    ranking = load_benchmark("world_ranking")
    wm = load_world_model(tiny_instruct_world_model_dir)
    push = ["push the red cube into the green zone", "push the purple block into the green zone"]
    world = ranking.world_of(wm)
    make = ranking.suite(world)["scripted-0.0"]
    sim = ranking.in_simulator(world, make, [1, 2, 3], 2, wm.image_size, push)
    told = [world.instructions(s[None])[0] for s in sim["states"]]
    assert told == [push[0], push[1], push[0]]  # the held-out block push included
    result = ranking.rank(wm, episodes=2, steps=2, instructions=push)
    assert result["instructions"] == push
    with pytest.raises(TextRefused):
        ranking.rank(wm, episodes=2, steps=2, instructions=["kill the red cube"])
    with pytest.raises(ValueError, match="takes no instructions"):
        ranking.rank(tiny, episodes=2, steps=2, instructions=push)
