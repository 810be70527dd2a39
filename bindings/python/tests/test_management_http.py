# The web frameworks are optional test dependencies: without them these tests
# are skipped, and mypy --strict must still pass.
# mypy: disable-error-code="import-not-found, untyped-decorator"
"""apikeys.asgi.management_app: the management API and page written in Rust
(apikeys_http::Management), mounted in Starlette and served by uvicorn on a
loopback port, called with httpx. On the in-memory store (answered inline)
and on SQLite (answered in a worker thread without the GIL)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, MutableMapping, Optional

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")

from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Mount  # noqa: E402

import apikeys  # noqa: E402
from apikeys import _apikeys as native  # type: ignore[attr-defined]  # noqa: E402
from apikeys.asgi import management_app  # noqa: E402

from http_support import Uvicorn  # noqa: E402

BASE = "/admin/keys"
INTERNAL = {"error": {"message": "an internal error occurred", "code": 2000}}


def who(scope: MutableMapping[str, Any]) -> Optional[apikeys.Actor]:
    """The test host's 'login': an `x-user: account/user/role` header (the
    scope typed as Starlette's ``starlette.types.Scope``)."""
    for name, value in scope["headers"]:
        if name == b"x-user":
            account, user, role = value.decode().split("/")
            return apikeys.Actor(account, user, role)
    return None


