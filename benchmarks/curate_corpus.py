"""A synthetic raw-video corpus with planted defects, rendered from our worlds, for testing
and benchmarking ``curate`` (`benchmarks/curate.py`, `tests/curate/`).

Episodes of the tabletop with a randomised scene (a new table, light, objects and camera
each episode, moved by the play policy) are cut into clips, some of them spoiled on
purpose, and joined back to back into mp4 files, so that every join is a planted cut:

- ``clean``: a stretch of an episode as rendered;
- ``static``: one frame held, with sensor noise (std 2);
- ``blurred``: Gaussian blur, sigma 1-2 pixels;
- ``dark`` / ``bright``: near-black (5-8% of the light) or washed out;
- ``short``: 3-5 frames, under the splitter's minimum;
- ``exact_dup`` / ``near_dup``: a clean clip again, in a later video, as it was or with
  its brightness shifted, noise added and encoded anew.

Every clip draws its own episode (duplicates excepted), so two clips never show the same
scene by accident. ``truth.json`` lists each video's planted cuts and clips (frame spans
and kinds); two unreadable files (one truncated, one not a video) test the decoder's
refusal. Deterministic for a seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import imageio.v2 as imageio
import numpy as np

KINDS = ("clean", "static", "blurred", "dark", "bright", "short", "exact_dup", "near_dup")
# Of every 20 clips: 9 clean (some of them get copied later), 2 of each defect, 1 + 1 copies.
MIX = {"clean": 9, "static": 2, "blurred": 2, "dark": 2, "bright": 2, "short": 1}
COPIES = {"exact_dup": 1, "near_dup": 1}
FPS = 10


def render_episodes(n: int, out: Path, seed: int, steps: int = 40) -> list[np.ndarray]:
    """``n`` episodes (T, 64, 64, 3) of the randomised tabletop under the play policy."""
    from cosmos_env.config import GenerateConfig, load_config
    from cosmos_env.data.store import EpisodeStore
    from cosmos_env.generate import generate_unless_complete

    overrides = ["world=tabletop_random", "task=push", "policy=play", f"episodes={n}"]
    overrides += [f"seed={seed}", f"out={out}", f"max_steps={steps}"]
    generate_unless_complete(load_config("generate", GenerateConfig, overrides))
    store = EpisodeStore.open(out)
    return [store.load_episode(i, ["rgb"])["rgb"] for i in range(n)]


def spoil(kind: str, frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A clip of ``kind`` made from clean ``frames`` (T, H, W, 3) uint8."""
    x = frames.astype(np.float32)
    if kind == "static":
        x = np.repeat(x[len(x) // 2][None], len(x), 0) + rng.normal(0, 2, x.shape)
    elif kind == "blurred":
        sigma = rng.uniform(1.0, 2.0)
        x = np.stack([cv2.GaussianBlur(f, (0, 0), sigma) for f in x])
    elif kind == "dark":
        x = x * rng.uniform(0.05, 0.08)
    elif kind == "bright":
        x = 255 - (255 - x) * rng.uniform(0.03, 0.06)
    elif kind == "near_dup":
        x = x + rng.uniform(6, 10) * rng.choice([-1, 1]) + rng.normal(0, 2, x.shape)
    return np.clip(x, 0, 255).round().astype(np.uint8)


def _plan(n_clips: int, rng: np.random.Generator) -> list[str]:
    """The kinds of ``n_clips`` clips: the mix, copies last (they repeat earlier clips)."""
    per = sum(MIX.values()) + sum(COPIES.values())
    rounds = -(-n_clips // per)
    originals = [k for k, m in MIX.items() for _ in range(m * rounds)]
    rng.shuffle(originals)
    copies = [k for k, m in COPIES.items() for _ in range(m * rounds)]
    return (originals + copies)[: max(n_clips, len(copies) + 1)]


def _clips(kinds: list[str], episodes: list[np.ndarray], rng: np.random.Generator) -> list[dict]:
    clips, clean, next_episode = [], [], 0
    for kind in kinds:
        if kind in COPIES:
            source = clean.pop(int(rng.integers(len(clean))))
            frames = source["frames"] if kind == "exact_dup" else spoil(kind, source["frames"], rng)
            clips.append({"kind": kind, "frames": frames, "copy_of": source["id"]})
            continue
        episode = episodes[next_episode]
        next_episode += 1
        length = int(rng.integers(3, 6)) if kind == "short" else int(rng.integers(16, 33))
        start = int(rng.integers(0, len(episode) - length + 1))
        frames = spoil(kind, episode[start : start + length], rng)
        clips.append({"kind": kind, "frames": frames, "id": len(clips)})
        if kind == "clean":
            clean.append(clips[-1])
    return clips


def _write_video(path: Path, frames: np.ndarray) -> None:
    # Near-lossless H.264 (crf 12), so that an exact duplicate decodes as one.
    with imageio.get_writer(
        path, fps=FPS, codec="libx264", macro_block_size=1, ffmpeg_params=["-crf", "12"]
    ) as writer:
        for frame in frames:
            writer.append_data(frame)


def write_corpus(out: Path, n_clips: int = 200, seed: int = 0, per_video: int = 5) -> dict:
    """Write the corpus under ``out/videos`` and its truth to ``out/truth.json``; return it."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    kinds = _plan(n_clips, rng)
    originals = sum(k not in COPIES for k in kinds)
    episodes = render_episodes(originals, out / "episodes.zarr", seed)
    clips = _clips(kinds, episodes, rng)
    videos_dir = out / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    truth: dict = {"fps": FPS, "videos": {}, "unreadable": []}
    for v, first in enumerate(range(0, len(clips), per_video)):
        group = clips[first : first + per_video]
        name = f"v{v:04d}.mp4"
        bounds = np.cumsum([0] + [len(c["frames"]) for c in group])
        _write_video(videos_dir / name, np.concatenate([c["frames"] for c in group]))
        truth["videos"][name] = {
            "cuts": [int(b) for b in bounds[1:-1]],
            "clips": [
                {
                    "start": int(a),
                    "end": int(b),
                    "kind": c["kind"],
                    "id": c.get("id"),
                    "copy_of": c.get("copy_of"),
                }
                for c, a, b in zip(group, bounds[:-1], bounds[1:], strict=True)
            ],
        }
    _write_unreadable(videos_dir, truth)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


def _write_unreadable(videos_dir: Path, truth: dict) -> None:
    """A truncated mp4 (its index is at the end, and is cut off) and a file that is no video."""
    first = next(iter(truth["videos"]))
    data = (videos_dir / first).read_bytes()
    (videos_dir / "zz_truncated.mp4").write_bytes(data[: len(data) // 2])
    (videos_dir / "zz_not_a_video.webm").write_bytes(b"this is not a video\n" * 50)
    truth["unreadable"] = ["zz_truncated.mp4", "zz_not_a_video.webm"]
