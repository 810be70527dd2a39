//! Lifecycle webhooks, the part every store shares: which events a change
//! makes ([`events_for`], derived once here from the change's audit record),
//! their JSON body, and the outbox they wait in until a delivery worker
//! (the `apikeys-webhooks` crate) sends them ([`Outbox`]).
//!
//! The durable stores (SQLite, PostgreSQL) write each event into their outbox
//! table **in the transaction of the change and its audit record**, once the
//! outbox is turned on for the database: no event without its change, no
//! change without its event. [`OutboxStore`] gives any store, [`MemoryStore`]
//! first, an in-memory outbox ([`MemoryOutbox`]): lost with the process, for
//! tests and single-process applications that accept it.
//!
//! The contract is docs/webhooks.md and docs/design.md §11.
//!
//! [`MemoryStore`]: crate::MemoryStore

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::audit::{AuditEvent, AuditOutcome, rfc3339};
use crate::error::StoreError;
use crate::key::KeyKind;
use crate::record::{Disabled, KeyId, KeyRecord, Timestamp};
use crate::role::{AccountSettings, UserState};
use crate::store::{Edit, KeyFilter, KeyStore, Standings, UserInsert};

/// What happened: the `type` of a webhook event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A key was made.
    KeyCreated,
    /// A key was disabled (by hand, or because it leaked).
    KeyDisabled,
    /// A disabled key was enabled.
    KeyEnabled,
    /// A key was deleted (by hand, or because it leaked).
    KeyDeleted,
    /// A key was rotated: a new key made, the old one on an overlap.
    KeyRotated,
    /// A rotation's overlap was ended by hand.
    KeyRotationEnded,
    /// A key expires within the configured lead time (sent once per key and expiry).
    KeyExpiring,
    /// A key was reported leaked (a secret-scanning report).
    KeyLeaked,
    /// A user was removed from an account (their tokens disabled).
    UserRemoved,
}

crate::names::from_name!(EventType, "event_type");

impl EventType {
    /// Every event type, in declaration order.
    pub const ALL: [EventType; 9] = [
        EventType::KeyCreated,
        EventType::KeyDisabled,
        EventType::KeyEnabled,
        EventType::KeyDeleted,
        EventType::KeyRotated,
        EventType::KeyRotationEnded,
        EventType::KeyExpiring,
        EventType::KeyLeaked,
        EventType::UserRemoved,
    ];

    /// The name sent as `type` (`"key.created"` …).
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::KeyDisabled => "key.disabled",
            EventType::KeyEnabled => "key.enabled",
            EventType::KeyDeleted => "key.deleted",
            EventType::KeyRotated => "key.rotated",
            EventType::KeyRotationEnded => "key.rotation_ended",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyLeaked => "key.leaked",
            EventType::UserRemoved => "user.removed",
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One webhook event, as it goes into an outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    /// Its id (`evt_` and 32 hex digits): the `webhook-id` of every attempt
    /// to deliver it, so a receiver can tell a retry from a new event.
    pub id: String,
    /// What happened.
    pub event_type: EventType,
    /// When it happened.
    pub at: Timestamp,
    /// The account it happened in.
    pub account: String,
    /// The key concerned, if one is.
    pub key_id: Option<KeyId>,
    /// The body sent, exactly: JSON `{"type", "timestamp", "data"}`. Never a
    /// key and never a digest: only what the audit record holds.
    pub payload: String,
}

/// A fresh event id: `evt_` and 128 random bits in hex.
pub fn new_event_id() -> String {
    format!("evt_{}", random_hex::<16>())
}

