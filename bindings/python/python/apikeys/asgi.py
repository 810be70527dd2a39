"""ASGI middleware (Starlette, FastAPI, any ASGI app) that checks PagerDuty-style keys.

.. code-block:: python

    from fastapi import Depends, FastAPI
    import apikeys
    from apikeys.asgi import ApiKeyMiddleware, require_scope

    keyring = apikeys.Keyring()
    app = FastAPI()
    app.add_middleware(ApiKeyMiddleware, keyring=keyring)

    @app.post("/incidents", status_code=201)
    def create(who: apikeys.Principal = Depends(require_scope("incidents.write"))) -> dict:
        return {"account": who.account}

- REST requests: the key from ``Authorization: Token token=<key>`` (or
  ``Bearer``), the method from the request, the scope from the route: a
  :func:`require_scope` dependency (FastAPI), a :func:`requires_scope`
  decorator on the endpoint (Starlette), or the ``scope_for`` callable; without
  one the request stands for the broadest scope. The key is checked once, in
  the middleware, before the application runs.
- Events requests (paths in ``events_paths``): the ``routing_key`` of the JSON
  body, read up to ``max_event_bytes``; the application gets the same body.
- The :class:`apikeys.Principal` goes to ``request.state.apikey`` (``scope["state"]["apikey"]``)
  and ``scope["apikey"]``.
- Each check passes the client's address (``scope["client"]``) and the path,
  so the key remembers where it was last used from
  (:attr:`apikeys.KeyRecord.last_used_from`).
- Refusals answer PagerDuty's error body; answers to a known key carry the
  ``ratelimit-*`` headers when the keyring reports its limits.
- The event loop never waits on the key store: when the keyring may block
  (:attr:`apikeys.Keyring.may_block`: a ``SqliteStore`` or ``PostgresStore``,
  or a ``RedisRateLimiter``), the check is first tried inline with
  :meth:`apikeys.Keyring.try_authenticate`, which answers from the store's
  in-memory cache (a key seen before) and never waits; only when it cannot
  (a key not cached yet, the cache off, or a ``RedisRateLimiter``) does the
  check run in a worker thread (a pool of :data:`OFFLOAD_THREADS` on asyncio,
  anyio's threads on trio) with the GIL released, while the loop serves
  other requests. With the in-memory store it always runs inline (a few
  hundred nanoseconds, less than a thread hop). ``offload=True``/``False``
  overrides the choice (``False``: always inline; ``True``: try, then a thread).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, Dict, FrozenSet, Iterable, List, MutableMapping, Optional, Tuple, TypeVar

from . import ApiKeyError, Keyring, Principal
from ._http import (
    DEFAULT_MAX_EVENT_BYTES,
    SCOPE_ATTR,
    Rejection,
    _declared_length,
    _checks_natively,
    _events_check,
    _asgi_rest,
    _rest_token,
    authenticate,
    body_too_large,
    from_error,
    misconfigured,
    rate_limit_headers,
    routing_key,
    try_authenticate,
    unreadable_body,
)

__all__ = [
    "ApiKeyMiddleware",
    "Rejection",
    "ScopeDeclarationError",
    "principal",
    "require_scope",
    "requires_scope",
]
# The endpoints written once in Rust (the management API and page, the secret-scanning receiver): _endpoints.py.
from ._endpoints import ActorFunction as ActorFunction, management_app as management_app, secret_scanning_app as secret_scanning_app  # noqa: E402

__all__ += ["ActorFunction", "management_app", "secret_scanning_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
F = TypeVar("F", bound=Callable[..., Any])

_NO_SCOPE = ""
_CACHE_LIMIT = 4096


_log = logging.getLogger("apikeys.asgi")


class ScopeDeclarationError(TypeError):
    """A route declares its scope in a way the middleware cannot honour: two
    different scopes, or one that is not a string."""


def _checked_scope(scope: Any, what: str) -> str:
    if not isinstance(scope, str):
        raise ScopeDeclarationError(f"{what}: the scope must be a str, not {type(scope).__name__}")
    return scope


def requires_scope(scope: str) -> Callable[[F], F]:
    """Decorate a Starlette endpoint (or any view) with the scope its route needs.

    A view takes one scope: decorating it again with another raises
    :class:`ScopeDeclarationError` (a ``TypeError``) when the app is defined.
    """
    _checked_scope(scope, "requires_scope")

    def mark(view: F) -> F:
        had = getattr(view, SCOPE_ATTR, None)
        if had is not None and had != scope:
            raise ScopeDeclarationError(
                f"{getattr(view, '__qualname__', view)!s} already requires scope {had!r}; "
                f"a route takes one scope, not also {scope!r}"
            )
        setattr(view, SCOPE_ATTR, scope)
        return view

    return mark


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: the route needs ``scope``; gives the :class:`apikeys.Principal`.

    The check itself happens in :class:`ApiKeyMiddleware` (which finds this
    dependency on the route); the dependency hands over its result, and fails
    with a server error if the middleware is not installed. A route takes one
    scope: one with two different ``require_scope`` dependencies fails the
    app's startup (lifespan) and is answered with a 500, the route named in
    the log.
    """
    _checked_scope(scope, "require_scope")
    from starlette.requests import Request

    # A coroutine, so that FastAPI runs it inline rather than in its thread pool.
    async def dependency(request: Request) -> Principal:
        who = request.scope.get("apikey")
        if who is None or request.scope.get("apikey_scope") != scope:
            raise RuntimeError("apikeys.asgi.ApiKeyMiddleware is not installed in front of this route")
        return who  # type: ignore[no-any-return]

    dependency.__annotations__ = {"request": Request, "return": Principal}
    setattr(dependency, SCOPE_ATTR, scope)
    return dependency


