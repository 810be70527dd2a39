"""Every way authentication fails, with its class, HTTP status and code."""

from __future__ import annotations

from datetime import timedelta

import pytest

import apikeys

from conftest import START, actor


def refused(
    kr: apikeys.Keyring, exc: type[apikeys.ApiKeyError], token: str, **request: str
) -> apikeys.ApiKeyError:
    with pytest.raises(exc) as info:
        kr.authenticate(token, **request)  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, apikeys.ApiKeyError)
    if len(token) >= 8:
        assert token not in str(err) and token not in repr(err) and token not in err.reason
    return err


@pytest.mark.parametrize(
    "token, reason",
    [
        ("", "malformed key: wrong length"),
        ("short", "malformed key: wrong length"),
        ("a" * 21, "malformed key: wrong length"),
        ("abcdefghij!lmnopqrst", "malformed key: character outside the alphabet"),
        ("abcdefghijklmnopqrst", "unknown or deleted key"),
        ("0" * 32, "unknown or deleted key"),
    ],
)
def test_malformed_and_unknown_keys_are_unauthorized(
    kr: apikeys.Keyring, token: str, reason: str
) -> None:
    api = "events" if len(token) == 32 else "rest"
    err = refused(kr, apikeys.Unauthorized, token, api=api)
    assert (err.status, err.code, err.reason) == (401, 2006, reason)
    assert str(err) == "unauthorized: the API key is not valid"


def test_deleted_disabled_and_expired_keys_are_unauthorized(
    kr: apikeys.Keyring, clock: apikeys.ManualClock, admin: apikeys.Actor
) -> None:
    deleted = kr.create_general_key(admin, "deleted")
    kr.delete(admin, deleted.record.id)
    assert refused(kr, apikeys.Unauthorized, deleted.secret).reason == "unknown or deleted key"

    disabled = kr.create_general_key(admin, "disabled")
    kr.disable(admin, disabled.record.id)
    assert refused(kr, apikeys.Unauthorized, disabled.secret).reason == "disabled key"

    expiring = kr.create_general_key(admin, "expiring", expires_at=START + timedelta(hours=1))
    assert expiring.record.expires_at == START + timedelta(hours=1)
    assert kr.authenticate(expiring.secret).key_id == expiring.record.id
    clock.advance(timedelta(hours=1))
    err = refused(kr, apikeys.Unauthorized, expiring.secret)
    assert (err.status, err.code, err.reason) == (401, 2006, "expired key")


