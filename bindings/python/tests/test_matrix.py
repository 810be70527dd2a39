"""The permission matrix of DESIGN §3, row by row, through the Python API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import apikeys

from conftest import actor

ALL_ROLES = [r.value for r in apikeys.Role]
ADMINS = {"owner", "admin"}
MANAGERS = {"owner", "admin", "user"}


def allowed(call: object) -> bool:
    """True if the call went through, False if it raised NotPermitted."""
    assert callable(call)
    try:
        call()
    except apikeys.NotPermitted as e:
        assert (e.status, e.code) == (403, 2010)
        return False
    return True


@pytest.mark.parametrize("role", ALL_ROLES)
def test_general_keys_are_managed_by_owner_and_admin_only(role: str) -> None:
    kr = apikeys.Keyring()
    a = actor(role)
    key = kr.create_general_key(actor("owner"), "existing")
    kid = key.record.id
    expected = role in ADMINS
    assert allowed(lambda: kr.create_general_key(a, "new")) == expected
    assert allowed(lambda: kr.disable(a, kid)) == expected
    assert allowed(lambda: kr.enable(a, kid)) == expected
    assert (kid in {r.id for r in kr.list(a)}) == expected
    assert allowed(lambda: kr.delete(a, kid)) == expected


@pytest.mark.parametrize("role", ALL_ROLES)
def test_user_tokens_for_oneself_for_every_role_but_limited_stakeholder(role: str) -> None:
    kr = apikeys.Keyring()
    a = actor(role)
    expected = role != "read_only_limited_user"
    assert allowed(lambda: kr.create_user_token(a, "mine")) == expected
    if expected:
        mine = kr.list(a)
        assert [r.owner for r in mine] == [a.user]
        assert allowed(lambda: kr.delete(a, mine[0].id))
        assert kr.list(a) == []


def test_user_tokens_need_advanced_permissions() -> None:
    kr = apikeys.Keyring()
    kr.set_account("acme", apikeys.AccountSettings(rest_api=True, advanced_permissions=False))
    with pytest.raises(apikeys.PlanRestricted) as e:
        kr.create_user_token(actor("admin"), "mine")
    assert (e.value.status, e.value.code) == (402, 2014)


@pytest.mark.parametrize("role", ALL_ROLES)
def test_other_users_tokens_are_listed_by_owner_and_admin_only(role: str) -> None:
    kr = apikeys.Keyring()
    other = kr.create_user_token(actor("observer", "POTHER"), "theirs")
    seen = other.record.id in {r.id for r in kr.list(actor(role))}
    assert seen == (role in ADMINS)


@pytest.mark.parametrize("role", ALL_ROLES)
@pytest.mark.parametrize("other_role", ALL_ROLES[:-1])
def test_deleting_another_users_token(role: str, other_role: str) -> None:
    kr = apikeys.Keyring()
    theirs = kr.create_user_token(actor(other_role, "POTHER"), "theirs")
    expected = role in ADMINS and other_role not in ADMINS
    assert allowed(lambda: kr.delete(actor(role), theirs.record.id)) == expected


@pytest.mark.parametrize("role", ALL_ROLES)
def test_events_keys_and_scoped_tokens_need_manager_or_above(role: str) -> None:
    kr = apikeys.Keyring()
    a = actor(role)
    expected = role in MANAGERS
    makers: list[Callable[[apikeys.Actor], apikeys.IssuedKey]] = [
        lambda who: kr.create_integration_key(who, "PSERVICE1", "Datadog"),
        lambda who: kr.create_routing_key(who, "orch-1", "all alerts"),
        lambda who: kr.create_scoped_token(who, "closer", ["incidents.write"]),
    ]
    for make in makers:
        existing = make(actor("owner")).record.id
        assert allowed(lambda: make(a)) == expected
        assert (existing in {r.id for r in kr.list(a)}) == expected
        assert allowed(lambda: kr.delete(a, existing)) == expected


def test_keys_of_another_account_do_not_exist() -> None:
    kr = apikeys.Keyring()
    key = kr.create_general_key(actor("owner"), "acme's")
    stranger = actor("owner", account="globex")
    for call in (kr.get, kr.disable, kr.enable, kr.delete):
        with pytest.raises(apikeys.NotFound):
            call(stranger, key.record.id)
    assert kr.list(stranger) == []
    assert kr.get(actor("owner"), key.record.id).id == key.record.id


def test_only_general_keys_can_be_disabled() -> None:
    kr = apikeys.Keyring()
    token = kr.create_scoped_token(actor("owner"), "closer", ["incidents.write"])
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.disable(actor("owner"), token.record.id)
    assert e.value.field == "key_id" and e.value.status == 400


def test_legacy_plan_refuses_rest_keys_but_not_events_keys() -> None:
    kr = apikeys.Keyring()
    kr.set_account("acme", apikeys.AccountSettings(rest_api=False, advanced_permissions=True))
    assert kr.account("acme") == apikeys.AccountSettings(rest_api=False)
    with pytest.raises(apikeys.PlanRestricted):
        kr.create_general_key(actor("owner"), "rest")
    events = kr.create_integration_key(actor("owner"), "PSERVICE1", "still fine")
    assert kr.authenticate(events.secret, api="events").account == "acme"
