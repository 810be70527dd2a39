"""FastAPI on uvicorn, with (`auth`) or without (`plain`) apikeys.asgi, for wrk.sh.

    python asgi_app.py plain|auth PORT

Prints a full-access key on its first line, then serves GET /incidents
(needing incidents.read when protected) on 127.0.0.1:PORT with one worker.
STORE=sqlite keeps the keys in a SQLite file in a temporary directory instead
of memory: a keyring that may block, so the middleware tries each check
inline (answered from the store's cache once the key has been seen) and runs
only the first, cold one in a worker thread.

FORM=depends (the default) gives the protected route its principal through
`Depends(require_scope(...))` (the convenient way); FORM=scope declares the
scope with `@requires_scope` and reads `request.scope["apikey"]` (the cheap
way), the plain route then taking the `Request` too.

HANDLER=sync (the default) declares the handlers with `def`, so FastAPI runs
each in anyio's thread pool (a hand-off to a worker thread and back per
request); HANDLER=async declares them `async def`, run on the event loop:
the same routes without the thread hop, to tell what the hop does to the
figures."""

import os
import sys
import tempfile

import uvicorn
from fastapi import Depends, FastAPI, Request

import apikeys
from apikeys.asgi import ApiKeyMiddleware, require_scope, requires_scope

mode, port = sys.argv[1], int(sys.argv[2])
if os.environ.get("STORE", "memory") == "sqlite":
    keyring = apikeys.Keyring(apikeys.SqliteStore(os.path.join(tempfile.mkdtemp(), "keys.db")))
else:
    keyring = apikeys.Keyring()
key = keyring.create_general_key(apikeys.Actor("acme", "PADMIN1", "admin"), "bench").secret
print(key, flush=True)
BODY = {"incidents": [], "limit": 25, "offset": 0, "more": False}
app = FastAPI()
form = os.environ.get("FORM", "depends")
if form not in ("depends", "scope"):
    sys.exit("FORM is depends or scope")
handler = os.environ.get("HANDLER", "sync")
if handler not in ("sync", "async"):
    sys.exit("HANDLER is sync or async")
if mode == "auth":
    app.add_middleware(ApiKeyMiddleware, keyring=keyring)
if handler == "async":
    # The same four handlers as below, run on the event loop.
    if mode == "auth" and form == "depends":

        @app.get("/incidents")
        async def protected_async(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> dict:
            return BODY

    elif mode == "auth":

        @app.get("/incidents")
        @requires_scope("incidents.read")
        async def protected_cheap_async(request: Request) -> dict:
            request.scope["apikey"]
            return BODY

    elif form == "scope":

        @app.get("/incidents")
        async def plain_request_async(request: Request) -> dict:
            request.scope.get("apikey")
            return BODY

    else:

        @app.get("/incidents")
        async def plain_async() -> dict:
            return BODY

elif mode == "auth" and form == "depends":

    @app.get("/incidents")
    def protected(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> dict:
        return BODY

elif mode == "auth":

    @app.get("/incidents")
    @requires_scope("incidents.read")
    def protected_cheap(request: Request) -> dict:
        request.scope["apikey"]
        return BODY

elif form == "scope":

    @app.get("/incidents")
    def plain_request(request: Request) -> dict:
        request.scope.get("apikey")
        return BODY

else:

    @app.get("/incidents")
    def plain() -> dict:
        return BODY


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
