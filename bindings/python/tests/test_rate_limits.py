"""Rate limits (issue 7): configuration, the sliding window on a manual clock,
shared budgets, the 429's retry time, the principal's standing, rejections."""

from __future__ import annotations

import os
import threading
import uuid
from datetime import timedelta

import pytest

import apikeys



def limited(clock: apikeys.ManualClock, limits: apikeys.RateLimits) -> apikeys.Keyring:
    return apikeys.Keyring(clock=clock, rate_limits=limits)


def test_pagerduty_numbers() -> None:
    pd = apikeys.RateLimits.pagerduty()
    assert pd.limit("general_key") == apikeys.Limit(960, 60)
    assert pd.limit("user") == apikeys.Limit.per_minute(960)
    assert pd.limit("scoped_account") == apikeys.Limit(960, timedelta(minutes=1))
    assert pd.limit("events_key") == apikeys.Limit(120, 60.0)
    assert apikeys.RateLimits.none().limit("general_key") is None


def test_rate_limits_are_immutable_values() -> None:
    pd = apikeys.RateLimits.pagerduty()
    changed = pd.with_limit("general_key", apikeys.Limit(5, 1))
    assert pd.limit("general_key") == apikeys.Limit(960, 60)
    assert changed.limit("general_key") == apikeys.Limit(5, 1)
    assert changed != pd
    assert "general_key=5/1.0s" in repr(changed)
    assert pd.with_limit("user", None).limit("user") is None


def test_keyring_without_limits_never_limits(kr: apikeys.Keyring, admin: apikeys.Actor) -> None:
    token = kr.create_general_key(admin, "bot").secret
    for _ in range(2000):
        p = kr.authenticate(token)
    assert p.rate_limit is None
    assert kr.rate_limit_rejections() == {}


def test_exactly_the_limit_per_window_then_the_window_slides(
    clock: apikeys.ManualClock, admin: apikeys.Actor
) -> None:
    kr = limited(clock, apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(5, 60)))
    issued = kr.create_general_key(admin, "bot")
    token = issued.secret
    seen = []
    for i in range(5):
        p = kr.authenticate(token)
        assert p.rate_limit is not None
        seen.append(p.rate_limit.remaining)
        assert p.rate_limit.limit == 5
        assert 0 < p.rate_limit.reset <= 60
        clock.advance(timedelta(seconds=10))  # requests at 0, 10, 20, 30, 40 s
    assert seen == [4, 3, 2, 1, 0]
    # now 50 s: the sixth is refused; the oldest (at 0 s) leaves the window at 60 s.
    with pytest.raises(apikeys.RateLimited) as e:
        kr.authenticate(token)
    assert e.value.status == 429 and e.value.code == 2020
    assert e.value.limit == 5
    assert e.value.retry_after == pytest.approx(10.0, abs=0.002)
    assert token not in str(e.value) and token not in repr(e.value)
    clock.advance(timedelta(seconds=9, milliseconds=999))
    with pytest.raises(apikeys.RateLimited) as e:
        kr.authenticate(token)
    assert e.value.retry_after == pytest.approx(0.001, abs=0.001)
    clock.advance(timedelta(milliseconds=1))
    p = kr.authenticate(token)  # 60 s: one slot freed, exactly one admitted
    assert p.rate_limit is not None and p.rate_limit.remaining == 0
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(token)
    assert kr.rate_limit_rejections() == {issued.record.id: 3}


def test_refused_requests_do_not_spend_the_budget(
    clock: apikeys.ManualClock, admin: apikeys.Actor
) -> None:
    kr = limited(clock, apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(2, 60)))
    issued = kr.create_general_key(admin, "ro", read_only=True)
    for _ in range(10):
        with pytest.raises(apikeys.Forbidden):
            kr.authenticate(issued.secret, method="POST")
    assert kr.authenticate(issued.secret).rate_limit.remaining == 1  # type: ignore[union-attr]


def test_user_budget_is_shared_by_their_tokens_not_by_two_users(
    clock: apikeys.ManualClock,
) -> None:
    kr = limited(clock, apikeys.RateLimits.none().with_limit("user", apikeys.Limit(3, 60)))
    alice = apikeys.Actor("acme", "PALICE", "manager")
    bob = apikeys.Actor("acme", "PBOB", "manager")
    a1 = kr.create_user_token(alice, "laptop").secret
    a2 = kr.create_user_token(alice, "ci").secret
    b1 = kr.create_user_token(bob, "laptop").secret
    kr.authenticate(a1)
    kr.authenticate(a2)
    kr.authenticate(a1)
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(a2)
    for _ in range(3):
        kr.authenticate(b1)
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(b1)