/// `N` random bytes in lowercase hex.
pub(crate) fn random_hex<const N: usize>() -> String {
    use rand_core::TryRng;
    let mut b = [0u8; N];
    if getrandom::SysRng.try_fill_bytes(&mut b).is_err() {
        // No system randomness: unique enough within this process.
        static N_: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N_.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = Timestamp::now().unix_millis();
        b.iter_mut()
            .zip(t.to_le_bytes().into_iter().chain(n.to_le_bytes()).cycle())
            .for_each(|(x, y)| *x = y);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn event(
    event_type: EventType,
    at: Timestamp,
    account: &str,
    key_id: Option<KeyId>,
    data: Map<String, Value>,
) -> WebhookEvent {
    let body = json!({
        "type": event_type.as_str(),
        "timestamp": rfc3339(at.unix_millis()),
        "data": Value::Object(data),
    });
    WebhookEvent {
        id: new_event_id(),
        event_type,
        at,
        account: account.to_owned(),
        key_id,
        payload: body.to_string(),
    }
}

/// Whether `audit` says `field` went from `before` to `value`.
fn changed(audit: &AuditEvent, field: &str, value: &str) -> bool {
    audit
        .changes
        .iter()
        .any(|c| c.field == field && c.value.as_deref() == Some(value))
}

/// The events a change makes, derived from its audit record: the one
/// function every store calls (in the change's transaction), so that the
/// same change makes the same events everywhere.
///
/// Only allowed calls that changed something make events:
///
/// | audit action | event |
/// |---|---|
/// | `create` | `key.created` |
/// | `disable` (the key was enabled) | `key.disabled` |
/// | `enable` (the key was disabled) | `key.enabled` |
/// | `delete` | `key.deleted` |
/// | `rotate` | `key.rotated` |
/// | `end_rotation` (an overlap was running) | `key.rotation_ended` |
/// | `remove_user` | `user.removed` |
/// | any of these carrying the change `leaked` → `true` (a reported leak, [`crate::Keyring::report_leaked`]) | `key.leaked` first, then what the row above says (`key.disabled` / `key.deleted`; none when the key was already disabled) |
///
/// Refusals, reads, account settings and role changes make none.
/// `key.expiring` comes from time, not from a change ([`expiring_event`]).
pub fn events_for(audit: &AuditEvent) -> Vec<WebhookEvent> {
    if audit.outcome != AuditOutcome::Allowed || !audit.action.changes_state() {
        return Vec::new();
    }
    event_types(audit.action.as_str(), audit)
        .into_iter()
        .map(|t| {
            event(
                t,
                audit.at,
                &audit.account,
                audit.key_id,
                audit_data(t, audit),
            )
        })
        .collect()
}

/// The types of the events an allowed change named `name` makes (the table
/// of [`events_for`]). A reported leak is told by its record, not by a name
/// of its own: `Keyring::report_leaked` disables or deletes the key and adds
/// the change `leaked` → `true` (docs/design.md §10).
fn event_types(name: &str, audit: &AuditEvent) -> Vec<EventType> {
    let mut types: Vec<EventType> = Vec::with_capacity(2);
    if changed(audit, "leaked", "true") {
        types.push(EventType::KeyLeaked);
    }
    match name {
        "create" => types.push(EventType::KeyCreated),
        "disable" if changed(audit, "disabled", "true") => types.push(EventType::KeyDisabled),
        "enable" if changed(audit, "disabled", "false") => types.push(EventType::KeyEnabled),
        "delete" => types.push(EventType::KeyDeleted),
        "rotate" => types.push(EventType::KeyRotated),
        "end_rotation" if !audit.changes.is_empty() => types.push(EventType::KeyRotationEnded),
        "remove_user" => types.push(EventType::UserRemoved),
        _ => {}
    }
    types
}

/// The `data` of an event made from `audit`.
fn audit_data(t: EventType, audit: &AuditEvent) -> Map<String, Value> {
    let mut d = Map::new();
    d.insert("account".into(), Value::String(audit.account.clone()));
    if t == EventType::UserRemoved {
        d.insert("user".into(), json!(audit.subject_user));
    } else {
        d.insert("key_id".into(), json!(audit.key_id.map(|k| k.to_string())));
        d.insert("kind".into(), json!(audit.key_kind.map(KeyKind::as_str)));
        // A user token's owner: the user acted upon, or the actor acting on
        // their own token.
        let owner = audit
            .subject_user
            .clone()
            .or_else(|| (audit.key_kind == Some(KeyKind::UserToken)).then(|| audit.actor.clone()));
        d.insert("owner".into(), json!(owner));
    }
    d.insert("actor".into(), Value::String(audit.actor.clone()));
    d.insert(
        "actor_role".into(),
        json!(audit.actor_role.map(|r| r.as_str())),
    );
    if let Some(r) = &audit.context.request_id {
        d.insert("request_id".into(), Value::String(r.clone()));
    }
    for c in &audit.changes {
        match (t, c.field.as_str()) {
            (EventType::KeyRotated, "rotated_to") => {
                d.insert("new_key_id".into(), json!(c.value));
            }
            (EventType::KeyRotated | EventType::KeyRotationEnded, "overlap_until") => {
                d.insert("overlap_until".into(), json!(c.value));
            }
            _ => {}
        }
    }
    if !audit.changes.is_empty() {
        let changes: Vec<Value> = audit
            .changes
            .iter()
            .map(|c| json!({ "field": c.field, "before": c.before_value, "value": c.value }))
            .collect();
        d.insert("changes".into(), Value::Array(changes));
    }
    d
}

/// The `key.expiring` event of `record`, noticed at `now`.
pub fn expiring_event(record: &KeyRecord, now: Timestamp) -> WebhookEvent {
    let mut d = Map::new();
    d.insert("account".into(), Value::String(record.account.to_string()));
    d.insert("key_id".into(), Value::String(record.id.to_string()));
    d.insert("kind".into(), Value::String(record.kind.as_str().into()));
    d.insert("owner".into(), json!(record.owner.as_deref()));
    d.insert(
        "expires_at".into(),
        json!(record.expires_at.map(|t| rfc3339(t.unix_millis()))),
    );
    event(
        EventType::KeyExpiring,
        now,
        &record.account,
        Some(record.id),
        d,
    )
}

/// Whether `record` is due a `key.expiring` notice at `now`, sent `ahead`
/// of its expiry: it expires, not yet, within `ahead`, and is not disabled.
pub fn expiring_due(record: &KeyRecord, now: Timestamp, ahead: Duration) -> bool {
    record.disabled.is_none()
        && record
            .expires_at
            .is_some_and(|e| e > now && e <= now.saturating_add(ahead))
}

/// Where a row of the outbox stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting to be sent (again).
    Pending,
    /// Every endpoint it was meant for accepted it.
    Delivered,
    /// Given up on (too many attempts, or too old): kept, never sent again.
    Dead,
}

crate::names::from_name!(OutboxStatus, "status");

impl OutboxStatus {
    /// Every status.
    pub const ALL: [OutboxStatus; 3] = [
        OutboxStatus::Pending,
        OutboxStatus::Delivered,
        OutboxStatus::Dead,
    ];
    /// `"pending"`, `"delivered"` or `"dead"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }
}

/// One event in an outbox, with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Its place in the outbox (increasing in the order events were written).
    pub seq: u64,
    /// The event's id (`webhook-id`).
    pub event_id: String,
    /// Its type.
    pub event_type: EventType,
    /// Its account.
    pub account: String,
    /// The key concerned, if any.
    pub key_id: Option<KeyId>,
    /// When it happened.
    pub at: Timestamp,
    /// The body, exactly as sent.
    pub payload: String,
    /// Where it stands.
    pub status: OutboxStatus,
    /// How many times it was claimed for delivery.
    pub attempts: u32,
    /// Not to be tried again before this.
    pub next_at: Timestamp,
    /// The endpoints (by name) that accepted it so far: a retry skips them.
    pub delivered_to: Vec<String>,
    /// Why the last attempt failed (never a secret).
    pub last_error: Option<String>,
}

