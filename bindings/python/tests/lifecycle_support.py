"""What the rotation and audit-trail tests share: a keyring on each store
(memory, SQLite, PostgreSQL) with a manual clock and a rotation quiet period,
fresh accounts, and the times the Rust suite (``apikeys::testing::lifecycle``)
uses. PostgreSQL runs against the server of scripts/services.sh and fails,
never skips, without it (as tests/test_stores.py)."""

from __future__ import annotations

import os
import pathlib
import uuid
from datetime import datetime, timedelta, timezone
from typing import Callable, List, Optional, Union

import pytest

import apikeys

STORES = ["memory", "sqlite", "postgres"]

START = datetime(2026, 9, 21, 12, 0, 0, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
QUIET = timedelta(minutes=15)
#: How far behind a stored last use may be: the core's slack (docs/design.md §8).
SLACK = timedelta(minutes=2)

#: Builds a keyring on the store under test with this clock and quiet period.
Make = Callable[..., apikeys.Keyring]


def postgres_url() -> str:
    url = os.environ.get("APIKEYS_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "APIKEYS_TEST_POSTGRES_URL is not set: run scripts/test.sh, or `source scripts/services.sh` first"
        )
    return url


def maker(kind: str, tmp: pathlib.Path) -> Make:
    """A function building keyrings on one store of ``kind`` (each call: the
    same store, the clock and quiet period given)."""
    store: Union[apikeys.SqliteStore, apikeys.PostgresStore, None] = None
    if kind == "sqlite":
        store = apikeys.SqliteStore(tmp / "keys.db")
    elif kind == "postgres":
        store = apikeys.PostgresStore(postgres_url(), schema="pytest_" + uuid.uuid4().hex[:16])

    def make(clock: apikeys.ManualClock, quiet: Union[float, timedelta] = QUIET) -> apikeys.Keyring:
        return apikeys.Keyring(store, clock=clock, rotation_quiet=quiet)

    return make


def account(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:12]}"


def admin(acct: str, context: Optional[apikeys.CallContext] = None) -> apikeys.Actor:
    return apikeys.Actor(acct, "PADMIN1", "admin", context=context)


def works(kr: apikeys.Keyring, key: apikeys.IssuedKey) -> apikeys.Principal:
    return kr.authenticate(key.secret)


def refused_as_rotated(kr: apikeys.Keyring, key: apikeys.IssuedKey) -> None:
    with pytest.raises(apikeys.Unauthorized) as e:
        kr.authenticate(key.secret)
    assert e.value.reason == "the key was rotated and its overlap has ended"
    assert e.value.status == 401 and e.value.code == 2006


def all_records(kr: apikeys.Keyring, acct: str, **filters: object) -> List[apikeys.AuditEvent]:
    """Every record of ``acct`` in the default window, newest first, page by page."""
    out: List[apikeys.AuditEvent] = []
    cursor: Optional[str] = None
    while True:
        page = kr.audit_records(acct, limit=1000, cursor=cursor, **filters)  # type: ignore[arg-type]
        out += page.records
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor
