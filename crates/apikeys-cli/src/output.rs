//! What the commands print: tables for people, JSON for scripts. Nothing
//! here ever receives a key, except `key_once`, which prints a new key.

use std::io::{self, Write};

use apikeys::{AuditEvent, AuditOutcome, KeyKind, KeyRecord, Rotation, Timestamp};
use serde_json::{Value, json};

use crate::Failure;
use crate::time::{rfc3339, short};

/// Write to standard output. A closed pipe (`apikeys list | head -1`) ends
/// the command quietly, with status 2 (its output was not all written).
pub(crate) fn out(text: &str) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Failure::quiet(2)),
        Err(e) => Err(Failure::error(format!("cannot write the output: {e}"))),
    }
}

/// Print a JSON value on one line of standard output.
pub(crate) fn json_out(v: &Value) -> Result<(), Failure> {
    out(&format!("{v}\n"))
}

/// A note for people, on standard error (never for scripts to parse).
pub(crate) fn note(text: &str) {
    // A closed standard error leaves nothing else to tell anyone.
    let _ = writeln!(io::stderr(), "apikeys: {}", crate::redact(text));
}

/// Columns aligned with two spaces between them; the last one is not padded.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == widths.len() {
                l.push_str(cell);
            } else {
                l.push_str(cell);
                l.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 2));
            }
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    s
}

/// At most `max` characters, with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn or_dash(v: Option<String>) -> String {
    v.unwrap_or_else(|| "-".to_owned())
}

/// Whether the key works as far as its own record goes, and if not why:
/// `active`, `disabled`, `expired`, `rotated` (its overlap ended).
pub(crate) fn status(r: &KeyRecord, now: Timestamp) -> &'static str {
    if r.disabled.is_some() {
        "disabled"
    } else if r.is_expired(now) {
        "expired"
    } else if r
        .rotation
        .as_ref()
        .is_some_and(|rot| !rot.works_at(now, r.last_used_at))
    {
        "rotated"
    } else {
        "active"
    }
}

fn rotation_text(rot: &Rotation, r: &KeyRecord, now: Timestamp, long: bool) -> String {
    let mut parts = Vec::new();
    if let Some(to) = rot.rotated_to {
        let until = rot.overlap_until.map(short).unwrap_or_default();
        if rot.works_at(now, r.last_used_at) {
            parts.push(format!("rotated to {to}, overlap until {until}"));
        } else {
            parts.push(format!("rotated to {to}, overlap ended"));
        }
        if long {
            if let Some(used) = rot.successor_used_at {
                parts.push(format!("new key first used {}", short(used)));
            }
        }
    }
    if let Some(from) = rot.rotated_from {
        parts.push(format!("replaces {from}"));
    }
    parts.join("; ")
}

/// `list`'s table: PagerDuty's columns, then last use, expiry and rotation.
pub(crate) fn key_table(records: &[KeyRecord], now: Timestamp) -> String {
    let headers = [
        "ID",
        "DESCRIPTION",
        "KIND",
        "ACCESS",
        "API",
        "CREATED",
        "CREATED BY",
        "DISABLED",
        "LAST USED",
        "EXPIRES",
        "ROTATION",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.to_string(),
                cut(&r.description, 32),
                r.kind.to_string(),
                access_text(r),
                r.api_version.as_str().to_owned(),
                short(r.created_at),
                r.created_by.to_string(),
                or_dash(
                    r.disabled
                        .as_ref()
                        .map(|d| format!("{} by {}", short(d.at), d.by)),
                ),
                or_dash(r.last_used_at.map(short)),
                or_dash(r.expires_at.map(|e| {
                    let mut s = short(e);
                    if r.is_expired(now) {
                        s.push_str(" (expired)");
                    }
                    s
                })),
                or_dash(
                    r.rotation
                        .as_ref()
                        .map(|rot| rotation_text(rot, r, now, false))
                        .filter(|s| !s.is_empty()),
                ),
            ]
        })
        .collect();
    table(&headers, &rows)
}

fn access_text(r: &KeyRecord) -> String {
    match r.kind {
        KeyKind::General => r.access.as_str().to_owned(),
        KeyKind::Scoped => r
            .scopes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        _ => "-".to_owned(),
    }
}

