"""Store integrity: crc32c chunks, missing chunks never read as zeros, errors that name the
chunk, `EpisodeStore.verify`, stores without checksums, migration, ``python -m cosmos_env
verify``."""

from __future__ import annotations

import hashlib
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import store_helpers as helpers
import zarr
from zarr.codecs import Crc32cCodec

from cosmos_env.__main__ import main
from cosmos_env.data import CorruptChunkError, EpisodeStore, NoChecksumWarning, StoreError, layout
from cosmos_env.data.state_spec import EndEffector, StateSlot, StateSpec

LENGTHS, fill_store, make_episode = helpers.LENGTHS, helpers.fill_store, helpers.make_episode
N = sum(LENGTHS)  # 72 rows; ends 5, 22, 23, 63, 72; rgb chunks of 8 rows, the rest in one chunk


def damage(file: Path, how: str) -> None:
    """Delete the file, cut it to half its length, or flip one bit in its middle."""
    raw = bytearray(file.read_bytes())
    if how == "delete":
        file.unlink()
    elif how == "truncate":
        file.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        raw[len(raw) // 2] ^= 0x04
        file.write_bytes(bytes(raw))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    fill_store(tmp_path / "s.zarr")
    return tmp_path / "s.zarr"


# (array, chunk key, a public read that touches the chunk, rows, episodes) of the fixture
CHUNKS = {
    "rgb": ("data/rgb", "c/2/0/0/0", lambda s: s.get_rows(16, 24, ["rgb"]), (16, 24), (1, 4)),
    "state": ("data/state", "c/0/0", lambda s: s.load_episode(2, ["state"]), (0, N), (0, 5)),
    "action": ("data/action", "c/0/0", lambda s: s.get_window(3, 5, 4, ["action"]), (0, N), (0, 5)),
    "is_last": ("data/is_last", "c/0", lambda s: s.get_frames(np.array([70, 3])), (0, N), (0, 5)),
    "instruction": ("meta/instruction", "c/0", lambda s: s.instruction(1), (0, 5), (0, 5)),
}
KINDS = {"delete": "missing", "truncate": "checksum", "flip": "checksum"}


# ------------------------------------------------------------------------------ healthy
def test_healthy_store_has_checksums_and_verifies_clean(store_path: Path) -> None:
    store = EpisodeStore.open(store_path)
    group = zarr.open_group(str(store_path), mode="r")
    for _, arr in [*group["data"].arrays(), *group["meta"].arrays()]:
        assert isinstance(arr.metadata.codecs[-1], Crc32cCodec), arr.path
    manifest = store.attrs["integrity"]["manifest"]
    assert set(manifest["arrays"]) == {f"data/{k}" for k in store.features} | {
        "meta/episode_ends",
        "meta/instruction",
        "meta/source_id",
    }
    report = store.verify()
    assert report.ok and report.checksums and report.notes == []
    assert report.chunks == 9 + 7 + 3  # rgb, the other 7 features, the 3 meta arrays
    assert 0 < report.bytes_checked <= store.bytes_stored()
    assert report.lines() == [
        f"{store_path}: clean ({report.chunks} chunks, {report.bytes_checked / 1e6:.1f} MB checked"
        f" in {report.seconds:.2f} s, {report.seconds_per_gb:.1f} s/GB)"
    ]


def test_chunks_equal_to_the_fill_value_are_stored(tmp_path: Path) -> None:
    # zarr skips such chunks by default: here a missing one would be ambiguous.
    path = tmp_path / "s.zarr"
    store = helpers.create_store(path)
    ep = make_episode(0, 16)
    ep["rgb"][:8] = 0  # rgb chunk 0 all fill value
    ep["reward"][:] = 0
    store.append_episode(ep)
    store.finalize()
    store = EpisodeStore.open(path, "a")  # the array config is set again on open
    store.append_episode({**make_episode(1, 8), "rgb": np.zeros((8, 8, 8, 3), np.uint8)})
    store.finalize()
    for rel in ("data/rgb/c/0/0/0/0", "data/rgb/c/2/0/0/0", "data/reward/c/0"):
        assert (path / rel).is_file(), rel
    assert EpisodeStore.open(path).verify().ok


# ------------------------------------------------------------------------ bad chunks
@pytest.mark.parametrize("how", list(KINDS))
@pytest.mark.parametrize("which", list(CHUNKS))
def test_bad_chunk_raises_naming_error_and_verify_reports_it(
    store_path: Path, which: str, how: str
) -> None:
    array, key, read, rows, episodes = CHUNKS[which]
    file = store_path / array / key
    damage(file, how)
    store = EpisodeStore.open(store_path)
    with pytest.raises(CorruptChunkError) as caught:
        read(store)
    problem = caught.value.problem
    assert (problem.array, problem.rows, problem.episodes) == (array, rows, episodes)
    assert (problem.file, problem.kind) == (str(file), KINDS[how])
    message = str(caught.value)
    assert array in message and str(file) in message and f"rows {rows[0]}-{rows[1] - 1}" in message
    assert "episode" in message and f"python -m cosmos_env verify {store_path}" in message
    assert "re-generate or re-convert" in message
    report = store.verify()
    assert not report.ok
    assert [(p.array, p.rows, p.file, p.kind) for p in report.problems] == [
        (array, rows, str(file), KINDS[how])
    ]


def test_reads_that_miss_the_bad_chunk_still_work(store_path: Path) -> None:
    damage(store_path / "data/rgb/c/2/0/0/0", "delete")
    store = EpisodeStore.open(store_path)
    np.testing.assert_array_equal(
        store.get_rows(0, 16, ["rgb"])["rgb"][:5], make_episode(0, 5)["rgb"]
    )
    with pytest.raises(CorruptChunkError, match=r"episodes 1-3"):  # rows 16-23
        store.get_frames(np.array([1, 20]), ["rgb"])


def test_flip_in_the_stored_checksum_is_detected(store_path: Path) -> None:
    file = store_path / "data/rgb/c/0/0/0/0"
    raw = bytearray(file.read_bytes())
    raw[-1] ^= 0x01
    file.write_bytes(bytes(raw))
    with pytest.raises(CorruptChunkError, match="crc32c"):
        EpisodeStore.open(store_path).get_rows(0, 1)


def test_bad_episode_ends_chunk_fails_open(store_path: Path) -> None:
    damage(store_path / "meta/episode_ends/c/0", "delete")
    with pytest.raises(CorruptChunkError, match="meta/episode_ends: chunk file missing"):
        EpisodeStore.open(store_path)


def test_incomplete_store_reads_and_appends_are_checked(store_path: Path) -> None:
    store = EpisodeStore.open(store_path, "a")
    store.append_episode(make_episode(5, 3))  # rows 72-74: rgb chunk 9 holds 72-79
    damage(store_path / "data/rgb/c/9/0/0/0", "delete")
    partial = EpisodeStore.open(store_path, allow_incomplete=True)
    with pytest.raises(CorruptChunkError, match="data/rgb: chunk file missing.*episode 5"):
        partial.load_episode(5)
    # The next append reads chunk 9 back to add rows to it: it must not fill rows 72-74 in
    # with zeros.
    with pytest.raises(CorruptChunkError, match="rows 72-79"):
        store.append_episode(make_episode(6, 2))
    assert store.n_episodes == 6


def test_verify_reports_changed_attrs(store_path: Path) -> None:
    group = zarr.open_group(str(store_path), mode="r+")
    group.attrs["caches"] = {"latent_x": {"n_frames": N}}  # tokenizer caches: not the store's
    assert EpisodeStore.open(store_path).verify().ok
    group.attrs["fps"] = 99.0
    report = EpisodeStore.open(store_path).verify()
    assert [(p.array, p.kind) for p in report.problems] == [("attrs", "metadata")]
    assert "digest" in report.problems[0].detail


def test_digest_covers_state_spec_and_world_description(store_path: Path) -> None:
    group = zarr.open_group(str(store_path), mode="r+")
    spec = group.attrs["state_spec"]
    group.attrs["state_spec"] = {**spec, "slots": [["x", 1, "joint", "rad"], *spec["slots"][1:]]}
    report = EpisodeStore.open(store_path).verify()
    assert [(p.array, p.kind) for p in report.problems] == [("attrs", "metadata")]
    group.attrs["state_spec"] = spec
    assert EpisodeStore.open(store_path).verify().ok
    group.attrs["world_description"] = {"entry_point": "a:b", "kwargs": {}}
    assert "digest" in EpisodeStore.open(store_path).verify().problems[0].detail


def test_digest_of_a_store_finalized_before_state_specs_is_unchanged(store_path: Path) -> None:
    """Stores finalized without the state_spec/world_description attrs keep their digest."""
    attrs = EpisodeStore.open(store_path).attrs
    stats = zarr.open_group(str(store_path), mode="r")["meta/stats"].attrs.asdict()
    old_keys = ("format_version", "schema", "action_spec", "fps", "world", "camera", "robot")
    owned = {k: attrs[k] for k in (*old_keys, "extra")}
    text = json.dumps([owned, stats], sort_keys=True, allow_nan=True)
    old = {k: v for k, v in attrs.items() if k not in ("state_spec", "world_description")}
    assert layout.attrs_digest(old, stats) == hashlib.sha256(text.encode()).hexdigest()
    assert layout.attrs_digest(attrs, stats) != layout.attrs_digest(old, stats)


# --------------------------------------------------------------- stores without checksums
def _open_quietly(path: Path) -> EpisodeStore:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoChecksumWarning)
        return EpisodeStore.open(path)


