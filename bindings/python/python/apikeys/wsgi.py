"""WSGI middleware (Flask, any WSGI app) that checks PagerDuty-style keys.

.. code-block:: python

    from flask import Flask, request
    import apikeys
    from apikeys.wsgi import protect_flask, requires_scope

    keyring = apikeys.Keyring()
    app = Flask(__name__)

    @app.post("/incidents")
    @requires_scope("incidents.write")
    def create():
        return {"account": request.environ["apikeys.principal"].account}, 201

    protect_flask(app, keyring)

- REST requests: the key from ``Authorization: Token token=<key>`` (or
  ``Bearer``), the method from the request, the scope from the route (the
  :func:`requires_scope` decorator on a Flask view, or the ``scope_for``
  callable); without one the request stands for the broadest scope.
- Events requests (paths in ``events_paths``): the ``routing_key`` of the JSON
  body, read up to ``max_event_bytes``; the application reads the same body.
- The :class:`apikeys.Principal` goes to ``environ["apikeys.principal"]``.
- Each check passes ``REMOTE_ADDR`` and ``PATH_INFO``, so the key remembers
  where it was last used from (:attr:`apikeys.KeyRecord.last_used_from`).
- Refusals answer PagerDuty's error body; answers to a known key carry the
  ``ratelimit-*`` headers when the keyring reports its limits.
"""

from __future__ import annotations

import io
import logging
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from . import ApiKeyError, Keyring
from ._http import (
    DEFAULT_MAX_EVENT_BYTES,
    SCOPE_ATTR,
    Rejection,
    _declared_length,
    _checks_natively,
    _events_check,
    _joined_rest_check,
    _joined_rest_token,
    body_too_large,
    declared_length,
    from_error,
    misconfigured,
    rate_limit_headers,
    routing_key,
)
from .asgi import ScopeDeclarationError, requires_scope

__all__ = [
    "ApiKeyMiddleware",
    "Rejection",
    "ScopeDeclarationError",
    "protect_flask",
    "requires_scope",
    "PRINCIPAL_KEY",
]

_log = logging.getLogger("apikeys.wsgi")

#: The environ key holding the :class:`apikeys.Principal`.
PRINCIPAL_KEY = "apikeys.principal"

Environ = Mapping[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Any, StartResponse], Iterable[bytes]]


