"""Durable stores (issue 6): SQLite in a temporary directory and PostgreSQL
against the real server of scripts/services.sh (fails, never skips, without it)."""

from __future__ import annotations

import os
import pathlib
import threading
import time
import uuid

import pytest

import apikeys

ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")


def wait_until_refused(kr: apikeys.Keyring, secret: str) -> None:
    """Poll until ``kr`` refuses ``secret`` (a change made through another
    store reached it); fail after two seconds."""
    deadline = time.monotonic() + 2.0
    while True:
        try:
            kr.authenticate(secret)
        except apikeys.Unauthorized:
            return
        assert time.monotonic() < deadline, "the disable never reached the second store"
        time.sleep(0.005)


def test_sqlite_key_survives_reopening(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "keys.db"
    store = apikeys.SqliteStore(path)
    kr = apikeys.Keyring(store)
    issued = kr.create_general_key(ADMIN, "CI bot", read_only=True)
    token, key_id = issued.secret, issued.record.id
    kr.authenticate(token)
    store.flush()
    del kr, store, issued

    store2 = apikeys.SqliteStore(str(path))
    kr2 = apikeys.Keyring(store2)
    p = kr2.authenticate(token)
    assert p.key_id == key_id and p.account == "acme"
    assert kr2.get(ADMIN, key_id).read_only
    with pytest.raises(apikeys.Forbidden):
        kr2.authenticate(token, method="POST")
    assert repr(store2) == f"SqliteStore({str(path)!r})"
    assert store2.path == str(path)


def test_sqlite_two_keyrings_on_one_file_see_each_others_disable(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "shared.db"
    kr1 = apikeys.Keyring(apikeys.SqliteStore(path))
    kr2 = apikeys.Keyring(apikeys.SqliteStore(path))
    issued = kr1.create_general_key(ADMIN, "bot")
    kr2.authenticate(issued.secret)  # warm kr2's cache
    kr1.disable(ADMIN, issued.record.id)
    # Another store on the file learns of the change through the file's
    # change counter: within a second (issue 6).
    wait_until_refused(kr2, issued.secret)
    assert kr2.get(ADMIN, issued.record.id).disabled
    kr2.enable(ADMIN, issued.record.id)
    deadline = time.monotonic() + 2.0
    while True:
        try:
            kr1.authenticate(issued.secret)
            break
        except apikeys.Unauthorized:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_sqlite_bad_paths_raise(tmp_path: pathlib.Path) -> None:
    with pytest.raises(TypeError):
        apikeys.SqliteStore(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apikeys.SqliteStore(None)  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput):
        apikeys.SqliteStore("a\0b")
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.SqliteStore("x" * 10_000_000)
    assert len(str(e.value)) < 200
    with pytest.raises(apikeys.InvalidInput):
        apikeys.SqliteStore("\ud800")
    with pytest.raises(apikeys.StoreError):
        apikeys.SqliteStore(tmp_path / "no" / "such" / "dir" / "keys.db")
    with pytest.raises(TypeError):
        apikeys.Keyring(store="keys.db")  # type: ignore[arg-type]


def test_sqlite_threads_share_one_keyring(tmp_path: pathlib.Path) -> None:
    kr = apikeys.Keyring(apikeys.SqliteStore(tmp_path / "t.db"))
    tokens = [kr.create_general_key(ADMIN, f"bot {i}").secret for i in range(4)]
    errors: list[BaseException] = []

    def work(token: str) -> None:
        try:
            for _ in range(200):
                kr.authenticate(token)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def postgres_url() -> str:
    url = os.environ.get("APIKEYS_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "APIKEYS_TEST_POSTGRES_URL is not set: run scripts/test.sh, or `source scripts/services.sh` first"
        )
    return url


def fresh_schema() -> str:
    return "pytest_" + uuid.uuid4().hex[:16]


def test_postgres_key_survives_reconnecting() -> None:
    url, schema = postgres_url(), fresh_schema()
    store = apikeys.PostgresStore(url, schema=schema)
    assert url not in repr(store) and repr(store) == "PostgresStore(<url hidden>)"
    kr = apikeys.Keyring(store)
    issued = kr.create_general_key(ADMIN, "CI bot")
    token, key_id = issued.secret, issued.record.id
    kr.authenticate(token)
    store.flush()
    del kr, store

    kr2 = apikeys.Keyring(apikeys.PostgresStore(url, schema=schema))
    assert kr2.authenticate(token, method="POST").key_id == key_id
    assert [r.id for r in kr2.list(ADMIN)] == [key_id]


def test_postgres_two_keyrings_see_each_others_disable() -> None:
    url, schema = postgres_url(), fresh_schema()
    kr1 = apikeys.Keyring(apikeys.PostgresStore(url, schema=schema))
    kr2 = apikeys.Keyring(apikeys.PostgresStore(url, schema=schema))
    issued = kr1.create_general_key(ADMIN, "bot")
    kr2.authenticate(issued.secret)
    kr1.disable(ADMIN, issued.record.id)
    wait_until_refused(kr2, issued.secret)


def test_postgres_unreachable_is_a_store_error_without_the_password() -> None:
    with pytest.raises(apikeys.StoreError) as e:
        apikeys.PostgresStore("postgres://someone:hunter2secret@127.0.0.1:1/nothing")
    assert "hunter2secret" not in str(e.value)
    assert e.value.status == 500
    with pytest.raises(TypeError):
        apikeys.PostgresStore(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "postgres://someone:hunter2secret@127.0.0.1:99999/db",  # port out of range
        "postgres://someone:hunter2secret@127.0.0.1/db?sslmode=sometimes",
        "postgresql://someone:hunter2secret@[::1/db",  # unclosed IPv6 bracket
        "host=127.0.0.1 port=abc password=hunter2secret",
        "host=127.0.0.1 colour=blue password=hunter2secret",  # unknown option
        "password='hunter2secret",  # unterminated quote
        "hunter2secret",  # not a URL, not key=value
        "postgres://",  # no host
        "dbname=keys password=hunter2secret",  # no host
        "host=a,b port=1,2,3 password=hunter2secret",  # three ports for two hosts
        "",
    ],
)
def test_postgres_malformed_url_is_invalid_input_without_the_password(url: str) -> None:
    # Refused before any connection is tried: the caller's mistake (400), not
    # an unavailable store (500).
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.PostgresStore(url)
    assert e.value.field == "url" and e.value.status == 400 and e.value.code == 2001
    assert not isinstance(e.value, apikeys.StoreError)
    assert "hunter2secret" not in str(e.value) and "hunter2secret" not in repr(e.value)


@pytest.mark.parametrize("schema", ["", "Keys", "1keys", "_keys", "k" * 41, "my-keys", "keys; DROP TABLE x", "kéys"])
def test_postgres_bad_schema_name_is_invalid_input(schema: str) -> None:
    # Nothing listens on port 1: a valid name would get as far as connecting
    # and fail with StoreError, so InvalidInput shows the name is checked first.
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.PostgresStore("postgres://someone:hunter2secret@127.0.0.1:1/nothing", schema=schema)
    assert e.value.field == "schema" and e.value.status == 400
    assert "hunter2secret" not in str(e.value)


def test_postgres_valid_schema_and_url_but_unreachable_is_a_store_error() -> None:
    for schema in ["k", "keys_2", "k" * 40]:
        with pytest.raises(apikeys.StoreError) as e:
            apikeys.PostgresStore("postgres://someone:hunter2secret@127.0.0.1:1/nothing", schema=schema)
        assert not isinstance(e.value, apikeys.InvalidInput)
        assert e.value.status == 500 and "hunter2secret" not in str(e.value)


def test_postgres_longest_valid_schema_name_connects() -> None:
    schema = ("pytest_" + uuid.uuid4().hex + "x" * 40)[:40]
    kr = apikeys.Keyring(apikeys.PostgresStore(postgres_url(), schema=schema))
    assert kr.may_block
    kr.authenticate(kr.create_general_key(ADMIN, "bot").secret)


def test_may_block_names_the_keyrings_that_can_wait_on_io(tmp_path: pathlib.Path) -> None:
    assert not apikeys.Keyring().may_block
    assert not apikeys.Keyring(apikeys.MemoryStore()).may_block
    limits = apikeys.RateLimits.pagerduty()
    assert not apikeys.Keyring(rate_limits=limits).may_block
    assert apikeys.Keyring(apikeys.SqliteStore(tmp_path / "k.db")).may_block
    redis = apikeys.RedisRateLimiter("redis://127.0.0.1:1/", timeout=0.2)
    assert apikeys.Keyring(rate_limits=limits, rate_limiter=redis).may_block


_INSPECT = """
import sqlite3, sys
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
print(len(names))
con.close()
"""


def test_sqlite_file_is_inspected_from_another_process(tmp_path: pathlib.Path) -> None:
    """What the docs tell a Python user: never open the store's file with
    ``sqlite3`` in the process that holds the store (two copies of SQLite in
    one process do not see each other's locks); look at it from another
    process. The store keeps writing and reading as before."""
    import subprocess
    import sys

    path = tmp_path / "keys.db"
    store = apikeys.SqliteStore(path)
    kr = apikeys.Keyring(store)
    first = kr.create_general_key(ADMIN, "before")
    out = subprocess.run([sys.executable, "-c", _INSPECT, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) > 0
    second = kr.create_general_key(ADMIN, "after")
    store.flush()
    del kr, store
    again = apikeys.Keyring(apikeys.SqliteStore(path))
    assert {r.id for r in again.list(ADMIN)} == {first.record.id, second.record.id}
    again.authenticate(second.secret)
