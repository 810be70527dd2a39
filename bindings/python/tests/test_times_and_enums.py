"""Times the keyring cannot hold, and strings that name no enum member, are
clear errors naming the argument: never a key stored with times that cannot
be read back, never a bare ValueError."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import apikeys

UTC = timezone.utc
ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")
EARLIEST = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def out_of_range() -> list[datetime]:
    return [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),  # the epoch itself: a timestamp is never 0
        datetime.min.replace(tzinfo=timezone(timedelta(hours=-23))),
        # 9999-12-31 in New York is 10000-01-01 in UTC: no datetime shows it.
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
    ]


@pytest.mark.parametrize("when", out_of_range(), ids=str)
def test_a_clock_refuses_times_it_cannot_hold(when: datetime) -> None:
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.ManualClock(when)
    assert e.value.field == "start" and (e.value.status, e.value.code) == (400, 2001)
    assert "1970" in str(e.value) and "9999" in str(e.value)
    clock = apikeys.ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(apikeys.InvalidInput) as e:
        clock.set(when)
    assert e.value.field == "at"
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC)  # unchanged


@pytest.mark.parametrize("when", [EARLIEST, LATEST, datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                                  datetime(9999, 12, 31, 18, 0, tzinfo=timezone(timedelta(hours=-5))),
                                  datetime(1970, 1, 1, 1, 0, 0, 1000, tzinfo=timezone(timedelta(hours=1)))], ids=str)
def test_a_clock_holds_every_time_in_range_and_keys_made_then_read_back(when: datetime) -> None:
    clock = apikeys.ManualClock(when)
    kr = apikeys.Keyring(clock=clock)
    issued = kr.create_general_key(ADMIN, "edge of time")
    want = when.astimezone(UTC).replace(microsecond=when.microsecond // 1000 * 1000)
    assert clock.now() == want
    assert issued.record.created_at == want
    p = kr.authenticate(issued.secret)
    assert p.record.created_at == want
    assert [r.id for r in kr.list(ADMIN)] == [issued.record.id]
    assert kr.audit_trail()[-1].at == want


def test_a_clock_refuses_to_move_past_what_it_can_hold() -> None:
    clock = apikeys.ManualClock(LATEST - timedelta(days=1))
    kr = apikeys.Keyring(clock=clock)
    for delta in (timedelta(days=2), timedelta.max, timedelta(days=1, milliseconds=1)):
        with pytest.raises(apikeys.InvalidInput) as e:
            clock.advance(delta)
        assert e.value.field == "delta"
    assert clock.now() == LATEST - timedelta(days=1)
    clock.advance(timedelta(days=1))
    assert clock.now() == LATEST
    # The keyring still makes keys that read back.
    issued = kr.create_general_key(ADMIN, "last millisecond")
    assert issued.secret and issued.record.created_at == LATEST
    for delta in (timedelta(milliseconds=-1), timedelta.min):
        with pytest.raises(apikeys.InvalidInput) as e:
            clock.advance(delta)
        assert e.value.field == "delta"


@pytest.mark.parametrize("bad", [datetime(2030, 1, 1), datetime(1, 1, 1), datetime(9999, 12, 31)], ids=str)
def test_naive_datetimes_are_refused_naming_the_argument(bad: datetime) -> None:
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.ManualClock(bad)
    assert e.value.field == "start" and "timezone-aware" in str(e.value)
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.ManualClock(datetime(2026, 1, 1, tzinfo=UTC)).set(bad)
    assert e.value.field == "at"
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Keyring().create_general_key(ADMIN, "d", expires_at=bad)
    assert e.value.field == "expires_at"


NOT_DATETIMES: list[Any] = [
    -1, 0, 1_700_000_000, 10**30, -(10**30), math.nan, math.inf, -math.inf, 1.5, "2026-01-01", None,
]


@pytest.mark.parametrize("bad", NOT_DATETIMES)
def test_numbers_and_other_types_are_type_errors_naming_the_argument(bad: Any) -> None:
    with pytest.raises(TypeError, match="'start'"):
        apikeys.ManualClock(bad)
    clock = apikeys.ManualClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(TypeError, match="'at'"):
        clock.set(bad)
    with pytest.raises(TypeError, match="'delta'"):
        clock.advance(bad)
    if bad is not None:  # None means no expiry
        with pytest.raises(TypeError, match="'expires_at'"):
            apikeys.Keyring().create_general_key(ADMIN, "d", expires_at=bad)


@pytest.mark.parametrize("when", out_of_range(), ids=str)
def test_expiry_times_out_of_range_are_invalid_input(when: datetime) -> None:
    kr = apikeys.Keyring()
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.create_general_key(ADMIN, "d", expires_at=when)
    assert e.value.field == "expires_at"
    assert kr.list(ADMIN) == []  # nothing stored
    far = kr.create_general_key(ADMIN, "d", expires_at=LATEST)
    assert far.record.expires_at == LATEST


ENUMS = [(apikeys.Role, "role"), (apikeys.KeyKind, "kind"), (apikeys.AccessLevel, "access")]


@pytest.mark.parametrize("enum, field", ENUMS, ids=[f for _, f in ENUMS])
def test_every_string_enum_refuses_unknown_strings_with_invalid_input(enum: Any, field: str) -> None:
    for member in enum:
        assert enum(member.value) is member
        assert enum(member) is member
    for bad in ("x", "", "GENERAL", "general ", "Read_Only", "ab\ud800", "x" * 100_000):
        with pytest.raises(apikeys.InvalidInput) as e:
            enum(bad)
        assert e.value.field == field, (bad, e.value.field)
        assert (e.value.status, e.value.code) == (400, 2001)
        assert len(str(e.value)) < 400
    for wrong in (5, None, b"general", 1.5, ["general"]):
        with pytest.raises(TypeError, match=f"'{field}'"):
            enum(wrong)
