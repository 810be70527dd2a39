"""PagerDuty's official Python client (the ``pagerduty`` package: its REST API
v2 and Events API v2 clients) against the example services, over loopback.

The clients accept only https:// base URLs; the servers here speak plain HTTP
on 127.0.0.1, so the tests set the clients' URL attribute past that check."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Tuple

import pytest

pagerduty = pytest.importorskip("pagerduty")
pytest.importorskip("fastapi")
pytest.importorskip("flask")

from http_apps import fastapi_app, flask_app  # noqa: E402
from http_support import Keys, Limited, ThreadedServer, Uvicorn, Werkzeug, make_keys  # noqa: E402

Served = Tuple[Keys, ThreadedServer]
SERVERS: Dict[str, Tuple[Callable[[Any], Any], Callable[[Any], ThreadedServer]]] = {
    "fastapi": (fastapi_app, Uvicorn),
    "flask": (flask_app, Werkzeug),
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    make_app, server = SERVERS[request.param]
    keys = make_keys()
    srv = server(make_app(keys.keyring))
    try:
        yield keys, srv
    finally:
        srv.stop()


def rest(key: str, port: int) -> Any:
    client = pagerduty.RestApiV2Client(key)
    client._url = f"http://127.0.0.1:{port}"
    return client


def events(key: str, port: int) -> Any:
    client = pagerduty.EventsApiV2Client(key)
    client._url = f"http://127.0.0.1:{port}"
    return client


def status_of(e: BaseException) -> int:
    assert isinstance(e, pagerduty.HttpError), repr(e)
    return int(e.response.status_code)


def test_valid_key_reads_and_writes(served: Served) -> None:
    keys, srv = served
    created = rest(keys.full, srv.port).rpost("/incidents", json={"incident": {"title": "db down"}})
    assert created["title"] == "db down"
    listed = rest(keys.read_only, srv.port).rget("/incidents")
    assert any(i["id"] == created["id"] for i in listed)
    acked = rest(keys.scoped, srv.port).rput(f"/incidents/{created['id']}", json={"incident": {}})
    assert acked["status"] == "acknowledged"


def test_read_only_post_surfaces_as_403(served: Served) -> None:
    keys, srv = served
    with pytest.raises(pagerduty.Error) as info:
        rest(keys.read_only, srv.port).rpost("/incidents", json={"incident": {"title": "x"}})
    assert status_of(info.value) == 403
    assert info.value.response.json()["error"]["code"] == 2010


def test_disabled_key_surfaces_as_401(served: Served) -> None:
    keys, srv = served
    keys.keyring.disable(keys.admin, keys.read_only_id)
    try:
        with pytest.raises(pagerduty.Error) as info:
            rest(keys.read_only, srv.port).rget("/incidents")
        assert status_of(info.value) == 401
        assert info.value.response.headers["www-authenticate"] == "Token"
    finally:
        keys.keyring.enable(keys.admin, keys.read_only_id)


def test_events_client_triggers_and_rest_key_is_refused(served: Served) -> None:
    keys, srv = served
    dedup = events(keys.integration, srv.port).trigger("disk full", "db1")
    assert dedup.startswith("Q")
    with pytest.raises(pagerduty.Error) as info:
        events(keys.full, srv.port).trigger("disk full", "db1")
    assert status_of(info.value) == 400
    assert keys.full not in info.value.response.text


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_client_retries_a_429_and_then_succeeds(kind: str) -> None:
    keys = make_keys()
    make_app, server = SERVERS[kind]
    limited = Limited(keys.keyring, refusals=2)
    srv = server(make_app(limited))
    try:
        client = rest(keys.full, srv.port)
        client.sleep_timer = 0.01  # the client's own back-off, shortened for the test
        assert client.rget("/incidents") == []
        assert limited.seen[keys.full] == 3  # two 429s, then the answer
    finally:
        srv.stop()
