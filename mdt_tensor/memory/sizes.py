"""How much memory an object holds, and a compact read-only copy of nested Python data.

``get_object_size`` walks containers without recursion (deep nesting is fine), counts a shared
object once, sizes tensors and arrays by their buffers, and never iterates anything but the
builtin containers: generators, iterators and files are sized as objects and left untouched
(the original consumed generators and sized a numpy array element by element).
"""

from __future__ import annotations

import collections
import sys
import types
from typing import Any

import numpy as np
import torch

from .._validation import check_bool
from ..errors import ValueRangeError

__all__ = ["get_object_size", "optimize_data_structure"]

#: Objects sized by ``sys.getsizeof`` alone: never looked into.
_OPAQUE = (
    str, bytes, bytearray, int, float, complex, bool, type(None), range, memoryview,
    type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
    types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType, types.CodeType, types.FrameType,
)


def _tensor_buffer(t: torch.Tensor, include_device: bool, seen_buffers: set[tuple[str, int]]) -> int:
    if t.device.type != "cpu" and not include_device:
        return 0
    if t.is_sparse:
        return _tensor_buffer(t._indices(), include_device, seen_buffers) + _tensor_buffer(t._values(), include_device, seen_buffers)
    try:
        storage = t.untyped_storage()
    except (RuntimeError, NotImplementedError):  # layouts without one storage
        return t.element_size() * t.numel()
    key = (str(t.device), storage.data_ptr())
    if storage.data_ptr() != 0 and key in seen_buffers:
        return 0  # a view of a buffer already counted
    seen_buffers.add(key)
    return int(storage.nbytes())


def _children(obj: Any) -> list[Any]:
    """The objects ``obj`` holds that are counted too (only builtin containers and instances)."""
    if isinstance(obj, dict):
        return [item for pair in dict.items(obj) for item in pair]
    if isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
        return list(obj.__iter__()) if type(obj).__iter__ in (list.__iter__, tuple.__iter__, set.__iter__,
                                                              frozenset.__iter__, collections.deque.__iter__) else []
    held = []
    instance_dict = getattr(obj, "__dict__", None)
    if isinstance(instance_dict, dict):
        held.append(instance_dict)
    for klass in type(obj).__mro__:
        for slot in klass.__dict__.get("__slots__", ()):
            if slot not in ("__dict__", "__weakref__") and hasattr(obj, slot):
                held.append(getattr(obj, slot))
    return held


def get_object_size(obj: Any, *, include_device: bool = False) -> int:
    """Bytes held by ``obj`` and everything it contains, each object counted once.

    * Builtin containers (dict, list, tuple, set, frozenset, deque) are followed into their
      items; instances into their ``__dict__`` and ``__slots__`` values.
    * A torch tensor is its Python object plus its storage (views of one storage count it once);
      a numpy array is ``sys.getsizeof`` (which includes the buffer it owns) plus its ``base``.
    * Anything else (strings, numbers, functions, classes, modules, generators, iterators) is
      ``sys.getsizeof`` alone: nothing is iterated that could be consumed.

    Args:
        obj: any object.
        include_device: also count tensor buffers on CUDA (or other non-CPU) devices. Default:
            host memory only.

    Example:
        >>> import numpy as np
        >>> get_object_size(np.zeros(1000)) - sys.getsizeof(np.zeros(0)) == 8000
        True
        >>> gen = (i for i in range(3))
        >>> _ = get_object_size([gen, gen]); list(gen)
        [0, 1, 2]
    """
    check_bool(include_device, "include_device")
    seen: set[int] = set()
    seen_buffers: set[tuple[str, int]] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            total += sys.getsizeof(item) + _tensor_buffer(item, include_device, seen_buffers)
            continue
        total += sys.getsizeof(item)
        if isinstance(item, np.ndarray):
            if item.base is not None:
                stack.append(item.base)
            continue
        if isinstance(item, _OPAQUE):
            continue
        stack.extend(_children(item))
    return total


_FREEZE: dict[type, type] = {list: tuple, tuple: tuple, set: frozenset, frozenset: frozenset}


def optimize_data_structure(data: Any) -> Any:
    """A compact, read-only-shaped copy of nested builtin data; the input is never changed.

    The rules, applied at every depth (exact types only):

    * ``list`` and ``tuple`` -> ``tuple`` (no over-allocation, immutable);
    * ``set`` and ``frozenset`` -> ``frozenset``;
    * ``dict`` -> a new ``dict`` with the same keys and converted values, whatever its size;
    * anything else (numbers, strings, tensors, arrays, subclasses such as namedtuple or
      OrderedDict) is returned as it is, the same object.

    A tuple or frozenset whose items need no change is returned itself, not copied. The
    original turned small dicts only, left tuples unconverted inside, and promised a
    dict-to-frozenset conversion that never happened.

    Raises:
        ValueRangeError: ``data`` contains a reference cycle through lists, tuples, sets or
            dicts (a tuple cannot hold itself), naming the path to it.

    Example:
        >>> optimize_data_structure({"uids": [1, 2], "tags": {"a"}, "pair": (3, [4])})
        {'uids': (1, 2), 'tags': frozenset({'a'}), 'pair': (3, (4,))}
    """
    return _convert(data, {}, "data")


def _convert(data: Any, active: dict[int, str], path: str) -> Any:
    kind = type(data)
    if kind is not dict and kind not in _FREEZE:
        return data
    if id(data) in active:
        raise ValueRangeError(f"Expected `data` without reference cycles, but {path} is {active[id(data)]} itself.")
    active[id(data)] = path
    try:
        if kind is dict:
            return {key: _convert(value, active, f"{path}[{key!r}]") for key, value in data.items()}
        items = [_convert(item, active, f"{path}[{i}]") for i, item in enumerate(data)]
        if kind is _FREEZE[kind] and all(new is old for new, old in zip(items, data)):
            return data
        return _FREEZE[kind](items)
    finally:
        del active[id(data)]
