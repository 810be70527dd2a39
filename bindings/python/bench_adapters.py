"""What apikeys.asgi and apikeys.wsgi add to a request, next to what a no-op
middleware of the same kind adds and what `Keyring.authenticate` costs, all in
one run (no sockets, no server).

    python bindings/python/bench_adapters.py            # the figures in docs/performance.md ("Adapters")
    python bindings/python/bench_adapters.py --quick    # a smoke run (scripts/test-python.sh)
    python bindings/python/bench_adapters.py --parts    # the middleware's steps, one by one
    python bindings/python/bench_adapters.py --loop NAME --calls N   # one case only (for py-spy, callgrind)
    python bindings/python/bench_adapters.py --before REV  # adds the adapters of git revision REV (cases *-before)
    python bindings/python/bench_adapters.py --evict BYTES  # caches made cold before every request (below)
    python bindings/python/bench_adapters.py --paired       # two cases request by request (below)
    valgrind --tool=callgrind --dump-before=sched_yield python bindings/python/bench_adapters.py --count A,B,... --calls N
        # instructions: each case warmed up, then N requests between two sched_yield() calls,
        # so every second dump (2, 4, ...) holds the N requests of one case

Every case is one request driven straight into the application: ASGI apps
(FastAPI, Starlette) are awaited with a fresh scope, a `receive` that hands
over the body and a `send` that keeps the status; the Flask app is called
with a fresh environ and its answer iterated and closed. The handlers answer
a constant JSON body (REST: `GET /incidents`, the route needing
`incidents.read`) or read the 1 KiB JSON body and answer 202 (Events:
`POST /v2/enqueue`), the same handler in every case of a table.

For each framework: `bare` (no middleware), `noop` (a middleware of the same
kind that only passes the request on: a pure ASGI class, a WSGI callable
wrapping `app.wsgi_app`), `apikeys` (the adapter, the principal read in the
handler from `request.scope` / `request.environ`). For FastAPI also the
principal through `request.state`, and `Depends(require_scope(...))` beside a
no-op `Depends` (the same dependency machinery doing nothing). The rounds go
through every case in turn, the order rotating each round, so a burst of load
from elsewhere hits all cases alike; each case's figure is the fastest round
by this thread's CPU time (and the median round; the fastest by the wall
clock beside them), in µs per request, and the adapter's cost is the
difference to the no-op middleware in the same table.

`--evict BYTES` walks a buffer of BYTES (one load per 64-byte line, the same
walk in every case) before every request, so that each request starts with
the caches as a server leaves them between requests, its event loop, parser
and kernel having run in between; each request is then timed alone by this
thread's CPU time (the walk outside the clock; the clock's own read, a
system call, is in every case alike) and a round's figure is the sum of its
requests' times. With `--loop`/`--count` the walk runs between the
requests too (for `valgrind --tool=callgrind --cache-sim=yes`).

`--paired` sends two cases' requests in turn, one of each, and times each
request alone by the wall clock (`--pairs N` pairs, 20,000 by default; the
case that goes first alternates): a change in the machine's speed falls on
both of a pair alike, so the median of the per-request differences stays
put on a machine whose speed drifts by more than the difference. Each
request also runs after a request of the other app, so its code and data
are partly out of the caches, as in a server. For each REST table: the
no-op against itself (the method's own error: an A/A pair), the check alone
in a no-op middleware (`*-rest-check`), the adapter, and the adapter against
the check (what the adapter adds around the check); for each Events table
(a 1 KiB body; Flask's with `wsgi.input_terminated`, as servers send it),
the A/A pair and the adapter.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Dict, Iterable, List, MutableMapping, Optional, Tuple, Union

from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import Response

import apikeys

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
# One case: runs `n` requests (a coroutine for ASGI, a plain call otherwise).
Runner = Callable[[int], Union[None, Awaitable[None]]]

REST_BODY = b'{"incidents":[],"limit":25,"offset":0,"more":false}'
ACK = b'{"status":"success","message":"Event processed"}'
HOST = b"127.0.0.1:8000"


def event_body(routing_key: str, size: int = 1024) -> bytes:
    """A PagerDuty Events v2 trigger of exactly `size` bytes."""
    event: Dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {"summary": "", "source": "bench.example", "severity": "critical"},
    }
    base = len(json.dumps(event, separators=(",", ":")).encode())
    event["payload"]["summary"] = "x" * (size - base)
    body = json.dumps(event, separators=(",", ":")).encode()
    assert len(body) == size, len(body)
    return body


class Keys:
    """One keyring and its keys: a general key (REST) and an integration key (Events)."""

    def __init__(self, stopped_clock: bool = False) -> None:
        # valgrind cannot run the vDSO clock the system clock reads: a stopped
        # clock when looping for it.
        if stopped_clock:
            start = datetime(2026, 12, 1, tzinfo=timezone.utc)
            self.keyring = apikeys.Keyring(clock=apikeys.ManualClock(start))
        else:
            self.keyring = apikeys.Keyring()
        admin = apikeys.Actor("acme", "PADMIN1", "admin")
        self.rest = self.keyring.create_general_key(admin, "bench").secret
        self.events = self.keyring.create_integration_key(admin, "PSERVICE", "bench").secret
        self.event = event_body(self.events)


# --evict BYTES: the buffer walked before every request (None: no walk), and
# the CPU nanoseconds the requests themselves took, the walks left out.
EVICT: Optional[bytes] = None
TIMED = [0]


def evict() -> None:
    """One load per 64-byte line of EVICT (a strided slice: a C loop)."""
    EVICT[::64]  # type: ignore[index]  # noqa: B018


def each(call: Callable[[], Any]) -> Runner:
    """A runner of `call`: a plain loop, or with --evict each call after a walk, timed alone."""

    def run(n: int) -> None:
        if EVICT is None:
            for _ in range(n):
                call()
            return
        clock, spent = time.thread_time_ns, 0
        for _ in range(n):
            evict()
            t = clock()
            call()
            spent += clock() - t
        TIMED[0] += spent

    return run


# The adapters as they were at another git revision (--before REV): their
# modules loaded beside the current ones, so that one run times both.
BEFORE: Dict[str, Any] = {}


def load_before(rev: str) -> None:
    import subprocess
    import types

    root = subprocess.check_output(["git", "rev-parse", "--show-toplevel"], text=True).strip()
    for name in ("_http", "asgi", "wsgi"):
        src = subprocess.check_output(
            ["git", "-C", root, "show", f"{rev}:bindings/python/python/apikeys/{name}.py"], text=True
        )
        src = src.replace("from ._http import", "from ._http_before import").replace(
            "from .asgi import", "from .asgi_before import"
        )
        mod = types.ModuleType(f"apikeys.{name}_before")
        mod.__package__ = "apikeys"
        mod.__file__ = f"{rev}:{name}.py"
        sys.modules[mod.__name__] = mod
        exec(compile(src, mod.__file__, "exec"), mod.__dict__)
        BEFORE[name] = mod


def kinds() -> Tuple[str, ...]:
    return ("bare", "noop", "apikeys", "before") if BEFORE else ("bare", "noop", "apikeys")


# ---------------------------------------------------------------- ASGI


class NoopASGI:
    """A pure ASGI middleware that passes every request on: the floor of any ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class CheckASGI:
    """A no-op middleware that also checks one fixed key, as the adapter's
    REST path checks it, and stores the principal: what the check itself
    costs inside this framework's request, without reading a header or
    finding the route's scope (cases `*-rest-check`)."""

    def __init__(self, app: ASGIApp, keyring: apikeys.Keyring, token: str) -> None:
        self.app = app
        self.check = keyring.authenticate
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["apikey"] = self.check(self.token, "rest", "GET", "incidents.read")
        await self.app(scope, receive, send)


