# mypy: disable-error-code="import-not-found, untyped-decorator"
"""Every adapter reads a request the same way: the Events body and the
Authorization header are parsed by the Rust adapters' code (exposed as
apikeys.events_routing_key and apikeys.token_from_authorization), so
apikeys.asgi (uvicorn) and apikeys.wsgi (werkzeug) answer each body and
header exactly as that code decides, over a real socket. And the Events
body limit holds whatever the Content-Length header says."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, Dict, Iterator, List, MutableMapping, Optional, Tuple

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("flask")
pytest.importorskip("uvicorn")

from fastapi import FastAPI, Request  # noqa: E402

import apikeys  # noqa: E402
from apikeys.asgi import ApiKeyMiddleware as AsgiMiddleware  # noqa: E402

from http_support import Answer, Keys, ThreadedServer, Uvicorn, Werkzeug, call, make_keys, refused, send  # noqa: E402

Served = Tuple[Keys, Dict[str, ThreadedServer]]


def asgi_app(keyring: apikeys.Keyring) -> Any:
    """Handlers that do not read the body: what the middleware decided is
    what the client is answered. The default Events body limit (512 KiB)."""
    app = FastAPI()
    app.add_middleware(AsgiMiddleware, keyring=keyring, public_paths=["/health"])

    @app.post("/v2/enqueue", status_code=202)
    async def enqueue(request: Request) -> Dict[str, Any]:
        return {"target": request.state.apikey.target}

    @app.get("/incidents")
    async def incidents(request: Request) -> Dict[str, Any]:
        return {"incidents": []}

    @app.get("/health")
    async def health() -> str:
        return "ok"

    return app


def wsgi_app(keyring: apikeys.Keyring) -> Any:
    from flask import Flask, request

    from apikeys.wsgi import protect_flask

    app = Flask("parsers")

    @app.post("/v2/enqueue")
    def enqueue() -> Any:
        return {"target": request.environ["apikeys.principal"].target}, 202

    @app.get("/incidents")
    def incidents() -> Any:
        return {"incidents": []}

    @app.get("/health")
    def health() -> Any:
        return "ok"

    protect_flask(app, keyring, public_paths=["/health"], max_event_bytes=EVENT_LIMIT)
    return app


EVENT_LIMIT = 512 * 1024


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    keys = make_keys()
    servers: Dict[str, ThreadedServer] = {
        "asgi": Uvicorn(asgi_app(keys.keyring)),
        "wsgi": Werkzeug(wsgi_app(keys.keyring)),
    }
    try:
        yield keys, servers
    finally:
        for s in servers.values():
            s.stop()


def verdict(body: bytes) -> Tuple[str, Any]:
    """What the shared parser decides: ("key", the key) or ("refused", (400, 2001, message))."""
    try:
        return "key", apikeys.events_routing_key(body)
    except apikeys.InvalidInput as e:
        assert (e.status, e.code) == (400, 2001)
        assert e.field in ("body", "routing_key") and e.reason in ("invalid_body", "missing_routing_key")
        return "refused", (e.status, e.code, str(e))


def bodies(key: str) -> Dict[str, bytes]:
    k = key.encode()
    deep = 100_000
    return {
        "valid": b'{"routing_key":"%s","event_action":"trigger","payload":{"summary":"s"}}' % k,
        "escaped key": b'{"routing_key":"\\u00%s%s","payload":{"summary":"s"}}' % (b"%x" % k[0], k[1:]),
        "nested 100000 deep": b'{"routing_key":"%s","payload":%s1%s}' % (k, b"[" * deep, b"]" * deep),
        "nested objects": b'{"routing_key":"%s","p":%s}' % (k, b'{"a":' * (deep // 2) + b"1" + b"}" * (deep // 2)),
        "nested 128 deep": b'{"routing_key":"%s","p":%s1%s}' % (k, b"[" * 128, b"]" * 128),
        "nested 127 deep": b'{"routing_key":"%s","p":%s1%s}' % (k, b"[" * 127, b"]" * 127),
        "brackets in strings": b'{"routing_key":"%s","p":"%s\\"%s"}' % (k, b"[" * 1000, b"{" * 1000),
        "NaN": b'{"routing_key":"%s","payload":{"n":NaN}}' % k,
        "Infinity": b'{"routing_key":"%s","payload":{"n":Infinity}}' % k,
        "-Infinity": b'{"routing_key":"%s","payload":{"n":-Infinity}}' % k,
        "1e999": b'{"routing_key":"%s","payload":{"n":1e999}}' % k,
        "huge integer": b'{"routing_key":"%s","payload":{"n":%s}}' % (k, b"9" * 5000),
        "UTF-16 with BOM": ('{"routing_key":"%s"}' % key).encode("utf-16"),
        "UTF-8 BOM": b'\xef\xbb\xbf{"routing_key":"%s"}' % k,
        "invalid UTF-8 in a string": b'{"routing_key":"%s","payload":{"summary":"\xff\xfe"}}' % k,
        "invalid UTF-8 in the key": b'{"routing_key":"\xc3%s"}' % k[1:],
        "lone surrogate escape": b'{"routing_key":"%s","payload":{"summary":"\\ud800"}}' % k,
        "a JSON string": b'"%s"' % k,
        "a JSON array": b'["%s"]' % k,
        "a JSON number": b"42",
        "null": b"null",
        "routing_key a number": b'{"routing_key":42}',
        "routing_key an object": b'{"routing_key":{"k":"%s"}}' % k,
        "routing_key an array": b'{"routing_key":["%s"]}' % k,
        "routing_key null": b'{"routing_key":null}',
        "routing_key missing": b'{"event_action":"trigger"}',
        "duplicate routing_key": b'{"routing_key":"%s","routing_key":"%s"}' % (k, k),
        "trailing garbage": b'{"routing_key":"%s"} x' % k,
        "trailing comma": b'{"routing_key":"%s",}' % k,
        "empty": b"",
        "whitespace then object": b' \n\t{"routing_key":"%s"}' % k,
    }


def post(port: int, body: bytes, headers: Optional[List[str]] = None) -> Answer:
    return call(port, "POST", "/v2/enqueue", headers or [], body)


def test_the_shared_parser_decides_as_the_rust_adapter_does(served: Served) -> None:
    """Verdicts of the shared parser that do not depend on this package: the
    Rust adapter's rules (crates/apikeys-http/src/credentials.rs)."""
    keys, _ = served
    b = bodies(keys.integration)
    assert verdict(b["valid"]) == ("key", keys.integration)
    assert verdict(b["escaped key"]) == ("key", keys.integration)
    assert verdict(b["whitespace then object"]) == ("key", keys.integration)
    for name in ("1e999", "huge integer", "nested 127 deep", "brackets in strings"):
        # Fields other than routing_key are only checked to be valid JSON.
        assert verdict(b[name]) == ("key", keys.integration), name
    not_json = (400, 2001, "the body is not valid JSON")
    too_deep = (400, 2001, "the body nests arrays and objects more than 128 levels deep")
    not_object = (400, 2001, "the body must be a JSON object")
    not_string = (400, 2001, "'routing_key' must be one string")
    missing = (400, 2001, "the event has no 'routing_key' (the integration or routing key)")
    for name, want in {
        "nested 100000 deep": too_deep,
        "nested objects": too_deep,
        "nested 128 deep": too_deep,
        "NaN": not_json,
        "Infinity": not_json,
        "-Infinity": not_json,
        "invalid UTF-8 in a string": not_json,
        "invalid UTF-8 in the key": not_json,
        "trailing garbage": not_json,
        "trailing comma": not_json,
        "UTF-16 with BOM": not_object,
        "UTF-8 BOM": not_object,
        "a JSON string": not_object,
        "a JSON array": not_object,
        "a JSON number": not_object,
        "null": not_object,
        "empty": not_object,
        "routing_key a number": not_string,
        "routing_key an object": not_string,
        "routing_key an array": not_string,
        "duplicate routing_key": not_string,
        "routing_key null": missing,
        "routing_key missing": missing,
    }.items():
        assert verdict(b[name]) == ("refused", want), name
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.events_routing_key(b["routing_key missing"])
    assert e.value.field == "routing_key"
    with pytest.raises(TypeError, match="'body'"):
        apikeys.events_routing_key("{}")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'body'"):
        apikeys.events_routing_key(bytearray(b"{}"))  # type: ignore[arg-type]


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_each_events_body_is_answered_as_the_shared_parser_decides(served: Served, adapter: str) -> None:
    keys, servers = served
    port = servers[adapter].port
    for name, body in bodies(keys.integration).items():
        a = post(port, body)
        kind, value = verdict(body)
        if kind == "key":
            # The key the parser read was checked, and the handler (which
            # does not read the body) took the event.
            assert value == keys.integration, name
            assert a.status == 202 and a.json() == {"target": "PSERVICE1"}, (name, a.whole())
        else:
            status, code, message = value
            got = refused(keys, a, status, code)
            assert got == message, (name, a.whole())
    assert call(port, "GET", "/health").status == 200


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_deep_nesting_up_to_the_limit_is_a_400_not_a_500(served: Served, adapter: str) -> None:
    keys, servers = served
    port = servers[adapter].port
    k = keys.integration.encode()
    for deep in (1_000, 100_000, 260_000):
        body = b'{"routing_key":"%s","payload":%s1%s}' % (k, b"[" * deep, b"]" * deep)
        assert len(body) <= EVENT_LIMIT
        msg = refused(keys, post(port, body), 400, 2001)
        assert msg == "the body nests arrays and objects more than 128 levels deep"
    assert post(port, b'{"routing_key":"%s"}' % k).status == 202


# Content-Length: WSGI reads exactly what the header says, so it must be a number.


def raw_post(port: int, length_headers: List[str], body: bytes) -> Optional[Answer]:
    head = "POST /v2/enqueue HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
    head += "".join(f"{h}\r\n" for h in length_headers) + "\r\n"
    return send(port, head.encode("utf-8") + body)


def test_wsgi_negative_content_length_does_not_lift_the_body_limit(served: Served) -> None:
    keys, servers = served
    port = servers["wsgi"].port
    k = keys.integration.encode()
    big = b'{"routing_key":"%s","payload":{"summary":"%s"}}' % (k, b"x" * (20 * 1024 * 1024))
    a = raw_post(port, ["Content-Length: -1"], big)
    assert a is not None
    msg = refused(keys, a, 400, 2001)
    assert "Content-Length" in msg
    call(port, "GET", "/health")


@pytest.mark.parametrize(
    "value",
    ["-1", "-0", "+5", "1e3", "0x10", "1_0", "12.0", "١٢", "5, 5", "5,5", "abc", "9" * 29, "9" * 5000],
)
def test_wsgi_content_length_must_be_digits(served: Served, value: str) -> None:
    keys, servers = served
    port = servers["wsgi"].port
    body = b'{"routing_key":"%s"}' % keys.integration.encode()
    a = raw_post(port, [f"Content-Length: {value}"], body)
    assert a is not None, value
    msg = refused(keys, a, 400, 2001)
    if value.strip().isascii() and value.strip().isdigit():
        assert str(EVENT_LIMIT) in msg, (value, msg)  # a huge number: over the limit
    else:
        assert msg == "the Content-Length header is not a number", (value, msg)
    assert call(port, "GET", "/health").status == 200


