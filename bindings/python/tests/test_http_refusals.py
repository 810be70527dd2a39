"""Every refusal the Python adapters send is apikeys-http's rendering, byte for
byte: for each case of crates/apikeys-http/tests/refusals.json (written and
checked by the Rust crate's own test), the same situation is set up here and
rendered through apikeys._http (what apikeys.asgi and apikeys.wsgi send);
status, kind, every header in order and the body must be the file's. The
keyring's refusals come from a real keyring set up as the Rust test sets up
its own, so the facts the binding carries across (status, code, message,
reason, retry_after, limit) are checked too."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, MutableMapping, Tuple

import pytest

import apikeys
from apikeys import _http
from apikeys._http import Rejection

ROOT = Path(__file__).resolve().parents[3]
TABLE: Dict[str, Dict[str, Any]] = json.loads(
    (ROOT / "crates" / "apikeys-http" / "tests" / "refusals.json").read_text(encoding="utf-8")
)


def refused(call: Callable[[], object]) -> Rejection:
    with pytest.raises(Rejection) as caught:
        call()
    return caught.value


def refused_by_keyring(call: Callable[[], object]) -> Rejection:
    """The refusal for what a keyring call raises (management calls raise;
    the adapters render an error of authenticate the same way)."""
    with pytest.raises(apikeys.ApiKeyError) as caught:
        call()
    return _http.from_error(caught.value)


def cases() -> Dict[str, Callable[[], Rejection]]:
    kr = apikeys.Keyring()
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    observer = apikeys.Actor("acme", "POBSERVER1", "observer")
    read_only = kr.create_general_key(admin, "read only", read_only=True).secret
    integration = kr.create_integration_key(admin, "PSERVICE1", "Datadog").secret
    legacy = apikeys.Actor("legacy", "PADMIN2", "admin")
    legacy_key = kr.create_general_key(legacy, "old plan").secret
    kr.set_account("legacy", apikeys.AccountSettings(rest_api=False))

    clock = apikeys.ManualClock(datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    per_minute = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(120, 60))
    limited = apikeys.Keyring(clock=clock, rate_limits=per_minute)
    busy = limited.create_general_key(admin, "busy").secret
    for _ in range(120):
        limited.authenticate(busy)

    def stand_in_rate_limited() -> Rejection:
        # As a stand-in keyring raises it (tests/http_support.Limited), with the core's message.
        e = apikeys.RateLimited("rate limit of 960 requests exceeded; retry in 1500 ms")
        e.retry_after = 1.5
        e.limit = 960
        return _http.from_error(e)

    def store() -> Rejection:
        e = apikeys.StoreError("store unavailable: connection to 10.0.0.1 refused")
        e.reason = "store unavailable: connection to 10.0.0.1 refused"
        return _http.from_error(e)

    def auth(token: str, api: str, method: str = "GET", scope: Any = None) -> Callable[[], Rejection]:
        return lambda: refused(lambda: _http.authenticate(kr, token, api, method, scope))

    deep = b'{"p":' + b"[" * 200 + b"1" + b"]" * 200 + b"}"
    return {
        "unauthorized": auth("not-a-key", "rest"),
        "wrong_api_rest_key_on_events": auth(read_only, "events", "POST"),
        "wrong_api_events_key_on_rest": auth(integration, "rest"),
        "forbidden": auth(read_only, "rest", "POST", "incidents.write"),
        "plan_restricted": auth(legacy_key, "rest"),
        "invalid_input": auth(read_only, "rest", "GET", "incidents"),
        "not_permitted": lambda: refused_by_keyring(lambda: kr.create_general_key(observer, "nope")),
        "not_found": lambda: refused_by_keyring(lambda: kr.get(admin, "P0000000000000")),
        "rate_limited": stand_in_rate_limited,
        "rate_limited_whole_minute": lambda: refused(lambda: _http.authenticate(limited, busy, "rest", "GET", None)),
        "store": store,
        "internal": lambda: _http.from_error(apikeys.ApiKeyError("the random source failed")),
        "missing_key": lambda: refused(lambda: _http.rest_token([])),
        "malformed_authorization": lambda: refused(lambda: _http.rest_token([b"Basic abc"])),
        "duplicate_authorization": lambda: refused(lambda: _http.rest_token([b"Bearer a", b"Bearer b"])),
        "duplicate_authorization_joined": lambda: refused(lambda: _http.joined_rest_token("Bearer a,Bearer b")),
        "body_too_large": lambda: refused(lambda: _http.declared_length("65537", 65536)),
        "invalid_content_length": lambda: refused(lambda: _http.declared_length(b"-1", 65536)),
        "not_an_object": lambda: refused(lambda: _http.routing_key(b"[1]")),
        "not_json": lambda: refused(lambda: _http.routing_key(b'{"routing_key":')),
        "routing_key_not_a_string": lambda: refused(lambda: _http.routing_key(b'{"routing_key":12}')),
        "missing_routing_key": lambda: refused(lambda: _http.routing_key(b'{"event_action":"trigger"}')),
        "too_deep": lambda: refused(lambda: _http.routing_key(deep)),
        "unreadable_body": _http.unreadable_body,
        "misconfigured": lambda: _http.misconfigured("the route declares two scopes"),
    }


def rendered(r: Rejection) -> Dict[str, Any]:
    return {
        "status": r.status,
        "kind": r.kind,
        "headers": [f"{n}: {v}" for n, v in r.headers()],
        "body": r.body().decode(),
    }


def expected(name: str) -> Dict[str, Any]:
    want = dict(TABLE[name])
    if name == "internal":
        # The Python binding raises the core's internal errors as the base
        # ApiKeyError, which names no kind: the adapters call it "internal".
        want["kind"] = "internal"
    return want


def test_every_case_of_the_table_is_set_up_here() -> None:
    assert sorted(cases()) == sorted(TABLE)


@pytest.mark.parametrize("name", sorted(TABLE))
def test_each_refusal_is_the_rust_rendering(name: str) -> None:
    r = cases()[name]()
    assert rendered(r) == expected(name)
    assert r.code == json.loads(r.body())["error"]["code"]
    assert r.message == json.loads(r.body())["error"]["message"]


def test_a_refusal_carries_its_reason_and_retry_but_never_an_internal_detail() -> None:
    made = cases()
    store = made["store"]()
    assert "10.0.0.1" in store.reason and b"10.0.0.1" not in store.body()
    assert made["unauthorized"]().reason.startswith("malformed key")
    limited = made["rate_limited"]()
    assert (limited.retry_after, limited.kind) == (1.5, "rate_limited")
    assert made["forbidden"]().retry_after is None
    # The helpers that render without the keyring agree with those that read a request.
    assert rendered(_http.body_too_large(65536)) == expected("body_too_large")


def _asgi_answer(headers: List[Tuple[bytes, bytes]]) -> Tuple[int, List[str], bytes]:
    """What apikeys.asgi sends for a GET /incidents with these headers."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app is not reached")

    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "GET", "path": "/incidents", "headers": headers, "query_string": b""}
    from apikeys.asgi import ApiKeyMiddleware

    asyncio.run(ApiKeyMiddleware(app, apikeys.Keyring())(scope, receive, send))
    start, body = sent
    return start["status"], [f"{k.decode()}: {v.decode()}" for k, v in start["headers"]], body["body"]


def _wsgi_answer(environ: Dict[str, Any]) -> Tuple[int, List[str], bytes]:
    """What apikeys.wsgi sends for a GET /incidents with this environ."""
    from apikeys.wsgi import ApiKeyMiddleware

    def app(environ: Any, start_response: Any) -> List[bytes]:
        raise AssertionError("the app is not reached")

    got: Dict[str, Any] = {}

    def start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, headers

    body = b"".join(ApiKeyMiddleware(app, apikeys.Keyring())({"REQUEST_METHOD": "GET", "PATH_INFO": "/incidents", **environ}, start_response))
    return int(got["status"].split()[0]), [f"{k}: {v}" for k, v in got["headers"]], body


@pytest.mark.parametrize(
    "name, asgi_headers, wsgi_environ",
    [
        ("missing_key", [], {}),
        ("malformed_authorization", [(b"authorization", b"Basic abc")], {"HTTP_AUTHORIZATION": "Basic abc"}),
        (
            "duplicate_authorization",
            [(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")],
            {"HTTP_AUTHORIZATION": "Bearer a,Bearer b"},
        ),
        ("unauthorized", [(b"authorization", b"Token token=not-a-key")], {"HTTP_AUTHORIZATION": "Token token=not-a-key"}),
    ],
)
def test_what_the_middlewares_send_is_the_table(
    name: str, asgi_headers: List[Tuple[bytes, bytes]], wsgi_environ: Dict[str, Any]
) -> None:
    want = TABLE[name]
    for status, headers, body in (_asgi_answer(asgi_headers), _wsgi_answer(wsgi_environ)):
        assert (status, headers, body.decode()) == (want["status"], want["headers"], want["body"])