async def principal(request: Any) -> Principal:
    """A FastAPI dependency: the principal of a route without a scope."""
    who = request.scope.get("apikey")
    if who is None:
        raise RuntimeError("apikeys.asgi.ApiKeyMiddleware is not installed in front of this route")
    return who  # type: ignore[no-any-return]


def _route_name(route: Any) -> str:
    methods = getattr(route, "methods", None)
    verbs = ",".join(sorted(methods)) + " " if methods else ""
    name = getattr(route, "name", None)
    return f"route {verbs}{getattr(route, 'path', '?')}" + (f" ({name})" if name else "")


def _route_scope(route: Any) -> Optional[str]:
    """The scope a Starlette/FastAPI route declares, if any; a
    :class:`ScopeDeclarationError` naming the route if it declares two or a
    non-string one."""
    found: List[Any] = []
    tagged = getattr(getattr(route, "endpoint", None), SCOPE_ATTR, None)
    if tagged is not None:
        found.append(tagged)
    for dep in getattr(route, "dependencies", None) or ():
        tagged = getattr(getattr(dep, "dependency", None), SCOPE_ATTR, None)
        if tagged is not None:
            found.append(tagged)
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", None) or ())
    seen = 0
    while stack and seen < 10_000:
        seen += 1
        d = stack.pop()
        tagged = getattr(getattr(d, "call", None), SCOPE_ATTR, None)
        if tagged is not None:
            found.append(tagged)
        stack.extend(getattr(d, "dependencies", None) or ())
    if not found:
        return None
    for s in found:
        _checked_scope(s, _route_name(route))
    scopes = sorted(set(found))
    if len(scopes) > 1:
        raise ScopeDeclarationError(
            f"{_route_name(route)} declares {len(scopes)} scopes ({', '.join(map(repr, scopes))}); a route takes one"
        )
    return scopes[0]  # type: ignore[no-any-return]


def _known_matchers() -> FrozenSet[Any]:
    """The ``matches`` methods of the route classes whose matching depends
    only on the method, path, root path and ``Host`` header of a request
    (what the middleware keys its routing cache by)."""
    found: List[Any] = []
    try:
        from starlette import routing as sr

        found += [getattr(sr, n).matches for n in ("Route", "Mount", "Host") if hasattr(sr, n)]
    except ImportError:  # pragma: no cover - starlette is what has routes
        pass
    try:
        from fastapi import routing as fr

        if hasattr(fr, "APIRoute"):
            found.append(fr.APIRoute.matches)
    except ImportError:
        pass
    return frozenset(found)