class Host:
    """A keyring, the app mounted at BASE and at /async (an async actor
    function), /raises, /wrong (broken actor functions), served by uvicorn."""

    def __init__(self, keyring: apikeys.Keyring) -> None:
        self.keyring = keyring
        self.raised = 0

        async def who_async(scope: MutableMapping[str, Any]) -> Optional[apikeys.Actor]:
            await asyncio.sleep(0)
            return who(scope)

        def raises(scope: MutableMapping[str, Any]) -> Optional[apikeys.Actor]:
            self.raised += 1
            raise RuntimeError("session store down: secret-detail-xyz")

        def wrong(scope: MutableMapping[str, Any]) -> Any:
            return "acme/PADMIN1/admin"

        app = Starlette(
            routes=[
                Mount(BASE, app=management_app(keyring, actor=who)),
                Mount("/async", app=management_app(keyring, actor=who_async)),
                Mount("/raises", app=management_app(keyring, actor=raises)),
                Mount("/wrong", app=management_app(keyring, actor=wrong)),
                Mount("/api-only", app=management_app(keyring, actor=who, page=False)),
            ]
        )
        self.server = Uvicorn(app)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def call(
        self,
        method: str,
        path: str,
        as_: Optional[str] = "acme/PADMIN1/admin",
        body: Any = None,
        headers: Optional[Dict[str, str]] = None,
        base: str = BASE,
    ) -> Any:
        h = dict(headers or {})
        if as_ is not None:
            h["x-user"] = as_
        content: Optional[bytes] = None
        if body is not None:
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("content-type", "application/json")
        elif method in ("POST", "DELETE"):
            h.setdefault("content-type", "application/json")
        return self.client.request(method, base + path, content=content, headers=h)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture(params=["memory", "sqlite"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    store = apikeys.SqliteStore(str(tmp_path / "keys.db")) if request.param == "sqlite" else None
    h = Host(apikeys.Keyring(store))
    assert h.keyring.may_block == (request.param == "sqlite")
    try:
        yield h
    finally:
        h.close()


def pd_error(r: Any, status: int, code: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"], body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in r.text
    return str(body["error"]["message"])


def create_general(h: Host, description: str = "CI bot", read_only: bool = False, as_: str = "acme/PADMIN1/admin") -> Dict[str, Any]:
    r = h.call("POST", "/api_keys", as_, {"api_key": {"type": "general", "description": description, "read_only": read_only}})
    assert r.status_code == 201, r.text
    key: Dict[str, Any] = r.json()["api_key"]
    return key


# -- the whole life of a key ------------------------------------------------


def test_create_shows_the_key_once_and_never_caches_it(host: Host) -> None:
    r = host.call("POST", "/api_keys", body={"api_key": {"type": "general", "description": "CI bot", "read_only": True}})
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    made = r.json()["api_key"]
    token = made["token"]
    assert made["read_only"] is True and made["description"] == "CI bot"
    # The key works, read-only, for this account.
    p = host.keyring.authenticate(token)
    assert p.account == "acme" and str(p.key_id) == made["id"]
    # Nothing else ever shows it: the list, the key, the audit records.
    for path in ["/api_keys", f"/api_keys/{made['id']}", "/audit/records"]:
        again = host.call("GET", path)
        assert again.status_code == 200, again.text
        assert again.headers["cache-control"] == "no-store"
        assert token not in again.text
    listed = host.call("GET", "/api_keys").json()
    assert [k["id"] for k in listed["api_keys"]] == [made["id"]]
    assert "token" not in listed["api_keys"][0]


def test_get_disable_enable_rotate_delete_and_their_audit_records(host: Host) -> None:
    made = create_general(host)
    kid = made["id"]
    got = host.call("GET", f"/api_keys/{kid}")
    assert got.status_code == 200 and got.json()["api_key"]["id"] == kid

    off = host.call("POST", f"/api_keys/{kid}/disable")
    assert off.status_code == 200, off.text
    assert off.json()["api_key"]["disabled"] is True
    assert off.json()["api_key"]["disabled_by"] == "PADMIN1"
    with pytest.raises(apikeys.Unauthorized):
        host.keyring.authenticate(made["token"])

    on = host.call("POST", f"/api_keys/{kid}/enable")
    assert on.status_code == 200 and on.json()["api_key"]["disabled"] is False
    host.keyring.authenticate(made["token"])

    rot = host.call("POST", f"/api_keys/{kid}/rotate", body={"rotation": {"grace_seconds": 3600}})
    assert rot.status_code == 201, rot.text
    assert rot.headers["cache-control"] == "no-store"
    new = rot.json()["api_key"]
    assert new["token"] != made["token"] and rot.json()["rotated"]["id"] == kid
    # Both work during the overlap.
    host.keyring.authenticate(made["token"])
    host.keyring.authenticate(new["token"])
    ended = host.call("POST", f"/api_keys/{kid}/end_rotation")
    assert ended.status_code == 200, ended.text
    with pytest.raises(apikeys.Unauthorized):
        host.keyring.authenticate(made["token"])

    gone = host.call("DELETE", f"/api_keys/{new['id']}")
    assert gone.status_code == 204, gone.text
    assert pd_error(host.call("GET", f"/api_keys/{new['id']}"), 404, 2100)

    records = host.call("GET", "/audit/records")
    assert records.status_code == 200, records.text
    page = records.json()
    assert set(page) >= {"records", "limit", "next_cursor"}
    actions = [r["action"] for r in page["records"]]
    for a in ("create", "disable", "enable", "rotate", "delete"):
        assert any(a in x for x in actions), (a, actions)
    assert made["token"] not in records.text and new["token"] not in records.text


def test_the_page_is_served_with_its_policy_under_its_mount_path(host: Host) -> None:
    r = host.call("GET", "/")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    # The page names its assets under where Starlette mounted it (root_path).
    assert f'{BASE}/assets/page.js' in r.text
    js = host.call("GET", "/assets/page.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert f'"/async/assets/page.js"' in host.call("GET", "/", base="/async").text
    # page=False: the API alone.
    assert host.call("GET", "/", base="/api-only").status_code == 404
    assert host.call("GET", "/api_keys", base="/api-only").status_code == 200


# -- who may do what ---------------------------------------------------------


def test_no_actor_is_401_and_a_role_that_may_not_act_is_403(host: Host) -> None:
    assert pd_error(host.call("GET", "/api_keys", as_=None), 401, 2006)
    assert pd_error(host.call("POST", "/api_keys", as_=None, body={"api_key": {"type": "general", "description": "x"}}), 401, 2006)
    # A responder may not make a general key, nor disable one.
    made = create_general(host)
    pd_error(host.call("POST", "/api_keys", "acme/PRESP1/responder", {"api_key": {"type": "general", "description": "x"}}), 403, 2010)
    pd_error(host.call("POST", f"/api_keys/{made['id']}/disable", "acme/PRESP1/responder"), 403, 2010)
    host.keyring.authenticate(made["token"])  # untouched


def test_another_accounts_key_is_not_found(host: Host) -> None:
    made = create_general(host)
    other = "globex/PADMIN9/admin"
    for method, path in [("GET", ""), ("POST", "/disable"), ("POST", "/rotate"), ("DELETE", "")]:
        pd_error(host.call(method, f"/api_keys/{made['id']}{path}", other), 404, 2100)
    assert host.call("GET", "/api_keys", other).json()["api_keys"] == []
    host.keyring.authenticate(made["token"])


def test_an_async_actor_function_is_awaited(host: Host) -> None:
    made = create_general(host)
    r = host.call("GET", f"/api_keys/{made['id']}", base="/async")
    assert r.status_code == 200 and r.json()["api_key"]["id"] == made["id"]
    assert pd_error(host.call("GET", "/api_keys", as_=None, base="/async"), 401, 2006)


# -- bad input ---------------------------------------------------------------


def test_bad_json_wrong_types_and_unknown_fields_are_400(host: Host) -> None:
    for body in [
        b"{",
        b"",
        b"[]",
        b'"x"',
        b"\xff\xfe",
        json.dumps({"api_key": {"type": "general", "description": 5}}).encode(),
        json.dumps({"api_key": {"type": "general", "description": "x", "read_only": "yes"}}).encode(),
        json.dumps({"api_key": {"type": "nope", "description": "x"}}).encode(),
        json.dumps({"api_key": {"type": "general", "description": "x", "colour": "red"}}).encode(),
        json.dumps({"api_key": {"type": "general", "description": "x"}, "extra": 1}).encode(),
    ]:
        pd_error(host.call("POST", "/api_keys", body=body), 400, 2001)
    assert host.call("GET", "/api_keys").json()["api_keys"] == []


def test_a_body_over_64_kib_is_413_and_never_read_whole(host: Host) -> None:
    description = "x" * (64 * 1024)
    r = host.call("POST", "/api_keys", body={"api_key": {"type": "general", "description": description}})
    pd_error(r, 413, 2001)
    # Streamed without a length: the app stops reading past the limit.
    def chunks() -> Iterator[bytes]:
        for _ in range(2048):  # 2 MiB offered
            yield b" " * 1024

    r = host.client.post(
        BASE + "/api_keys", content=chunks(), headers={"x-user": "acme/PADMIN1/admin", "content-type": "application/json"}
    )
    pd_error(r, 413, 2001)
    assert host.call("GET", "/api_keys").json()["api_keys"] == []
    # The server still serves.
    create_general(host)


def test_cross_site_calls_that_change_keys_are_refused(host: Host) -> None:
    made = create_general(host)
    kid = made["id"]
    for headers in [
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"content-type": "text/plain"},  # a form or a no-cors fetch: 415
        {"content-type": "application/x-www-form-urlencoded"},
    ]:
        r = host.call("POST", f"/api_keys/{kid}/disable", headers=headers)
        assert r.status_code in (403, 415), (headers, r.status_code, r.text)
        assert r.json()["error"]["code"] in (2010, 2001), r.text
    assert host.keyring.get(host_admin(), kid).disabled is None
    # The same host's origin passes.
    ok = host.call("POST", f"/api_keys/{kid}/disable", headers={"origin": host.url, "sec-fetch-site": "same-origin"})
    assert ok.status_code == 200, ok.text


def host_admin() -> apikeys.Actor:
    return apikeys.Actor("acme", "PADMIN1", "admin")


def test_an_actor_function_that_fails_is_a_500_that_says_nothing(host: Host, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="apikeys.asgi"):
        for base in ["/raises", "/wrong"]:
            r = host.call("GET", "/api_keys", base=base)
            assert r.status_code == 500, r.text
            assert r.json() == INTERNAL
            assert "secret-detail" not in r.text and "Traceback" not in r.text
    assert host.raised == 1
    assert any("actor function raised" in m for m in caplog.messages)
    assert any("returned str" in m for m in caplog.messages)
    # The process and the server survive.
    create_general(host)


def test_unknown_paths_and_methods(host: Host) -> None:
    pd_error(host.call("GET", "/nope"), 404, 2100)
    r = host.call("PUT", "/api_keys")
    assert r.status_code == 405 and "POST" in r.headers["allow"]


def test_concurrent_calls_each_get_their_own_answer(host: Host) -> None:
    # Many creates at once (on SQLite each runs in a worker thread): every
    # key shown once, all different, all listed.
    tokens: List[str] = []
    lock = threading.Lock()

    def make(i: int) -> None:
        with httpx.Client(base_url=host.url, timeout=30) as c:
            r = c.post(
                BASE + "/api_keys",
                json={"api_key": {"type": "general", "description": f"k{i}"}},
                headers={"x-user": "acme/PADMIN1/admin"},
            )
            assert r.status_code == 201, r.text
            with lock:
                tokens.append(r.json()["api_key"]["token"])

    threads = [threading.Thread(target=make, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 16
    assert host.call("GET", "/api_keys?limit=100").json()["total"] == 16


# -- the binding boundary ----------------------------------------------------


def test_management_app_checks_its_arguments() -> None:
    kr = apikeys.Keyring()
    with pytest.raises(TypeError, match="keyring"):
        management_app("not a keyring", actor=who)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="actor"):
        management_app(kr, actor="admin")  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput, match="mount_path"):
        management_app(kr, actor=who, mount_path="no slash")
    with pytest.raises(TypeError, match="page"):
        management_app(kr, actor=who, page="yes")  # type: ignore[arg-type]


def test_the_endpoint_takes_only_what_it_can_convert() -> None:
    ep = native._management(apikeys.Keyring())
    admin = host_admin()
    ok = ep.handle("GET", b"/api_keys", [(b"x", b"y")], b"", admin)
    assert ok[0] == 200
    # Wrong types: a TypeError naming the argument.
    for args, name in [
        ((5, b"/", [], b""), "method"),
        (("GET", 5, [], b""), "target"),
        (("GET", b"/", 5, b""), "headers"),
        (("GET", b"/", b"x: y", b""), "headers"),
        (("GET", b"/", [(b"x",)], b""), "headers"),
        (("GET", b"/", [(b"x", 5)], b""), "headers"),
        (("GET", b"/", [], "body"), "body"),
        (("GET", b"/", [], b"", "admin"), "actor"),
        (("GET", b"/", [], b"", None, "127.0.0.1"), "client"),
        (("GET", b"/", [], b"", None, None, 5), "mount_path"),
    ]:
        with pytest.raises(TypeError, match=name):
            ep.handle(*args)
    # Values HTTP does not allow, lone surrogates: a 400 answer, never a crash.
    for method, target, headers in [
        ("G T", b"/api_keys", []),
        ("GET", b"/api_keys", [(b"bad name", b"v")]),
        ("GET", b"/api_keys", [(b"x", b"a\r\nb")]),
        ("GET\ud800", b"/api_keys", []),
        ("GET", "/api_keys\ud800", [("x-\udfff", "v\ud800")]),
    ]:
        status, hs, body = ep.handle(method, target, headers, b"", admin)
        assert status in (400, 404), (method, target, headers, status, body)
        assert json.loads(body)["error"]["code"] in (2001, 2100)
    # A client that is not an IP address (a Unix socket) is no address; str headers work.
    assert ep.handle("GET", "/api_keys", [("x", "y")], b"", admin, ("/tmp/sock", 0))[0] == 200
    assert ep.handle("GET", "/api_keys", [], b"", admin, None, "/x")[0] == 200
    assert repr(ep) == "<apikeys endpoint management>"


def test_a_stale_caller_is_decided_on_its_stored_standing(host: Host) -> None:
    # The host's login still says "admin" after the keyring demoted, then
    # removed, the user: every call is decided on what the keyring holds now.
    made = create_general(host)
    host.keyring.set_user_role("acme", "PADMIN1", "observer")
    pd_error(host.call("POST", f"/api_keys/{made['id']}/disable"), 403, 2010)
    pd_error(host.call("POST", "/api_keys", body={"api_key": {"type": "general", "description": "x"}}), 403, 2010)
    host.keyring.remove_user("acme", "PADMIN1")
    pd_error(host.call("GET", "/api_keys"), 403, 2010)
    host.keyring.authenticate(made["token"])  # untouched
    host.keyring.set_user_role("acme", "PADMIN1", "admin")
    assert host.call("POST", f"/api_keys/{made['id']}/disable").status_code == 200


def test_the_app_offloads_exactly_when_the_store_may_block(tmp_path: Path) -> None:
    memory = management_app(apikeys.Keyring(), actor=who)
    durable = management_app(apikeys.Keyring(apikeys.SqliteStore(str(tmp_path / "k.db"))), actor=who)
    assert getattr(memory, "_offload") is False and getattr(durable, "_offload") is True


def test_a_scope_no_server_would_send_is_a_500_not_a_crash(caplog: pytest.LogCaptureFixture) -> None:
    # Called straight, as a broken server or middleware might: headers that
    # are not bytes, a client that is no (host, port): a 500 with PagerDuty's
    # body, the cause in the log; a lifespan is answered.
    app = management_app(apikeys.Keyring(), actor=lambda scope: host_admin())
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    async def run(scope: Dict[str, Any], receive: Any = receive) -> None:
        await app(scope, receive, send)

    base: Dict[str, Any] = {"type": "http", "method": "GET", "path": "/api_keys", "query_string": b"", "headers": []}
    odds: List[Dict[str, Any]] = [{"headers": [(b"x", 5)]}, {"headers": [("x",)]}, {"client": "127.0.0.1"}, {"headers": 5}]
    with caplog.at_level(logging.ERROR, logger="apikeys.asgi"):
        for odd in odds:
            sent.clear()
            asyncio.run(run({**base, **odd}))
            assert sent[0]["status"] == 500, odd
            assert json.loads(sent[1]["body"]) == INTERNAL
    assert any("could not be handed" in m for m in caplog.messages)
    sent.clear()
    asyncio.run(run(base))
    assert sent[0]["status"] == 200
    # The lifespan protocol, when mounted as the whole application.
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def life() -> Dict[str, Any]:
        return next(messages)

    sent.clear()
    asyncio.run(run({"type": "lifespan"}, life))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