/// A row claimed for delivery, with the lease that lets its claimer finish it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The row as claimed (its `attempts` counts this claim).
    pub row: OutboxRow,
    /// The claim's token: [`Outbox::finish`] only writes while it still holds.
    pub lease: String,
}

/// How a delivery attempt ended, for [`Outbox::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Every endpoint accepted it.
    Delivered {
        /// The endpoints that accepted it (all of them now).
        delivered_to: Vec<String>,
    },
    /// Some endpoint did not: try again at `next_at`.
    Retry {
        /// The endpoints that accepted it so far.
        delivered_to: Vec<String>,
        /// Not before this.
        next_at: Timestamp,
        /// Why (never a secret).
        error: String,
    },
    /// Give up: the row stays, marked dead.
    Dead {
        /// The endpoints that accepted it.
        delivered_to: Vec<String>,
        /// Why.
        error: String,
    },
}

impl Finish {
    /// What a store writes for it: the row's new status (`delivered`,
    /// `pending` or `dead`), the endpoints that accepted it, when to try
    /// next (a retry only; otherwise the row's `next_at` stays) and why the
    /// last attempt failed.
    pub fn columns(&self) -> (&'static str, &[String], Option<Timestamp>, Option<&str>) {
        match self {
            Finish::Delivered { delivered_to } => ("delivered", delivered_to, None, None),
            Finish::Retry {
                delivered_to,
                next_at,
                error,
            } => ("pending", delivered_to, Some(*next_at), Some(error)),
            Finish::Dead {
                delivered_to,
                error,
            } => ("dead", delivered_to, None, Some(error)),
        }
    }
}

/// An outbox: where events wait for a delivery worker.
///
/// Claims are leases: a claimed row is invisible to other claims until its
/// lease runs out, so several workers (threads, or processes on PostgreSQL)
/// share one outbox without sending the same event at the same time; a
/// worker that dies mid-delivery leaves its rows to be claimed again when
/// their lease runs out (at least once: its receiver may see them twice,
/// with the same `webhook-id`).
pub trait Outbox: Send + Sync {
    /// Whether this store writes events (the outbox is turned on).
    fn outbox_enabled(&self) -> Result<bool, StoreError>;

