//! The management API and the API Access Keys page, written once
//! (docs/management.md): every endpoint is one call to [`Management::handle`],
//! which takes a whole request and gives a whole response, with no web
//! framework. The axum mount is [`Management::router`] (feature `router`);
//! the Python (ASGI) and Node (Express) mounts call `handle` through their
//! bindings.
//!
//! The host application says who is logged in (an [`apikeys::Actor`]); the
//! keyring decides every call by its permission matrix (docs/design.md §2):
//! nothing here re-checks a rule. Refusals are PagerDuty's error body with
//! the status of docs/design.md §5.

mod error;
mod guard;
mod input;
mod page;
#[cfg(feature = "router")]
mod router;
mod time;
mod view;

use std::sync::Arc;
use std::time::Duration;

use apikeys::{
    AccessLevel, Action, Actor, AuditAction, AuditEvent, AuditQuery, KeyId, KeyKind, KeyRecord,
    Keyring, NewKey, Timestamp,
};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use self::error::Failure;
use self::input::{Fields, Query};

/// The largest request body the management API reads (64 KiB): a larger
/// one is refused with 413 before it is parsed. Hosts that read the body
/// themselves should stop reading past [`Management::max_body_bytes`].
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A rotation's overlap when the call gives none: one day.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(86_400);

/// The management API and page over one keyring (docs/management.md).
///
/// Cheap to clone (the keyring is shared). Build it once, mount it where the
/// host likes, and hand each request to [`Management::handle`] with the
/// logged-in actor.
#[derive(Clone, Debug)]
pub struct Management {
    keyring: Arc<Keyring>,
    mount_path: String,
    page: bool,
}

