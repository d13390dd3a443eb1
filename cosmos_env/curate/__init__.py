"""Video curation: raw robot video in, clean clips out as zarr episode stores.

``python -m cosmos_env curate SRC DST [executor=local|ray]``; the stages and how they
compose are in `cosmos_env.curate.pipeline`. Nothing here knows a world: a synthetic
corpus with planted defects for testing and benchmarking is ``benchmarks/curate_corpus.py``.
"""
