import json

import pytest

from cosmos_env.config import GenerateConfig, load_config
from cosmos_env.corpus import CorpusConfig, build_corpus, check_held_out, store_configs
from cosmos_env.data import EpisodeStore, StoreError
from cosmos_env.generate import generate, generate_unless_complete


def _corpus(tmp_path, *extra: str) -> CorpusConfig:
    sources = (
        "sources={tt:{world:tabletop_random,task:push,noise:[0.0,1.0],episodes:2,max_steps:4},"
        "reacher:{world:gym,env_id:Reacher-v5,policy:play,episodes:1,max_steps:5}}"
    )
    args = [f"out={tmp_path / 'corpus'}", "workers=1", "~sources", f"+{sources}", *extra]
    return load_config("corpus", CorpusConfig, args)


def test_the_shipped_corpus_config_holds_its_targets_out():
    cfg = load_config("corpus", CorpusConfig, [])
    configs = store_configs(cfg)
    check_held_out(cfg, configs)  # raises if a store could show a held-out target
    worlds = {c.env_id for c in configs.values() if c.world.name == "gym"}
    assert len(worlds) >= 8 and "Walker2d-v5" not in worlds
    assert {c.policy for c in configs.values()} == {"scripted", "random", "play"}
    assert all(c.world.scene for c in configs.values() if c.world.name == "tabletop")
    assert len({c.seed for c in configs.values()}) == len(configs)  # no repeated episodes


def test_a_corpus_is_recorded_side_by_side_and_a_rerun_keeps_it(tmp_path):
    manifest = build_corpus(_corpus(tmp_path))
    out = tmp_path / "corpus"
    assert sorted(manifest["stores"]) == [
        "reacher.noise0.0.zarr",
        "tt.noise0.0.zarr",
        "tt.noise1.0.zarr",
    ]
    assert manifest["episodes"] == 3 and manifest["frames"] == 2 * 5 + 6
    assert manifest["stores"]["reacher.noise0.0.zarr"]["action_dim"] == 2
    assert manifest["stores"]["tt.noise0.0.zarr"]["scene"] == "randomised"
    assert json.loads((out / "corpus.json").read_text())["stores"] == manifest["stores"]
    written = {p.name: p.stat().st_mtime_ns for p in (out / "tt.noise1.0.zarr").rglob("*")}
    again = build_corpus(_corpus(tmp_path))
    assert again["stores"] == manifest["stores"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "tt.noise1.0.zarr").rglob("*")} == written


def test_scale_shrinks_every_source_to_at_least_one_episode_per_store(tmp_path):
    configs = store_configs(_corpus(tmp_path, "scale=0.1"))
    assert {name: c.episodes for name, c in configs.items()} == {
        "tt.noise0.0.zarr": 1,
        "tt.noise1.0.zarr": 1,
        "reacher.noise0.0.zarr": 1,
    }


@pytest.mark.parametrize(
    "source, message",
    [
        ("w:{world:gym,env_id:Walker2d-v5,policy:random}", "Walker2d-v5, which is held out"),
        ("h:{world:tabletop_heldout,task:push}", "can draw the held-out task object"),
        ("x:{world:tabletop,noise:[]}", "noise must list at least one level"),
    ],
)
def test_a_corpus_that_would_show_a_held_out_target_is_refused_before_recording(
    tmp_path, source, message
):
    cfg = load_config(
        "corpus", CorpusConfig, [f"out={tmp_path / 'c'}", "~sources", f"+sources={{{source}}}"]
    )
    with pytest.raises(ValueError, match=message):
        build_corpus(cfg)
    assert not (tmp_path / "c").exists()


def test_generate_unless_complete_keeps_only_a_store_of_the_same_settings(tmp_path):
    args = [f"out={tmp_path / 's.zarr'}", "episodes=2", "workers=1", "max_steps=3"]
    first = generate(load_config("generate", GenerateConfig, args))
    kept = generate_unless_complete(load_config("generate", GenerateConfig, args))
    assert kept == {"out": first["out"], "episodes": 2, "kept": True}
    with pytest.raises(StoreError, match=r"noise=0\.0 \(now 0\.5\)"):
        generate_unless_complete(load_config("generate", GenerateConfig, [*args, "noise=0.5"]))
    with pytest.raises(StoreError, match="complete store of 2 episodes, not 3"):
        generate_unless_complete(load_config("generate", GenerateConfig, [*args, "episodes=3"]))
    assert EpisodeStore.open(first["out"]).n_episodes == 2
