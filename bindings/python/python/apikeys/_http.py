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
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, List, Optional, Sequence, Tuple

from . import ApiKeyError, Keyring, Principal

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


_AUTHORIZATION = re.compile(
    r'[ \t]*(?:token[ \t]+token[ \t]*=[ \t]*("?)([\x21\x23-\x7e]+)\1|bearer[ \t]+([\x21\x23-\x7e]+))[ \t]*',
    re.IGNORECASE,
)


def token_from_authorization(value: str) -> Optional[str]:
    """The key in an ``Authorization`` value, or ``None`` if it has no accepted form.

    >>> token_from_authorization("Token token=y_NbAkKc66ryYTWUXYEu")
    'y_NbAkKc66ryYTWUXYEu'
    >>> token_from_authorization('  token TOKEN = "abc" ')
    'abc'
    >>> token_from_authorization("Basic YWxhZGRpbg==") is None
    True
    """
    if len(value) > MAX_AUTHORIZATION_BYTES:
        return None
    m = _AUTHORIZATION.fullmatch(value)
    if m is None:
        return None
    return m.group(2) or m.group(3)


def rest_token(values: Sequence[str]) -> str:
    """The key of a REST request, from all its ``Authorization`` header values."""
    if not values:
        raise missing_key()
    if len(values) > 1:
        raise duplicate_authorization()
    key = token_from_authorization(values[0])
    if key is None:
        raise malformed_authorization()
    return key


def routing_key(body: bytes) -> str:
    """The ``routing_key`` of an Events API v2 body (a JSON object)."""
    if not body.lstrip().startswith(b"{"):
        raise invalid_body("the body must be a JSON object")
    try:
        event = json.loads(body)
    except ValueError:
        raise invalid_body("the body is not valid JSON") from None
    if not isinstance(event, dict):
        raise invalid_body("the body must be a JSON object")
    key = event.get("routing_key")
    if key is None:
        raise missing_routing_key()
    if not isinstance(key, str):
        raise invalid_body("'routing_key' must be one string")
    return key


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
