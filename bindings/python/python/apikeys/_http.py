"""What the HTTP adapters (``apikeys.asgi``, ``apikeys.wsgi``) share: reading
the key, PagerDuty's error body, and the rate-limit headers.

The same conventions as the Rust crate ``apikeys-http``:

- REST: ``Authorization: Token token=<key>`` (scheme and parameter name in any
  case, spaces tolerated, the key optionally in double quotes) or
  ``Bearer <key>``; exactly one such header.
- Events: the ``routing_key`` field of a JSON object body, read up to a limit.
- Refusals: ``{"error": {"message": ..., "code": ...}}`` with the status of the
  design's table; ``WWW-Authenticate: Token`` on 401; ``retry-after`` on 429;
  never a key, never a traceback, "an internal error occurred" for 5xx.

The header and the body are read by the Rust adapters' own parsers (through
the extension module), so that every adapter accepts and refuses the same
requests.
"""

from __future__ import annotations

import json
import math
from typing import Any, List, Optional, Sequence, Tuple, Union

from . import ApiKeyError, InvalidInput, Keyring, Principal
from . import events_routing_key as _events_routing_key
from . import token_from_authorization as _token_from_authorization

#: The longest ``Authorization`` value looked at; longer ones are malformed.
MAX_AUTHORIZATION_BYTES = 1024
#: The default Events body limit: 512 KiB, PagerDuty's limit for one event.
DEFAULT_MAX_EVENT_BYTES = 512 * 1024
#: The attribute that :func:`requires_scope` sets on a view or dependency.
SCOPE_ATTR = "__apikeys_scope__"

Headers = List[Tuple[str, str]]


