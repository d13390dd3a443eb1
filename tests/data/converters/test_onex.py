"""1X world-model converter: round trips of the three layouts (tokens, states, actions, frames),
segments as episodes, truncated files, resume, and token stores (no rgb) in the schema."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from onex_fixtures import truncate, write_raw, write_v11, write_v20

from cosmos_env.data import EpisodeStore, FeatureSpec, WindowSampler
from cosmos_env.data.converters.onex import (
    STATE_NAMES,
    STATE_SPEC,
    OneXFormatError,
    convert_onex,
    delta_actions,
    find_segments,
)
from cosmos_env.data.layout import StoreError
from cosmos_env.data.spec import check_schema

ATOL = 1e-5  # float32 rounding of unscale -> scale


def episodes_by_source(store: EpisodeStore) -> dict[str, dict[str, np.ndarray]]:
    return {store.source_id(i): store.load_episode(i) for i in range(store.n_episodes)}


def physical_actions(store: EpisodeStore, episode: dict) -> np.ndarray:
    return store.action_spec.scale(episode["action"])


def test_find_segments_splits_runs_of_equal_ids():
    ids = np.array([3, 3, 7, 7, 7, 3, 5], np.int32)
    assert find_segments(ids) == [(3, 0, 2), (7, 2, 5), (3, 5, 6), (5, 6, 7)]
    assert find_segments(np.zeros(0, np.int32)) == []


@pytest.mark.parametrize("neck_columns", [1, 3])  # the card says (N, 1); 1X's files fit (N, 3)
def test_v11_round_trip(tmp_path, neck_columns):
    src = write_v11(tmp_path / "v1.1", neck_columns=neck_columns)
    summary = convert_onex(src["path"], tmp_path / "s.zarr")
    store = EpisodeStore.open(tmp_path / "s.zarr")
    assert "rgb" not in store.features and store.features["tokens_magvit2"].dtype == "int32"
    assert (summary.episodes, summary.frames, summary.skipped) == (3, 20, [])
    assert (store.world, store.robot, store.fps) == ("onex_humanoid", "eve", 30.0)
    assert store.state_spec == STATE_SPEC and store.state_spec.dim_names() == STATE_NAMES
    assert store.state_spec.end_effector is None and store.world_description is None
    assert store.action_spec.dim == 25 + neck_columns
    episodes = episodes_by_source(store)
    assert list(episodes) == [f"v1.1:segment{sid}:{a}" for _, sid, a, _ in src["segments"]]
    acts = src["actions"]
    order = ("joint_pos", "driving_command", "neck_desired", "l_hand_closure", "r_hand_closure")
    for (_, _, a, b), ep in zip(src["segments"], episodes.values(), strict=True):
        np.testing.assert_array_equal(ep["tokens_magvit2"], src["tokens"][a:b].astype(np.int32))
        state = np.concatenate(
            [acts[k][a:b] for k in ("joint_pos", "l_hand_closure", "r_hand_closure")]
            + [acts["driving_command"][a:b]],
            axis=1,
        )
        np.testing.assert_array_equal(ep["state"], state)
        expected = np.concatenate([acts[k][a:b] for k in order], axis=1)
        np.testing.assert_allclose(physical_actions(store, ep), expected, atol=ATOL)
        assert ep["is_first"][0] and ep["is_last"][-1] and ep["is_last"].sum() == 1


def test_token_store_attrs_say_tokens_cannot_be_decoded(tmp_path):
    src = write_v11(tmp_path / "v1.1")
    convert_onex(src["path"], tmp_path / "s.zarr")
    extra = EpisodeStore.open(tmp_path / "s.zarr").attrs["extra"]
    assert extra["source_format"] == "1x-worldmodel-v1.1"
    assert extra["tokens"]["name"] == "tokens_magvit2"
    assert extra["tokens"]["decodable"] is False and "cannot be decoded" in extra["tokens"]["note"]
    assert extra["source_metadata"]["vocab_size"] == 2**18
    from cosmos_env.tokenizer.cache import encode_store
    from cosmos_env.tokenizer.release import load_tokenizer

    with pytest.raises(StoreError, match="tokens_magvit2.*cannot be encoded"):
        encode_store(tmp_path / "s.zarr", load_tokenizer("DI8x8"))


@pytest.mark.parametrize("nested", [True, False])  # 1X's train (subfolders) and val (flat)
def test_v20_round_trip(tmp_path, nested):
    src = write_v20(tmp_path / "v2.0", nested=nested)
    summary = convert_onex(src["path"], tmp_path / "s.zarr")
    store = EpisodeStore.open(tmp_path / "s.zarr")
    assert summary.episodes == 5 and summary.skipped == [] and "rgb" not in store.features
    tokens = store.attrs["extra"]["tokens"]
    assert (tokens["name"], tokens["decodable"]) == ("tokens_cosmos_dv8x8x8", False)
    assert "cannot be decoded" in tokens["note"] and "17-frame clip" in tokens["note"]
    episodes = episodes_by_source(store)
    segments = [(shard, seg) for shard in src["shards"] for seg in shard["segments"]]
    assert list(episodes) == [f"{s}:segment{sid}:{a}" for _, (s, sid, a, _) in segments]
    for (shard, (_, _, a, b)), ep in zip(segments, episodes.values(), strict=True):
        rows = np.arange(a, b)
        np.testing.assert_array_equal(ep["tokens_cosmos_dv8x8x8"], shard["clips"][rows // 17])
        np.testing.assert_array_equal(ep["cosmos_clip_frame"], rows % 17)
        states = shard["states"][a:b]
        np.testing.assert_array_equal(ep["state"], states)
        deltas = np.concatenate([states[1:] - states[:-1], np.zeros((1, 25), np.float32)])
        np.testing.assert_allclose(physical_actions(store, ep), deltas, atol=ATOL)
        np.testing.assert_array_equal(delta_actions(states), deltas)
    assert set(store.stats) == {"state", "action", "reward"}  # no image stats, no token stats
    kinds = {s.name: (s.kind, s.unit) for s in store.state_spec.slots}
    assert kinds["neck_pitch"] == ("joint", "rad") and kinds["left_hand_closure"] == ("joint", "1")
    assert kinds["linear_velocity"] == ("velocity", "m/s")
    assert kinds["angular_velocity"] == ("velocity", "rad/s")


def test_raw_video_round_trip(tmp_path):
    src = write_raw(tmp_path / "raw")
    convert_onex(src["path"], tmp_path / "s.zarr", image_size=16)
    store = EpisodeStore.open(tmp_path / "s.zarr")
    assert store.features["rgb"].shape == (16, 16, 3) and "tokens" not in store.attrs["extra"]
    assert store.features["state"].names == STATE_NAMES
    episodes = episodes_by_source(store)
    segments = [(shard, seg) for shard in src["shards"] for seg in shard["segments"]]
    assert list(episodes) == [f"{s}:segment{sid}:{a}" for _, (s, sid, a, _) in segments]
    for (shard, (_, _, a, b)), ep in zip(segments, episodes.values(), strict=True):
        small = [cv2.resize(f, (16, 16), interpolation=cv2.INTER_AREA) for f in shard["frames"]]
        error = np.abs(ep["rgb"].astype(float) - np.stack(small)[a:b]).mean()
        assert error < 6.0, f"decoded frames differ from the source by {error:.1f} levels"
        np.testing.assert_array_equal(ep["state"], shard["states"][a:b])
        np.testing.assert_allclose(
            physical_actions(store, ep), delta_actions(shard["states"][a:b]), atol=ATOL
        )
    assert store.stats["rgb"]["mean"].shape == (3,)


def test_truncated_v11_file_is_an_error_naming_file_and_sizes(tmp_path):
    src = write_v11(tmp_path / "v1.1")
    before, after = truncate(src["path"] / "actions" / "joint_pos.bin", 4)
    with pytest.raises(OneXFormatError, match=r"joint_pos\.bin") as info:
        convert_onex(src["path"], tmp_path / "s.zarr")
    assert f"expected {before} bytes" in str(info.value) and f"found {after}" in str(info.value)
    assert not (tmp_path / "s.zarr").exists()
    truncate(src["path"] / "video.bin", 4 * 16)  # a whole row of tokens short
    with pytest.raises(OneXFormatError, match=r"video\.bin.*expected \d+ bytes \(20 rows"):
        convert_onex(src["path"], tmp_path / "s.zarr")


def test_truncated_shard_is_skipped_with_the_reason_and_others_convert(tmp_path):
    src = write_v20(tmp_path / "v2.0")
    before, after = truncate(src["shards"][1]["paths"]["states"], 100 * 3)  # 3 rows short
    summary = convert_onex(src["path"], tmp_path / "s.zarr")
    store = EpisodeStore.open(tmp_path / "s.zarr")
    assert [store.source_id(i) for i in range(store.n_episodes)] == [
        "shard0:segment10:0",
        "shard0:segment11:8",
    ]
    assert [s for s, _ in summary.skipped] == [
        f"shard1:segment{i}:{a}" for i, a in ((4, 0), (5, 6), (6, 13))
    ]
    reason = summary.skipped[0][1]
    assert "states_1.bin" in reason and f"expected {before} bytes" in reason
    assert f"found {after} bytes" in reason


def test_every_shard_broken_is_an_error_listing_reasons(tmp_path):
    src = write_v20(tmp_path / "v2.0")
    for shard in src["shards"]:
        truncate(shard["paths"]["segment_idx"], 2)
    with pytest.raises(StoreError, match=r"every item was skipped(.|\n)*segment_idx_1\.bin"):
        convert_onex(src["path"], tmp_path / "s.zarr")


def test_resume_after_an_interrupted_conversion(tmp_path, monkeypatch):
    src = write_v20(tmp_path / "v2.0")
    dst = tmp_path / "s.zarr"
    append, calls = EpisodeStore.append_episode, []

    def crash_on_third(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is killed during the third append
        return append(self, *args, **kwargs)

    monkeypatch.setattr(EpisodeStore, "append_episode", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        convert_onex(src["path"], dst)
    monkeypatch.undo()
    with pytest.raises(StoreError, match="incomplete"):
        EpisodeStore.open(dst)
    summary = convert_onex(src["path"], dst)
    store = EpisodeStore.open(dst)
    ids = [store.source_id(i) for i in range(store.n_episodes)]
    expected = [f"{s}:segment{sid}:{a}" for sh in src["shards"] for s, sid, a, _ in sh["segments"]]
    assert ids == expected and (summary.resumed, summary.episodes) == (2, 3)
    assert store.n_frames == sum(len(sh["states"]) for sh in src["shards"])


def test_out_of_range_actions_are_clipped_with_a_warning(tmp_path):
    src = write_v11(tmp_path / "v1.1")
    drive = src["actions"]["driving_command"].copy()
    drive[2, 0] = 10.0  # 10 m/s: beyond the spec's 2 m/s
    drive.tofile(src["path"] / "actions" / "driving_command.bin")
    summary = convert_onex(src["path"], tmp_path / "s.zarr")
    assert summary.warnings[0][0] == "v1.1:segment3:0"
    assert "linear_velocity (1x, 10" in summary.warnings[0][1]
    ep = EpisodeStore.open(tmp_path / "s.zarr").load_episode(0)
    dim = EpisodeStore.open(tmp_path / "s.zarr").action_spec.names.index("linear_velocity")
    assert ep["action"][2, dim] == 1.0 and ep["state"][2, 23] == 10.0  # the state is kept


def test_unknown_layout_says_what_it_expected(tmp_path):
    with pytest.raises(OneXFormatError, match="video.bin.*video_\\{i\\}.bin"):
        convert_onex(tmp_path, tmp_path / "s.zarr")


def test_prepare_script_converts_and_prints_the_summary(tmp_path, monkeypatch, capsys):
    src = write_v11(tmp_path / "v1.1")
    script = Path(__file__).parents[3] / "datasets" / "onex" / "prepare.py"
    argv = [str(script), str(src["path"]), "--out", str(tmp_path / "out.zarr")]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(script), run_name="__main__")
    assert "3 episodes, 20 frames converted" in capsys.readouterr().out
    assert EpisodeStore.open(tmp_path / "out.zarr").n_episodes == 3


# ---------------------------------------------------------------------- token stores (spec)
def test_schema_allows_a_token_store_without_rgb_only(tmp_path):
    src = write_v11(tmp_path / "v1.1")
    convert_onex(src["path"], tmp_path / "s.zarr")
    store = EpisodeStore.open(tmp_path / "s.zarr")
    features = store.features
    check_schema(features, store.action_spec)  # tokens instead of rgb: fine
    del features["tokens_magvit2"]
    with pytest.raises(ValueError, match="required key 'rgb' or at least one tokens_"):
        check_schema(features, store.action_spec)
    features["tokens_x"] = FeatureSpec("tokens_x", "float32", (4, 4))
    with pytest.raises(ValueError, match="'tokens_x' must be an integer grid"):
        check_schema(features, store.action_spec)
    sampler = WindowSampler(store, store.split()[0], context=2, horizon=1)
    assert sampler.sample(2, np.random.default_rng(0))["tokens_magvit2"].shape == (2, 3, 4, 4)
    with pytest.raises(KeyError, match="unknown keys \\['rgb'\\]"):
        store.load_episode(0, keys=["rgb"])
