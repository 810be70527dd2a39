"""The names Python gained so the three APIs match (docs/api.md): store_kind,
has_rate_limits, Keyring.flush, AuditEvent.outcome and audit_capacity."""

from __future__ import annotations

from pathlib import Path

import pytest

import apikeys

from conftest import actor


def test_store_kind_has_rate_limits_and_may_block(tmp_path: Path) -> None:
    mem = apikeys.Keyring()
    assert (mem.store_kind, mem.has_rate_limits, mem.may_block) == ("memory", False, False)
    limited = apikeys.Keyring(rate_limits=apikeys.RateLimits.pagerduty())
    assert (limited.has_rate_limits, limited.may_block) == (True, False)
    sqlite = apikeys.Keyring(apikeys.SqliteStore(tmp_path / "k.db"))
    assert (sqlite.store_kind, sqlite.may_block) == ("sqlite", True)


def test_flush_answers_how_many_uses_it_wrote(tmp_path: Path) -> None:
    assert apikeys.Keyring().flush() == 0
    kr = apikeys.Keyring(apikeys.SqliteStore(tmp_path / "k.db"))
    key = kr.create_general_key(actor("admin"), "ci")
    kr.authenticate(key.secret)
    assert kr.flush() == 1
    assert kr.flush() == 0


def test_audit_outcome_is_allowed_or_refused() -> None:
    kr = apikeys.Keyring()
    kr.create_general_key(actor("admin"), "ci")
    try:
        kr.create_general_key(actor("observer"), "nope")
    except apikeys.NotPermitted:
        pass
    allowed, refused = kr.audit_trail()[-2:]
    assert (allowed.outcome, allowed.allowed, allowed.error) == ("allowed", True, None)
    assert (refused.outcome, refused.allowed, refused.error) == ("refused", False, "not_permitted")


def test_audit_capacity_bounds_the_trail_as_nodes_option_does() -> None:
    kr = apikeys.Keyring(audit_capacity=2)
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    for name in ("a", "b", "c"):
        kr.create_general_key(admin, name)
    assert len(kr.audit_trail()) == 2
    for bad in (0, -1, 2**32):
        with pytest.raises(apikeys.InvalidInput) as caught:
            apikeys.Keyring(audit_capacity=bad)
        assert caught.value.field == "audit_capacity"
    wrong: object
    for wrong in ("2", 2.0, True):
        with pytest.raises(TypeError, match="audit_capacity"):
            apikeys.Keyring(audit_capacity=wrong)  # type: ignore[arg-type]