/// `show`'s view of one key: a field a line.
pub(crate) fn key_details(r: &KeyRecord, now: Timestamp) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("id", r.id.to_string()),
        ("description", r.description.to_string()),
        (
            "kind",
            format!(
                "{} ({} API)",
                r.kind,
                match r.kind.api() {
                    apikeys::Api::Rest => "REST",
                    apikeys::Api::Events => "Events",
                }
            ),
        ),
        ("status", status(r, now).to_owned()),
        ("account", r.account.to_string()),
    ];
    if r.kind == KeyKind::General {
        rows.push(("access", r.access.as_str().to_owned()));
    }
    if let Some(o) = &r.owner {
        rows.push(("owner", o.to_string()));
    }
    match r.kind {
        KeyKind::Integration => {
            rows.push(("service", or_dash(r.target.as_deref().map(Into::into))))
        }
        KeyKind::Routing => rows.push((
            "orchestration",
            or_dash(r.target.as_deref().map(Into::into)),
        )),
        KeyKind::Scoped => rows.push(("scopes", access_text(r))),
        _ => {}
    }
    rows.push(("api version", r.api_version.as_str().to_owned()));
    rows.push((
        "created",
        format!("{} by {}", rfc3339(r.created_at), r.created_by),
    ));
    rows.push((
        "disabled",
        r.disabled.as_ref().map_or_else(
            || "no".to_owned(),
            |d| format!("{} by {}", rfc3339(d.at), d.by),
        ),
    ));
    let mut used = or_dash(r.last_used_at.map(rfc3339));
    if let Some(place) = &r.last_used_from {
        let from: Vec<&str> = [&place.remote_address, &place.method, &place.path]
            .into_iter()
            .filter_map(|p| p.as_deref())
            .collect();
        if !from.is_empty() {
            used.push_str(&format!(" from {}", from.join(" ")));
        }
    }
    rows.push(("last used", used));
    rows.push((
        "expires",
        r.expires_at.map_or_else(|| "never".to_owned(), rfc3339),
    ));
    if let Some(rot) = &r.rotation {
        rows.push(("rotation", rotation_text(rot, r, now, true)));
    }
    rows.push(("ends with", format!("…{}", r.hint)));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:width$}  {v}\n"))
        .collect()
}

fn ts(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// A key's record for scripts (never the key; not its digest either).
pub(crate) fn key_json(r: &KeyRecord, now: Timestamp) -> Value {
    json!({
        "id": r.id.to_string(),
        "description": r.description,
        "kind": r.kind.as_str(),
        "api": r.kind.api().as_str(),
        "status": status(r, now),
        "account": r.account,
        "access": r.access.as_str(),
        "owner": r.owner.as_deref(),
        "service_id": (r.kind == KeyKind::Integration).then_some(r.target.as_deref()).flatten(),
        "orchestration_id": (r.kind == KeyKind::Routing).then_some(r.target.as_deref()).flatten(),
        "scopes": r.scopes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "api_version": r.api_version.as_str(),
        "created_at": rfc3339(r.created_at),
        "created_by": r.created_by,
        "disabled_at": ts(r.disabled.as_ref().map(|d| d.at)),
        "disabled_by": r.disabled.as_ref().map(|d| d.by.to_string()),
        "last_used_at": ts(r.last_used_at),
        "last_used_from": r.last_used_from.as_deref().map(|p| json!({
            "remote_address": p.remote_address,
            "method": p.method,
            "path": p.path,
        })),
        "expires_at": ts(r.expires_at),
        "rotation": r.rotation.as_deref().map(|rot| json!({
            "rotated_from": rot.rotated_from.map(|k| k.to_string()),
            "rotated_to": rot.rotated_to.map(|k| k.to_string()),
            "rotated_at": ts(rot.rotated_at),
            "overlap_until": ts(rot.overlap_until),
            "successor_used_at": ts(rot.successor_used_at),
            "overlapping": rot.overlapping(now, r.last_used_at),
        })),
        "hint": r.hint.as_str(),
    })
}

/// The audit page as a table, newest first.
pub(crate) fn audit_table(records: &[AuditEvent]) -> String {
    let headers = [
        "#", "TIME", "ACTOR", "ROLE", "ACTION", "KIND", "KEY", "USER", "OUTCOME", "CHANGES",
    ];
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|e| {
            let changes = e
                .changes
                .iter()
                .map(|c| {
                    format!(
                        "{}: {} → {}",
                        c.field,
                        c.before_value.as_deref().unwrap_or("-"),
                        c.value.as_deref().unwrap_or("-")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let outcome = match &e.outcome {
                AuditOutcome::Allowed => "allowed".to_owned(),
                AuditOutcome::Refused { error, .. } => format!("refused ({error})"),
            };
            vec![
                e.id.to_string(),
                rfc3339(e.at),
                e.actor.clone(),
                or_dash(e.actor_role.map(|r| r.as_str().to_owned())),
                e.action.as_str().to_owned(),
                or_dash(e.key_kind.map(|k| k.as_str().to_owned())),
                or_dash(e.key_id.map(|k| k.to_string())),
                or_dash(e.subject_user.clone()),
                outcome,
                if changes.is_empty() {
                    "-".to_owned()
                } else {
                    changes
                },
            ]
        })
        .collect();
    table(&headers, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_do_not_pad_the_last_column() {
        let t = table(
            &["A", "BB", "C"],
            &[
                vec!["xxx".into(), "y".into(), "z".into()],
                vec!["é".into(), "".into(), "last".into()],
            ],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z\né        last\n");
    }

    #[test]
    fn cut_counts_characters() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("éé", 2), "éé");
    }
}