def test_wsgi_content_length_with_spaces_and_duplicates(served: Served) -> None:
    keys, servers = served
    port = servers["wsgi"].port
    body = b'{"routing_key":"%s"}' % keys.integration.encode()
    # Spaces around the number are not part of it.
    a = raw_post(port, [f"Content-Length:  {len(body)} "], body)
    assert a is not None and a.status == 202, a and a.whole()
    # Two headers: werkzeug keeps the last; a negative or huge one is refused.
    for pair in ([f"Content-Length: {len(body)}", "Content-Length: -1"],
                 [f"Content-Length: {len(body)}", "Content-Length: 99999999"]):
        a = raw_post(port, pair, body)
        assert a is not None
        refused(keys, a, 400, 2001)


@pytest.mark.parametrize("value", [b"-1", b"+5", b"1e3", b"5, 5", b"abc", b"99999999999999999999999"])
def test_asgi_content_length_must_be_digits(value: bytes) -> None:
    """uvicorn's own parser refuses such values before the app; the
    middleware checks them too (another server may pass them on)."""
    keys = make_keys()
    reached: List[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    mw = AsgiMiddleware(app, keys.keyring)
    body = b'{"routing_key":"%s"}' % keys.integration.encode()
    status, out = asyncio.run(_post_asgi(mw, [(b"content-length", value)], body))
    assert status == 400 and not reached
    v = json.loads(out)
    assert v["error"]["code"] == 2001
    status, _ = asyncio.run(_post_asgi(mw, [(b"content-length", b" %d " % len(body))], body))
    assert status == 200 and reached


async def _post_asgi(mw: Any, headers: List[Tuple[bytes, bytes]], body: bytes) -> Tuple[int, bytes]:
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send_(message: Dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v2/enqueue", "headers": headers, "root_path": ""}
    await mw(scope, receive, send_)
    if not sent:
        return 200, b""
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


# Authorization: one parser, one answer.


def header_cases(key: str) -> List[List[str]]:
    return [
        [f"Authorization: Token token={key}"],
        [f"Authorization: Token token={key}, token={key}"],
        ["Authorization: Token token=a, token=b"],
        [f"Authorization: Token token={key},extra"],
        [f"Authorization: Bearer {key}, Bearer {key}"],
        [f"Authorization: Token token={key}", f"Authorization: Token token={key}"],
        [f"Authorization: Token token={key}", f"Authorization: Bearer {key}"],
        [f'Authorization: Token token="{key}"'],
        [f"Authorization: token  TOKEN = {key} "],
        [f"Authorization: Token token={key}\t"],
        ["Authorization: Token token="],
        ["Authorization: ,"],
        ["Authorization: "],
        [f"Authorization: Basic {key}"],
        [f"Authorization: Token token=\"{key}"],
        [],
    ]


def test_asgi_and_wsgi_answer_each_authorization_header_alike(served: Served) -> None:
    keys, servers = served
    for headers in header_cases(keys.full):
        answers = {n: call(s.port, "GET", "/incidents", headers) for n, s in servers.items()}
        got = {n: (a.status, a.error()[0] if a.status >= 400 else 0) for n, a in answers.items()}
        assert got["asgi"] == got["wsgi"], (headers, got)
        for a in answers.values():
            assert keys.full.encode() not in a.body
        if len(headers) == 1:
            value = headers[0].split(":", 1)[1].strip()
            expected = apikeys.token_from_authorization(value)
            if expected is None:
                assert got["asgi"] == (401, 2006), (headers, got)
            else:
                assert got["asgi"][0] in ((200, 0) if expected == keys.full else (401,)), (headers, got)
    # Two headers: 400 from both (werkzeug joins them with a comma).
    two = [f"Authorization: Token token={keys.full}", f"Authorization: Bearer {keys.read_only}"]
    for s in servers.values():
        refused(keys, call(s.port, "GET", "/incidents", two), 400, 2001)
    one = [f"Authorization: Token token={keys.full}, token={keys.full}"]
    for s in servers.values():
        refused(keys, call(s.port, "GET", "/incidents", one), 401, 2006)


def test_token_from_authorization_is_the_rust_parser() -> None:
    key = "y_NbAkKc66ryYTWUXYEu"
    t: Callable[[Any], Optional[str]] = apikeys.token_from_authorization
    assert t(f"Token token={key}") == key
    assert t(f"Token token={key}".encode()) == key
    assert t(f'  token TOKEN = "{key}" ') == key
    assert t(f"Bearer {key}") == key
    for bad in ["", "Basic abc", "Token token=", f"Token {key}", f"Token token={key} extra",
                "Token token=a, token=b", f"Token token={'a' * 1100}", "Token token=ab\ud800",
                "Token token=clé", b"Token token=ab\xff"]:
        assert t(bad) is None, bad
    assert t("Token token=a,b") == "a,b"  # a comma may be in the value; the keyring refuses it
    with pytest.raises(TypeError, match="'value'"):
        t(5)


def two_calls(keyring: apikeys.Keyring, body: bytes, address: Optional[str], path: Optional[str]) -> Any:
    """The Events check as the adapters made it before ``_http_events_check``:
    the body's routing key, then ``Keyring.authenticate``, a refusal rendered
    from the exception it raised."""
    from apikeys import _apikeys as native  # type: ignore[attr-defined]

    key = native._http_routing_key(body)
    if isinstance(key, tuple):
        return key
    try:
        return keyring.authenticate(key, "events", remote_address=address, path=path)
    except apikeys.ApiKeyError as e:
        return native._http_refusal_for(e)


def test_one_native_call_answers_as_the_parse_and_the_check_did() -> None:
    """``_http_events_check`` (the routing key parsed and checked in one call,
    the key never made a str) gives what the two calls gave: the same
    principal, or the same refusal tuple byte for byte, for every body of the
    corpus and every kind of key, and the key remembers the same place."""
    from apikeys import _apikeys as native  # type: ignore[attr-defined]

    keys = make_keys()
    disabled = keys.keyring.create_general_key(keys.admin, "off")
    keys.keyring.disable(keys.admin, disabled.record.id)
    corpus: Dict[str, bytes] = {}
    for who, key in [("events", keys.integration), ("rest", keys.full), ("disabled", disabled.secret), ("unknown", "R" * 32)]:
        for name, body in bodies(key).items():
            corpus[f"{who}: {name}"] = body
    for name, body in corpus.items():
        for address, path in [(None, None), ("192.0.2.7", "/v2/enqueue"), ("\ud800", None)]:
            one = native._http_events_check(keys.keyring, body, address, path)
            two = two_calls(keys.keyring, body, address, path)
            if isinstance(two, tuple):
                assert one == two, name
            else:
                assert not isinstance(one, tuple), (name, one)
                assert (one.key_id, one.account, one.kind, one.target) == (two.key_id, two.account, two.kind, two.target), name
    # Where the key was last used: the place the one call passed.
    fresh = make_keys()
    who = native._http_events_check(fresh.keyring, bodies(fresh.integration)["valid"], "198.51.100.9", "/v2/enqueue")
    [record] = [r for r in fresh.keyring.list(fresh.admin) if r.id == who.key_id]
    assert record.last_used_from is not None
    assert (record.last_used_from.remote_address, record.last_used_from.path) == ("198.51.100.9", "/v2/enqueue")
    # Bad arguments are a TypeError, not a crash.
    for bad in [("not a keyring", b"{}"), (keys.keyring, "a str body"), (keys.keyring, None)]:
        with pytest.raises(TypeError):
            native._http_events_check(*bad)


def test_wsgi_hands_on_the_body_in_a_stream_that_ends_with_it() -> None:
    """``apikeys.wsgi`` reads the Events body and hands the application a
    stream of exactly that body: its length in ``CONTENT_LENGTH`` and
    ``wsgi.input_terminated`` set (the stream may be read to its end, which
    werkzeug then does without its ``LimitedStream``), whatever the server
    sent; a refused body reaches no application."""
    import io

    from apikeys.wsgi import ApiKeyMiddleware as WsgiMiddleware

    keys = make_keys()
    seen: List[Tuple[bytes, Any, Any]] = []

    def app(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        seen.append((environ["wsgi.input"].read(), environ["CONTENT_LENGTH"], environ.get("wsgi.input_terminated")))
        start_response("202 Accepted", [])
        return [b""]

    mw = WsgiMiddleware(app, keys.keyring)
    body = bodies(keys.integration)["valid"]
    statuses: List[str] = []
    for length, extra, sent in [
        (str(len(body)), {}, body + b"trailing bytes of the next request"),
        (" %d " % len(body), {}, body),
        ("", {"wsgi.input_terminated": True}, body),
    ]:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v2/enqueue",
            "CONTENT_LENGTH": length,
            "wsgi.input": io.BytesIO(sent),
            **extra,
        }
        mw(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses == ["202 Accepted"] * 3
    assert seen == [(body, str(len(body)), True)] * 3
    # Refused: nothing reaches the application.
    seen.clear()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v2/enqueue", "CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")}
    mw(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert statuses[-1].startswith("400") and seen == []


def test_asgi_replays_the_body_once_then_hands_over_to_the_server() -> None:
    """The application of an Events request reads the body the middleware
    read: one ``http.request`` message with the whole body (however many the
    server sent), then whatever the server's ``receive`` gives next."""
    keys = make_keys()
    body = bodies(keys.integration)["valid"]
    got: List[List[Dict[str, Any]]] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        got.append([dict(await receive()), dict(await receive())])
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = AsgiMiddleware(app, keyring=keys.keyring)
    scope = {"type": "http", "method": "POST", "path": "/v2/enqueue", "headers": [(b"content-length", b"%d" % len(body))]}
    half = len(body) // 2
    cases: List[List[Dict[str, Any]]] = [
        [{"type": "http.request", "body": body}],
        [{"type": "http.request", "body": body, "more_body": False}],
        [{"type": "http.request", "body": bytearray(body), "more_body": False}],
        [{"type": "http.request", "body": body[:half], "more_body": True}, {"type": "http.request", "body": body[half:]}],
    ]
    for messages in cases:
        queue: List[MutableMapping[str, Any]] = [*messages, {"type": "http.disconnect"}]
        sent: List[MutableMapping[str, Any]] = []

        async def receive() -> MutableMapping[str, Any]:
            return queue.pop(0)

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        asyncio.run(mw(dict(scope), receive, send))
        assert sent[0]["status"] == 202, sent
        first, then = got.pop()
        assert first["type"] == "http.request" and bytes(first["body"]) == body and not first.get("more_body", False)
        assert type(first["body"]) is bytes
        assert then == {"type": "http.disconnect"}