    /// Claim up to `limit` pending rows due at `now` (oldest first) for
    /// `lease`: each one's `attempts` goes up by one.
    fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Record how the delivery of a claimed row ended. Answers `false`, and
    /// writes nothing, when the claim's lease was lost (it ran out and
    /// another worker claimed the row).
    fn finish(&self, claimed: &Claimed, how: &Finish, now: Timestamp) -> Result<bool, StoreError>;

    /// Write a `key.expiring` event for every key due one at `now`
    /// ([`expiring_due`], with `ahead`) that had none for its current
    /// expiry yet; say how many. Once per key and expiry, however many
    /// workers call it.
    fn enqueue_expiring(&self, now: Timestamp, ahead: Duration) -> Result<usize, StoreError>;

    /// Rows of the outbox, oldest first, with this status (or all), at most `limit`.
    fn outbox_rows(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;

    /// Delete delivered rows of events older than `before`; say how many
    /// (dead rows are kept until deleted by hand).
    fn prune_delivered(&self, before: Timestamp) -> Result<usize, StoreError>;
}

impl<O: Outbox + ?Sized> Outbox for Arc<O> {
    fn outbox_enabled(&self) -> Result<bool, StoreError> {
        (**self).outbox_enabled()
    }
    fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        (**self).claim(now, lease, limit)
    }
    fn finish(&self, claimed: &Claimed, how: &Finish, now: Timestamp) -> Result<bool, StoreError> {
        (**self).finish(claimed, how, now)
    }
    fn enqueue_expiring(&self, now: Timestamp, ahead: Duration) -> Result<usize, StoreError> {
        (**self).enqueue_expiring(now, ahead)
    }
    fn outbox_rows(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        (**self).outbox_rows(status, limit)
    }
    fn prune_delivered(&self, before: Timestamp) -> Result<usize, StoreError> {
        (**self).prune_delivered(before)
    }
}

/// A fresh lease token.
pub fn new_lease() -> String {
    random_hex::<16>()
}

/// The time a lease of `lease` taken at `now` holds until.
pub fn lease_until(now: Timestamp, lease: Duration) -> Timestamp {
    now.saturating_add(lease)
}

