//! The audit trail: one [`AuditEvent`] per management call, allowed or refused.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::key::KeyKind;
use crate::record::{KeyId, Timestamp};
use crate::role::Role;

/// What was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A key was asked for.
    Create,
    /// The keys were listed.
    List,
    /// One key's record was read.
    Get,
    /// A key was disabled.
    Disable,
    /// A key was enabled.
    Enable,
    /// A key was deleted.
    Delete,
    /// An account's settings were set.
    SetAccount,
    /// A user's role was set.
    SetUserRole,
    /// A user was removed (their tokens disabled).
    RemoveUser,
    /// A key was rotated: a new key made, the old one on an overlap.
    Rotate,
    /// A rotation's overlap was ended by hand.
    EndRotation,
}

crate::names::from_name!(AuditAction, "action");

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: [AuditAction; 11] = [
        AuditAction::Create,
        AuditAction::List,
        AuditAction::Get,
        AuditAction::Disable,
        AuditAction::Enable,
        AuditAction::Delete,
        AuditAction::SetAccount,
        AuditAction::SetUserRole,
        AuditAction::RemoveUser,
        AuditAction::Rotate,
        AuditAction::EndRotation,
    ];

    /// The snake_case name, as serialized (`"create"`, `"set_user_role"` …).
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditAction::Create => "create",
            AuditAction::List => "list",
            AuditAction::Get => "get",
            AuditAction::Disable => "disable",
            AuditAction::Enable => "enable",
            AuditAction::Delete => "delete",
            AuditAction::SetAccount => "set_account",
            AuditAction::SetUserRole => "set_user_role",
            AuditAction::RemoveUser => "remove_user",
            AuditAction::Rotate => "rotate",
            AuditAction::EndRotation => "end_rotation",
        }
    }

    /// Whether the action changes something (reads — get, list — do not).
    pub const fn changes_state(self) -> bool {
        !matches!(self, AuditAction::Get | AuditAction::List)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AuditOutcome {
    /// Done.
    Allowed,
    /// Refused or failed: the error's name (`"not_permitted"` …) and message.
    Refused {
        /// The error's snake_case name.
        error: String,
        /// The error's message (never contains a key).
        reason: String,
    },
}

impl AuditOutcome {
    /// `"allowed"` or `"refused"`, as serialized in `outcome`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            AuditOutcome::Allowed => "allowed",
            AuditOutcome::Refused { .. } => "refused",
        }
    }
}

/// One field a management call changed: its name, the value it had and the
/// value it has now, as text (`"disabled"`: `"true"`/`"false"`; `"role"`:
/// the role's name; `"rotated_to"`: a key id …). Never a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// The field's name.
    pub field: String,
    /// The value it has now (`None`: no value).
    pub value: Option<String>,
    /// The value it had (`None`: no value).
    pub before_value: Option<String>,
}

impl FieldChange {
    /// A change of `field` from `before` to `value`.
    pub fn new(field: &str, before: Option<String>, value: Option<String>) -> FieldChange {
        FieldChange {
            field: field.to_owned(),
            value,
            before_value: before,
        }
    }
}

/// The longest request id or remote address a [`CallContext`] keeps, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 128;

/// How a management call reached the application, as the application tells
/// it (all optional): kept in the call's audit record. Never holds a key:
/// of the caller's own key only its last four characters are kept, and
/// anything shaped like a key is replaced by `"(redacted)"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CallContext {
    /// The request's id (a tracing id, `X-Request-Id` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The caller's network address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_address: Option<String>,
    /// The last four characters of the key the caller authenticated with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated_token: Option<String>,
    /// For a change made because a key was reported leaked
    /// ([`Keyring::report_leaked`](crate::Keyring::report_leaked)): where
    /// the report says the key was seen (a URL; key-shaped parts redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    /// For a change made because a key was reported leaked: the kind of
    /// place the report says it was seen in (GitHub's `source`: `content`,
    /// `commit`, `issue_comment`, `npm` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_source: Option<String>,
}

impl CallContext {
    /// An empty context.
    pub fn new() -> CallContext {
        CallContext::default()
    }

    /// With the request's id (cut to [`MAX_CONTEXT_BYTES`]; control
    /// characters and key-shaped values are not kept).
    pub fn request_id(mut self, id: &str) -> CallContext {
        self.request_id = clean_context(id);
        self
    }

