"""SemDeDup on tokenizer embeddings: copies and near copies found, distinct clips kept."""

import numpy as np
import pytest

from cosmos_env.curate.dedup import DedupConfig, embed_clip, find_duplicates, kmeans
from cosmos_env.curate.video import read_video


def test_kmeans_separates_blobs_and_is_deterministic():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    x = np.concatenate([c + rng.normal(0, 0.5, (20, 2)) for c in centres])
    labels = kmeans(x, 3, seed=1)
    assert np.array_equal(labels, kmeans(x, 3, seed=1))
    assert all(len(set(labels[i * 20 : (i + 1) * 20])) == 1 for i in range(3))
    assert len(set(labels)) == 3


def test_later_copies_map_to_the_first():
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(10, 32))
    x = np.concatenate([distinct, distinct[[2]], distinct[[5]] + rng.normal(0, 0.01, (1, 32))])
    found = find_duplicates(x, DedupConfig(threshold=0.95))
    assert sorted(found) == [10, 11]
    assert found[10][0] == 2 and found[11][0] == 5
    assert found[10][1] == pytest.approx(1.0)


def test_clip_embeddings_tell_copies_from_other_clips(corpus):
    from cosmos_env.tokenizer.release import load_tokenizer

    videos, truth = corpus
    tokenizer = load_tokenizer("CI8x8-general")
    clips, copies = [], []
    for name, video in truth["videos"].items():
        frames = read_video(videos / name)[0]
        for c in video["clips"]:
            if c["kind"] in ("clean", "exact_dup", "near_dup"):
                clips.append(c)
                emb = embed_clip(frames[c["start"] : c["end"]], tokenizer, 64)
                copies.append(emb)
    x = np.stack(copies)
    assert x.shape[1] == 3 * 16 * 8 * 8  # three frames' 16x8x8 latents
    found = find_duplicates(x, DedupConfig())
    planted = {i for i, c in enumerate(clips) if c["copy_of"] is not None}
    assert set(found) == planted
    for i, (j, _) in found.items():
        assert clips[j]["id"] == clips[i]["copy_of"]
