# The web frameworks are optional test dependencies: without them these tests
# are skipped, and mypy --strict must still pass.
# mypy: disable-error-code="import-not-found, untyped-decorator"
"""The example incidents service, once per framework: FastAPI (ASGI, with the
scope dependency), Starlette (ASGI, with the scope decorator) and Flask (WSGI)."""


from typing import Any, Dict

import apikeys
from apikeys.asgi import ApiKeyMiddleware as AsgiMiddleware
from apikeys.asgi import require_scope, requires_scope
from apikeys.wsgi import protect_flask

from http_support import Incidents

EVENT_LIMIT = 64 * 1024


def fastapi_app(keyring: Any) -> Any:
    from fastapi import Body, Depends, FastAPI, HTTPException, Request

    app = FastAPI()
    app.add_middleware(AsgiMiddleware, keyring=keyring, public_paths=["/health"], max_event_bytes=EVENT_LIMIT)
    db = Incidents()

    @app.get("/incidents")
    def list_incidents(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> Dict[str, Any]:
        return {"incidents": db.of(who.account), "limit": 25, "offset": 0, "more": False}

    @app.post("/incidents", status_code=201)
    def create(
        body: Dict[str, Any] = Body(...), who: apikeys.Principal = Depends(require_scope("incidents.write"))
    ) -> Dict[str, Any]:
        return {"incident": db.open(who.account, str(body.get("incident", {}).get("title", "untitled")), "rest")}

    @app.put("/incidents/{incident_id}")
    def acknowledge(
        incident_id: str, who: apikeys.Principal = Depends(require_scope("incidents.write"))
    ) -> Dict[str, Any]:
        found = db.ack(who.account, incident_id)
        if found is None:
            raise HTTPException(404)
        return {"incident": found}

    @app.get("/whoami")
    def whoami(request: Request) -> Dict[str, Any]:
        who: apikeys.Principal = request.state.apikey
        return {"account": who.account, "kind": str(who.kind.value)}

    @app.post("/v2/enqueue", status_code=202)
    def enqueue(request: Request, body: Dict[str, Any] = Body(...)) -> Dict[str, Any]:
        who: apikeys.Principal = request.state.apikey
        i = db.open(who.account, str(body["payload"]["summary"]), "events")
        return {"status": "success", "message": "Event processed", "dedup_key": i["id"], "target": who.target}

    @app.get("/health")
    def health() -> Dict[str, str]:
        return {"status": "ok"}

    return app


def starlette_app(keyring: Any) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    db = Incidents()

    @requires_scope("incidents.read")
    async def list_incidents(request: Request) -> JSONResponse:
        return JSONResponse({"incidents": db.of(request.state.apikey.account)})

    @requires_scope("incidents.write")
    async def create(request: Request) -> JSONResponse:
        return JSONResponse({"incident": db.open(request.state.apikey.account, "x", "rest")}, status_code=201)

    return Starlette(
        routes=[
            Route("/incidents", list_incidents, methods=["GET"]),
            Route("/incidents", create, methods=["POST"]),
        ],
        middleware=[Middleware(AsgiMiddleware, keyring=keyring)],
    )


def flask_app(keyring: Any) -> Any:
    from flask import Flask, abort, request

    app = Flask("incidents")
    db = Incidents()

    def who() -> apikeys.Principal:
        p: apikeys.Principal = request.environ["apikeys.principal"]
        return p

    @app.get("/incidents")
    @requires_scope("incidents.read")
    def list_incidents() -> Any:
        return {"incidents": db.of(who().account), "limit": 25, "offset": 0, "more": False}

    @app.post("/incidents")
    @requires_scope("incidents.write")
    def create() -> Any:
        body = request.get_json(force=True) or {}
        return {"incident": db.open(who().account, str(body.get("incident", {}).get("title", "untitled")), "rest")}, 201

    @app.put("/incidents/<incident_id>")
    @requires_scope("incidents.write")
    def acknowledge(incident_id: str) -> Any:
        found = db.ack(who().account, incident_id)
        if found is None:
            abort(404)
        return {"incident": found}

    @app.get("/whoami")
    def whoami() -> Any:
        return {"account": who().account, "kind": str(who().kind.value)}

    @app.post("/v2/enqueue")
    def enqueue() -> Any:
        body = request.get_json(force=True)
        i = db.open(who().account, str(body["payload"]["summary"]), "events")
        return {"status": "success", "message": "Event processed", "dedup_key": i["id"], "target": who().target}, 202

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok"}

    protect_flask(app, keyring, public_paths=["/health"], max_event_bytes=EVENT_LIMIT)
    return app