/// An outbox in memory: **not durable** (lost with the process). What
/// [`OutboxStore`] writes to.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    rows: Vec<(OutboxRow, Option<(String, Timestamp)>)>,
    next_seq: u64,
    expiring_sent: HashSet<(KeyId, u64)>,
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> MemoryOutbox {
        MemoryOutbox::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Add events (as a store does in the change's transaction).
    pub fn push(&self, events: Vec<WebhookEvent>) {
        if events.is_empty() {
            return;
        }
        let mut s = self.state();
        for e in events {
            s.next_seq += 1;
            let seq = s.next_seq;
            s.rows.push((new_row(seq, e), None));
        }
    }

    /// Add a `key.expiring` event for `record` unless one was added for its
    /// current expiry; say whether it was.
    pub fn push_expiring(&self, record: &KeyRecord, now: Timestamp) -> bool {
        let Some(exp) = record.expires_at else {
            return false;
        };
        let mut s = self.state();
        if !s.expiring_sent.insert((record.id, exp.unix_millis())) {
            return false;
        }
        s.next_seq += 1;
        let seq = s.next_seq;
        s.rows
            .push((new_row(seq, expiring_event(record, now)), None));
        true
    }
}

/// An outbox row as a database hands it over (columns `seq, event_id, type,
/// account, key_id, at, payload, status, attempts, next_at, delivered_to,
/// last_error`), for [`OutboxColumns::decode`]: the durable stores read
/// their rows back the same way.
#[derive(Clone, Debug)]
pub struct OutboxColumns {
    /// `seq`.
    pub seq: i64,
    /// `event_id`.
    pub event_id: String,
    /// `type`.
    pub event_type: String,
    /// `account`.
    pub account: String,
    /// `key_id` (the id's 64 bits as a signed integer).
    pub key_id: Option<i64>,
    /// `at` (unix milliseconds).
    pub at: i64,
    /// `payload`.
    pub payload: String,
    /// `status`.
    pub status: String,
    /// `attempts`.
    pub attempts: i64,
    /// `next_at` (unix milliseconds).
    pub next_at: i64,
    /// `delivered_to` (a JSON array of endpoint names).
    pub delivered_to: String,
    /// `last_error`.
    pub last_error: Option<String>,
}

impl OutboxColumns {
    /// The row, or [`StoreError::Corrupt`] naming `store` and what is wrong.
    pub fn decode(self, store: &str) -> Result<OutboxRow, StoreError> {
        use std::str::FromStr;
        let bad =
            |what: &str| StoreError::Corrupt(format!("{store}: an outbox row has {what}").into());
        let time = |ms: i64| {
            crate::store::rows::timestamp(Some(ms)).ok_or_else(|| bad("a time that is not a time"))
        };
        Ok(OutboxRow {
            seq: self.seq.max(0) as u64,
            event_type: EventType::from_str(&self.event_type)
                .map_err(|_| bad("an unknown event type"))?,
            status: OutboxStatus::from_str(&self.status).map_err(|_| bad("an unknown status"))?,
            at: time(self.at)?,
            next_at: time(self.next_at)?,
            delivered_to: serde_json::from_str(&self.delivered_to)
                .map_err(|_| bad("a list of endpoints that is not a JSON array of names"))?,
            event_id: self.event_id,
            account: self.account,
            key_id: self.key_id.map(crate::store::rows::key_id),
            payload: self.payload,
            attempts: self.attempts.clamp(0, i64::from(u32::MAX)) as u32,
            last_error: self.last_error,
        })
    }
}

/// The JSON a store keeps of a row's `delivered_to`.
pub fn encode_names(names: &[String]) -> String {
    Value::from(names.to_vec()).to_string()
}

/// A pending outbox row for `e`.
pub fn new_row(seq: u64, e: WebhookEvent) -> OutboxRow {
    OutboxRow {
        seq,
        event_id: e.id,
        event_type: e.event_type,
        account: e.account,
        key_id: e.key_id,
        at: e.at,
        payload: e.payload,
        status: OutboxStatus::Pending,
        attempts: 0,
        next_at: e.at,
        delivered_to: Vec::new(),
        last_error: None,
    }
}

impl Outbox for MemoryOutbox {
    fn outbox_enabled(&self) -> Result<bool, StoreError> {
        Ok(true)
    }

    fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut s = self.state();
        let mut out = Vec::new();
        for (row, lock) in s.rows.iter_mut() {
            if out.len() >= limit {
                break;
            }
            let free = lock.as_ref().is_none_or(|(_, until)| *until <= now);
            if row.status == OutboxStatus::Pending && row.next_at <= now && free {
                let token = new_lease();
                *lock = Some((token.clone(), lease_until(now, lease)));
                row.attempts = row.attempts.saturating_add(1);
                out.push(Claimed {
                    row: row.clone(),
                    lease: token,
                });
            }
        }
        Ok(out)
    }

    fn finish(&self, claimed: &Claimed, how: &Finish, _now: Timestamp) -> Result<bool, StoreError> {
        let mut s = self.state();
        let Some((row, lock)) = s.rows.iter_mut().find(|(r, _)| r.seq == claimed.row.seq) else {
            return Ok(false);
        };
        if lock.as_ref().is_none_or(|(t, _)| *t != claimed.lease) {
            return Ok(false);
        }
        *lock = None;
        apply_finish(row, how);
        Ok(true)
    }

    fn enqueue_expiring(&self, _now: Timestamp, _ahead: Duration) -> Result<usize, StoreError> {
        // A bare MemoryOutbox sees no keys: OutboxStore does the scan.
        Ok(0)
    }

    fn outbox_rows(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(self
            .state()
            .rows
            .iter()
            .filter(|(r, _)| status.is_none_or(|s| r.status == s))
            .take(limit)
            .map(|(r, _)| r.clone())
            .collect())
    }

    fn prune_delivered(&self, before: Timestamp) -> Result<usize, StoreError> {
        let mut s = self.state();
        let n = s.rows.len();
        s.rows
            .retain(|(r, _)| !(r.status == OutboxStatus::Delivered && r.at < before));
        Ok(n - s.rows.len())
    }
}

/// What a [`Finish`] does to a row (the same in every store).
pub fn apply_finish(row: &mut OutboxRow, how: &Finish) {
    match how {
        Finish::Delivered { delivered_to } => {
            row.status = OutboxStatus::Delivered;
            row.delivered_to = delivered_to.clone();
            row.last_error = None;
        }
        Finish::Retry {
            delivered_to,
            next_at,
            error,
        } => {
            row.delivered_to = delivered_to.clone();
            row.next_at = *next_at;
            row.last_error = Some(error.clone());
        }
        Finish::Dead {
            delivered_to,
            error,
        } => {
            row.status = OutboxStatus::Dead;
            row.delivered_to = delivered_to.clone();
            row.last_error = Some(error.clone());
        }
    }
}