def asgi_scope(method: str, path: str, headers: List[Tuple[bytes, bytes]]) -> Dict[str, Any]:
    """What uvicorn hands an app for one HTTP/1.1 request (less the app-specific keys)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }


class AsgiCase:
    """One ASGI app and the request it is sent; `run(n)` sends it `n` times."""

    def __init__(self, app: ASGIApp, scope: Dict[str, Any], body: bytes, expect: int) -> None:
        self.app = app
        self.scope = scope
        self.expect = expect
        self.status = 0
        request = {"type": "http.request", "body": body, "more_body": False}

        async def receive() -> Message:
            return request

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]

        self.receive: Receive = receive
        self.send: Send = send

    async def run(self, n: int) -> None:
        app, template, receive, send = self.app, self.scope, self.receive, self.send
        if EVICT is not None:
            clock, spent = time.thread_time_ns, 0
            for _ in range(n):
                evict()
                t = clock()
                await app({**template, "state": {}}, receive, send)
                spent += clock() - t
            TIMED[0] += spent
            return
        for _ in range(n):
            # A fresh scope (and state) per request, as a server makes.
            await app({**template, "state": {}}, receive, send)

    async def answer(self, scope: Optional[Dict[str, Any]] = None) -> Tuple[int, Dict[str, Any]]:
        sent = {**(scope or self.scope), "state": {}}
        self.status = 0
        await self.app(sent, self.receive, self.send)
        return self.status, sent


def asgi_cases(keys: Keys) -> Dict[str, Tuple[str, AsgiCase]]:
    """name -> (table, case)."""
    # FastAPI reads the handlers' annotations (strings here) in this module's
    # globals: Request, Response and Depends are imported at the top.
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    from apikeys.asgi import ApiKeyMiddleware, require_scope, requires_scope

    kr = keys.keyring
    rest_scope = asgi_scope(
        "GET",
        "/incidents",
        [(b"host", HOST), (b"user-agent", b"wrk"), (b"authorization", f"Token token={keys.rest}".encode())],
    )
    events_scope = asgi_scope(
        "POST",
        "/v2/enqueue",
        [
            (b"host", HOST),
            (b"user-agent", b"wrk"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(keys.event)).encode()),
        ],
    )

    def middleware(kind: str) -> List[Middleware]:
        if kind == "noop":
            return [Middleware(NoopASGI)]
        if kind == "apikeys":
            return [Middleware(ApiKeyMiddleware, keyring=kr)]
        if kind == "check":
            return [Middleware(CheckASGI, keyring=kr, token=keys.rest)]
        if kind == "before":
            return [Middleware(BEFORE["asgi"].ApiKeyMiddleware, keyring=kr)]
        return []

    # The handlers: the same code in every case of a table.
    @requires_scope("incidents.read")
    async def incidents(request: Request) -> Response:
        request.scope.get("apikey")  # what a handler does to take the principal
        return Response(REST_BODY, media_type="application/json")

    @requires_scope("incidents.read")
    async def incidents_state(request: Request) -> Response:
        request.state.apikey  # noqa: B018 - the other way to take the principal
        return Response(REST_BODY, media_type="application/json")

    async def enqueue(request: Request) -> Response:
        body = await request.body()
        return Response(ACK, status_code=202 if body else 400, media_type="application/json")

    async def nothing(request: Request) -> None:
        """A dependency that does nothing (the floor of any dependency)."""
        return None

    def fastapi(kind: str, handler: str = "scope") -> Any:
        app = FastAPI(middleware=middleware(kind), openapi_url=None, docs_url=None, redoc_url=None)
        if handler == "scope":
            app.get("/incidents")(incidents)
        elif handler == "state":
            app.get("/incidents")(incidents_state)
        elif handler == "depends_noop":

            async def with_nothing(who: None = Depends(nothing)) -> Response:
                return Response(REST_BODY, media_type="application/json")

            app.get("/incidents")(with_nothing)
        elif handler == "depends_scope":

            async def with_principal(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> Response:
                return Response(REST_BODY, media_type="application/json")

            app.get("/incidents")(with_principal)
        app.post("/v2/enqueue")(enqueue)
        return app

    def starlette(kind: str) -> Any:
        return Starlette(
            routes=[Route("/incidents", incidents), Route("/v2/enqueue", enqueue, methods=["POST"])],
            middleware=middleware(kind),
        )

    ev = keys.event
    cases: Dict[str, Tuple[str, AsgiCase]] = {}
    for kind in (*kinds(), "check"):
        cases[f"fastapi-rest-{kind}"] = ("FastAPI, REST", AsgiCase(fastapi(kind), rest_scope, b"", 200))
    cases["fastapi-rest-apikeys-state"] = ("FastAPI, REST", AsgiCase(fastapi("apikeys", "state"), rest_scope, b"", 200))
    cases["fastapi-depends-noop"] = ("FastAPI, REST, Depends", AsgiCase(fastapi("noop", "depends_noop"), rest_scope, b"", 200))
    cases["fastapi-depends-apikeys"] = (
        "FastAPI, REST, Depends",
        AsgiCase(fastapi("apikeys", "depends_scope"), rest_scope, b"", 200),
    )
    if BEFORE:
        cases["fastapi-depends-before"] = (
            "FastAPI, REST, Depends",
            AsgiCase(fastapi("before", "depends_scope"), rest_scope, b"", 200),
        )
    for kind in kinds():
        cases[f"fastapi-events-{kind}"] = ("FastAPI, Events 1 KiB", AsgiCase(fastapi(kind), events_scope, ev, 202))
    for kind in (*kinds(), "check"):
        cases[f"starlette-rest-{kind}"] = ("Starlette, REST", AsgiCase(starlette(kind), rest_scope, b"", 200))
    for kind in kinds():
        cases[f"starlette-events-{kind}"] = ("Starlette, Events 1 KiB", AsgiCase(starlette(kind), events_scope, ev, 202))
    return cases


async def check_asgi(cases: Dict[str, Tuple[str, AsgiCase]]) -> None:
    """Each case answers as expected, and the protected ones really check."""
    for name, (_, case) in cases.items():
        status, sent = await case.answer()
        assert status == case.expect, (name, status)
        if name.endswith("-bare") or name.endswith("-noop"):
            continue
        assert "apikey" in sent, name
        if name.endswith("-check"):
            continue
        if "-rest-" in name or "-depends-" in name:
            assert sent["apikey_scope"] == "incidents.read", (name, sent.get("apikey_scope"))
            headers = [h for h in case.scope["headers"] if h[0] != b"authorization"]
            assert (await case.answer({**case.scope, "headers": headers}))[0] == 401, name
        else:
            assert (await case.answer({**case.scope}))[0] == 202, name


# ---------------------------------------------------------------- WSGI


class NoopWSGI:
    """A WSGI middleware that passes every request on."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        return self.app(environ, start_response)


