"""A restricted unpickler for snapshot files: data comes out, nothing in the file runs.

``pickle.load`` calls whatever a file names (``os.system``, ``builtins.eval``, ...), and the SDK's
``Metagraph.save()`` writes a plain pickle (numpy mode) or a ``torch.save`` zip (``USE_TORCH``
mode) that also names SDK classes (``AxonInfo``, ``NeuronInfo``). This unpickler resolves an
allow-list only: numpy's array and dtype reconstructors, ``_codecs.encode`` (how protocol-2
pickles spell bytes), ``collections.OrderedDict`` and, inside a torch zip, the tensor and
parameter rebuilders, which it replaces by its own bounds-checked numpy versions. Any name under
``bittensor`` becomes an inert :class:`ForeignObject` that keeps the plain data it was given and
never imports or calls the SDK. Every other name is refused with a :class:`SnapshotError`.
"""

from __future__ import annotations

import codecs
import collections
import io
import pickle
import zipfile
from typing import Any

import numpy as np

from .errors import SnapshotError

__all__ = ["ForeignObject", "load_pickle", "load_torch_zip", "is_torch_zip"]

#: Globals a snapshot pickle may name, resolved to the real (harmless) objects.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array reconstructor (numpy 1 and 2 name it differently)
_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor
_NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
}

#: torch storage classes named in a torch zip, and the numpy dtype of their bytes.
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}

#: The largest member of a torch zip read into memory (a guard against zip bombs).
_MAX_MEMBER_BYTES = 2**31


class ForeignObject:
    """An inert stand-in for an SDK object (``bittensor.*``) found in a pickle.

    Attributes:
        foreign_name: the class the file named, e.g. ``bittensor.core.chain_data.axon_info.AxonInfo``.
        args: positional arguments the pickle passed to the class (usually none).
        state: the state the pickle set (for the SDK's dataclasses: a dict of plain values).
    """

    foreign_name = "bittensor"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.state: Any = dict(kwargs) if kwargs else None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def field(self, name: str) -> Any:
        """A value of the recorded state by name, or None."""
        return self.state.get(name) if isinstance(self.state, dict) else None

    def __repr__(self) -> str:
        return f"<inert {self.foreign_name}>"


_FOREIGN_CLASSES: dict[str, type[ForeignObject]] = {}


def _foreign_class(module: str, name: str) -> type[ForeignObject]:
    full = f"{module}.{name}"
    if full not in _FOREIGN_CLASSES:
        _FOREIGN_CLASSES[full] = type(name.replace(".", "_"), (ForeignObject,), {"foreign_name": full})
    return _FOREIGN_CLASSES[full]


class _Refused(pickle.UnpicklingError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name, self.dtype = name, np.dtype(_STORAGE_DTYPES[name])


def _check_dims(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise pickle.UnpicklingError(f"bad tensor {what} {values!r}")
    return values


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` as a bounds-checked numpy copy (never reads outside the storage)."""
    if not isinstance(storage, np.ndarray) or not isinstance(offset, int) or offset < 0:
        raise pickle.UnpicklingError("bad tensor storage or offset")
    size, stride = _check_dims(size, "size"), _check_dims(stride, "stride")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} differ in length")
    if 0 in size:
        return np.zeros(size, dtype=storage.dtype)
    last = offset + sum((s - 1) * st for s, st in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError(f"tensor of size {size} reads past its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=size, strides=tuple(st * storage.itemsize for st in stride), writeable=False
    )
    return np.array(view)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    """``torch._utils._rebuild_parameter[_with_state]``: the parameter's data (its flags are dropped)."""
    return data


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, stream: io.BytesIO, archive: zipfile.ZipFile | None = None, prefix: str = "") -> None:
        super().__init__(stream)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if module == "bittensor" or module.startswith("bittensor."):
            return _foreign_class(module, name)
        if self.archive is not None:
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return _rebuild_tensor
            if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
                return _rebuild_parameter
            if module == "torch" and name in _STORAGE_DTYPES:
                return _StorageType(name)
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if self.archive is None:
            raise pickle.UnpicklingError("a persistent id outside a torch zip")
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {str(pid)[:80]}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        member = f"{self.prefix}data/{key}"
        try:
            info = self.archive.getinfo(member)
        except KeyError:
            raise pickle.UnpicklingError(f"the zip has no storage {member!r}") from None
        if info.file_size > _MAX_MEMBER_BYTES:
            raise pickle.UnpicklingError(f"storage {member!r} declares {info.file_size} bytes")
        raw = self.archive.read(info)
        if not isinstance(numel, int) or numel * storage_type.dtype.itemsize != len(raw):
            raise pickle.UnpicklingError(f"storage {member!r} holds {len(raw)} bytes, not {numel} elements")
        return np.frombuffer(raw, dtype=storage_type.dtype.newbyteorder("<"))


def _load(stream: io.BytesIO, source: str, archive: zipfile.ZipFile | None = None, prefix: str = "") -> Any:
    try:
        return _SafeUnpickler(stream, archive, prefix).load()
    except _Refused as exc:
        raise SnapshotError(
            f"{source}: refused to load `{exc.name}`: a snapshot may hold only numpy arrays, tensors and plain "
            "data (SDK objects are skipped); nothing from the file is run"
        ) from None
    except SnapshotError:
        raise
    except Exception as exc:  # a corrupt stream raises anything from EOFError to MemoryError
        detail = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise SnapshotError(f"{source}: not a readable pickle ({type(exc).__name__}: {detail})") from None


def load_pickle(data: bytes, source: str) -> Any:
    """Unpickle ``data`` with the allow-list above (``source`` names the file in errors)."""
    return _load(io.BytesIO(data), source)


def is_torch_zip(archive: zipfile.ZipFile) -> str | None:
    """The folder prefix of a ``torch.save`` zip (``"archive/"``), or None if ``archive`` is not one."""
    for name in archive.namelist():
        if name.endswith("data.pkl") and name.count("/") == 1:
            return name[: -len("data.pkl")]
    return None


def load_torch_zip(archive: zipfile.ZipFile, source: str) -> Any:
    """The object a ``torch.save`` zip holds, read with the allow-list (no ``torch.load``, no SDK)."""
    prefix = is_torch_zip(archive)
    if prefix is None:
        raise SnapshotError(f"{source}: a zip file without data.pkl is not a torch.save file")
    try:
        order = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
    except KeyError:
        order = "little"
    if order != "little":
        raise SnapshotError(f"{source}: tensors saved with byte order {order!r}; only little-endian files are read")
    return _load(io.BytesIO(archive.read(prefix + "data.pkl")), source, archive, prefix)
