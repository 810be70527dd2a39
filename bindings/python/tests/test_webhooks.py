"""Lifecycle webhooks from Python (docs/webhooks.md): a durable store's
outbox delivered to a real local receiver, signatures checked with
``verify_webhook``, dead rows, and bad input refused at registration."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import apikeys

from conftest import actor


class _Receiver:
    """An HTTP server on 127.0.0.1:0 recording every request; answers
    ``status`` (204 by default)."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.status = 204
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                n = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(n)
                outer.got.append(
                    {
                        "id": self.headers.get("webhook-id", ""),
                        "ts": self.headers.get("webhook-timestamp", ""),
                        "sig": self.headers.get("webhook-signature", ""),
                        "body": body,
                    }
                )
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.server.shutdown()


def _drain(worker: apikeys.WebhookWorker) -> None:
    deadline = time.monotonic() + 20
    while worker.outbox(status="pending"):
        worker.run_once()
        time.sleep(0.02)
        assert time.monotonic() < deadline, "not drained"


def test_changes_reach_the_receiver_signed(tmp_path: Path, receiver: _Receiver) -> None:
    secret = apikeys.generate_webhook_secret()
    assert secret.startswith("whsec_")
    store = apikeys.SqliteStore(tmp_path / "k.db", outbox=True)
    kr = apikeys.Keyring(store)
    key = kr.create_general_key(actor("admin"), "ci")
    kr.disable(actor("admin"), key.record.id)
    ep = apikeys.WebhookEndpoint("ops", receiver.url, secret)
    assert ep.name == "ops" and "whsec" not in repr(ep)
    worker = apikeys.WebhookWorker(store, [ep], timeout=2.0)
    _drain(worker)
    types = [json.loads(g["body"])["type"] for g in receiver.got]
    assert types == ["key.created", "key.disabled"]
    for g in receiver.got:
        assert apikeys.verify_webhook(secret, g["id"], g["ts"], g["sig"], g["body"])
        assert not apikeys.verify_webhook(secret, g["id"], g["ts"], g["sig"], g["body"] + b" ")
        assert key.secret.encode() not in g["body"]
        data = json.loads(g["body"])["data"]
        assert data["key_id"] == key.record.id and data["account"] == "acme"
    other = apikeys.generate_webhook_secret()
    g = receiver.got[0]
    assert not apikeys.verify_webhook(other, g["id"], g["ts"], g["sig"], g["body"])
    rows = worker.outbox()
    assert [r["status"] for r in rows] == ["delivered", "delivered"]
    assert rows[0]["delivered_to"] == ["ops"] and rows[0]["at"].tzinfo is not None
    assert rows[0]["event_id"] == receiver.got[0]["id"]


def test_a_receiver_that_fails_leaves_dead_rows(tmp_path: Path, receiver: _Receiver) -> None:
    receiver.status = 500
    store = apikeys.SqliteStore(tmp_path / "k.db", outbox=True)
    apikeys.Keyring(store).create_general_key(actor("admin"), "ci")
    ep = apikeys.WebhookEndpoint("ops", receiver.url, apikeys.generate_webhook_secret())
    worker = apikeys.WebhookWorker(
        store, [ep], max_attempts=2, backoff_base=0.01, backoff_max=0.02, timeout=1
    )
    _drain(worker)
    (dead,) = worker.outbox(status="dead")
    assert dead["attempts"] == 2 and dead["last_error"] == "ops: HTTP 500"
    assert len({g["id"] for g in receiver.got}) == 1 and len(receiver.got) == 2


def test_a_started_worker_delivers_on_its_thread(tmp_path: Path, receiver: _Receiver) -> None:
    store = apikeys.SqliteStore(tmp_path / "k.db")
    store.set_outbox(True)
    kr = apikeys.Keyring(store)
    ep = apikeys.WebhookEndpoint(
        "ops", receiver.url, apikeys.generate_webhook_secret(), events=["key.deleted"]
    )
    worker = apikeys.WebhookWorker(store, [ep], poll_interval=0.01)
    worker.start()
    assert worker.running
    k = kr.create_general_key(actor("admin"), "ci")
    kr.delete(actor("admin"), k.record.id)
    deadline = time.monotonic() + 20
    while len(receiver.got) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    worker.stop()
    assert not worker.running
    assert [json.loads(g["body"])["type"] for g in receiver.got] == ["key.deleted"]


