"""One Keyring shared by many threads: safe, and a disable is seen at once."""

from __future__ import annotations

import threading

import apikeys

from conftest import actor


def test_threads_authenticate_while_one_disables() -> None:
    kr = apikeys.Keyring()
    admin = actor("admin")
    keys = [kr.create_general_key(admin, f"key {i}") for i in range(8)]
    victim = keys[0]
    disabled = threading.Event()
    start = threading.Barrier(9)
    errors: list[str] = []
    seen_after: list[int] = []

    def reader(n: int) -> None:
        start.wait()
        ok_after = 0
        for i in range(4000):
            key = keys[(n + i) % len(keys)]
            was_disabled = disabled.is_set()
            try:
                kr.authenticate(key.secret)
                if key is victim and was_disabled:
                    ok_after += 1
            except apikeys.Unauthorized as e:
                if key is not victim:
                    errors.append(f"{key.record.id}: {e.reason}")
        seen_after.append(ok_after)

    def disabler() -> None:
        start.wait()
        for _ in range(50):
            kr.create_general_key(admin, "churn")
        kr.disable(admin, victim.record.id)
        disabled.set()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=disabler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # Once disable() has returned, no thread authenticates the key again.
    assert seen_after == [0] * 8
    assert kr.get(admin, victim.record.id).disabled
    assert len(kr.list(admin)) == 8 + 50


def test_threads_create_concurrently() -> None:
    kr = apikeys.Keyring()
    admin = actor("admin")
    made: list[apikeys.IssuedKey] = []
    lock = threading.Lock()

    def maker() -> None:
        for _ in range(200):
            k = kr.create_general_key(admin, "k")
            with lock:
                made.append(k)

    threads = [threading.Thread(target=maker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({k.record.id for k in made}) == 1200
    assert len({k.secret for k in made}) == 1200
    for k in made[::50]:
        assert kr.authenticate(k.secret).key_id == k.record.id
