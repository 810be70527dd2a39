"""The escalations an outside review found, replayed through the Python API
(docs/design.md §6): the rules live in Rust; these check they reach Python,
including a race between offboarding and token creation on every store."""

from __future__ import annotations

import os
import threading
import uuid
from pathlib import Path
from typing import Callable

import pytest

import apikeys

from conftest import actor


def _keyrings(tmp_path: Path) -> list[tuple[str, Callable[[], apikeys.Keyring]]]:
    makers: list[tuple[str, Callable[[], apikeys.Keyring]]] = [
        ("memory", lambda: apikeys.Keyring()),
        ("sqlite", lambda: apikeys.Keyring(store=apikeys.SqliteStore(str(tmp_path / "k.db")))),
    ]
    url = os.environ.get("APIKEYS_TEST_POSTGRES_URL")
    if url:
        schema = f"esc_{uuid.uuid4().hex[:12]}"
        makers.append(("postgres", lambda: apikeys.Keyring(store=apikeys.PostgresStore(url, schema=schema))))
    return makers


@pytest.mark.parametrize("scope", ["users.write", "ip_allow_lists.write", "audit_records.read"])
def test_a_manager_cannot_mint_a_scope_beyond_their_grants(scope: str) -> None:
    kr = apikeys.Keyring()
    with pytest.raises(apikeys.NotPermitted) as e:
        kr.create_scoped_token(actor("manager"), "x", ["incidents.write", scope])
    assert scope in str(e.value)
    assert kr.list(actor("admin")) == []


def test_a_scoped_token_follows_its_maker_down_and_out() -> None:
    kr = apikeys.Keyring()
    m = actor("manager")
    token = kr.create_scoped_token(m, "closer", ["incidents.write", "services.write"]).secret
    kr.authenticate(token, method="POST", scope="services.write")
    kr.set_user_role("acme", m.user, "responder")
    kr.authenticate(token, method="POST", scope="incidents.write")
    with pytest.raises(apikeys.Forbidden):
        kr.authenticate(token, method="POST", scope="services.write")
    assert kr.remove_user("acme", m.user) == 1
    with pytest.raises(apikeys.Unauthorized):
        kr.authenticate(token, scope="incidents.read")


def test_a_stale_actor_never_raises_a_stored_role() -> None:
    kr = apikeys.Keyring()
    old = kr.create_user_token(actor("responder", "PRESP"), "old").secret
    kr.set_user_role("acme", "PRESP", "observer")
    new = kr.create_user_token(actor("owner", "PRESP"), "new").secret
    state = kr.user("acme", "PRESP")
    assert state is not None and state.role == apikeys.Role.OBSERVER
    for token in (old, new):
        with pytest.raises(apikeys.Forbidden):
            kr.authenticate(token, method="POST", scope="incidents.write")
        assert kr.authenticate(token, scope="incidents.read").role == apikeys.Role.OBSERVER
    with pytest.raises(apikeys.NotPermitted):
        kr.create_general_key(actor("owner", "PRESP"), "x")


def test_offboarding_is_never_undone_by_a_racing_creation(tmp_path: Path) -> None:
    for name, make in _keyrings(tmp_path):
        kr = make()
        for round in range(30):
            user = f"PRACE{name}{round}"
            if round % 2:
                kr.set_user_role("acme", user, "manager")
            made: list[str] = []
            start = threading.Barrier(2)

            def create() -> None:
                start.wait()
                for _ in range(4):
                    try:
                        made.append(kr.create_user_token(actor("manager", user), "race").secret)
                    except apikeys.NotPermitted:
                        pass

            t = threading.Thread(target=create)
            t.start()
            start.wait()
            kr.remove_user("acme", user)
            t.join()
            for token in made:
                with pytest.raises(apikeys.Unauthorized):
                    kr.authenticate(token, scope="incidents.read")
            state = kr.user("acme", user)
            assert state is not None and state.removed, f"{name} round {round}: user restored"
