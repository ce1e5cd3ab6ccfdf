"""JSON payloads decoded by declared types, and activities as plain functions."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

import durable
from durable import _json
from durable.errors import PayloadError


@attrs.frozen
class Address:
    city: str
    zip: str


@attrs.frozen
class Customer:
    name: str
    address: Address
    tags: list[str] = attrs.Factory(list)


@dataclasses.dataclass
class Line:
    sku: str
    qty: int


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@pytest.mark.parametrize(
    ("value", "declared"),
    [
        (0, int),
        ("", str),
        (False, bool),
        ([], list[int]),
        ({}, dict[str, int]),
        (0.0, float),
        ((1, "a"), tuple[int, str]),
        (Customer("Ann", Address("Oslo", "0150"), ["vip"]), Customer),
        (Line("x-1", 0), Line),
        (Color.BLUE, Color),
        (datetime(2026, 5, 1, 8, 30, tzinfo=timezone.utc), datetime),
        ([Line("a", 1), Line("b", 2)], list[Line]),
        ({"k": Color.RED}, dict[str, Color]),
        (None, int | None),
    ],
)
def test_round_trip_keeps_value_and_type(value: Any, declared: Any) -> None:
    text = _json.encode(value, declared)
    back = _json.decode(text, declared)
    assert back == value
    assert type(back) is type(value)


def test_falsy_values_are_present_payloads() -> None:
    for value in (0, "", False, [], {}):
        assert _json.encode(value) is not None
    assert _json.encode(None) is None


def test_encoded_text_is_plain_json() -> None:
    text = _json.encode(Customer("Ann", Address("Oslo", "0150")), Customer)
    assert json.loads(text or "") == {"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}, "tags": []}


def test_decode_error_names_type_and_field() -> None:
    with pytest.raises(PayloadError) as caught:
        _json.decode('{"name": "Ann", "address": {"city": "Oslo"}}', Customer)
    message = str(caught.value)
    assert "Customer" in message
    assert "address" in message
    assert "zip" in message


def test_decode_error_names_wrong_item() -> None:
    with pytest.raises(PayloadError) as caught:
        _json.decode('[{"sku": "a", "qty": "many"}]', list[Line])
    assert "qty" in str(caught.value)


def test_missing_payload_for_required_type() -> None:
    with pytest.raises(PayloadError, match="expected a JSON payload of type int"):
        _json.decode(None, int)


def test_invalid_json_is_reported() -> None:
    with pytest.raises(PayloadError, match="not valid JSON"):
        _json.decode("{oops", dict[str, int])


def test_value_of_wrong_class_is_rejected() -> None:
    with pytest.raises(PayloadError, match="expected a value of type bool to encode as JSON, got str 'reject'"):
        _json.encode("reject", bool)
    with pytest.raises(PayloadError, match="expected a value of type Line"):
        _json.encode({"sku": "a", "qty": 1}, Line)
    assert _json.encode(3, float) == "3"
    assert _json.encode(True, int) == "true"


def test_unencodable_value_names_type() -> None:
    with pytest.raises(PayloadError, match="object"):
        _json.encode(object())


@durable.activity
def add_one(ctx: durable.ActivityContext, value: int) -> int:
    return value + 1


@durable.activity(name="shout")
async def shout(ctx: durable.ActivityContext, text: str) -> str:
    return text.upper()


@durable.activity
def ping(ctx: durable.ActivityContext) -> str:
    return "pong"


def test_activity_stays_callable() -> None:
    ctx = durable.ActivityContext(instance_id="i", task_id=1, name="add_one")
    assert add_one(ctx, 1) == 2
    assert asyncio.run(shout(ctx, "hi")) == "HI"
    assert ping(ctx, None) == "pong"


def test_activity_metadata() -> None:
    assert (add_one.name, add_one.input_type, add_one.output_type, add_one.is_async) == ("add_one", int, int, False)
    assert (shout.name, shout.is_async) == ("shout", True)
    assert isinstance(shout, durable.AsyncActivity)
    assert ping.takes_input is False


def test_activity_with_too_many_parameters_is_rejected() -> None:
    def bad(ctx: durable.ActivityContext, a: int, b: int) -> int:
        return a + b

    with pytest.raises(TypeError, match="must take"):
        durable.activity(bad)
