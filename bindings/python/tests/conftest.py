"""Shared fixtures: a keyring on a manual clock and one actor per role."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import apikeys

START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> apikeys.ManualClock:
    return apikeys.ManualClock(START)


@pytest.fixture
def kr(clock: apikeys.ManualClock) -> apikeys.Keyring:
    return apikeys.Keyring(clock=clock)


def actor(role: str, user: str | None = None, account: str = "acme") -> apikeys.Actor:
    return apikeys.Actor(account, user or f"P{role.upper()}1", role)


@pytest.fixture
def owner() -> apikeys.Actor:
    return actor("owner")


@pytest.fixture
def admin() -> apikeys.Actor:
    return actor("admin")


@pytest.fixture
def manager() -> apikeys.Actor:
    return actor("manager")


@pytest.fixture
def responder() -> apikeys.Actor:
    return actor("responder")
