"""Bad input never crashes: wrong types are TypeErrors naming the argument,
bad strings are InvalidInput naming the field (or, for a presented token,
Unauthorized), and nothing echoes a key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

import apikeys

from conftest import actor

HUGE = "x" * (10 * 1024 * 1024)
WRONG_TYPES: list[Any] = [None, 5, 1.5, b"bytes", bytearray(b"ba"), ["list"], object()]
BAD_STRINGS = {
    "empty": "",
    "blank": "   ",
    "huge": HUGE,
    "nul": "ab\0cd",
    "newline": "a\nb",
    "lone_surrogate": "ab\ud800cd",
    "unknown_role": "superuser",
}


@pytest.fixture(scope="module")
def world() -> dict[str, Any]:
    kr = apikeys.Keyring()
    owner = actor("owner")
    ro = kr.create_general_key(owner, "ro", read_only=True)
    # Rotated (then its rotation ended) by the one valid call of each.
    rotating = kr.create_general_key(owner, "rotating")
    return {"kr": kr, "owner": owner, "ro": ro, "rotating": rotating}


def calls(w: dict[str, Any]) -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """Each call with valid keyword arguments; the tests spoil one at a time."""
    kr: apikeys.Keyring = w["kr"]
    owner = w["owner"]
    key_id = w["ro"].record.id
    rotating = w["rotating"].record.id

    def with_actor(account: str, user: str, role: str) -> Any:
        return kr.create_general_key(apikeys.Actor(account, user, role), "via actor")

    return {
        "actor": (with_actor, {"account": "acme", "user": "PU1", "role": "owner"}),
        "create_general_key": (kr.create_general_key, {"actor": owner, "description": "d"}),
        "create_user_token": (kr.create_user_token, {"actor": owner, "description": "d"}),
        "create_integration_key": (
            kr.create_integration_key,
            {"actor": owner, "service_id": "PS1", "description": "d"},
        ),
        "create_routing_key": (
            kr.create_routing_key,
            {"actor": owner, "orchestration_id": "o-1", "description": "d"},
        ),
        "create_scoped_token": (
            kr.create_scoped_token,
            {"actor": owner, "description": "d", "scopes": ["incidents.read"]},
        ),
        "disable": (kr.disable, {"actor": owner, "key_id": key_id}),
        "enable": (kr.enable, {"actor": owner, "key_id": key_id}),
        "get": (kr.get, {"actor": owner, "key_id": key_id}),
        "delete": (kr.get, {"actor": owner, "key_id": key_id}),  # get: keep the key
        "list": (kr.list, {"actor": owner}),
        "set_account": (kr.set_account, {"account": "acme", "settings": apikeys.AccountSettings()}),
        "account": (kr.account, {"account": "acme"}),
        "set_user_role": (kr.set_user_role, {"account": "acme", "user": "PU1", "role": "observer"}),
        "remove_user": (kr.remove_user, {"account": "other", "user": "PU1"}),
        "set_account_as": (kr.set_account_as, {"actor": owner, "settings": apikeys.AccountSettings()}),
        "set_user_role_as": (kr.set_user_role_as, {"actor": owner, "user": "PU1", "role": "observer"}),
        "remove_user_as": (kr.remove_user_as, {"actor": owner, "user": "PGONE"}),
        "user": (kr.user, {"account": "acme", "user": "PU1"}),
        "authenticate": (
            kr.authenticate,
            {"token": w["ro"].secret, "api": "rest", "method": "GET", "scope": "incidents.read"},
        ),
        "rotate": (kr.rotate, {"actor": owner, "key_id": rotating, "grace": 3600}),
        "end_rotation": (kr.end_rotation, {"actor": owner, "key_id": rotating}),
        "audit_records": (
            kr.audit_records,
            {"account": "acme", "key_id": key_id, "actor": "POWNER1", "cursor": "c1000"},
        ),
    }


CASES = [
    (name, arg)
    for name, args in {
        "actor": ["account", "user", "role"],
        "create_general_key": ["actor", "description"],
        "create_user_token": ["actor", "description"],
        "create_integration_key": ["actor", "service_id", "description"],
        "create_routing_key": ["actor", "orchestration_id", "description"],
        "create_scoped_token": ["actor", "description", "scopes"],
        "disable": ["actor", "key_id"],
        "enable": ["actor", "key_id"],
        "get": ["actor", "key_id"],
        "delete": ["actor", "key_id"],
        "list": ["actor"],
        "set_account": ["account", "settings"],
        "account": ["account"],
        "set_user_role": ["account", "user", "role"],
        "remove_user": ["account", "user"],
        "set_account_as": ["actor", "settings"],
        "set_user_role_as": ["actor", "user", "role"],
        "remove_user_as": ["actor", "user"],
        "user": ["account", "user"],
        "authenticate": ["token", "api", "method", "scope"],
        "rotate": ["actor", "key_id"],
        "end_rotation": ["actor", "key_id"],
        "audit_records": ["account", "key_id", "cursor"],
    }.items()
    for arg in args
]


def test_the_valid_calls_work(world: dict[str, Any]) -> None:
    for name, (call, kwargs) in calls(world).items():
        call(**kwargs)  # none of them raises


@pytest.mark.parametrize("name, arg", CASES)
@pytest.mark.parametrize("bad", WRONG_TYPES, ids=lambda v: type(v).__name__)
def test_wrong_types_are_type_errors_naming_the_argument(
    world: dict[str, Any], name: str, arg: str, bad: Any
) -> None:
    call, kwargs = calls(world)[name]
    if bad is None and (arg in ("api", "method", "scope") or name == "audit_records" and arg != "account"):
        call(**{**kwargs, arg: None})  # None means the default
        return
    if isinstance(bad, list) and arg == "scopes":
        bad = [5]
    with pytest.raises(TypeError) as e:
        call(**{**kwargs, arg: bad})
    assert f"'{arg}'" in str(e.value)


@pytest.mark.parametrize("name, arg", [c for c in CASES if c[1] not in ("actor", "settings")])
@pytest.mark.parametrize("which", list(BAD_STRINGS))
def test_bad_strings_are_clear_errors(world: dict[str, Any], name: str, arg: str, which: str) -> None:
    call, kwargs = calls(world)[name]
    bad = BAD_STRINGS[which]
    value: Any = [bad] if arg == "scopes" else bad
    if which == "unknown_role" and arg not in ("role", "key_id", "scopes", "scope", "api", "token", "method", "cursor"):
        call(**{**kwargs, arg: value})  # "superuser" is a fine description or id
        return
    with pytest.raises(apikeys.ApiKeyError) as e:
        call(**{**kwargs, arg: value})
    err = e.value
    if arg == "token":
        assert isinstance(err, apikeys.Unauthorized) and err.status == 401
    elif arg == "method" and which == "lone_surrogate":
        assert isinstance(err, apikeys.InvalidInput) and err.field == "method"
    elif arg == "method":
        # Unknown methods count as writes: the read-only key may not make them.
        assert isinstance(err, apikeys.Forbidden) and err.status == 403
    else:
        assert isinstance(err, apikeys.InvalidInput), err
        assert (err.status, err.code) == (400, 2001)
        assert err.field in (("scope", "scopes") if arg == "scopes" else (arg,))
    assert len(str(err)) < 1000  # the huge input is not echoed


def test_unknown_roles_are_invalid_input_never_a_default() -> None:
    for bad in ("superuser", "Owner", "ADMIN", "admin ", "", "stakeholder"):
        with pytest.raises(apikeys.InvalidInput) as e:
            apikeys.Actor("acme", "PU1", bad)
        assert e.value.field == "role"
        with pytest.raises(apikeys.InvalidInput):
            apikeys.Role(bad)
    assert apikeys.Role("global_admin") is apikeys.Role.ADMIN
    assert apikeys.Role("manager") is apikeys.Role.MANAGER
    assert apikeys.Role("responder") is apikeys.Role.RESPONDER


def test_other_argument_types(world: dict[str, Any]) -> None:
    kr: apikeys.Keyring = world["kr"]
    owner = world["owner"]
    for bad in ("incidents.write", [5], [None], 5, None):
        with pytest.raises(TypeError, match="'scopes'"):
            kr.create_scoped_token(owner, "d", bad)  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.create_scoped_token(owner, "d", [])
    assert e.value.field == "scopes"
    with pytest.raises(apikeys.InvalidInput):
        kr.create_scoped_token(owner, "d", ["incidents.read"] * 100_000)
    assert kr.create_scoped_token(owner, "d", ("incidents.read",)).record.scopes == ["incidents.read"]

    for flag in (1, 0, "yes", b""):
        with pytest.raises(TypeError, match="'read_only'"):
            kr.create_general_key(owner, "d", read_only=flag)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="'rest_api'"):
            apikeys.AccountSettings(rest_api=flag)  # type: ignore[arg-type]
    for when in ("2030-01-01", 1_900_000_000, date(2030, 1, 1), timedelta(days=1)):
        with pytest.raises(TypeError, match="'expires_at'"):
            kr.create_general_key(owner, "d", expires_at=when)  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.create_general_key(owner, "d", expires_at=datetime(2030, 1, 1))
    assert e.value.field == "expires_at"
    with pytest.raises(TypeError, match="'pepper'"):
        apikeys.Keyring(pepper="not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'store'"):
        apikeys.Keyring(store=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'clock'"):
        apikeys.Keyring(clock=datetime.now(timezone.utc))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kr.authenticate()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        positional: Any = kr.create_general_key
        positional(owner, "d", True)


def test_a_huge_token_is_refused_by_length_quickly(world: dict[str, Any]) -> None:
    with pytest.raises(apikeys.Unauthorized) as e:
        world["kr"].authenticate(HUGE)
    assert e.value.reason == "malformed key: wrong length"
