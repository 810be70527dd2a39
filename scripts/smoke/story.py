"""The quickstart story against an installed wheel (scripts/test-packages.sh runs it
in a fresh venv per CPython, outside the repository, with no Rust on the PATH)."""

import importlib.metadata
import os
import sys
import tempfile

import apikeys
import apikeys.asgi  # noqa: F401  (the adapters import; their frameworks load only when used)
import apikeys.wsgi  # noqa: F401

assert "site-packages" in apikeys._apikeys.__file__, apikeys._apikeys.__file__


def refused(exc_type, call):
    try:
        call()
    except exc_type as e:
        return e
    raise AssertionError(f"expected {exc_type.__name__}")


kr = apikeys.Keyring()
admin = apikeys.Actor("acme", "PADMIN1", "admin")
issued = kr.create_general_key(admin, "CI bot", read_only=True)
token = issued.secret
assert len(token) == 20 and "secret=<hidden>" in repr(issued)

p = kr.authenticate(token, api="rest", method="GET")
assert p.account == "acme" and p.kind is apikeys.KeyKind.GENERAL
e = refused(apikeys.Forbidden, lambda: kr.authenticate(token, method="POST", scope="incidents.write"))
assert (e.status, e.code) == (403, 2010)

key_id = issued.record.id
kr.disable(admin, key_id)
e = refused(apikeys.Unauthorized, lambda: kr.authenticate(token))
assert e.status == 401 and token not in str(e)
kr.enable(admin, key_id)
assert kr.authenticate(token).key_id == key_id

manager = apikeys.Actor("acme", "PMGR1", "manager")
events = kr.create_integration_key(manager, "PSERVICE1", "Datadog")
assert kr.authenticate(events.secret, api="events").target == "PSERVICE1"
refused(apikeys.WrongApi, lambda: kr.authenticate(events.secret, api="rest"))
kr.delete(admin, key_id)
refused(apikeys.Unauthorized, lambda: kr.authenticate(token))
assert refused(apikeys.NotFound, lambda: kr.get(admin, key_id)).status == 404

# The SQLite store is compiled into the wheel: keys survive a new keyring on the file.
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "keys.db")
    kept = apikeys.Keyring(apikeys.SqliteStore(path)).create_general_key(admin, "kept").secret
    assert apikeys.Keyring(apikeys.SqliteStore(path)).authenticate(kept, method="DELETE").account == "acme"

# What PyPI shows: the extras for the adapters, the typing marker.
meta = importlib.metadata.metadata("apikeys")
assert set(meta.get_all("Provides-Extra") or []) >= {"asgi", "fastapi", "wsgi"}, meta.get_all("Provides-Extra")
assert meta["Description-Content-Type"].startswith("text/markdown") and "pip install apikeys" in (meta["Description"] or meta.get_payload())
assert meta["Requires-Python"] == ">=3.9" and meta.get_all("Project-URL"), meta.get_all("Project-URL")
files = {str(f) for f in importlib.metadata.files("apikeys") or []}
assert "apikeys/py.typed" in files and "apikeys/__init__.pyi" in files, sorted(files)
print(f"python story: ok (CPython {sys.version.split()[0]}, {os.path.basename(apikeys._apikeys.__file__)})")
