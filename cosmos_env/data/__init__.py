"""Episode data: the zarr episode store, its schema, window sampling and normalisation stats."""

from cosmos_env.data.layout import ChunkProblem, CorruptChunkError, NoChecksumWarning
from cosmos_env.data.sampler import WindowSampler
from cosmos_env.data.spec import ActionSpec, FeatureSpec, standard_features
from cosmos_env.data.stats import compute_stats
from cosmos_env.data.store import FORMAT_VERSION, EpisodeStore, IncompleteStoreError, StoreError
from cosmos_env.data.verify import VerifyReport

__all__ = [
    "FORMAT_VERSION",
    "ActionSpec",
    "ChunkProblem",
    "CorruptChunkError",
    "EpisodeStore",
    "FeatureSpec",
    "IncompleteStoreError",
    "NoChecksumWarning",
    "StoreError",
    "VerifyReport",
    "WindowSampler",
    "compute_stats",
    "standard_features",
]
