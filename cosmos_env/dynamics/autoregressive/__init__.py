"""Autoregressive dynamics: a Llama-style transformer over discrete FSQ token frames and
per-frame action tokens, factorised over the tokens' digits, with a KV cache for
token-by-token decoding, a MaskGIT-style parallel mode, and token sampling; TokenDynamics
adds the state probe (``data``, ``train`` and ``evaluate`` are imported where used)."""

from cosmos_env.dynamics.autoregressive.config import ARConfig
from cosmos_env.dynamics.autoregressive.kv_cache import KVCache
from cosmos_env.dynamics.autoregressive.layers import digits, indices
from cosmos_env.dynamics.autoregressive.model import TokenDynamics
from cosmos_env.dynamics.autoregressive.sampling import filter_logits, sample_logits
from cosmos_env.dynamics.autoregressive.transformer import ARTransformer

__all__ = [
    "ARConfig",
    "ARTransformer",
    "KVCache",
    "TokenDynamics",
    "digits",
    "filter_logits",
    "indices",
    "sample_logits",
]
