"""The one backend registry: every backend's parts import and fit together."""

import dataclasses
import importlib
from pathlib import Path

import pytest

from cosmos_env.dynamics.backends import BACKENDS, backend_of_kind, get_backend


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_backend_names_parts_that_exist_and_fit(name):
    backend = get_backend(name)
    assert backend.name == name and backend_of_kind(backend.kind) is backend
    config_class, model_class = backend.load("config"), backend.load("model")
    train_config = backend.load("train_config")()
    # The training config composes the backend's own dynamics config.
    assert isinstance(train_config.dynamics, config_class)
    assert callable(backend.load("trainer")) and callable(model_class)
    assert config_class.from_dict(train_config.dynamics.to_dict()) == train_config.dynamics
    conf = Path(importlib.import_module("cosmos_env.conf").__path__[0])
    assert (conf / f"{backend.train_conf}.yaml").is_file()


def test_unknown_backends_and_kinds_name_the_known_ones():
    with pytest.raises(
        ValueError, match=r"backend 'gan' unknown; choose from \['ar', 'diffusion'\]"
    ):
        get_backend("gan")
    with pytest.raises(KeyError, match="known: .*autoregressive.*diffusion"):
        backend_of_kind("gan")
    kinds = [b.kind for b in BACKENDS.values()]
    assert len(set(kinds)) == len(kinds)
    assert all(dataclasses.is_dataclass(b) for b in BACKENDS.values())
