"""FastAPI on uvicorn, with (`auth`) or without (`plain`) apikeys.asgi, for wrk.sh.

    python asgi_app.py plain|auth PORT

Prints a full-access key on its first line, then serves GET /incidents
(needing incidents.read when protected) on 127.0.0.1:PORT with one worker.
STORE=sqlite keeps the keys in a SQLite file in a temporary directory instead
of memory: a keyring that may block, so the middleware tries each check
inline (answered from the store's cache once the key has been seen) and runs
only the first, cold one in a worker thread."""

import os
import sys
import tempfile

import uvicorn
from fastapi import Depends, FastAPI

import apikeys
from apikeys.asgi import ApiKeyMiddleware, require_scope

mode, port = sys.argv[1], int(sys.argv[2])
if os.environ.get("STORE", "memory") == "sqlite":
    keyring = apikeys.Keyring(apikeys.SqliteStore(os.path.join(tempfile.mkdtemp(), "keys.db")))
else:
    keyring = apikeys.Keyring()
key = keyring.create_general_key(apikeys.Actor("acme", "PADMIN1", "admin"), "bench").secret
print(key, flush=True)
BODY = {"incidents": [], "limit": 25, "offset": 0, "more": False}
app = FastAPI()
if mode == "auth":
    app.add_middleware(ApiKeyMiddleware, keyring=keyring)

    @app.get("/incidents")
    def protected(who: apikeys.Principal = Depends(require_scope("incidents.read"))) -> dict:
        return BODY

else:

    @app.get("/incidents")
    def plain() -> dict:
        return BODY


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