    /// With the caller's address (cut and cleaned like the request id).
    pub fn remote_address(mut self, addr: &str) -> CallContext {
        self.remote_address = clean_context(addr);
        self
    }

    /// With the key the caller authenticated with: only its last four
    /// characters are kept (the whole key is never stored).
    pub fn caller_key(mut self, key: &str) -> CallContext {
        let chars: Vec<char> = key.chars().collect();
        let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        self.truncated_token = (!tail.is_empty()
            && tail
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .then_some(tail);
        self
    }

    /// With where a leak report says a key was seen (cut to
    /// [`MAX_REPORT_URL_BYTES`]; a value with control characters is not
    /// kept, and each key-shaped part of it is replaced by `(redacted)`).
    pub fn report_url(mut self, url: &str) -> CallContext {
        self.report_url = clean_report(url, MAX_REPORT_URL_BYTES);
        self
    }

    /// With the kind of place a leak report says a key was seen in (cut to
    /// [`MAX_CONTEXT_BYTES`], cleaned like [`CallContext::report_url`]).
    pub fn report_source(mut self, source: &str) -> CallContext {
        self.report_source = clean_report(source, MAX_CONTEXT_BYTES);
        self
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.request_id.is_none()
            && self.remote_address.is_none()
            && self.truncated_token.is_none()
            && self.report_url.is_none()
            && self.report_source.is_none()
    }
}

/// The longest report URL a [`CallContext`] keeps, in bytes.
pub const MAX_REPORT_URL_BYTES: usize = 2048;

/// A value of a leak report as the trail keeps it: trimmed, without control
/// characters (else not kept), every key-shaped part replaced by
/// `(redacted)` — a word that is a key, a candidate of
/// [`find_candidates`](crate::find_candidates) (a `u+`/`s+` token anywhere),
/// and a token whose `+` is written `%2B` —, then cut to `max` bytes on a
/// character boundary.
fn clean_report(s: &str, max: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    // Redact, cut, and redact again: a cut through a long word can leave a
    // key-shaped word (a `(redacted)` is shorter than any key, so the second
    // pass never makes the value longer).
    let mut out = redact_keys(s);
    let mut end = out.len().min(max);
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    Some(redact_keys(&out))
}

/// `s` with every key-shaped part replaced by `(redacted)`.
fn redact_keys(s: &str) -> String {
    let bytes = s.as_bytes();
    let key_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    let mut hide: Vec<std::ops::Range<usize>> = Vec::new();
    // Whole words that are keys (general, integration, routing keys).
    let mut i = 0;
    while i < bytes.len() {
        if !key_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && key_byte(bytes[i]) {
            i += 1;
        }
        if KeyKind::parse(&s[start..i]).is_ok() {
            hide.push(start..i);
        }
    }
    // Tokens with their prefix (`u+…`, `s+…`), wherever they stand.
    hide.extend(crate::leaks::find_candidates(s).iter().map(|c| c.range()));
    // The same with the `+` percent-encoded (`u%2B…`).
    let body = crate::key::REST_KEY_LEN - 2;
    for (at, _) in s.match_indices("%2B").chain(s.match_indices("%2b")) {
        let Some(p) = at.checked_sub(1) else {
            continue;
        };
        let body_end = at + 3 + body;
        let starts_word = matches!(bytes[p], b'u' | b's') && (p == 0 || !key_byte(bytes[p - 1]));
        let ends_word = body_end <= bytes.len()
            && (body_end == bytes.len() || !key_byte(bytes[body_end]))
            && bytes[at + 3..body_end].iter().all(|&b| key_byte(b));
        if starts_word && ends_word {
            let token = format!("{}+{}", &s[p..at], &s[at + 3..body_end]);
            if KeyKind::parse(&token).is_ok() {
                hide.push(p..body_end);
            }
        }
    }
    hide.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(s.len());
    let mut from = 0;
    for r in hide {
        if r.start >= from {
            out.push_str(&s[from..r.start]);
            out.push_str("(redacted)");
            from = r.end;
        } else if r.end > from {
            from = r.end;
        }
    }
    out.push_str(&s[from..]);
    out
}

fn clean_context(s: &str) -> Option<String> {
    let s = s.trim();
    if s.is_empty() || s.chars().any(char::is_control) {
        return None;
    }
    if crate::key::KeyKind::parse(s).is_ok() {
        return Some("(redacted)".to_owned());
    }
    let mut end = s.len().min(MAX_CONTEXT_BYTES);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(s[..end].to_owned())
}

/// One management call. Never holds a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The record's number in its trail: increasing in the order records
    /// were written (0 until a trail keeps it).
    #[serde(default)]
    pub id: u64,
    /// When.
    pub at: Timestamp,
    /// The account acted in.
    pub account: String,
    /// The acting user (`"system"` for calls the application makes itself:
    /// account settings, role changes, removals).
    pub actor: String,
    /// The actor's role, when there is an actor.
    pub actor_role: Option<Role>,
    /// What was asked for.
    pub action: AuditAction,
    /// The kind of key, where one is concerned.
    pub key_kind: Option<KeyKind>,
    /// The key, where one is concerned and known.
    pub key_id: Option<KeyId>,
    /// The user acted upon (role changes, removals, another user's token).
    pub subject_user: Option<String>,
    /// What changed (empty for reads and refusals).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// How the call reached the application, as it said.
    #[serde(default, skip_serializing_if = "CallContext::is_empty")]
    pub context: CallContext,
    /// Allowed, or refused and why.
    #[serde(flatten)]
    pub outcome: AuditOutcome,
}

