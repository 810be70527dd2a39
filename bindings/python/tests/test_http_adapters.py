# The web frameworks are optional test dependencies: without them these tests
# are skipped, and mypy --strict must still pass.
# mypy: disable-error-code="import-not-found, untyped-decorator"
"""apikeys.asgi (FastAPI, Starlette on uvicorn) and apikeys.wsgi (Flask on
werkzeug's server) over a real loopback socket, with plain HTTP requests for
every edge case, and the server still serving afterwards."""

from __future__ import annotations

import pathlib
from typing import Any, Callable, Iterator, Tuple

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("flask")
pytest.importorskip("uvicorn")

import apikeys  # noqa: E402

from http_apps import EVENT_LIMIT, fastapi_app, flask_app, starlette_app  # noqa: E402
from http_support import (  # noqa: E402
    Keys,
    Limited,
    ThreadedServer,
    Uvicorn,
    Werkzeug,
    auth,
    build,
    call,
    event,
    make_keys,
    refused,
    send,
)

Served = Tuple[Keys, ThreadedServer]
SERVERS: dict[str, Tuple[Callable[[Any], Any], Callable[[Any], ThreadedServer]]] = {
    "fastapi": (fastapi_app, Uvicorn),
    # A keyring that may block: every check runs in a worker thread.
    "fastapi-sqlite": (fastapi_app, Uvicorn),
    "flask": (flask_app, Werkzeug),
}


def keys_for(kind: str, tmp: pathlib.Path) -> Keys:
    sqlite = kind.endswith("-sqlite")
    keys = make_keys(apikeys.SqliteStore(tmp / "keys.db") if sqlite else None)
    assert keys.keyring.may_block == sqlite
    return keys


@pytest.fixture(scope="module", params=sorted(SERVERS))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    make_app, server = SERVERS[request.param]
    keys = keys_for(request.param, tmp_path_factory.mktemp("keys"))
    srv = server(make_app(keys.keyring))
    try:
        yield keys, srv
    finally:
        srv.stop()


def still_serving(keys: Keys, port: int) -> None:
    a = call(port, "GET", "/incidents", auth(keys.full))
    assert a.status == 200, a.whole()


def test_valid_key_reads_in_every_accepted_header_form(served: Served) -> None:
    keys, srv = served
    for header in [
        f"Authorization: Token token={keys.full}",
        f"authorization: token TOKEN={keys.full}",
        f'Authorization:    Token   token = "{keys.full}"  ',
        f"Authorization: Bearer {keys.read_only}",
    ]:
        a = call(srv.port, "GET", "/incidents", [header])
        assert a.status == 200, (header, a.whole())
        assert a.json()["incidents"] == []
        assert a.header("ratelimit-limit") is None
    a = call(srv.port, "GET", "/whoami", auth(keys.full))
    assert a.json() == {"account": "acme", "kind": "general"}
    assert call(srv.port, "GET", "/health").status == 200


def test_missing_empty_and_malformed_headers_are_401(served: Served) -> None:
    keys, srv = served
    for headers in [
        [],
        ["Authorization:"],
        ["Authorization:    "],
        [f"Authorization: Basic {keys.full}"],
        [f"Authorization: {keys.full}"],
        [f"Authorization: Token {keys.full}"],
        ["Authorization: Token token=not-a-key"],
        ["Authorization: Token token=aaaaaaaaaaaaaaaaaaaa"],
        [f"Authorization: Token token={'a' * 2000}"],
        auth(keys.integration),
    ]:
        refused(keys, call(srv.port, "GET", "/incidents", headers), 401, 2006)
    still_serving(keys, srv.port)


def test_one_megabyte_header_is_refused_and_the_server_goes_on(served: Served) -> None:
    keys, srv = served
    a = send(srv.port, build("GET", "/incidents", [f"Authorization: Token token={'a' * (1 << 20)}"]))
    # The server's own header limit answers first (h11, werkzeug), or the middleware does.
    if a is not None:
        assert a.status in (400, 401, 413, 431), a.whole()
        for k in keys.all:
            assert k.encode() not in a.whole()
    still_serving(keys, srv.port)


def test_two_authorization_headers_are_400(served: Served) -> None:
    keys, srv = served
    h = f"Authorization: Token token={keys.full}"
    refused(keys, call(srv.port, "GET", "/incidents", [h, h]), 400, 2001)
    refused(keys, call(srv.port, "GET", "/incidents", [h, f"Authorization: Bearer {keys.read_only}"]), 400, 2001)
    still_serving(keys, srv.port)


def test_read_only_key_cannot_post_and_full_key_can(served: Served) -> None:
    keys, srv = served
    body = b'{"incident":{"title":"db down"}}'
    msg = refused(keys, call(srv.port, "POST", "/incidents", auth(keys.read_only), body), 403, 2010)
    assert "read-only" in msg
    a = call(srv.port, "POST", "/incidents", auth(keys.full), body)
    assert a.status == 201, a.whole()
    assert a.json()["incident"]["title"] == "db down"


