# mypy: disable-error-code="import-not-found, untyped-decorator"
"""apikeys.asgi keeps the scope it found for a request (routing each request
again costs about as much as the key check). The kept answer must be the
route's own: two routes with the same method and path that differ in what
routing looks at (the Host header, the root path, a route class of the
application's own) each keep their scope. And a route whose scope
declaration cannot be honoured is a clear error, never a traceback."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, MutableMapping, Optional, Tuple

import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

import apikeys  # noqa: E402
from apikeys.asgi import ApiKeyMiddleware, ScopeDeclarationError, require_scope, requires_scope  # noqa: E402

from http_support import Answer, Uvicorn, call, make_keys, refused, send  # noqa: E402

MANAGER = apikeys.Actor("acme", "PMANAGER1", "manager")
# Admin-only resources (audit_records) are handed to a token only by an Owner or Admin.
ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")


def host_app(keyring: apikeys.Keyring) -> Any:
    """The same GET /records on two hosts: incidents on the public one,
    audit records on the admin one."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Host, Route, Router

    @requires_scope("incidents.read")
    async def public(request: Any) -> JSONResponse:
        return JSONResponse({"host": "public"})

    @requires_scope("audit_records.read")
    async def admin(request: Any) -> JSONResponse:
        return JSONResponse({"host": "admin", "secret": "audit"})

    return Starlette(
        routes=[
            Host("public.example", Router([Route("/records", public)])),
            Host("admin.example", Router([Route("/records", admin)])),
        ],
        middleware=[Middleware(ApiKeyMiddleware, keyring=keyring)],
    )


@pytest.mark.parametrize("first", ["public.example", "admin.example"])
def test_same_route_on_two_hosts_keeps_each_hosts_scope(first: str) -> None:
    keys = make_keys()
    reader = keys.keyring.create_scoped_token(MANAGER, "reader", ["incidents.read"]).secret
    auditor = keys.keyring.create_scoped_token(ADMIN, "auditor", ["audit_records.read"]).secret
    keys.all += [reader, auditor]
    srv = Uvicorn(host_app(keys.keyring))
    try:
        order = [first] + [h for h in ("public.example", "admin.example") if h != first]
        for _ in range(3):  # the second and third rounds are answered from the kept scopes
            for host in order:
                a = get(srv.port, host, reader)
                if host == "public.example":
                    assert a.status == 200 and a.json() == {"host": "public"}, a.whole()
                else:
                    refused(keys, a, 403, 2010)
                    assert b"host" not in a.body  # the admin route did not run
                a = get(srv.port, host, auditor)
                if host == "admin.example":
                    assert a.status == 200 and a.json()["host"] == "admin", a.whole()
                else:
                    refused(keys, a, 403, 2010)
        # The port in the Host header is part of the key; the route is the same.
        a = get(srv.port, "admin.example:8080", reader)
        refused(keys, a, 403, 2010)
    finally:
        srv.stop()


def get(port: int, host: str, token: str) -> Answer:
    raw = f"GET /records HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: Token token={token}\r\n\r\n"
    a = send(port, raw.encode())
    assert a is not None
    return a


# In-process: the middleware driven straight through ASGI.


async def _run(mw: Any, scope: Dict[str, Any]) -> Tuple[int, bytes]:
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


def _request(
    app: Any, token: str, path: str, root_path: str = "", headers: Optional[List[Tuple[bytes, bytes]]] = None
) -> Dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(b"host", b"x.example"), (b"authorization", f"Token token={token}".encode())] + (headers or []),
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "app": app,
    }


def _drive(app: Any, requests: List[Dict[str, Any]]) -> List[int]:
    import asyncio

    async def go() -> List[int]:
        # The Starlette app builds its middleware stack on its first call;
        # ours is then the outermost user middleware, reached through it.
        return [(await _run(app, r))[0] for r in requests]

    return asyncio.run(go())


def test_same_path_under_two_root_paths_keeps_each_scope() -> None:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    kr = apikeys.Keyring()
    reader = kr.create_scoped_token(MANAGER, "reader", ["incidents.read"]).secret

    @requires_scope("incidents.read")
    async def under_root(request: Any) -> PlainTextResponse:
        return PlainTextResponse("incidents")

    @requires_scope("audit_records.read")
    async def whole_path(request: Any) -> PlainTextResponse:
        return PlainTextResponse("audit")

    app = Starlette(
        routes=[Route("/x", under_root), Route("/api/x", whole_path)],
        middleware=[Middleware(ApiKeyMiddleware, keyring=kr)],
    )
    for order in (["/api", ""], ["", "/api"]):
        got = _drive(app, [_request(app, reader, "/api/x", root) for root in order * 2])
        want = [200 if root == "/api" else 403 for root in order * 2]
        assert got == want, (order, got)


