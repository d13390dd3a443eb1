"""EpisodeStore: round trip, metadata, validation, errors, atomicity and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import store_helpers as helpers
import zarr

from cosmos_env.data import (
    FORMAT_VERSION,
    ActionSpec,
    EpisodeStore,
    FeatureSpec,
    IncompleteStoreError,
    StoreError,
    compute_stats,
)
from cosmos_env.data import stats as stats_module
from cosmos_env.data.state_spec import EndEffector, StateSlot, StateSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).with_name("store_helpers.py")  # also run by path in a child
LENGTHS, H, W = helpers.LENGTHS, helpers.H, helpers.W
create_store, fill_store = helpers.create_store, helpers.fill_store
make_episode, writer_length = helpers.make_episode, helpers.writer_length
make_features, make_action_spec = helpers.make_features, helpers.make_action_spec


def assert_episode_equal(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key].dtype == value.dtype, key
        np.testing.assert_array_equal(got[key], value, err_msg=key)


# ------------------------------------------------------------------------------ specs
def test_action_spec_scale_round_trip_and_dict() -> None:
    spec = make_action_spec()
    a = np.array([[-1, 0, 1], [0.5, -0.5, 0]], np.float32)
    x = spec.scale(a)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[0], [-0.05, 0.0, 1.0], atol=1e-7)
    np.testing.assert_allclose(spec.unscale(x), a, atol=1e-6)
    assert spec.dim == 3
    assert ActionSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="low < high"):
        ActionSpec(("a",), ("m",), (1.0,), (1.0,))
    with pytest.raises(ValueError, match="differ in length"):
        ActionSpec(("a", "b"), ("m",), (0.0,), (1.0,))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 3\)"):
        spec.scale(np.zeros(2, np.float32))


def test_feature_spec_dict_round_trip() -> None:
    spec = FeatureSpec("state", "float32", (3,), ("x", "y", "z"))
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert spec.row_bytes == 12
    with pytest.raises(ValueError, match="names label the last axis"):
        FeatureSpec("state", "float32", (3,), ("x",))
    with pytest.raises(ValueError, match="unknown"):
        FeatureSpec.from_dict({**spec.to_dict(), "colour": 1})


# -------------------------------------------------------------------------- round trip
def test_round_trip_is_bit_exact(filled) -> None:
    store, episodes = filled
    assert store.is_complete
    assert store.n_episodes == len(LENGTHS)
    assert store.n_frames == sum(LENGTHS)
    np.testing.assert_array_equal(store.episode_ends, np.cumsum(LENGTHS))
    for i, ep in enumerate(episodes):
        assert_episode_equal(store.load_episode(i), ep)
        assert store.instruction(i) == f"task {i} ✓"
        assert store.source_id(i) == f"src-{i}"
    got = store.load_episode(-1, keys=["rgb", "reward"])
    assert set(got) == {"rgb", "reward"}
    np.testing.assert_array_equal(got["rgb"], episodes[-1]["rgb"])


def test_episode_bounds_rows_and_windows(filled) -> None:
    store, episodes = filled
    ends = np.cumsum(LENGTHS)
    for i, n in enumerate(LENGTHS):
        start = 0 if i == 0 else int(ends[i - 1])
        assert store.episode_bounds(i) == (start, start + n)
        assert store.episode_length(i) == n
    rows = store.get_rows(3, 30, keys=["state"])["state"]  # crosses two boundaries
    np.testing.assert_array_equal(rows, np.concatenate([e["state"] for e in episodes])[3:30])
    window = store.get_window(3, 10, 8, keys=["rgb", "frame_index"])
    np.testing.assert_array_equal(window["rgb"], episodes[3]["rgb"][10:18])
    np.testing.assert_array_equal(window["frame_index"], np.arange(10, 18))
    with pytest.raises(IndexError, match="does not fit"):
        store.get_window(0, 3, 3)
    with pytest.raises(IndexError, match="out of range"):
        store.episode_bounds(len(LENGTHS))
    with pytest.raises(KeyError, match="unknown keys"):
        store.get_rows(0, 1, keys=["depth"])


def test_metadata_attrs(filled) -> None:
    store, _ = filled
    assert store.features == make_features()
    assert store.action_spec == make_action_spec()
    assert (store.fps, store.world, store.robot) == (10.0, "test-world", "panda")
    assert store.camera == {"name": "front", "fovy": 45.0}
    attrs = store.attrs
    assert attrs["format_version"] == FORMAT_VERSION
    assert attrs["status"] == "complete"
    assert attrs["extra"] == {"note": "unit test"}
    assert attrs["schema"]["rgb"] == {
        "name": "rgb",
        "dtype": "uint8",
        "shape": [H, W, 3],
        "names": None,
    }
    group = zarr.open_group(str(store.path), mode="r")
    assert group["data/rgb"].chunks[0] == 8  # chunked along time
    assert group["meta/episode_ends"].dtype == np.int64


def test_bytes_stored_vs_raw(filled) -> None:
    store, _ = filled
    assert store.raw_bytes("rgb") == store.n_frames * H * W * 3
    assert 0 < store.bytes_stored("rgb") < store.raw_bytes("rgb")  # compressed
    assert store.bytes_stored() > store.bytes_stored("rgb")
    assert store.raw_bytes() > store.raw_bytes("rgb")


def test_window_read_touches_only_its_chunks(filled) -> None:
    store, episodes = filled
    start, _ = store.episode_bounds(3)  # rows 23..62; window rows 24..31 = rgb chunk 3
    for chunk in (store.path / "data/rgb/c").iterdir():
        if chunk.name != "3":
            for f in chunk.rglob("*"):
                if f.is_file():
                    f.write_bytes(b"garbage")
    window = store.get_window(3, 24 - start, 8, keys=["rgb"])
    np.testing.assert_array_equal(window["rgb"], episodes[3]["rgb"][24 - start : 32 - start])
    with pytest.raises(Exception):  # noqa: B017 - the whole array now fails to decode
        store.get_rows(0, store.n_frames, keys=["rgb"])


def test_repeated_appends_of_full_size_frames_round_trip(tmp_path: Path) -> None:
    # Append speed is a benchmark figure (generate's frames/s), not a timed assertion here.
    features = {**make_features(), "rgb": FeatureSpec("rgb", "uint8", (64, 64, 3))}
    store = EpisodeStore.create(
        tmp_path / "s.zarr", features=features, action_spec=make_action_spec(), fps=10, world="w"
    )
    ep = make_episode(0, 50)
    ep["rgb"] = np.repeat(np.repeat(np.repeat(ep["rgb"], 8, 1), 8, 2), 1, 3)
    for _ in range(10):
        store.append_episode(ep)
    store.finalize()
    np.testing.assert_array_equal(
        EpisodeStore.open(tmp_path / "s.zarr").load_episode(9)["rgb"], ep["rgb"]
    )


# ------------------------------------------------------------------------------ split
def test_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3,) * 20)
    store = EpisodeStore.open(tmp_path / "s.zarr")
    train, val = store.split(0.2, seed=7)
    train2, val2 = EpisodeStore.open(tmp_path / "s.zarr").split(0.2, seed=7)
    np.testing.assert_array_equal(train, train2)
    np.testing.assert_array_equal(val, val2)
    assert len(val) == 4 and len(np.intersect1d(train, val)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(20))
    assert not np.array_equal(val, store.split(0.2, seed=8)[1])
    assert len(store.split(0.01)[1]) == 1  # at least one val episode
    assert len(store.split(0.0)[1]) == 0
    with pytest.raises(ValueError, match="val_fraction"):
        store.split(1.0)


def test_split_two_episodes_has_one_val(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3, 4))
    train, val = EpisodeStore.open(tmp_path / "s.zarr").split(0.1)
    assert len(train) == 1 and len(val) == 1


# ------------------------------------------------------------------------------ stats
def test_stats_match_numpy(filled, monkeypatch: pytest.MonkeyPatch) -> None:
    store, episodes = filled
    cat = {k: np.concatenate([e[k] for e in episodes]) for k in episodes[0]}
    monkeypatch.setattr(stats_module, "_BLOCK_BYTES", 100)  # many blocks: exercise the merge
    stats = compute_stats(store)
    assert set(stats) == {"rgb", "state", "action", "reward"}  # float features and images
    expected = {
        "state": cat["state"].astype(np.float64),
        "action": cat["action"][~cat["is_last"]].astype(np.float64),  # padding rows skipped
        "reward": cat["reward"].astype(np.float64),
    }
    for key, x in expected.items():
        s = stats[key]
        np.testing.assert_allclose(s["mean"], x.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s["std"], x.std(0), rtol=1e-10)
        np.testing.assert_array_equal(s["min"], x.min(0))
        np.testing.assert_array_equal(s["max"], x.max(0))
        np.testing.assert_allclose(s["q01"], np.quantile(x, 0.01, axis=0), rtol=1e-12)
        np.testing.assert_allclose(s["q99"], np.quantile(x, 0.99, axis=0), rtol=1e-12)
        assert int(s["count"]) == len(x)
    assert stats["state"]["mean"].shape == (4,) and stats["reward"]["mean"].shape == ()
    rgb = cat["rgb"].reshape(-1, 3).astype(np.float64)  # < 256 frames: every frame sampled
    np.testing.assert_allclose(stats["rgb"]["mean"], rgb.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats["rgb"]["std"], rgb.std(0), rtol=1e-9)
    # finalize stored the same numbers in meta/stats
    for key, s in stats.items():
        for name, value in s.items():
            np.testing.assert_allclose(store.stats[key][name], value, rtol=1e-12, err_msg=key)


def test_stats_quantiles_from_subsample(filled) -> None:
    store, _ = filled
    s = compute_stats(store, max_quantile_rows=10)["state"]
    assert int(s["count"]) == store.n_frames  # moments still use every row
    assert np.all(s["min"] <= s["q01"]) and np.all(s["q99"] <= s["max"])


# ------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.update(state=e["state"].astype(np.float64)), r"'state': dtype float64"),
        (
            lambda e: e.update(rgb=np.zeros((5, H, W + 1, 3), np.uint8)),
            r"'rgb': shape \(5, 8, 9, 3\)",
        ),
        (lambda e: e.update(reward=e["reward"][:4]), "differ in length"),
        (lambda e: e.pop("reward"), "missing key 'reward'"),
        (lambda e: e.update(depth=e["reward"]), r"unknown keys \['depth'\]"),
        (
            lambda e: e["is_last"].__setitem__(1, True),
            "'is_last' must be True on the last row only",
        ),
        (lambda e: e["is_first"].__setitem__(0, False), "'is_first' must be True on the first"),
        (lambda e: e["action"].__setitem__((2, 1), np.nan), r"'action': NaN or inf at rows \[2\]"),
        (lambda e: e.update(reward=[0.0] * 5), "'reward': expected a numpy array"),
    ],
)
def test_append_rejects_bad_episodes(tmp_path: Path, mutate, message: str) -> None:
    store = create_store(tmp_path / "s.zarr")
    store.append_episode(make_episode(0, 5))
    bad = make_episode(1, 5)
    mutate(bad)
    with pytest.raises(ValueError, match=message):
        store.append_episode(bad)
    assert store.n_episodes == 1 and store.n_frames == 5  # nothing half-appended


def test_append_rejects_empty_episode_and_fills_flags(tmp_path: Path) -> None:
    store = create_store(tmp_path / "s.zarr")
    empty = {k: v[:0] for k, v in make_episode(0, 3).items()}
    with pytest.raises(ValueError, match="length 0"):
        store.append_episode(empty)
    ep = make_episode(0, 3)
    del ep["is_first"], ep["is_last"]
    store.append_episode(ep)
    np.testing.assert_array_equal(store.load_episode(0)["is_last"], [False, False, True])


def test_create_rejects_bad_schema(tmp_path: Path) -> None:
    features = make_features()
    del features["reward"]
    with pytest.raises(ValueError, match="required key 'reward'"):
        EpisodeStore.create(
            tmp_path / "s.zarr", features=features, action_spec=make_action_spec(), fps=5, world="w"
        )
    features = {**make_features(), "action": FeatureSpec("action", "float32", (7,))}
    with pytest.raises(ValueError, match=r"'action' must have shape \(3,\)"):
        EpisodeStore.create(
            tmp_path / "s.zarr", features=features, action_spec=make_action_spec(), fps=5, world="w"
        )


# ------------------------------------------------------------- state spec and world
WORLD = {"entry_point": "my_worlds.arm:make_world", "kwargs": {"n_objects": 2}}


def _arm_spec() -> StateSpec:
    return StateSpec(
        (StateSlot("hand_pos", 3, "position", "m"), StateSlot("grip", 1, "joint", "m")),
        end_effector=EndEffector("hand_pos", "", (0, 1, 2)),
        cameras={"front": np.arange(12.0)},
    )


def test_default_state_spec_is_flat_over_the_state_names(filled, tmp_path: Path) -> None:
    store, _ = filled
    assert store.state_spec == StateSpec.flat(("x", "y", "z", "g"))
    assert store.attrs["state_spec"] == store.state_spec.to_dict()
    assert store.world_description is None and store.attrs["world_description"] is None
    unnamed = {**make_features(), "state": FeatureSpec("state", "float32", (4,))}
    store = EpisodeStore.create(
        tmp_path / "u.zarr", features=unnamed, action_spec=make_action_spec(), fps=5, world="w"
    )
    assert store.state_spec.dim_names() == ("s0", "s1", "s2", "s3")


def test_state_spec_and_world_description_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    with create_store(path, state_spec=_arm_spec(), world_description=WORLD) as store:
        store.append_episode(make_episode(0, 6))
    store = EpisodeStore.open(path)
    assert store.state_spec == _arm_spec()
    assert store.state_spec.end_effector == EndEffector("hand_pos", "", (0, 1, 2))
    np.testing.assert_array_equal(store.state_spec.projection("front").ravel(), np.arange(12.0))
    assert store.world_description == WORLD
    store.world_description["kwargs"]["n_objects"] = 3  # a copy: the store's is unchanged
    assert store.world_description == WORLD
    assert store.verify().ok  # the new attrs are part of the finalize digest


def test_create_checks_state_spec_and_world_description(tmp_path: Path) -> None:
    three = StateSpec((StateSlot("p", 3, "position", "m"),))
    with pytest.raises(ValueError, match="state_spec has 3 dims \\(p\\).*'state' feature has 4"):
        create_store(tmp_path / "a.zarr", state_spec=three)
    with pytest.raises(ValueError, match="state_spec must be a StateSpec"):
        create_store(tmp_path / "a.zarr", state_spec=three.to_dict())
    with pytest.raises(ValueError, match="world entry_point must be 'module:factory'"):
        create_store(tmp_path / "a.zarr", world_description={"entry_point": "no_colon"})
    with pytest.raises(ValueError, match="a world is described as"):
        create_store(tmp_path / "a.zarr", world_description={**WORLD, "seed": 1})
    assert not (tmp_path / "a.zarr").exists()  # nothing written by a refused create


def test_store_without_state_spec_names_the_fix(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3,))
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")
    attrs = group.attrs.asdict()
    del attrs["state_spec"], attrs["world_description"]  # as an older cosmos-env wrote it
    group.attrs.put(attrs)
    store = EpisodeStore.open(tmp_path / "s.zarr")  # still opens and reads
    assert store.load_episode(0)["state"].shape == (3, helpers.S)
    assert store.world_description is None
    with pytest.raises(StoreError, match="has no state spec \\(written by an older cosmos-env\\)"):
        _ = store.state_spec
    with pytest.raises(StoreError, match="re-record it.*or convert it again"):
        _ = store.state_spec


def test_malformed_state_spec_or_world_description_is_corrupt(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3,))
    group = zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")
    good = group.attrs["state_spec"]
    group.attrs["state_spec"] = {"slots": [["a", 2, "joint", "rad"]]}
    with pytest.raises(StoreError, match="corrupt.*state_spec has 2 dims.*'state' feature has 4"):
        EpisodeStore.open(tmp_path / "s.zarr")
    group.attrs["state_spec"] = {**good, "colour": "red"}
    with pytest.raises(StoreError, match="corrupt.*unknown keys \\['colour'\\]"):
        EpisodeStore.open(tmp_path / "s.zarr")
    group.attrs["state_spec"] = good
    group.attrs["world_description"] = {"entry_point": 3}
    with pytest.raises(StoreError, match="corrupt.*world entry_point"):
        EpisodeStore.open(tmp_path / "s.zarr")


# ----------------------------------------------------------------------------- errors
def test_create_refuses_existing_path(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3,))
    with pytest.raises(StoreError, match="already exists; pass overwrite=True"):
        create_store(tmp_path / "s.zarr")
    store = create_store(tmp_path / "s.zarr", overwrite=True)
    assert store.n_episodes == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("keep me")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        create_store(tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "a.txt").exists()


def test_not_a_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a cosmos-env episode store.*does not exist"):
        EpisodeStore.open(tmp_path / "missing.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="not a cosmos-env episode store.*has no zarr v3 group"):
        EpisodeStore.open(tmp_path / "empty")
    (tmp_path / "file.bin").write_bytes(os.urandom(64))
    with pytest.raises(StoreError, match="not a cosmos-env episode store.*is a file"):
        EpisodeStore.open(tmp_path / "file.bin")
    zarr.create_group(str(tmp_path / "plain.zarr"))
    with pytest.raises(StoreError, match="not a cosmos-env episode store.*format_version"):
        EpisodeStore.open(tmp_path / "plain.zarr")
    zarr.create_array(str(tmp_path / "array.zarr"), shape=(2,), dtype="int8")
    with pytest.raises(StoreError, match="not a cosmos-env episode store"):
        EpisodeStore.open(tmp_path / "array.zarr")


def test_newer_format_version_error(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(3,))
    zarr.open_group(str(tmp_path / "s.zarr"), mode="r+").attrs["format_version"] = (
        FORMAT_VERSION + 1
    )
    with pytest.raises(StoreError, match="written by a newer cosmos-env.*upgrade"):
        EpisodeStore.open(tmp_path / "s.zarr")


def test_read_only_store_refuses_writes(filled) -> None:
    store, episodes = filled
    with pytest.raises(StoreError, match="read-only"):
        store.append_episode(episodes[0])
    with pytest.raises(StoreError, match="read-only"):
        store.finalize()


# -------------------------------------------------------------------- atomicity/resume
def test_exception_in_with_block_leaves_store_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    with pytest.raises(RuntimeError, match="boom"):
        with create_store(path) as store:
            store.append_episode(make_episode(0, 4))
            raise RuntimeError("boom")
    with pytest.raises(IncompleteStoreError):
        EpisodeStore.open(path)
    assert EpisodeStore.open(path, allow_incomplete=True).n_episodes == 1


def test_resume_after_simulated_crash(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    store = create_store(path)
    episodes = [make_episode(i, n) for i, n in enumerate((6, 11))]
    for ep in episodes:
        store.append_episode(ep)
    # Simulate a writer killed mid-append: data rows and a string written, and
    # episode_ends grown (fill -1) but its element never written.
    group = zarr.open_group(str(path), mode="r+")
    n = store.n_frames
    for _, arr in group["data"].arrays():
        arr.resize((n + 9, *arr.shape[1:]))
        arr[n:] = np.ones((9, *arr.shape[1:]), arr.dtype)
    group["meta/instruction"].resize((3,))
    group["meta/instruction"][2] = "half written"
    group["meta/episode_ends"].resize((3,))
    del store
    with pytest.raises(
        IncompleteStoreError, match=r"did not finish.*open\(path, 'a'\).*allow_incomplete=True"
    ):
        EpisodeStore.open(path)
    partial = EpisodeStore.open(path, allow_incomplete=True)
    assert (partial.n_episodes, partial.n_frames, partial.is_complete) == (2, 17, False)
    for i, ep in enumerate(episodes):
        assert_episode_equal(partial.load_episode(i), ep)
    with EpisodeStore.open(path, "a") as resumed:
        assert resumed.n_episodes == 2
        episodes.append(make_episode(2, 5))
        resumed.append_episode(episodes[2], instruction="third")
    final = EpisodeStore.open(path)
    assert final.is_complete and final.n_episodes == 3
    for i, ep in enumerate(episodes):
        assert_episode_equal(final.load_episode(i), ep)
    assert final.instruction(2) == "third"
    assert zarr.open_group(str(path), mode="r")["data/state"].shape[0] == final.n_frames


def test_reopen_complete_store_to_append(tmp_path: Path) -> None:
    path = tmp_path / "s.zarr"
    episodes = fill_store(path, lengths=(4, 6))
    store = EpisodeStore.open(path, "a")
    store.append_episode(make_episode(2, 3))
    with pytest.raises(IncompleteStoreError):  # appending reopens the writing window
        EpisodeStore.open(path)
    store.finalize()
    final = EpisodeStore.open(path)
    assert final.n_episodes == 3 and int(final.stats["state"]["count"]) == 13
    assert_episode_equal(final.load_episode(1), episodes[1])


WRITER = """
import importlib.util, sys, time
import zarr
spec = importlib.util.spec_from_file_location("data_helpers", sys.argv[1])
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
store = helpers.create_store(sys.argv[2])
if sys.argv[3] == "pause-before-commit":
    # Freeze the 4th append after its rows are written, just before meta/episode_ends.
    setitem = zarr.Array.__setitem__
    def paused_setitem(self, selection, value):
        if self.path == "meta/episode_ends" and store.n_episodes >= 3:
            print("about to commit", flush=True)
            time.sleep(60)
        setitem(self, selection, value)
    zarr.Array.__setitem__ = paused_setitem
