"""Exports pass the face post-guard: a store whose frames show a face (scikit-image's
astronaut) is exported with the face pixelated, so that the detector finds none, unless the
guard is switched off, and then the frames leave exactly as stored."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from export_helpers import INSTRUCTIONS, S, action_spec

from cosmos_env.data import EpisodeStore, standard_features
from cosmos_env.data.cli import export_command
from cosmos_env.guardrails.faces import FaceGuard

minari = pytest.importorskip("minari")
skimage_data = pytest.importorskip("skimage.data")
SIZE = 128


@pytest.fixture
def face_store(tmp_path: Path) -> Path:
    """Two 3-frame episodes of a 128x128 crop of the astronaut (her face about 48 px)."""
    crop = cv2.resize(skimage_data.astronaut()[0:256, 96:352], (SIZE, SIZE), cv2.INTER_AREA)
    assert len(FaceGuard().detect(crop)) == 1
    path = tmp_path / "faces.zarr"
    features = standard_features(SIZE, SIZE, S, 7, ("x", "y", "z", "g"), action_spec().names)
    with EpisodeStore.create(
        path, features=features, action_spec=action_spec(), fps=5.0, world="tabletop"
    ) as store:
        for i in range(2):
            store.append_episode(
                {
                    "rgb": np.repeat(crop[None], 3, axis=0),
                    "state": np.zeros((3, S), np.float32),
                    "action": np.zeros((3, 7), np.float32),
                    "reward": np.zeros(3, np.float32),
                },
                INSTRUCTIONS[0],
                f"src-{i}",
            )
    return path


def test_a_minari_export_pixelates_the_face_unless_switched_off(face_store, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    stored = EpisodeStore.open(face_store).load_episode(0, ["rgb"])["rgb"]
    export_command(["minari", str(face_store), "cosmos/faces-v0"])
    guarded = next(minari.load_dataset("cosmos/faces-v0").iterate_episodes()).observations["rgb"]
    assert guarded.shape == stored.shape and not np.array_equal(guarded, stored)
    assert all(len(FaceGuard().detect(frame)) == 0 for frame in guarded)
    export_command(["minari", str(face_store), "cosmos/faces-raw-v0", "--no-face-guard"])
    raw = next(minari.load_dataset("cosmos/faces-raw-v0").iterate_episodes()).observations["rgb"]
    np.testing.assert_array_equal(raw, stored)


def test_a_video_written_for_people_has_no_face(face_store, tmp_path):
    import imageio.v2 as imageio

    from cosmos_env.eval.media import write_png

    frame = EpisodeStore.open(face_store).load_episode(0, ["rgb"])["rgb"][0]
    shown = imageio.imread(write_png(tmp_path / "face.png", frame))
    assert len(FaceGuard().detect(shown)) == 0
    raw = imageio.imread(write_png(tmp_path / "raw.png", frame, guard=False))
    np.testing.assert_array_equal(raw, frame)