class CheckWSGI:
    """A no-op WSGI middleware that also checks one fixed key (see CheckASGI)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], keyring: apikeys.Keyring, token: str, key: str) -> None:
        self.app = app
        self.check = keyring.authenticate
        self.token = token
        self.key = key

    def __call__(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ[self.key] = self.check(self.token, "rest", "GET", "incidents.read")
        return self.app(environ, start_response)


def wsgi_environ(method: str, path: str, headers: Dict[str, str]) -> Dict[str, Any]:
    """What a WSGI server (werkzeug's, gunicorn) hands an app for one request, less the input stream."""
    env: Dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "50000",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    env.update(headers)
    return env


class WsgiCase:
    """One WSGI app and the request it is sent; `run(n)` sends it `n` times."""

    def __init__(self, app: Callable[..., Iterable[bytes]], environ: Dict[str, Any], body: bytes, expect: int) -> None:
        self.app = app
        self.environ = environ
        self.body = body
        self.expect = expect
        self.status = ""

        def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], Any]:
            self.status = status
            return lambda b: None

        self.start_response = start_response

    def run(self, n: int) -> None:
        app, template, body, start_response = self.app, self.environ, self.body, self.start_response
        if EVICT is not None:
            each(lambda: self.run_one(app, template, body, start_response))(n)
            return
        for _ in range(n):
            # run_one's body, written out: the timed loop makes no call of its own.
            env = dict(template)
            env["wsgi.input"] = io.BytesIO(body)
            result = app(env, start_response)
            for _chunk in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()

    @staticmethod
    def run_one(app: Any, template: Dict[str, Any], body: bytes, start_response: Any) -> None:
        """One request, as `run` sends it (for --evict)."""
        env = dict(template)
        env["wsgi.input"] = io.BytesIO(body)
        result = app(env, start_response)
        for _chunk in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()

    def answer(self, environ: Optional[Dict[str, Any]] = None) -> Tuple[int, Dict[str, Any]]:
        env = dict(environ or self.environ)
        env["wsgi.input"] = io.BytesIO(self.body)
        self.status = ""
        result = self.app(env, self.start_response)
        b"".join(result)
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return int(self.status.split()[0]), env


