# mypy: disable-error-code="import-not-found, untyped-decorator"
"""On an apikeys.Keyring, apikeys.asgi and apikeys.wsgi read a REST
request's Authorization header and check the key in one native call
(_http_asgi_rest, which also probes the routing cache, and
_http_joined_rest_check); a stand-in keyring, or one with
an authenticate of its own, is called as before (the header read natively,
then keyring.authenticate). The two paths must answer every request alike,
through sequences that change a key or its owner between requests: these
tests run both on one keyring and compare the bytes the client gets."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

pytest.importorskip("starlette")
pytest.importorskip("flask")

import apikeys  # noqa: E402
import apikeys.asgi as asgi  # noqa: E402
import apikeys.wsgi as wsgi  # noqa: E402

ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")
MANAGER = apikeys.Actor("acme", "PMANAGER1", "manager")
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"]
# Route path -> the scope it needs (None: no scope declared).
ROUTES: Dict[str, Optional[str]] = {
    "/read": "incidents.read",
    "/write": "incidents.write",
    "/services": "services.read",
    "/open": None,
}

Outcome = Tuple[int, List[Tuple[bytes, bytes]], bytes]


class StandIn:
    """A keyring the adapters know nothing of: the general path."""

    def __init__(self, keyring: apikeys.Keyring) -> None:
        self.keyring = keyring
        self.has_rate_limits = keyring.has_rate_limits

    def authenticate(self, *args: Any, **kwargs: Any) -> apikeys.Principal:
        return self.keyring.authenticate(*args, **kwargs)


def who(p: apikeys.Principal) -> Dict[str, Any]:
    return {"key": p.key_id, "kind": str(p.kind.value), "role": p.role and str(p.role.value), "account": p.account}


def starlette_app(keyring: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def endpoint(scope: Optional[str]) -> Any:
        async def handler(request: Any) -> JSONResponse:
            return JSONResponse(who(request.state.apikey))

        return asgi.requires_scope(scope)(handler) if scope else handler

    return Starlette(
        routes=[Route(path, endpoint(scope), methods=METHODS) for path, scope in ROUTES.items()],
        middleware=[Middleware(asgi.ApiKeyMiddleware, keyring=keyring)],
    )


def asgi_call(
    app: Any,
    method: str,
    path: str,
    headers: List[Tuple[bytes, bytes]],
    change: Callable[[Dict[str, Any]], Any] = lambda scope: scope,
) -> Outcome:
    scope: Any = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("192.0.2.7", 50000),
        "server": ("testserver", 80),
    }
    scope = change(scope)
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    return start["status"], sorted(start["headers"]), b"".join(m.get("body", b"") for m in sent[1:])


def flask_app(keyring: Any) -> Any:
    from flask import Flask, request

    app = Flask("one_call")

    def view(name: str, scope: Optional[str]) -> Callable[[], Any]:
        def handler() -> Any:
            return who(request.environ["apikeys.principal"])

        handler.__name__ = name
        return wsgi.requires_scope(scope)(handler) if scope else handler

    for path, scope in ROUTES.items():
        app.add_url_rule(path, view_func=view(path.strip("/"), scope), methods=METHODS)
    wsgi.protect_flask(app, keyring)
    return app


def wsgi_call(app: Any, method: str, path: str, headers: List[Tuple[str, str]]) -> Outcome:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=path, method=method, headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.7"}).get_environ()
    # Repeated headers joined with a bare comma, as gunicorn and werkzeug's server join them.
    values = [v for k, v in headers if k.lower() == "authorization"]
    if len(values) > 1:
        environ["HTTP_AUTHORIZATION"] = ",".join(values)
    got: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
        got["status"], got["headers"] = status, headers
        return lambda _: None

    body = b"".join(app(environ, start_response))
    status = int(got["status"].split()[0])
    return status, sorted((k.encode(), v.encode()) for k, v in got["headers"]), body


class Corpus:
    """Keys of every kind on one keyring, and the header forms to send them in."""

    def __init__(self) -> None:
        self.keyring = apikeys.Keyring()
        kr = self.keyring
        kr.set_user_role("acme", "PMANAGER1", "manager")
        self.keys = {
            "full": kr.create_general_key(ADMIN, "full").secret,
            "read_only": kr.create_general_key(ADMIN, "ro", read_only=True).secret,
            "scoped": kr.create_scoped_token(MANAGER, "closer", ["incidents.write"]).secret,
            "user": kr.create_user_token(MANAGER, "mine").secret,
            "integration": kr.create_integration_key(MANAGER, "PSVC1", "events").secret,
            "unknown": "y_NbAkKc66ryYTWUXYEu",
        }
        off = kr.create_general_key(ADMIN, "off")
        kr.disable(ADMIN, off.record.id)
        self.keys["disabled"] = off.secret
        gone = kr.create_general_key(ADMIN, "gone")
        kr.delete(ADMIN, gone.record.id)
        self.keys["deleted"] = gone.secret

    @staticmethod
    def header_forms(key: str) -> List[List[Tuple[str, str]]]:
        return [
            [("Authorization", f"Token token={key}")],
            [("authorization", f'token token="{key}"')],
            [("Authorization", f"Bearer {key}")],
            [("Authorization", f"Token token={key}"), ("Authorization", f"Token token={key}")],
            [("Authorization", f"Basic {key}")],
            [("Authorization", f"Token token={key}x")],
        ]

    no_key: List[List[Tuple[str, str]]] = [
        [],
        [("Authorization", "")],
        [("Authorization", "Token token=")],
        [("Authorization", "x" * 70_000)],
        [("X-Authorization", "Token token=y_NbAkKc66ryYTWUXYEu")],
    ]

    def requests(self) -> List[Tuple[str, str, List[Tuple[str, str]]]]:
        out = []
        for path in ROUTES:
            for method in METHODS:
                for key in self.keys.values():
                    for headers in self.header_forms(key):
                        out.append((method, path, headers))
                for headers in self.no_key:
                    out.append((method, path, headers))
        return out


def asgi_headers(headers: List[Tuple[str, str]]) -> List[Tuple[bytes, bytes]]:
    return [(k.lower().encode(), v.encode()) for k, v in headers] + [(b"host", b"testserver")]


def counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> List[int]:
    """Counts the calls of module.name that answered (not None: _asgi_rest
    answers None for a request it leaves to the general path)."""
    calls = [0]
    real = getattr(module, name)

    def counted(*args: Any) -> Any:
        out = real(*args)
        calls[0] += out is not None
        return out

    monkeypatch.setattr(module, name, counted)
    return calls


def test_asgi_both_paths_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Corpus()
    inline_calls = counting(monkeypatch, asgi, "_asgi_rest")
    one, general = starlette_app(c.keyring), starlette_app(StandIn(c.keyring))
    statuses = set()
    passed = 0
    for method, path, headers in c.requests():
        h = asgi_headers(headers)
        a = asgi_call(one, method, path, h)
        b = asgi_call(general, method, path, h)
        assert a == b, (method, path, headers[:1])
        statuses.add(a[0])
        passed += a[0] == 200
    assert inline_calls[0] > 1000, "the one-call path was taken (after each route's first request)"
    assert passed > 50
    assert statuses == {200, 400, 401, 403}


def test_wsgi_both_paths_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    c = Corpus()
    inline_calls = counting(monkeypatch, wsgi, "_joined_rest_check")
    one, general = flask_app(c.keyring), flask_app(StandIn(c.keyring))
    statuses = set()
    for method, path, headers in c.requests():
        a = wsgi_call(one, method, path, headers)
        b = wsgi_call(general, method, path, headers)
        assert a == b, (method, path, headers[:1])
        statuses.add(a[0])
    assert inline_calls[0] > 1000
    assert statuses == {200, 400, 401, 403}


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_sequences_answer_as_of_each_request(kind: str) -> None:
    """A key disabled, enabled, deleted; a user token's owner demoted and
    removed: each request on the one-call path answers as of its own time."""
    kr = apikeys.Keyring()
    kr.set_user_role("acme", "PUSER1", "manager")
    user = apikeys.Actor("acme", "PUSER1", "manager")
    general = kr.create_general_key(ADMIN, "k")
    token = kr.create_user_token(user, "mine").secret
    if kind == "asgi":
        app = starlette_app(kr)

        def status(method: str, path: str, key: str) -> int:
            return asgi_call(app, method, path, asgi_headers([("Authorization", f"Token token={key}")]))[0]
    else:
        app = flask_app(kr)

        def status(method: str, path: str, key: str) -> int:
            return wsgi_call(app, method, path, [("Authorization", f"Token token={key}")])[0]

    for _ in range(2):  # the second round runs with the routes cached
        assert status("GET", "/read", general.secret) == 200
    kr.disable(ADMIN, general.record.id)
    assert status("GET", "/read", general.secret) == 401
    kr.enable(ADMIN, general.record.id)
    assert status("GET", "/read", general.secret) == 200
    kr.delete(ADMIN, general.record.id)
    assert status("GET", "/read", general.secret) == 401

    assert status("POST", "/write", token) == 200
    kr.set_user_role("acme", "PUSER1", "observer")
    assert status("POST", "/write", token) == 403, "demoted: writes refused at once"
    assert status("GET", "/read", token) == 200
    kr.remove_user("acme", "PUSER1")
    assert status("GET", "/read", token) == 401


def test_only_this_package_keyring_takes_the_one_call_path() -> None:
    """A keyring with an authenticate of its own can only be a stand-in
    (apikeys.Keyring cannot be subclassed), and a stand-in is called."""
    with pytest.raises(TypeError):
        type("Sub", (apikeys.Keyring,), {})
    assert apikeys._http._checks_natively(apikeys.Keyring())
    assert not apikeys._http._checks_natively(StandIn(apikeys.Keyring()))
    calls = [0]

    class Counting(StandIn):
        def authenticate(self, *args: Any, **kwargs: Any) -> apikeys.Principal:
            calls[0] += 1
            return super().authenticate(*args, **kwargs)

    kr = apikeys.Keyring()
    key = kr.create_general_key(ADMIN, "k").secret
    counted = Counting(kr)
    a, w = starlette_app(counted), flask_app(counted)
    for _ in range(3):
        assert asgi_call(a, "GET", "/read", asgi_headers([("Authorization", f"Token token={key}")]))[0] == 200
        assert wsgi_call(w, "GET", "/read", [("Authorization", f"Token token={key}")])[0] == 200
    assert calls[0] == 6


def test_wsgi_scope_for_is_asked_only_once_the_header_gave_a_key() -> None:
    """As on the general path: a request without a usable key is refused
    for that (401) before the application's scope_for runs, so a broken
    scope_for answers 500 only to requests that carry a key."""
    kr = apikeys.Keyring()
    key = kr.create_general_key(ADMIN, "k").secret
    asked: List[str] = []

    def scope_for(environ: Any) -> Optional[str]:
        asked.append(environ["PATH_INFO"])
        if environ["PATH_INFO"] == "/broken":
            raise RuntimeError("no scope here")
        return "incidents.read"

    def inner(environ: Any, start_response: Any) -> List[bytes]:
        start_response("200 OK", [("content-type", "text/plain")])
        return [b"ok"]

    keyrings: List[Any] = [kr, StandIn(kr)]
    for keyring in keyrings:
        asked.clear()
        app = wsgi.ApiKeyMiddleware(inner, keyring, scope_for=scope_for)
        assert wsgi_call(app, "GET", "/broken", [])[0] == 401
        assert wsgi_call(app, "GET", "/read", [("Authorization", "Basic bm9wZQ==")])[0] == 401
        assert asked == [], "no key: scope_for not asked"
        assert wsgi_call(app, "GET", "/broken", [("Authorization", f"Token token={key}")])[0] == 500
        assert wsgi_call(app, "GET", "/read", [("Authorization", f"Token token={key}")])[0] == 200
        assert asked == ["/broken", "/read"]


def odd_scopes() -> List[Tuple[str, Callable[[Dict[str, Any]], Any], bool]]:
    """ASGI scopes in shapes servers do not send but the middleware reads,
    each with whether the one native call reads it itself (True) or leaves it
    to the general path (False)."""

    class Scope(dict):  # type: ignore[type-arg]
        pass

    def with_headers(make: Callable[[List[Tuple[bytes, bytes]]], Any]) -> Callable[[Dict[str, Any]], Any]:
        def change(scope: Dict[str, Any]) -> Any:
            scope["headers"] = make(scope["headers"])
            return scope

        return change

    def without(name: str) -> Callable[[Dict[str, Any]], Any]:
        def change(scope: Dict[str, Any]) -> Any:
            del scope[name]
            return scope

        return change

    return [
        ("as servers send it", lambda s: s, True),
        ("names in capitals", with_headers(lambda h: [(k.upper(), v) for k, v in h]), True),
        ("names mixed case", with_headers(lambda h: [(k.title(), v) for k, v in h]), True),
        ("two Host headers", with_headers(lambda h: h + [(b"host", b"other")]), True),
        ("no Host header", with_headers(lambda h: [(k, v) for k, v in h if k != b"host"]), True),
        ("no root_path", without("root_path"), True),
        ("no scheme", without("scheme"), True),
        ("headers as lists", with_headers(lambda h: [[k, v] for k, v in h]), False),
        ("headers as a tuple", with_headers(tuple), False),
        ("a bytearray name", with_headers(lambda h: [(bytearray(k), v) for k, v in h]), False),
        ("a dict subclass", lambda s: Scope(s), False),
    ]


def test_asgi_scopes_of_other_shapes_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """The native call reads a scope only in the shape servers give it and
    leaves every other shape to the general path: both answer alike, and
    the routing cache's key is the same (a route cached by one path is
    found by the other)."""
    c = Corpus()
    one, general = starlette_app(c.keyring), starlette_app(StandIn(c.keyring))
    for name, change, native in odd_scopes():
        for method, path, headers in c.requests()[::7]:
            # A request with a key puts its route in the routing cache (one without is refused first).
            asgi_call(one, method, path, asgi_headers([("Authorization", f"Token token={c.keys['full']}")]), change)
            answered = counting(monkeypatch, asgi, "_asgi_rest")
            a = asgi_call(one, method, path, asgi_headers(headers), change)
            b = asgi_call(general, method, path, asgi_headers(headers), change)
            monkeypatch.undo()
            assert a == b, (name, method, path, headers[:1])
            assert (answered[0] > 0) == native, (name, method, path, answered[0])


def test_the_native_calls_refuse_bad_arguments_clearly() -> None:
    kr = apikeys.Keyring()
    key = kr.create_general_key(ADMIN, "k").secret
    rest = apikeys._http._asgi_rest
    joined = apikeys._http._joined_rest_check
    headers = [(b"host", b"testserver"), (b"authorization", f"Token token={key}".encode())]
    app = object()
    scope = {"method": "GET", "path": "/read", "root_path": "", "scheme": "http", "headers": headers, "app": app}
    cached = ("GET", "/read", "", "http", b"testserver", id(app))
    # A cache miss is left to the middleware; a hit answers the principal and the route's scope.
    assert rest(kr, scope, {}, "/read", None) is None
    who, required = rest(kr, scope, {cached: "incidents.read"}, "/read", "192.0.2.7")  # type: ignore[misc]
    assert isinstance(who, apikeys.Principal) and required == "incidents.read"
    assert rest(kr, scope, {cached: ""}, "/read", None)[1] is None  # type: ignore[index]
    # Not a scope in the servers' shape: left to the middleware, never an error.
    odd: Any
    for odd in (42, [], {**scope, "headers": None}, {**scope, "method": b"GET"}, {**scope, "headers": [(b"host",)]}):
        assert rest(kr, odd, {cached: ""}, "/read", None) is None
    with pytest.raises(TypeError):
        rest(StandIn(kr), scope, {}, "/read", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rest(kr, scope, [], "/read", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rest(kr, scope, {cached: ""}, "/read", 42)  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput):
        rest(kr, scope, {cached: "not a scope"}, "/read", None)
    # A refusal is a tuple and never carries the key.
    wrong = [(b"host", b"testserver"), (b"authorization", f"Token token={key}x".encode())]
    refusal = rest(kr, {**scope, "headers": wrong}, {cached: ""}, "/read", None)
    assert isinstance(refusal, tuple) and refusal[0] == 401 and key not in repr(refusal)
    assert isinstance(joined(kr, f"Token token={key}", "GET", None, None, None, None, None), apikeys.Principal)
    refused = joined(kr, f"Token token={key}x", "GET", None, None, None, None, None)
    assert isinstance(refused, tuple) and refused[0] == 401 and key not in repr(refused)
    # What scope_of answers is checked as authenticate checks a scope; what it raises goes through.
    with pytest.raises(apikeys.InvalidInput):
        joined(kr, f"Token token={key}", "GET", lambda environ: "incidents", {}, None, None, None)
    with pytest.raises(KeyError):
        joined(kr, f"Token token={key}", "GET", lambda environ: environ["missing"], {}, None, None, None)
    # The route-scope cache answers before scope_of; what it cannot answer goes to
    # scope_of. A read-only key shows which scope was used: a write scope is a 403.
    ro = kr.create_general_key(ADMIN, "ro", read_only=True).secret
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/write"}

    def never(environ: Any) -> Optional[str]:
        raise AssertionError("scope_of asked although the cache holds the route")

    writes = {("GET", "/write"): "incidents.write"}
    answer = joined(kr, f"Token token={ro}", "GET", never, env, None, None, writes)
    assert isinstance(answer, tuple) and answer[0] == 403
    assert isinstance(joined(kr, f"Token token={ro}", "GET", never, env, None, None, {("GET", "/write"): ""}), apikeys.Principal)
    asked: List[Any] = []

    def scope_of(environ: Any) -> Optional[str]:
        asked.append(environ)
        return "incidents.write"

    for environ, cache in (
        (env, {}),  # not in it
        (env, {("GET", "/write"): 42}),  # not a str: not the resolver's
        (dict(env, REQUEST_METHOD="POST"), writes),  # another method
        ({"PATH_INFO": "/write"}, writes),  # no method: the key holds ""
        (DictSubclass(env), writes),  # not a dict
    ):
        asked.clear()
        answer = joined(kr, f"Token token={ro}", "GET", scope_of, environ, None, None, cache)  # type: ignore[arg-type]
        assert isinstance(answer, tuple) and answer[0] == 403
        assert asked == [environ]
    with pytest.raises(TypeError):
        joined(kr, f"Token token={key}", "GET", scope_of, env, None, None, [])  # type: ignore[arg-type]


class DictSubclass(dict):  # type: ignore[type-arg]
    """A dict subclass standing for an environ that is not a plain dict."""


def test_flask_route_scopes_are_found_natively_once_cached() -> None:
    """protect_flask's resolver keeps each route's scope by method and path;
    the one native call reads that cache itself and asks the resolver only
    for a request not in it, and a Flask app with host matching is asked
    every time (its cache is keyed by more than method and path)."""
    from flask import Flask

    kr = apikeys.Keyring()
    key = kr.create_general_key(ADMIN, "k").secret
    for host_matching in (False, True):
        app = Flask("cached", host_matching=host_matching, static_host="testserver" if host_matching else None)
        for path, scope in ROUTES.items():
            handler = (lambda: "ok")
            handler.__name__ = path.strip("/") or "root"
            view = wsgi.requires_scope(scope)(handler) if scope else handler
            app.add_url_rule(path, view_func=view, methods=METHODS, host="localhost" if host_matching else None)
        mw = wsgi.protect_flask(app, kr)
        resolver = mw.scope_for
        assert isinstance(resolver, wsgi._FlaskScopeFor)
        assert (resolver.route_scopes is None) == host_matching
        calls = [0]
        real = type(resolver).__call__

        def counted(self: Any, environ: Any) -> Optional[str]:
            calls[0] += 1
            return real(self, environ)

        type(resolver).__call__ = counted  # type: ignore[method-assign]
        try:
            outcomes = []
            for _ in range(3):
                for path in ROUTES:
                    outcomes.append(wsgi_call(app, "GET", path, [("Authorization", f"Token token={key}")])[0])
                    outcomes.append(wsgi_call(app, "PATCH", path, [("Authorization", f"Token token={key}")])[0])
        finally:
            type(resolver).__call__ = real  # type: ignore[method-assign]
        assert set(outcomes) == {200}, outcomes
        assert calls[0] == (3 * 2 * len(ROUTES) if host_matching else 2 * len(ROUTES)), calls[0]


def test_a_scope_for_set_later_is_asked_not_the_old_cache() -> None:
    """Once the resolver's cache holds /read's scope, a scope_for put on the
    middleware later decides the next request: the native call must not
    answer from the old resolver's cache (a stale layer would let a
    read-only key write)."""
    kr = apikeys.Keyring()
    ro = kr.create_general_key(ADMIN, "ro", read_only=True).secret
    app = flask_app(kr)
    mw = app.wsgi_app
    assert isinstance(mw, wsgi.ApiKeyMiddleware)
    read = [("Authorization", f"Token token={ro}")]
    for _ in range(2):
        assert wsgi_call(app, "GET", "/read", read)[0] == 200
    mw.scope_for = lambda environ: "incidents.write"
    assert wsgi_call(app, "GET", "/read", read)[0] == 403
    mw.scope_for = None
    assert wsgi_call(app, "GET", "/write", read)[0] == 200, "no scope_for: no route scope"



def test_asgi_a_scope_for_set_later_is_asked_not_the_routing_cache() -> None:
    """The ASGI routing cache keeps scope_for's answers; a scope_for set on
    the middleware later decides the next request on both paths."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def handler(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    kr = apikeys.Keyring()
    ro = kr.create_general_key(ADMIN, "ro", read_only=True).secret
    inner = Starlette(routes=[Route("/plain", handler)])
    headers = asgi_headers([("Authorization", f"Token token={ro}")])
    keyrings: List[Any] = [kr, StandIn(kr)]
    for keyring in keyrings:
        mw = asgi.ApiKeyMiddleware(inner, keyring, scope_for=lambda method, path: "incidents.read")
        for _ in range(3):
            assert asgi_call(mw, "GET", "/plain", headers)[0] == 200
        mw.scope_for = lambda method, path: "incidents.write"
        assert asgi_call(mw, "GET", "/plain", headers)[0] == 403
        mw.scope_for = None
        assert asgi_call(mw, "GET", "/plain", headers)[0] == 200