def test_a_route_class_of_the_applications_own_is_routed_every_time() -> None:
    """A route that matches on something the middleware's key does not hold
    (here a header): its answer is never kept."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Match, Route

    class VersionRoute(Route):
        def __init__(self, path: str, endpoint: Any, version: bytes) -> None:
            super().__init__(path, endpoint)
            self.version = version

        def matches(self, scope: Any) -> Any:
            match, child = super().matches(scope)
            if match == Match.FULL and (b"x-version", self.version) not in scope["headers"]:
                return Match.NONE, {}
            return match, child

    kr = apikeys.Keyring()
    reader = kr.create_scoped_token(MANAGER, "reader", ["incidents.read"]).secret

    @requires_scope("incidents.read")
    async def v1(request: Any) -> PlainTextResponse:
        return PlainTextResponse("v1")

    @requires_scope("audit_records.read")
    async def v2(request: Any) -> PlainTextResponse:
        return PlainTextResponse("v2")

    app = Starlette(
        routes=[VersionRoute("/records", v1, b"1"), VersionRoute("/records", v2, b"2")],
        middleware=[Middleware(ApiKeyMiddleware, keyring=kr)],
    )
    reqs = [_request(app, reader, "/records", headers=[(b"x-version", v)]) for v in (b"1", b"2", b"1", b"2")]
    assert _drive(app, reqs) == [200, 403, 200, 403]


def test_two_scopes_on_one_fastapi_route_are_a_500_naming_the_route(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("fastapi")
    from fastapi import Depends, FastAPI

    keys = make_keys()
    app = FastAPI()
    app.add_middleware(ApiKeyMiddleware, keyring=keys.keyring)

    @app.get("/both")
    def both(
        a: apikeys.Principal = Depends(require_scope("incidents.read")),
        b: apikeys.Principal = Depends(require_scope("services.read")),
    ) -> str:
        return "never"

    @app.get("/twice")
    def twice(
        a: apikeys.Principal = Depends(require_scope("incidents.read")),
        b: apikeys.Principal = Depends(require_scope("incidents.read")),
    ) -> str:
        return "fine"

    srv = Uvicorn(app)
    try:
        with caplog.at_level(logging.ERROR, logger="apikeys.asgi"):
            a = call(srv.port, "GET", "/both", [f"Authorization: Token token={keys.full}"])
        msg = refused(keys, a, 500, 2000)
        assert msg == "an internal error occurred"
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "apikeys.asgi")
        assert "/both" in logged and "'incidents.read'" in logged and "'services.read'" in logged, logged
        assert all(r.exc_info is None for r in caplog.records if r.name == "apikeys.asgi")
        # The same scope twice is one scope.
        a = call(srv.port, "GET", "/twice", [f"Authorization: Token token={keys.full}"])
        assert a.status == 200 and a.json() == "fine", a.whole()
    finally:
        srv.stop()


def test_two_scopes_on_one_route_fail_the_apps_startup() -> None:
    pytest.importorskip("fastapi")
    import asyncio

    from fastapi import Depends, FastAPI

    app = FastAPI()
    app.add_middleware(ApiKeyMiddleware, keyring=apikeys.Keyring())

    @app.get("/both")
    def both(
        a: apikeys.Principal = Depends(require_scope("incidents.read")),
        b: apikeys.Principal = Depends(require_scope("services.read")),
    ) -> str:
        return "never"

    async def startup() -> List[Dict[str, Any]]:
        sent: List[Dict[str, Any]] = []
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive() -> Dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)
            return {"type": "lifespan.shutdown"}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(dict(message))

        await asyncio.wait_for(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send), 5)
        return sent

    sent = asyncio.run(startup())
    failed = [m for m in sent if m["type"] == "lifespan.startup.failed"]
    assert failed and "/both" in failed[0]["message"] and "services.read" in failed[0]["message"], sent


def test_bad_scope_declarations_are_refused_when_the_app_is_defined() -> None:
    with pytest.raises(TypeError, match="str"):
        requires_scope(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="str"):
        require_scope(None)  # type: ignore[arg-type]

    async def view(request: Any) -> None:
        return None

    marked = requires_scope("incidents.read")(view)
    assert requires_scope("incidents.read")(marked) is view  # the same scope again is fine
    with pytest.raises(ScopeDeclarationError, match="incidents.read") as e:
        requires_scope("incidents.write")(view)
    assert isinstance(e.value, TypeError)


@pytest.mark.parametrize("given", [5, ["incidents.read"], b"incidents.read", "raise"])
def test_a_bad_scope_for_is_a_500_naming_the_route(given: Any, caplog: pytest.LogCaptureFixture) -> None:
    keys = make_keys()

    def scope_for(method: str, path: str) -> Any:
        if given == "raise":
            raise KeyError("no such route")
        return given

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app is not reached")

    mw = ApiKeyMiddleware(app, keys.keyring, scope_for=scope_for)
    import asyncio

    with caplog.at_level(logging.ERROR, logger="apikeys.asgi"):
        status, body = asyncio.run(_run(mw, _request(None, keys.full, "/incidents/P1")))
    assert status == 500
    assert body == b'{"error":{"message":"an internal error occurred","code":2000}}'
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "apikeys.asgi")
    assert "GET" in logged and "/incidents/P1" in logged, logged
    assert keys.full not in caplog.text
