"""Bridge V2 converter: round trips of both source layouts, the restricted unpickler,
skipped and warned trajectories, and resuming an interrupted conversion."""

from __future__ import annotations

import pickle

import cv2
import numpy as np
import pytest
from bridge_fixtures import (
    corrupt_jpeg,
    remove_lang,
    write_code_exec_npy,
    write_code_exec_pickle,
    write_forbidden_pickle,
    write_numpy_dataset,
    write_raw_dataset,
)

from cosmos_env.data import EpisodeStore
from cosmos_env.data.converters import bridge
from cosmos_env.data.converters.bridge import (
    BRIDGE_STATE_NAMES,
    BRIDGE_STATE_SPEC,
    BRIDGE_V2_ACTION_SPEC,
    convert_bridge,
)
from cosmos_env.data.converters.safe_pickle import (
    UnsafePickleError,
    safe_load_npy,
    safe_load_pickle,
)

SIZE = 16


def expected_rgb(frames: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Centre square crop, then cv2 INTER_AREA resize: (T, size, size, 3) uint8."""
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = frames[:, top : top + side, left : left + side]
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in crop])


def check_store(store: EpisodeStore, written, camera: str = "images0") -> None:
    assert [store.source_id(i) for i in range(store.n_episodes)] == [w.source_id for w in written]
    for i, w in enumerate(written):
        ep = store.load_episode(i)
        np.testing.assert_array_equal(ep["rgb"], expected_rgb(w.frames[camera]))
        np.testing.assert_array_equal(ep["state"], w.states.astype(np.float32))
        physical = BRIDGE_V2_ACTION_SPEC.scale(ep["action"][:-1])
        np.testing.assert_allclose(physical, w.actions, rtol=0, atol=1e-6)
        assert (ep["action"][-1] == 0).all() and ep["is_last"][-1]
        assert ep["action"].dtype == np.float32 and np.abs(ep["action"]).max() <= 1
        assert (ep["reward"] == 0).all() and ep["reward"].dtype == np.float32
        assert store.instruction(i) == w.instruction


def test_raw_round_trip(tmp_path):
    written = write_raw_dataset(tmp_path / "src")
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    store = EpisodeStore.open(tmp_path / "b.zarr")
    check_store(store, written)
    assert (summary.episodes, summary.frames, summary.skipped, summary.warnings) == (3, 15, [], [])
    assert (store.fps, store.world, store.robot) == (5.0, "bridge_v2", "widowx_250")
    assert store.camera == {"name": "images0"}
    assert store.attrs["extra"] == {
        "source_format": "bridge_v2_raw",
        "source": str(tmp_path / "src"),
    }
    assert store.action_spec == BRIDGE_V2_ACTION_SPEC
    assert store.state_spec == BRIDGE_STATE_SPEC and store.world_description is None
    spec = store.state_spec
    assert [(s.name, s.size, s.kind, s.unit) for s in spec.slots] == [
        ("ee_pos", 3, "position", "m"),
        ("ee_rpy", 3, "other", "rad"),
        ("gripper", 1, "joint", ""),
    ]
    assert spec.end_effector.position == "ee_pos" and spec.end_effector.action_delta == (0, 1, 2)
    assert BRIDGE_V2_ACTION_SPEC.names[:3] == ("dx", "dy", "dz")  # ee_pos deltas
    assert spec.dim == len(BRIDGE_STATE_NAMES) == store.features["state"].shape[0]


def test_raw_picks_the_camera_and_accepts_a_trajectory_directory(tmp_path):
    written = write_raw_dataset(tmp_path / "src", lengths=(4, 5))
    convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE, camera="images1")
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), written, camera="images1")
    convert_bridge(written[1].path, tmp_path / "one.zarr", image_size=SIZE)
    store = EpisodeStore.open(tmp_path / "one.zarr")
    assert store.n_episodes == 1 and store.source_id(0) == "traj1"


def test_numpy_round_trip(tmp_path):
    written = write_numpy_dataset(tmp_path / "src")
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    store = EpisodeStore.open(tmp_path / "b.zarr")
    check_store(store, written)
    ids = ["train/out.npy#0", "train/out.npy#1", "val/out.npy#0"]
    assert [w.source_id for w in written] == [f"toykitchen1/put_carrot/{i}" for i in ids]
    assert summary.episodes == 3 and store.attrs["extra"]["source_format"] == "bridge_v2_numpy"


def test_code_execution_pickle_never_runs_and_only_its_trajectory_is_skipped(tmp_path):
    written = write_raw_dataset(tmp_path / "src")
    marker = tmp_path / "pwned"
    write_code_exec_pickle(written[1].path / "policy_out.pkl", marker)
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    assert not marker.exists()
    [(source, reason)] = summary.skipped
    assert source == written[1].source_id
    assert "policy_out.pkl" in reason and "refusing to unpickle" in reason and "open" in reason
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), [written[0], written[2]])


def test_code_execution_payload_is_live_under_plain_pickle(tmp_path):
    """The fixture's payload really runs code when unpickled normally (so the test above
    proves something)."""
    write_code_exec_pickle(tmp_path / "p.pkl", tmp_path / "marker")
    with open(tmp_path / "p.pkl", "rb") as f:
        pickle.load(f)
    assert (tmp_path / "marker").exists()


def test_numpy_file_with_a_code_execution_payload_is_skipped(tmp_path):
    written = write_numpy_dataset(tmp_path / "src")
    bad = tmp_path / "src" / "zz_evil" / "out.npy"
    write_code_exec_npy(bad, tmp_path / "pwned")
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    assert not (tmp_path / "pwned").exists()
    assert [s for s, _ in summary.skipped] == ["zz_evil/out.npy#0", "zz_evil/out.npy#1"]
    assert all(str(bad) in r and "refusing to unpickle" in r for _, r in summary.skipped)
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), written)


def test_forbidden_class_is_skipped_naming_the_class_and_the_file(tmp_path):
    written = write_raw_dataset(tmp_path / "src")
    write_forbidden_pickle(written[0].path / "obs_dict.pkl")
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    [(source, reason)] = summary.skipped
    assert source == written[0].source_id
    assert "datetime.datetime" in reason and str(written[0].path / "obs_dict.pkl") in reason


@pytest.mark.parametrize("mode", ["truncate", "garbage"])
def test_bad_jpeg_is_skipped(tmp_path, mode):
    written = write_raw_dataset(tmp_path / "src")
    path = corrupt_jpeg(written[2].path, t=2, mode=mode)
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    # OpenCV 5 refuses a truncated JPEG outright; older libjpeg builds decode it grey-padded
    # and the converter catches it by the missing end-of-image marker.
    [(source, reason)] = summary.skipped
    assert source == written[2].source_id
    assert reason in (
        f"{path}: unreadable or corrupt JPEG",
        f"{path}: truncated JPEG (no end-of-image marker)",
    )
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), written[:2])


def test_missing_lang_txt_converts_with_a_warning(tmp_path):
    written = write_raw_dataset(tmp_path / "src")
    remove_lang(written[1].path)
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    written[1].instruction = ""
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), written)
    [(source, warning)] = summary.warnings
    assert source == written[1].source_id and "no lang.txt" in warning


def test_missing_files_and_count_mismatches_are_skipped_with_reasons(tmp_path):
    written = write_raw_dataset(tmp_path / "src", lengths=(4, 5, 6, 4))
    (written[0].path / "obs_dict.pkl").unlink()
    (written[1].path / "images0" / "im_4.jpg").unlink()  # 4 frames, 5 states
    with open(written[2].path / "policy_out.pkl", "wb") as f:
        pickle.dump([np.zeros(7)] * 2, f)  # 2 actions for 6 frames
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    reasons = dict(summary.skipped)
    assert reasons[written[0].source_id] == f"{written[0].path}: missing obs_dict.pkl"
    assert "4 frames in images0/ but 5 rows of full_state" in reasons[written[1].source_id]
    assert "6 frames but 2 actions" in reasons[written[2].source_id]
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), written[3:])


def test_out_of_range_actions_are_clipped_with_a_warning(tmp_path):
    written = write_raw_dataset(tmp_path / "src", lengths=(4,))
    actions = written[0].actions.copy()
    actions[1, 0], actions[2, 5] = 0.08, -0.4
    with open(written[0].path / "policy_out.pkl", "wb") as f:
        pickle.dump(list(actions), f)
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    [(_, warning)] = summary.warnings
    assert "2 of 3 actions" in warning and "dx +0.08 m" in warning and "dyaw -0.4 rad" in warning
    action = EpisodeStore.open(tmp_path / "b.zarr").load_episode(0)["action"]
    assert action[1, 0] == 1.0 and action[2, 5] == -1.0


def test_recordings_before_the_camera_delay_fix_are_shifted(tmp_path):
    [w] = write_raw_dataset(tmp_path / "src", lengths=(5,), date="2021-06-01_12-00-00")
    convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    ep = EpisodeStore.open(tmp_path / "b.zarr").load_episode(0)
    np.testing.assert_array_equal(ep["rgb"], expected_rgb(w.frames["images0"][1:]))
    np.testing.assert_array_equal(ep["state"], w.states[1:].astype(np.float32))
    scaled = BRIDGE_V2_ACTION_SPEC.scale(ep["action"][:-1])
    np.testing.assert_allclose(scaled, w.actions[:-1], atol=1e-6)


@pytest.mark.parametrize("layout", ["raw", "numpy"])
def test_resume_after_an_interruption_neither_duplicates_nor_loses(tmp_path, monkeypatch, layout):
    lengths = (4, 5, 4, 6, 5)
    write = write_raw_dataset if layout == "raw" else write_numpy_dataset
    written = write(tmp_path / "src", lengths=lengths)
    name = "load_raw_trajectory" if layout == "raw" else "load_numpy_trajectory"
    real, calls = getattr(bridge, name), []

    def crash_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the process is stopped while reading item 3
        return real(*args, **kwargs)

    monkeypatch.setattr(bridge, name, crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    assert EpisodeStore.open(tmp_path / "b.zarr", allow_incomplete=True).n_episodes == 2
    summary = convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    assert (summary.resumed, summary.episodes) == (2, 3)
    check_store(EpisodeStore.open(tmp_path / "b.zarr"), written)


def test_source_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no Bridge V2 data"):
        convert_bridge(tmp_path / "empty", tmp_path / "b.zarr")
    write_raw_dataset(tmp_path / "src", lengths=(4,))
    with pytest.raises(FileNotFoundError, match="found no out.npy"):
        convert_bridge(tmp_path / "src", tmp_path / "b.zarr", layout="numpy")
    convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=SIZE)
    with pytest.raises(ValueError, match="pass the same image_size"):
        convert_bridge(tmp_path / "src", tmp_path / "b.zarr", image_size=32)


# ------------------------------------------------------------------------ safe_pickle
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_pickle_round_trips_numpy_and_containers(tmp_path, protocol):
    data = {
        "state": np.arange(12.0).reshape(3, 4),
        "images": [np.ones((2, 2, 3), np.uint8), np.float32(1.5), np.int64(-3)],
        "plain": (1, 2.5, 1 + 2j, True, None, "s", b"b", {1, 2}, frozenset({3})),
    }
    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    out = safe_load_pickle(tmp_path / "x.pkl")
    np.testing.assert_array_equal(out["state"], data["state"])
    np.testing.assert_array_equal(out["images"][0], data["images"][0])
    assert out["images"][1:] == data["images"][1:] and out["plain"] == data["plain"]


def test_safe_pickle_refuses_os_system_without_running_it(tmp_path):
    import os

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'marker'}",))

    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump({"ok": np.zeros(2), "bad": Exploit()}, f)
    with pytest.raises(UnsafePickleError, match=rf"{tmp_path / 'x.pkl'}.*(posix|os)\.system"):
        safe_load_pickle(tmp_path / "x.pkl")
    assert not (tmp_path / "marker").exists()


def test_safe_load_npy_reads_object_and_plain_arrays(tmp_path):
    trajs = np.empty(2, dtype=object)
    trajs[:] = [{"actions": [np.ones(7)], "language": ["a"]}, {"actions": [], "language": "b"}]
    np.save(tmp_path / "o.npy", trajs)
    out = safe_load_npy(tmp_path / "o.npy")
    assert out.shape == (2,) and out[1]["language"] == "b"
    np.testing.assert_array_equal(out[0]["actions"][0], np.ones(7))
    np.save(tmp_path / "f.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(safe_load_npy(tmp_path / "f.npy"), np.arange(6).reshape(2, 3))
    (tmp_path / "bad.npy").write_bytes(b"not an npy file")
    with pytest.raises(ValueError, match="bad.npy: not a readable .npy"):
        safe_load_npy(tmp_path / "bad.npy")