/// Any [`KeyStore`] with an in-memory outbox ([`MemoryOutbox`], **not
/// durable**): every change made through it that makes events
/// ([`events_for`]) adds them once the store has written the change. Built
/// for [`MemoryStore`](crate::MemoryStore); for the durable stores use their
/// own outbox, written in the change's transaction.
///
/// `key.expiring` ([`Outbox::enqueue_expiring`]) looks at the keys of the
/// accounts this wrapper has seen a key inserted into.
pub struct OutboxStore<S> {
    inner: S,
    outbox: MemoryOutbox,
    accounts: Mutex<HashSet<String>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for OutboxStore<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxStore")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: KeyStore> OutboxStore<S> {
    /// `inner`, with an empty in-memory outbox.
    pub fn new(inner: S) -> OutboxStore<S> {
        OutboxStore {
            inner,
            outbox: MemoryOutbox::new(),
            accounts: Mutex::new(HashSet::new()),
        }
    }

    /// The store wrapped.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The outbox.
    pub fn outbox(&self) -> &MemoryOutbox {
        &self.outbox
    }

    fn note(&self, audit: Option<&AuditEvent>) {
        if let Some(a) = audit {
            self.outbox.push(events_for(a));
        }
    }

    fn seen(&self, account: &str) {
        self.accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account.to_owned());
    }
}

/// Keep the audit record of `e` when it writes one (the last call of a
/// change closure is the one the store acted on).
fn capture(e: &Edit, slot: &mut Option<AuditEvent>) {
    *slot = match e {
        Edit::Write(Some(a)) => Some((**a).clone()),
        _ => None,
    };
}

