"""Issue and check PagerDuty-style API keys (type stubs, checked by mypy.stubtest)."""

import builtins
import enum
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, final

__version__: str
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

class Role(str, enum.Enum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "user"
    RESPONDER = "limited_user"
    OBSERVER = "observer"
    RESTRICTED_ACCESS = "restricted_access"
    FULL_STAKEHOLDER = "read_only_user"
    LIMITED_STAKEHOLDER = "read_only_limited_user"
    def __new__(cls, value: object) -> Role: ...

class KeyKind(str, enum.Enum):
    GENERAL = "general"
    USER_TOKEN = "user_token"
    SCOPED = "scoped"
    INTEGRATION = "integration"
    ROUTING = "routing"
    def __new__(cls, value: object) -> KeyKind: ...

class AccessLevel(str, enum.Enum):
    FULL_ACCESS = "full_access"
    READ_ONLY = "read_only"
    def __new__(cls, value: object) -> AccessLevel: ...

class ApiKeyError(Exception):
    status: int
    code: int
    reason: str

class Unauthorized(ApiKeyError): ...
class WrongApi(ApiKeyError): ...
class Forbidden(ApiKeyError): ...
class PlanRestricted(ApiKeyError): ...
class NotPermitted(ApiKeyError): ...
class NotFound(ApiKeyError): ...

class RateLimited(ApiKeyError):
    retry_after: float
    limit: int

class InvalidInput(ApiKeyError):
    field: str

class StoreError(ApiKeyError): ...

@final
class CallContext:
    """How a management call reached the application, kept in its audit record.

    ``caller_key`` is the key the caller authenticated with: only its last
    four characters are kept (``truncated_token``). Values are cut to 128
    bytes; control characters are dropped and key-shaped values kept as
    ``"(redacted)"``.
    """

    def __new__(
        cls, *, request_id: str | None = None, remote_address: str | None = None, caller_key: str | None = None
    ) -> CallContext: ...
    @property
    def request_id(self) -> str | None: ...
    @property
    def remote_address(self) -> str | None: ...
    @property
    def truncated_token(self) -> str | None: ...
    @property
    def report_url(self) -> str | None: ...
    @property
    def report_source(self) -> str | None: ...
    def __bool__(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Actor:
    def __new__(cls, account: str, user: str, role: Role | str, *, context: CallContext | None = None) -> Actor: ...
    def with_context(self, context: CallContext) -> Actor: ...
    @property
    def account(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def role(self) -> Role: ...
    @property
    def context(self) -> CallContext: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class AccountSettings:
    def __new__(cls, *, rest_api: bool = True, advanced_permissions: bool = True) -> AccountSettings: ...
    @property
    def rest_api(self) -> bool: ...
    @property
    def advanced_permissions(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class UserState:
    @property
    def role(self) -> Role: ...
    @property
    def removed(self) -> bool: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class KeyRecord:
    @property
    def id(self) -> str: ...
    @property
    def account(self) -> str: ...
    @property
    def kind(self) -> KeyKind: ...
    @property
    def description(self) -> str: ...
    @property
    def access(self) -> AccessLevel: ...
    @property
    def read_only(self) -> bool: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def target(self) -> str | None: ...
    @property
    def scopes(self) -> list[str]: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def api_version(self) -> str: ...
    @property
    def disabled(self) -> Disabled | None: ...
    @property
    def last_used_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime | None: ...
    @property
    def hint(self) -> str: ...
    @property
    def last_used_from(self) -> UsePlace | None: ...
    @property
    def rotation(self) -> Rotation | None: ...
    @property
    def rotated_to(self) -> str | None: ...
    @property
    def rotated_from(self) -> str | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class Rotation:
    @property
    def rotated_from(self) -> str | None: ...
    @property
    def rotated_to(self) -> str | None: ...
    @property
    def rotated_at(self) -> datetime | None: ...
    @property
    def overlap_until(self) -> datetime | None: ...
    @property
    def quiet(self) -> float: ...
    @property
    def successor_used_at(self) -> datetime | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class UsePlace:
    @property
    def remote_address(self) -> str | None: ...
    @property
    def method(self) -> str | None: ...
    @property
    def path(self) -> str | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Disabled:
    @property
    def by(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class IssuedKey:
    @property
    def secret(self) -> str: ...
    @property
    def record(self) -> KeyRecord: ...

@final
class Principal:
    @property
    def key_id(self) -> str: ...
    @property
    def kind(self) -> KeyKind: ...
    @property
    def account(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def role(self) -> Role | None: ...
    @property
    def access(self) -> AccessLevel: ...
    @property
    def scopes(self) -> list[str]: ...
    @property
    def target(self) -> str | None: ...
    @property
    def rate_limit(self) -> RateLimitStatus | None: ...
    @property
    def record(self) -> KeyRecord: ...

_AuditAction = Literal[
    "create",
    "list",
    "get",
    "disable",
    "enable",
    "delete",
    "set_account",
    "set_user_role",
    "remove_user",
    "rotate",
    "end_rotation",
]

@final
class FieldChange:
    @property
    def field(self) -> str: ...
    @property
    def value(self) -> str | None: ...
    @property
    def before_value(self) -> str | None: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class AuditEvent:
    @property
    def id(self) -> int: ...
    @property
    def at(self) -> datetime: ...
    @property
    def account(self) -> str: ...
    @property
    def actor(self) -> str: ...
    @property
    def actor_role(self) -> Role | None: ...
    @property
    def action(self) -> _AuditAction: ...
    @property
    def key_kind(self) -> KeyKind | None: ...
    @property
    def key_id(self) -> str | None: ...
    @property
    def subject_user(self) -> str | None: ...
    @property
    def allowed(self) -> bool: ...
    @property
    def outcome(self) -> Literal["allowed", "refused"]: ...
    @property
    def error(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def changes(self) -> list[FieldChange]: ...
    @property
    def context(self) -> CallContext: ...
    def to_pagerduty(self) -> dict[str, Any]: ...

@final
class AuditPage:
    @property
    def records(self) -> list[AuditEvent]: ...
    @property
    def next_cursor(self) -> str | None: ...
    def __len__(self) -> int: ...

@final
class MemoryStore:
    def __new__(cls) -> MemoryStore: ...
    def __len__(self) -> int: ...

@final
class SqliteStore:
    """Keys in one SQLite file, shared by every process on the machine.

    Open each file once per process and share that ``SqliteStore`` (pass it
    to every ``Keyring``; a second one on the file is safe but keeps its own
    cache). Never open the same file with Python's ``sqlite3``
    module in that process, not even to read it: the extension carries its
    own copy of SQLite, and SQLite's POSIX locks cannot tell two copies in
    one process apart, so closing the ``sqlite3`` connection drops the
    store's locks and can cut its later writes off from the file (lost
    keys). To look inside, use another process, e.g. the ``sqlite3`` command
    line tool or ``subprocess``.
    """

    def __new__(
        cls, path: str | os.PathLike[str], *, outbox: bool | None = None
    ) -> SqliteStore: ...
    def flush(self) -> int: ...
    def set_outbox(self, on: bool) -> None: ...
    @property
    def path(self) -> str: ...

@final
class PostgresStore:
    def __new__(
        cls, url: str, *, schema: str | None = None, outbox: bool | None = None
    ) -> PostgresStore: ...
    def flush(self) -> int: ...
    def set_outbox(self, on: bool) -> None: ...

_EventType = Literal[
    "key.created",
    "key.disabled",
    "key.enabled",
    "key.deleted",
    "key.rotated",
    "key.rotation_ended",
    "key.expiring",
    "key.leaked",
    "user.removed",
]

@final
class WebhookEndpoint:
    """A receiver of webhook events (docs/webhooks.md): a name, an http(s)
    URL, a ``whsec_`` signing secret and the event types it wants (all by
    default). Checked at once: ``InvalidInput`` naming ``name``, ``url``,
    ``secret`` or ``events``; the secret is never repeated."""

    def __new__(
        cls, name: str, url: str, secret: str, *, events: Iterable[_EventType] | None = None
    ) -> WebhookEndpoint: ...
    @property
    def name(self) -> str: ...

@final
class WebhookWorker:
    """Delivers a SqliteStore's or PostgresStore's outbox to endpoints, signed
    the Standard Webhooks way, at least once (docs/webhooks.md). Durations are
    seconds or timedeltas; ``expiring_ahead=0`` sends no ``key.expiring``."""

    def __new__(
        cls,
        store: SqliteStore | PostgresStore,
        endpoints: Iterable[WebhookEndpoint],
        *,
        timeout: float | timedelta | None = None,
        max_attempts: int | None = None,
        max_age: float | timedelta | None = None,
        backoff_base: float | timedelta | None = None,
        backoff_max: float | timedelta | None = None,
        poll_interval: float | timedelta | None = None,
        batch: int | None = None,
        lease: float | timedelta | None = None,
        expiring_ahead: float | timedelta | None = None,
        expiring_every: float | timedelta | None = None,
    ) -> WebhookWorker: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    @property
    def running(self) -> bool: ...
    def run_once(self) -> dict[str, int]: ...
    def outbox(
        self,
        status: Literal["pending", "delivered", "dead"] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]: ...

def generate_webhook_secret() -> str:
    """A fresh signing secret: ``whsec_`` and the base64 of 32 random bytes."""

def verify_webhook(
    secret: str,
    webhook_id: str,
    webhook_timestamp: str,
    webhook_signature: str,
    body: bytes,
    *,
    tolerance: int = 300,
) -> bool:
    """Whether a received webhook is genuine (its three headers and raw body)."""

_LimitClass = Literal["general_key", "user", "scoped_account", "events_key"]

@final
class Limit:
    def __new__(cls, requests: int, window: float | timedelta) -> Limit: ...
    @staticmethod
    def per_minute(requests: int) -> Limit: ...
    @property
    def requests(self) -> int: ...
    @property
    def window(self) -> float: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class RateLimits:
    @staticmethod
    def none() -> RateLimits: ...
    @staticmethod
    def pagerduty() -> RateLimits: ...
    def with_limit(self, limit_class: _LimitClass, limit: Limit | None) -> RateLimits: ...
    def with_account_limit(self, account: str, limit_class: _LimitClass, limit: Limit | None) -> RateLimits: ...
    def with_key_limit(self, key_id: str, limit: Limit | None) -> RateLimits: ...
    def limit(self, limit_class: _LimitClass) -> Limit | None: ...
    def account_limits(self) -> dict[str, dict[_LimitClass, Limit | None]]: ...
    def key_limits(self) -> dict[str, Limit | None]: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class RateLimitStatus:
    @property
    def limit(self) -> int: ...
    @property
    def remaining(self) -> int: ...
    @property
    def reset(self) -> float: ...
    def __eq__(self, other: object, /) -> bool: ...
    __hash__: ClassVar[None]  # type: ignore[assignment]

@final
class RedisRateLimiter:
    def __new__(
        cls,
        url: str,
        *,
        fallback: Literal["local", "deny", "allow"] | None = None,
        prefix: str | None = None,
        timeout: float | timedelta | None = None,
    ) -> RedisRateLimiter: ...
    @property
    def is_degraded(self) -> bool: ...
    @property
    def fallback_count(self) -> int: ...

@final
class ManualClock:
    def __new__(cls, start: datetime) -> ManualClock: ...
    def advance(self, delta: timedelta) -> None: ...
    def set(self, at: datetime) -> None: ...
    def now(self) -> datetime: ...

@final
class Keyring:
    def __new__(
        cls,
        store: MemoryStore | SqliteStore | PostgresStore | None = None,
        *,
        pepper: bytes | None = None,
        clock: ManualClock | None = None,
        rate_limits: RateLimits | None = None,
        rate_limiter: RedisRateLimiter | None = None,
        audit_capacity: int | None = None,
        rotation_quiet: float | timedelta | None = None,
        metrics: bool | None = None,
    ) -> Keyring: ...
    def create_general_key(
        self, actor: Actor, description: str, *, read_only: bool = False, expires_at: datetime | None = None
    ) -> IssuedKey: ...
    def create_user_token(self, actor: Actor, description: str, *, expires_at: datetime | None = None) -> IssuedKey: ...
    def create_integration_key(
        self, actor: Actor, service_id: str, description: str, *, expires_at: datetime | None = None
    ) -> IssuedKey: ...
    def create_routing_key(
        self, actor: Actor, orchestration_id: str, description: str, *, expires_at: datetime | None = None
    ) -> IssuedKey: ...
    def create_scoped_token(
        self, actor: Actor, description: str, scopes: Iterable[str], *, expires_at: datetime | None = None
    ) -> IssuedKey: ...
    def disable(self, actor: Actor, key_id: str) -> KeyRecord: ...
    def enable(self, actor: Actor, key_id: str) -> KeyRecord: ...
    def delete(self, actor: Actor, key_id: str) -> KeyRecord: ...
    def rotate(self, actor: Actor, key_id: str, grace: float | timedelta) -> IssuedKey: ...
    def end_rotation(self, actor: Actor, key_id: str) -> KeyRecord: ...
    def audit_records(
        self,
        account: str,
        *,
        key_id: str | None = None,
        actor: str | None = None,
        actions: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> AuditPage: ...
    def prune_audit(self, older_than: float | timedelta) -> int: ...
    def get(self, actor: Actor, key_id: str) -> KeyRecord: ...
    def list(self, actor: Actor) -> builtins.list[KeyRecord]: ...
    def set_account(self, account: str, settings: AccountSettings) -> None: ...
    def account(self, account: str) -> AccountSettings: ...
    def set_user_role(self, account: str, user: str, role: Role | str) -> None: ...
    def remove_user(self, account: str, user: str) -> int: ...
    def set_account_as(self, actor: Actor, settings: AccountSettings) -> None: ...
    def set_user_role_as(self, actor: Actor, user: str, role: Role | str) -> None: ...
    def remove_user_as(self, actor: Actor, user: str) -> int: ...
    def user(self, account: str, user: str) -> UserState | None: ...
    @property
    def may_block(self) -> bool: ...
    def authenticate(
        self,
        token: str,
        api: Literal["rest", "events"] = "rest",
        method: str = "GET",
        scope: str | None = None,
        *,
        remote_address: str | None = None,
        path: str | None = None,
    ) -> Principal: ...
    def try_authenticate(
        self,
        token: str,
        api: Literal["rest", "events"] = "rest",
        method: str = "GET",
        scope: str | None = None,
        *,
        remote_address: str | None = None,
        path: str | None = None,
    ) -> Principal | None: ...
    @property
    def store_kind(self) -> Literal["memory", "sqlite", "postgres"]: ...
    @property
    def has_rate_limits(self) -> bool: ...
    def flush(self) -> int: ...
    def rate_limit_rejections(self) -> dict[str, int]: ...
    def metrics(
        self,
    ) -> tuple[builtins.list[float], builtins.list[tuple[str, str, int, float, builtins.list[int]]]] | None: ...
    def audit_trail(self) -> builtins.list[AuditEvent]: ...

def events_routing_key(body: bytes) -> str:
    """The ``routing_key`` of an Events API v2 body, as the Rust adapters read it.

    Raises ``InvalidInput`` (400, 2001) with the message of PagerDuty's error
    body; ``.field`` is ``"body"`` or ``"routing_key"``, ``.reason`` names
    the check (``"invalid_body"``, ``"missing_routing_key"``).
    """

def token_from_authorization(value: str | bytes) -> str | None:
    """The key in one ``Authorization`` header value, or ``None`` when it has
    no accepted form (``Token token=<key>`` or ``Bearer <key>``)."""