def test_bad_endpoints_and_options_are_refused_naming_the_argument(tmp_path: Path) -> None:
    secret = apikeys.generate_webhook_secret()
    for url in ("ftp://example.com/", "example.com/hook", "http://u:p@h/", "http://h/\n", ""):
        with pytest.raises(apikeys.InvalidInput) as caught:
            apikeys.WebhookEndpoint("ops", url, secret)
        assert caught.value.field == "url"
    for bad in ("", "nope", "whsec_", "whsec_!!!!", "whsec_c2hvcnQ="):
        with pytest.raises(apikeys.InvalidInput) as caught:
            apikeys.WebhookEndpoint("ops", "http://h/", bad)
        assert caught.value.field == "secret"
        if len(bad) > 6:
            assert bad[6:] not in str(caught.value)
    with pytest.raises(apikeys.InvalidInput) as caught:
        apikeys.WebhookEndpoint("a b", "http://h/", secret)
    assert caught.value.field == "name"
    with pytest.raises(apikeys.InvalidInput) as caught:
        apikeys.WebhookEndpoint("ops", "http://h/", secret, events=["key.nope"])  # type: ignore[list-item]
    assert caught.value.field == "events"
    assert "key.created" in str(caught.value) and "event_type" not in str(caught.value)
    with pytest.raises(TypeError, match="events"):
        apikeys.WebhookEndpoint("ops", "http://h/", secret, events="key.created")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="url"):
        apikeys.WebhookEndpoint("ops", b"http://h/", secret)  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput) as caught:
        apikeys.WebhookEndpoint("ops", "http://h/\ud800", secret)
    assert caught.value.field == "url"

    store = apikeys.SqliteStore(tmp_path / "k.db")
    ep = apikeys.WebhookEndpoint("ops", "http://127.0.0.1:9/", secret)
    with pytest.raises(apikeys.InvalidInput) as caught:
        apikeys.WebhookWorker(store, [])
    assert caught.value.field == "endpoints"
    with pytest.raises(apikeys.InvalidInput) as caught:
        apikeys.WebhookWorker(store, [ep, ep])
    assert caught.value.field == "name"
    with pytest.raises(TypeError, match="store"):
        apikeys.WebhookWorker(apikeys.MemoryStore(), [ep])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="endpoints"):
        apikeys.WebhookWorker(store, ["http://h/"])  # type: ignore[list-item]
    for field, value in (("timeout", -1), ("batch", 0), ("max_attempts", 0), ("poll_interval", float("nan"))):
        with pytest.raises(apikeys.InvalidInput) as caught:
            apikeys.WebhookWorker(store, [ep], **{field: value})  # type: ignore[arg-type]
        assert caught.value.field == field
    with pytest.raises(TypeError, match="batch"):
        apikeys.WebhookWorker(store, [ep], batch=True)
    worker = apikeys.WebhookWorker(store, [ep])
    with pytest.raises(apikeys.InvalidInput) as caught:
        worker.outbox(status="lost")  # type: ignore[arg-type]
    assert caught.value.field == "status"
    with pytest.raises(apikeys.InvalidInput) as caught:
        apikeys.verify_webhook("nope", "evt_1", "1", "v1,x", b"{}")
    assert caught.value.field == "secret"
    with pytest.raises(TypeError, match="body"):
        apikeys.verify_webhook(secret, "evt_1", "1", "v1,x", "{}")  # type: ignore[arg-type]
    assert not apikeys.verify_webhook(secret, "evt_1", "not a time", "v1,x", b"{}")
    with pytest.raises(TypeError, match="outbox"):
        apikeys.SqliteStore(tmp_path / "j.db", outbox=1)  # type: ignore[arg-type]
