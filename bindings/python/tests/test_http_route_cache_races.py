# mypy: disable-error-code="import-not-found, untyped-decorator"
"""The adapters' route-scope caches under threads.

apikeys.wsgi (flask_scope_resolver's cache, probed by the one native call)
and apikeys.asgi (the routing cache, probed by _http_asgi_rest) each keep a
route's scope per request key, filled check-then-write and emptied whole
when full. Two invariants, checked with several threads sending requests at
once, on an apikeys.Keyring (the one-call path) and on a stand-in keyring
(the general path):

- the cache never gives a request another route's scope: while other
  threads fill it, empty it and refill it, every request of a read-only key
  is answered by its own route's scope (200 where it reads, 403 where it
  writes), never the other way round;
- a ``scope_for`` set on the middleware decides every request that starts
  after the assignment returns (no thread keeps answering from the
  replaced callable's cached answers), while requests keep arriving; and,
  as a fixed sequence, when a request is held inside the old ``scope_for``
  across the assignment (its late answer must not be kept for later
  requests: apikeys.asgi once wrote it into the new cache).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

pytest.importorskip("starlette")
pytest.importorskip("flask")

import apikeys  # noqa: E402
import apikeys.asgi as asgi  # noqa: E402
import apikeys.wsgi as wsgi  # noqa: E402
from test_http_one_call import ADMIN, StandIn, asgi_call, asgi_headers, wsgi_call  # noqa: E402

THREADS = 4
# More distinct paths than the caches hold (4,096 each), so they are emptied while in use.
PATHS = 4_600


def read_only_key(kr: apikeys.Keyring) -> str:
    return kr.create_general_key(ADMIN, "ro", read_only=True).secret


def keyrings(kr: apikeys.Keyring) -> List[Tuple[str, Any]]:
    return [("native", kr), ("stand-in", StandIn(kr))]


def run_threads(work: Callable[[int], None]) -> None:
    """Runs ``work(i)`` on THREADS threads released together; re-raises the first failure."""
    start = threading.Barrier(THREADS)
    failures: List[BaseException] = []

    def body(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            failures.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]


def flask_items_app(keyring: Any) -> Any:
    """/items/<n> reads (incidents.read) for even n and writes (incidents.write) for odd n."""
    from flask import Flask

    app = Flask("races")

    @wsgi.requires_scope("incidents.read")
    def even(n: int) -> str:
        return "read"

    @wsgi.requires_scope("incidents.write")
    def odd(n: int) -> str:
        return "write"

    app.add_url_rule("/items/<int(fixed_digits=5):n>/even", view_func=even)
    app.add_url_rule("/items/<int(fixed_digits=5):n>/odd", view_func=odd)
    wsgi.protect_flask(app, keyring)
    return app


def item_path(n: int) -> Tuple[str, int]:
    """The path of item ``n`` and the status a read-only key must get on it."""
    return (f"/items/{n:05d}/even", 200) if n % 2 == 0 else (f"/items/{n:05d}/odd", 403)


def walk_items_in_threads(request: Callable[[str], int], cache_limit: int) -> None:
    """THREADS threads send a read-only key's requests over the item paths,
    each from its own offset: the same keys are filled by several threads at
    once, and the cache is emptied under them. Every answer must be the
    route's own (200 on a read, 403 on a write)."""
    wrong: List[Tuple[str, int]] = []
    visited: set[str] = set()

    def work(i: int) -> None:
        for j in range(PATHS // THREADS * 2):
            path, expected = item_path((j * 7 + i * 1_151) % PATHS)
            visited.add(path)
            status = request(path)
            if status != expected:
                wrong.append((path, status))

    run_threads(work)
    assert not wrong, wrong[:10]
    # More routes were asked than the cache holds: it was emptied on the way.
    assert len(visited) > cache_limit, len(visited)


@pytest.mark.parametrize("which", ["native", "stand-in"])
def test_wsgi_route_cache_never_gives_another_routes_scope(which: str) -> None:
    kr = apikeys.Keyring()
    key = read_only_key(kr)
    keyring = dict(keyrings(kr))[which]
    app = flask_items_app(keyring)
    headers = [("Authorization", f"Token token={key}")]
    walk_items_in_threads(lambda path: wsgi_call(app, "GET", path, headers)[0], wsgi._CACHE_LIMIT)


@pytest.mark.parametrize("which", ["native", "stand-in"])
def test_asgi_routing_cache_never_gives_another_routes_scope(which: str) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    @asgi.requires_scope("incidents.read")
    async def even(request: Any) -> PlainTextResponse:
        return PlainTextResponse("read")

    @asgi.requires_scope("incidents.write")
    async def odd(request: Any) -> PlainTextResponse:
        return PlainTextResponse("write")

    kr = apikeys.Keyring()
    key = read_only_key(kr)
    keyring = dict(keyrings(kr))[which]
    inner = Starlette(routes=[Route("/items/{n:int}/even", even), Route("/items/{n:int}/odd", odd)])
    mw = asgi.ApiKeyMiddleware(inner, keyring)
    headers = asgi_headers([("Authorization", f"Token token={key}")])
    # (asgi_call runs each request in an event loop of its thread's own.)
    walk_items_in_threads(
        lambda path: asgi_call(mw, "GET", path, headers, lambda s: {**s, "app": inner})[0], asgi._CACHE_LIMIT
    )


def plain_starlette(which: str) -> Tuple[asgi.ApiKeyMiddleware, Callable[[], int]]:
    """apikeys.asgi in front of a Starlette app whose one route, /plain,
    declares no scope (scope_for decides it), on the native keyring or a
    stand-in; and a function sending it GET /plain with a read-only key."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def handler(request: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    kr = apikeys.Keyring()
    key = read_only_key(kr)
    inner = Starlette(routes=[Route("/plain", handler)])
    mw = asgi.ApiKeyMiddleware(inner, dict(keyrings(kr))[which])
    headers = asgi_headers([("Authorization", f"Token token={key}")])
    # The app in the scope, as Starlette puts it there: the middleware matches its routes.
    return mw, lambda: asgi_call(mw, "GET", "/plain", headers, lambda s: {**s, "app": inner})[0]


def swap_while_serving(
    set_scope_for: Callable[[bool], None], request: Callable[[], int], rounds: int = 40
) -> Dict[str, int]:
    """Alternates the middleware's ``scope_for`` between one asking
    ``incidents.read`` (a read-only key: 200) and one asking
    ``incidents.write`` (403) while THREADS - 1 threads send requests. A
    request that starts and ends within one setting must be answered by it;
    the counts say how many requests were checked each way."""
    epoch = [0]  # even: the read setting, odd: the write setting; bumped after each set returns
    done = threading.Event()
    wrong: List[Tuple[int, int]] = []
    checked = {"200": 0, "403": 0, "across a swap": 0}
    lock = threading.Lock()

    def sender() -> None:
        while not done.is_set():
            before = epoch[0]
            status = request()
            after = epoch[0]
            with lock:
                if before != after:
                    checked["across a swap"] += 1
                    if status not in (200, 403):
                        wrong.append((before, status))
                    continue
                expected = 200 if before % 2 == 0 else 403
                checked[str(expected)] += 1
                if status != expected:
                    wrong.append((before, status))

    set_scope_for(True)
    threads = [threading.Thread(target=sender) for _ in range(THREADS - 1)]
    for t in threads:
        t.start()
    try:
        for r in range(1, rounds + 1):
            # Let the senders warm the cache under this setting, then swap.
            seen = sum(checked.values())
            while sum(checked.values()) < seen + 2 * (THREADS - 1):
                time.sleep(0.0005)
            set_scope_for(r % 2 == 0)
            epoch[0] = r
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not wrong, wrong[:10]
    return checked


def plain_flask(which: str) -> Tuple[Any, wsgi.ApiKeyMiddleware, Callable[[], int]]:
    """protect_flask on a Flask app whose one route, /plain, declares no
    scope, on the native keyring or a stand-in; the middleware, and a
    function sending it GET /plain with a read-only key."""
    from flask import Flask

    kr = apikeys.Keyring()
    key = read_only_key(kr)
    app = Flask("plain")
    app.add_url_rule("/plain", view_func=lambda: "ok", endpoint="plain")
    mw = wsgi.protect_flask(app, dict(keyrings(kr))[which])
    headers = [("Authorization", f"Token token={key}")]
    return app, mw, lambda: wsgi_call(app, "GET", "/plain", headers)[0]


class Resolver(wsgi._FlaskScopeFor):
    """A flask_scope_resolver (its cache is the one the native call probes)
    that finds a request's scope with ``find`` instead of the URL map."""

    def __init__(self, app: Any, find: Callable[[Any], Optional[str]]) -> None:
        super().__init__(app)
        self.find = find

    def _resolve(self, environ: Any) -> Optional[str]:
        return self.find(environ)


def slowly(scope: str) -> Callable[[Any], Optional[str]]:
    """A lookup answering ``scope`` as one doing I/O would: other threads run meanwhile."""

    def find(environ: Any) -> Optional[str]:
        time.sleep(0.0001)
        return scope

    return find


@pytest.mark.parametrize("which", ["native", "stand-in"])
def test_wsgi_a_scope_for_set_while_serving_decides_every_later_request(which: str) -> None:
    app, mw, get = plain_flask(which)
    readers, writers = Resolver(app, slowly("incidents.read")), Resolver(app, slowly("incidents.write"))

    def set_scope_for(read: bool) -> None:
        mw.scope_for = readers if read else writers

    checked = swap_while_serving(set_scope_for, get)
    assert checked["200"] > 0 and checked["403"] > 0, checked
    # Both resolvers' caches were in use (the native call probes them).
    assert readers._cache and writers._cache


@pytest.mark.parametrize("which", ["native", "stand-in"])
def test_asgi_a_scope_for_set_while_serving_decides_every_later_request(which: str) -> None:
    mw, get = plain_starlette(which)

    def set_scope_for(read: bool) -> None:
        scope: Optional[str] = "incidents.read" if read else "incidents.write"

        def scope_for(method: str, path: str) -> Optional[str]:
            # As a scope_for doing I/O would: other threads run (and the
            # setting may change) between its answer and the cache's write.
            time.sleep(0.0001)
            return scope

        mw.scope_for = scope_for

    checked = swap_while_serving(set_scope_for, get)
    assert checked["200"] > 0 and checked["403"] > 0, checked


class Held:
    """A scope_for whose answer is held until the test lets it go: the
    request asking it stands between its answer and the cache's write."""

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.asked = threading.Event()
        self.go = threading.Event()

    def __call__(self, *request: Any) -> str:
        self.asked.set()
        assert self.go.wait(10), "never let go"
        return self.scope


def stale_answer_sequence(set_scope_for: Callable[[Any], None], request: Callable[[], int]) -> None:
    """A request asks the old scope_for (incidents.read) and is held there;
    meanwhile scope_for becomes one asking incidents.write; the held request
    then finishes (200 or 403: it started before the change). Every request
    after that must be a 403: the held answer must not have been kept where
    the new setting's requests look."""
    held = Held("incidents.read")
    set_scope_for(held)
    first: List[int] = []
    t = threading.Thread(target=lambda: first.append(request()))
    t.start()
    assert held.asked.wait(10), "the first request never asked scope_for"
    set_scope_for(lambda *request: "incidents.write")
    held.go.set()
    t.join()
    assert first and first[0] in (200, 403), first
    after = [request() for _ in range(3)]
    assert after == [403, 403, 403], after


@pytest.mark.parametrize("which", ["native", "stand-in"])
def test_asgi_an_answer_of_a_replaced_scope_for_is_never_kept(which: str) -> None:
    mw, get = plain_starlette(which)

    def set_scope_for(f: Any) -> None:
        mw.scope_for = f

    stale_answer_sequence(set_scope_for, get)


@pytest.mark.parametrize("which", ["native", "stand-in"])
def test_wsgi_an_answer_of_a_replaced_scope_for_is_never_kept(which: str) -> None:
    app, mw, get = plain_flask(which)

    def set_scope_for(f: Any) -> None:
        # The held lookup's answer goes into its own resolver's cache.
        mw.scope_for = Resolver(app, f)

    stale_answer_sequence(set_scope_for, get)
