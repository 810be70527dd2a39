"""Flask on gunicorn, with (`auth`) or without (`plain`) apikeys.wsgi, for wrk.sh.

    python wsgi_app.py plain|auth PORT [THREADS]

Prints a full-access key on its first line, then serves GET /incidents
(needing incidents.read when protected) on 127.0.0.1:PORT: one gunicorn
worker process of the threaded worker class (`gthread`, keep-alive) with
THREADS threads (default 4). The keyring is made before the worker forks."""

import sys

from flask import Flask
from gunicorn.app.base import BaseApplication

import apikeys
from apikeys.wsgi import protect_flask, requires_scope

mode, port = sys.argv[1], int(sys.argv[2])
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
keyring = apikeys.Keyring()
key = keyring.create_general_key(apikeys.Actor("acme", "PADMIN1", "admin"), "bench").secret
print(key, flush=True)
BODY = {"incidents": [], "limit": 25, "offset": 0, "more": False}
app = Flask(__name__)
if mode == "auth":

    @app.get("/incidents")
    @requires_scope("incidents.read")
    def protected() -> dict:
        return BODY

    protect_flask(app, keyring)

else:

    @app.get("/incidents")
    def plain() -> dict:
        return BODY


class Server(BaseApplication):
    def load_config(self) -> None:
        for k, v in {
            "bind": f"127.0.0.1:{port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": 30,
            "loglevel": "warning",
            "accesslog": None,
        }.items():
            self.cfg.set(k, v)

    def load(self) -> Flask:
        return app


Server().run()