for i in range(100_000):
    episode = helpers.make_episode(i, helpers.writer_length(i))
    store.append_episode(episode, instruction=f"task {i}", source_id=f"seed-{i}")
    print(store.n_episodes, flush=True)
"""


def run_and_kill_writer(path: Path, mode: str) -> int:
    """Start the writer, SIGKILL it mid-write, return how many commits it reported."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(HELPERS), str(path), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    committed = 0
    try:
        while True:
            line = proc.stdout.readline()
            assert line, f"writer exited early: {proc.stderr.read()}"
            if line.strip() == "about to commit":
                break
            committed = int(line)
            if mode == "free-running" and committed >= 3:
                time.sleep(0.005)  # let it get into the next append
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return committed


@pytest.mark.parametrize("mode", ["pause-before-commit", "free-running"])
def test_sigkilled_writer_leaves_readable_resumable_store(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "killed.zarr"
    committed = run_and_kill_writer(path, mode)
    assert committed >= 3

    with pytest.raises(IncompleteStoreError, match="did not finish"):
        EpisodeStore.open(path)
    partial = EpisodeStore.open(path, allow_incomplete=True)
    n = partial.n_episodes
    assert n >= committed
    if mode == "pause-before-commit":
        # The 4th episode's rows and strings are on disk, but it was never committed.
        raw = zarr.open_group(str(path), mode="r")
        assert n == 3
        assert raw["data/episode_id"][partial.n_frames] == 3
        assert raw["meta/instruction"][3] == "task 3"
    for i in range(n):
        assert_episode_equal(partial.load_episode(i), make_episode(i, writer_length(i)))
        assert partial.instruction(i) == f"task {i}" and partial.source_id(i) == f"seed-{i}"

    with EpisodeStore.open(path, "a") as resumed:
        assert resumed.n_episodes == n
        resumed.append_episode(make_episode(n, 7), "task resumed", "seed-x")
    final = EpisodeStore.open(path)
    assert final.is_complete and final.n_episodes == n + 1
    for i in range(n):
        assert_episode_equal(final.load_episode(i), make_episode(i, writer_length(i)))
    assert_episode_equal(final.load_episode(n), make_episode(n, 7))
    assert final.instruction(n) == "task resumed"
    assert not list(path.rglob("*.partial"))


def test_complete_store_with_inconsistent_arrays_is_corrupt(tmp_path: Path) -> None:
    fill_store(tmp_path / "s.zarr", lengths=(4, 6))
    zarr.open_group(str(tmp_path / "s.zarr"), mode="r+")["data/state"].resize((7, 4))
    with pytest.raises(StoreError, match="marked complete but its arrays disagree"):
        EpisodeStore.open(tmp_path / "s.zarr")
