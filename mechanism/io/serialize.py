"""Plain (JSON-ready) data of frozen dataclasses and back: the one (de)serialiser of every result.

``to_plain`` walks a result: a dataclass becomes a dict of its fields in declaration order
(``init=False`` fields too, so derived values are stored beside the data), an ``Enum`` its
value, a tuple or list a list, a dict with ``str`` keys a dict; ``None``, ``bool``, ``int``,
finite ``float`` and ``str`` stay as they are. Anything else is refused — another key type,
an object (``TypeError``), NaN or ±inf (``ValueError``: an undefined value is stored as None
with a note) — so nothing is stringified or written as invalid JSON silently.

``from_plain(cls, data)`` rebuilds ``cls`` from the field annotations: ``X | None``,
``X | Y`` (the first that fits), ``tuple[T, ...]``, ``tuple[A, B]``, ``list[T]``, ``dict[K, V]``, nested dataclasses and enums.
``init=False`` fields are recomputed by the class, never read; a field with a default may be
absent, and a ``StoredConfig``'s ``ADDED`` fields take their recorded meaning. A ``float`` field takes an int as it is (JSON writes ``0`` and ``0.0`` apart, and the
value is kept as written). Data that does not fit (a missing or unknown field, a value of the
wrong type, NaN or ±inf) raises ``ValueError`` naming the path.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from enum import Enum
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
_SCALARS = (bool, int, float, str)


def to_plain(obj: Any) -> Any:
    """``obj`` as nested dicts, lists and scalars (see the module docstring)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, (tuple, list)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"cannot store the {type(bad[0]).__name__} key {bad[0]!r} as plain data")
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"cannot store {obj} as plain data: an undefined value is None")
    if obj is None or isinstance(obj, _SCALARS):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} as plain data")


def from_plain(cls: type[T], data: Any, where: str = "") -> T:
    """``cls`` rebuilt from ``to_plain``'s output.

    Raises:
        ValueError: ``data`` does not fit ``cls`` (the message names the field path).
    """
    return _build(cls, data, where or cls.__name__)


def _fail(where: str, what: str) -> ValueError:
    return ValueError(f"{where}: {what}")


def _name(tp: Any) -> str:
    return tp.__name__ if typing.get_origin(tp) is None and hasattr(tp, "__name__") else str(tp)


def _build(tp: Any, data: Any, where: str) -> Any:
    if tp is Any:
        return data
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:       # the first type the data fits, in the annotation's order
            try:
                return _build(option, data, where)
            except ValueError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise ValueError(errors[0])
        raise _fail(where, f"{data!r} fits none of {' | '.join(map(_name, options))} "
                           f"({'; '.join(errors)})")
    if origin in (tuple, list):
        if not isinstance(data, list):
            raise _fail(where, f"expected a list, got {type(data).__name__}")
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(data):
                raise _fail(where, f"expected {len(args)} values, got {len(data)}")
            return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data)))
        item = args[0] if args else Any
        values = [_build(item, v, f"{where}[{i}]") for i, v in enumerate(data)]
        return tuple(values) if origin is tuple else values
    if origin is dict or tp is dict:
        if not isinstance(data, dict):
            raise _fail(where, f"expected an object, got {type(data).__name__}")
        value_type = args[1] if args else Any
        return {k: _build(value_type, v, f"{where}.{k}") for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass(tp, data, where)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            raise _fail(where, f"{data!r} is not a {tp.__name__}") from None
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise _fail(where, f"expected a number, got {data!r}")
        if not math.isfinite(data):
            raise _fail(where, f"expected a finite number, got {data!r}")
        return data
    if tp in (bool, int, str):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise _fail(where, f"expected {tp.__name__}, got {data!r}")
        return data
    raise TypeError(f"{where}: cannot rebuild a {tp!r}")


def _dataclass(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise _fail(where, f"expected an object, got {type(data).__name__}")
    data = {**getattr(cls, "ADDED", {}), **data}     # StoredConfig: fields added since
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    stored = hasattr(cls, "ADDED")    # a StoredConfig: a default never stands in for a value
    required = [f.name for f in fields if f.init and (stored or (
        f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING))]
    missing = [name for name in required if name not in data]
    if missing:
        raise _fail(where, f"missing field {missing[0]!r}")
    known = {f.name for f in fields}
    unknown = [k for k in data if k not in known]
    if unknown:
        raise _fail(where, f"unknown field {unknown[0]!r}")
    return cls(**{f.name: _build(hints[f.name], data[f.name], f"{where}.{f.name}")
                  for f in fields if f.init and f.name in data})


def check_lengths(obj: Any, *names: str, length: int | None = None) -> int:
    """The one length (≥ 1) of ``obj``'s sequence fields ``names`` (``length`` if given); a
    stored result whose arrays are empty or disagree is damaged.

    Raises:
        ValueError: naming the first such field as ``Class.field``.
    """
    want = length if length is not None else len(getattr(obj, names[0]))
    for name in names:
        got = len(getattr(obj, name))
        if got != want or got == 0:
            raise ValueError(f"{type(obj).__name__}.{name}: expected {want or 'some'} values, got {got}")
    return want


def check_grid(obj: Any, *names: str, shape: tuple[int, int] | None = None) -> tuple[int, int]:
    """The one shape ``(H, W)`` (``shape`` if given; H, W ≥ 1) of ``obj``'s 2-D map fields
    ``names``.

    Raises:
        ValueError: naming the first field (``Class.field``) that is no rectangular map of it.
    """
    for name in names:
        rows = getattr(obj, name)
        found = (len(rows), len(rows[0]) if rows else 0)
        if 0 in found or any(len(row) != found[1] for row in rows) or shape not in (None, found):
            want = f"a {shape[0]}×{shape[1]} map" if shape else "a rectangular map"
            raise ValueError(f"{type(obj).__name__}.{name}: expected {want} of cells")
        shape = found
    return shape


class StoredConfig:
    """Base of the frozen config dataclasses that checkpoints and run records store.

    ``to_dict`` is ``to_plain``; ``from_dict`` reads it back strictly with ``from_plain`` (every
    field's type checked, a missing or unknown field refused: a default never stands in for a
    stored value) after filling in ``ADDED``: fields added since older files were written, with
    the value those files meant.
    The class's own ``__post_init__`` then checks the ranges.
    """
    ADDED: ClassVar[dict[str, Any]] = {}

    def to_dict(self) -> dict:
        return to_plain(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = ""):
        """Raises ``ValueError`` naming the field for data of the wrong shape or type (and the
        class's own error for a value out of range)."""
        return from_plain(cls, data, where)