def test_scoped_tokens_share_their_accounts_budget(
    clock: apikeys.ManualClock, manager: apikeys.Actor
) -> None:
    kr = limited(
        clock, apikeys.RateLimits.none().with_limit("scoped_account", apikeys.Limit(2, 60))
    )
    s1 = kr.create_scoped_token(manager, "one", ["incidents.read"]).secret
    s2 = kr.create_scoped_token(manager, "two", ["incidents.read"]).secret
    kr.authenticate(s1, scope="incidents.read")
    kr.authenticate(s2, scope="incidents.read")
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(s1, scope="incidents.read")


def test_events_keys_have_their_own_limit(clock: apikeys.ManualClock, manager: apikeys.Actor) -> None:
    kr = limited(clock, apikeys.RateLimits.pagerduty())
    key = kr.create_integration_key(manager, "PSVC1", "datadog").secret
    for _ in range(120):
        kr.authenticate(key, api="events")
    with pytest.raises(apikeys.RateLimited) as e:
        kr.authenticate(key, api="events")
    assert e.value.limit == 120


def test_account_and_key_overrides(clock: apikeys.ManualClock) -> None:
    acme = apikeys.Actor("acme", "PADMIN", "admin")
    globex = apikeys.Actor("globex", "PADMIN", "admin")
    base = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(2, 60))
    # Keys are made first to learn an id, then the keyring is rebuilt on the same store.
    store = apikeys.MemoryStore()
    kr0 = apikeys.Keyring(store, clock=clock)
    special = kr0.create_general_key(acme, "special")
    plain = kr0.create_general_key(acme, "plain")
    other = kr0.create_general_key(globex, "other")
    limits = base.with_account_limit("acme", "general_key", apikeys.Limit(4, 60)).with_key_limit(
        special.record.id, None
    )
    kr = apikeys.Keyring(store, clock=clock, rate_limits=limits)
    for _ in range(100):
        assert kr.authenticate(special.secret).rate_limit is None
    for _ in range(4):
        kr.authenticate(plain.secret)
    with pytest.raises(apikeys.RateLimited) as e:
        kr.authenticate(plain.secret)
    assert e.value.limit == 4
    for _ in range(2):
        kr.authenticate(other.secret)
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(other.secret)


def test_threads_admit_exactly_the_limit(clock: apikeys.ManualClock, admin: apikeys.Actor) -> None:
    kr = limited(clock, apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(500, 60)))
    token = kr.create_general_key(admin, "bot").secret
    admitted = [0] * 8

    def hammer(i: int) -> None:
        for _ in range(200):
            try:
                kr.authenticate(token)
                admitted[i] += 1
            except apikeys.RateLimited:
                pass

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 500


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        ((0, 60), apikeys.InvalidInput),
        ((-1, 60), apikeys.InvalidInput),
        ((2**32, 60), apikeys.InvalidInput),
        ((True, 60), TypeError),
        (("5", 60), TypeError),
        ((5, 0), apikeys.InvalidInput),
        ((5, -1.0), apikeys.InvalidInput),
        ((5, float("nan")), apikeys.InvalidInput),
        ((5, float("inf")), apikeys.InvalidInput),
        ((5, "60"), TypeError),
        ((5, None), TypeError),
        ((5, 0.0004), apikeys.InvalidInput),
        ((5, 31 * 86_400 + 1), apikeys.InvalidInput),
        ((5, timedelta(days=32)), apikeys.InvalidInput),
        ((5, 1e300), apikeys.InvalidInput),
    ],
)
def test_bad_limits_raise(args: tuple[object, object], exc: type[Exception]) -> None:
    with pytest.raises(exc):
        apikeys.Limit(*args)  # type: ignore[arg-type]


def test_bad_limits_name_the_field_and_why() -> None:
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Limit(0, 60)
    assert e.value.field == "requests"
    assert "at least 1" in str(e.value)
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Limit.per_minute(0)
    assert e.value.field == "requests"
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Limit(5, 0.0004)
    assert e.value.field == "window"
    assert "at least 1 ms" in str(e.value)
    with pytest.raises(apikeys.InvalidInput) as e:
        apikeys.Limit(5, timedelta(days=40))
    assert e.value.field == "window"
    assert "31 days" in str(e.value)


def test_limits_at_the_edges_of_the_range_are_kept_exactly() -> None:
    assert apikeys.Limit(1, 0.001).window == 0.001
    assert apikeys.Limit(2**32 - 1, timedelta(days=31)).requests == 2**32 - 1
    assert apikeys.Limit(5, timedelta(days=31)).window == 31 * 86_400.0
    # Taken to the microsecond, then whole milliseconds: no float truncation.
    assert apikeys.Limit(5, 1.001).window == 1.001
    assert apikeys.Limit(5, 0.0015).window == 0.001


