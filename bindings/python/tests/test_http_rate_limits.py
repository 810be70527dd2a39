"""The HTTP adapters with real rate limits (not a stand-in): the ratelimit-*
headers on success, then a real 429 with retry-after, over a loopback socket."""

from __future__ import annotations

import pathlib
from datetime import datetime, timezone
from typing import Any, Callable, Tuple

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("flask")
pytest.importorskip("uvicorn")

import apikeys  # noqa: E402
from http_apps import fastapi_app, flask_app  # noqa: E402
from http_support import ThreadedServer, Uvicorn, Werkzeug, auth, call, refused, make_keys  # noqa: E402

SERVERS: dict[str, Tuple[Callable[[Any], Any], Callable[[Any], ThreadedServer]]] = {
    "fastapi": (fastapi_app, Uvicorn),
    # The check in a worker thread (a keyring that may block).
    "fastapi-sqlite": (fastapi_app, Uvicorn),
    "flask": (flask_app, Werkzeug),
}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_real_limit_sends_headers_then_429(kind: str, tmp_path: pathlib.Path) -> None:
    keys = make_keys()
    clock = apikeys.ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    limits = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(3, 60))
    store = apikeys.SqliteStore(tmp_path / "keys.db") if kind.endswith("-sqlite") else apikeys.MemoryStore()
    kr = apikeys.Keyring(store, clock=clock, rate_limits=limits)
    assert kr.may_block == kind.endswith("-sqlite")
    token = kr.create_general_key(keys.admin, "limited").secret
    keys.keyring = kr
    keys.all = [token]
    make_app, server = SERVERS[kind]
    srv = server(make_app(kr))
    try:
        for remaining in (2, 1, 0):
            a = call(srv.port, "GET", "/incidents", auth(token))
            assert a.status == 200, a.whole()
            assert a.header("ratelimit-limit") == "3"
            assert a.header("ratelimit-remaining") == str(remaining)
            assert a.header("ratelimit-reset") == "60"
        a = call(srv.port, "GET", "/incidents", auth(token))
        refused(keys, a, 429, 2020)
        assert a.header("retry-after") == "60"
        assert a.header("ratelimit-limit") == "3"
        assert a.header("ratelimit-remaining") == "0"
        assert token not in a.whole().decode("latin-1")
        assert kr.rate_limit_rejections() == {kr.list(keys.admin)[0].id: 1}
    finally:
        srv.stop()