class ApiKeyMiddleware:
    """WSGI middleware; see the module's documentation."""

    def __init__(
        self,
        app: WSGIApp,
        keyring: Keyring,
        *,
        events_paths: Iterable[str] = ("/v2/enqueue",),
        public_paths: Iterable[str] = (),
        scope_for: Optional[Callable[[Any], Optional[str]]] = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.app = app
        self.keyring = keyring
        self.events_paths = frozenset(events_paths)
        self.public_paths = frozenset(public_paths)
        self.scope_for = scope_for
        self.max_event_bytes = max_event_bytes
        # Principals carry a rate-limit status only from a keyring with rate
        # limits (fixed when it is made). A stand-in that does not say is asked every time.
        self._rate_limited = bool(getattr(keyring, "has_rate_limits", True))
        # An apikeys.Keyring: one native call reads the request and checks
        # the key (Events: _http_events_check; REST: _http_joined_rest_check);
        # a stand-in keyring is called as before.
        self._inline = _checks_natively(keyring)

    @property
    def scope_for(self) -> Optional[Callable[[Any], Optional[str]]]:
        """The callable that gives a request's scope (``None``: no route
        scopes). Setting it also sets which cache the native check probes."""
        return self._scoping[0]

    @scope_for.setter
    def scope_for(self, scope_for: Optional[Callable[[Any], Optional[str]]]) -> None:
        # The callable and flask_scope_resolver's cache (when keyed by method
        # and path; the native check probes it and asks scope_for only on a
        # miss) in one attribute, read once per request: a scope_for set
        # later is asked, never the old resolver's cache.
        self._scoping: Tuple[Optional[Callable[[Any], Optional[str]]], Optional[Dict[Tuple[str, ...], str]]] = (
            scope_for,
            scope_for.route_scopes if isinstance(scope_for, _FlaskScopeFor) else None,
        )

    def __call__(self, environ: Any, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in self.public_paths:
            return self.app(environ, start_response)
        # Where the request came from, for the key's last use (the path
        # within the application: PATH_INFO, as read above).
        address = environ.get("REMOTE_ADDR")
        try:
            try:
                if path in self.events_paths:
                    length = environ.get("CONTENT_LENGTH")
                    stream = environ.get("wsgi.input")
                    if length and stream is not None:
                        # The usual request, read here (what _read_body does
                        # first, without its frame and the wrapper's).
                        n = _declared_length(length, self.max_event_bytes)
                        if not isinstance(n, int):
                            raise Rejection(n)
                        body = stream.read(n)
                    else:
                        body = self._read_body(environ)
                    environ["wsgi.input"] = io.BytesIO(body)
                    environ["CONTENT_LENGTH"] = str(len(body))
                    # The stream handed on ends with the body: an application
                    # may read it to the end (PEP 3333's extension, which
                    # werkzeug honours by reading it without its LimitedStream).
                    environ["wsgi.input_terminated"] = True
                    if self._inline:
                        # An apikeys.Keyring: the routing key parsed and
                        # checked in one native call, the key never made a str.
                        who = _events_check(self.keyring, body, address, path)
                        if isinstance(who, tuple):
                            raise Rejection(who)
                    else:
                        who = self.keyring.authenticate(routing_key(body), "events", remote_address=address, path=path)
                elif self._inline:
                    # The header read and the key checked in one native call
                    # (the key never made a str); the route's scope is found
                    # only once the header gave a key, as below (in
                    # flask_scope_resolver's cache, or by asking scope_for).
                    scope_for, route_scopes = self._scoping
                    who = _joined_rest_check(
                        self.keyring,
                        environ.get("HTTP_AUTHORIZATION"),
                        environ.get("REQUEST_METHOD", "GET"),
                        self._scope if scope_for is not None else None,
                        environ,
                        address,
                        path,
                        route_scopes,
                    )
                    if isinstance(who, tuple):
                        raise Rejection(who)
                else:
                    # WSGI servers join repeated headers with commas:
                    # joined_rest_token tells one header from several.
                    token = _joined_rest_token(environ.get("HTTP_AUTHORIZATION"))
                    if not isinstance(token, str):
                        raise Rejection(token)
                    scope = self._scope(environ)
                    who = self.keyring.authenticate(
                        token, "rest", environ.get("REQUEST_METHOD", "GET"), scope, remote_address=address, path=path
                    )
            except ApiKeyError as e:
                raise from_error(e) from None
        except Rejection as r:
            start_response(_status_line(r.status), r.headers())
            return [r.body()]
        environ[PRINCIPAL_KEY] = who
        # A keyring without rate limits gives principals without a status:
        # no headers to add, no call to find that out.
        extra = rate_limit_headers(who) if self._rate_limited else None
        if not extra:
            return self.app(environ, start_response)

        def start(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, list(headers) + extra, exc_info) if exc_info else start_response(
                status, list(headers) + extra
            )

        return self.app(environ, start)

    def _scope(self, environ: Any) -> Optional[str]:
        """The scope ``scope_for`` gives the request; a 500 :class:`Rejection`
        (the route named in the log) if it raises or gives a non-string."""
        scope_for = self._scoping[0]
        if scope_for is None:
            return None
        try:
            scope = scope_for(environ)
        except ScopeDeclarationError as e:
            _log.error("apikeys.wsgi: %s; answering 500", e)
            raise misconfigured(str(e)) from None
        except Exception as e:
            where = _where(environ)
            _log.exception("apikeys.wsgi: %s raised", where)
            raise misconfigured(f"{where} raised {type(e).__name__}") from None
        if scope is not None and not isinstance(scope, str):
            reason = f"{_where(environ)} returned {type(scope).__name__}; it must return a str or None"
            _log.error("apikeys.wsgi: %s; answering 500", reason)
            raise misconfigured(reason)
        return scope

    def _read_body(self, environ: Any) -> bytes:
        limit = self.max_event_bytes
        length = environ.get("CONTENT_LENGTH") or ""
        stream = environ.get("wsgi.input")
        if length:
            # Digits only: a sign ("-1" would read the whole stream), an
            # exponent or a list of values is a 400.
            n = declared_length(length, limit)
            if stream is None:
                return b""
            body: bytes = stream.read(n)
            return body
        if stream is None:
            return b""
        if environ.get("wsgi.input_terminated"):
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise body_too_large(limit)
            return body
        return b""


_CACHE_LIMIT = 4096
_NO_SCOPE = ""


def _where(environ: Any) -> str:
    """The request, as a log line names it (made only when something is wrong)."""
    return f"scope_for for {environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')!r}"


def flask_scope_resolver(flask_app: Any) -> Callable[[Any], Optional[str]]:
    """A ``scope_for`` that finds the Flask view of a request and reads its :func:`requires_scope`.

    Matching a request against the URL map costs more than checking its key
    (about 7 µs against 0.3 µs), so each answer is kept per method, host,
    script root and path (bounded: paths carry ids). Flask refuses new routes
    once it has served a request, so a kept answer stays right.
    """
    return _FlaskScopeFor(flask_app)


class _FlaskScopeFor:
    """What :func:`flask_scope_resolver` returns: a ``scope_for`` with its cache."""

    __slots__ = ("_app", "_by_host", "_cache", "route_scopes")

    def __init__(self, flask_app: Any) -> None:
        self._app = flask_app
        # Without host matching, the URL map matches a request on its method and
        # path alone (bind_to_environ takes the request's own host as the server
        # name, so every request is in the default subdomain): the key needs no more.
        self._by_host = bool(getattr(flask_app.url_map, "host_matching", True))
        self._cache: Dict[Tuple[str, ...], str] = {}
        #: The cache when it is keyed by ``(REQUEST_METHOD, PATH_INFO)`` (no
        #: host matching), else None: the middleware's native check probes it
        #: itself and calls this object only for a request not in it.
        self.route_scopes: Optional[Dict[Tuple[str, ...], str]] = None if self._by_host else self._cache

    def _resolve(self, environ: Any) -> Optional[str]:
        flask_app = self._app
        try:
            rule, _ = flask_app.url_map.bind_to_environ(environ).match(return_rule=True)
        except Exception:  # no route, wrong method: the application answers that
            return None
        view = flask_app.view_functions.get(rule.endpoint)
        s = getattr(view, SCOPE_ATTR, None)
        if s is not None and not isinstance(s, str):
            raise ScopeDeclarationError(
                f"the view of route {rule.rule!r} ({rule.endpoint}) declares a {type(s).__name__} scope; "
                "it must be a str"
            )
        return s

    def __call__(self, environ: Any) -> Optional[str]:
        key: Tuple[str, ...] = (
            (
                environ.get("REQUEST_METHOD", ""),
                environ.get("HTTP_HOST") or environ.get("SERVER_NAME", ""),
                environ.get("SCRIPT_NAME", ""),
                environ.get("PATH_INFO", ""),
            )
            if self._by_host
            else (environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        )
        cache = self._cache
        found = cache.get(key)
        if found is None:
            found = self._resolve(environ) or _NO_SCOPE
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = found
        return found or None


def protect_flask(flask_app: Any, keyring: Keyring, **options: Any) -> ApiKeyMiddleware:
    """Put :class:`ApiKeyMiddleware` in front of a Flask app, with scopes from its views."""
    mw = ApiKeyMiddleware(flask_app.wsgi_app, keyring, scope_for=flask_scope_resolver(flask_app), **options)
    flask_app.wsgi_app = mw
    return mw


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _status_line(status: int) -> str:
    return f"{status} {_REASONS.get(status, 'Error')}"
