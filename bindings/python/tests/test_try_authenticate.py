"""Keyring.try_authenticate: authenticate's answer when it needs no I/O,
None when it would (a key the store has not cached, a Redis limiter)."""

from __future__ import annotations

import pathlib
from typing import Optional

import pytest

import apikeys

ADMIN = apikeys.Actor("acme", "PADMIN1", "admin")


def test_memory_keyring_always_answers_like_authenticate() -> None:
    kr = apikeys.Keyring()
    general = kr.create_general_key(ADMIN, "bot", read_only=True)
    integration = kr.create_integration_key(ADMIN, "PSERVICE1", "Datadog")
    p = kr.try_authenticate(general.secret)
    assert p is not None and p.key_id == general.record.id
    e = kr.try_authenticate(integration.secret, api="events")
    assert e is not None and e.target == "PSERVICE1"
    with pytest.raises(apikeys.Forbidden):
        kr.try_authenticate(general.secret, method="POST", scope="incidents.write")
    with pytest.raises(apikeys.WrongApi):
        kr.try_authenticate(general.secret, api="events")
    with pytest.raises(apikeys.Unauthorized):
        kr.try_authenticate("y_NbAkKc66ryYTWUXYEu")  # well-formed, unknown: a definite miss
    with pytest.raises(apikeys.Unauthorized):
        kr.try_authenticate("not a key")
    kr.disable(ADMIN, general.record.id)
    with pytest.raises(apikeys.Unauthorized):
        kr.try_authenticate(general.secret)


def test_bad_arguments_raise_as_for_authenticate() -> None:
    kr = apikeys.Keyring()
    secret = kr.create_general_key(ADMIN, "bot").secret
    for call in (kr.authenticate, kr.try_authenticate):
        with pytest.raises(apikeys.InvalidInput):
            call(secret, api="soap")  # type: ignore[arg-type]
        with pytest.raises(apikeys.InvalidInput):
            call(secret, scope="not a scope")
        with pytest.raises(TypeError):
            call(42)  # type: ignore[arg-type]


def test_sqlite_keyring_answers_only_keys_it_has_cached(tmp_path: pathlib.Path) -> None:
    kr = apikeys.Keyring(apikeys.SqliteStore(tmp_path / "keys.db"))
    issued = kr.create_general_key(ADMIN, "bot")
    assert kr.try_authenticate(issued.secret) is None  # cold: the store must read
    assert kr.try_authenticate("y_NbAkKc66ryYTWUXYEu") is None  # a miss is never "not found"
    with pytest.raises(apikeys.Unauthorized):
        kr.try_authenticate("not a key")  # malformed: answered without the store
    kr.authenticate(issued.secret)
    p: Optional[apikeys.Principal] = kr.try_authenticate(issued.secret)
    assert p is not None and p.key_id == issued.record.id
    kr.disable(ADMIN, issued.record.id)
    try:
        assert kr.try_authenticate(issued.secret) is None  # dropped from the cache
    except apikeys.Unauthorized:
        pass
    with pytest.raises(apikeys.Unauthorized):
        kr.authenticate(issued.secret)
    with pytest.raises(apikeys.Unauthorized):
        kr.try_authenticate(issued.secret)  # the refusal, now cached


def test_a_redis_limiter_leaves_every_known_key_to_authenticate() -> None:
    limits = apikeys.RateLimits.pagerduty()
    redis = apikeys.RedisRateLimiter("redis://127.0.0.1:1/", timeout=0.2)
    kr = apikeys.Keyring(rate_limits=limits, rate_limiter=redis)
    secret = kr.create_general_key(ADMIN, "bot").secret
    assert kr.try_authenticate(secret) is None
    with pytest.raises(apikeys.Unauthorized):
        kr.try_authenticate("not a key")
