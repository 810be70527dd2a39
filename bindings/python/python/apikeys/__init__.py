"""Issue and check PagerDuty-style API keys.

Everything here is implemented by the Rust crate ``apikeys``; this package
re-exports its classes and exceptions and adds three ``str`` enums. A role,
kind or access level may be given as an enum member or as its string.

>>> import apikeys
>>> kr = apikeys.Keyring()
>>> admin = apikeys.Actor("acme", "PADMIN1", "admin")
>>> issued = kr.create_general_key(admin, "CI bot", read_only=True)
>>> kr.authenticate(issued.secret).account
'acme'
"""

from __future__ import annotations

import enum

from ._apikeys import (
    AccountSettings,
    Actor,
    ApiKeyError,
    AuditEvent,
    AuditPage,
    CallContext,
    Disabled,
    FieldChange,
    Forbidden,
    InvalidInput,
    IssuedKey,
    Keyring,
    KeyRecord,
    Limit,
    ManualClock,
    MemoryStore,
    NotFound,
    NotPermitted,
    PlanRestricted,
    PostgresStore,
    Principal,
    RateLimited,
    RateLimitStatus,
    RateLimits,
    RedisRateLimiter,
    Rotation,
    SqliteStore,
    StoreError,
    Unauthorized,
    UsePlace,
    UserState,
    WebhookEndpoint,
    WebhookWorker,
    WrongApi,
    __version__,
    _role_name,
    events_routing_key,
    generate_webhook_secret,
    token_from_authorization,
    verify_webhook,
)


def _not_a_member(cls: type, value: object, field: str, what: str) -> Exception:
    """The error for a value that names no member: a ``TypeError`` naming
    the argument for a non-string, an ``InvalidInput`` naming it otherwise."""
    if not isinstance(value, str):
        return TypeError(f"argument '{field}' must be str, not {type(value).__name__}")
    expected = ", ".join(m.value for m in cls)  # type: ignore[attr-defined]
    e = InvalidInput(f"invalid {field}: unknown {what}; expected one of {expected}")
    e.field = field
    e.reason = f"unknown {what}"
    return e


class Role(str, enum.Enum):
    """A user's role in an account, with PagerDuty's REST names.

    ``Role("global_admin")``, ``Role("manager")`` and ``Role("responder")``
    give the roles those aliases stand for; an unknown string raises
    ``InvalidInput``.
    """

    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "user"
    RESPONDER = "limited_user"
    OBSERVER = "observer"
    RESTRICTED_ACCESS = "restricted_access"
    FULL_STAKEHOLDER = "read_only_user"
    LIMITED_STAKEHOLDER = "read_only_limited_user"

    @classmethod
    def _missing_(cls, value: object) -> Role:
        # The core's parser: aliases, and InvalidInput (or a TypeError) naming 'role'.
        return cls(_role_name(value))

    def __str__(self) -> str:
        return self.value


class KeyKind(str, enum.Enum):
    """The five kinds of key."""

    GENERAL = "general"
    USER_TOKEN = "user_token"
    SCOPED = "scoped"
    INTEGRATION = "integration"
    ROUTING = "routing"

    @classmethod
    def _missing_(cls, value: object) -> KeyKind:
        raise _not_a_member(cls, value, "kind", "key kind")

    def __str__(self) -> str:
        return self.value


class AccessLevel(str, enum.Enum):
    """What a general access key may do."""

    FULL_ACCESS = "full_access"
    READ_ONLY = "read_only"

    @classmethod
    def _missing_(cls, value: object) -> AccessLevel:
        raise _not_a_member(cls, value, "access", "access level")

    def __str__(self) -> str:
        return self.value


__all__ = [
    "AccessLevel",
    "AccountSettings",
    "Actor",
    "ApiKeyError",
    "AuditEvent",
    "AuditPage",
    "CallContext",
    "Disabled",
    "FieldChange",
    "Forbidden",
    "InvalidInput",
    "IssuedKey",
    "KeyKind",
    "KeyRecord",
    "Keyring",
    "Limit",
    "ManualClock",
    "MemoryStore",
    "NotFound",
    "NotPermitted",
    "PlanRestricted",
    "PostgresStore",
    "Principal",
    "RateLimitStatus",
    "RateLimited",
    "RateLimits",
    "RedisRateLimiter",
    "Role",
    "Rotation",
    "SqliteStore",
    "StoreError",
    "Unauthorized",
    "UsePlace",
    "UserState",
    "WebhookEndpoint",
    "WebhookWorker",
    "WrongApi",
    "__version__",
    "events_routing_key",
    "generate_webhook_secret",
    "token_from_authorization",
    "verify_webhook",
]