class ApiKeyMiddleware:
    """Pure ASGI middleware; see the module's documentation."""

    def __init__(
        self,
        app: ASGIApp,
        keyring: Keyring,
        *,
        events_paths: Iterable[str] = ("/v2/enqueue",),
        public_paths: Iterable[str] = (),
        scope_for: Optional[Callable[[str, str], Optional[str]]] = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        offload: Optional[bool] = None,
    ) -> None:
        self.app = app
        self.keyring = keyring
        #: Whether each check runs in a worker thread (default: ``keyring.may_block``;
        #: an object standing in for a keyring without that attribute is offloaded).
        self.offload = bool(getattr(keyring, "may_block", True)) if offload is None else bool(offload)
        # Try inline first when offloading, if the keyring can (a stand-in
        # without ``try_authenticate`` always goes to a thread).
        self._try_first = self.offload and callable(getattr(keyring, "try_authenticate", None))
        self.events_paths = frozenset(events_paths)
        self.public_paths = frozenset(public_paths)
        self.max_event_bytes = max_event_bytes
        self.scope_for = scope_for
        # id(route) -> (route, its declared scope or ""): the route is held
        # so that its id cannot be reused by another object.
        self._route_scopes: Dict[int, Tuple[Any, str]] = {}
        self._matchers = _known_matchers()
        # Principals carry a rate-limit status only from a keyring with rate
        # limits (fixed when it is made): without them there are no headers
        # to add. A stand-in keyring that does not say is asked every time.
        self._rate_limited = bool(getattr(keyring, "has_rate_limits", True))
        # An apikeys.Keyring checked inline: one native call reads the
        # request and checks the key (Events: _http_events_check; REST:
        # _http_asgi_rest, for a route already in the routing cache).
        self._inline = not self.offload and _checks_natively(keyring)

    @property
    def scope_for(self) -> Optional[Callable[[str, str], Optional[str]]]:
        """The callable that gives a route's scope when its endpoint declares
        none. Setting it starts a new routing cache: the old one keeps the
        answers of the callable it replaces."""
        return self._scoping[0]

    @scope_for.setter
    def scope_for(self, scope_for: Optional[Callable[[str, str], Optional[str]]]) -> None:
        # Routing each request again costs about as much as the key check,
        # so the answer is kept per request key: everything the routes can
        # match on (method, path, root path, scheme, Host header, app). Kept
        # only when every route consulted is one whose matching depends on
        # nothing else (see _known_matchers); bounded, since paths carry ids.
        # The callable and its cache are one attribute, read once per lookup:
        # an answer of the replaced callable, found while another thread sets
        # a new one, goes into the old cache, never the new one.
        self._scoping: Tuple[Optional[Callable[[str, str], Optional[str]]], Dict[Tuple[Any, ...], str]] = (
            scope_for,
            {},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self.app(scope, receive, self._startup_check(scope, send))
            else:
                await self.app(scope, receive, send)
            return
        # Where the request came from, for the key's last use: two values
        # the server already put in the scope (``client`` may be None).
        path = scope["path"]
        if path in self.public_paths:
            await self.app(scope, receive, send)
            return
        required: Optional[str] = None
        client = scope.get("client")
        address = client[0] if client else None
        try:
            if path in self.events_paths:
                # The body, read here (no coroutine of its own): the
                # declared length checked, then the first message; a body
                # in several messages is gathered by _read_rest.
                limit = self.max_event_bytes
                for k, v in scope["headers"]:
                    # Lower case as servers send it; another spelling is lowered
                    # only when it has the length of the name.
                    if k == b"content-length" or (len(k) == 14 and k.lower() == b"content-length"):
                        n = _declared_length(v, limit)
                        if not isinstance(n, int):
                            raise Rejection(n)
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise unreadable_body()
                body = message.get("body", b"")
                if len(body) > limit:
                    raise body_too_large(limit)
                if message.get("more_body", False):
                    body = await _read_rest(body, receive, limit)
                    message = {"type": "http.request", "body": body, "more_body": False}
                elif type(body) is not bytes or message["type"] != "http.request":
                    # (Handed on as the one message of the body only when it is one.)
                    body = bytes(body)
                    message = {"type": "http.request", "body": body, "more_body": False}
                if self._inline:
                    # An apikeys.Keyring checked inline: the routing key
                    # parsed and checked in one native call, the key never
                    # made a str (the same answers as the two calls below).
                    who = _events_check(self.keyring, body, address, path)
                    if isinstance(who, tuple):
                        raise Rejection(who)
                else:
                    token = routing_key(body)
                    if self.offload:
                        who = await self._check(token, "events", "POST", None, address, path)
                    else:
                        # A stand-in keyring: the check inline, no coroutine, no wrapper.
                        try:
                            who = self.keyring.authenticate(token, "events", remote_address=address, path=path)
                        except ApiKeyError as e:
                            raise from_error(e) from None
                # The application reads the body again: the message it came
                # in first, then the server's receive.
                receive = functools.partial(_replay, [message], receive)
            else:
                # An apikeys.Keyring and a route seen before: the headers
                # read, the routing cache probed and the key checked in one
                # native call, the key never made a str (the same answers as
                # the general path below, which takes everything else).
                try:
                    done = _asgi_rest(self.keyring, scope, self._scoping[1], path, address) if self._inline else None
                except ApiKeyError as e:  # a cached scope the keyring refuses: as authenticate's below
                    raise from_error(e) from None
                if done is not None:
                    if len(done) != 2:
                        raise Rejection(done)
                    who, required = done
                else:
                    # One pass for the key and the Host header (part of the
                    # routing cache's key: Starlette's Host routes match on it).
                    # Servers send the names in lower case (ASGI asks them to):
                    # a name is lowered only if it could be one of the two.
                    values: List[bytes] = []
                    host: Any = None
                    for k, v in scope["headers"]:
                        if k == b"authorization":
                            values.append(v)
                        elif k == b"host":
                            host = v if host is None else (*host, v) if isinstance(host, tuple) else (host, v)
                        elif len(k) == 13 or len(k) == 4:
                            name = k.lower()
                            if name == b"authorization":
                                values.append(v)
                            elif name == b"host":
                                host = v if host is None else (*host, v) if isinstance(host, tuple) else (host, v)
                    method = scope["method"]
                    parsed = _rest_token(values)
                    if not isinstance(parsed, str):
                        raise Rejection(parsed)
                    token = parsed
                    # The routing cache's key: everything the routes can match
                    # on (see _required_scope).
                    required = self._required_scope(scope, host)
                    if self.offload:
                        who = await self._check(token, "rest", method, required, address, path)
                    else:
                        try:
                            who = self.keyring.authenticate(
                                token, "rest", method, required, remote_address=address, path=path
                            )
                        except ApiKeyError as e:
                            raise from_error(e) from None
        except Rejection as r:
            await _send_rejection(send, r)
            return
        scope.setdefault("state", {})["apikey"] = who
        scope["apikey"] = who
        scope["apikey_scope"] = required
        # A keyring without rate limits gives principals without a status:
        # no headers to add, no call to find that out.
        extra = rate_limit_headers(who) if self._rate_limited else None
        if extra:
            raw = [(k.encode(), v.encode()) for k, v in extra]
            inner_send = send

            async def send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = dict(message)
                    message["headers"] = list(message.get("headers", ())) + raw
                await inner_send(message)

        await self.app(scope, receive, send)

    def _required_scope(self, scope: Scope, host: Any) -> Optional[str]:
        """The scope the request's route needs (``host``: the request's
        ``Host`` header value, a tuple of them if it has several, or
        ``None``); a 500 :class:`Rejection` (the route named in the log) if
        the route's declaration is broken."""
        key = (
            scope["method"],
            scope["path"],
            scope.get("root_path", ""),
            scope.get("scheme", ""),
            host,
            id(scope.get("app")),
        )
        scope_for, cache = self._scoping
        cached = cache.get(key)
        if cached is None:
            try:
                found, cacheable = self._resolve_scope(scope, scope_for)
            except ScopeDeclarationError as e:
                _log.error("apikeys.asgi: %s; answering 500", e)
                raise misconfigured(str(e)) from None
            cached = found or _NO_SCOPE
            if cacheable:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[key] = cached
        return cached or None

    def _resolve_scope(
        self, scope: Scope, scope_for: Optional[Callable[[str, str], Optional[str]]]
    ) -> Tuple[Optional[str], bool]:
        """The route's scope (``scope_for`` asked when no route declares one),
        and whether the answer may be kept for the request key."""
        app = scope.get("app")
        routes = getattr(getattr(app, "router", None), "routes", None)
        cacheable = [True]
        if routes:
            # A route's own declaration decides; a route that declares none,
            # or a request no route matches, is asked of scope_for.
            found = self._match(routes, scope, 0, cacheable)
            if found:
                return found, cacheable[0]
        if scope_for is not None:
            where = f"scope_for({scope['method']!r}, {scope['path']!r})"
            try:
                given = scope_for(scope["method"], scope["path"])
            except Exception as e:
                _log.exception("apikeys.asgi: %s raised", where)
                raise misconfigured(f"{where} raised {type(e).__name__}") from None
            if given is not None and not isinstance(given, str):
                raise ScopeDeclarationError(f"{where} returned {type(given).__name__}; it must return a str or None")
            return given, cacheable[0]
        return None, cacheable[0]

    def _match(self, routes: Iterable[Any], scope: Scope, depth: int, cacheable: List[bool]) -> Optional[str]:
        """The scope of the route that fully matches: ``""`` for none declared, ``None`` for no match.

        Clears ``cacheable[0]`` when a route it asked is of a kind that may
        match on more than the request key holds."""
        for route in routes:
            matches = getattr(route, "matches", None)
            if matches is None:
                continue
            if getattr(type(route), "matches", None) not in self._matchers:
                cacheable[0] = False
            match, child = matches(scope)
            if getattr(match, "name", "") != "FULL":
                continue
            inner = getattr(route, "routes", None)
            if inner and depth < 8:
                found = self._match(inner, {**scope, **child}, depth + 1, cacheable)
                if found is not None:
                    return found
                continue
            kept = self._route_scopes.get(id(route))
            if kept is None or kept[0] is not route:
                kept = (route, _route_scope(route) or _NO_SCOPE)
                if len(self._route_scopes) >= _CACHE_LIMIT:
                    self._route_scopes.clear()
                self._route_scopes[id(route)] = kept
            return kept[1]
        return None

    def _startup_check(self, scope: Scope, send: Send) -> Send:
        """``send`` for the lifespan protocol: the app's startup fails if one
        of its routes declares its scope in a way that cannot be honoured."""
        app = scope.get("app")

        async def checked(message: Message) -> None:
            if message.get("type") == "lifespan.startup.complete":
                problems = _declaration_problems(getattr(getattr(app, "router", None), "routes", None) or ())
                if problems:
                    text = "apikeys.asgi: " + "; ".join(problems)
                    _log.error("%s", text)
                    message = {"type": "lifespan.startup.failed", "message": text}
            await send(message)

        return checked

    async def _check(
        self, token: str, api: str, method: str, required: Optional[str], address: Optional[str], path: Optional[str]
    ) -> Principal:
        """The key check: inline, or tried inline and else in a worker thread."""
        if not self.offload:
            return authenticate(self.keyring, token, api, method, required, address, path)
        who = try_authenticate(self.keyring, token, api, method, required, address, path) if self._try_first else None
        if who is None:
            who = await _in_thread(self.keyring, token, api, method, required, address, path)
        return who


async def _read_rest(first: bytes, receive: Receive, limit: int) -> bytes:
    """The rest of a body whose first message said ``more_body``: the
    messages gathered up to ``limit`` bytes and joined."""
    chunks = [first]
    size = len(first)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise unreadable_body()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _declaration_problems(routes: Iterable[Any], depth: int = 0) -> List[str]:
    """What is wrong with the scope declarations of these routes and those under them."""
    problems: List[str] = []
    for route in routes:
        inner = getattr(route, "routes", None)
        if inner and depth < 8:
            problems += _declaration_problems(inner, depth + 1)
            continue
        try:
            _route_scope(route)
        except ScopeDeclarationError as e:
            problems.append(str(e))
    return problems


#: How many threads (per process) run the checks of keyrings that may block;
#: the default PostgreSQL pool holds 16 connections.
OFFLOAD_THREADS = 16
_pool: Optional[ThreadPoolExecutor] = None
_pool_lock = threading.Lock()


def _offload_pool() -> ThreadPoolExecutor:
    global _pool
    pool = _pool
    if pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(OFFLOAD_THREADS, thread_name_prefix="apikeys-check")
            pool = _pool
    return pool


def _forget_pool() -> None:
    # A forked child (gunicorn with --preload) has none of the parent's threads.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


async def _in_thread(
    keyring: Keyring,
    token: str,
    api: str,
    method: str,
    required: Optional[str],
    address: Optional[str] = None,
    path: Optional[str] = None,
) -> Principal:
    """:func:`authenticate` in a worker thread, so the event loop keeps serving.

    On asyncio (uvicorn, hypercorn), a pool of its own: with 32 checks in
    flight it measured at half the cost of ``anyio.to_thread`` per call or
    less (20-80 µs against 50-120 µs on a loaded 2-core machine). On another
    loop (trio), anyio's threads."""
    call = functools.partial(authenticate, keyring, token, api, method, required, address, path)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from anyio import to_thread

        return await to_thread.run_sync(call)
    return await loop.run_in_executor(_offload_pool(), call)


async def _replay(first: List[Message], receive: Receive) -> Message:
    """``receive`` for an application whose body the middleware read: the
    message the body came in (``first`` holds it until it is taken), then
    the server's ``receive``. Bound with ``functools.partial`` (made in C:
    no closure, no frame to make it)."""
    if first:
        return first.pop()
    return await receive()


async def _send_rejection(send: Send, r: Rejection) -> None:
    headers: list[Tuple[bytes, bytes]] = [(k.encode(), v.encode()) for k, v in r.headers()]
    await send({"type": "http.response.start", "status": r.status, "headers": headers})
    await send({"type": "http.response.body", "body": r.body(), "more_body": False})