impl AuditEvent {
    /// The record in the shape of PagerDuty's `GET /audit/records`:
    /// `id`, `execution_time` (RFC 3339, UTC), `execution_context`, `actors`,
    /// `method` (with `truncated_token`), `root_resource`, `action` and
    /// `details.fields` (each with `name`, `value`, `before_value`), plus
    /// `outcome` (and `error`, `reason` when refused).
    pub fn to_pagerduty(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        let mut rec = Map::new();
        rec.insert("id".into(), Value::String(format!("R{:013}", self.id)));
        rec.insert(
            "execution_time".into(),
            Value::String(rfc3339(self.at.unix_millis())),
        );
        let mut ctx = Map::new();
        if let Some(r) = &self.context.request_id {
            ctx.insert("request_id".into(), Value::String(r.clone()));
        }
        if let Some(a) = &self.context.remote_address {
            ctx.insert("remote_address".into(), Value::String(a.clone()));
        }
        if let Some(u) = &self.context.report_url {
            ctx.insert("report_url".into(), Value::String(u.clone()));
        }
        if let Some(s) = &self.context.report_source {
            ctx.insert("report_source".into(), Value::String(s.clone()));
        }
        rec.insert("execution_context".into(), Value::Object(ctx));
        let actor_type = if self.actor_role.is_some() {
            "user_reference"
        } else {
            "app_reference"
        };
        rec.insert(
            "actors".into(),
            json!([{ "id": self.actor, "type": actor_type, "summary": self.actor }]),
        );
        let mut method = Map::new();
        method.insert(
            "type".into(),
            Value::String(
                if self.context.truncated_token.is_some() {
                    "api_token"
                } else if self.actor_role.is_none() {
                    "internal"
                } else {
                    "other"
                }
                .into(),
            ),
        );
        if let Some(t) = &self.context.truncated_token {
            method.insert("truncated_token".into(), Value::String(t.clone()));
        }
        rec.insert("method".into(), Value::Object(method));
        let root = match (self.key_id, &self.subject_user) {
            (Some(id), _) => json!({
                "id": id.to_string(),
                "type": "api_key_reference",
                "summary": self.key_kind.map_or("key", KeyKind::as_str),
            }),
            (None, Some(u)) => json!({ "id": u, "type": "user_reference", "summary": u }),
            (None, None) => {
                json!({ "id": self.account, "type": "account_reference", "summary": self.account })
            }
        };
        rec.insert("root_resource".into(), root);
        rec.insert("action".into(), Value::String(self.action.as_str().into()));
        let fields: Vec<Value> = self
            .changes
            .iter()
            .map(|c| json!({ "name": c.field, "value": c.value, "before_value": c.before_value }))
            .collect();
        rec.insert("details".into(), json!({ "fields": fields }));
        rec.insert(
            "outcome".into(),
            Value::String(self.outcome.as_str().into()),
        );
        if let AuditOutcome::Refused { error, reason } = &self.outcome {
            rec.insert("error".into(), Value::String(error.clone()));
            rec.insert("reason".into(), Value::String(reason.clone()));
        }
        Value::Object(rec)
    }
}

