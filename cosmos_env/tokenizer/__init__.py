"""Causal video tokenizer (Cosmos-style): Haar patcher, factorised causal blocks, continuous
autoencoder or FSQ discrete tokens, images and videos in one network."""

from cosmos_env.tokenizer.config import TokenizerConfig
from cosmos_env.tokenizer.model import Tokenizer

__all__ = ["Tokenizer", "TokenizerConfig"]