def test_every_override_reads_back() -> None:
    five = apikeys.Limit(5, 60)
    k1, k2 = "PAAAAAAAAAAAAA", "PBBBBBBBBBBBBB"
    limits = (
        apikeys.RateLimits.pagerduty()
        .with_account_limit("acme", "general_key", five)
        .with_account_limit("acme", "scoped_account", None)
        .with_account_limit("globex", "user", five)
        .with_key_limit(k1, five)
        .with_key_limit(k2, None)
    )
    assert limits.account_limits() == {
        "acme": {"general_key": five, "scoped_account": None},
        "globex": {"user": five},
    }
    assert limits.key_limits() == {k1: five, k2: None}
    assert "account_overrides=3, key_overrides=2" in repr(limits)
    none = apikeys.RateLimits.none()
    assert none.account_limits() == {} and none.key_limits() == {}
    # Each call returns a fresh dict: changing it changes nothing.
    limits.key_limits().clear()
    assert len(limits.key_limits()) == 2


def test_bad_rate_limit_arguments_raise() -> None:
    pd = apikeys.RateLimits.pagerduty()
    with pytest.raises(apikeys.InvalidInput) as e:
        pd.with_limit("everything", None)  # type: ignore[arg-type]
    assert e.value.field == "limit_class"
    with pytest.raises(apikeys.InvalidInput) as e:
        pd.with_key_limit("not an id", None)
    assert e.value.field == "key_id"
    with pytest.raises(TypeError):
        pd.with_limit("user", 960)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apikeys.Keyring(rate_limits={"general_key": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        apikeys.Keyring(rate_limiter="redis://")  # type: ignore[arg-type]
    with pytest.raises(apikeys.InvalidInput):
        apikeys.RedisRateLimiter("redis://127.0.0.1:1/", fallback="maybe")  # type: ignore[arg-type]


def redis_url() -> str:
    url = os.environ.get("APIKEYS_TEST_REDIS_URL")
    if not url:
        pytest.fail("APIKEYS_TEST_REDIS_URL is not set: run under scripts/test.sh or `source scripts/redis.sh`")
    return url


def test_redis_limiter_shares_one_budget_between_keyrings(admin: apikeys.Actor) -> None:
    url = redis_url()
    prefix = f"apikeys-pytest-{uuid.uuid4().hex}:"
    store = apikeys.MemoryStore()
    limits = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(7, 60))
    rings = [
        apikeys.Keyring(store, rate_limits=limits, rate_limiter=apikeys.RedisRateLimiter(url, prefix=prefix))
        for _ in range(2)
    ]
    token = rings[0].create_general_key(admin, "bot").secret
    admitted = 0
    retry = []
    for i in range(20):
        try:
            rings[i % 2].authenticate(token)
            admitted += 1
        except apikeys.RateLimited as e:
            retry.append(e.retry_after)
    assert admitted == 7
    assert all(0 < r <= 60 for r in retry)


def test_redis_unreachable_falls_back_locally_and_reports_it(admin: apikeys.Actor) -> None:
    limiter = apikeys.RedisRateLimiter("redis://127.0.0.1:1/", fallback="local", timeout=0.2)
    kr = apikeys.Keyring(
        rate_limits=apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(3, 60)),
        rate_limiter=limiter,
    )
    token = kr.create_general_key(admin, "bot").secret
    for _ in range(3):
        kr.authenticate(token)
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(token)
    assert limiter.is_degraded
    assert limiter.fallback_count >= 4


def test_redis_unreachable_deny(admin: apikeys.Actor) -> None:
    limiter = apikeys.RedisRateLimiter("redis://127.0.0.1:1/", fallback="deny", timeout=0.2)
    kr = apikeys.Keyring(rate_limits=apikeys.RateLimits.pagerduty(), rate_limiter=limiter)
    token = kr.create_general_key(admin, "bot").secret
    with pytest.raises(apikeys.RateLimited):
        kr.authenticate(token)
    assert "RedisRateLimiter(degraded=True)" == repr(limiter)




_WORKER = """
import sys, apikeys
path, url, prefix, token, n = sys.argv[1:6]
limits = apikeys.RateLimits.none().with_limit("general_key", apikeys.Limit(25, 60))
kr = apikeys.Keyring(apikeys.SqliteStore(path), rate_limits=limits,
                     rate_limiter=apikeys.RedisRateLimiter(url, prefix=prefix))
ok = 0
for _ in range(int(n)):
    try:
        kr.authenticate(token)
        ok += 1
    except apikeys.RateLimited as e:
        assert 0 < e.retry_after <= 60 and e.limit == 25, (e.retry_after, e.limit)
print(ok)
"""


def test_processes_sharing_redis_admit_the_limit_together(tmp_path: "os.PathLike[str]") -> None:
    import subprocess
    import sys

    url = redis_url()
    path = os.path.join(os.fspath(tmp_path), "keys.db")
    admin = apikeys.Actor("acme", "PADMIN1", "admin")
    token = apikeys.Keyring(apikeys.SqliteStore(path)).create_general_key(admin, "bot").secret
    prefix = f"apikeys-pytest-{uuid.uuid4().hex}:"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, path, url, prefix, token, "20"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    counts = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        counts.append(int(out))
    assert sum(counts) == 25, counts