def test_store_without_checksums_reads_with_a_warning(store_path: Path) -> None:
    helpers.strip_checksums(store_path)
    with pytest.warns(NoChecksumWarning, match="no checksums.*python -m cosmos_env migrate"):
        store = EpisodeStore.open(store_path)
    for i, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(store.load_episode(i)["rgb"], make_episode(i, n)["rgb"])
    report = store.verify()
    assert report.ok and not report.checksums
    assert "no checksums" in report.notes[0]
    with pytest.warns(NoChecksumWarning):
        with EpisodeStore.open(store_path, "a") as resumed:  # appending still works
            resumed.append_episode(make_episode(9, 6))
    with pytest.warns(NoChecksumWarning):
        store = EpisodeStore.open(store_path)
    np.testing.assert_array_equal(store.load_episode(5)["state"], make_episode(9, 6)["state"])


def test_store_without_checksums_verify_checks_what_it_can(store_path: Path) -> None:
    helpers.strip_checksums(store_path)
    damage(store_path / "data/rgb/c/1/0/0/0", "truncate")  # undecodable
    damage(store_path / "data/rgb/c/4/0/0/0", "delete")  # may have been all zeros
    damage(store_path / "data/is_first/c/0", "delete")  # holds episode starts: cannot be
    store = _open_quietly(store_path)
    with pytest.raises(CorruptChunkError, match="data/rgb: chunk cannot be decoded") as caught:
        store.get_rows(8, 9, ["rgb"])
    assert caught.value.problem.kind == "corrupt"
    report = store.verify()
    assert [(p.array, p.rows, p.kind) for p in report.problems] == [
        ("data/rgb", (8, 16), "corrupt"),
        ("data/is_first", (0, N), "missing"),
    ]
    assert any(n.startswith("data/rgb: 1 chunks have no file") for n in report.notes)


