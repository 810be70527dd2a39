# mypy: disable-error-code="import-not-found"
"""examples/http_incidents.py, served on a loopback port: bodies of the
wrong shape are a 400, never a 500."""

from __future__ import annotations

import importlib.util
import json
import pathlib
from typing import Any, Iterator, Tuple

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from http_support import Uvicorn, call  # noqa: E402

EXAMPLE = pathlib.Path(__file__).resolve().parents[3] / "examples" / "http_incidents.py"


@pytest.fixture(scope="module")
def example() -> Iterator[Tuple[Any, int]]:
    if not EXAMPLE.is_file():
        pytest.fail(f"the example is not at {EXAMPLE}")
    spec = importlib.util.spec_from_file_location("http_incidents_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # makes its keys; serves nothing until __main__
    srv = Uvicorn(module.app)
    try:
        yield module, srv.port
    finally:
        srv.stop()


def event(routing_key: str, payload: Any) -> bytes:
    return json.dumps({"routing_key": routing_key, "event_action": "trigger", "payload": payload}).encode()


def test_an_event_whose_payload_is_not_an_object_is_a_400(example: Tuple[Any, int]) -> None:
    module, port = example
    for payload in ["disk full", 42, ["disk full"], None, True]:
        a = call(port, "POST", "/v2/enqueue", [], event(module.events, payload))
        assert a.status == 400, (payload, a.whole())
        assert a.json()["status"] == "invalid event" and a.json()["errors"], a.whole()
        assert module.events.encode() not in a.body
    a = call(port, "POST", "/v2/enqueue", [], event(module.events, {"summary": "disk full"}))
    assert a.status == 202 and a.json()["status"] == "success", a.whole()
    a = call(port, "POST", "/v2/enqueue", [], json.dumps({"routing_key": module.events}).encode())
    assert a.status == 202, a.whole()


def test_an_incident_that_is_not_an_object_is_a_400(example: Tuple[Any, int]) -> None:
    module, port = example
    auth = [f"Authorization: Token token={module.full}"]
    for incident in ["db down", 5, ["db down"], None]:
        a = call(port, "POST", "/incidents", auth, json.dumps({"incident": incident}).encode())
        assert a.status == 400, (incident, a.whole())
        assert a.json()["error"]["code"] == 2001, a.whole()
    a = call(port, "POST", "/incidents", auth, json.dumps({"incident": {"title": "db down"}}).encode())
    assert a.status == 201 and a.json()["incident"]["title"] == "db down", a.whole()
    a = call(port, "GET", "/incidents", [f"Authorization: Token token={module.read_only}"])
    assert a.status == 200 and "db down" in [i["title"] for i in a.json()["incidents"]], a.whole()