def test_an_invalid_scope_from_scope_for_answers_alike() -> None:
    """scope_for may give a string that is not a scope: both paths answer
    the refusal authenticate's error renders, on the route's first request
    and once its answer is cached (the one-call path raised it instead)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def handler(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    kr = apikeys.Keyring()
    key = kr.create_general_key(ADMIN, "k").secret
    inner = Starlette(routes=[Route("/plain", handler)])
    headers = asgi_headers([("Authorization", f"Token token={key}")])
    one = asgi.ApiKeyMiddleware(inner, kr, scope_for=lambda method, path: "incidents")
    stand_in: Any = StandIn(kr)
    general = asgi.ApiKeyMiddleware(inner, stand_in, scope_for=lambda method, path: "incidents")
    for _ in range(3):
        a, b = asgi_call(one, "GET", "/plain", headers), asgi_call(general, "GET", "/plain", headers)
        assert a == b and a[0] == 400, (a, b)
        assert key.encode() not in a[2]


def test_asgi_routes_without_a_declaration_ask_scope_for() -> None:
    """A route's own declaration decides its scope; a route that declares
    none (a plain endpoint, or a Mount of an ASGI app with no routes of its
    own) and a request no route matches are asked of scope_for, on both
    paths and on every request of the route (the cached ones too)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def handler(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    # (requires_scope marks the function itself: the declared route gets one of its own.)
    @asgi.requires_scope("incidents.read")
    async def declared(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def foreign(scope: Any, receive: Any, send: Any) -> None:
        await PlainTextResponse("foreign")(scope, receive, send)

    kr = apikeys.Keyring()
    ro = kr.create_general_key(ADMIN, "ro", read_only=True).secret
    inner = Starlette(
        routes=[
            Route("/declared", declared),
            Route("/plain", handler),
            Mount("/legacy", app=foreign),
        ]
    )
    headers = asgi_headers([("Authorization", f"Token token={ro}")])
    asked: List[Tuple[str, str]] = []

    def scope_for(method: str, path: str) -> str:
        asked.append((method, path))
        return "incidents.write"

    keyrings: List[Any] = [kr, StandIn(kr)]
    for keyring in keyrings:
        mw = asgi.ApiKeyMiddleware(inner, keyring, scope_for=scope_for)

        def status(path: str) -> int:
            return asgi_call(mw, "GET", path, headers, lambda s: {**s, "app": inner})[0]

        asked.clear()
        for _ in range(3):
            assert status("/declared") == 200, "the route's own scope decides"
            assert status("/plain") == 403, "no declaration: scope_for's write scope"
            assert status("/legacy/anything") == 403, "a mounted app: scope_for's write scope"
            assert status("/nowhere") == 403, "no route: scope_for's write scope"
        # Asked once per route (then cached), never for the declared one.
        assert sorted(set(asked)) == [("GET", "/legacy/anything"), ("GET", "/nowhere"), ("GET", "/plain")], asked
        assert len(asked) == 3, asked