impl<S: KeyStore> Outbox for OutboxStore<S> {
    fn outbox_enabled(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn claim(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.outbox.claim(now, lease, limit)
    }
    fn finish(&self, claimed: &Claimed, how: &Finish, now: Timestamp) -> Result<bool, StoreError> {
        self.outbox.finish(claimed, how, now)
    }
    fn enqueue_expiring(&self, now: Timestamp, ahead: Duration) -> Result<usize, StoreError> {
        let accounts: Vec<String> = self
            .accounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let mut n = 0;
        for account in accounts {
            for r in self.inner.list(&account, &KeyFilter::default())? {
                if expiring_due(&r, now, ahead) && self.outbox.push_expiring(&r, now) {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
    fn outbox_rows(
        &self,
        status: Option<OutboxStatus>,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.outbox.outbox_rows(status, limit)
    }
    fn prune_delivered(&self, before: Timestamp) -> Result<usize, StoreError> {
        self.outbox.prune_delivered(before)
    }
}

impl<S: KeyStore> KeyStore for OutboxStore<S> {
    // The reads, and what says what the store is: handed on as they are.
    crate::forward_key_store! { self => self.inner;
        find_by_digest, find_cached, find_by_digest_with, find_cached_with, may_block, get, list,
        successor_used, keeps_audit, append_audit, audit_records, prune_audit, record_use,
        record_use_from, account_settings, user, flush_writes,
    }
    // The writes: each notes the events its audit record makes.
    fn insert_audited(
        &self,
        record: KeyRecord,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let account = record.account.to_string();
        self.inner.insert_audited(record, audit)?;
        self.seen(&account);
        self.note(audit);
        Ok(())
    }
    fn update_audited(
        &self,
        id: KeyId,
        change: &mut dyn FnMut(&mut KeyRecord) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut slot = None;
        let out = self.inner.update_audited(id, &mut |r| {
            let e = change(r);
            capture(&e, &mut slot);
            e
        })?;
        self.note(slot.as_ref());
        Ok(out)
    }
    fn delete_audited(
        &self,
        id: KeyId,
        check: &mut dyn FnMut(&KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let mut slot = None;
        let out = self.inner.delete_audited(id, &mut |r, o| {
            let e = check(r, o);
            capture(&e, &mut slot);
            e
        })?;
        self.note(slot.as_ref());
        Ok(out)
    }
    fn rotate(
        &self,
        old: KeyId,
        new: KeyRecord,
        if_unknown: UserState,
        decide: &mut dyn FnMut(&mut KeyRecord, Option<&UserState>) -> Edit,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let account = new.account.to_string();
        let mut slot = None;
        let out = self.inner.rotate(old, new, if_unknown, &mut |r, o| {
            let e = decide(r, o);
            capture(&e, &mut slot);
            e
        })?;
        if slot.is_some() {
            self.seen(&account);
        }
        self.note(slot.as_ref());
        Ok(out)
    }
    fn set_account_settings_audited(
        &self,
        account: &str,
        settings: AccountSettings,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner
            .set_account_settings_audited(account, settings, audit)?;
        self.note(audit);
        Ok(())
    }
    fn set_account_settings_as(
        &self,
        account: &str,
        actor: Option<&str>,
        settings: AccountSettings,
        decide: &mut dyn FnMut(Option<&UserState>, &AccountSettings) -> Edit,
    ) -> Result<bool, StoreError> {
        let mut slot = None;
        let written =
            self.inner
                .set_account_settings_as(account, actor, settings, &mut |a, before| {
                    let e = decide(a, before);
                    capture(&e, &mut slot);
                    e
                })?;
        if written {
            self.note(slot.as_ref());
        }
        Ok(written)
    }
    fn set_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        state: UserState,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<bool, StoreError> {
        let mut slot = None;
        let written = self
            .inner
            .set_user_as(account, actor, user, state, &mut |s| {
                let e = decide(s);
                capture(&e, &mut slot);
                e
            })?;
        if written {
            self.note(slot.as_ref());
        }
        Ok(written)
    }
    fn remove_user_as(
        &self,
        account: &str,
        actor: Option<&str>,
        user: &str,
        disabled: &Disabled,
        decide: &mut dyn FnMut(&Standings) -> Edit,
    ) -> Result<Option<Vec<KeyRecord>>, StoreError> {
        let mut slot = None;
        let out = self
            .inner
            .remove_user_as(account, actor, user, disabled, &mut |s| {
                let e = decide(s);
                capture(&e, &mut slot);
                e
            })?;
        if out.is_some() {
            self.note(slot.as_ref());
        }
        Ok(out)
    }
    fn set_user_audited(
        &self,
        account: &str,
        user: &str,
        state: UserState,
        audit: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        self.inner.set_user_audited(account, user, state, audit)?;
        self.note(audit);
        Ok(())
    }
    fn insert_for_user(
        &self,
        record: KeyRecord,
        user: &str,
        if_unknown: UserState,
        admit: &mut dyn FnMut(&UserState) -> bool,
        audit: Option<&AuditEvent>,
    ) -> Result<UserInsert, StoreError> {
        let account = record.account.to_string();
        let out = self
            .inner
            .insert_for_user(record, user, if_unknown, admit, audit)?;
        if matches!(out, UserInsert::Inserted(_)) {
            self.seen(&account);
            self.note(audit);
        }
        Ok(out)
    }
    fn remove_user(
        &self,
        account: &str,
        user: &str,
        disabled: &Disabled,
        audit: Option<&AuditEvent>,
    ) -> Result<Vec<KeyRecord>, StoreError> {
        let out = self.inner.remove_user(account, user, disabled, audit)?;
        self.note(audit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditAction, CallContext, FieldChange};
    use crate::role::Role;

    fn audit(action: AuditAction, changes: Vec<FieldChange>) -> AuditEvent {
        AuditEvent {
            id: 0,
            at: Timestamp::from_unix_millis(1_700_000_000_000),
            account: "acme".into(),
            actor: "PADMIN1".into(),
            actor_role: Some(Role::Admin),
            action,
            key_kind: Some(KeyKind::General),
            key_id: Some(KeyId::from_u64(42)),
            subject_user: None,
            changes,
            context: CallContext::new().request_id("req-1"),
            outcome: AuditOutcome::Allowed,
        }
    }

    fn types(a: &AuditEvent) -> Vec<EventType> {
        events_for(a).into_iter().map(|e| e.event_type).collect()
    }

    fn flip(field: &str, from: &str, to: &str) -> Vec<FieldChange> {
        vec![FieldChange::new(field, Some(from.into()), Some(to.into()))]
    }

    #[test]
    fn each_changing_action_maps_to_its_event_and_nothing_else_makes_one() {
        use AuditAction as A;
        use EventType as E;
        assert_eq!(types(&audit(A::Create, vec![])), [E::KeyCreated]);
        assert_eq!(
            types(&audit(A::Disable, flip("disabled", "false", "true"))),
            [E::KeyDisabled]
        );
        assert_eq!(
            types(&audit(A::Enable, flip("disabled", "true", "false"))),
            [E::KeyEnabled]
        );
        assert_eq!(
            types(&audit(A::Delete, flip("deleted", "false", "true"))),
            [E::KeyDeleted]
        );
        assert_eq!(types(&audit(A::Rotate, vec![])), [E::KeyRotated]);
        assert_eq!(
            types(&audit(A::EndRotation, flip("overlap_until", "1", "2"))),
            [E::KeyRotationEnded]
        );
        assert_eq!(
            types(&audit(A::RemoveUser, flip("removed", "false", "true"))),
            [E::UserRemoved]
        );
        // No change, no event: disabling a disabled key, enabling an enabled
        // one, ending a rotation that had ended.
        assert!(types(&audit(A::Disable, vec![])).is_empty());
        assert!(types(&audit(A::Enable, vec![])).is_empty());
        assert!(types(&audit(A::EndRotation, vec![])).is_empty());
        for a in [A::Get, A::List, A::SetAccount, A::SetUserRole] {
            assert!(types(&audit(a, flip("role", "a", "b"))).is_empty(), "{a}");
        }
        let mut refused = audit(A::Create, vec![]);
        refused.outcome = AuditOutcome::Refused {
            error: "not_permitted".into(),
            reason: "no".into(),
        };
        assert!(types(&refused).is_empty());
        // A reported leak (its record carries `leaked` → true): key.leaked,
        // then what was done; nothing more when the key was already disabled.
        let mut leak = audit(A::Disable, flip("disabled", "false", "true"));
        leak.changes.extend(flip("leaked", "false", "true"));
        assert_eq!(types(&leak), [E::KeyLeaked, E::KeyDisabled]);
        let mut deleted = audit(A::Delete, flip("deleted", "false", "true"));
        deleted.changes.extend(flip("leaked", "false", "true"));
        assert_eq!(types(&deleted), [E::KeyLeaked, E::KeyDeleted]);
        let remarked = audit(A::Disable, flip("leaked", "false", "true"));
        assert_eq!(types(&remarked), [E::KeyLeaked]);
        // A plain disable is no leak.
        assert_eq!(
            types(&audit(A::Disable, flip("disabled", "false", "true"))),
            [E::KeyDisabled]
        );
        assert_eq!(EventType::ALL.len(), 9);
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>().unwrap(), t);
        }
        assert!("key.nope".parse::<EventType>().is_err());
    }

    #[test]
    fn a_payload_has_type_timestamp_and_data_and_a_fresh_id() {
        let a = audit(AuditAction::Disable, flip("disabled", "false", "true"));
        let e1 = events_for(&a).remove(0);
        let e2 = events_for(&a).remove(0);
        assert_ne!(e1.id, e2.id);
        assert!(e1.id.starts_with("evt_") && e1.id.len() == 36);
        let v: Value = serde_json::from_str(&e1.payload).unwrap();
        assert_eq!(v["type"], "key.disabled");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.000Z");
        let d = &v["data"];
        assert_eq!(d["key_id"], KeyId::from_u64(42).to_string());
        assert_eq!(d["kind"], "general");
        assert_eq!(d["account"], "acme");
        assert_eq!(d["actor"], "PADMIN1");
        assert_eq!(d["actor_role"], "admin");
        assert_eq!(d["request_id"], "req-1");
        assert_eq!(d["changes"][0]["field"], "disabled");
        assert_eq!(v.as_object().unwrap().len(), 3);
    }

    #[test]
    fn a_user_tokens_owner_is_the_subject_or_the_actor_acting_on_their_own() {
        let mut a = audit(AuditAction::Create, vec![]);
        a.key_kind = Some(KeyKind::UserToken);
        a.actor = "PUSER1".into();
        let v: Value = serde_json::from_str(&events_for(&a)[0].payload).unwrap();
        assert_eq!(v["data"]["owner"], "PUSER1");
        a.actor = "PADMIN1".into();
        a.subject_user = Some("PUSER2".into());
        let v: Value = serde_json::from_str(&events_for(&a)[0].payload).unwrap();
        assert_eq!(v["data"]["owner"], "PUSER2");
        a.key_kind = Some(KeyKind::General);
        a.subject_user = None;
        let v: Value = serde_json::from_str(&events_for(&a)[0].payload).unwrap();
        assert!(v["data"]["owner"].is_null());
    }

    #[test]
    fn expiring_is_due_only_inside_the_window_for_an_enabled_key() {
        let now = Timestamp::from_unix_millis(1_700_000_000_000);
        let day = Duration::from_secs(86_400);
        let mut r = crate::store::record_for_tests(
            KeyId::from_u64(1),
            "acme",
            KeyKind::General,
            crate::digest::KeyHasher::sha256().digest(b"k"),
        );
        assert!(!expiring_due(&r, now, 7 * day), "no expiry");
        r.expires_at = Some(now.saturating_add(3 * day));
        assert!(expiring_due(&r, now, 7 * day));
        assert!(!expiring_due(&r, now, 2 * day), "not yet");
        r.expires_at = Some(now);
        assert!(!expiring_due(&r, now, 7 * day), "already expired");
        r.expires_at = Some(now.saturating_add(day));
        r.disabled = Some(Box::new(Disabled {
            by: "PADMIN1".into(),
            at: now,
        }));
        assert!(!expiring_due(&r, now, 7 * day), "disabled");
        let e = expiring_event(&r, now);
        assert_eq!(e.event_type, EventType::KeyExpiring);
        assert!(!e.payload.contains(&r.digest.to_hex()));
    }
}
