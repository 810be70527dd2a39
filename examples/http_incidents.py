"""The incidents API of examples/http_incidents.rs, in FastAPI with apikeys.asgi.

    pip install fastapi uvicorn    # and the apikeys wheel (scripts/test-python.sh builds it)
    python examples/http_incidents.py [PORT]

GET /incidents needs incidents.read; POST /incidents and PUT /incidents/{id}
need incidents.write; POST /v2/enqueue takes an Events API v2 body (202).
Prints a few keys and curl commands to try, then serves on 127.0.0.1."""

import sys
from typing import Any, Dict, List, Union

import uvicorn
from fastapi import Body, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

import apikeys
from apikeys.asgi import ApiKeyMiddleware, require_scope

keyring = apikeys.Keyring()
admin = apikeys.Actor("acme", "PADMIN1", "admin")
manager = apikeys.Actor("acme", "PMANAGER1", "manager")
full = keyring.create_general_key(admin, "ops bot").secret
read_only = keyring.create_general_key(admin, "dashboard", read_only=True).secret
scoped = keyring.create_scoped_token(manager, "ack bot", ["incidents.write"]).secret
events = keyring.create_integration_key(manager, "PSERVICE1", "Datadog").secret

app = FastAPI()
app.add_middleware(ApiKeyMiddleware, keyring=keyring)  # Events on /v2/enqueue
incidents: List[Dict[str, Any]] = []


def open_incident(account: str, title: str, via: str) -> Dict[str, Any]:
    i = {"id": f"Q{len(incidents) + 1:06d}", "title": title, "status": "triggered", "account": account, "created_via": via}
    incidents.append(i)
    return i


@app.get("/incidents")
async def list_incidents(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> Dict[str, Any]:
    return {"incidents": [i for i in incidents if i["account"] == who.account], "more": False}


def rest_error(message: str) -> JSONResponse:
    """A 400 in PagerDuty's REST error format."""
    return JSONResponse({"error": {"message": message, "code": 2001}}, status_code=400)


@app.post("/incidents", status_code=201, response_model=None)
async def create(
    body: Dict[str, Any] = Body(...), who: apikeys.Principal = Depends(require_scope("incidents.write"))
) -> Union[Dict[str, Any], JSONResponse]:
    incident = body.get("incident", {})
    if not isinstance(incident, dict):
        return rest_error("'incident' must be an object")
    return {"incident": open_incident(who.account, str(incident.get("title", "untitled")), "rest")}


@app.put("/incidents/{incident_id}")
async def acknowledge(incident_id: str, who: apikeys.Principal = Depends(require_scope("incidents.write"))) -> Dict[str, Any]:
    for i in incidents:
        if i["id"] == incident_id and i["account"] == who.account:
            i["status"] = "acknowledged"
            return {"incident": i}
    raise HTTPException(404)


@app.post("/v2/enqueue", status_code=202, response_model=None)
async def enqueue(request: Request, event: Dict[str, Any] = Body(...)) -> Union[Dict[str, Any], JSONResponse]:
    who: apikeys.Principal = request.state.apikey
    payload = event.get("payload", {})
    if not isinstance(payload, dict):
        # PagerDuty's Events API v2 answer to an event it cannot take.
        return JSONResponse(
            {"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload' must be an object"]},
            status_code=400,
        )
    i = open_incident(who.account, str(payload.get("summary", "event")), "events")
    return {"status": "success", "message": "Event processed", "dedup_key": i["id"]}


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    base = f"http://127.0.0.1:{port}"
    print(f"incidents API on {base}\n  full: {full}\n  read-only: {read_only}\n  scoped: {scoped}\n  events: {events}")
    print(f"  curl -i -H 'Authorization: Token token={read_only}' {base}/incidents")
    print(f"  curl -i -H 'Authorization: Token token={read_only}' -H 'Content-Type: application/json' -d '{{\"incident\":{{\"title\":\"db down\"}}}}' {base}/incidents   # 403")
    print(f"  curl -i -H 'Content-Type: application/json' -d '{{\"routing_key\":\"{events}\",\"event_action\":\"trigger\",\"payload\":{{\"summary\":\"disk full\",\"source\":\"db1\",\"severity\":\"critical\"}}}}' {base}/v2/enqueue   # 202")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
