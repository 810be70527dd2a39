"""The Python surface: datetimes, enums, reprs that hide keys, equality, the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from typing import Any

import pytest

import apikeys

from conftest import START, actor


def test_times_are_aware_utc_datetimes_exact_to_the_millisecond(
    kr: apikeys.Keyring, clock: apikeys.ManualClock, admin: apikeys.Actor
) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 14, 30, 15, 123_456, tzinfo=plus2)
    key = kr.create_general_key(admin, "k", expires_at=local)
    rec = key.record
    assert rec.created_at == START and rec.created_at.tzinfo is timezone.utc
    assert rec.expires_at is not None
    assert rec.expires_at.tzinfo is timezone.utc
    assert rec.expires_at == datetime(2026, 6, 1, 12, 30, 15, 123_000, tzinfo=timezone.utc)
    assert clock.now() == START
    clock.set(datetime(2026, 3, 1, tzinfo=timezone.utc))
    disabled = kr.disable(admin, rec.id).disabled
    assert disabled is not None and disabled.at == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert disabled.by == "PADMIN1" and disabled == kr.get(admin, rec.id).disabled
    assert repr(disabled) == "Disabled(by='PADMIN1', at=datetime.datetime(2026, 3, 1, 0, 0, tzinfo=datetime.timezone.utc))"
    assert kr.enable(admin, rec.id).disabled is None


def test_the_system_clock_is_used_by_default() -> None:
    kr = apikeys.Keyring()
    before = datetime.now(timezone.utc)
    made = kr.create_general_key(actor("admin"), "k").record.created_at
    after = datetime.now(timezone.utc)
    # The core reads a coarse clock (a few milliseconds of resolution).
    assert before - timedelta(milliseconds=50) <= made <= after + timedelta(milliseconds=50)


def test_no_repr_or_str_shows_a_key(kr: apikeys.Keyring, manager: apikeys.Actor) -> None:
    issued = [
        kr.create_general_key(actor("admin"), "general"),
        kr.create_user_token(manager, "user"),
        kr.create_scoped_token(manager, "scoped", ["incidents.read"]),
        kr.create_integration_key(manager, "PS1", "integration"),
        kr.create_routing_key(manager, "o-1", "routing"),
    ]
    for key in issued:
        r = repr(key)
        assert r.startswith("IssuedKey(") and r.endswith("secret=<hidden>)")
        api = "events" if len(key.secret) == 32 else "rest"
        principal = kr.authenticate(key.secret, api=api, scope="incidents.read")  # type: ignore[arg-type]
        shown = [repr(key), str(key), repr(key.record), str(key.record), repr(principal), repr(kr)]
        shown += [repr(e) for e in kr.audit_trail()]
        for text in shown:
            assert key.secret not in text
        assert key.record.hint == key.secret[-4:]


def test_enums_are_strings(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    as_str: str = apikeys.Role.MANAGER
    assert as_str == "user" and str(apikeys.Role.MANAGER) == "user"
    assert [r.value for r in apikeys.Role] == [
        "owner",
        "admin",
        "user",
        "limited_user",
        "observer",
        "restricted_access",
        "read_only_user",
        "read_only_limited_user",
    ]
    for role in apikeys.Role:
        assert apikeys.Actor("acme", "PU1", role).role is role
        assert apikeys.Actor("acme", "PU1", role.value).role is role
    rec = kr.create_general_key(admin, "k", read_only=True).record
    assert rec.kind == "general" and rec.access == "read_only" and rec.read_only
    assert rec.api_version == "v2"


def test_value_classes_compare_by_value() -> None:
    a = apikeys.Actor("acme", "PU1", "admin")
    assert a == apikeys.Actor("acme", "PU1", "global_admin")
    assert a != apikeys.Actor("acme", "PU1", "owner")
    assert len({a, apikeys.Actor("acme", "PU1", apikeys.Role.ADMIN)}) == 1
    assert (a.account, a.user, a.role) == ("acme", "PU1", apikeys.Role.ADMIN)
    assert repr(a) == "Actor('acme', 'PU1', 'admin')"
    s = apikeys.AccountSettings(advanced_permissions=False)
    assert (s.rest_api, s.advanced_permissions) == (True, False)
    assert s == apikeys.AccountSettings(rest_api=True, advanced_permissions=False)
    assert repr(s) == "AccountSettings(rest_api=True, advanced_permissions=False)"
    with pytest.raises(TypeError):
        positional: Any = apikeys.AccountSettings
        positional(True, False)


def test_objects_are_immutable(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    key = kr.create_general_key(admin, "k")
    with pytest.raises(AttributeError):
        key.secret = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        key.record.description = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        admin.role = "owner"  # type: ignore[misc,assignment]


def test_the_audit_trail_records_every_management_call(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    key = kr.create_general_key(admin, "k")
    with pytest.raises(apikeys.NotPermitted):
        kr.disable(actor("observer"), key.record.id)
    kr.set_user_role("acme", "PU1", "observer")
    kr.authenticate(key.secret)  # not a management call
    events = kr.audit_trail()
    assert [e.action for e in events] == ["create", "disable", "set_user_role"]
    made, refused, role = events
    assert made.allowed and made.error is None and made.reason is None
    assert (made.account, made.actor, made.actor_role) == ("acme", admin.user, apikeys.Role.ADMIN)
    assert (made.key_id, made.key_kind) == (key.record.id, apikeys.KeyKind.GENERAL)
    assert made.at == START
    assert not refused.allowed and refused.error == "not_permitted" and refused.reason
    assert (role.actor, role.actor_role, role.subject_user) == ("system", None, "PU1")


def test_users_and_accounts_read_back(kr: apikeys.Keyring) -> None:
    assert kr.user("acme", "PNOBODY") is None
    kr.set_user_role("acme", "PU1", "responder")
    state = kr.user("acme", "PU1")
    assert state is not None and state.role is apikeys.Role.RESPONDER and not state.removed
    assert kr.account("never-configured") == apikeys.AccountSettings()


def test_exceptions_form_one_hierarchy() -> None:
    classes = [
        apikeys.Unauthorized,
        apikeys.WrongApi,
        apikeys.Forbidden,
        apikeys.PlanRestricted,
        apikeys.NotPermitted,
        apikeys.NotFound,
        apikeys.RateLimited,
        apikeys.InvalidInput,
        apikeys.StoreError,
    ]
    statuses = [401, 401, 403, 402, 403, 404, 429, 400, 500]
    codes = [2006, 2006, 2010, 2014, 2010, 2100, 2020, 2001, 2000]
    for cls, status, code in zip(classes, statuses, codes):
        assert issubclass(cls, apikeys.ApiKeyError) and issubclass(cls, Exception)
        assert (cls.status, cls.code) == (status, code)
        assert cls.__module__ == "apikeys"
    assert apikeys.RateLimited.retry_after == 0.0


def test_every_public_name_is_exported_from_apikeys() -> None:
    for name in apikeys.__all__:
        obj = getattr(apikeys, name)
        if isinstance(obj, type):
            assert obj.__module__ == "apikeys", name
    assert isinstance(apikeys.__version__, str) and apikeys.__version__.count(".") == 2