def test_disabled_key_is_401_and_enabled_again_reads(served: Served) -> None:
    keys, srv = served
    keys.keyring.disable(keys.admin, keys.read_only_id)
    try:
        refused(keys, call(srv.port, "GET", "/incidents", auth(keys.read_only)), 401, 2006)
    finally:
        keys.keyring.enable(keys.admin, keys.read_only_id)
    assert call(srv.port, "GET", "/incidents", auth(keys.read_only)).status == 200


def test_the_route_scope_decides_what_a_scoped_token_may_do(served: Served) -> None:
    keys, srv = served
    assert call(srv.port, "GET", "/incidents", auth(keys.scoped)).status == 200
    a = call(srv.port, "POST", "/incidents", auth(keys.scoped), b'{"incident":{"title":"t"}}')
    assert a.status == 201, a.whole()
    ack = call(srv.port, "PUT", f"/incidents/{a.json()['incident']['id']}", auth(keys.scoped), b"{}")
    assert ack.status == 200 and ack.json()["incident"]["status"] == "acknowledged", ack.whole()
    # A route without a scope stands for every resource.
    refused(keys, call(srv.port, "GET", "/whoami", auth(keys.scoped)), 403, 2010)


def test_events_key_in_the_body_is_accepted_with_202(served: Served) -> None:
    keys, srv = served
    a = call(srv.port, "POST", "/v2/enqueue", [], event(keys.integration))
    assert a.status == 202, a.whole()
    assert a.json()["status"] == "success" and a.json()["target"] == "PSERVICE1"


def test_rest_key_as_routing_key_is_refused(served: Served) -> None:
    keys, srv = served
    for k in (keys.full, keys.scoped):
        msg = refused(keys, call(srv.port, "POST", "/v2/enqueue", [], event(k)), 400, 2006)
        assert "rest api" in msg.lower()
    refused(keys, call(srv.port, "POST", "/v2/enqueue", [], event("0123456789abcdef0123456789abcdef")), 401, 2006)
    still_serving(keys, srv.port)


def test_bad_events_bodies_are_400(served: Served) -> None:
    keys, srv = served
    huge = b'{"routing_key":"%s","payload":"%s"}' % (keys.integration.encode(), b"x" * (200 * 1024))
    for body in [
        b"",
        b"not json",
        b"routing_key=" + keys.integration.encode(),
        b'{"routing_key":"%s"' % keys.integration.encode(),
        b'["%s"]' % keys.integration.encode(),
        b'{"event_action":"trigger","payload":{}}',
        b'{"routing_key":42}',
        huge,
    ]:
        refused(keys, call(srv.port, "POST", "/v2/enqueue", [], body), 400, 2001)
    still_serving(keys, srv.port)
    assert call(srv.port, "POST", "/v2/enqueue", [], event(keys.integration)).status == 202


def test_chunked_huge_event_is_cut_off_at_the_limit() -> None:
    # Chunked bodies: uvicorn streams them to the ASGI middleware (werkzeug's
    # development server has no chunked support, so Flask is not run here).
    keys = make_keys()
    srv = Uvicorn(fastapi_app(keys.keyring))
    try:
        first = b'{"routing_key":"%s","p":"' % keys.integration.encode()
        raw = b"POST /v2/enqueue HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        raw += b"%x\r\n%s\r\n" % (len(first), first)
        chunk = b"x" * (16 * 1024)
        raw += b"%x\r\n%s\r\n" % (len(chunk), chunk) * 8
        raw += b'2\r\n"}\r\n0\r\n\r\n'
        a = send(srv.port, raw)
        assert a is not None
        msg = refused(keys, a, 400, 2001)
        assert str(EVENT_LIMIT) in msg
        still_serving(keys, srv.port)
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_exhausted_limit_is_429_with_retry_after(kind: str, tmp_path: pathlib.Path) -> None:
    keys = keys_for(kind, tmp_path)
    make_app, server = SERVERS[kind]
    srv = server(make_app(Limited(keys.keyring, refusals=1)))
    try:
        a = call(srv.port, "GET", "/incidents", auth(keys.full))
        refused(keys, a, 429, 2020)
        assert a.header("retry-after") == "2"
        assert a.header("ratelimit-remaining") == "0"
        assert a.header("ratelimit-reset") == "2"
        assert call(srv.port, "GET", "/incidents", auth(keys.full)).status == 200
    finally:
        srv.stop()


def test_starlette_routes_declare_scopes_with_the_decorator() -> None:
    keys = make_keys()
    srv = Uvicorn(starlette_app(keys.keyring))
    try:
        assert call(srv.port, "GET", "/incidents", auth(keys.read_only)).status == 200
        refused(keys, call(srv.port, "POST", "/incidents", auth(keys.read_only), b"{}"), 403, 2010)
        assert call(srv.port, "POST", "/incidents", auth(keys.scoped), b"{}").status == 201
        refused(keys, call(srv.port, "GET", "/incidents"), 401, 2006)
    finally:
        srv.stop()


def test_the_dependency_without_the_middleware_fails_closed() -> None:
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    app = FastAPI()

    @app.get("/x")
    def x(who: apikeys.Principal = Depends(apikeys.asgi.require_scope("incidents.read"))) -> str:
        return who.account

    with pytest.raises(RuntimeError, match="not installed"):
        TestClient(app).get("/x")