/// `ms` since the epoch as RFC 3339 in UTC with milliseconds (`2026-12-02T01:02:03.456Z`).
pub(crate) fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// The longest window an audit query may span.
pub const MAX_AUDIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(31 * 86_400);
/// The window an audit query spans when it gives no `since`.
pub const DEFAULT_AUDIT_WINDOW: std::time::Duration = std::time::Duration::from_secs(86_400);
/// The most records one page holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// Which audit records to read: always one account; optionally one key,
/// one actor, some actions; a time window; a page size and where to go on.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuditQuery {
    /// The account (required).
    pub account: String,
    /// Only records about this key.
    pub key_id: Option<KeyId>,
    /// Only records of this actor.
    pub actor: Option<String>,
    /// Only these actions (empty: all).
    pub actions: Vec<AuditAction>,
    /// From this moment on, inclusive (default: 24 hours before `until`).
    pub since: Option<Timestamp>,
    /// Before this moment, exclusive (default: just after now). At most 31 days after `since`.
    pub until: Option<Timestamp>,
    /// Records per page, 1 to [`MAX_AUDIT_PAGE`] (0: 100).
    pub limit: usize,
    /// Where to go on: the `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// An [`AuditQuery`] checked and with its defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditWindow {
    /// The account.
    pub account: String,
    /// Only records about this key.
    pub key_id: Option<KeyId>,
    /// Only records of this actor.
    pub actor: Option<String>,
    /// Only these actions (empty: all).
    pub actions: Vec<AuditAction>,
    /// From (inclusive).
    pub since: Timestamp,
    /// Until (exclusive).
    pub until: Timestamp,
    /// Records per page.
    pub limit: usize,
    /// Only records with an id below this (the cursor), newest first.
    pub before_id: Option<u64>,
}

impl AuditQuery {
    /// A query of `account`'s records of the last 24 hours.
    pub fn account(account: &str) -> AuditQuery {
        AuditQuery {
            account: account.to_owned(),
            ..AuditQuery::default()
        }
    }

    /// Check the query and fill in its defaults at `now`. `InvalidInput`
    /// names what is wrong: an empty account, `until` before `since`, a
    /// window over 31 days, a limit over [`MAX_AUDIT_PAGE`], a cursor this
    /// library did not make.
    pub fn resolve(&self, now: Timestamp) -> crate::Result<AuditWindow> {
        use crate::Error;
        // The same rule as every id a management call takes.
        crate::keyring::validate_id("account", &self.account)?;
        if let Some(actor) = &self.actor {
            crate::keyring::validate_id("actor", actor)?;
        }
        // Until now, this millisecond included.
        let until = self
            .until
            .unwrap_or_else(|| now.saturating_add(std::time::Duration::from_millis(1)));
        let since = match self.since {
            Some(s) => s,
            None => Timestamp::from_unix_millis(
                until
                    .unix_millis()
                    .saturating_sub(DEFAULT_AUDIT_WINDOW.as_millis() as u64),
            ),
        };
        if until < since {
            return Err(Error::invalid(
                "until",
                "must not be before 'since'".to_owned(),
            ));
        }
        if until.saturating_since(since) > MAX_AUDIT_WINDOW {
            return Err(Error::invalid(
                "until",
                "must be at most 31 days after 'since'".to_owned(),
            ));
        }
        if self.limit > MAX_AUDIT_PAGE {
            return Err(Error::invalid(
                "limit",
                format!("must be at most {MAX_AUDIT_PAGE}"),
            ));
        }
        let before_id = match &self.cursor {
            None => None,
            Some(c) => Some(parse_cursor(c).ok_or_else(|| {
                Error::invalid(
                    "cursor",
                    "is not a cursor of this trail (pass a page's next_cursor as it is)".to_owned(),
                )
            })?),
        };
        Ok(AuditWindow {
            account: self.account.clone(),
            key_id: self.key_id,
            actor: self.actor.clone(),
            actions: self.actions.clone(),
            since,
            until,
            limit: if self.limit == 0 { 100 } else { self.limit },
            before_id,
        })
    }
}

