"""Rotation (issue 15, docs/design.md §8) through the binding, on the memory
store, SQLite and PostgreSQL: the scenarios of the Rust suite
(``apikeys::testing::lifecycle``), each on a manual clock."""

from __future__ import annotations

import math
import pathlib
from datetime import datetime, timedelta, timezone
from typing import Any, List

import pytest

import apikeys

from lifecycle_support import (
    DAY,
    HOUR,
    MINUTE,
    MS,
    QUIET,
    SLACK,
    START,
    STORES,
    Make,
    account,
    admin,
    maker,
    refused_as_rotated,
    works,
)


@pytest.fixture(params=STORES)
def make(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Make:
    return maker(request.param, tmp_path)


@pytest.fixture
def clock() -> apikeys.ManualClock:
    return apikeys.ManualClock(START)


def test_both_keys_work_until_the_grace_ends(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-grace")
    old = kr.create_general_key(admin(acct), "ci")
    new = kr.rotate(admin(acct), old.record.id, HOUR)
    assert isinstance(new, apikeys.IssuedKey) and new.secret != old.secret
    works(kr, old)
    works(kr, new)
    # Some clients stay on the old key: traffic has not moved, and the
    # overlap lasts the whole grace.
    for _ in range(5):
        clock.advance(10 * MINUTE)
        works(kr, old)
        works(kr, new)
    clock.set(START + HOUR - MS)
    works(kr, old)
    clock.advance(MS)
    refused_as_rotated(kr, old)
    assert works(kr, new).key_id == new.record.id
    kr.flush()  # durable stores queue the new key's first use with the last uses
    # The link both ways, and the end of the overlap on the old record.
    old_rec = kr.get(admin(acct), old.record.id)
    new_rec = kr.get(admin(acct), new.record.id)
    assert old_rec.rotated_to == new.record.id and old_rec.rotated_from is None
    assert new_rec.rotated_from == old.record.id and new_rec.rotated_to is None
    rot = old_rec.rotation
    assert rot is not None
    assert rot.overlap_until == START + HOUR and rot.overlap_until.tzinfo is not None
    assert rot.rotated_at == START and rot.rotated_to == new.record.id
    assert rot.quiet == QUIET.total_seconds() and rot.successor_used_at is not None
    assert new.record.rotation is not None and new.record.rotation.rotated_from == old.record.id
    assert new.record.rotation.overlap_until is None
    # A key never rotated has none of it.
    plain = kr.create_general_key(admin(acct), "plain").record
    assert (plain.rotation, plain.rotated_to, plain.rotated_from) == (None, None, None)


@pytest.mark.parametrize("grace", [3600, 3600.0, timedelta(hours=1)], ids=["int", "float", "timedelta"])
def test_grace_is_seconds_or_a_timedelta(grace: Any, clock: apikeys.ManualClock, tmp_path: pathlib.Path) -> None:
    kr = maker("memory", tmp_path)(clock)
    old = kr.create_general_key(admin("acme"), "ci")
    kr.rotate(admin("acme"), old.record.id, grace)
    rot = kr.get(admin("acme"), old.record.id).rotation
    assert rot is not None and rot.overlap_until == START + HOUR


def test_the_overlap_ends_once_traffic_moved_and_not_before(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-moved")
    old = kr.create_general_key(admin(acct), "ci")
    new = kr.rotate(admin(acct), old.record.id, timedelta(days=7))
    # The new key is not used: however quiet the old one is, it works.
    clock.advance(QUIET * 4)
    works(kr, old)
    last_old_use = clock.now()
    # The clients switch: the new key is used, the old one no more.
    clock.advance(MINUTE)
    works(kr, new)
    kr.flush()
    rot = kr.get(admin(acct), old.record.id).rotation
    assert rot is not None and rot.successor_used_at == clock.now()
    # Not before: the quiet period counts from the old key's last use plus
    # the two minutes' slack of last-use writes.
    clock.set(last_old_use + SLACK + QUIET - MS)
    works(kr, old)
    # That use counts: the quiet period starts again from it.
    again = clock.now()
    kr.flush()
    clock.set(again + SLACK + QUIET - MS)
    works(kr, old)
    again = clock.now()
    kr.flush()
    clock.set(again + SLACK + QUIET)
    refused_as_rotated(kr, old)
    works(kr, new)


def test_a_shorter_quiet_period_ends_the_overlap_sooner(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock, 60.0)
    acct = account("rot-quiet")
    old = kr.create_general_key(admin(acct), "ci")
    new = kr.rotate(admin(acct), old.record.id, DAY)
    rot = kr.get(admin(acct), old.record.id).rotation
    assert rot is not None and rot.quiet == 60.0
    works(kr, new)
    kr.flush()
    # Never used since the rotation: quiet from the new key's first use on.
    clock.advance(timedelta(seconds=60) - MS)
    works(kr, old)
    kr.flush()
    clock.advance(MS + SLACK + timedelta(seconds=60))
    refused_as_rotated(kr, old)


def test_end_rotation_ends_it_at_once(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-end")
    old = kr.create_general_key(admin(acct), "ci")
    new = kr.rotate(admin(acct), old.record.id, HOUR)
    works(kr, old)
    clock.advance(MINUTE)
    # Through the new key's id: refused, pointing at the old one.
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.end_rotation(admin(acct), new.record.id)
    assert e.value.field == "key_id" and old.record.id in str(e.value)
    rec = kr.end_rotation(admin(acct), old.record.id)
    assert isinstance(rec, apikeys.KeyRecord) and rec.id == old.record.id
    assert rec.rotation is not None and rec.rotation.overlap_until == clock.now()
    refused_as_rotated(kr, old)
    works(kr, new)
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.end_rotation(admin(acct), old.record.id)
    assert e.value.field == "key_id"
    # A key never rotated is not in an overlap.
    plain = kr.create_general_key(admin(acct), "plain")
    with pytest.raises(apikeys.InvalidInput, match="not in a rotation"):
        kr.end_rotation(admin(acct), plain.record.id)
    # An observer may neither start nor end one.
    other = kr.create_general_key(admin(acct), "other")
    kr.rotate(admin(acct), other.record.id, HOUR)
    observer = apikeys.Actor(acct, "POBS", "observer")
    with pytest.raises(apikeys.NotPermitted):
        kr.end_rotation(observer, other.record.id)
    with pytest.raises(apikeys.NotPermitted):
        kr.rotate(observer, plain.record.id, HOUR)
    works(kr, other)
    # Another account's key does not exist for this actor.
    with pytest.raises(apikeys.NotFound):
        kr.end_rotation(admin(account("rot-elsewhere")), other.record.id)


def test_rotation_keeps_the_settings(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-same")
    manager = apikeys.Actor(acct, "PMGR", "manager")
    user = apikeys.Actor(acct, "PUSER", "responder")
    expires = clock.now() + HOUR
    keys = [
        kr.create_general_key(admin(acct), "read", read_only=True, expires_at=expires),
        kr.create_integration_key(manager, "PSVC1", "svc"),
        kr.create_routing_key(manager, "PORCH1", "orch"),
        kr.create_scoped_token(manager, "scoped", ["incidents.read", "services.write"]),
        kr.create_user_token(user, "mine"),
    ]
    for k in keys:
        a = k.record
        who = admin(acct) if a.kind is apikeys.KeyKind.GENERAL else user if a.kind is apikeys.KeyKind.USER_TOKEN else manager
        new = kr.rotate(who, a.id, DAY)
        b = new.record
        assert (b.kind, b.description, b.access, b.owner, b.target, b.scopes, b.expires_at) == (
            a.kind,
            a.description,
            a.access,
            a.owner,
            a.target,
            a.scopes,
            a.expires_at,
        ), a.kind
        assert b.created_by == who.user and b.id != a.id and b.hint == new.secret[-4:]
        if a.kind in (apikeys.KeyKind.INTEGRATION, apikeys.KeyKind.ROUTING):
            kr.authenticate(new.secret, api="events")
        else:
            kr.authenticate(new.secret, scope="incidents.read")
        if a.expires_at is not None:
            rot = kr.get(who, a.id).rotation
            assert rot is not None and rot.overlap_until == expires, "never past the old key's expiry"


def test_a_disabled_key_may_be_rotated_and_stays_disabled(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-leak")
    leaked = kr.create_general_key(admin(acct), "leaked")
    kr.disable(admin(acct), leaked.record.id)
    new = kr.rotate(admin(acct), leaked.record.id, DAY)
    works(kr, new)
    with pytest.raises(apikeys.Unauthorized) as e:
        works(kr, leaked)
    assert e.value.reason == "disabled key"
    assert new.record.disabled is None and kr.get(admin(acct), leaked.record.id).disabled is not None


def test_rotation_refusals(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-refused")

    def count() -> int:
        return len(kr.list(admin(acct)))

    expiring = kr.create_general_key(admin(acct), "soon", expires_at=clock.now() + MINUTE)
    clock.advance(MINUTE)
    with pytest.raises(apikeys.InvalidInput, match="expired") as e:
        kr.rotate(admin(acct), expiring.record.id, HOUR)
    assert e.value.field == "key_id" and e.value.status == 400 and e.value.code == 2001
    gone = kr.create_general_key(admin(acct), "gone")
    kr.delete(admin(acct), gone.record.id)
    with pytest.raises(apikeys.NotFound):
        kr.rotate(admin(acct), gone.record.id, HOUR)
    once = kr.create_general_key(admin(acct), "once")
    before = count()
    for too_long in (timedelta(days=400), 366 * 86_400, 1e300, 10**40, timedelta.max):
        with pytest.raises(apikeys.InvalidInput) as e:
            kr.rotate(admin(acct), once.record.id, too_long)
        assert e.value.field == "grace" and "365 days" in str(e.value), too_long
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.rotate(admin(acct), "not-a-key-id", HOUR)
    assert e.value.field == "key_id"
    assert count() == before, "a refused rotation makes nothing"
    nxt = kr.rotate(admin(acct), once.record.id, HOUR)
    with pytest.raises(apikeys.InvalidInput, match="already rotated") as e:
        kr.rotate(admin(acct), once.record.id, HOUR)
    assert e.value.field == "key_id" and nxt.record.id in str(e.value)
    assert count() == before + 1, "the second rotation made nothing"
    # The new key may be rotated in turn.
    kr.rotate(admin(acct), nxt.record.id, HOUR)
    # Another account's key: not found.
    with pytest.raises(apikeys.NotFound):
        kr.rotate(admin(account("rot-other")), nxt.record.id, HOUR)
    # The longest grace is taken.
    last = kr.create_general_key(admin(acct), "last")
    kr.rotate(admin(acct), last.record.id, timedelta(days=365))


def test_rotation_follows_the_matrix(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("rot-matrix")
    manager = apikeys.Actor(acct, "PMGR", "manager")
    user = apikeys.Actor(acct, "PUSER", "responder")
    general = kr.create_general_key(admin(acct), "g")
    integration = kr.create_integration_key(manager, "PSVC", "i")
    token = kr.create_user_token(user, "t")
    with pytest.raises(apikeys.NotPermitted):
        kr.rotate(manager, general.record.id, HOUR)
    # Not even an admin rotates another user's token.
    with pytest.raises(apikeys.NotPermitted):
        kr.rotate(admin(acct), token.record.id, HOUR)
    with pytest.raises(apikeys.NotPermitted):
        kr.rotate(user, integration.record.id, HOUR)
    kr.rotate(manager, integration.record.id, HOUR)
    # The owner rotates their own token, until they are removed.
    token2 = kr.rotate(user, token.record.id, HOUR)
    assert token2.record.owner == "PUSER"
    kr.remove_user(acct, "PUSER")
    with pytest.raises(apikeys.NotPermitted):
        kr.rotate(user, token2.record.id, HOUR)
    # A scoped token whose maker was demoted cannot be rotated by them.
    scoped = kr.create_scoped_token(manager, "s", ["services.write"])
    kr.set_user_role(acct, "PMGR", "responder")
    with pytest.raises(apikeys.NotPermitted):
        kr.rotate(manager, scoped.record.id, HOUR)


# -- bad input (the binding's conversions; the store does not matter) --------


@pytest.mark.parametrize("grace", ["3600", None, True, [1], object(), b"1"])
def test_grace_of_the_wrong_type_is_a_type_error(grace: Any, tmp_path: pathlib.Path) -> None:
    kr = maker("memory", tmp_path)(apikeys.ManualClock(START))
    key = kr.create_general_key(admin("acme"), "ci")
    with pytest.raises(TypeError, match="argument 'grace' must be float or datetime.timedelta"):
        kr.rotate(admin("acme"), key.record.id, grace)
    assert kr.get(admin("acme"), key.record.id).rotation is None


@pytest.mark.parametrize(
    "grace", [-1, -0.001, -(10**40), timedelta(seconds=-1), timedelta.min, math.nan, math.inf, -math.inf]
)
def test_a_negative_or_endless_grace_is_invalid_input(grace: Any, tmp_path: pathlib.Path) -> None:
    kr = maker("memory", tmp_path)(apikeys.ManualClock(START))
    key = kr.create_general_key(admin("acme"), "ci")
    with pytest.raises(apikeys.InvalidInput) as e:
        kr.rotate(admin("acme"), key.record.id, grace)
    assert e.value.field == "grace"
    assert kr.get(admin("acme"), key.record.id).rotation is None


def test_a_zero_grace_ends_the_old_key_at_once(tmp_path: pathlib.Path) -> None:
    kr = maker("memory", tmp_path)(apikeys.ManualClock(START))
    old = kr.create_general_key(admin("acme"), "ci")
    new = kr.rotate(admin("acme"), old.record.id, 0)
    refused_as_rotated(kr, old)
    works(kr, new)


def test_rotate_and_end_rotation_check_their_arguments(tmp_path: pathlib.Path) -> None:
    kr = maker("memory", tmp_path)(apikeys.ManualClock(START))
    key = kr.create_general_key(admin("acme"), "ci")
    bad: List[Any] = [("acme", "PADMIN1", "admin"), None, "admin"]
    for actor in bad:
        with pytest.raises(TypeError, match="argument 'actor' must be apikeys.Actor"):
            kr.rotate(actor, key.record.id, 60)
        with pytest.raises(TypeError, match="argument 'actor' must be apikeys.Actor"):
            kr.end_rotation(actor, key.record.id)
    wrong: List[Any] = [None, 42, b"P0000000000000"]
    for key_id in wrong:
        with pytest.raises(TypeError, match="argument 'key_id' must be str"):
            kr.rotate(admin("acme"), key_id, 60)
        with pytest.raises(TypeError, match="argument 'key_id' must be str"):
            kr.end_rotation(admin("acme"), key_id)
    for malformed in ("", "\ud800", "x" * 100_000, key.secret):
        with pytest.raises(apikeys.ApiKeyError) as e:
            kr.rotate(admin("acme"), malformed, 60)
        assert isinstance(e.value, (apikeys.InvalidInput, apikeys.NotFound))
        assert key.secret not in str(e.value) and len(str(e.value)) < 300
    with pytest.raises(TypeError):
        kr.rotate(admin("acme"), key.record.id)  # type: ignore[call-arg]


@pytest.mark.parametrize("quiet", ["60", True, [60], object()])
def test_rotation_quiet_of_the_wrong_type_is_a_type_error(quiet: Any) -> None:
    with pytest.raises(TypeError, match="argument 'rotation_quiet' must be float or datetime.timedelta"):
        apikeys.Keyring(rotation_quiet=quiet)


@pytest.mark.parametrize("quiet", [-1, -0.5, timedelta(minutes=-1), math.nan, math.inf])
def test_a_negative_or_endless_rotation_quiet_is_invalid_input(quiet: Any) -> None:
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Keyring(rotation_quiet=quiet)
    assert e.value.field == "rotation_quiet"


def test_rotation_quiet_takes_seconds_or_a_timedelta_and_defaults_to_15_minutes() -> None:
    def quiet_of(kr: apikeys.Keyring) -> float:
        k = kr.create_general_key(admin("acme"), "ci")
        kr.rotate(admin("acme"), k.record.id, 60)
        rot = kr.get(admin("acme"), k.record.id).rotation
        assert rot is not None
        return rot.quiet

    assert quiet_of(apikeys.Keyring()) == 900.0
    assert quiet_of(apikeys.Keyring(rotation_quiet=None)) == 900.0
    assert quiet_of(apikeys.Keyring(rotation_quiet=90)) == 90.0
    assert quiet_of(apikeys.Keyring(rotation_quiet=0.25)) == 0.25
    assert quiet_of(apikeys.Keyring(rotation_quiet=timedelta(minutes=5))) == 300.0
    assert quiet_of(apikeys.Keyring(rotation_quiet=0)) == 0.0
    # Longer than anything: kept as the longest the record holds.
    assert quiet_of(apikeys.Keyring(rotation_quiet=timedelta.max)) > 1e15


def test_rotation_and_place_reprs_hold_no_key(tmp_path: pathlib.Path) -> None:
    clock = apikeys.ManualClock(START)
    kr = maker("memory", tmp_path)(clock)
    old = kr.create_general_key(admin("acme"), "ci")
    new = kr.rotate(admin("acme"), old.record.id, HOUR)
    kr.authenticate(old.secret, remote_address="192.0.2.9", path=f"/keys/{new.secret}")
    rec = kr.get(admin("acme"), old.record.id)
    assert rec.rotation is not None and rec.last_used_from is not None
    for text in (repr(rec), repr(rec.rotation), repr(rec.last_used_from), repr(new), str(new), repr(new.record)):
        assert old.secret not in text and new.secret not in text, text
    assert repr(rec.rotation) == (
        f"Rotation(rotated_from=None, rotated_to='{new.record.id}', "
        "overlap_until=datetime.datetime(2026, 9, 21, 13, 0, tzinfo=datetime.timezone.utc))"
    )
    assert rec.rotation == kr.get(admin("acme"), old.record.id).rotation
    assert rec.rotation != new.record.rotation
    assert datetime(2026, 9, 21, 13, tzinfo=timezone.utc) == rec.rotation.overlap_until
