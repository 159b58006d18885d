"""Typed settings: documented dataclasses, validated values, ``--set`` overrides and schedule scaling.

Every component's settings are a dataclass deriving :class:`Settings`, with a
docstring under each field (read back by :func:`field_docs` for ``laser config
show``) and ``Literal`` types for choices. Loading a dict rejects unknown keys
with the list of valid ones, so a misspelled setting is an error, not a silent
default. Fields that are step numbers inside a stage carry :func:`schedule`
metadata, so shortening or lengthening a stage (``--iters``) moves them all with
one method, :meth:`Settings.scaled`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import math
import textwrap
import types
import typing
from typing import Any, Literal, TypeVar

from laser_gs.errors import LaserError

S = TypeVar("S", bound="Settings")


class SettingsError(LaserError):
    """An unknown setting or a value of the wrong type."""


def schedule(default: Any, kind: Literal["step", "steps"] = "step", minimum: int = 0) -> Any:
    """A dataclass field holding a step number (``"step"``) or a tuple of them (``"steps"``) in its stage.

    :meth:`Settings.scaled` moves it proportionally when the stage's length changes; a single step
    stays at least ``minimum``.
    """
    valid = AT_LEAST_ONE if minimum >= 1 else NON_NEGATIVE
    return dataclasses.field(default=default, metadata={"schedule": kind, "minimum": minimum, "range": valid})


@dataclasses.dataclass(frozen=True)
class Range:
    """The valid values of a number setting: ``lo``/``hi`` (None: unbounded), each inclusive or open."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def __str__(self) -> str:
        """The valid values in words: ``at least 1``, ``above 0``, ``from 0 to 1``, ``from 0 to below 1``."""
        lo = None if self.lo is None else (f"above {self.lo:g}" if self.lo_open else f"at least {self.lo:g}")
        hi = None if self.hi is None else (f"below {self.hi:g}" if self.hi_open else f"at most {self.hi:g}")
        if lo and hi:
            return (f"{'above' if self.lo_open else 'from'} {self.lo:g} "
                    f"{'to below' if self.hi_open else 'to'} {self.hi:g}")
        return lo or hi or "any finite number"


