"""Changing users and the account's plan for a person (`set_user_role_as`,
`remove_user_as`, `set_account_as`): the core decides on the actor's stored
standing (docs/design.md §2, "Users and the account") and records every call,
allowed or refused, with the actor; the binding only converts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import apikeys

from conftest import actor

USERS = [
    ("POWNER", "owner"),
    ("POWNER2", "owner"),
    ("PADMIN", "admin"),
    ("PMGR", "manager"),
    ("PRESP", "responder"),
]


def keyring(store: apikeys.SqliteStore | None = None) -> apikeys.Keyring:
    kr = apikeys.Keyring(store)
    for user, role in USERS:
        kr.set_user_role("acme", user, role)
    return kr


OWNER = actor("owner", "POWNER")
ADMIN = actor("admin", "PADMIN")
MANAGER = actor("manager", "PMGR")
RESPONDER = actor("responder", "PRESP")


def standing(kr: apikeys.Keyring, user: str) -> tuple[apikeys.Role, bool] | None:
    s = kr.user("acme", user)
    return None if s is None else (s.role, s.removed)


@pytest.mark.parametrize("who", [OWNER, ADMIN], ids=["owner", "admin"])
def test_owners_and_admins_change_roles_remove_users_and_set_the_plan(who: apikeys.Actor) -> None:
    kr = keyring()
    token = kr.create_user_token(actor("manager", "PMGR"), "laptop")
    kr.set_user_role_as(who, "PMGR", "responder")
    assert standing(kr, "PMGR") == (apikeys.Role.RESPONDER, False)
    kr.set_user_role_as(who, "PNEW", apikeys.Role.ADMIN)  # a new user, made an admin
    assert standing(kr, "PNEW") == (apikeys.Role.ADMIN, False)

    disabled = kr.remove_user_as(who, "PMGR")
    assert isinstance(disabled, int) and disabled == 1  # the manager's one user token
    assert standing(kr, "PMGR") == (apikeys.Role.RESPONDER, True)
    with pytest.raises(apikeys.Unauthorized):
        kr.authenticate(token.secret)
    assert kr.remove_user_as(who, "PNOBODY") == 0
    assert standing(kr, "PNOBODY") is not None and standing(kr, "PNOBODY")[1]  # type: ignore[index]

    kr.set_account_as(who, apikeys.AccountSettings(rest_api=False))
    assert kr.account("acme") == apikeys.AccountSettings(rest_api=False, advanced_permissions=True)


def test_only_an_owner_makes_changes_or_removes_an_owner() -> None:
    kr = keyring()
    for call in (
        lambda: kr.set_user_role_as(ADMIN, "PRESP", "owner"),
        lambda: kr.set_user_role_as(ADMIN, "POWNER2", "admin"),
        lambda: kr.remove_user_as(ADMIN, "POWNER2"),
    ):
        with pytest.raises(apikeys.NotPermitted) as e:
            call()
        assert "only an owner" in e.value.reason
        assert e.value.status == 403
    assert standing(kr, "PRESP") == (apikeys.Role.RESPONDER, False)
    assert standing(kr, "POWNER2") == (apikeys.Role.OWNER, False)

    kr.set_user_role_as(OWNER, "PRESP", "owner")
    kr.set_user_role_as(OWNER, "POWNER2", "admin")
    assert kr.remove_user_as(OWNER, "POWNER2") == 0
    assert standing(kr, "PRESP") == (apikeys.Role.OWNER, False)
    assert standing(kr, "POWNER2") == (apikeys.Role.ADMIN, True)


@pytest.mark.parametrize("who", [MANAGER, RESPONDER], ids=["manager", "responder"])
def test_other_roles_are_refused_and_nothing_changes(who: apikeys.Actor) -> None:
    kr = keyring()
    kr.set_account("acme", apikeys.AccountSettings(rest_api=True, advanced_permissions=False))
    calls: list[tuple[Any, str]] = [
        (lambda: kr.set_user_role_as(who, "PRESP" if who is MANAGER else "PMGR", "observer"), "roles"),
        (lambda: kr.remove_user_as(who, "PRESP" if who is MANAGER else "PMGR"), "roles"),
        (lambda: kr.set_account_as(who, apikeys.AccountSettings(rest_api=False)), "plan"),
    ]
    for call, what in calls:
        with pytest.raises(apikeys.NotPermitted) as e:
            call()
        assert what in e.value.reason
    for user, role in USERS:
        assert standing(kr, user) == (apikeys.Role(role), False)
    assert kr.account("acme") == apikeys.AccountSettings(rest_api=True, advanced_permissions=False)


def test_a_stale_actor_is_judged_by_its_stored_role() -> None:
    kr = keyring()
    kr.set_user_role("acme", "PADMIN", "responder")
    with pytest.raises(apikeys.NotPermitted):
        kr.set_user_role_as(ADMIN, "PMGR", "admin")  # says admin, stored responder
    assert standing(kr, "PMGR") == (apikeys.Role.MANAGER, False)


def test_the_audit_trail_records_the_actor_and_action_allowed_or_refused() -> None:
    kr = keyring()
    before = len(kr.audit_trail())
    kr.set_user_role_as(ADMIN, "PMGR", "responder")
    with pytest.raises(apikeys.NotPermitted):
        kr.remove_user_as(ADMIN, "POWNER")
    with pytest.raises(apikeys.NotPermitted):
        kr.set_account_as(MANAGER, apikeys.AccountSettings(rest_api=False))
    kr.remove_user_as(OWNER, "PRESP")
    kr.set_account_as(ADMIN, apikeys.AccountSettings(advanced_permissions=False))
    new = kr.audit_trail()[before:]
    got = [(e.actor, e.actor_role, e.action, e.outcome, e.subject_user) for e in new]
    assert got == [
        ("PADMIN", apikeys.Role.ADMIN, "set_user_role", "allowed", "PMGR"),
        ("PADMIN", apikeys.Role.ADMIN, "remove_user", "refused", "POWNER"),
        # Says manager, but was just made a responder: the record holds the stored role.
        ("PMGR", apikeys.Role.RESPONDER, "set_account", "refused", None),
        ("POWNER", apikeys.Role.OWNER, "remove_user", "allowed", "PRESP"),
        ("PADMIN", apikeys.Role.ADMIN, "set_account", "allowed", None),
    ]
    assert all(e.account == "acme" for e in new)
    role = [(c.field, c.before_value, c.value) for c in new[0].changes]
    assert ("role", apikeys.Role.MANAGER.value, apikeys.Role.RESPONDER.value) in role
    assert new[1].changes == [] and new[1].error == "not_permitted" and not new[1].allowed
    assert new[2].changes == [] and new[2].error == "not_permitted"
    assert ("removed", "false", "true") in [(c.field, c.before_value, c.value) for c in new[3].changes]
    # The durable query answers by actor too (the in-memory trail here).
    page = kr.audit_records("acme", actor="PADMIN", actions=["set_user_role", "remove_user"])
    assert sorted((e.action, e.outcome) for e in page.records) == [
        ("remove_user", "refused"),
        ("set_user_role", "allowed"),
    ]


def test_a_user_token_acts_with_the_role_it_was_demoted_to() -> None:
    kr = keyring()
    token = kr.create_user_token(actor("manager", "PMGR"), "laptop").secret
    assert kr.authenticate(token, method="POST", scope="services.write").role is apikeys.Role.MANAGER
    kr.set_user_role_as(ADMIN, "PMGR", "responder")
    with pytest.raises(apikeys.Forbidden):
        kr.authenticate(token, method="POST", scope="services.write")
    p = kr.authenticate(token, method="POST", scope="incidents.write")
    assert p.role is apikeys.Role.RESPONDER


WRONG_TYPES: list[Any] = [None, 5, 1.5, b"bytes", ["list"], object()]


@pytest.mark.parametrize("bad", WRONG_TYPES, ids=lambda v: type(v).__name__)
def test_wrong_types_are_type_errors_naming_the_argument(bad: Any) -> None:
    kr = keyring()
    anyway: Any = kr
    cases: list[tuple[str, Callable[[], object]]] = [
        ("actor", lambda: anyway.set_user_role_as(bad, "PMGR", "responder")),
        ("user", lambda: anyway.set_user_role_as(OWNER, bad, "responder")),
        ("role", lambda: anyway.set_user_role_as(OWNER, "PMGR", bad)),
        ("actor", lambda: anyway.remove_user_as(bad, "PMGR")),
        ("user", lambda: anyway.remove_user_as(OWNER, bad)),
        ("actor", lambda: anyway.set_account_as(bad, apikeys.AccountSettings())),
        ("settings", lambda: anyway.set_account_as(OWNER, bad)),
        ("actor", lambda: anyway.set_account_as("POWNER", apikeys.AccountSettings())),
        ("settings", lambda: anyway.set_account_as(OWNER, {"rest_api": False})),
    ]
    for arg, call in cases:
        with pytest.raises(TypeError) as e:
            call()
        assert f"'{arg}'" in str(e.value)
    with pytest.raises(TypeError):
        anyway.set_user_role_as(OWNER, "PMGR")  # missing role
    for user, role in USERS:
        assert standing(kr, user) == (apikeys.Role(role), False)


BAD_USERS = ["", "   ", " PMGR", "PM\nGR", "PM\0GR", "ab\ud800cd", "P" * 10_000]


def test_bad_strings_and_actors_are_invalid_input_naming_the_field() -> None:
    kr = keyring()
    for bad in ("superuser", "Owner", "", "admin "):
        with pytest.raises(apikeys.InvalidInput) as e:
            kr.set_user_role_as(OWNER, "PMGR", bad)
        assert e.value.field == "role" and (e.value.status, e.value.code) == (400, 2001)
    for bad in BAD_USERS:
        for call in (
            lambda: kr.set_user_role_as(OWNER, bad, "admin"),
            lambda: kr.remove_user_as(OWNER, bad),
        ):
            with pytest.raises(apikeys.InvalidInput) as e:
                call()
            assert e.value.field == "user"
            assert len(str(e.value)) < 1000  # the long id is not echoed
    # An actor without an account or user, or with a bad one.
    for account, user in [("", "POWNER"), ("acme", ""), ("acme\t", "POWNER"), ("acme", "P" * 10_000)]:
        bad_actor = apikeys.Actor(account, user, "owner")
        for call in (
            lambda: kr.set_user_role_as(bad_actor, "PMGR", "observer"),
            lambda: kr.remove_user_as(bad_actor, "PMGR"),
            lambda: kr.set_account_as(bad_actor, apikeys.AccountSettings(rest_api=False)),
        ):
            with pytest.raises(apikeys.InvalidInput) as e:
                call()
            assert e.value.field in ("account", "user")
    for user, role in USERS:
        assert standing(kr, user) == (apikeys.Role(role), False)
    assert kr.account("acme") == apikeys.AccountSettings()


def test_a_pasted_key_in_a_refused_call_never_reaches_the_trail() -> None:
    kr = keyring()
    pasted = kr.create_general_key(OWNER, "ci").secret
    with pytest.raises(apikeys.NotPermitted) as e:
        kr.set_user_role_as(ADMIN, pasted, "owner")
    assert pasted not in str(e.value)
    assert pasted not in repr(kr.audit_trail())
    assert kr.audit_trail()[-1].subject_user == "(redacted)"


def test_changes_on_sqlite_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "keys.db"
    kr = keyring(apikeys.SqliteStore(path))
    assert kr.may_block
    kr.set_user_role_as(ADMIN, "PMGR", "responder")
    assert kr.remove_user_as(OWNER, "PRESP") == 0
    kr.set_account_as(ADMIN, apikeys.AccountSettings(rest_api=False, advanced_permissions=False))
    with pytest.raises(apikeys.NotPermitted):
        kr.set_user_role_as(ADMIN, "POWNER2", "responder")
    del kr

    again = apikeys.Keyring(apikeys.SqliteStore(path))
    assert standing(again, "PMGR") == (apikeys.Role.RESPONDER, False)
    assert standing(again, "PRESP") == (apikeys.Role.RESPONDER, True)
    assert standing(again, "POWNER2") == (apikeys.Role.OWNER, False)
    assert again.account("acme") == apikeys.AccountSettings(rest_api=False, advanced_permissions=False)
    # The durable trail holds the actor's calls, the refused one too.
    page = again.audit_records("acme", actor="PADMIN")
    assert sorted((e.action, e.outcome, e.subject_user) for e in page.records) == [
        ("set_account", "allowed", None),
        ("set_user_role", "allowed", "PMGR"),
        ("set_user_role", "refused", "POWNER2"),
    ]