impl Management {
    /// The API and page over `keyring`, mounted at the root (see
    /// [`Management::mount_path`]), page on.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Management {
            keyring,
            mount_path: String::new(),
            page: true,
        }
    }

    /// Where the host mounts it (`/admin/keys`), so that the page can name
    /// its script, style sheet and API. A path of `/`-separated segments of
    /// letters, digits, `-`, `_`, `.` and `~`; a trailing `/` is dropped.
    /// `InvalidInput` otherwise.
    pub fn mount_path(mut self, path: &str) -> apikeys::Result<Self> {
        self.mount_path = clean_mount_path(path).ok_or_else(|| {
            apikeys::Error::invalid(
                "mount_path",
                "must start with '/' and hold only letters, digits, '/', '-', '_', '.' and '~'"
                    .to_owned(),
            )
        })?;
        Ok(self)
    }

    /// Serve the API only: `GET /` and the page's assets answer 404.
    pub fn without_page(mut self) -> Self {
        self.page = false;
        self
    }

    /// The keyring.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// Whether [`Management::handle`] may wait on a durable store (hosts
    /// then call it off their event loop: axum's `spawn_blocking`, Python
    /// without the GIL, a Node `AsyncTask`).
    pub fn may_block(&self) -> bool {
        self.keyring.may_block()
    }

    /// The largest body [`Management::handle`] accepts ([`MAX_BODY_BYTES`]);
    /// a host that reads the body itself stops past it and passes what it
    /// read plus one byte (or any longer body), which `handle` refuses with 413.
    pub fn max_body_bytes(&self) -> usize {
        MAX_BODY_BYTES
    }

    /// One request to the management API or page, answered whole.
    ///
    /// `actor` is who the host application says is logged in (`None`: 401
    /// in PagerDuty's error body). The request's path is relative to where
    /// the host mounted it and starts with `/`; its body is whole (at most
    /// [`MAX_BODY_BYTES`], else 413). May block on a durable store: callers
    /// check [`Management::may_block`] and call it off their event loop.
    /// Never panics on any input; no answer but a create's or a rotation's
    /// holds a key. A refusal the keyring decided carries its
    /// [`crate::Rejection`] in the response's extensions, for a logging
    /// layer ([`crate::Rejection::reason`]: a store failure's cause; the
    /// client is told only that an internal error occurred).
    pub fn handle(&self, actor: Option<&Actor>, request: Request<Vec<u8>>) -> Response<Vec<u8>> {
        self.handle_at(actor, request, None)
    }

    /// [`Management::handle`], with the mount path the host's router saw
    /// for this request (the axum mount reads it from `OriginalUri`).
    pub(crate) fn handle_at(
        &self,
        actor: Option<&Actor>,
        request: Request<Vec<u8>>,
        mount_path: Option<&str>,
    ) -> Response<Vec<u8>> {
        let (parts, body) = request.into_parts();
        let head = parts.method == Method::HEAD;
        let mut res = match self.route(actor, &parts, &body, mount_path) {
            Ok(r) => r,
            Err(f) => failure(&f),
        };
        if head {
            res.body_mut().clear();
        }
        res
    }

    fn route(
        &self,
        actor: Option<&Actor>,
        parts: &http::request::Parts,
        body: &[u8],
        mount_path: Option<&str>,
    ) -> Result<Response<Vec<u8>>, Failure> {
        let actor = actor.ok_or_else(Failure::no_actor)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(Failure::too_large(MAX_BODY_BYTES));
        }
        let path = parts.uri.path();
        let segments: Vec<&str> = path
            .strip_prefix('/')
            .ok_or_else(Failure::no_route)?
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let method = if parts.method == Method::HEAD {
            &Method::GET
        } else {
            &parts.method
        };
        let changes = !matches!(*method, Method::GET);
        let query = Query::parse(parts.uri.query());
        // Which endpoint, and the methods it answers.
        let allow: &'static str = match segments.as_slice() {
            [] | ["assets", _] if self.page => "GET, HEAD",
            ["me"] | ["audit", "records"] => "GET, HEAD",
            ["api_keys"] => "GET, HEAD, POST",
            ["api_keys", _] => "GET, HEAD, DELETE",
            [
                "api_keys",
                _,
                "disable" | "enable" | "rotate" | "end_rotation",
            ] => "POST",
            ["users", _, "tokens"] => "GET, HEAD, POST",
            ["users", _, "tokens", _] => "GET, HEAD, DELETE",
            _ => return Err(Failure::no_route()),
        };
        let answers = match *method {
            Method::GET => allow.starts_with("GET"),
            Method::POST => allow.contains("POST"),
            Method::DELETE => allow.contains("DELETE"),
            _ => false,
        };
        if !answers {
            return Err(Failure::method(allow));
        }
        if changes {
            guard::same_site(parts)?;
        }
        let k = &self.keyring;
        // Expiry and overlaps are shown as of after the call, by the keyring's clock.
        let now = || k.now();
        match (method, segments.as_slice()) {
            // The page ignores its query string (links may carry one).
            (_, []) => Ok(page::html(
                mount_path
                    .and_then(clean_mount_path)
                    .as_deref()
                    .unwrap_or(&self.mount_path),
            )),
            (_, ["assets", name]) => page::asset(name).ok_or_else(Failure::no_route),
            (_, ["me"]) => {
                query.only(&[])?;
                let p = k.permissions(actor)?;
                Ok(json_response(StatusCode::OK, &view::permissions(actor, &p)))
            }
            (_, ["audit", "records"]) => self.audit(actor, &query),
            (&Method::GET, ["api_keys"]) => self.list(actor, &query, None),
            (_, ["api_keys"]) => {
                query.only(&[])?;
                let mut f = Fields::wrapped(body, "api_key", false)?;
                let spec = new_key(&mut f, None)?;
                f.done()?;
                let issued = k.create(actor, spec)?;
                Ok(created(&issued, None, now()))
            }
            (&Method::GET, ["api_keys", id]) => {
                query.only(&[])?;
                let r = k.get(actor, id)?;
                Ok(key_response(StatusCode::OK, &r, now()))
            }
            (_, ["api_keys", id]) => {
                query.only(&[])?;
                k.delete(actor, id)?;
                Ok(no_content())
            }
            (_, ["api_keys", id, action]) => {
                query.only(&[])?;
                self.key_action(actor, id, action, body)
            }
            (&Method::GET, ["users", user, "tokens"]) => {
                let user = self.user_of(actor, user)?;
                if user != actor.user {
                    let p = k.permissions(actor)?;
                    if !p.others_tokens.contains(&Action::List) {
                        return Err(Failure::forbidden(format!(
                            "the role '{}' may not list another user's user tokens",
                            p.role.map_or("(removed)", |r| r.as_str())
                        )));
                    }
                }
                self.list(actor, &query, Some(&user))
            }
            (_, ["users", user, "tokens"]) => {
                query.only(&[])?;
                let user = self.user_of(actor, user)?;
                if user != actor.user {
                    return Err(Failure::forbidden(
                        "a user token is made by its owner only: POST /users/me/tokens",
                    ));
                }
                let mut f = Fields::wrapped(body, "api_key", false)?;
                let spec = new_key(&mut f, Some(KeyKind::UserToken))?;
                f.done()?;
                let issued = k.create(actor, spec)?;
                Ok(created(&issued, None, now()))
            }
            (_, ["users", user, "tokens", id]) => {
                query.only(&[])?;
                let user = self.user_of(actor, user)?;
                // The key must be this user's token; else it is not here.
                let r = k.get(actor, id)?;
                if r.kind != KeyKind::UserToken || r.owner.as_deref() != Some(user.as_str()) {
                    return Err(Failure::not_found(id));
                }
                if *method == Method::GET {
                    Ok(key_response(StatusCode::OK, &r, now()))
                } else {
                    k.delete(actor, id)?;
                    Ok(no_content())
                }
            }
            _ => Err(Failure::no_route()),
        }
    }

    /// `me`, or a user id (percent-decoded).
    fn user_of(&self, actor: &Actor, segment: &str) -> Result<String, Failure> {
        if segment == "me" {
            return Ok(actor.user.clone());
        }
        percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| Failure::bad("the user id is not UTF-8"))
    }

    /// `GET /api_keys` (and a user's tokens, `owner` set).
    fn list(
        &self,
        actor: &Actor,
        query: &Query,
        owner: Option<&str>,
    ) -> Result<Response<Vec<u8>>, Failure> {
        let (kind, owner) = if let Some(o) = owner {
            query.only(&["disabled", "query", "limit", "offset"])?;
            (Some(KeyKind::UserToken), Some(o.to_owned()))
        } else {
            query.only(&["type", "owner", "disabled", "query", "limit", "offset"])?;
            let kind = query
                .one("type")?
                .map(|t| t.parse::<KeyKind>())
                .transpose()
                .map_err(|_| {
                    Failure::bad(
                        "'type' must be one of 'general', 'user_token', 'scoped', 'integration', 'routing'",
                    )
                })?;
            (kind, query.one("owner")?.map(str::to_owned))
        };
        let disabled = query.boolean("disabled")?;
        let text = query.one("query")?.map(str::to_lowercase);
        let limit = query.number("limit", 1, 1000)?.unwrap_or(100);
        let offset = query.number("offset", 0, usize::MAX)?.unwrap_or(0);
        let all = self.keyring.list(actor)?;
        let now = self.keyring.now();
        let matching: Vec<&KeyRecord> = all
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind == k))
            .filter(|r| {
                owner
                    .as_deref()
                    .is_none_or(|o| r.owner.as_deref() == Some(o))
            })
            .filter(|r| disabled.is_none_or(|d| r.disabled.is_some() == d))
            .filter(|r| {
                text.as_deref()
                    .is_none_or(|t| r.description.to_lowercase().contains(t))
            })
            .collect();
        let total = matching.len();
        let page: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| view::key(r, now))
            .collect();
        let more = offset.saturating_add(page.len()) < total;
        Ok(json_response(
            StatusCode::OK,
            &json!({ "api_keys": page, "limit": limit, "offset": offset, "more": more, "total": total }),
        ))
    }

    /// `POST /api_keys/{id}/disable|enable|rotate|end_rotation`.
    fn key_action(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
        body: &[u8],
    ) -> Result<Response<Vec<u8>>, Failure> {
        let k = &self.keyring;
        if action == "rotate" {
            let mut f = Fields::wrapped(body, "rotation", true)?;
            let grace = f
                .number("grace_seconds", apikeys::MAX_ROTATION_GRACE.as_secs())?
                .map_or(DEFAULT_ROTATION_GRACE, Duration::from_secs);
            f.done()?;
            let issued = k.rotate(actor, id, grace)?;
            // The old key's record as it is now (after the rotation).
            let old = k.get(actor, id).ok();
            return Ok(created(&issued, old.as_ref(), k.now()));
        }
        Fields::wrapped(body, "api_key", true)?.done()?;
        let r = match action {
            "disable" => k.disable(actor, id)?,
            "enable" => k.enable(actor, id)?,
            _ => k.end_rotation(actor, id)?,
        };
        Ok(key_response(StatusCode::OK, &r, k.now()))
    }

    /// `GET /audit/records`, PagerDuty's shape.
    fn audit(&self, actor: &Actor, query: &Query) -> Result<Response<Vec<u8>>, Failure> {
        query.only(&[
            "since", "until", "limit", "cursor", "actor_id", "actions", "key_id",
        ])?;
        let when = |name: &str| -> Result<Option<Timestamp>, Failure> {
            query
                .one(name)?
                .map(|v| {
                    time::parse_rfc3339(v).ok_or_else(|| {
                        Failure::bad(format!(
                            "'{name}' must be an RFC 3339 time (2026-12-02T01:02:03Z)"
                        ))
                    })
                })
                .transpose()
        };
        let mut actions = Vec::new();
        for a in query.all("actions") {
            actions.push(a.parse::<AuditAction>()?);
        }
        let key_id = query
            .one("key_id")?
            .map(|v| {
                KeyId::parse(v).ok_or_else(|| {
                    Failure::bad(
                        "'key_id' must be 'P' followed by 13 characters of Crockford base32",
                    )
                })
            })
            .transpose()?;
        let limit = query
            .number("limit", 1, apikeys::MAX_AUDIT_PAGE)?
            .unwrap_or(100);
        let q = AuditQuery {
            account: actor.account.clone(),
            key_id,
            actor: query.one("actor_id")?.map(str::to_owned),
            actions,
            since: when("since")?,
            until: when("until")?,
            limit,
            cursor: query.one("cursor")?.map(str::to_owned),
        };
        let page = self.keyring.audit_records_as(actor, &q)?;
        let records: Vec<Value> = page.records.iter().map(AuditEvent::to_pagerduty).collect();
        Ok(json_response(
            StatusCode::OK,
            &json!({ "records": records, "limit": limit, "next_cursor": page.next_cursor }),
        ))
    }
}

