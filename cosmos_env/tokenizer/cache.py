"""Latent cache: an image tokenizer's latents (continuous) or token indices (discrete) for
every frame of a store, kept in the store at ``cache/<key>`` where the key names the
tokenizer and its weights' checksum, e.g. ``latent_CI8x8_1a2b3c4d5e6f``.

A cache is written under a temporary name and renamed when complete, then registered in the
store's ``caches`` attribute. Reading checks the key, the checksum and the row count, so a
cache made by other weights, or before episodes were appended, is refused, never used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
import zarr
from tqdm import tqdm
from zarr.codecs import BloscCodec, BloscShuffle

from cosmos_env.config import EncodeConfig
from cosmos_env.data.store import EpisodeStore, StoreError
from cosmos_env.tokenizer.data import store_paths
from cosmos_env.tokenizer.model import Tokenizer
from cosmos_env.tokenizer.release import encode_frames, load_tokenizer


class StaleCacheError(StoreError):
    """The store has no valid cache for this tokenizer and these weights."""


def cache_key(model: Tokenizer) -> str:
    prefix = "tokens" if model.cfg.kind == "discrete" else "latent"
    return f"{prefix}_{model.cfg.name}_{model.checksum}"


def _require_image_tokenizer(model: Tokenizer) -> None:
    if model.cfg.temporal_factor != 1:
        raise ValueError(
            f"{model.cfg.name} compresses time ({model.cfg.temporal_factor}x); the latent cache "
            "holds one latent per frame, so it needs an image tokenizer (CI8x8, DI8x8)"
        )


def encode_store(
    path: str | Path, model: Tokenizer, batch_size: int = 256, overwrite: bool = False
) -> dict:
    """Encode every frame of the (complete) store at ``path`` into its cache; return a summary."""
    _require_image_tokenizer(model)
    store = EpisodeStore.open(path)
    if "rgb" not in store.features:
        raise StoreError(
            f"{path} holds no rgb frames, only another tokenizer's codes "
            f"({', '.join(k for k in store.features if k.startswith('tokens_'))}): a token "
            "store cannot be encoded by this tokenizer"
        )
    key = cache_key(model)
    caches = dict(store.attrs.get("caches", {}))
    if key in caches and caches[key]["n_frames"] == store.n_frames and not overwrite:
        return {"store": str(path), "key": key, "frames": store.n_frames, "skipped": "up to date"}
    n, (h, w) = store.n_frames, store.features["rgb"].shape[:2]
    s = model.cfg.spatial_factor
    discrete = model.cfg.kind == "discrete"
    row_shape = (h // s, w // s) if discrete else (model.cfg.code_channels, h // s, w // s)
    cache_dir = Path(path) / "cache"
    tmp_name = f".{key}.partial"
    shutil.rmtree(cache_dir / tmp_name, ignore_errors=True)
    root = zarr.open_group(str(path), mode="r+")
    group = root.require_group("cache")
    array = group.create_array(
        tmp_name,
        shape=(n, *row_shape),
        chunks=(min(1024, n), *row_shape),
        dtype="int32" if discrete else "float32",
        compressors=BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.shuffle),
    )
    for start in tqdm(range(0, n, batch_size), desc=f"encode {key}", unit="batch"):
        frames = torch.from_numpy(
            store.get_rows(start, min(n, start + batch_size), keys=["rgb"])["rgb"]
        )
        latents = encode_frames(model, frames)
        if discrete:
            rows = model.fsq.codes_to_indices(latents.movedim(1, -1)).to(torch.int32)
        else:
            rows = latents
        array[start : start + len(frames)] = rows.numpy()
    shutil.rmtree(cache_dir / key, ignore_errors=True)
    os.replace(cache_dir / tmp_name, cache_dir / key)  # complete: make it visible
    stale = [k for k, v in caches.items() if v["tokenizer"] == model.cfg.name and k != key]
    caches[key] = {
        "tokenizer": model.cfg.name,
        "checksum": model.checksum,
        "kind": model.cfg.kind,
        "n_frames": n,
        "row_shape": list(row_shape),
    }
    for old in stale:  # caches of older weights of the same tokenizer are now useless
        shutil.rmtree(cache_dir / old, ignore_errors=True)
        del caches[old]
    root.attrs["caches"] = caches
    return {"store": str(path), "key": key, "frames": n, "row_shape": list(row_shape)}


def load_cache(store: EpisodeStore, model: Tokenizer) -> zarr.Array:
    """The cache array (N, ...) of ``model`` in ``store``, row-aligned with ``data/rgb``."""
    key = cache_key(model)
    caches = store.attrs.get("caches", {})
    if key not in caches:
        others = [k for k, v in caches.items() if v["tokenizer"] == model.cfg.name]
        hint = f"; it holds {others}, made by other weights" if others else ""
        raise StaleCacheError(
            f"{store.path} has no cache {key!r}{hint}. Run `python -m cosmos_env encode "
            f"tokenizer={model.source} data={store.path}`"
        )
    if caches[key]["n_frames"] != store.n_frames:
        raise StaleCacheError(
            f"cache {key!r} in {store.path} covers {caches[key]['n_frames']} frames but the "
            f"store has {store.n_frames} (episodes were added since); re-run "
            "`python -m cosmos_env encode`"
        )
    array = zarr.open_array(str(Path(store.path) / "cache" / key), mode="r")
    return array


def encode_command(cfg: EncodeConfig) -> list[dict]:
    """``python -m cosmos_env encode tokenizer=NAME data=PATH`` over one store or a directory."""
    model = load_tokenizer(cfg.tokenizer)
    return [encode_store(p, model, cfg.batch_size, cfg.overwrite) for p in store_paths(cfg.data)]
