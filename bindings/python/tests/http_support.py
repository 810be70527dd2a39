# The web frameworks are optional test dependencies: without them these tests
# are skipped, and mypy --strict must still pass.
# mypy: disable-error-code="import-not-found, untyped-decorator"
"""Support for the HTTP adapter tests: servers on a loopback port in a thread,
a hand-written HTTP/1.1 client (so requests can be as broken as a test
needs), the example incidents services, and keys for them."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

import apikeys


@dataclass
class Answer:
    status: int
    headers: Dict[str, List[str]]
    body: bytes

    def header(self, name: str) -> Optional[str]:
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> Tuple[int, str]:
        """PagerDuty's error body: (code, message), and nothing else in it."""
        v = self.json()
        assert list(v) == ["error"] and sorted(v["error"]) == ["code", "message"], v
        return int(v["error"]["code"]), str(v["error"]["message"])

    def whole(self) -> bytes:
        head = "".join(f"{k}: {x}\n" for k, vs in self.headers.items() for x in vs)
        return head.encode() + self.body


def build(method: str, path: str, headers: List[str] = [], body: bytes = b"") -> bytes:  # noqa: B006
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    if body or method != "GET":
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def send(port: int, raw: bytes) -> Optional[Answer]:
    """Send a whole request and read the answer; None if the server closed without one."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(raw)
        except OSError:
            pass  # the server may answer and close before reading everything
        data = b""
        try:
            while not _complete(data):
                c = s.recv(65536)
                if not c:
                    break
                data += c
        except OSError:
            pass
    if b"\r\n\r\n" not in data:
        return None
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers: Dict[str, List[str]] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    if "chunked" in (headers.get("transfer-encoding") or [""])[0]:
        body = _dechunk(body)
    return Answer(int(lines[0].split(" ")[1]), headers, body)


def _complete(data: bytes) -> bool:
    """Whether a whole answer with a Content-Length has arrived (as a client
    that stops reading then; some servers keep reading the request until the
    client closes)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            return len(body) >= int(v.strip())
    return False


def _dechunk(b: bytes) -> bytes:
    out = b""
    while b:
        size, _, rest = b.partition(b"\r\n")
        n = int(size.strip() or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2 :]
    return out


def call(port: int, method: str, path: str, headers: List[str] = [], body: bytes = b"") -> Answer:  # noqa: B006
    a = send(port, build(method, path, headers, body))
    assert a is not None, "the server answered"
    return a


def auth(key: str) -> List[str]:
    return [f"Authorization: Token token={key}"]


def event(routing_key: Any) -> bytes:
    return json.dumps(
        {
            "routing_key": routing_key,
            "event_action": "trigger",
            "payload": {"summary": "disk full", "source": "db1", "severity": "critical"},
        }
    ).encode()


@dataclass
class Keys:
    keyring: apikeys.Keyring
    admin: apikeys.Actor
    full: str
    read_only: str
    read_only_id: str
    scoped: str
    integration: str
    all: List[str] = field(default_factory=list)


def make_keys(store: Optional[apikeys.SqliteStore] = None) -> Keys:
    kr = apikeys.Keyring(store)
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    manager = apikeys.Actor("acme", "PMANAGER1", "manager")
    full = kr.create_general_key(admin, "full")
    ro = kr.create_general_key(admin, "read only", read_only=True)
    scoped = kr.create_scoped_token(manager, "closer", ["incidents.write"])
    integ = kr.create_integration_key(manager, "PSERVICE1", "Datadog")
    k = Keys(kr, admin, full.secret, ro.secret, ro.record.id, scoped.secret, integ.secret)
    k.all = [k.full, k.read_only, k.scoped, k.integration]
    return k


def refused(keys: Keys, a: Answer, status: int, code: int) -> str:
    """A refusal: status, PagerDuty code and body, the right headers, no key anywhere."""
    assert a.status == status, a.whole()
    assert (a.header("content-type") or "").startswith("application/json"), a.whole()
    got, message = a.error()
    assert got == code, a.whole()
    for k in keys.all:
        assert k.encode() not in a.whole(), a.whole()
    assert b"Traceback" not in a.body
    assert (a.header("www-authenticate") == "Token") == (status == 401), a.whole()
    return message


class Incidents:
    """The example service's data: a list of incidents."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: List[Dict[str, Any]] = []

    def open(self, account: str, title: str, via: str) -> Dict[str, Any]:
        with self.lock:
            i = {"id": f"Q{len(self.items) + 1:06d}", "type": "incident", "title": title,
                 "status": "triggered", "account": account, "created_via": via}
            self.items.append(i)
            return i

    def ack(self, account: str, incident_id: str) -> Optional[Dict[str, Any]]:
        with self.lock:
            for i in self.items:
                if i["id"] == incident_id and i["account"] == account:
                    i["status"] = "acknowledged"
                    return i
            return None

    def of(self, account: str) -> List[Dict[str, Any]]:
        with self.lock:
            return [i for i in self.items if i["account"] == account]


class ThreadedServer:
    """A server in a thread on 127.0.0.1, stopped by :meth:`stop`."""

    port: int

    def stop(self) -> None:
        raise NotImplementedError


class Uvicorn(ThreadedServer):
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            threading.Event().wait(0.01)
        assert self.server.started, "uvicorn started"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class Werkzeug(ThreadedServer):
    def __init__(self, app: Any) -> None:
        from werkzeug.serving import make_server

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


def serving(server: ThreadedServer) -> Iterator[ThreadedServer]:
    try:
        yield server
    finally:
        server.stop()


class Limited:
    """A keyring whose keys are over their limit for their first ``refusals``
    requests: a stand-in for rate limits until the Python binding exposes them."""

    def __init__(self, inner: apikeys.Keyring, refusals: int) -> None:
        self.inner = inner
        self.refusals = refusals
        self.seen: Dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def may_block(self) -> bool:
        return self.inner.may_block

    def authenticate(
        self,
        token: str,
        api: Any = "rest",
        method: str = "GET",
        scope: Optional[str] = None,
        *,
        remote_address: Optional[str] = None,
        path: Optional[str] = None,
    ) -> apikeys.Principal:
        who = self.inner.authenticate(
            token, api=api, method=method, scope=scope, remote_address=remote_address, path=path
        )
        with self.lock:
            n = self.seen[token] = self.seen.get(token, 0) + 1
        if n <= self.refusals:
            e = apikeys.RateLimited("rate limit of 960 requests exceeded; retry in 1500 ms")
            e.retry_after = 1.5
            raise e
        return who
