"""``python -m cosmos_env play``: drive a world model live from a browser page, with its
simulator beside it where its world has one (``session.py``: the envs; ``server.py``: the
page and its websocket)."""
