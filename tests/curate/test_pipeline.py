"""curate end to end on the planted corpus: every plant found, resumable, the same stores
under the local pool and Ray, faces pixelated, bad input named."""

import json
import shutil

import cv2
import imageio.v2 as imageio
import numpy as np
import pytest
from benchmark_modules import load_benchmark

from cosmos_env.config import load_config
from cosmos_env.curate.config import CurateConfig
from cosmos_env.curate.pipeline import curate
from cosmos_env.data import EpisodeStore

bench = load_benchmark("curate")


def run(src, dst, *overrides):
    cfg = load_config("curate", CurateConfig, [f"src={src}", f"dst={dst}", *overrides])
    return curate(cfg)


@pytest.fixture(scope="module")
def curated(corpus, tmp_path_factory):
    videos, truth = corpus
    dst = tmp_path_factory.mktemp("curated") / "out"
    run(videos, dst, "workers=1")
    return dst


def test_every_plant_is_found(corpus, curated):
    _, truth = corpus
    records = bench._records(curated)
    assert bench.score_cuts(truth, records) | {"planted": 0, "found": 0} == {
        "precision": 1.0,
        "recall": 1.0,
        "planted": 0,
        "found": 0,
    }
    for reason, score in bench.score_clips(truth, records).items():
        assert (score["precision"], score["recall"]) == (1.0, 1.0), reason
        assert score["planted"] > 0, reason


def test_report_and_shards(corpus, curated):
    _, truth = corpus
    report = json.loads((curated / "report.json").read_text())
    stages = report["stages"]
    assert sorted(stages["decode"]["dropped"]) == sorted(truth["unreadable"])
    assert all("cannot be opened" in why for why in stages["decode"]["dropped"].values())
    assert stages["decode"]["in"] == len(truth["videos"]) + 2
    assert [stages[s]["in"] for s in ("filter", "dedup")] == [
        stages["split"]["out"],
        stages["filter"]["out"],
    ]
    clean = sum(c["kind"] == "clean" for v in truth["videos"].values() for c in v["clips"])
    assert stages["dedup"]["out"] == clean
    assert sum(s["episodes"] for s in report["shards"]) == clean
    assert report["clips_per_s"] > 0 and report["frames_per_s"] > 0
    for name in ("kept.png", "dropped.png", "report.md", "clips.jsonl"):
        assert (curated / name).stat().st_size > 0
    sheet = cv2.imread(str(curated / "dropped.png"))
    assert (
        sheet.shape[0] >= 6 * 64
    )  # a row per reason: short, static, blurred, dark, bright, duplicate
    store = EpisodeStore.open(report["shards"][0]["path"])
    ep = store.load_episode(0)
    assert ep["rgb"].dtype == np.uint8 and ep["rgb"].shape[1:] == (64, 64, 3)
    assert "#" in store.source_id(0) and [s.name for s in store.state_spec.slots] == ["time"]
    kept = [json.loads(line) for line in (curated / "clips.jsonl").read_text().splitlines()]
    assert all(c["caption"] for c in kept if c["reason"] is None)


def test_a_rerun_resumes(corpus, curated, tmp_path):
    videos, _ = corpus
    dst = tmp_path / "out"
    shutil.copytree(curated, dst)
    work_files = sorted((dst / ".work").glob("*.npz"))
    work_files[0].unlink()  # as if killed before this video finished
    shutil.rmtree(next((dst / "shards").iterdir()))  # and before this shard was written
    report = run(videos, dst, "workers=1")
    assert json.loads((dst / "report.json").read_text())["videos_processed"] == 1
    assert report["stages"] == json.loads((curated / "report.json").read_text())["stages"]
    assert bench.shards_identical(curated, dst)
    with pytest.raises(ValueError, match=r"other settings \(changed: split\)"):
        run(videos, dst, "split.min_frames=4")


def test_ray_writes_the_same_shards(corpus, curated, tmp_path, ray_session):
    videos, _ = corpus
    run(videos, tmp_path / "ray", "executor=ray", "workers=2")
    assert bench.shards_identical(curated, tmp_path / "ray")


def test_unknown_executor_is_refused(corpus, tmp_path):
    with pytest.raises(ValueError, match="unknown executor 'spark'; choose one of local, ray"):
        run(corpus[0], tmp_path / "out", "executor=spark")


def _face_video(path):
    from skimage import data

    face = data.astronaut()[0:256, 96:352]  # the face with a margin
    frames = []
    for t in range(16):  # a slow pan: the clip moves, so the filters keep it
        shifted = np.roll(face, 3 * t, axis=1)
        frames.append(cv2.resize(shifted, (128, 128), interpolation=cv2.INTER_AREA))
    with imageio.get_writer(
        path, fps=10, codec="libx264", macro_block_size=1, ffmpeg_params=["-crf", "12"]
    ) as w:
        for f in frames:
            w.append_data(f)
    (path.with_suffix(".json")).write_text(
        json.dumps({"instruction": "look", "actions": [[0.5]] * 16})
    )


@pytest.mark.parametrize("guard", [True, False])
def test_faces_are_pixelated_unless_guard_is_off(tmp_path, guard):
    pytest.importorskip("skimage")
    from cosmos_env.guardrails.faces import FaceGuard

    (tmp_path / "src").mkdir()
    _face_video(tmp_path / "src" / "face.mp4")
    report = run(tmp_path / "src", tmp_path / "out", f"guard={str(guard).lower()}", "workers=1")
    (shard,) = report["shards"]
    store = EpisodeStore.open(shard["path"])
    ep = store.load_episode(0)
    faces = sum(len(FaceGuard().detect(f)) for f in ep["rgb"])
    assert (faces == 0) if guard else (faces >= len(ep["rgb"]) // 2)
    assert store.instruction(0) == "look"
    assert np.allclose(ep["action"], 0.5) and store.action_spec.names == ("a0",)


def test_the_command_line_needs_two_paths(tmp_path):
    from cosmos_env.__main__ import main

    with pytest.raises(ValueError, match="usage: python -m cosmos_env curate SRC DST"):
        main(["curate", str(tmp_path)])


def test_known_segment_starts_are_cut_without_a_picture_change(tmp_path, corpus):
    videos, truth = corpus
    name, video = next(iter(truth["videos"].items()))
    clip = next(c for c in video["clips"] if c["kind"] == "clean")
    frames = imageio.mimread(videos / name, memtest=False)[clip["start"] : clip["end"]]
    (tmp_path / "src").mkdir()
    with imageio.get_writer(
        tmp_path / "src" / "one.mp4", fps=10, codec="libx264", macro_block_size=1
    ) as w:
        for f in frames:
            w.append_data(f)
    middle = len(frames) // 2
    segments = [
        {"start": 0, "end": middle, "instruction": "a"},
        {"start": middle, "end": len(frames), "instruction": "b"},
    ]
    (tmp_path / "src" / "one.json").write_text(json.dumps({"segments": segments}))
    run(tmp_path / "src", tmp_path / "out", "workers=1")
    clips = [
        json.loads(line) for line in (tmp_path / "out" / "clips.jsonl").read_text().splitlines()
    ]
    assert [(c["start"], c["end"], c.get("instruction")) for c in clips] == [
        (0, middle, "a"),
        (middle, len(frames), "b"),
    ]