/// A new key's settings from `api_key`'s fields (the kind forced for
/// `/users/…/tokens`). Fields of another kind are refused.
fn new_key(f: &mut Fields, forced: Option<KeyKind>) -> Result<NewKey, Failure> {
    let kind = match (f.string("type")?, forced) {
        (None, Some(k)) => k,
        (None, None) => KeyKind::General,
        (Some(t), forced) => {
            let k = t.parse::<KeyKind>().map_err(|_| {
                Failure::bad(
                    "'api_key.type' must be one of 'general', 'user_token', 'scoped', 'integration', 'routing'",
                )
            })?;
            if forced.is_some_and(|f| f != k) {
                return Err(Failure::bad("'api_key.type' must be 'user_token' here"));
            }
            k
        }
    };
    let description = f
        .string("description")?
        .ok_or_else(|| Failure::bad("'api_key.description' is required"))?;
    let read_only = f.boolean("read_only")?;
    let service = f.string("service_id")?;
    let orchestration = f.string("orchestration_id")?;
    let scopes = f.strings("scopes")?;
    let expires = f
        .string("expires_at")?
        .map(|v| {
            time::parse_rfc3339(&v).ok_or_else(|| {
                Failure::bad("'api_key.expires_at' must be an RFC 3339 time (2027-01-01T00:00:00Z)")
            })
        })
        .transpose()?;
    let only = |present: bool, field: &str, for_kind: KeyKind| -> Result<(), Failure> {
        if present && kind != for_kind {
            Err(Failure::bad(format!(
                "'api_key.{field}' applies to {} keys only",
                for_kind.as_str().replace('_', " ")
            )))
        } else {
            Ok(())
        }
    };
    only(read_only.is_some(), "read_only", KeyKind::General)?;
    only(service.is_some(), "service_id", KeyKind::Integration)?;
    only(
        orchestration.is_some(),
        "orchestration_id",
        KeyKind::Routing,
    )?;
    only(scopes.is_some(), "scopes", KeyKind::Scoped)?;
    let missing =
        |field: &str| Failure::bad(format!("'api_key.{field}' is required for this type"));
    let spec = match kind {
        KeyKind::General => NewKey::general(
            &description,
            if read_only.unwrap_or(false) {
                AccessLevel::ReadOnly
            } else {
                AccessLevel::FullAccess
            },
        ),
        KeyKind::UserToken => NewKey::user_token(&description),
        KeyKind::Integration => {
            NewKey::integration(&service.ok_or_else(|| missing("service_id"))?, &description)
        }
        KeyKind::Routing => NewKey::routing(
            &orchestration.ok_or_else(|| missing("orchestration_id"))?,
            &description,
        ),
        KeyKind::Scoped => NewKey::scoped(&description, &scopes.ok_or_else(|| missing("scopes"))?),
    };
    Ok(match expires {
        Some(at) => spec.expires_at(at),
        None => spec,
    })
}

