"""Sizes of the tiny diffusion networks the dynamics tests build (flat keys, read through
`DiffusionConfig.from_dict`'s key map): a one-block DiT of width 32 and small heads."""

TINY_NET = dict(width=32, depth=1, heads=2, adaln_rank=8, probe_width=8)