impl AuditWindow {
    /// Whether `e` is in the window and passes the filters (the cursor aside).
    pub fn matches(&self, e: &AuditEvent) -> bool {
        e.account == self.account
            && e.at >= self.since
            && e.at < self.until
            && self.key_id.is_none_or(|k| e.key_id == Some(k))
            && self.actor.as_deref().is_none_or(|a| e.actor == a)
            && (self.actions.is_empty() || self.actions.contains(&e.action))
            && self.before_id.is_none_or(|b| e.id < b)
    }

    /// The page made of `newest_first` (records that match, newest first,
    /// at most `limit + 1` of them): the first `limit`, and a cursor when
    /// there were more.
    pub fn page(&self, mut newest_first: Vec<AuditEvent>) -> AuditPage {
        let more = newest_first.len() > self.limit;
        newest_first.truncate(self.limit);
        let next_cursor = if more {
            newest_first.last().map(|e| cursor_of(e.id))
        } else {
            None
        };
        AuditPage {
            records: newest_first,
            next_cursor,
        }
    }
}

fn cursor_of(id: u64) -> String {
    format!("c{id:x}")
}

fn parse_cursor(c: &str) -> Option<u64> {
    let hex = c.strip_prefix('c')?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// One page of audit records, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditPage {
    /// The records.
    pub records: Vec<AuditEvent>,
    /// Pass this as [`AuditQuery::cursor`] for the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Where audit events go.
pub trait AuditSink: Send + Sync {
    /// Take one event. Must not block for long: it runs inside management calls.
    fn record(&self, event: AuditEvent);

    /// The events this sink still holds, oldest first (empty for sinks that
    /// forward events elsewhere).
    fn events(&self) -> Vec<AuditEvent> {
        Vec::new()
    }

    /// A page of the events this sink holds (the default reads
    /// [`AuditSink::events`]).
    fn query(&self, window: &AuditWindow) -> AuditPage {
        let mut found: Vec<AuditEvent> = self
            .events()
            .into_iter()
            .rev()
            .filter(|e| window.matches(e))
            .take(window.limit + 1)
            .collect();
        found.truncate(window.limit + 1);
        window.page(found)
    }

    /// Forget the events before `before`; say how many (the default keeps everything).
    fn prune(&self, before: Timestamp) -> usize {
        let _ = before;
        0
    }
}

/// An in-memory sink keeping the most recent events (10,000 by default): the default sink.
#[derive(Debug)]
pub struct MemoryAuditLog {
    events: Mutex<(VecDeque<AuditEvent>, u64)>,
    capacity: usize,
}

impl MemoryAuditLog {
    /// A log keeping the last `capacity` events.
    pub fn with_capacity(capacity: usize) -> MemoryAuditLog {
        MemoryAuditLog {
            events: Mutex::new((VecDeque::new(), 0)),
            capacity: capacity.max(1),
        }
    }
}

impl Default for MemoryAuditLog {
    fn default() -> Self {
        MemoryAuditLog::with_capacity(10_000)
    }
}

impl AuditSink for MemoryAuditLog {
    fn record(&self, mut event: AuditEvent) {
        let mut g = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let (q, next) = &mut *g;
        *next += 1;
        event.id = *next;
        if q.len() == self.capacity {
            q.pop_front();
        }
        q.push_back(event);
    }

    fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .iter()
            .cloned()
            .collect()
    }

    fn query(&self, window: &AuditWindow) -> AuditPage {
        let g = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let found: Vec<AuditEvent> =
            g.0.iter()
                .rev()
                .filter(|e| window.matches(e))
                .take(window.limit + 1)
                .cloned()
                .collect();
        drop(g);
        window.page(found)
    }

    fn prune(&self, before: Timestamp) -> usize {
        let mut g = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        let n = g.0.len();
        g.0.retain(|e| e.at >= before);
        n - g.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_match_their_serialized_form() {
        use AuditAction::*;
        for a in [
            Create,
            List,
            Get,
            Disable,
            Enable,
            Delete,
            SetAccount,
            SetUserRole,
            RemoveUser,
        ] {
            let json = serde_json::to_string(&a).unwrap();
            assert_eq!(json, format!("\"{}\"", a.as_str()));
        }
    }

    const GENERAL: &str = "y_NbAkKc66ryYTWUXYEu";
    const USER: &str = "u+aB3dE6gH9jK2mN5pQ8";
    const SCOPED: &str = "s+Zy-Xw_Vu1Ts2Rq3Po4";
    const INTEGRATION: &str = "0123456789abcdef0123456789abcdef";
    const ROUTING: &str = "R0AB12CD34EF56GH78IJ90KL12MN34OP";

    #[test]
    fn report_values_keep_everything_but_keys() {
        let url = "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/foo/bar.txt#L3";
        assert_eq!(
            clean_report(url, MAX_REPORT_URL_BYTES).as_deref(),
            Some(url)
        );
        for (given, kept) in [
            (
                format!("https://x/{GENERAL}/y"),
                "https://x/(redacted)/y".to_owned(),
            ),
            (format!("a?t={USER}&b=1"), "a?t=(redacted)&b=1".to_owned()),
            (
                format!("a?t=u%2B{}", &USER[2..]),
                "a?t=(redacted)".to_owned(),
            ),
            (
                format!("a?t=s%2b{}", &SCOPED[2..]),
                "a?t=(redacted)".to_owned(),
            ),
            (INTEGRATION.to_owned(), "(redacted)".to_owned()),
            (format!("x {ROUTING}"), "x (redacted)".to_owned()),
            (format!("é{USER}é"), "é(redacted)é".to_owned()),
            (
                format!("+{USER}+{GENERAL}"),
                "+(redacted)+(redacted)".to_owned(),
            ),
            // Not keys: a word longer than a key, a prefix inside a word.
            (format!("{GENERAL}x"), format!("{GENERAL}x")),
            (format!("x{USER}"), format!("x{USER}")),
            // What follows a `%` is a word of its own: here, general-key shaped.
            (format!("xu%2B{}", &USER[2..]), "xu%(redacted)".to_owned()),
            // A cut that leaves a key-shaped word: redacted too.
            (format!("{GENERAL}{GENERAL}"), format!("{GENERAL}{GENERAL}")),
        ] {
            assert_eq!(
                clean_report(&given, 4096).as_deref(),
                Some(kept.as_str()),
                "{given}"
            );
        }
        assert_eq!(
            clean_report(&format!("a/{GENERAL}{GENERAL}"), 22).as_deref(),
            Some("a/(redacted)")
        );
        assert_eq!(clean_report("  ", 10), None);
        assert_eq!(clean_report("a\u{7}b", 10), None);
        assert_eq!(
            clean_report("éééé", 3).as_deref(),
            Some("é"),
            "cut on a boundary"
        );
    }

    proptest::proptest! {
        /// Whatever surrounds a key in a report's value, the value kept
        /// holds no key, and cleaning never panics.
        #[test]
        fn no_key_survives_a_report_value(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(GENERAL.to_owned()),
                    proptest::strategy::Just(USER.to_owned()),
                    proptest::strategy::Just(USER.replacen('+', "%2B", 1)),
                    proptest::strategy::Just(SCOPED.to_owned()),
                    proptest::strategy::Just(INTEGRATION.to_owned()),
                    proptest::strategy::Just(ROUTING.to_owned()),
                    "[ /?=&#%+:.é-]{0,3}",
                    "[a-z0-9_]{0,4}",
                ],
                0..12,
            ),
            max in 1usize..300,
        ) {
            let given = parts.concat();
            if let Some(kept) = clean_report(&given, max) {
                proptest::prop_assert!(kept.len() <= max);
                for key in [GENERAL, USER, SCOPED, INTEGRATION, ROUTING] {
                    // A key kept whole would be a word of its own in `given`
                    // too; one glued to other word bytes was never a key there.
                    let standalone = crate::leaks::find_candidates(&kept)
                        .iter()
                        .any(|c| c.expose() == key)
                        || kept
                            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                            .any(|w| w == key);
                    proptest::prop_assert!(!standalone, "{key} kept in {kept:?} from {given:?}");
                }
            }
        }
    }
}