/// `/admin/keys/` → `/admin/keys`; `None` for anything but a plain path.
fn clean_mount_path(path: &str) -> Option<String> {
    let ok = path.starts_with('/')
        && path.len() <= 256
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'))
        && !path.contains("//");
    ok.then(|| path.trim_end_matches('/').to_owned())
}

fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Vec<u8>> {
    let len = body.len();
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    // Nothing the management API says is for a cache: keys, who disabled them, the trail.
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

fn json_response(status: StatusCode, value: &Value) -> Response<Vec<u8>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    with_headers(status, "application/json; charset=utf-8", body)
}

fn key_response(status: StatusCode, r: &KeyRecord, now: Timestamp) -> Response<Vec<u8>> {
    json_response(status, &json!({ "api_key": view::key(r, now) }))
}

/// 201 with the new key, once; `rotated` is the key it replaces.
fn created(
    issued: &apikeys::IssuedKey,
    rotated: Option<&KeyRecord>,
    now: Timestamp,
) -> Response<Vec<u8>> {
    let mut key = view::key(issued.record(), now);
    if let Value::Object(m) = &mut key {
        m.insert(
            "token".into(),
            Value::String(issued.secret().expose().to_owned()),
        );
    }
    let mut body = json!({ "api_key": key });
    if let (Some(old), Value::Object(m)) = (rotated, &mut body) {
        m.insert("rotated".into(), view::key(old, now));
    }
    let mut res = json_response(StatusCode::CREATED, &body);
    // Wipe the copy the JSON value held (the body's bytes go to the host).
    if let Some(Value::String(token)) = body.get_mut("api_key").and_then(|k| k.get_mut("token")) {
        zeroize::Zeroize::zeroize(token);
    }
    res.headers_mut()
        .insert(http::header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn no_content() -> Response<Vec<u8>> {
    let mut res = with_headers(
        StatusCode::NO_CONTENT,
        "application/json; charset=utf-8",
        Vec::new(),
    );
    res.headers_mut().remove(CONTENT_TYPE);
    res.headers_mut().remove(CONTENT_LENGTH);
    res
}

fn failure(f: &Failure) -> Response<Vec<u8>> {
    let mut res = with_headers(f.status, "application/json; charset=utf-8", f.body());
    if let Some(r) = &f.rejection {
        res.extensions_mut().insert(crate::Rejection::clone(r));
    }
    if let Some(allow) = f.allow {
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
    }
    res
}