class Rejection(Exception):
    """Why a request was refused before it reached the application."""

    def __init__(
        self,
        status: int,
        code: int,
        kind: str,
        message: str,
        reason: Optional[str] = None,
        retry_after: Optional[float] = None,
        limit: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.kind = kind
        self.message = message
        #: For server logs: which check failed (never a key).
        self.reason = reason if reason is not None else message
        self.retry_after = retry_after
        self.limit = limit

    def body(self) -> bytes:
        """PagerDuty's error body."""
        return json.dumps({"error": {"message": self.message, "code": self.code}}).encode()

    def headers(self) -> Headers:
        """The response headers (content type, length and the challenge or retry headers)."""
        body_len = len(self.body())
        h: Headers = [
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", str(body_len)),
        ]
        if self.status == 401:
            h.append(("www-authenticate", "Token"))
        if self.retry_after is not None:
            secs = str(max(1, math.ceil(self.retry_after)))
            h.append(("retry-after", secs))
            if self.limit is not None:
                h.append(("ratelimit-limit", str(self.limit)))
            h.append(("ratelimit-remaining", "0"))
            h.append(("ratelimit-reset", secs))
        return h


def missing_key() -> Rejection:
    return Rejection(401, 2006, "missing_key", "no API key: send the header 'Authorization: Token token=<key>'")


def malformed_authorization() -> Rejection:
    return Rejection(
        401,
        2006,
        "malformed_authorization",
        "the Authorization header must read 'Token token=<key>' or 'Bearer <key>'",
    )


def duplicate_authorization() -> Rejection:
    return Rejection(400, 2001, "duplicate_authorization", "send exactly one Authorization header")


def body_too_large(limit: int) -> Rejection:
    return Rejection(400, 2001, "body_too_large", f"the request body is larger than the limit of {limit} bytes")


def invalid_body(message: str) -> Rejection:
    return Rejection(400, 2001, "invalid_body", message)


def misconfigured(reason: str) -> Rejection:
    """A route whose scope declaration cannot be honoured (a server bug): 500."""
    return Rejection(500, 2000, "misconfigured", "an internal error occurred", reason)


def invalid_content_length() -> Rejection:
    return Rejection(400, 2001, "invalid_body", "the Content-Length header is not a number")


def missing_routing_key() -> Rejection:
    return Rejection(
        400, 2001, "missing_routing_key", "the event has no 'routing_key' (the integration or routing key)"
    )


def from_error(e: ApiKeyError) -> Rejection:
    """The refusal for an error of :meth:`apikeys.Keyring.authenticate`."""
    status = int(getattr(e, "status", 500))
    code = int(getattr(e, "code", 2000))
    reason = str(getattr(e, "reason", "") or e)
    if status >= 500:
        return Rejection(status, code, "internal", "an internal error occurred", reason)
    retry = getattr(e, "retry_after", None)
    retry_after = None if retry is None else _seconds(retry)
    limit = getattr(e, "limit", None)
    return Rejection(
        status,
        code,
        type(e).__name__,
        str(e),
        reason,
        retry_after=retry_after if status == 429 else None,
        limit=int(limit) if isinstance(limit, int) else None,
    )


def _seconds(v: Any) -> float:
    if hasattr(v, "total_seconds"):
        return float(v.total_seconds())
    return float(v)


def token_from_authorization(value: Union[str, bytes]) -> Optional[str]:
    """The key in an ``Authorization`` value, or ``None`` if it has no accepted form.

    The Rust adapters' parser (:func:`apikeys.token_from_authorization`), so
    every adapter reads a header the same way.

    >>> token_from_authorization("Token token=y_NbAkKc66ryYTWUXYEu")
    'y_NbAkKc66ryYTWUXYEu'
    >>> token_from_authorization('  token TOKEN = "abc" ')
    'abc'
    >>> token_from_authorization("Basic YWxhZGRpbg==") is None
    True
    """
    return _token_from_authorization(value)


def rest_token(values: Sequence[Union[str, bytes]]) -> str:
    """The key of a REST request, from all its ``Authorization`` header values."""
    if not values:
        raise missing_key()
    if len(values) > 1:
        raise duplicate_authorization()
    key = _token_from_authorization(values[0])
    if key is None:
        raise malformed_authorization()
    return key


def joined_rest_token(value: Optional[str]) -> str:
    """The key of a REST request whose ``Authorization`` headers the server
    joined into one value (WSGI's ``HTTP_AUTHORIZATION``; werkzeug and
    gunicorn join repeated headers with a bare comma).

    A value that reads as one header in an accepted form is one header (a
    comma in it is part of the key, which the keyring then refuses). Else, if
    it splits at bare commas into parts that each read as a header of their
    own, the client sent several: 400, as the ASGI and Rust adapters answer.
    Anything else, such as ``Token token=a, token=b`` (a comma and a space,
    as a client writes it), is one malformed header: 401.
    """
    if value is None:
        raise missing_key()
    key = _token_from_authorization(value)
    if key is not None:
        return key
    parts = value.split(",")
    if len(parts) > 1 and all(
        _token_from_authorization(p) is not None and (i == 0 or not p[:1].isspace()) for i, p in enumerate(parts)
    ):
        raise duplicate_authorization()
    raise malformed_authorization()


def content_length(value: Union[str, bytes]) -> int:
    """A ``Content-Length`` value: digits only (spaces or tabs around them
    allowed). Anything else (a sign, an exponent, a list) is a 400."""
    raw = value.decode("latin-1") if isinstance(value, bytes) else value
    digits = raw.strip(" \t")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise invalid_content_length()
    # Longer than any limit: no need to read the number.
    return int(digits) if len(digits) <= 18 else 10**18


def routing_key(body: bytes) -> str:
    """The ``routing_key`` of an Events API v2 body (a JSON object), read by
    the Rust adapters' parser (:func:`apikeys.events_routing_key`): every
    adapter accepts and refuses the same bodies."""
    try:
        return _events_routing_key(body)
    except InvalidInput as e:
        raise Rejection(e.status, e.code, e.reason, str(e)) from None


def authenticate(keyring: Keyring, token: str, api: str, method: str, scope: Optional[str]) -> Principal:
    """:meth:`apikeys.Keyring.authenticate`, with errors turned into a :class:`Rejection`."""
    try:
        if api == "events":
            return keyring.authenticate(token, api="events")
        return keyring.authenticate(token, api="rest", method=method, scope=scope)
    except ApiKeyError as e:
        raise from_error(e) from None


def try_authenticate(keyring: Keyring, token: str, api: str, method: str, scope: Optional[str]) -> Optional[Principal]:
    """:meth:`apikeys.Keyring.try_authenticate`: :func:`authenticate` when it
    needs no I/O, ``None`` when it would (then call :func:`authenticate`)."""
    try:
        if api == "events":
            return keyring.try_authenticate(token, api="events")
        return keyring.try_authenticate(token, api="rest", method=method, scope=scope)
    except ApiKeyError as e:
        raise from_error(e) from None


def rate_limit_headers(principal: Principal) -> Headers:
    """``ratelimit-limit``, ``-remaining`` and ``-reset`` when the principal knows them."""
    rl = getattr(principal, "rate_limit", None)
    if rl is None:
        return []
    reset = max(0, math.ceil(_seconds(getattr(rl, "reset", 0))))
    return [
        ("ratelimit-limit", str(rl.limit)),
        ("ratelimit-remaining", str(rl.remaining)),
        ("ratelimit-reset", str(reset)),
    ]
