# mypy: disable-error-code="import-not-found, untyped-decorator"
"""apikeys.wsgi keeps the scope it found for a route (matching the URL map
costs more than the key check): the kept answer must be the route's own, per
method, host and path, and stay right past the cache's bound."""

from __future__ import annotations

from typing import Any, Dict, Optional

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


def test_bad_scope_declarations_are_a_500_naming_the_route(caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging

    from flask import Flask

    from apikeys.asgi import ScopeDeclarationError
    from apikeys._http import SCOPE_ATTR
    from apikeys.wsgi import ApiKeyMiddleware

    kr = apikeys.Keyring()
    key = kr.create_general_key(ADMIN, "full").secret
    app = Flask(__name__)

    @app.get("/odd")
    def odd() -> Any:
        return {"never": True}

    setattr(odd, SCOPE_ATTR, 5)  # not through requires_scope, which refuses it

    @app.get("/fine")
    @requires_scope("incidents.read")
    def fine() -> Any:
        return {"fine": True}

    with pytest.raises(ScopeDeclarationError, match="incidents.read"):

        @app.get("/twice")
        @requires_scope("incidents.write")
        @requires_scope("incidents.read")
        def twice() -> Any:
            return {}

    protect_flask(app, kr)
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="apikeys.wsgi"):
        r = client.get("/odd", headers=auth(key))
    assert r.status_code == 500
    assert json.loads(r.data) == {"error": {"message": "an internal error occurred", "code": 2000}}
    assert "/odd" in caplog.text and "int" in caplog.text and key not in caplog.text
    assert client.get("/fine", headers=auth(key)).status_code == 200

    for given in (5, ["incidents.read"], b"incidents.read"):
        inner = Flask("inner")
        inner.add_url_rule("/x", "x", lambda: "x")

        def gives(environ: Any, g: Any = given) -> Any:
            return g

        inner.wsgi_app = ApiKeyMiddleware(inner.wsgi_app, kr, scope_for=gives)  # type: ignore[method-assign]
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="apikeys.wsgi"):
            r = inner.test_client().get("/x", headers=auth(key))
        assert r.status_code == 500 and json.loads(r.data)["error"]["code"] == 2000
        assert "GET '/x'" in caplog.text and type(given).__name__ in caplog.text

    def raising(environ: Any) -> Optional[str]:
        raise KeyError("boom")

    inner = Flask("raising")
    inner.add_url_rule("/x", "x", lambda: "x")
    inner.wsgi_app = ApiKeyMiddleware(inner.wsgi_app, kr, scope_for=raising)  # type: ignore[method-assign]
    r = inner.test_client().get("/x", headers=auth(key))
    assert r.status_code == 500 and b"Traceback" not in r.data and b"boom" not in r.data
