"""Verification metrics (docs/design.md §12) through ``prometheus_client``:
the final answer of each authentication, counted once by the core, rendered
by ``generate_latest``; bad input refused with a clear error."""

from __future__ import annotations

import re
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import apikeys
from apikeys.prometheus import AuthCollector

from conftest import actor


def scrape(kr: apikeys.Keyring) -> str:
    registry = CollectorRegistry()
    registry.register(AuthCollector(kr))
    return generate_latest(registry).decode()


def sample(text: str, name: str, kind: str, outcome: str, le: str | None = None) -> float | None:
    """The value of sample `name` with these labels, read by prometheus_client's own parser."""
    want = {"kind": kind, "outcome": outcome}
    if le is not None:
        want["le"] = le
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == want:
                return float(s.value)
    return None


def test_each_final_answer_is_counted_once_with_its_kind_and_outcome() -> None:
    limits = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(1, 60))
    kr = apikeys.Keyring(rate_limits=limits, metrics=True)
    admin, manager = actor("admin"), actor("manager")
    full = kr.create_general_key(admin, "full")
    ro = kr.create_general_key(admin, "ro", read_only=True)
    ev = kr.create_integration_key(manager, "PSVC1", "ev")
    tok = kr.create_user_token(manager, "mine")

    kr.authenticate(full.secret)
    with pytest.raises(apikeys.RateLimited):  # valid, refused by its limit: not "ok"
        kr.authenticate(full.secret)
    with pytest.raises(apikeys.Forbidden):
        kr.authenticate(ro.secret, method="POST")
    with pytest.raises(apikeys.WrongApi):
        kr.authenticate(ev.secret)
    with pytest.raises(apikeys.Unauthorized):
        kr.authenticate("not a key")
    assert kr.try_authenticate(ev.secret, "events") is not None
    kr.authenticate(tok.secret, remote_address="10.0.0.1", path="/incidents")
    kr.set_account("acme", apikeys.AccountSettings(rest_api=True, advanced_permissions=False))
    with pytest.raises(apikeys.PlanRestricted):
        kr.authenticate(tok.secret)

    text = scrape(kr)
    expected = {
        ("general", "ok"): 1,
        ("general", "rate_limited"): 1,
        ("general", "forbidden"): 1,
        ("integration", "wrong_api"): 1,
        ("integration", "ok"): 1,
        ("malformed", "unauthorized"): 1,
        ("user_token", "ok"): 1,
        ("user_token", "plan_restricted"): 1,
    }
    for (kind, outcome), n in expected.items():
        assert sample(text, "apikeys_authentications_total", kind, outcome) == n, (kind, outcome)
        assert sample(text, "apikeys_authentication_duration_seconds_count", kind, outcome) == n
        le_inf = sample(text, "apikeys_authentication_duration_seconds_bucket", kind, outcome, "+Inf")
        assert le_inf == n
    counted = [l for l in text.splitlines() if l.startswith("apikeys_authentications_total{")]
    assert len(counted) == len(expected), text
    # The snapshot the collector read, straight from the core.
    snap = kr.metrics()
    assert snap is not None
    bounds, series = snap
    assert bounds[0] == 1e-6 and bounds[-1] == 1.0
    assert sum(s[2] for s in series) == sum(expected.values())
    for _kind, _outcome, count, sum_seconds, buckets in series:
        assert len(buckets) == len(bounds) + 1 and buckets[-1] == count
        assert buckets == sorted(buckets) and sum_seconds >= 0


def test_histogram_buckets_render_with_the_core_bounds() -> None:
    kr = apikeys.Keyring(metrics=True)
    with pytest.raises(apikeys.Unauthorized):
        kr.authenticate("x")
    text = scrape(kr)
    les = re.findall(
        r'^apikeys_authentication_duration_seconds_bucket\{kind="malformed",le="([^"]+)",outcome="unauthorized"\}',
        text,
        re.M,
    )
    assert les[0] == "1e-06" and les[-2:] == ["1.0", "+Inf"] and len(les) == 19, text
    assert "# TYPE apikeys_authentications_total counter" in text
    assert "# TYPE apikeys_authentication_duration_seconds histogram" in text


def test_concurrent_authentications_add_up_exactly() -> None:
    kr = apikeys.Keyring(metrics=True)
    token = kr.create_general_key(actor("admin"), "k").secret
    threads, calls = 6, 500

    def work(t: int) -> None:
        for i in range(calls):
            if (i + t) % 4 == 0:
                with pytest.raises(apikeys.Unauthorized):
                    kr.authenticate("garbage")
            else:
                kr.authenticate(token)

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    bad = sum(1 for t in range(threads) for i in range(calls) if (i + t) % 4 == 0)
    text = scrape(kr)
    assert sample(text, "apikeys_authentications_total", "malformed", "unauthorized") == bad
    assert sample(text, "apikeys_authentications_total", "general", "ok") == threads * calls - bad


def test_no_key_material_in_the_exposition() -> None:
    kr = apikeys.Keyring(metrics=True)
    token = kr.create_general_key(actor("admin"), "k").secret
    kr.authenticate(token)
    for bad in (token + "x", token[:-1] + ("a" if token[-1] != "a" else "b"), "Token token=" + token):
        with pytest.raises(apikeys.Unauthorized):
            kr.authenticate(bad)
    text = scrape(kr)
    assert token not in text and token[:8] not in text and token[-8:] not in text
    assert repr(kr.metrics()).find(token[:8]) == -1


def test_bad_input_is_refused_clearly() -> None:
    plain = apikeys.Keyring()
    assert plain.metrics() is None  # reading with none installed
    with pytest.raises(ValueError, match=r"Keyring\(metrics=True\)"):
        AuthCollector(plain)
    with pytest.raises(TypeError, match="apikeys.Keyring"):
        AuthCollector("keyring")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apikeys.Keyring(metrics="yes")  # type: ignore[arg-type]
    assert apikeys.Keyring(metrics=False).metrics() is None
    assert apikeys.Keyring(metrics=None).metrics() is None
    # Installing twice in one registry: prometheus_client refuses the duplicate.
    kr = apikeys.Keyring(metrics=True)
    registry = CollectorRegistry()
    registry.register(AuthCollector(kr))
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(AuthCollector(kr))
    # An empty keyring scrapes as empty families, not an error.
    text = generate_latest(registry).decode()
    assert "apikeys_authentications_total{" not in text
    assert "# HELP apikeys_authentication_duration_seconds" in text
