"""Restricted unpickling for the untrusted pickles of robot datasets (Bridge's ``.pkl``
files and ``.npy`` files holding object arrays).

A pickle can name any importable callable and call it while loading, so ``pickle.load``
(or ``np.load(allow_pickle=True)``) on a downloaded file runs whatever code the file asks
for. `SafeUnpickler` resolves only the globals that numpy's own pickles and plain Python
containers need; any other global (``os.system``, ``builtins.eval``, a custom class, ...)
raises `UnsafePickleError` naming the file and the refused ``module.name`` before anything
is called. What stays possible is what these constructors can do: build arrays, dtypes,
scalars, dicts, lists, tuples, sets, strings, bytes and numbers (a hostile file could still
ask for a huge array, i.e. a MemoryError, but not run code).
"""

from __future__ import annotations

import importlib
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

__all__ = [
    "SafeUnpickler",
    "UnsafePickleError",
    "npy_shape",
    "safe_load_npy",
    "safe_load_pickle",
]

_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray")
_BUILTINS += ("int", "float", "bool", "complex")
# numpy's pickles name their reconstructors under numpy.core (numpy < 2) or numpy._core
# (numpy >= 2); both spellings resolve to whichever module this numpy has.
_NUMPY_CORE = {
    "multiarray": ("_reconstruct", "scalar"),  # ndarray.__reduce__, numpy scalars
    "numeric": ("_frombuffer",),  # ndarray pickled with protocol 5
}
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [("builtins", n) for n in _BUILTINS]
    + [("__builtin__", n) for n in _BUILTINS]  # Python 2 pickles (mapped by fix_imports)
    + [("collections", "OrderedDict"), ("numpy", "ndarray"), ("numpy", "dtype")]
    # bytes pickled with protocol < 3 (array buffers included) come back through
    # _codecs.encode(str, "latin1"); a codec only transforms data, it cannot run code.
    + [("_codecs", "encode")]
    + [
        (f"numpy.{core}.{mod}", name)
        for core in ("core", "_core")
        for mod, names in _NUMPY_CORE.items()
        for name in names
    ]
)


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside `ALLOWED_GLOBALS`; the message names the file
    and the refused ``module.name``. Nothing from the file was called."""


class SafeUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` that resolves only `ALLOWED_GLOBALS` (numpy arrays, dtypes and
    scalars, plain containers and builtins). `source` names the file in error messages."""

    def __init__(self, file: BinaryIO, source: str | os.PathLike = "<pickle>") -> None:
        # latin1: what numpy documents for reading Python 2 array pickles; Python 3 pickles
        # carry their own str/bytes distinction and are unaffected.
        super().__init__(file, encoding="latin1")
        self.source = str(source)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle {module}.{name}: only numpy arrays, "
                "dtypes and scalars and plain containers (dict, list, tuple, set, str, "
                "bytes, numbers) are allowed; the file is corrupt or not safe to load"
            )
        if module.startswith("numpy.core.") or module.startswith("numpy._core."):
            return _numpy_core_attr(module.split(".", 2)[2], name)
        return super().find_class(module, name)


def _numpy_core_attr(submodule: str, name: str) -> Any:
    """``numpy._core.<submodule>.<name>``, or the ``numpy.core`` spelling on numpy < 2."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"this numpy has no {submodule}.{name}")


def safe_load_pickle(path: str | os.PathLike) -> Any:
    """Unpickle the file at `path` with `SafeUnpickler`.

    Raises `UnsafePickleError` (a ValueError) for a forbidden global, and what `pickle`
    raises for a corrupt or truncated file (``pickle.UnpicklingError``, ``EOFError``, ...).
    """
    with open(path, "rb") as f:
        return SafeUnpickler(f, path).load()


def safe_load_npy(path: str | os.PathLike) -> np.ndarray:
    """Load an ``.npy`` file without ``np.load(allow_pickle=True)``.

    The header is parsed by ``numpy.lib.format`` (format versions 1.0 and 2.0; its parser
    only evaluates literals). Arrays of plain dtypes are read by ``np.load`` with pickles
    disallowed; object arrays (e.g. a list of trajectory dicts) are unpickled with
    `SafeUnpickler`. Returns an array of the header's shape and dtype. Raises ValueError
    (or `UnsafePickleError`) naming the file for a bad header, a forbidden global, or a
    payload that does not match the header.
    """
    path = Path(path)
    with open(path, "rb") as f:
        shape, dtype = _read_npy_header(f, path)
        if not dtype.hasobject:
            f.seek(0)
            return np.load(f, allow_pickle=False)
        array = SafeUnpickler(f, path).load()
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
        got = f"{type(array).__name__} {getattr(array, 'shape', '')}"
        raise ValueError(f"{path}: payload is {got}, header says {dtype} array {shape}")
    return array


def npy_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """Shape of the array in an ``.npy`` file, from its header alone (nothing unpickled)."""
    with open(path, "rb") as f:
        return _read_npy_header(f, Path(path))[0]


def _read_npy_header(f: BinaryIO, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except ValueError as e:
        raise ValueError(f"{path}: not a readable .npy file: {e}") from e
    return tuple(shape), np.dtype(dtype)