def test_expiry_must_be_in_the_future(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.create_general_key(admin, "late", expires_at=START - timedelta(seconds=1))
    assert e.value.field == "expires_at"


def test_removed_owners_tokens_stop_working(kr: apikeys.Keyring) -> None:
    user = actor("manager", "PUSER1")
    token = kr.create_user_token(user, "laptop")
    assert kr.authenticate(token.secret).owner == "PUSER1"
    assert kr.remove_user("acme", "PUSER1") == 1
    state = kr.user("acme", "PUSER1")
    assert state is not None and state.removed
    err = refused(kr, apikeys.Unauthorized, token.secret)
    assert err.status == 401
    record = kr.get(actor("owner"), token.record.id)
    assert record.disabled is not None
    assert record.disabled.by == "system:offboarding"
    assert record.disabled.at.tzinfo is not None


def test_keys_on_the_wrong_api(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    rest = kr.create_general_key(admin, "rest")
    events = kr.create_integration_key(admin, "PSERVICE1", "events")
    on_events = refused(kr, apikeys.WrongApi, rest.secret, api="events")
    assert (on_events.status, on_events.code) == (400, 2006)
    on_rest = refused(kr, apikeys.WrongApi, events.secret, api="rest")
    assert (on_rest.status, on_rest.code) == (401, 2006)


def test_plan_restrictions_apply_from_the_next_request(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    general = kr.create_general_key(admin, "rest")
    token = kr.create_user_token(actor("manager"), "mine")
    events = kr.create_routing_key(admin, "orch-1", "events")

    kr.set_account("acme", apikeys.AccountSettings(rest_api=True, advanced_permissions=False))
    err = refused(kr, apikeys.PlanRestricted, token.secret)
    assert (err.status, err.code) == (402, 2014)
    assert kr.authenticate(general.secret).account == "acme"

    kr.set_account("acme", apikeys.AccountSettings(rest_api=False, advanced_permissions=True))
    assert refused(kr, apikeys.PlanRestricted, general.secret).status == 402
    assert kr.authenticate(events.secret, api="events").target == "orch-1"

    kr.set_account("acme", apikeys.AccountSettings())
    assert kr.authenticate(general.secret).account == "acme"


def test_read_only_key_cannot_write(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    ro = kr.create_general_key(admin, "ro", read_only=True)
    for method in ("GET", "HEAD", "get"):
        assert kr.authenticate(ro.secret, method=method).access is apikeys.AccessLevel.READ_ONLY
    for method in ("POST", "PUT", "PATCH", "DELETE", "BREW"):
        err = refused(kr, apikeys.Forbidden, ro.secret, method=method)
        assert (err.status, err.code) == (403, 2010)
    refused(kr, apikeys.Forbidden, ro.secret, method="GET", scope="incidents.write")
    assert kr.authenticate(ro.secret, scope="incidents.read").key_id == ro.record.id


def test_user_tokens_act_with_their_owners_current_role(kr: apikeys.Keyring) -> None:
    token = kr.create_user_token(actor("responder", "PUSER1"), "laptop")
    p = kr.authenticate(token.secret, method="POST", scope="incidents.write")
    assert p.role is apikeys.Role.RESPONDER
    refused(kr, apikeys.Forbidden, token.secret, method="POST", scope="services.write")
    refused(kr, apikeys.Forbidden, token.secret, method="GET", scope="users.read")

    kr.set_user_role("acme", "PUSER1", apikeys.Role.OBSERVER)
    refused(kr, apikeys.Forbidden, token.secret, method="POST", scope="incidents.write")
    assert kr.authenticate(token.secret).role is apikeys.Role.OBSERVER

    kr.set_user_role("acme", "PUSER1", "global_admin")
    p = kr.authenticate(token.secret, method="POST", scope="users.write")
    assert p.role is apikeys.Role.ADMIN


def test_scoped_tokens_need_a_matching_scope(kr: apikeys.Keyring, manager: apikeys.Actor) -> None:
    token = kr.create_scoped_token(manager, "closer", ["incidents.write", "services.read"])
    assert kr.authenticate(token.secret, method="PUT", scope="incidents.write").scopes == [
        "incidents.write",
        "services.read",
    ]
    assert kr.authenticate(token.secret, scope="incidents.read").kind is apikeys.KeyKind.SCOPED
    assert kr.authenticate(token.secret, scope="services.read").account == "acme"
    refused(kr, apikeys.Forbidden, token.secret)
    refused(kr, apikeys.Forbidden, token.secret, method="POST", scope="services.write")
    refused(kr, apikeys.Forbidden, token.secret, scope="users.read")


def test_bad_request_arguments_are_invalid_input(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    key = kr.create_general_key(admin, "k")
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.authenticate(key.secret, scope="incidents")
    assert (e.value.status, e.value.code, e.value.field) == (400, 2001, "scope")
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.authenticate(key.secret, api="soap")  # type: ignore[arg-type]
    assert e.value.field == "api"
    assert key.secret not in str(e.value)


def test_last_use_is_recorded(kr: apikeys.Keyring, clock: apikeys.ManualClock, admin: apikeys.Actor) -> None:
    key = kr.create_general_key(admin, "k")
    assert key.record.last_used_at is None
    clock.advance(timedelta(minutes=5))
    kr.authenticate(key.secret)
    assert kr.get(admin, key.record.id).last_used_at == START + timedelta(minutes=5)


def test_a_pepper_changes_the_digest_and_a_shared_store_is_shared() -> None:
    store = apikeys.MemoryStore()
    plain = apikeys.Keyring(store)
    peppered = apikeys.Keyring(store, pepper=b"0123456789abcdef-server-secret")
    admin = actor("admin")
    a = plain.create_general_key(admin, "plain")
    b = peppered.create_general_key(admin, "peppered")
    assert len(store) == 2
    assert plain.authenticate(a.secret).key_id == a.record.id
    assert peppered.authenticate(b.secret).key_id == b.record.id
    refused(peppered, apikeys.Unauthorized, a.secret)
    refused(plain, apikeys.Unauthorized, b.secret)
    with pytest.raises(apikeys.InvalidInput):
        apikeys.Keyring(pepper=b"short")