def wsgi_cases(keys: Keys) -> Dict[str, Tuple[str, WsgiCase]]:
    from flask import Flask, request

    from apikeys.wsgi import PRINCIPAL_KEY, protect_flask, requires_scope

    def flask(kind: str) -> Any:
        app = Flask(f"bench_{kind}")

        @app.get("/incidents")
        @requires_scope("incidents.read")
        def incidents() -> Any:
            request.environ.get(PRINCIPAL_KEY)  # what a view does to take the principal
            return app.response_class(REST_BODY, mimetype="application/json")

        @app.post("/v2/enqueue")
        def enqueue() -> Any:
            body = request.get_data()
            return app.response_class(ACK, status=202 if body else 400, mimetype="application/json")

        if kind == "noop":
            app.wsgi_app = NoopWSGI(app.wsgi_app)  # type: ignore[method-assign]
        elif kind == "apikeys":
            protect_flask(app, keys.keyring)
        elif kind == "check":
            app.wsgi_app = CheckWSGI(app.wsgi_app, keys.keyring, keys.rest, PRINCIPAL_KEY)  # type: ignore[method-assign]
        elif kind == "before":
            BEFORE["wsgi"].protect_flask(app, keys.keyring)
        return app

    rest_env = wsgi_environ(
        "GET",
        "/incidents",
        {"HTTP_HOST": HOST.decode(), "HTTP_USER_AGENT": "wrk", "HTTP_AUTHORIZATION": f"Token token={keys.rest}"},
    )
    events_env = wsgi_environ(
        "POST",
        "/v2/enqueue",
        {
            "HTTP_HOST": HOST.decode(),
            "HTTP_USER_AGENT": "wrk",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(keys.event)),
        },
    )
    cases: Dict[str, Tuple[str, WsgiCase]] = {}
    for kind in (*kinds(), "check"):
        cases[f"flask-rest-{kind}"] = ("Flask, REST", WsgiCase(flask(kind), rest_env, b"", 200))
    for kind in kinds():
        cases[f"flask-events-{kind}"] = ("Flask, Events 1 KiB", WsgiCase(flask(kind), events_env, keys.event, 202))
    # The same from a server that says its input stream ends with the body
    # (gunicorn, waitress: wsgi.input_terminated): werkzeug then reads it
    # without its LimitedStream, in every case alike.
    terminated_env = dict(events_env, **{"wsgi.input_terminated": True})
    for kind in kinds():
        cases[f"flask-events-terminated-{kind}"] = (
            "Flask, Events 1 KiB, wsgi.input_terminated from the server",
            WsgiCase(flask(kind), terminated_env, keys.event, 202),
        )
    return cases


def check_wsgi(cases: Dict[str, Tuple[str, WsgiCase]]) -> None:
    from apikeys.wsgi import PRINCIPAL_KEY

    for name, (_, case) in cases.items():
        status, env = case.answer()
        assert status == case.expect, (name, status)
        if name.endswith("-apikeys") or name.endswith("-before"):
            assert PRINCIPAL_KEY in env, name
            if "-rest-" in name:
                without = {k: v for k, v in case.environ.items() if k != "HTTP_AUTHORIZATION"}
                assert case.answer(without)[0] == 401, name


