"""What the HTTP adapters (``apikeys.asgi``, ``apikeys.wsgi``) share: reading
the key, and the answers to refused requests.

The same conventions as the Rust crate ``apikeys-http``, decided and rendered
by its own code through the extension module, so that every adapter (axum,
ASGI, WSGI, Express) accepts and refuses the same requests and sends the same
bytes for a refusal:

- REST: ``Authorization: Token token=<key>`` (scheme and parameter name in any
  case, spaces tolerated, the key optionally in double quotes) or
  ``Bearer <key>``; exactly one such header.
- Events: the ``routing_key`` field of a JSON object body, read up to a limit.
- Refusals: ``{"error":{"message":...,"code":...}}`` with the status of the
  design's table; ``WWW-Authenticate: Token`` on 401; ``retry-after`` and the
  ``ratelimit-*`` headers on 429; never a key, never a traceback, "an internal
  error occurred" for 5xx.

Each ``_native`` function answers its value, or for a refused request the
refusal as ``apikeys_http::Rejection::refusal`` renders it (a tuple that
:class:`Rejection` holds).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from . import _apikeys as _native  # type: ignore[attr-defined]
from . import ApiKeyError, Keyring, Principal

#: The default Events body limit: 512 KiB, PagerDuty's limit for one event
#: (``apikeys_http::DEFAULT_MAX_EVENT_BYTES``).
DEFAULT_MAX_EVENT_BYTES: int = _native._HTTP_DEFAULT_MAX_EVENT_BYTES
#: The attribute that :func:`requires_scope` sets on a view or dependency.
SCOPE_ATTR = "__apikeys_scope__"

Headers = List[Tuple[str, str]]
#: ``(status, code, kind, message, reason, retry_after, headers, body)``.
_Refusal = Tuple[int, int, str, str, str, Optional[float], Headers, bytes]

_rest_token: Callable[[Sequence[Union[str, bytes]]], Union[str, _Refusal]] = _native._http_rest_token
_joined_rest_token: Callable[[Optional[str]], Union[str, _Refusal]] = _native._http_joined_rest_token
_declared_length: Callable[[Union[str, bytes], int], Union[int, _Refusal]] = _native._http_declared_length
_routing_key: Callable[[bytes], Union[str, _Refusal]] = _native._http_routing_key
#: ``_events_check(keyring, body, address, path)``: the routing key parsed and
#: checked in one call (an :class:`apikeys.Keyring` only), the ``Principal`` or
#: the refusal tuple (``_http_events_check`` in ``bindings/python/src/http.rs``).
_events_check: Callable[[Keyring, bytes, Optional[str], Optional[str]], Union[Principal, _Refusal]] = (
    _native._http_events_check
)
#: ``_asgi_rest(keyring, scope, routes, path, address)``: the REST step of
#: ``apikeys.asgi`` for a route in its routing cache ``routes``, in one call:
#: the headers read out of the ASGI scope, the cache probed, the key checked;
#: ``(principal, route scope)``, the refusal tuple, or ``None`` when the
#: middleware must take its general path (a cache miss, or a scope not in the
#: shape servers give it) (``_http_asgi_rest``).
_asgi_rest: Callable[[Keyring, Any, Dict[Any, str], str, Optional[str]], Optional[Tuple[Any, ...]]] = (
    _native._http_asgi_rest
)
#: ``_joined_rest_check(keyring, value, method, scope_of, environ, address,
#: path, scopes)``: the same for WSGI's joined ``HTTP_AUTHORIZATION``; the
#: scope, found only once the header gave a key, is ``scopes[(REQUEST_METHOD,
#: PATH_INFO)]`` when that cache holds it, else ``scope_of(environ)``
#: (``_http_joined_rest_check``).
_joined_rest_check: Callable[
    [
        Keyring,
        Optional[str],
        str,
        Optional[Callable[[Any], Optional[str]]],
        Any,
        Optional[str],
        Optional[str],
        Optional[Dict[Any, str]],
    ],
    Union[Principal, _Refusal],
] = _native._http_joined_rest_check
_refusal: Callable[..., _Refusal] = _native._http_refusal
_refusal_for: Callable[[ApiKeyError], _Refusal] = _native._http_refusal_for
_rate_limit_headers: Callable[[Principal], Optional[Headers]] = _native._http_rate_limit_headers


def _checks_natively(keyring: Any) -> bool:
    """Whether an adapter may read the request and check the key in one
    native call: the keyring is an :class:`apikeys.Keyring` (which cannot be
    subclassed, so its ``authenticate`` is this package's). A stand-in is
    called as before."""
    return isinstance(keyring, Keyring)


class Rejection(Exception):
    """Why a request was refused before it reached the application, and the
    answer for it, rendered by ``apikeys-http`` (the same bytes as the Rust
    and Node adapters send)."""

    def __init__(self, refusal: _Refusal) -> None:
        status, code, kind, message, reason, retry_after, headers, body = refusal
        super().__init__(message)
        #: The HTTP status.
        self.status = status
        #: PagerDuty's error code (2006, 2010, 2001 ...).
        self.code = code
        #: A stable name: the core error's kind (``"unauthorized"`` ...) or the
        #: adapter's (``"missing_key"``, ``"invalid_body"`` ...).
        self.kind = kind
        #: What the client is told.
        self.message = message
        #: For server logs: which check failed (never a key).
        self.reason = reason
        #: For a 429: seconds until a retry may succeed.
        self.retry_after = retry_after
        self._headers = headers
        self._body = body

    def body(self) -> bytes:
        """PagerDuty's error body."""
        return self._body

    def headers(self) -> Headers:
        """The response headers, in order (content type and length, then the challenge or retry headers)."""
        return list(self._headers)


def body_too_large(limit: int) -> Rejection:
    return Rejection(_refusal("body_too_large", limit=limit))


def unreadable_body() -> Rejection:
    return Rejection(_refusal("unreadable_body"))


def misconfigured(reason: str) -> Rejection:
    """A route whose scope declaration cannot be honoured (a server bug): 500."""
    return Rejection(_refusal("misconfigured", reason=reason))


def from_error(e: ApiKeyError) -> Rejection:
    """The refusal for an error of :meth:`apikeys.Keyring.authenticate`."""
    return Rejection(_refusal_for(e))


def rest_token(values: Sequence[Union[str, bytes]]) -> str:
    """The key of a REST request, from all its ``Authorization`` header values."""
    key = _rest_token(values)
    if isinstance(key, str):
        return key
    raise Rejection(key)


def joined_rest_token(value: Optional[str]) -> str:
    """The key of a REST request whose ``Authorization`` headers the server
    joined into one value (WSGI's ``HTTP_AUTHORIZATION``; werkzeug and
    gunicorn join repeated headers with a bare comma): one header, or a 400
    for several (``apikeys_http::token_from_joined_authorization``)."""
    key = _joined_rest_token(value)
    if isinstance(key, str):
        return key
    raise Rejection(key)


def declared_length(value: Union[str, bytes], limit: int) -> int:
    """A ``Content-Length`` value within ``limit``: digits only (spaces or tabs
    around them allowed); anything else (a sign, an exponent, a list) is a
    400, and so is a length over the limit."""
    n = _declared_length(value, limit)
    if isinstance(n, int):
        return n
    raise Rejection(n)


def routing_key(body: bytes) -> str:
    """The ``routing_key`` of an Events API v2 body (a JSON object), read by
    the Rust adapters' parser: every adapter accepts and refuses the same bodies."""
    key = _routing_key(body)
    if isinstance(key, str):
        return key
    raise Rejection(key)


def authenticate(
    keyring: Keyring,
    token: str,
    api: str,
    method: str,
    scope: Optional[str],
    remote_address: Optional[str] = None,
    path: Optional[str] = None,
) -> Principal:
    """:meth:`apikeys.Keyring.authenticate`, with errors turned into a :class:`Rejection`.

    ``remote_address`` and ``path`` are where the request came from, as the
    server gave them (the key remembers the place of its last use)."""
    try:
        if api == "events":
            return keyring.authenticate(token, api="events", remote_address=remote_address, path=path)
        return keyring.authenticate(
            token, api="rest", method=method, scope=scope, remote_address=remote_address, path=path
        )
    except ApiKeyError as e:
        raise from_error(e) from None


def try_authenticate(
    keyring: Keyring,
    token: str,
    api: str,
    method: str,
    scope: Optional[str],
    remote_address: Optional[str] = None,
    path: Optional[str] = None,
) -> Optional[Principal]:
    """:meth:`apikeys.Keyring.try_authenticate`: :func:`authenticate` when it
    needs no I/O, ``None`` when it would (then call :func:`authenticate`)."""
    try:
        if api == "events":
            return keyring.try_authenticate(token, api="events", remote_address=remote_address, path=path)
        return keyring.try_authenticate(
            token, api="rest", method=method, scope=scope, remote_address=remote_address, path=path
        )
    except ApiKeyError as e:
        raise from_error(e) from None


def rate_limit_headers(principal: Principal) -> Optional[Headers]:
    """``ratelimit-limit``, ``-remaining`` and ``-reset`` when the principal
    knows them (``apikeys_http::rate_limit_headers``), else ``None``."""
    return _rate_limit_headers(principal)