POSITIVE = Range(0, lo_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
SHARE = Range(0, 1)
MAX_INT = 2 ** 53  # beyond this a JSON number is no longer an exact integer; no count here comes near it


def bounded(default: Any, valid: Range, **schedule_metadata: Any) -> Any:
    """A number field whose values must lie in ``valid`` (checked on load and on ``--set``, shown by
    ``laser config show``). Every float setting must be finite whether bounded or not."""
    return dataclasses.field(default=default, metadata={"range": valid, **schedule_metadata})


def scale_steps(steps: tuple[int, ...], old: int, new: int) -> tuple[int, ...]:
    """Scheduled steps (upsampling, ...) moved from a stage of ``old`` to ``new`` steps; those past the end drop."""
    return tuple(sorted({max(1, round(s * new / old)) for s in steps if round(s * new / old) < new}))


@functools.lru_cache(maxsize=None)
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` from the string literal under each annotated field of ``cls`` and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "tuple[" + ", ".join("..." if a is Ellipsis else _type_name(a) for a in typing.get_args(tp)) + "]"
    return getattr(tp, "__name__", str(tp))


def _parse_text(tp: Any, text: str) -> Any:
    """A ``--set`` value given as text, read as JSON where possible (``0.5``, ``true``, ``[1, 2]``)."""
    if typing.get_origin(tp) is tuple and not text.strip().startswith("["):
        return [part.strip() for part in text.split(",")]
    try:
        return json.loads(text)
    except ValueError:
        return text


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """``value`` converted to the field type ``tp``, or a :class:`SettingsError` naming ``where``."""
    origin = typing.get_origin(tp)
    bad = SettingsError(f"setting {where}: {value!r} is not a valid {_type_name(tp)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise SettingsError(f"setting {where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is not type(None):
                try:
                    return _coerce(arg, value, where)
                except SettingsError:
                    pass
        raise bad
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise SettingsError(f"setting {where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value))
    if isinstance(tp, type) and issubclass(tp, Settings):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return tp.from_dict(value, prefix=f"{where}.")
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise bad
        return value
    if tp in (int, float):
        if isinstance(value, str):
            try:
                value = tp(value)
            except ValueError:
                raise bad from None
        if tp is int and isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, (int,) if tp is int else (int, float)):
            raise bad
        if tp is float and not math.isfinite(value):
            raise SettingsError(f"setting {where}: {value!r} is not a finite number")
        if tp is int and abs(value) > MAX_INT:
            raise SettingsError(f"setting {where}: {value!r} is far too large")
        return tp(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Settings):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class Settings:
    """Base of every settings dataclass: dict round trip, validation, overrides, schedule scaling."""

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (tuples as lists); :meth:`from_dict` reads it back to an equal object."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[S], data: dict[str, Any], prefix: str = "") -> S:
        """Build from ``data``, which may leave fields out (defaults) but not name unknown ones."""
        types_ = cls.field_types()
        unknown = sorted(set(data) - set(types_))
        if unknown:
            raise SettingsError(f"unknown setting {prefix}{unknown[0]}; valid {prefix.rstrip('.') or cls.__name__} "
                                f"settings: {', '.join(types_)}")
        out = cls(**{k: _coerce(types_[k], v, prefix + k) for k, v in data.items()})
        out.check_ranges(prefix)
        out.validate()
        return out

    def check_ranges(self, prefix: str = "") -> None:
        """Every number field inside its declared :class:`Range` (a tuple: each of its values)."""
        for f in dataclasses.fields(self):
            valid = f.metadata.get("range")
            value = getattr(self, f.name)
            if valid is None or value is None:
                continue
            for v in (value if isinstance(value, tuple) else (value,)):
                if not valid.contains(v):
                    raise SettingsError(f"setting {prefix}{f.name}: {v!r} is out of range; it must be {valid}")

    def validate(self) -> None:
        """Check values across fields; subclasses raise :class:`SettingsError`."""

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)

    def with_value(self: S, path: str, text: str, prefix: str = "") -> S:
        """A copy with the field at dotted ``path`` set from the text ``text`` (a ``--set`` override)."""
        name, _, rest = path.partition(".")
        types_ = self.field_types()
        if name not in types_:
            raise SettingsError(f"unknown setting {prefix}{name}; valid {prefix.rstrip('.') or type(self).__name__} "
                                f"settings: {', '.join(types_)}")
        tp = types_[name]
        current = getattr(self, name)
        if isinstance(current, Settings):
            if not rest:
                raise SettingsError(f"setting {prefix}{name} is a group; set one of its fields, e.g. "
                                    f"{prefix}{name}.{next(iter(current.field_types()))}=...")
            value = current.with_value(rest, text, prefix=f"{prefix}{name}.")
        elif rest:
            raise SettingsError(f"setting {prefix}{name} has no field {rest!r}")
        else:
            value = _coerce(tp, _parse_text(tp, text), prefix + name)
        out = dataclasses.replace(self, **{name: value})
        out.check_ranges(prefix)
        out.validate()
        return out

    def scaled(self: S, old: int, new: int) -> S:
        """A copy whose :func:`schedule` fields are moved from a stage of ``old`` steps to one of ``new``."""
        changes = {}
        for f in dataclasses.fields(self):
            kind = f.metadata.get("schedule")
            value = getattr(self, f.name)
            if kind == "steps":
                changes[f.name] = scale_steps(tuple(value), old, new)
            elif kind == "step":
                changes[f.name] = max(f.metadata.get("minimum", 0), round(value * new / old))
        return dataclasses.replace(self, **changes)

    @classmethod
    def describe(cls, values: "Settings | None" = None) -> list[tuple[str, str, str, str]]:
        """Rows ``(name, type, value, doc)`` for every field (nested groups flattened with dots)."""
        docs = field_docs(cls)
        values = values if values is not None else cls()
        rows = []
        for name, tp in cls.field_types().items():
            value = getattr(values, name)
            if isinstance(value, Settings):
                rows += [(f"{name}.{n}", t, v, d) for n, t, v, d in type(value).describe(value)]
            else:
                valid = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("range")
                doc = docs.get(name, "") + (f" Valid: {valid}." if valid is not None else "")
                rows.append((name, _type_name(tp), json.dumps(_plain(value)), doc.strip()))
        return rows
