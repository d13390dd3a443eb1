"""Export an episode store to a Minari dataset (minari 0.5, Arrow storage).

Mapping (store rows as DESIGN.md defines them; an episode of T rows has T - 1 transitions):

- observations: all T rows, as a Dict space {"rgb": Box(0, 255, (H, W, 3), uint8),
  "state": Box(-inf, inf, (S,), float32)} (Minari keeps steps + 1 observations: the last
  is the final observation). The state rides along because policies and world-model
  probes both use it; drop it with ``episode.observations["rgb"]``.
- actions: the T - 1 real actions, in the env-facing [-1, 1] units of every cosmos-env env
  (Box(-1, 1, (A,), float32)); the last row's padding action is dropped. The action spec
  (names, units, physical range) is in the dataset metadata under "cosmos_env".
- rewards[t] = the store's reward[t + 1] (the store keeps the reward received on arriving
  at a row).
- terminations/truncations: the store does not record why an episode ended. When its
  schema has a bool ``is_terminal`` feature, the last row's value says whether the episode
  terminated; otherwise every episode ends in a truncation. No infos are written.
- One-frame episodes have no transition and are left out (Minari cannot store an empty
  episode); the summary names them. Minari episode ids are consecutive from 0.

Images are stored losslessly by default (``jpeg_encoding=False``); Minari's own default,
JPEG, is smaller but lossy.

Where: Minari's datasets root (``$MINARI_DATASETS_PATH``, else ``~/.minari/datasets``), or
`data_path` when given (then point ``MINARI_DATASETS_PATH`` there to load it). The id is
checked before anything touches the disk: a malformed id, or one whose parts would leave
the root (``..``, an absolute path), is refused. Atomicity: the dataset is built in a
hidden directory of this run's own inside the root (Minari lists no hidden directory) and
moved into place at the end, so an interrupted export leaves no dataset; re-running starts
over.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector.episode_buffer import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
from minari.storage import get_dataset_path
from tqdm import tqdm

from cosmos_env.data.exporters.common import (
    ExportSummary,
    PathLike,
    check_destination,
    open_source,
    partial_directory,
    publish,
)
from cosmos_env.data.store import EpisodeStore
from cosmos_env.guardrails.faces import guard_frames

__all__ = ["export_minari"]

_ENV_VAR = "MINARI_DATASETS_PATH"
_NAMESPACE_FILE = "namespace_metadata.json"


def export_minari(
    store_path: PathLike,
    dataset_id: str,
    *,
    data_path: PathLike | None = None,
    overwrite: bool = False,
    jpeg_encoding: bool = False,
    author: str | None = None,
    description: str | None = None,
    guard: bool = True,
) -> ExportSummary:
    """Write the complete store at `store_path` as the Minari dataset `dataset_id`
    (``[namespace/]name-v<version>``), loadable with ``minari.load_dataset(dataset_id)``.

    `data_path` overrides Minari's datasets root. Refuses an existing dataset unless
    ``overwrite=True``. Raises ValueError for a malformed id and when no episode has a
    transition. Faces in the frames are pixelated (`guardrails.faces`) unless
    ``guard=False``.
    """
    check_dataset_id(dataset_id)
    store = open_source(store_path)
    root = Path(data_path) if data_path is not None else Path(get_dataset_path())
    final = root / dataset_id
    check_destination(final, overwrite, "data/metadata.json")
    keep = [i for i in range(store.n_episodes) if store.episode_length(i) > 1]
    if not keep:
        raise ValueError(f"{store.path}: every episode has one frame; Minari needs transitions")
    with partial_directory(root, "cosmos-env-minari") as build_root:
        _build(store, dataset_id, keep, build_root, jpeg_encoding, author, description, guard)
        _move_into(build_root, root, dataset_id)
    return _summary(store, final, keep)


def check_dataset_id(dataset_id: str) -> None:
    """Refuse an id that is not ``[namespace/]name-v<version>`` or whose parts would leave
    the datasets root, before anything is written."""
    parts = str(dataset_id).split("/")
    try:
        parse_dataset_id(dataset_id)
        ok = not any(p in ("", ".", "..") for p in parts)
    except (ValueError, TypeError):  # TypeError: minari's parser on an id without -v<N>
        ok = False
    if not ok:
        raise ValueError(
            f"Minari dataset id {dataset_id!r} is malformed: ids are "
            "[namespace/]name-v<version> (letters, digits, '-', '_'; namespace parts "
            "separated by '/', no '..' and no leading '/'), e.g. cosmos_env/push/expert-v0"
        )


def _build(
    store, dataset_id, keep, build_root, jpeg_encoding, author, description, guard=True
) -> None:
    """The Minari dataset of the ``keep`` episodes, built with ``build_root`` as Minari's
    datasets root."""
    with _datasets_root(build_root), warnings.catch_warnings():
        # Minari warns about every metadata field left unset (env spec, permalink, ...)
        warnings.filterwarnings("ignore", category=UserWarning, module="minari")
        dataset = minari.create_dataset_from_buffers(
            dataset_id,
            # a generator, so that one episode at a time is in memory (Minari iterates it)
            buffer=tqdm(_buffers(store, keep, guard), total=len(keep), desc="export minari"),
            observation_space=_observation_space(store),
            action_space=gym.spaces.Box(-1.0, 1.0, (store.action_spec.dim,), np.float32),
            author=author,
            description=description or _description(store),
            data_format="arrow",
            jpeg_encoding=jpeg_encoding,
        )
        dataset.storage.update_metadata({"cosmos_env": _provenance(store)})


def _observation_space(store: EpisodeStore) -> gym.spaces.Dict:
    """{"rgb": (H, W, 3) uint8 in [0, 255], "state": (S,) float32 unbounded}."""
    return gym.spaces.Dict(
        {
            "rgb": gym.spaces.Box(0, 255, store.features["rgb"].shape, np.uint8),
            "state": gym.spaces.Box(-np.inf, np.inf, store.features["state"].shape, np.float32),
        }
    )


def _buffers(store: EpisodeStore, keep: list[int], guard: bool) -> Iterator[EpisodeBuffer]:
    """One EpisodeBuffer per kept episode of T >= 2 rows: T observations, T - 1 steps; faces
    in the frames pixelated unless ``guard`` is off."""
    keys = ["rgb", "state", "action", "reward"]
    if "is_terminal" in store.features:
        keys.append("is_terminal")
    for new_id, i in enumerate(keep):
        ep = store.load_episode(i, keys)
        steps = len(ep["reward"]) - 1
        last = np.arange(steps) == steps - 1
        terminal = bool(ep["is_terminal"][-1]) if "is_terminal" in ep else False
        yield EpisodeBuffer(
            id=new_id,
            observations={"rgb": guard_frames(ep["rgb"], guard), "state": ep["state"]},
            actions=ep["action"][:-1],  # drop the padding action of the last row
            rewards=ep["reward"][1:],  # reward for the action at t: arriving at t + 1
            terminations=last & terminal,
            truncations=last & (not terminal),
        )


@contextmanager
def _datasets_root(path: Path) -> Iterator[None]:
    """Point Minari at another datasets root for the duration (it reads the env var)."""
    old = os.environ.get(_ENV_VAR)
    os.environ[_ENV_VAR] = str(path)
    try:
        yield
    finally:
        if old is None:
            del os.environ[_ENV_VAR]
        else:
            os.environ[_ENV_VAR] = old


def _move_into(build_root: Path, root: Path, dataset_id: str) -> None:
    """Move the dataset built under `build_root` into `root`, with the namespace metadata
    files of any namespace `root` does not have yet."""
    parts = dataset_id.split("/")
    for depth in range(1, len(parts)):
        namespace = Path(*parts[:depth])
        if not (root / namespace / _NAMESPACE_FILE).exists():
            (root / namespace).mkdir(parents=True, exist_ok=True)
            shutil.copy2(build_root / namespace / _NAMESPACE_FILE, root / namespace)
    (root / dataset_id).parent.mkdir(parents=True, exist_ok=True)
    publish(build_root / dataset_id, root / dataset_id)


def _provenance(store: EpisodeStore) -> dict:
    return {
        "source_store": str(store.path),
        "world": store.world,
        "robot": store.robot,
        "fps": store.fps,
        "camera": store.camera,
        "action_spec": store.action_spec.to_dict(),
        "actions": "normalized to [-1, 1]; physical = low + (a + 1) / 2 * (high - low)",
    }


def _description(store: EpisodeStore) -> str:
    return (
        f"cosmos-env episode store export: world {store.world!r}, robot {store.robot!r}, "
        f"{store.fps:g} fps. Observations: rgb (H, W, 3) uint8 and state; actions in "
        "[-1, 1] (physical range in metadata['cosmos_env']['action_spec'])."
    )


def _summary(store: EpisodeStore, final: Path, keep: list[int]) -> ExportSummary:
    frames = sum(store.episode_length(i) for i in keep)
    dropped = sorted(set(range(store.n_episodes)) - set(keep))
    notes = [
        f"{frames - len(keep)} steps; actions in [-1, 1]; observations Dict(rgb, state)",
    ]
    if dropped:
        notes.append(f"left out one-frame episodes (no transition): {dropped}")
    if "is_terminal" not in store.features:
        notes.append("the store does not record terminations: every episode ends truncated")
    return ExportSummary(str(final), len(keep), frames, notes)
