"""The audit trail (issue 15, docs/design.md §9) through the binding, on the
memory store, SQLite and PostgreSQL: the records of every change with what
changed and the caller's context, paging while records are added, filters,
windows and their refusals, no key in any record, and the place of a key's
last use (also through apikeys.asgi and apikeys.wsgi). The scenarios of the
Rust suite (``apikeys::testing::lifecycle``)."""

from __future__ import annotations

import asyncio
import io
import json
import pathlib
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional

import pytest

import apikeys

from lifecycle_support import (
    DAY,
    HOUR,
    MINUTE,
    START,
    STORES,
    Make,
    account,
    admin,
    all_records,
    maker,
)

SECOND = timedelta(seconds=1)


@pytest.fixture(params=STORES)
def make(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Make:
    return maker(request.param, tmp_path)


@pytest.fixture
def clock() -> apikeys.ManualClock:
    return apikeys.ManualClock(START)


def changes_of(e: apikeys.AuditEvent) -> Dict[str, tuple[Optional[str], Optional[str]]]:
    return {c.field: (c.before_value, c.value) for c in e.changes}


def test_audit_records_of_every_change(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("audit")
    who = admin(acct, apikeys.CallContext(request_id="req-1", remote_address="192.0.2.7"))
    k = kr.create_general_key(who, "ci")
    clock.advance(MINUTE)
    kr.disable(who, k.record.id)
    clock.advance(MINUTE)
    kr.enable(who, k.record.id)
    clock.advance(MINUTE)
    new = kr.rotate(who, k.record.id, HOUR)
    clock.advance(MINUTE)
    kr.end_rotation(who, k.record.id)
    clock.advance(MINUTE)
    kr.set_user_role(acct, "PUSER", "manager")
    clock.advance(MINUTE)
    with pytest.raises(apikeys.NotPermitted):
        kr.delete(apikeys.Actor(acct, "POBS", "observer"), new.record.id)
    clock.advance(MINUTE)
    kr.delete(who, new.record.id)
    clock.advance(MINUTE)

    recs = all_records(kr, acct)
    assert all(isinstance(e, apikeys.AuditEvent) for e in recs)
    assert [e.id for e in recs] == sorted((e.id for e in recs), reverse=True), "newest first"
    changed = [(e.action, e.allowed) for e in reversed(recs) if e.action not in ("get", "list")]
    assert changed == [
        ("create", True),
        ("disable", True),
        ("enable", True),
        ("rotate", True),
        ("end_rotation", True),
        ("set_user_role", True),
        ("delete", False),
        ("delete", True),
    ], "one record per change, in order, refusals included"

    def find(action: str) -> apikeys.AuditEvent:
        return next(e for e in recs if e.action == action and e.allowed)

    disable = find("disable")
    assert disable.key_id == k.record.id and disable.key_kind is apikeys.KeyKind.GENERAL
    assert (disable.actor, disable.actor_role) == ("PADMIN1", apikeys.Role.ADMIN)
    assert disable.at == START + MINUTE and disable.at.tzinfo is not None
    ctx = disable.context
    assert isinstance(ctx, apikeys.CallContext) and ctx == who.context
    assert (ctx.request_id, ctx.remote_address, ctx.truncated_token) == ("req-1", "192.0.2.7", None)
    assert changes_of(disable) == {"disabled": ("false", "true")}
    change = disable.changes[0]
    assert isinstance(change, apikeys.FieldChange)
    assert repr(change) == "FieldChange(field='disabled', value='true', before_value='false')"
    assert changes_of(find("enable")) == {"disabled": ("true", "false")}
    rotate = changes_of(find("rotate"))
    assert rotate["rotated_to"] == (None, new.record.id)
    until_ms = int((START + 3 * MINUTE + HOUR - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(milliseconds=1))
    assert rotate["overlap_until"] == (None, str(until_ms))
    end = changes_of(find("end_rotation"))
    assert end["overlap_until"][0] == str(until_ms) and end["overlap_until"][1] is not None
    role = find("set_user_role")
    assert (role.actor, role.actor_role, role.subject_user) == ("system", None, "PUSER")
    assert changes_of(role)["role"][1] == apikeys.Role.MANAGER.value
    assert not role.context, "a call the application makes itself has no context"
    refused = next(e for e in recs if e.action == "delete" and not e.allowed)
    assert (refused.outcome, refused.error, refused.actor) == ("refused", "not_permitted", "POBS")
    assert refused.reason and refused.changes == [], "a refusal changed nothing"
    # PagerDuty's shape, from the core's JSON.
    pd = disable.to_pagerduty()
    assert isinstance(pd, dict) and pd is not disable.to_pagerduty()
    assert pd["action"] == "disable"
    assert pd["actors"][0]["id"] == "PADMIN1" and pd["actors"][0]["type"] == "user_reference"
    assert pd["root_resource"] == {"id": k.record.id, "type": "api_key_reference", "summary": "general"}
    assert pd["details"]["fields"] == [{"name": "disabled", "value": "true", "before_value": "false"}]
    assert pd["execution_context"] == {"request_id": "req-1", "remote_address": "192.0.2.7"}
    assert pd["execution_time"] == (START + MINUTE).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert pd["outcome"] == "allowed" and "error" not in pd
    assert pd["id"].startswith("R") and int(pd["id"][1:]) == disable.id
    refused_pd = refused.to_pagerduty()
    assert (refused_pd["outcome"], refused_pd["error"]) == ("refused", "not_permitted")
    assert role.to_pagerduty()["method"] == {"type": "internal"}
    json.dumps([e.to_pagerduty() for e in recs])  # plain JSON values all the way down
    # The same records, one action at a time, and by key.
    assert [e.action for e in all_records(kr, acct, actions=["rotate", "end_rotation"])] == ["end_rotation", "rotate"]
    by_key = all_records(kr, acct, key_id=k.record.id, actions=("disable", "enable"))
    assert [e.action for e in by_key] == ["enable", "disable"]


def test_audit_paging_while_records_are_added(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("audit-pages")
    other = apikeys.Actor(acct, "PADMIN2", "admin")
    ids: List[str] = []
    for i in range(25):
        who = other if i % 5 == 0 else admin(acct)
        ids.append(kr.create_general_key(who, f"k{i}").record.id)
        clock.advance(SECOND)
    # Page through 7 at a time while more records are being added.
    seen: List[str] = []
    cursor: Optional[str] = None
    pages = 0
    while True:
        page = kr.audit_records(acct, actions=["create"], limit=7, cursor=cursor)
        assert isinstance(page, apikeys.AuditPage) and len(page) == len(page.records) <= 7
        assert [e.id for e in page.records] == sorted((e.id for e in page.records), reverse=True)
        seen += [e.key_id or "" for e in page.records]
        pages += 1
        # A writer adds records between pages: they are newer than the cursor.
        kr.create_general_key(admin(acct), "late")
        clock.advance(SECOND)
        if page.next_cursor is None:
            break
        assert isinstance(page.next_cursor, str)
        cursor = page.next_cursor
    assert seen == ids[::-1], "every record once, newest first"
    assert pages == 4
    # Filters.
    got = kr.audit_records(acct, actor="PADMIN2", limit=100)
    assert len(got.records) == 5 and {e.actor for e in got.records} == {"PADMIN2"}
    assert got.next_cursor is None
    got = kr.audit_records(acct, key_id=ids[3])
    assert [e.key_id for e in got.records] == [ids[3]]
    # A window: `since` inclusive, `until` exclusive.
    got = kr.audit_records(acct, since=START, until=START + 10 * SECOND, actions=["create"])
    assert [e.key_id for e in got.records] == ids[9::-1]
    got = kr.audit_records(acct, since=START + 10 * SECOND, until=START + 11 * SECOND)
    assert [e.key_id for e in got.records] == [ids[10]]
    # Any aware datetime names its moment.
    plus2 = timezone(timedelta(hours=2))
    got = kr.audit_records(acct, since=START.astimezone(plus2), until=(START + SECOND).astimezone(plus2))
    assert [e.key_id for e in got.records] == [ids[0]]
    # Another account sees none of it.
    none = kr.audit_records(account("audit-empty"))
    assert none.records == [] and none.next_cursor is None
    # The default window is the last 24 hours.
    clock.advance(2 * DAY)
    assert kr.audit_records(acct).records == []
    assert len(kr.audit_records(acct, since=START, limit=1000).records) >= 25
    # Retention.
    pruned = kr.prune_audit(DAY)
    assert isinstance(pruned, int) and pruned >= 25
    assert kr.audit_records(acct, since=START).records == []
    assert kr.prune_audit(timedelta(0)) >= 0


def test_audit_query_refusals(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    now = clock.now()

    def refused(field: str, account: str = "acme", **query: Any) -> None:
        with pytest.raises(apikeys.InvalidInput) as e:
            kr.audit_records(account, **query)
        assert e.value.field == field, (query, e.value)
        assert e.value.status == 400 and e.value.code == 2001

    refused("account", account="")
    refused("account", account="a" * 129)
    # No id holds a control character (PostgreSQL would refuse a NUL) or a
    # blank: the core's rule for every id (AuditQuery::resolve), on every store.
    refused("account", account="a\0b")
    refused("account", account="a\nb")
    refused("account", account="a b")
    refused("actor", actor="PADMIN\0")
    refused("actor", actor="\x7f")
    refused("actor", actor="P ADMIN")
    refused("actor", actor="\u2003PADMIN")
    refused("actor", actor="")
    with pytest.raises(apikeys.InvalidInput, match="whitespace or control characters"):
        kr.audit_records("acme", actor="PADMIN\t")
    refused("until", since=now, until=now - timedelta(milliseconds=1))
    refused("until", since=now - timedelta(days=32), until=now)
    refused("until", since=now - 32 * DAY)  # until defaults to now
    refused("limit", limit=1001)
    refused("limit", limit=2**64)
    refused("limit", limit=10**40)
    refused("limit", limit=-1)
    for bad in ["", "c", "x12", "c-1", "czz", "c11111111111111111", "\ud800"]:
        refused("cursor", cursor=bad)
    refused("key_id", key_id="not-a-key-id")
    refused("key_id", key_id="")
    refused("actions", actions=["create", "rotated"])
    refused("actions", actions=["Create"])
    # Naive datetimes and times a timestamp cannot hold.
    refused("since", since=datetime(2026, 1, 1))
    refused("until", until=datetime(2026, 1, 1))
    refused("since", since=datetime(1969, 12, 31, tzinfo=timezone.utc))
    # Exactly 31 days is allowed; an empty list of actions is every action;
    # 0 and None are the default limit (100).
    kr.audit_records("acme", since=now - timedelta(days=31), until=now)
    kr.audit_records("acme", actions=[], limit=0)
    kr.audit_records("acme", key_id=None, actor=None, actions=None, since=None, until=None, limit=None, cursor=None)  # type: ignore[arg-type]
    kr.audit_records("acme", limit=1000)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": "10"}, "limit"),
        ({"limit": 1.5}, "limit"),
        ({"limit": True}, "limit"),
        ({"since": "2026-01-01T00:00:00Z"}, "since"),
        ({"until": 1_790_000_000}, "until"),
        ({"actions": "create"}, "actions"),
        ({"actions": b"create"}, "actions"),
        ({"actions": 5}, "actions"),
        ({"actions": [1]}, "actions"),
        ({"key_id": 5}, "key_id"),
        ({"actor": apikeys.Actor("acme", "PADMIN1", "admin")}, "actor"),
        ({"cursor": 4}, "cursor"),
    ],
)
def test_audit_query_arguments_of_the_wrong_type(query: Dict[str, Any], field: str) -> None:
    with pytest.raises(TypeError, match=f"argument '{field}' must be"):
        apikeys.Keyring().audit_records("acme", **query)


def test_audit_records_takes_the_account_and_keywords_only() -> None:
    kr = apikeys.Keyring()
    with pytest.raises(TypeError, match="argument 'account' must be str"):
        kr.audit_records(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kr.audit_records("acme", "PABC")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        kr.audit_records("acme", limt=5)  # type: ignore[call-arg]
    # Any iterable of action names: a tuple, a set, a generator, the actions of records.
    kr.create_general_key(admin("acme"), "ci")
    created = kr.audit_records("acme").records
    for actions in (("create",), {"create"}, (a for a in ["create"]), [e.action for e in created]):
        assert [e.action for e in kr.audit_records("acme", actions=actions).records] == ["create"]


@pytest.mark.parametrize("older_than", ["60", None, True, [60]])
def test_prune_audit_of_the_wrong_type_is_a_type_error(older_than: Any) -> None:
    with pytest.raises(TypeError, match="argument 'older_than' must be float or datetime.timedelta"):
        apikeys.Keyring().prune_audit(older_than)


@pytest.mark.parametrize("older_than", [-1, -0.5, timedelta(days=-1), float("nan")])
def test_a_negative_prune_audit_is_invalid_input(older_than: Any) -> None:
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Keyring().prune_audit(older_than)
    assert e.value.field == "older_than"


def test_prune_audit_takes_seconds_or_a_timedelta(clock: apikeys.ManualClock) -> None:
    kr = apikeys.Keyring(clock=clock)
    kr.create_general_key(admin("acme"), "a")
    clock.advance(HOUR)
    kr.create_general_key(admin("acme"), "b")
    assert kr.prune_audit(10**40) == 0 and kr.prune_audit(timedelta.max) == 0
    assert kr.prune_audit(timedelta(hours=2)) == 0
    assert kr.prune_audit(1800.0) == 1
    assert [e.action for e in kr.audit_records("acme").records] == ["create"]
    assert kr.prune_audit(0) == 0, "a record of this very millisecond is not older than 0 s"
    clock.advance(timedelta(milliseconds=1))
    assert kr.prune_audit(0) == 1


def test_no_key_in_any_audit_record(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("audit-secret")
    k = kr.create_general_key(admin(acct), "ci")
    secret = k.secret
    # The application passes the caller's key and pastes keys into ids.
    ctx = apikeys.CallContext(caller_key=secret, request_id=secret, remote_address=secret)
    who = admin(acct).with_context(ctx)
    new = kr.rotate(who, k.record.id, HOUR)
    for call in (
        lambda: kr.get(who, secret),
        lambda: kr.delete(who, new.secret),
        lambda: kr.set_user_role(acct, secret, "observer"),
        lambda: kr.rotate(who, new.secret, HOUR),
        lambda: kr.end_rotation(who, secret),
    ):
        try:
            call()
        except apikeys.ApiKeyError as refusal:
            assert secret not in str(refusal) and new.secret not in str(refusal)
    recs = all_records(kr, acct)
    assert len(recs) >= 2
    for rec in recs:
        texts = [
            repr(rec),
            str(rec),
            repr(rec.changes),
            repr(rec.context),
            json.dumps(rec.to_pagerduty()),
            repr([rec.account, rec.actor, rec.key_id, rec.subject_user, rec.error, rec.reason]),
        ]
        for text in texts:
            assert secret not in text and new.secret not in text, text
    rotate = next(e for e in recs if e.action == "rotate")
    assert rotate.context.truncated_token == secret[-4:]
    assert rotate.context.request_id == "(redacted)" and rotate.context.remote_address == "(redacted)"
    assert rotate.to_pagerduty()["method"] == {"type": "api_token", "truncated_token": secret[-4:]}
    # Nor in the context or actor that carried it.
    for text in (repr(ctx), repr(who), str(who)):
        assert secret not in text, text
    assert kr.audit_trail()  # the sink got them too


def test_last_use_remembers_its_place(make: Make, clock: apikeys.ManualClock) -> None:
    kr = make(clock)
    acct = account("place")
    k = kr.create_general_key(admin(acct), "ci")
    kr.authenticate(k.secret, remote_address="192.0.2.9", path="/incidents?token=abc")
    kr.flush()

    def seen() -> Optional[apikeys.UsePlace]:
        r = kr.get(admin(acct), k.record.id)
        listed = next(x for x in kr.list(admin(acct)) if x.id == r.id)
        assert listed.last_used_from == r.last_used_from, "get and list agree"
        return r.last_used_from

    first = seen()
    assert isinstance(first, apikeys.UsePlace)
    assert (first.remote_address, first.method, first.path) == ("192.0.2.9", "GET", "/incidents")
    assert repr(first) == "UsePlace(remote_address='192.0.2.9', method='GET', path='/incidents')"
    # Within the minute: coalesced, the first place stays.
    clock.advance(timedelta(seconds=30))
    kr.authenticate(k.secret, remote_address="198.51.100.1", path="/services")
    kr.flush()
    assert seen() == first
    # After it: the new place; a key pasted in the path is not kept.
    clock.advance(MINUTE)
    kr.authenticate(k.secret, method="POST", remote_address="198.51.100.2", path=f"/keys/{k.secret}")
    kr.flush()
    second = seen()
    assert second is not None and (second.remote_address, second.method, second.path) == (
        "198.51.100.2",
        "POST",
        "(redacted)",
    )
    assert k.secret not in repr(second)
    # A request that does not say leaves the last place as it was; so does
    # one that passes None for both (the binding's path without a place).
    clock.advance(MINUTE)
    kr.authenticate(k.secret)
    kr.flush()
    assert seen() == second
    clock.advance(MINUTE)
    kr.authenticate(k.secret, remote_address=None, path=None)
    kr.flush()
    assert seen() == second
    clock.advance(MINUTE)
    assert kr.try_authenticate(k.secret, remote_address=None, path=None) is not None
    kr.flush()
    assert seen() == second
    # Only one of the two: the other is not known.
    clock.advance(MINUTE)
    kr.try_authenticate(k.secret, path="/only/a/path")
    kr.authenticate(k.secret, path="/only/a/path")
    kr.flush()
    only = seen()
    assert only is not None and (only.remote_address, only.method, only.path) == (None, "GET", "/only/a/path")


def test_place_arguments_check_their_types_and_never_refuse_a_request() -> None:
    kr = apikeys.Keyring()
    k = kr.create_general_key(admin("acme"), "ci")
    for bad in (b"/x", 5, ("127.0.0.1", 5)):
        with pytest.raises(TypeError, match="argument 'path' must be str"):
            kr.authenticate(k.secret, path=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="argument 'remote_address' must be str"):
            kr.try_authenticate(k.secret, remote_address=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kr.authenticate(k.secret, "rest", "GET", None, "127.0.0.1")  # type: ignore[call-arg]
    # Whatever the server passes on, the request is judged on its key alone:
    # lone surrogates, control characters, a huge path, an empty address.
    for address, path in (("\ud800", "/\udcff"), ("\n", "/a\tb"), ("", ""), ("x" * 10_000, "/" + "p" * 100_000)):
        assert kr.authenticate(k.secret, remote_address=address, path=path).key_id == k.record.id
    place = kr.get(admin("acme"), k.record.id).last_used_from
    assert place is not None and place.remote_address is not None and "\ud800" not in place.remote_address


def test_call_context_and_actor() -> None:
    ctx = apikeys.CallContext(request_id="req-9", remote_address="2001:db8::1", caller_key="u+abcdefghijklmnop1234")
    assert (ctx.request_id, ctx.remote_address, ctx.truncated_token) == ("req-9", "2001:db8::1", "1234")
    assert ctx and not apikeys.CallContext() and apikeys.CallContext() == apikeys.CallContext(request_id=None)
    assert repr(apikeys.CallContext()) == "CallContext()"
    assert repr(ctx) == "CallContext(request_id='req-9', remote_address='2001:db8::1', truncated_token='1234')"
    assert hash(ctx) == hash(apikeys.CallContext(request_id="req-9", remote_address="2001:db8::1", caller_key="xx1234"))
    # Cleaned by the core: cut to 128 bytes, control characters not kept.
    long = apikeys.CallContext(request_id="r" * 1000, remote_address="a\nb")
    assert long.request_id == "r" * 128 and long.remote_address is None
    assert apikeys.CallContext(caller_key="\ud800abc").truncated_token is None
    for field in ("request_id", "remote_address", "caller_key"):
        wrong: Dict[str, Any] = {field: 5}
        with pytest.raises(TypeError, match=f"argument '{field}' must be str"):
            apikeys.CallContext(**wrong)
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.CallContext(request_id="\ud800")
    assert e.value.field == "request_id"
    with pytest.raises(TypeError):
        apikeys.CallContext("req-9")  # type: ignore[call-arg]

    plain = apikeys.Actor("acme", "PADMIN1", "admin")
    assert not plain.context and repr(plain) == "Actor('acme', 'PADMIN1', 'admin')"
    with_ctx = plain.with_context(ctx)
    assert with_ctx is not plain and not plain.context and with_ctx.context == ctx
    assert with_ctx == apikeys.Actor("acme", "PADMIN1", "admin", context=ctx)
    assert with_ctx != plain and hash(with_ctx) != hash(plain)
    assert repr(with_ctx) == (
        "Actor('acme', 'PADMIN1', 'admin', context=CallContext(request_id='req-9', "
        "remote_address='2001:db8::1', truncated_token='1234'))"
    )
    assert apikeys.Actor("acme", "PADMIN1", "admin", context=None) == plain
    assert with_ctx.with_context(apikeys.CallContext()) == plain
    for bad in ({"request_id": "x"}, "req-9", 5):
        with pytest.raises(TypeError, match="argument 'context' must be apikeys.CallContext"):
            apikeys.Actor("acme", "PADMIN1", "admin", context=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="argument 'context' must be apikeys.CallContext"):
            plain.with_context(bad)  # type: ignore[arg-type]


def test_audit_page_and_event_reprs(clock: apikeys.ManualClock) -> None:
    kr = apikeys.Keyring(clock=clock)
    k = kr.create_general_key(admin("acme"), "ci")
    kr.get(admin("acme"), k.record.id)
    page = kr.audit_records("acme", limit=1)
    assert repr(page) == f"AuditPage(<1 records>, next_cursor={page.next_cursor!r})"
    assert page.records is not page.records and page.records[0].id == 2
    assert repr(page.records[0]) == (
        f"AuditEvent(id=2, action='get', account='acme', actor='PADMIN1', key_id='{k.record.id}', allowed=True)"
    )
    last = kr.audit_records("acme", cursor=page.next_cursor)
    assert [e.id for e in last.records] == [1] and last.next_cursor is None
    assert repr(last) == "AuditPage(<1 records>, next_cursor=None)"
    # The in-memory trail and audit_trail() hold the same events.
    assert [e.id for e in kr.audit_trail()] == [1, 2]


# -- the place of a use through the HTTP adapters ------------------------------


def _asgi_app(keyring: apikeys.Keyring, **options: Any) -> Any:
    from apikeys.asgi import ApiKeyMiddleware

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return ApiKeyMiddleware(app, keyring, **options)


def _asgi_call(mw: Any, token: str, path: str, client: Any, method: str = "GET", body: bytes = b"") -> int:
    scope: Dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"x.example"), (b"authorization", f"Token token={token}".encode())],
        "client": client,
        "server": ("127.0.0.1", 80),
    }
    sent: List[Dict[str, Any]] = []

    async def receive() -> Dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(mw(scope, receive, send))
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_asgi_passes_the_client_address_and_path(
    store: str, clock: apikeys.ManualClock, tmp_path: pathlib.Path
) -> None:
    # In memory each check runs inline; with SQLite a key's first check runs
    # in a worker thread (try_authenticate cannot answer a cold key).
    kr = apikeys.Keyring(apikeys.SqliteStore(tmp_path / "k.db") if store == "sqlite" else None, clock=clock)
    mw = _asgi_app(kr)
    assert mw.offload == (store == "sqlite")
    keys = [kr.create_general_key(admin("acme"), f"k{i}") for i in range(3)]
    assert _asgi_call(mw, keys[0].secret, "/incidents", ("203.0.113.5", 5555)) == 200
    assert _asgi_call(mw, keys[1].secret, "/services", None, method="POST") == 200
    assert _asgi_call(mw, keys[2].secret, "/x", ["2001:db8::7", 1]) == 200
    places = [kr.get(admin("acme"), k.record.id).last_used_from for k in keys]
    got = [(p.remote_address, p.method, p.path) if p else None for p in places]
    assert got == [("203.0.113.5", "GET", "/incidents"), (None, "POST", "/services"), ("2001:db8::7", "GET", "/x")]
    manager = apikeys.Actor("acme", "PMGR1", "manager")
    events = kr.create_integration_key(manager, "PSVC1", "monitor")
    body = json.dumps({"routing_key": events.secret, "event_action": "trigger"}).encode()
    assert _asgi_call(mw, "", "/v2/enqueue", ("203.0.113.6", 1), method="POST", body=body) == 200
    p = kr.get(manager, events.record.id).last_used_from
    assert p is not None and (p.remote_address, p.method, p.path) == ("203.0.113.6", "POST", "/v2/enqueue")


def test_wsgi_passes_remote_addr_and_path_info(clock: apikeys.ManualClock) -> None:
    from apikeys.wsgi import ApiKeyMiddleware

    kr = apikeys.Keyring(clock=clock)

    def app(environ: Any, start_response: Any) -> List[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    mw = ApiKeyMiddleware(app, kr)
    keys = [kr.create_general_key(admin("acme"), f"k{i}") for i in range(2)]

    def call(token: str, **environ: Any) -> str:
        status: List[str] = []
        env = {"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": f"Token token={token}", "wsgi.input": io.BytesIO()}
        env.update(environ)
        b"".join(mw(env, lambda s, h, e=None: status.append(s)))
        return status[0]

    assert call(keys[0].secret, REMOTE_ADDR="198.51.100.20", PATH_INFO="/incidents", QUERY_STRING="a=1") == "200 OK"
    assert call(keys[1].secret, REQUEST_METHOD="DELETE", PATH_INFO="/services/P1") == "200 OK"
    places = [kr.get(admin("acme"), k.record.id).last_used_from for k in keys]
    got = [(p.remote_address, p.method, p.path) if p else None for p in places]
    assert got == [("198.51.100.20", "GET", "/incidents"), (None, "DELETE", "/services/P1")]


@pytest.fixture(params=["fastapi", "fastapi-sqlite", "flask"])
def served(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Iterator[Any]:
    pytest.importorskip("fastapi")
    pytest.importorskip("flask")
    pytest.importorskip("uvicorn")
    from http_apps import fastapi_app, flask_app
    from http_support import Uvicorn, Werkzeug, make_keys

    keys = make_keys(apikeys.SqliteStore(tmp_path / "keys.db") if request.param.endswith("sqlite") else None)
    server = Werkzeug(flask_app(keys.keyring)) if request.param == "flask" else Uvicorn(fastapi_app(keys.keyring))
    try:
        yield keys, server
    finally:
        server.stop()


def test_a_real_server_gives_the_place_of_the_last_use(served: Any) -> None:
    from http_support import auth, call, event

    keys, server = served
    kr: apikeys.Keyring = keys.keyring
    assert call(server.port, "GET", "/incidents?limit=5", auth(keys.full)).status == 200
    assert call(server.port, "POST", "/v2/enqueue", body=event(keys.integration)).status == 202
    kr.flush()
    by_secret = {k.hint: k for k in kr.list(keys.admin)}
    full = by_secret[keys.full[-4:]].last_used_from
    assert full is not None and (full.remote_address, full.method, full.path) == ("127.0.0.1", "GET", "/incidents")
    integ = by_secret[keys.integration[-4:]].last_used_from
    assert integ is not None and (integ.remote_address, integ.method, integ.path) == ("127.0.0.1", "POST", "/v2/enqueue")
