# The web frameworks and cryptography are optional test dependencies
# (scripts/test-python.sh installs them): without them these tests are
# skipped, and mypy --strict must still pass.
# mypy: disable-error-code="import-not-found, untyped-decorator"
"""apikeys.asgi.secret_scanning_app: GitHub's secret-scanning receiver written
in Rust (apikeys_http::SecretScanning), mounted in Starlette and served by
uvicorn on a loopback port. Reports are signed in the test exactly as GitHub
signs them: ECDSA P-256 with SHA-256 over the raw body, the DER signature in
base64 in `Github-Public-Key-Signature`, the key named by
`Github-Public-Key-Identifier`. On the in-memory store and on SQLite."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")
httpx = pytest.importorskip("httpx")
ec = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.ec")

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from starlette.applications import Starlette  # noqa: E402
from starlette.routing import Route  # noqa: E402

import apikeys  # noqa: E402
from apikeys.asgi import secret_scanning_app  # noqa: E402

from http_support import Uvicorn  # noqa: E402

PATH = "/github/secret-scanning"
ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")


class GitHub:
    """A GitHub signing key, made in the test."""

    def __init__(self, identifier: str) -> None:
        self.identifier = identifier
        self.key = ec.generate_private_key(ec.SECP256R1())

    def pem(self) -> str:
        pem: bytes = self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()

    def der(self) -> bytes:
        der: bytes = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return der

    def sign(self, body: bytes) -> str:
        return base64.b64encode(self.key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()

    def headers(self, body: bytes) -> Dict[str, str]:
        return {
            "content-type": "application/json",
            "Github-Public-Key-Identifier": self.identifier,
            "Github-Public-Key-Signature": self.sign(body),
        }


def report(*tokens: Any, url: str = "https://github.com/octo/repo/blob/main/.env") -> bytes:
    return json.dumps([{"token": t, "type": "apikeys_general", "url": url, "source": "content"} for t in tokens]).encode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Host:
    def __init__(self, keyring: apikeys.Keyring) -> None:
        self.keyring = keyring
        self.github = GitHub("gh-key-1")
        self.other = GitHub("gh-key-2")  # trusted as DER
        self.stranger = GitHub("gh-key-1")  # same identifier, key not trusted
        self.listed = GitHub("gh-listed")  # trusted from GitHub's key list
        listing = json.dumps(
            {"public_keys": [{"key_identifier": "gh-listed", "key": self.listed.pem(), "is_current": True}]}
        )
        app = Starlette(
            routes=[
                Route(
                    PATH,
                    endpoint=secret_scanning_app(
                        keyring,
                        public_keys={self.github.identifier: self.github.pem(), self.other.identifier: self.other.der()},
                        github_keys=listing,
                    ),
                ),
                Route(
                    "/delete",
                    endpoint=secret_scanning_app(
                        keyring, public_keys={self.github.identifier: self.github.pem()}, on_live_key="delete"
                    ),
                ),
                Route(
                    "/small",
                    endpoint=secret_scanning_app(
                        keyring, public_keys={self.github.identifier: self.github.pem()}, max_body_bytes=1024
                    ),
                ),
            ]
        )
        self.server = Uvicorn(app)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.server.port}", timeout=30)

    def post(self, body: bytes, headers: Optional[Dict[str, str]] = None, path: str = PATH) -> Any:
        return self.client.post(path, content=body, headers=self.github.headers(body) if headers is None else headers)

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture(params=["memory", "sqlite"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    store = apikeys.SqliteStore(str(tmp_path / "keys.db")) if request.param == "sqlite" else None
    h = Host(apikeys.Keyring(store))
    try:
        yield h
    finally:
        h.close()


def feedback(r: Any) -> List[Dict[str, Any]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    out: List[Dict[str, Any]] = r.json()
    return out


def test_a_reported_live_key_is_disabled_and_labelled_true_positive(host: Host) -> None:
    live = host.keyring.create_general_key(ADMIN, "leaked")
    fine = host.keyring.create_general_key(ADMIN, "not leaked")
    body = report(live.secret, "not-one-of-ours-0123456789abcdef")
    answer = feedback(host.post(body))
    assert answer == [
        {"token_hash": token_hash(live.secret), "token_type": "apikeys_general", "label": "true_positive"},
        {"token_hash": token_hash("not-one-of-ours-0123456789abcdef"), "token_type": "apikeys_general", "label": "false_positive"},
    ]
    with pytest.raises(apikeys.Unauthorized):
        host.keyring.authenticate(live.secret)
    record = host.keyring.get(ADMIN, live.record.id)
    assert record.disabled is not None and record.disabled.by == "system:leak"
    # The audit record keeps where the report says the key was seen.
    leak = [e for e in host.keyring.audit_records(ADMIN.account).records if e.key_id == live.record.id and e.action == "disable"]
    assert len(leak) == 1, leak
    ctx = leak[0].context
    assert (ctx.report_url, ctx.report_source) == ("https://github.com/octo/repo/blob/main/.env", "content")
    assert "report_url='https://github.com/octo/repo/blob/main/.env'" in repr(ctx)
    assert live.secret not in repr(leak[0])
    host.keyring.authenticate(fine.secret)
    # The raw token is in no answer.
    assert live.secret not in json.dumps(answer)


def test_a_second_identical_report_answers_the_same_and_changes_nothing(host: Host) -> None:
    live = host.keyring.create_general_key(ADMIN, "leaked")
    body = report(live.secret)
    first = feedback(host.post(body))
    trail = len(host.keyring.audit_records(ADMIN.account).records)
    second = feedback(host.post(body))
    assert first == second
    assert len(host.keyring.audit_records(ADMIN.account).records) == trail, "nothing written the second time"


def test_keys_from_der_and_from_githubs_list_are_trusted(host: Host) -> None:
    live = host.keyring.create_general_key(ADMIN, "leaked")
    body = report(live.secret)
    answer = feedback(host.client.post(PATH, content=body, headers=host.other.headers(body)))
    assert answer[0]["label"] == "true_positive"
    another = host.keyring.create_general_key(ADMIN, "leaked too")
    body = report(another.secret)
    answer = feedback(host.client.post(PATH, content=body, headers=host.listed.headers(body)))
    assert answer[0]["label"] == "true_positive"


def test_unsigned_or_badly_signed_reports_are_refused_before_any_key_is_touched(host: Host) -> None:
    live = host.keyring.create_general_key(ADMIN, "leaked")
    body = report(live.secret)
    good = host.github.headers(body)
    cases: List[Dict[str, str]] = [
        {"content-type": "application/json"},  # unsigned
        {k: v for k, v in good.items() if k != "Github-Public-Key-Signature"},
        {k: v for k, v in good.items() if k != "Github-Public-Key-Identifier"},
        {**good, "Github-Public-Key-Identifier": "unknown-key"},
        {**good, "Github-Public-Key-Signature": "not base64!"},
        {**good, "Github-Public-Key-Signature": base64.b64encode(b"not DER").decode()},
        host.stranger.headers(body),  # right identifier, wrong key
        {**good, "Github-Public-Key-Signature": host.github.sign(body + b" ")},  # another body's signature
    ]
    for headers in cases:
        r = host.client.post(PATH, content=body, headers=headers)
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.json()["error"]["code"] == 2006
        assert live.secret not in r.text
    # A changed body under a good signature.
    r = host.client.post(PATH, content=report(live.secret, "x"), headers=good)
    assert r.status_code == 401
    host.keyring.authenticate(live.secret)  # untouched
    assert host.keyring.get(ADMIN, live.record.id).disabled is None


def test_on_live_key_delete_deletes(host: Host) -> None:
    live = host.keyring.create_general_key(ADMIN, "leaked")
    answer = feedback(host.post(report(live.secret), path="/delete"))
    assert answer[0]["label"] == "true_positive"
    with pytest.raises(apikeys.NotFound):
        host.keyring.get(ADMIN, live.record.id)


def test_bad_bodies_and_methods(host: Host) -> None:
    for body in [b"{", b"{}", b'"x"', b"\xff"]:
        r = host.post(body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == 2001
    r = host.client.get(PATH)
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    # Over the limit: 413 from the Rust code, the rest never read.
    big = report("x" * 2000)
    r = host.post(big, path="/small")
    assert r.status_code == 413, r.text

    def chunks() -> Iterator[bytes]:
        for _ in range(4096):  # 4 MiB offered, no Content-Length
            yield b" " * 1024

    r = host.client.post("/small", content=chunks(), headers=host.github.headers(b""))
    assert r.status_code == 413, r.text
    # Tokens of other shapes, not strings, missing: false positives; nothing done.
    odd = json.dumps([{"token": 5}, {"type": "x"}, {"token": "ghp_" + "a" * 36}]).encode()
    assert [f["label"] for f in feedback(host.post(odd))] == ["false_positive"] * 3


def test_secret_scanning_app_checks_its_arguments() -> None:
    kr = apikeys.Keyring()
    gh = GitHub("k")
    with pytest.raises(TypeError, match="keyring"):
        secret_scanning_app(None, public_keys={})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="public_keys"):
        secret_scanning_app(kr, public_keys=[("k", gh.pem())])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="public_keys"):
        secret_scanning_app(kr, public_keys={"k": 5})  # type: ignore[dict-item]
    with pytest.raises(apikeys.InvalidInput, match="public_keys"):
        secret_scanning_app(kr, public_keys={"k": "not a key"})
    with pytest.raises(apikeys.InvalidInput, match="public_keys"):
        secret_scanning_app(kr, public_keys={"k": b"not DER"})
    with pytest.raises(apikeys.InvalidInput, match="public_keys"):
        secret_scanning_app(kr, public_keys={"k\ud800": gh.pem()})
    with pytest.raises(apikeys.InvalidInput, match="public_keys"):
        secret_scanning_app(kr, public_keys={"": gh.pem()})
    with pytest.raises(apikeys.InvalidInput, match="github_keys"):
        secret_scanning_app(kr, github_keys="{")
    with pytest.raises(apikeys.InvalidInput, match="on_live_key"):
        secret_scanning_app(kr, public_keys={"k": gh.pem()}, on_live_key="burn")
    with pytest.raises(TypeError, match="max_body_bytes"):
        secret_scanning_app(kr, max_body_bytes=True)
    with pytest.raises(apikeys.InvalidInput, match="max_body_bytes"):
        secret_scanning_app(kr, max_body_bytes=0)
    assert callable(secret_scanning_app(kr, public_keys={"k": gh.pem()}))
