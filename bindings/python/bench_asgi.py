"""What apikeys.asgi costs per request in-process, and what its routing cache saves.

    python bindings/python/bench_asgi.py [--quick]

Drives ApiKeyMiddleware straight through ASGI (no sockets) in front of a
trivial app, on a FastAPI app of 12 routes (the route asked for is the last
one) and on a Starlette app routed by Host, with the kept route scopes used
(``cached``) and with every request routed again (``routed``); ``no auth``
is the app without the middleware. Fastest of the rounds, alternated.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Tuple

import apikeys
from apikeys.asgi import ApiKeyMiddleware, require_scope, requires_scope

Message = MutableMapping[str, Any]


class _NoKeep(dict):  # type: ignore[type-arg]
    """A dict that keeps nothing: every request is routed again."""

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


def fastapi_app() -> Any:
    from fastapi import Depends, FastAPI

    app = FastAPI()
    for i in range(11):

        async def other(who: apikeys.Principal = Depends(require_scope("services.read"))) -> str:
            return "x"

        app.get(f"/other{i}/{{item}}")(other)

    async def incidents(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> str:
        return "x"

    app.get("/incidents/{incident_id}")(incidents)
    return app


def host_app() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Host, Route, Router

    @requires_scope("incidents.read")
    async def public(request: Any) -> PlainTextResponse:
        return PlainTextResponse("x")

    @requires_scope("audit_records.read")
    async def admin(request: Any) -> PlainTextResponse:
        return PlainTextResponse("x")

    return Starlette(
        routes=[
            Host("admin.example", Router([Route("/incidents/{incident_id}", admin)])),
            Host("public.example", Router([Route("/incidents/{incident_id}", public)])),
        ]
    )


async def _trivial(scope: Any, receive: Any, send: Callable[[Message], Awaitable[None]]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"x"})


def _scope(app: Any, token: str) -> Dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/incidents/P123",
        "root_path": "",
        "headers": [(b"host", b"public.example"), (b"authorization", f"Token token={token}".encode())],
        "app": app,
    }


def measure(quick: bool) -> List[Tuple[str, float]]:
    kr = apikeys.Keyring()
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    token = kr.create_general_key(admin, "bench").secret
    calls = 2_000 if quick else 50_000
    rounds = 2 if quick else 9

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        return None

    sides: Dict[str, Tuple[Any, Dict[str, Any]]] = {}
    for name, make in (("FastAPI, 12 routes", fastapi_app), ("Starlette, Host routing", host_app)):
        app = make()
        cached = ApiKeyMiddleware(_trivial, kr)
        routed = ApiKeyMiddleware(_trivial, kr)
        routed._scoping = (routed.scope_for, _NoKeep())
        scope = _scope(app, token)
        sides[f"{name}: no auth"] = (_trivial, scope)
        sides[f"{name}: cached"] = (cached, scope)
        sides[f"{name}: routed"] = (routed, scope)

    best = {k: float("inf") for k in sides}

    async def run() -> None:
        for _ in range(rounds):
            for k, (asgi, scope) in sides.items():
                t = time.perf_counter()
                for _ in range(calls):
                    await asgi(dict(scope), receive, send)
                best[k] = min(best[k], (time.perf_counter() - t) / calls)

    asyncio.run(run())
    return [(k, v) for k, v in best.items()]


def main() -> None:
    quick = "--quick" in sys.argv
    print(f"apikeys {apikeys.__version__}, CPython {sys.version.split()[0]}: one request through ASGI, fastest round")
    for name, secs in measure(quick):
        print(f"{name:45} {secs * 1e6:7.2f} µs")


if __name__ == "__main__":
    main()