# ---------------------------------------------------------------- the core, alone


def core_cases(keys: Keys) -> Dict[str, Tuple[str, Runner]]:
    kr, rest, events, event = keys.keyring, keys.rest, keys.events, keys.event
    header = f"Token token={rest}".encode()
    auth = kr.authenticate
    routing = apikeys.events_routing_key
    parse = apikeys.token_from_authorization

    def rest_auth(n: int) -> None:
        for _ in range(n):
            auth(rest, api="rest", method="GET", scope="incidents.read")

    def events_auth(n: int) -> None:
        for _ in range(n):
            auth(events, api="events")

    def routing_key(n: int) -> None:
        for _ in range(n):
            routing(event)

    def authorization(n: int) -> None:
        for _ in range(n):
            parse(header)

    table = "the binding alone"
    if EVICT is not None:
        return {
            "authenticate-rest": (table, each(lambda: auth(rest, api="rest", method="GET", scope="incidents.read"))),
            "authenticate-events": (table, each(lambda: auth(events, api="events"))),
            "events_routing_key-1KiB": (table, each(lambda: routing(event))),
            "token_from_authorization": (table, each(lambda: parse(header))),
        }
    return {
        "authenticate-rest": (table, rest_auth),
        "authenticate-events": (table, events_auth),
        "events_routing_key-1KiB": (table, routing_key),
        "token_from_authorization": (table, authorization),
    }


# ---------------------------------------------------------------- the run


def all_cases(keys: Keys, only: Optional[str]) -> Dict[str, Tuple[str, Runner]]:
    cases: Dict[str, Tuple[str, Runner]] = {}
    asgi = asgi_cases(keys)
    wsgi = wsgi_cases(keys)
    asyncio.run(check_asgi(asgi))
    check_wsgi(wsgi)
    for name, (table, a) in asgi.items():
        cases[name] = (table, a.run)
    for name, (table, w) in wsgi.items():
        cases[name] = (table, w.run)
    cases.update(core_cases(keys))
    if only:
        cases = {k: v for k, v in cases.items() if any(part in k for part in only.split(","))}
    return cases


