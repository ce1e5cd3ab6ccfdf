"""JSON payloads, encoded and decoded by declared types.

Every payload on the wire (inputs, outputs, event data, custom status) is JSON
text so that workers and clients written with other SDKs can read it. Decoding
is directed by the type the user declared, through a cattrs converter, so
attrs classes, dataclasses, enums, datetimes, tuples and containers come back
as themselves. An absent payload decodes to `None`; falsy values such as 0,
"" or [] are present payloads and arrive unchanged.
"""

from __future__ import annotations

import json
import typing
from typing import Any, TypeVar, cast

import cattrs
from cattrs.preconf.json import make_converter

from durable._task import Task
from durable.errors import PayloadError

__all__ = ["encode", "decode", "converter"]

T = TypeVar("T")

converter = make_converter()

_UNTYPED = (None, Any, object)


def encode(value: object, declared: Any = None) -> str | None:
    """Encode `value` as JSON text, or return None for `None` (an absent payload)."""
    if value is None:
        return None
    if isinstance(value, Task):
        raise PayloadError(
            f"{value!r} is a durable task, not its result: did you forget `await`? "
            "Write `await self.call_activity(...)` to get the value"
        )
    if not _is_instance(value, declared):
        raise PayloadError(
            f"expected a value of type {_type_name(declared)} to encode as JSON, "
            f"got {type(value).__qualname__} {_shorten(repr(value))}"
        )
    try:
        if declared in _UNTYPED:
            plain = converter.unstructure(value)
        else:
            plain = converter.unstructure(value, unstructure_as=declared)
        return json.dumps(plain, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        declared_name = _type_name(declared) if declared not in _UNTYPED else type(value).__qualname__
        raise PayloadError(
            f"cannot encode a value of type {type(value).__qualname__} as JSON "
            f"(declared type {declared_name}): {exc}. Use JSON types, attrs classes, dataclasses, "
            "enums or datetimes"
        ) from exc


def decode(text: str | None, declared: Any = None) -> Any:
    """Decode JSON text to the declared type; an absent or empty payload gives None."""
    if text is None or text == "":
        if declared in _UNTYPED or _accepts_none(declared):
            return None
        raise PayloadError(f"expected a JSON payload of type {_type_name(declared)}, got no payload")
    try:
        plain = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"payload is not valid JSON ({exc}): {_preview(text)}") from exc
    if declared in _UNTYPED:
        return plain
    try:
        return converter.structure(plain, declared)
    except cattrs.BaseValidationError as exc:
        reasons = "; ".join(cattrs.transform_error(exc, path=_type_name(declared)))
        raise PayloadError(
            f"cannot decode {_preview(text)} as {_type_name(declared)}: {reasons}"
        ) from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise PayloadError(
            f"cannot decode {_preview(text)} as {_type_name(declared)}: {exc!r}"
        ) from exc


def to_plain(value: object, declared: Any = None) -> Any:
    """Unstructure `value` into JSON-ready Python data (dicts, lists, strings, numbers)."""
    try:
        if declared in _UNTYPED:
            return converter.unstructure(value)
        return converter.unstructure(value, unstructure_as=declared)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"cannot encode a value of type {type(value).__qualname__} as JSON: {exc}") from exc


def from_plain(plain: Any, declared: Any = None) -> Any:
    """Structure JSON-ready data (as `json.loads` returns it) into the declared type."""
    if declared in _UNTYPED:
        return plain
    if plain is None and _accepts_none(declared):
        return None
    try:
        return converter.structure(plain, declared)
    except cattrs.BaseValidationError as exc:
        reasons = "; ".join(cattrs.transform_error(exc, path=_type_name(declared)))
        raise PayloadError(f"cannot decode {plain!r} as {_type_name(declared)}: {reasons}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise PayloadError(f"cannot decode {plain!r} as {_type_name(declared)}: {exc!r}") from exc


def decode_as(text: str | None, declared: type[T]) -> T:
    """Typed form of `decode` for call sites that know the class."""
    return cast(T, decode(text, declared))


def _is_instance(value: object, declared: Any) -> bool:
    # Only plain classes are checked; generic aliases, unions and the like are
    # left to the converter. An int is accepted where a float is declared, as in
    # Python's own typing rules.
    if declared in _UNTYPED or typing.get_origin(declared) is not None or not isinstance(declared, type):
        return True
    if declared is float and isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, declared)


def _accepts_none(declared: Any) -> bool:
    if declared is type(None):
        return True
    args = getattr(declared, "__args__", ())
    return type(None) in args


def _type_name(declared: Any) -> str:
    if isinstance(declared, type):
        return declared.__qualname__
    return repr(declared).replace("typing.", "")


def _preview(text: str, limit: int = 80) -> str:
    return repr(_shorten(text, limit))


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
