import pytest
import torch

from cosmos_env.tokenizer import Tokenizer, TokenizerConfig


def tiny_config(**overrides) -> TokenizerConfig:
    base = dict(channels=[8, 16], blocks=[1, 1], decoder_blocks=[1, 1], groups=4, heads=2)
    base.update(overrides)
    return TokenizerConfig(**base)


def randomised(cfg: TokenizerConfig, seed: int = 0) -> Tokenizer:
    """A model whose zero-initialised temporal layers are randomised too, so that tests of
    causality are not passed by identity layers."""
    torch.manual_seed(seed)
    model = Tokenizer(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


@pytest.fixture
def tiny():
    return tiny_config