async def measure(
    cases: Dict[str, Tuple[str, Runner]], calls: int, rounds: int
) -> Tuple[Dict[str, List[float]], Dict[str, List[float]]]:
    """µs per request of each case, one figure per round, by this thread's CPU
    time (the time other processes take from it does not count) and by the
    wall clock; the order of the cases rotates each round."""
    names = list(cases)
    cpu: Dict[str, List[float]] = {k: [] for k in names}
    wall: Dict[str, List[float]] = {k: [] for k in names}
    for name in names:  # warm-up: routing caches, first-request setup
        out = cases[name][1](max(50, calls // 10))
        if out is not None:
            await out
    for r in range(rounds):
        for i in range(len(names)):
            name = names[(i + r) % len(names)]
            run = cases[name][1]
            TIMED[0] = 0
            c = time.thread_time_ns()
            t = time.perf_counter_ns()
            out = run(calls)
            if out is not None:
                await out
            if EVICT is not None:  # the requests alone, each timed between two walks
                wall[name].append(TIMED[0] / calls / 1000)
                cpu[name].append(TIMED[0] / calls / 1000)
                continue
            wall[name].append((time.perf_counter_ns() - t) / calls / 1000)
            cpu[name].append((time.thread_time_ns() - c) / calls / 1000)
    return cpu, wall


def load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "load average unknown"


def report(cases: Dict[str, Tuple[str, Runner]], times: Dict[str, List[float]], wall: Dict[str, List[float]]) -> None:
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    best_wall = {k: min(v) for k, v in wall.items()}
    tables: Dict[str, List[str]] = {}
    for name, (table, _) in cases.items():
        tables.setdefault(table, []).append(name)
    for table, names in tables.items():
        print(
            f"\n{table}  (µs per request, CPU: fastest round, median round; wall: fastest; "
            "+ over the no-op, CPU fastest and median)"
        )
        floor = next((n for n in names if n.endswith("-noop")), None)
        for n in names:
            over = ""
            if floor is not None and n != floor and not n.endswith("-bare"):
                over = f"  +{best[n] - best[floor]:6.2f}  +{med[n] - med[floor]:6.2f}"
            print(f"  {n:32} {best[n]:8.2f} {med[n]:8.2f}   {best_wall[n]:8.2f}{over}")

    def row(adapter: str, case: str, floor: str, core: List[str]) -> None:
        if case not in best or floor not in best or not all(c in best for c in core):
            return
        added = best[case] - best[floor]
        added_med = med[case] - med[floor]
        auth = sum(best[c] for c in core)
        target = auth + 2.0
        print(
            f"  {adapter:44} {added:6.2f} ({added_med:6.2f}) {auth:6.2f} {target:6.2f} "
            f"{max(0.0, added - target):6.2f}"
        )

    print(
        "\nsummary: added over the no-op middleware (CPU fastest, median), authenticate alone, "
        "target (authenticate + 2), gap (µs)"
    )
    row("apikeys.asgi, FastAPI, REST (scope read)", "fastapi-rest-apikeys", "fastapi-rest-noop", ["authenticate-rest"])
    row("  the check alone, in a no-op middleware", "fastapi-rest-check", "fastapi-rest-noop", ["authenticate-rest"])
    row("apikeys.asgi, FastAPI, REST (request.state)", "fastapi-rest-apikeys-state", "fastapi-rest-noop", ["authenticate-rest"])
    row(
        "apikeys.asgi, FastAPI, Depends(require_scope)",
        "fastapi-depends-apikeys",
        "fastapi-depends-noop",
        ["authenticate-rest"],
    )
    row("  the same, over the no-op without Depends", "fastapi-depends-apikeys", "fastapi-rest-noop", ["authenticate-rest"])
    row("apikeys.asgi, FastAPI, Events 1 KiB", "fastapi-events-apikeys", "fastapi-events-noop", ["authenticate-events"])
    row("apikeys.asgi, Starlette, REST", "starlette-rest-apikeys", "starlette-rest-noop", ["authenticate-rest"])
    row("  the check alone, in a no-op middleware", "starlette-rest-check", "starlette-rest-noop", ["authenticate-rest"])
    row("apikeys.asgi, Starlette, Events 1 KiB", "starlette-events-apikeys", "starlette-events-noop", ["authenticate-events"])
    row("apikeys.wsgi, Flask, REST", "flask-rest-apikeys", "flask-rest-noop", ["authenticate-rest"])
    row("  the check alone, in a no-op middleware", "flask-rest-check", "flask-rest-noop", ["authenticate-rest"])
    row("apikeys.wsgi, Flask, Events 1 KiB", "flask-events-apikeys", "flask-events-noop", ["authenticate-events"])
    row(
        "apikeys.wsgi, Flask, Events 1 KiB, wsgi.input_terminated from the server",
        "flask-events-terminated-apikeys",
        "flask-events-terminated-noop",
        ["authenticate-events"],
    )
    if BEFORE:
        print("\nthe same, the adapters of --before")
        for case, floor, core in (
            ("fastapi-rest-before", "fastapi-rest-noop", "authenticate-rest"),
            ("fastapi-depends-before", "fastapi-depends-noop", "authenticate-rest"),
            ("fastapi-events-before", "fastapi-events-noop", "authenticate-events"),
            ("starlette-rest-before", "starlette-rest-noop", "authenticate-rest"),
            ("starlette-events-before", "starlette-events-noop", "authenticate-events"),
            ("flask-rest-before", "flask-rest-noop", "authenticate-rest"),
            ("flask-events-before", "flask-events-noop", "authenticate-events"),
        ):
            row(case, case, floor, [core])


async def paired(cases: Dict[str, Tuple[str, Runner]], pairs: int) -> None:
    """--paired: for each REST and Events table, pairs of cases sent request by request
    (see the module's documentation); µs, the second case's request minus
    the first's."""
    clock = time.perf_counter_ns

    async def one(run: Runner) -> int:
        t = clock()
        out = run(1)
        if out is not None:
            await out
        return clock() - t

    print(
        f"apikeys {apikeys.__version__}, CPython {platform.python_version()}; {pairs:,} pairs per row, "
        f"one request of each case in turn; {load()} before"
    )
    print("µs, second case minus first, per request: median, mean of the middle 80 %, quartiles")
    rest = [
        ("noop", "noop", "A/A: the no-op against itself"),
        ("noop", "check", "the check alone, in a no-op middleware"),
        ("noop", "apikeys", "the adapter, over the no-op"),
        ("check", "apikeys", "the adapter, over the check alone"),
    ]
    events = [("noop", "noop", "A/A: the no-op against itself"), ("noop", "apikeys", "the adapter, over the no-op")]
    tables = [(f"{fw}-rest", rest) for fw in ("starlette", "fastapi", "flask")]
    tables += [(prefix, events) for prefix in ("starlette-events", "fastapi-events", "flask-events-terminated")]
    for prefix, rows in tables:
        if f"{prefix}-apikeys" not in cases:
            continue
        print(f"\n{cases[f'{prefix}-apikeys'][0]}")
        for first, second, what in rows:
            a, b = cases[f"{prefix}-{first}"][1], cases[f"{prefix}-{second}"][1]
            for run in (a, b):  # warm-up
                out = run(500)
                if out is not None:
                    await out
            diffs: List[float] = []
            for i in range(pairs):
                if i & 1:
                    tb = await one(b)
                    ta = await one(a)
                else:
                    ta = await one(a)
                    tb = await one(b)
                diffs.append((tb - ta) / 1000)
            diffs.sort()
            n = len(diffs)
            middle = diffs[n // 10 : n - n // 10]
            print(
                f"  {what:44} {statistics.median(diffs):6.2f}  {statistics.fmean(middle):6.2f}  "
                f"({diffs[n // 4]:6.2f} / {diffs[3 * n // 4]:6.2f})"
            )
    print(f"\n({load()} after)")


# ---------------------------------------------------------------- the middleware's steps


def parts(keys: Keys, calls: int, rounds: int) -> None:
    """The steps of apikeys.asgi's REST path and apikeys.wsgi's, each timed
    alone the way the middleware runs it (the same calls on the same data)."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from apikeys import _http
    from apikeys.asgi import ApiKeyMiddleware, requires_scope
    from apikeys.wsgi import _FlaskScopeFor

    kr = keys.keyring

    @requires_scope("incidents.read")
    async def view(request: Any) -> None:
        return None

    app = Starlette(routes=[Route("/incidents", view)])
    mw = ApiKeyMiddleware(NoopASGI(app), kr)
    header = f"Token token={keys.rest}".encode()
    scope: Dict[str, Any] = {
        **asgi_scope("GET", "/incidents", [(b"host", HOST), (b"user-agent", b"wrk"), (b"authorization", header)]),
        "app": app,
    }
    mw._required_scope(scope, HOST)
    who = kr.authenticate(keys.rest, api="rest", method="GET", scope="incidents.read")
    public, events_paths = mw.public_paths, mw.events_paths

    def s_dispatch(n: int) -> None:
        for _ in range(n):
            if scope["type"] == "lifespan":
                pass
            if scope["type"] != "http" or scope["path"] in public:
                pass
            if scope["path"] in events_paths:
                pass

    values = [header]
    routes = mw._scoping[1]

    def s_asgi_rest(n: int) -> None:
        # The REST step of an apikeys.Keyring and a cached route: one native call.
        for _ in range(n):
            _http._asgi_rest(kr, scope, routes, "/incidents", "127.0.0.1")

    def s_headers(n: int) -> None:
        # The general path's header loop (a route's first request, a stand-in keyring).
        for _ in range(n):
            values: List[bytes] = []
            host: Any = None
            for k, v in scope["headers"]:
                if k == b"authorization":
                    values.append(v)
                elif k == b"host":
                    host = v if host is None else (host, v)
                elif len(k) == 13 or len(k) == 4:
                    name = k.lower()
                    if name == b"authorization":
                        values.append(v)
                    elif name == b"host":
                        host = v if host is None else (host, v)

    def s_rest_token(n: int) -> None:
        for _ in range(n):
            _http.rest_token(values)

    def s_required_scope(n: int) -> None:
        for _ in range(n):
            mw._required_scope(scope, HOST)

    def s_keyring(n: int) -> None:
        for _ in range(n):
            kr.authenticate(keys.rest, "rest", "GET", "incidents.read", remote_address="127.0.0.1", path="/incidents")

    def s_principal_into_scope(n: int) -> None:
        for _ in range(n):
            sc: Dict[str, Any] = {}
            sc.setdefault("state", {})["apikey"] = who
            sc["apikey"] = who
            sc["apikey_scope"] = "incidents.read"

    def s_rate_limit_headers(n: int) -> None:
        for _ in range(n):
            _http.rate_limit_headers(who)

    async def s_whole(n: int) -> None:
        async def receive() -> Message:
            return {}

        async def send(m: Message) -> None:
            return None

        inner_mw = ApiKeyMiddleware(_nothing, kr)
        for _ in range(n):
            await inner_mw({**scope, "state": {}}, receive, send)

    async def s_noop(n: int) -> None:
        async def receive() -> Message:
            return {}

        async def send(m: Message) -> None:
            return None

        noop = NoopASGI(_nothing)
        for _ in range(n):
            await noop({**scope, "state": {}}, receive, send)

    # WSGI's steps
    from flask import Flask

    from apikeys.wsgi import requires_scope as wsgi_requires_scope

    flask_app = Flask("parts")

    @flask_app.get("/incidents")
    @wsgi_requires_scope("incidents.read")
    def fview() -> str:
        return ""

    resolver = _FlaskScopeFor(flask_app)  # what flask_scope_resolver gives
    environ = wsgi_environ("GET", "/incidents", {"HTTP_HOST": HOST.decode(), "HTTP_AUTHORIZATION": header.decode()})
    resolver(environ)

    def w_joined_rest_check(n: int) -> None:
        # The REST step of an apikeys.Keyring: one native call, the route's scope from the resolver's cache.
        auth, cache = environ.get("HTTP_AUTHORIZATION"), resolver.route_scopes
        for _ in range(n):
            _http._joined_rest_check(kr, auth, "GET", resolver, environ, "127.0.0.1", "/incidents", cache)

    def w_joined_rest_token(n: int) -> None:
        for _ in range(n):
            _http.joined_rest_token(environ.get("HTTP_AUTHORIZATION"))

    def w_scope_for(n: int) -> None:
        for _ in range(n):
            resolver(environ)

    routing = apikeys.events_routing_key
    event = keys.event

    def e_routing_key(n: int) -> None:
        for _ in range(n):
            _http.routing_key(event)

    def e_routing_key_direct(n: int) -> None:
        for _ in range(n):
            routing(event)

    def e_events_check(n: int) -> None:
        for _ in range(n):
            _http._events_check(kr, event, "127.0.0.1", "/v2/enqueue")

    steps: Dict[str, Runner] = {
        "asgi: type/path checks (3 lookups)": s_dispatch,
        "asgi: _asgi_rest (one native call, cached route)": s_asgi_rest,
        "asgi, general path: header loop (3 headers)": s_headers,
        "asgi, general path: rest_token": s_rest_token,
        "asgi, general path: _required_scope (cache hit)": s_required_scope,
        "asgi, general path: Keyring.authenticate": s_keyring,
        "asgi: principal into scope (3 stores)": s_principal_into_scope,
        "asgi: rate_limit_headers": s_rate_limit_headers,
        "asgi: whole middleware, app doing nothing": s_whole,
        "asgi: no-op middleware, app doing nothing": s_noop,
        "wsgi: _joined_rest_check (one native call, cached route)": w_joined_rest_check,
        "wsgi, general path: joined_rest_token": w_joined_rest_token,
        "wsgi, general path: scope_for (cache hit)": w_scope_for,
        "events: _http.routing_key (1 KiB)": e_routing_key,
        "events: events_routing_key (1 KiB)": e_routing_key_direct,
        "events: _events_check (parse and check, 1 KiB)": e_events_check,
    }
    times, _ = asyncio.run(measure({k: ("parts", v) for k, v in steps.items()}, calls, rounds))
    print(f"the middleware's steps, each alone (µs per request, CPU: fastest round, median; {load()})")
    for name, v in times.items():
        print(f"  {name:62} {min(v):7.3f} {statistics.median(v):7.3f}")


async def _nothing(scope: Scope, receive: Receive, send: Send) -> None:
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Short rounds, many of them: the fastest of many short rounds is the one
    # least disturbed by other processes (their cache pressure included).
    ap.add_argument("--calls", type=int, default=200, help="requests per case per round (default 200)")
    ap.add_argument("--rounds", type=int, default=101, help="rounds (default 101)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 200 requests, 2 rounds")
    ap.add_argument("--only", help="only the cases whose names contain one of these comma-separated words")
    ap.add_argument("--parts", action="store_true", help="time the middleware's steps one by one")
    ap.add_argument("--loop", metavar="CASE", help="run this case only, --calls times after a warm-up (for profilers)")
    ap.add_argument("--count", metavar="CASES", help="for callgrind --dump-before=sched_yield: each case's requests between two dumps")
    ap.add_argument("--paired", action="store_true", help="REST and Events cases two at a time, request by request (see above)")
    ap.add_argument("--pairs", type=int, default=20_000, help="pairs per row with --paired (default 20,000)")
    ap.add_argument("--before", metavar="REV", help="also time the adapters of this git revision (cases *-before)")
    ap.add_argument(
        "--evict",
        metavar="BYTES",
        type=int,
        help="walk a buffer of BYTES before every request (cold caches); each request timed alone",
    )
    args = ap.parse_args()
    if args.evict is not None:
        if args.evict < 64:
            ap.error("--evict BYTES: at least 64")
        global EVICT
        EVICT = bytes(range(256)) * (args.evict // 256 + 1)
    if args.before:
        load_before(args.before)
    if args.quick or os.environ.get("APIKEYS_BENCH_QUICK") == "1":
        args.calls, args.rounds = 200, 2
    keys = Keys(stopped_clock=bool(args.loop or args.count))
    if args.parts:
        parts(keys, args.calls * 10, args.rounds)
        return 0
    cases = all_cases(keys, args.only)
    if args.paired:
        asyncio.run(paired(cases, 200 if args.quick else args.pairs))
        return 0
    if args.count:
        order = args.count.split(",")

        async def counted() -> None:
            for name in order:
                run = cases[name][1]
                out = run(200)  # warm-up
                if out is not None:
                    await out
                os.sched_yield()  # a dump: what came before
                out = run(args.calls)
                if out is not None:
                    await out
                os.sched_yield()  # a dump: this case's requests

        asyncio.run(counted())
        print(" ".join(f"{i * 2 + 2}:{name}" for i, name in enumerate(order)))
        return 0
    if args.loop:
        run = cases[args.loop][1]

        async def loop() -> None:
            for n in (500, args.calls):  # warm-up, then the measured calls
                out = run(n)
                if out is not None:
                    await out

        asyncio.run(loop())
        return 0
    print(
        f"apikeys {apikeys.__version__}, CPython {platform.python_version()} ({platform.machine()}); "
        f"{args.calls:,} requests per case per round, {args.rounds} rounds in rotating order; {load()} before"
    )
    if EVICT is not None:
        print(f"--evict: {args.evict:,} bytes walked before every request; figures: the requests alone, by this thread's CPU time")
    times, wall = asyncio.run(measure(cases, args.calls, args.rounds))
    report(cases, times, wall)
    print(f"\n({load()} after)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
