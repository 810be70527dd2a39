# mypy: disable-error-code="import-not-found"
"""apikeys.asgi keeps the event loop free when the keyring may block (issue 8):
the check runs in a worker thread for a SqliteStore / PostgresStore / Redis
limiter, inline for the in-memory store. Driven straight through the ASGI
interface, so each assertion is about which thread ran what, never timing."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import threading
from typing import Any, Dict, List, MutableMapping, Optional, Tuple

import pytest

pytest.importorskip("anyio")

import apikeys  # noqa: E402
from apikeys.asgi import ApiKeyMiddleware  # noqa: E402

ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")
MANAGER = apikeys.Actor("acme", "PMANAGER1", "manager")
Message = MutableMapping[str, Any]


class Watched:
    """A keyring that notes the thread of each ``authenticate`` (``threads``)
    and ``try_authenticate`` (``tries``) and, for the keys in ``hold``, waits
    until ``release`` is set before checking."""

    def __init__(self, real: apikeys.Keyring, may_block: Optional[bool] = None) -> None:
        self.real = real
        self.may_block = real.may_block if may_block is None else may_block
        self.threads: List[threading.Thread] = []
        self.tries: List[threading.Thread] = []
        self.hold: set[str] = set()
        self.holding = threading.Event()
        self.release = threading.Event()

    def authenticate(
        self, token: str, api: str = "rest", method: str = "GET", scope: Optional[str] = None, **place: Any
    ) -> Any:
        self.threads.append(threading.current_thread())
        if token in self.hold:
            self.holding.set()
            # Bounded, so a regression fails the test instead of hanging it.
            if not self.release.wait(timeout=10):
                raise AssertionError("never released: the event loop was blocked")
        if api == "events":
            return self.real.authenticate(token, api="events", **place)
        return self.real.authenticate(token, api="rest", method=method, scope=scope, **place)

    def try_authenticate(
        self, token: str, api: str = "rest", method: str = "GET", scope: Optional[str] = None, **place: Any
    ) -> Any:
        """Notes its thread in ``tries``; a held key is one the store must read (``None``)."""
        self.tries.append(threading.current_thread())
        if token in self.hold:
            return None
        if api == "events":
            return self.real.try_authenticate(token, api="events", **place)
        return self.real.try_authenticate(token, api="rest", method=method, scope=scope, **place)


async def app(scope: Any, receive: Any, send: Any) -> None:
    """Answers 200 with the name of the thread it runs on (the loop's)."""
    await receive()
    body = json.dumps({"thread": threading.current_thread().name, "account": scope["apikey"].account}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


async def request(
    mw: ApiKeyMiddleware, path: str, token: str, body: bytes = b""
) -> Tuple[int, Dict[str, Any]]:
    headers = [] if path == "/v2/enqueue" else [(b"authorization", f"Token token={token}".encode())]
    scope = {"type": "http", "method": "POST" if body else "GET", "path": path, "headers": headers}
    sent: List[Message] = []
    fed = False

    async def receive() -> Message:
        nonlocal fed
        if fed:
            await asyncio.Event().wait()  # like a server: nothing more until disconnect
        fed = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await mw(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


def keys(kr: apikeys.Keyring) -> Tuple[str, str, str]:
    return (
        kr.create_general_key(ADMIN, "one").secret,
        kr.create_general_key(ADMIN, "two").secret,
        kr.create_integration_key(MANAGER, "PSERVICE1", "Datadog").secret,
    )


def event(routing_key: str) -> bytes:
    return json.dumps({"routing_key": routing_key, "event_action": "trigger", "payload": {}}).encode()


def test_blocking_store_is_checked_off_the_event_loop_thread(tmp_path: pathlib.Path) -> None:
    kr = Watched(apikeys.Keyring(apikeys.SqliteStore(tmp_path / "keys.db")))
    assert kr.may_block
    rest, _, integration = keys(kr.real)
    mw = ApiKeyMiddleware(app, kr)  # type: ignore[arg-type]
    assert mw.offload

    async def main() -> None:
        loop_thread = threading.current_thread()
        assert await request(mw, "/incidents", rest) == (200, {"thread": loop_thread.name, "account": "acme"})
        assert await request(mw, "/v2/enqueue", "", event(integration)) == (
            200,
            {"thread": loop_thread.name, "account": "acme"},
        )
        status, _ = await request(mw, "/incidents", "u+abcdefghijklmnopqr")  # refused in the thread too
        assert status == 401
        assert len(kr.threads) == 3
        assert all(t is not loop_thread for t in kr.threads), kr.threads
        assert all(t.name.startswith("apikeys-check") for t in kr.threads), kr.threads

    asyncio.run(main())


def test_a_warm_key_is_answered_on_the_loop_and_a_cold_one_in_a_thread(tmp_path: pathlib.Path) -> None:
    # A SQLite keyring answers a key it has cached without I/O: the check is
    # tried inline first, and only keys the store must read go to a thread.
    kr = Watched(apikeys.Keyring(apikeys.SqliteStore(tmp_path / "keys.db")))
    issued = kr.real.create_general_key(ADMIN, "one")
    rest = issued.secret
    _, other, integration = keys(kr.real)
    mw = ApiKeyMiddleware(app, kr)  # type: ignore[arg-type]
    assert mw.offload

    async def main() -> None:
        loop = threading.current_thread()
        ok = (200, {"thread": loop.name, "account": "acme"})
        assert await request(mw, "/incidents", rest) == ok  # cold: read in a thread
        assert len(kr.threads) == 1 and kr.threads[0] is not loop
        for _ in range(3):
            assert await request(mw, "/incidents", rest) == ok  # warm: answered by the try
        assert await request(mw, "/v2/enqueue", "", event(integration)) == ok  # cold
        assert await request(mw, "/v2/enqueue", "", event(integration)) == ok  # warm
        assert len(kr.threads) == 2, kr.threads
        assert await request(mw, "/incidents", other) == ok  # another key, cold
        assert len(kr.threads) == 3
        assert all(t is not loop and t.name.startswith("apikeys-check") for t in kr.threads), kr.threads
        assert len(kr.tries) == 7 and all(t is loop for t in kr.tries), kr.tries

        # Disabled through the same store: never a stale success; a refusal
        # the store has cached is answered inline too.
        kr.real.disable(ADMIN, issued.record.id)
        assert (await request(mw, "/incidents", rest))[0] == 401
        assert len(kr.threads) == 4  # the cache dropped it: read again
        assert (await request(mw, "/incidents", rest))[0] == 401
        assert len(kr.threads) == 4 and len(kr.tries) == 9
        # A malformed key is refused by the try, with no thread.
        assert (await request(mw, "/incidents", "nope"))[0] == 401
        assert len(kr.threads) == 4

    asyncio.run(main())


def test_memory_store_is_checked_inline_on_the_event_loop_thread() -> None:
    kr = Watched(apikeys.Keyring())
    assert not kr.may_block
    rest, _, integration = keys(kr.real)
    mw = ApiKeyMiddleware(app, kr)  # type: ignore[arg-type]
    assert not mw.offload

    async def main() -> None:
        loop_thread = threading.current_thread()
        assert (await request(mw, "/incidents", rest))[0] == 200
        assert (await request(mw, "/v2/enqueue", "", event(integration)))[0] == 200
        assert kr.threads == [loop_thread, loop_thread]

    asyncio.run(main())


def test_offload_argument_overrides_may_block(tmp_path: pathlib.Path) -> None:
    inline = ApiKeyMiddleware(app, apikeys.Keyring(apikeys.SqliteStore(tmp_path / "k.db")), offload=False)
    assert not inline.offload
    assert ApiKeyMiddleware(app, apikeys.Keyring(), offload=True).offload


def test_loop_serves_other_requests_while_a_check_waits_on_the_store() -> None:
    # One check is held inside `authenticate` (as a slow database would hold
    # it); a second request must be answered meanwhile. Were the check on the
    # loop's thread, the loop could not run the second request, the held one
    # would time out and the assertion below would fail.
    kr = Watched(apikeys.Keyring(), may_block=True)
    slow, fast, integration = keys(kr.real)
    kr.hold.add(slow)
    mw = ApiKeyMiddleware(app, kr)  # type: ignore[arg-type]

    async def main() -> None:
        held = asyncio.ensure_future(request(mw, "/incidents", slow))
        while not kr.holding.is_set():
            await asyncio.sleep(0.001)
        assert await request(mw, "/incidents", fast) == (200, {"thread": threading.current_thread().name, "account": "acme"})
        assert (await request(mw, "/v2/enqueue", "", event(integration)))[0] == 200
        assert not held.done()
        kr.release.set()
        assert (await held)[0] == 200

    asyncio.run(main())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_worker_gets_threads_of_its_own(tmp_path: pathlib.Path) -> None:
    # gunicorn --preload forks workers from a parent that may have used the
    # pool: the child has none of its threads and must start its own.
    kr = apikeys.Keyring(apikeys.SqliteStore(tmp_path / "keys.db"))
    rest = kr.create_general_key(ADMIN, "one").secret
    mw = ApiKeyMiddleware(app, kr)
    assert asyncio.run(request(mw, "/incidents", rest))[0] == 200  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if a check completes
        code = 1
        try:
            status, _ = asyncio.run(asyncio.wait_for(request(mw, "/incidents", rest), timeout=10))
            code = 0 if status == 200 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