def test_migrate_copies_into_a_store_with_checksums(store_path: Path, tmp_path: Path) -> None:
    helpers.strip_checksums(store_path)
    (store_path / "cache").mkdir()
    (store_path / "cache" / "note").write_text("kept")
    new = EpisodeStore.migrate(store_path, tmp_path / "new.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoChecksumWarning)
        new = EpisodeStore.open(tmp_path / "new.zarr")
    assert new.verify().ok and new.verify().checksums
    old = _open_quietly(store_path)
    for i in range(len(LENGTHS)):
        for key, value in old.load_episode(i).items():
            np.testing.assert_array_equal(new.load_episode(i)[key], value, err_msg=key)
        assert new.instruction(i) == old.instruction(i)
    assert (tmp_path / "new.zarr" / "cache" / "note").read_text() == "kept"
    with pytest.raises(StoreError, match="choose a DST other than"):
        EpisodeStore.migrate(store_path, store_path)
    damage(store_path / "data/is_first/c/0", "delete")
    with pytest.raises(StoreError, match="cannot migrate.*data/is_first"):
        EpisodeStore.migrate(store_path, tmp_path / "other.zarr")


def test_migrate_keeps_state_spec_and_world_description(tmp_path: Path) -> None:
    spec = StateSpec(
        (StateSlot("hand_pos", 3, "position", "m"), StateSlot("grip", 1, "joint", "m")),
        end_effector=EndEffector("hand_pos", "", (0, 1, 2)),
    )
    world = {"entry_point": "my_worlds.arm:make_world", "kwargs": {"n_objects": 2}}
    with helpers.create_store(tmp_path / "s.zarr", state_spec=spec, world_description=world) as s:
        s.append_episode(make_episode(0, 4))
    helpers.strip_checksums(tmp_path / "s.zarr")
    new = EpisodeStore.migrate(tmp_path / "s.zarr", tmp_path / "new.zarr")
    assert new.state_spec == spec and new.world_description == world
    assert new.verify().ok


# ------------------------------------------------------------------------------- CLI
def test_verify_command_exit_codes(store_path: Path, tmp_path: Path, capsys) -> None:
    assert main(["verify", str(store_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{store_path}: clean (19 chunks, ") and "s/GB)" in out
    shutil.copytree(store_path, tmp_path / "bad.zarr")
    damage(tmp_path / "bad.zarr/data/rgb/c/2/0/0/0", "delete")
    damage(tmp_path / "bad.zarr/data/state/c/0/0", "flip")
    assert main(["verify", str(tmp_path / "bad.zarr")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{tmp_path / 'bad.zarr'}: data/rgb: chunk file missing [rows 16-23")
    assert "data/state: chunk fails its crc32c checksum" in lines[1]
    damage(tmp_path / "bad.zarr/meta/episode_ends/c/0", "delete")
    assert main(["verify", str(tmp_path / "bad.zarr")]) == 1
    assert "unreadable" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "nothing.zarr")]) == 2
    err = capsys.readouterr().err
    assert "is not an episode store" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as usage:
        main(["verify"])
    assert usage.value.code == 2


def test_migrate_command(store_path: Path, tmp_path: Path, capsys) -> None:
    helpers.strip_checksums(store_path)
    assert main(["migrate", str(store_path), str(tmp_path / "new.zarr")]) == 0
    assert "with checksums" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "new.zarr")]) == 0
    assert main(["migrate", str(store_path), str(store_path)]) == 1
    assert "choose a DST other than" in capsys.readouterr().err
