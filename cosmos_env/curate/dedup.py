"""Semantic deduplication (SemDeDup): tokenizer embeddings, k-means, a cosine threshold.

Each clip is embedded by our tokenizer's encoder: the latents of three of its frames
(first, middle, last; resized to the tokenizer's training size) are concatenated, so that
the embedding sees what the clip shows and how it moves. The embeddings are centred on
their mean (what every clip of a corpus shares, a table or a floor, would otherwise make
every pair look alike) and normalised. K-means groups them; within a cluster, a clip whose
cosine similarity to an earlier kept clip reaches ``threshold`` is a duplicate of it.
Clustering first makes the pairwise step cost the sum of the clusters' squares instead of
the corpus's square, as SemDeDup does at web scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

EMBED_FRAMES = 3


@dataclass
class DedupConfig:
    """The embedding's tokenizer and the duplicate threshold."""

    tokenizer: str = "CI8x8-general"  # shipped name or release directory
    size: int = 64  # frames are resized to this square before encoding
    threshold: float = 0.9  # cosine similarity from which two clips are duplicates
    clusters: int = 0  # k-means clusters; 0: about sqrt(clips / 2)
    seed: int = 0


def embed_clip(frames: np.ndarray, tokenizer, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) -> float32 (D,): the encoder latents of three frames, concatenated."""
    from cosmos_env.tokenizer.release import encode_frames

    picks = np.linspace(0, len(frames) - 1, EMBED_FRAMES).round().astype(int)
    small = np.stack(
        [cv2.resize(frames[i], (size, size), interpolation=cv2.INTER_AREA) for i in picks]
    )
    with torch.inference_mode():
        latents = encode_frames(tokenizer, torch.from_numpy(small))
    return latents.float().reshape(-1).numpy()


def kmeans(x: np.ndarray, k: int, seed: int, iterations: int = 20) -> np.ndarray:
    """Cluster labels (N,) of the rows of ``x`` (N, D): k-means++ seeding, Lloyd steps."""
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centres], axis=0)
        total = d.sum()
        centres.append(x[rng.choice(len(x), p=d / total)] if total > 0 else x[rng.integers(len(x))])
    centres = np.stack(centres)
    labels = np.zeros(len(x), int)
    for _ in range(iterations):
        labels = ((x[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            if (labels == j).any():
                centres[j] = x[labels == j].mean(0)
    return labels


def find_duplicates(embeddings: np.ndarray, cfg: DedupConfig) -> dict[int, tuple[int, float]]:
    """Duplicates among clips (N, D), in order: {clip: (the earlier clip it repeats, cosine)}.

    The first clip of a group of duplicates is kept; every later one maps to it."""
    if len(embeddings) < 2:
        return {}
    x = embeddings - embeddings.mean(0)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    k = cfg.clusters or max(1, round(np.sqrt(len(x) / 2)))
    labels = kmeans(x, min(k, len(x)), cfg.seed)
    duplicates: dict[int, tuple[int, float]] = {}
    for j in np.unique(labels):
        members = np.flatnonzero(labels == j)  # ascending: earlier clips are kept first
        similarity = x[members] @ x[members].T
        kept: list[int] = []
        for a, clip in enumerate(members):
            best = max(kept, key=lambda b: similarity[a, b], default=None)
            if best is not None and similarity[a, best] >= cfg.threshold:
                duplicates[int(clip)] = (int(members[best]), float(similarity[a, best]))
            else:
                kept.append(a)
    return duplicates
