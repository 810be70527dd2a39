"""The README's story, end to end: issue a key, use it, disable, enable, delete."""

from __future__ import annotations

import pytest

import apikeys


def test_the_quickstart_story() -> None:
    kr = apikeys.Keyring()
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    issued = kr.create_general_key(admin, "CI bot", read_only=True)
    token = issued.secret
    assert len(token) == 20 and "+" not in token

    principal = kr.authenticate(token, api="rest", method="GET")
    assert principal.account == "acme"
    assert principal.key_id == issued.record.id
    assert principal.kind is apikeys.KeyKind.GENERAL
    assert principal.access is apikeys.AccessLevel.READ_ONLY

    with pytest.raises(apikeys.Forbidden) as err:
        kr.authenticate(token, method="POST", scope="incidents.write")
    assert (err.value.status, err.value.code) == (403, 2010)

    key_id = issued.record.id
    disabled = kr.disable(admin, key_id)
    assert disabled.disabled is not None and disabled.disabled.by == "PADMIN1"
    with pytest.raises(apikeys.Unauthorized) as err2:
        kr.authenticate(token)
    assert err2.value.status == 401 and err2.value.reason == "disabled key"

    assert not kr.enable(admin, key_id).disabled
    assert kr.authenticate(token).key_id == key_id

    deleted = kr.delete(admin, key_id)
    assert deleted.id == key_id
    with pytest.raises(apikeys.Unauthorized):
        kr.authenticate(token)
    with pytest.raises(apikeys.NotFound) as err3:
        kr.get(admin, key_id)
    assert (err3.value.status, err3.value.code) == (404, 2100)


def test_each_kind_of_key_has_its_format_and_api() -> None:
    kr = apikeys.Keyring()
    manager = apikeys.Actor("acme", "PMGR1", "manager")
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    user_token = kr.create_user_token(manager, "laptop script")
    integration = kr.create_integration_key(manager, "PSERVICE1", "Datadog")
    routing = kr.create_routing_key(manager, "global-orchestration", "all alerts")
    scoped = kr.create_scoped_token(manager, "stale closer", ["incidents.write"])
    general = kr.create_general_key(admin, "full")

    assert user_token.secret.startswith("u+") and len(user_token.secret) == 20
    assert scoped.secret.startswith("s+") and len(scoped.secret) == 20
    assert routing.secret.startswith("R0") and len(routing.secret) == 32
    assert len(integration.secret) == 32
    assert all(c in "0123456789abcdef" for c in integration.secret)
    assert general.record.access is apikeys.AccessLevel.FULL_ACCESS

    assert user_token.record.kind is apikeys.KeyKind.USER_TOKEN
    assert user_token.record.owner == "PMGR1"
    assert integration.record.kind is apikeys.KeyKind.INTEGRATION
    assert integration.record.target == "PSERVICE1"
    assert routing.record.kind is apikeys.KeyKind.ROUTING
    assert routing.record.target == "global-orchestration"
    assert scoped.record.kind is apikeys.KeyKind.SCOPED
    assert scoped.record.scopes == ["incidents.write"]

    assert kr.authenticate(integration.secret, api="events").target == "PSERVICE1"
    assert kr.authenticate(routing.secret, api="events").kind is apikeys.KeyKind.ROUTING
    p = kr.authenticate(user_token.secret)
    assert p.owner == "PMGR1" and p.role is apikeys.Role.MANAGER
    p = kr.authenticate(scoped.secret, method="POST", scope="incidents.write")
    assert p.scopes == ["incidents.write"]
    assert kr.authenticate(general.secret, method="DELETE").record.id == general.record.id

    listed = kr.list(admin)
    assert {r.id for r in listed} >= {
        general.record.id,
        integration.record.id,
        routing.record.id,
        scoped.record.id,
        user_token.record.id,
    }
    got = kr.get(admin, general.record.id)
    assert got != general.record  # it has been used since it was made
    assert got.last_used_at is not None and general.record.last_used_at is None
    assert (got.id, got.description, got.created_at) == (
        general.record.id,
        "full",
        general.record.created_at,
    )
