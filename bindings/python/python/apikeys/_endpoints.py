"""ASGI apps for the endpoints written once in Rust (``apikeys-http``): the
management API with the API Access Keys page, and GitHub's secret-scanning
receiver. Re-exported by :mod:`apikeys.asgi`; see ``docs/python.md``.

These apps hold no rule of their own. Per request they read the body (at most
the endpoint's limit plus one byte), ask the host application's
``actor`` function who is logged in, and hand the method, the path below the
mount point, the query string, the headers, the body, the actor and the
client's address to the Rust endpoint, whose ``(status, headers, body)``
they send as they are. The same code answers under axum and Express.

- The event loop never waits on the database: when the endpoint may block
  (``keyring.may_block``: a ``SqliteStore`` or ``PostgresStore``), the call
  runs in a worker thread (asyncio's default executor; anyio's threads on
  trio) with the GIL released; with the in-memory store it runs inline.
- The body is read up to the endpoint's limit plus one byte (64 KiB for the
  management API, 1 MiB for a report by default) and handed over: the Rust
  code answers 413 for a longer one; the rest is never read.
- The ``actor`` function gets the ASGI ``scope`` (the one thing every ASGI
  framework shares: Starlette's ``AuthenticationMiddleware`` puts
  ``scope["user"]`` there, ``SessionMiddleware`` ``scope["session"]``;
  ``starlette.requests.Request(scope)`` wraps it). It answers an
  :class:`apikeys.Actor` or ``None`` (nobody logged in: the endpoint answers
  401), directly or as an awaitable. If it raises or answers anything else,
  the request gets a 500 with PagerDuty's body and nothing of the cause; the
  exception goes to the ``apikeys.asgi`` logger.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from typing import Any, Awaitable, Callable, Mapping, MutableMapping, Optional, Tuple, Union

from . import Actor, Keyring
from . import _apikeys as _native  # type: ignore[attr-defined]

__all__ = ["ActorFunction", "management_app", "secret_scanning_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Who is logged in, from the ASGI scope: an :class:`apikeys.Actor`, ``None``,
#: or an awaitable of either.
ActorFunction = Callable[[Scope], Union[Optional[Actor], Awaitable[Optional[Actor]]]]

_Answer = Tuple[int, Any, bytes]

_log = logging.getLogger("apikeys.asgi")


class _EndpointApp:
    """A Rust endpoint as an ASGI app (see the module's documentation)."""

    def __init__(self, endpoint: Any, actor: Optional[ActorFunction]) -> None:
        self._endpoint = endpoint
        self._actor = actor
        self._limit: int = endpoint.body_limit
        self._offload: bool = endpoint.may_block

    def __repr__(self) -> str:
        return f"<ASGI app {self._endpoint!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            # A WebSocket: closed before it is accepted (the server answers 403).
            await send({"type": "websocket.close", "code": 1000})
            return
        endpoint = self._endpoint
        # At most the endpoint's limit and one byte more: it refuses a longer
        # body itself (413), so the rest is never read.
        chunks = []
        size = 0
        while size <= self._limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        who: Optional[Actor] = None
        if self._actor is not None:
            try:
                found = self._actor(scope)
                if inspect.isawaitable(found):
                    found = await found
            except Exception:
                _log.exception("apikeys.asgi: the actor function raised; answering 500")
                await _write(send, _native._Endpoint.internal_error())
                return
            if found is not None and not isinstance(found, Actor):
                _log.error(
                    "apikeys.asgi: the actor function returned %s, not an apikeys.Actor or None; answering 500",
                    type(found).__name__,
                )
                await _write(send, _native._Endpoint.internal_error())
                return
            who = found
        call = functools.partial(
            endpoint.handle,
            scope["method"],
            _target(scope),
            scope.get("headers", ()),
            body,
            who,
            scope.get("client"),
            scope.get("root_path") or None,
        )
        try:
            answer: _Answer = await _in_thread(call) if self._offload else call()
        except Exception:
            # A server that hands over something no ASGI server does (a
            # header that is not bytes …): logged, answered 500.
            _log.exception("apikeys.asgi: the request could not be handed to the endpoint; answering 500")
            answer = _native._Endpoint.internal_error()
        await _write(send, answer)


def _target(scope: Scope) -> bytes:
    """The path below the mount point (``root_path`` taken off, as Starlette's
    ``Mount`` leaves it on), with ``?query`` when there is one."""
    root = scope.get("root_path", "") or ""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        prefix = root.encode("utf-8", "surrogateescape")
        path = raw[len(prefix) :] if prefix and raw.startswith(prefix) else raw
    else:
        text: str = scope.get("path", "/")
        path = (text[len(root) :] if root and text.startswith(root) else text).encode("utf-8", "surrogateescape")
    query = scope.get("query_string", b"")
    return path + b"?" + query if query else path


async def _write(send: Send, answer: _Answer) -> None:
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _in_thread(call: Callable[[], _Answer]) -> _Answer:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        from anyio import to_thread

        return await to_thread.run_sync(call)
    return await loop.run_in_executor(None, call)


def _checked_keyring(keyring: Any) -> Keyring:
    if not isinstance(keyring, Keyring):
        raise TypeError(f"argument 'keyring' must be apikeys.Keyring, not {type(keyring).__name__}")
    return keyring


def _checked_actor(actor: Any) -> ActorFunction:
    if not callable(actor):
        raise TypeError(f"argument 'actor' must be a callable (scope) -> Actor | None, not {type(actor).__name__}")
    f: ActorFunction = actor
    return f


def management_app(
    keyring: Keyring, *, actor: ActorFunction, mount_path: Optional[str] = None, page: bool = True
) -> ASGIApp:
    """The management API and the API Access Keys page as an ASGI app.

    Mount it under a prefix (Starlette: ``Mount("/api-keys", app=...)``; FastAPI:
    ``app.mount("/api-keys", ...)``): the page learns where from the scope's
    ``root_path``; ``mount_path`` is for a server that does not say (a proxy
    that strips the prefix). ``actor(scope)`` says who is logged in (an
    :class:`apikeys.Actor`, ``None`` for nobody; sync or async). ``page=False``
    serves the API alone. Every route, rule and answer is the Rust
    ``apikeys_http::Management``'s (docs/management.md).
    """
    endpoint = _native._management(_checked_keyring(keyring), mount_path=mount_path, page=page)
    return _EndpointApp(endpoint, _checked_actor(actor))


def secret_scanning_app(
    keyring: Keyring,
    *,
    public_keys: Optional[Mapping[str, Union[str, bytes]]] = None,
    github_keys: Optional[Union[str, bytes]] = None,
    on_live_key: str = "disable",
    max_body_bytes: Optional[int] = None,
) -> ASGIApp:
    """GitHub's secret-scanning partner receiver as an ASGI app (``POST``).

    ``public_keys`` maps each ``Github-Public-Key-Identifier`` to its P-256
    public key (PEM text, or SPKI DER ``bytes``); ``github_keys`` is the body of
    GitHub's ``/meta/public_keys/secret_scanning`` (both may be given). A
    reported live key is disabled (``on_live_key="disable"``) or deleted
    (``"delete"``). ``max_body_bytes``: the largest report read (1 MiB by
    default). Every check and answer is the Rust ``apikeys_http::SecretScanning``'s.
    """
    endpoint = _native._secret_scanning(
        _checked_keyring(keyring), public_keys, github_keys, on_live_key, max_body_bytes
    )
    return _EndpointApp(endpoint, None)
