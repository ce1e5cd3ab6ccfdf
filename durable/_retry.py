"""Retry policies for activities and child orchestrations, built on durable timers."""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs

from durable.errors import FailureDetails, qualified_name

__all__ = ["RetryPolicy"]

RetryOn = tuple[type[BaseException], ...] | Callable[[FailureDetails], bool] | None


def _positive(instance: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"RetryPolicy.{attribute.name} must be positive, got {value!r}")


def _optional_positive(instance: object, attribute: attrs.Attribute[timedelta | None], value: timedelta | None) -> None:
    if value is not None and value <= timedelta(0):
        raise ValueError(f"RetryPolicy.{attribute.name} must be positive or None, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(
            f"RetryPolicy.max_attempts counts the first try and must be at least 1, got {value!r}"
        )


def _backoff(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 1.0:
        raise ValueError(f"RetryPolicy.backoff is a multiplier of at least 1.0, got {value!r}")


def _normalize_retry_on(value: Any) -> RetryOn:
    if value is None or (callable(value) and not isinstance(value, type)):
        return typing.cast(RetryOn, value)
    if isinstance(value, type):
        value = (value,)
    types: tuple[Any, ...] = tuple(value)
    for item in types:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(
                f"RetryPolicy.retry_on takes exception types or a predicate on FailureDetails, got {item!r}"
            )
    return types


@attrs.frozen
class RetryPolicy:
    """When and how often to retry a failed activity or child orchestration.

    `max_attempts` counts the first try. The delay before attempt n+1 is
    `first_interval * backoff ** (n - 1)`, capped at `max_interval`. `timeout`
    bounds the whole retry period in orchestration time (never the wall clock),
    measured from the first attempt. `retry_on` selects what is retried: exception
    types (matched against the failure's error type and its base classes when
    the type can be imported), or a predicate on the `FailureDetails`. Failures
    marked non-retriable are never retried.
    """

    first_interval: timedelta = attrs.field(validator=_positive)
    max_attempts: int = attrs.field(validator=_at_least_one)
    backoff: float = attrs.field(default=1.0, validator=_backoff)
    max_interval: timedelta | None = attrs.field(default=None, validator=_optional_positive)
    timeout: timedelta | None = attrs.field(default=None, validator=_optional_positive)
    retry_on: RetryOn = attrs.field(default=None, converter=_normalize_retry_on)

    def delay_before(self, attempt: int) -> timedelta:
        """Return the wait before `attempt` (2 for the first retry)."""
        delay = self.first_interval * (self.backoff ** (attempt - 2))
        if self.max_interval is not None and delay > self.max_interval:
            return self.max_interval
        return delay

    def should_retry(self, details: FailureDetails) -> bool:
        """Decide from the failure alone (not the attempt count or time) whether to retry."""
        if details.is_non_retriable:
            return False
        if self.retry_on is None:
            return True
        if isinstance(self.retry_on, tuple):
            return any(_matches(details.error_type, exc_type) for exc_type in self.retry_on)
        return bool(self.retry_on(details))


def _matches(error_type: str, wanted: type[BaseException]) -> bool:
    if error_type == qualified_name(wanted):
        return True
    failed = _import_type(error_type)
    return failed is not None and issubclass(failed, wanted)


def _import_type(error_type: str) -> type[BaseException] | None:
    module_name, _, qualname = error_type.rpartition(".")
    while module_name:
        try:
            target: object = importlib.import_module(module_name)
        except ImportError:
            qualname = module_name.rpartition(".")[2] + "." + qualname
            module_name = module_name.rpartition(".")[0]
            continue
        for part in qualname.split("."):
            target = getattr(target, part, None)
        if isinstance(target, type) and issubclass(target, BaseException):
            return target
        return None
    return None
