# mypy: disable-error-code="import-not-found, untyped-decorator"
"""apikeys.wsgi keeps the scope it found for a route (matching the URL map
costs more than the key check): the kept answer must be the route's own, per
method, host and path, and stay right past the cache's bound."""

from __future__ import annotations

from typing import Any, Dict

import pytest

pytest.importorskip("flask")

import apikeys  # noqa: E402
from apikeys.wsgi import protect_flask, requires_scope  # noqa: E402

ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")
MANAGER = apikeys.Actor("acme", "PMANAGER1", "manager")


def auth(key: str) -> Dict[str, str]:
    return {"Authorization": f"Token token={key}"}


def test_same_path_on_two_hosts_keeps_each_hosts_scope() -> None:
    from flask import Flask

    kr = apikeys.Keyring()
    writer = kr.create_scoped_token(MANAGER, "closer", ["incidents.write"]).secret
    app = Flask(__name__, host_matching=True, static_host="a.example")

    @app.get("/incidents", host="a.example")
    @requires_scope("incidents.write")
    def on_a() -> Any:
        return {"host": "a"}

    @app.get("/incidents", host="b.example")
    def on_b() -> Any:  # no scope declared: the broadest, which a scoped token lacks
        return {"host": "b"}

    protect_flask(app, kr)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/incidents", base_url="http://a.example", headers=auth(writer)).status_code == 200
        assert client.get("/incidents", base_url="http://b.example", headers=auth(writer)).status_code == 403


def test_method_and_path_each_keep_their_scope_past_the_cache_bound() -> None:
    from flask import Flask

    kr = apikeys.Keyring()
    read_only = kr.create_general_key(ADMIN, "reader", read_only=True).secret
    app = Flask(__name__)

    @app.route("/incidents/<incident_id>", methods=["GET", "PUT"])
    def incident(incident_id: str) -> Any:
        return {"id": incident_id}

    @app.get("/services/<service_id>")
    @requires_scope("services.read")
    def service(service_id: str) -> Any:
        return {"id": service_id}

    protect_flask(app, kr)
    client = app.test_client()
    for i in range(4200):  # more distinct paths than the cache holds (4096)
        assert client.get(f"/incidents/P{i}", headers=auth(read_only)).status_code == 200
    for i in (0, 4199):
        assert client.put(f"/incidents/P{i}", headers=auth(read_only)).status_code == 403
        assert client.get(f"/incidents/P{i}", headers=auth(read_only)).status_code == 200
        assert client.get(f"/services/S{i}", headers=auth(read_only)).status_code == 200
    assert client.get("/incidents/P1").status_code == 401
