"""Every class and call of the package, with types: `mypy --strict` checks it
against the stubs, and `scripts/test-python.sh` runs it.

    python bindings/python/examples/typed_usage.py
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import apikeys
from apikeys import (
    AccessLevel,
    AccountSettings,
    Actor,
    AuditEvent,
    AuditPage,
    CallContext,
    FieldChange,
    IssuedKey,
    KeyKind,
    Keyring,
    KeyRecord,
    ManualClock,
    MemoryStore,
    Principal,
    Role,
    Rotation,
    UsePlace,
    UserState,
)


def check(request_ok: bool, what: str) -> None:
    if not request_ok:
        raise SystemExit(f"typed_usage: {what}")


def describe(record: KeyRecord) -> str:
    kind: KeyKind = record.kind
    access: AccessLevel = record.access
    created: datetime = record.created_at
    parts: list[str] = [
        record.id,
        record.account,
        kind.value,
        record.description,
        access.value,
        str(record.read_only),
        record.owner or "-",
        record.target or "-",
        ",".join(record.scopes),
        created.isoformat(),
        record.created_by,
        record.api_version,
        str(record.disabled is not None),
        record.disabled.by if record.disabled else "-",
        str(record.disabled.at if record.disabled else None),
        str(record.last_used_at),
        str(record.expires_at),
        record.hint,
    ]
    return " ".join(parts)


def who(principal: Principal) -> str:
    role: Role | None = principal.role
    record: KeyRecord = principal.record
    return " ".join(
        [
            principal.key_id,
            principal.kind.value,
            principal.account,
            principal.owner or "-",
            role.value if role else "-",
            principal.access.value,
            ",".join(principal.scopes),
            principal.target or "-",
            record.id,
        ]
    )


def main() -> None:
    store = MemoryStore()
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    kr = Keyring(store, pepper=b"an example pepper of 32 bytes!!!", clock=clock)
    plain = Keyring()
    check(repr(plain).startswith("Keyring("), "repr")

    admin = Actor("acme", "PADMIN1", "admin")
    manager = Actor("acme", "PMGR1", Role.MANAGER)
    check(admin.account == "acme" and admin.user == "PADMIN1" and admin.role is Role.ADMIN, "actor")

    general: IssuedKey = kr.create_general_key(admin, "CI bot", read_only=True)
    expiring = kr.create_general_key(admin, "temp", expires_at=clock.now() + timedelta(days=1))
    token = kr.create_user_token(manager, "laptop script")
    integration = kr.create_integration_key(manager, "PSERVICE1", "Datadog")
    routing = kr.create_routing_key(manager, "global-orchestration", "all alerts")
    scoped = kr.create_scoped_token(manager, "stale closer", ["incidents.write"])
    check(len(store) == 6, "store size")

    secret: str = general.secret
    p: Principal = kr.authenticate(secret)
    print(who(p))
    print(who(kr.authenticate(token.secret, api="rest", method="POST", scope="incidents.write")))
    print(who(kr.authenticate(scoped.secret, method="PUT", scope="incidents.write")))
    print(who(kr.authenticate(integration.secret, api="events")))
    print(who(kr.authenticate(routing.secret, "events")))
    # The in-memory store always answers a try (None only when I/O is needed).
    tried: Principal | None = kr.try_authenticate(token.secret, api="rest", method="POST", scope="incidents.write")
    check(tried is not None and tried.owner == token.record.owner, "try_authenticate")
    try:
        kr.authenticate(secret, method="POST")
    except apikeys.Forbidden as e:
        status: int = e.status
        code: int = e.code
        reason: str = e.reason
        print("refused:", status, code, reason)
    except apikeys.ApiKeyError:
        raise

    key_id = general.record.id
    disabled: KeyRecord = kr.disable(admin, key_id)
    check(disabled.disabled is not None, "disable")
    check(kr.enable(admin, key_id).disabled is None, "enable")
    got: KeyRecord = kr.get(admin, key_id)
    records: list[KeyRecord] = kr.list(admin)
    for r in records:
        print(describe(r))
    check(got.id in {r.id for r in records}, "list")
    check(kr.delete(admin, expiring.record.id).id == expiring.record.id, "delete")

    kr.set_account("acme", AccountSettings(rest_api=True, advanced_permissions=True))
    settings: AccountSettings = kr.account("acme")
    check(settings.rest_api and settings.advanced_permissions, "settings")
    kr.set_user_role("acme", "PMGR1", "observer")
    kr.set_user_role("acme", "PMGR1", Role.OBSERVER)
    state: UserState | None = kr.user("acme", "PMGR1")
    check(state is not None and state.role is Role.OBSERVER and not state.removed, "user")
    removed: int = kr.remove_user("acme", "PMGR1")
    # Offboarding disables their user token and the scoped token they made.
    check(removed == 2, "remove_user")

    # The same changes made for a person: the core decides on the actor's
    # stored standing (an Owner or Admin; only an Owner touches an Owner).
    kr.set_user_role_as(admin, "PRESP1", "responder")
    kr.set_user_role_as(admin, "PRESP1", Role.OBSERVER)
    as_state: UserState | None = kr.user("acme", "PRESP1")
    check(as_state is not None and as_state.role is Role.OBSERVER, "set_user_role_as")
    removed_as: int = kr.remove_user_as(admin, "PRESP1")
    check(removed_as == 0, "remove_user_as")
    kr.set_account_as(admin, AccountSettings(rest_api=True, advanced_permissions=True))
    try:
        kr.set_user_role_as(Actor("acme", "PRESP1", "responder"), "PADMIN1", "observer")
        check(False, "set_user_role_as refused")
    except apikeys.NotPermitted as refusal:
        print("refused:", refusal.reason)

    clock.advance(timedelta(minutes=5))
    clock.set(datetime(2026, 2, 1, tzinfo=timezone.utc))
    events: list[AuditEvent] = kr.audit_trail()
    for ev in events:
        at: datetime = ev.at
        print(
            at.isoformat(),
            ev.action,
            ev.account,
            ev.actor,
            ev.actor_role,
            ev.key_kind,
            ev.key_id,
            ev.subject_user,
            ev.allowed,
            ev.error,
            ev.reason,
        )
    errors: list[type[apikeys.ApiKeyError]] = [
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
    for cls in errors:
        print(cls.__name__, cls.status, cls.code)
    retry: float = apikeys.RateLimited.retry_after
    field: str = apikeys.InvalidInput.field
    print(apikeys.__version__, retry, repr(field), [r.value for r in Role], list(KeyKind), list(AccessLevel))
    rate_limits_and_stores()
    rotation_and_audit()


def rotation_and_audit() -> None:
    """Rotation (the old key works during an overlap), the caller's context in
    the audit records, an audit query with paging, retention, the place of a use."""
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=timezone.utc))
    kr = Keyring(clock=clock, rotation_quiet=timedelta(minutes=15))
    context: CallContext = CallContext(request_id="req-42", remote_address="192.0.2.7", caller_key="abcd1234abcd1234abcd")
    admin = Actor("acme", "PADMIN1", "admin").with_context(context)
    check(admin.context.truncated_token == "abcd" and Actor("acme", "PADMIN1", "admin", context=context) == admin, "context")
    old = kr.create_general_key(admin, "CI bot")
    new: IssuedKey = kr.rotate(admin, old.record.id, timedelta(days=7))
    check(kr.authenticate(old.secret, remote_address="192.0.2.8", path="/incidents").key_id == old.record.id, "overlap")
    check(kr.try_authenticate(new.secret, method="POST", remote_address=None, path="/incidents") is not None, "new key")
    record: KeyRecord = kr.get(admin, old.record.id)
    rotation: Rotation | None = record.rotation
    place: UsePlace | None = record.last_used_from
    if rotation is not None:
        overlap: datetime | None = rotation.overlap_until
        quiet: float = rotation.quiet
        print(rotation.rotated_from, rotation.rotated_to, rotation.rotated_at, overlap, quiet, rotation.successor_used_at)
    if place is not None:
        print(place.remote_address, place.method, place.path)
    check(record.rotated_to == new.record.id and new.record.rotated_from == old.record.id, "links")
    ended: KeyRecord = kr.end_rotation(admin, old.record.id)
    check(ended.rotated_to == new.record.id, "end_rotation")
    kr.rotate(admin, new.record.id, 3600.0)

    cursor: str | None = None
    while True:
        page: AuditPage = kr.audit_records(
            "acme",
            actions=["create", "rotate", "end_rotation"],
            actor="PADMIN1",
            since=clock.now() - timedelta(hours=1),
            until=None,
            limit=2,
            cursor=cursor,
        )
        for ev in page.records:
            event_id: int = ev.id
            changes: list[FieldChange] = ev.changes
            pd: dict[str, object] = ev.to_pagerduty()
            print(event_id, ev.action, [(c.field, c.before_value, c.value) for c in changes], ev.context.request_id, pd["action"])
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    one_key = kr.audit_records("acme", key_id=old.record.id)
    print(len(one_key), one_key.records[0].context.remote_address)
    clock.advance(timedelta(days=400))
    pruned: int = kr.prune_audit(timedelta(days=365))
    check(pruned > 0 and kr.prune_audit(0.0) == 0, "prune_audit")


def rate_limits_and_stores() -> None:
    """Rate limits (per class, account and key) and the durable stores."""
    import os
    import tempfile

    admin = Actor("acme", "PADMIN1", "admin")
    limits: apikeys.RateLimits = (
        apikeys.RateLimits.pagerduty()
        .with_limit("general_key", apikeys.Limit(2, timedelta(minutes=1)))
        .with_limit("events_key", apikeys.Limit.per_minute(120))
        .with_account_limit("globex", "user", None)
    )
    default: apikeys.Limit | None = apikeys.RateLimits.none().limit("user")
    with tempfile.TemporaryDirectory() as tmp:
        store = apikeys.SqliteStore(os.path.join(tmp, "keys.db"))
        kr = Keyring(store, rate_limits=limits)
        issued = kr.create_general_key(admin, "bot")
        limits = limits.with_key_limit(issued.record.id, apikeys.Limit(3, 60.0))
        kr = Keyring(store, rate_limits=limits)
        status: apikeys.RateLimitStatus | None = kr.authenticate(issued.secret).rate_limit
        assert status is not None
        print(status.limit, status.remaining, status.reset, default)
        try:
            for _ in range(3):
                kr.authenticate(issued.secret)
        except apikeys.RateLimited as e:
            print("retry in", e.retry_after, "s; limit", e.limit)
        rejections: dict[str, int] = kr.rate_limit_rejections()
        print(rejections, store.flush(), store.path)
    # Verification metrics (docs/metrics.md): counted in the core, read by a collector.
    metered = apikeys.Keyring(metrics=True)
    try:
        metered.authenticate("not a key")
    except apikeys.Unauthorized:
        pass
    snapshot = metered.metrics()
    if snapshot is not None:
        bounds, series = snapshot
        for kind, outcome, count, sum_seconds, buckets in series:
            print(kind, outcome, count, round(sum_seconds, 9), buckets[-1], len(bounds))
    from apikeys.prometheus import AuthCollector
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(AuthCollector(metered))
    print(len(generate_latest(registry)))
    url = os.environ.get("APIKEYS_TEST_POSTGRES_URL")
    if url:
        pg = apikeys.PostgresStore(url, schema="typed_usage_example")
        print(len(Keyring(pg).list(admin)) >= 0, pg.flush())
    redis = os.environ.get("APIKEYS_TEST_REDIS_URL")
    if redis:
        limiter = apikeys.RedisRateLimiter(redis, fallback="local", prefix="typed-usage:", timeout=0.5)
        Keyring(rate_limits=limits, rate_limiter=limiter)
        print(limiter.is_degraded, limiter.fallback_count)


if __name__ == "__main__":
    main()
