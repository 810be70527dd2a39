//! Each command: its checks, its call into the keyring, what it prints.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use apikeys::{
    AccessLevel, AccountSettings, Actor, AuditAction, AuditEvent, AuditOutcome, AuditQuery,
    CallContext, Error, KeyId, KeyKind, KeyStore, Keyring, LeakedKey, NewKey, Request, Role,
    StreamCandidate, StreamScanner, Timestamp,
};
use serde_json::{Value, json};

use crate::cli::{AccountCmd, AuditArgs, Cli, Command, CreateCmd, ScanArgs, UserCmd, VerifyArgs};
use crate::db::{Db, NoUseNoted, keyring, open_store};
use crate::output::{self, json_out, key_json, note, out};
use crate::time::{format_duration, parse_when, rfc3339};
use crate::{EXIT_ERROR, Failure};

/// The status of `verify` refusing a key, and of `scan` finding a live one.
const EXIT_FOUND: u8 = 1;

/// How much of a file `scan` holds at once.
const SCAN_CHUNK: usize = 1 << 20;

/// What every command works with.
struct Ctx {
    keyring: Keyring,
    store: Arc<dyn KeyStore>,
    actor: Option<Actor>,
    json: bool,
    now: Timestamp,
}

impl Ctx {
    fn actor(&self) -> Result<&Actor, Failure> {
        self.actor.as_ref().ok_or_else(needs_actor)
    }
}

fn needs_actor() -> Failure {
    Failure::error("this command needs --as ACCOUNT/USER/ROLE: who is acting")
}

/// `ACCOUNT/USER/ROLE`; the account may itself hold `/`, the user may not.
pub(crate) fn parse_actor(s: &str) -> Result<Actor, Failure> {
    let bad = || {
        Failure::error(
            "--as must be ACCOUNT/USER/ROLE, e.g. --as acme/PADMIN1/admin (roles: owner, admin, \
             manager, responder, observer, restricted_access, read_only_user, \
             read_only_limited_user)",
        )
    };
    let mut parts = s.rsplitn(3, '/');
    let (role, user, account) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    if account.is_empty() || user.is_empty() {
        return Err(bad());
    }
    let role = Role::parse(role).map_err(|e| Failure::error(format!("--as: {e}")))?;
    let context = CallContext::new().request_id(&format!(
        "apikeys-cli-{}-{}",
        Timestamp::now().unix_millis(),
        std::process::id()
    ));
    Ok(Actor::new(account, user, role).with_context(context))
}

/// A key id as given, checked before the database is opened.
fn key_id(s: &str) -> Result<KeyId, Failure> {
    s.parse::<KeyId>().map_err(Failure::from)
}

pub(crate) fn run(cli: Cli) -> Result<u8, Failure> {
    let actor = cli.actor.as_deref().map(parse_actor).transpose()?;
    // Everything that can be checked without the database is checked first.
    let needs_an_actor = match &cli.command {
        Command::Verify(_) => false,
        Command::Scan(s) => s.disable,
        _ => true,
    };
    if needs_an_actor && actor.is_none() {
        return Err(needs_actor());
    }
    match &cli.command {
        Command::Show { id }
        | Command::Disable { id }
        | Command::Enable { id }
        | Command::Delete { id }
        | Command::Rotate { id, .. }
        | Command::EndRotation { id } => {
            key_id(id)?;
        }
        Command::Account(AccountCmd::Set {
            rest_api: None,
            advanced_permissions: None,
        }) => {
            return Err(Failure::error(
                "nothing to set: give --rest-api on|off and/or --advanced-permissions on|off",
            ));
        }
        _ => {}
    }
    let token = match &cli.command {
        Command::Verify(v) => Some(read_token(&v.token)?),
        _ => None,
    };
    let may_create = matches!(
        cli.command,
        Command::Create(_)
            | Command::Account(AccountCmd::Set { .. })
            | Command::User(UserCmd::SetRole { .. } | UserCmd::Remove { .. })
    );
    let db = Db::choose(cli.db.as_deref());
    let store = open_store(&db, may_create, cli.connect_timeout, cli.schema.as_deref())?;
    let ctx = Ctx {
        keyring: keyring(store.clone())?,
        store,
        actor,
        json: cli.json,
        now: Timestamp::now(),
    };
    let code = match cli.command {
        Command::Account(cmd) => account(&ctx, cmd)?,
        Command::User(cmd) => user(&ctx, cmd)?,
        Command::Create(cmd) => create(&ctx, cmd)?,
        Command::List { kind } => list(&ctx, kind)?,
        Command::Show { id } => show(&ctx, &id)?,
        Command::Disable { id } => {
            let r = ctx.keyring.disable(ctx.actor()?, &id)?;
            changed(&ctx, &r, "disabled")?
        }
        Command::Enable { id } => {
            let r = ctx.keyring.enable(ctx.actor()?, &id)?;
            changed(&ctx, &r, "enabled")?
        }
        Command::Delete { id } => {
            let r = ctx.keyring.delete(ctx.actor()?, &id)?;
            changed(&ctx, &r, "deleted")?
        }
        Command::Rotate { id, grace } => rotate(&ctx, &id, grace)?,
        Command::EndRotation { id } => {
            let r = ctx.keyring.end_rotation(ctx.actor()?, &id)?;
            changed(&ctx, &r, "ended the rotation of")?
        }
        Command::Audit(args) => audit(&ctx, &args)?,
        Command::Verify(args) => verify(&ctx, &args, token.as_deref().unwrap_or_default())?,
        Command::Scan(args) => scan(&ctx, &args)?,
    };
    // Queued last uses and the like, written before the process ends.
    ctx.keyring.flush()?;
    Ok(code)
}

// -- account and users ---------------------------------------------------------------------------

/// An id as the audit trail may show it (never something shaped like a key).
fn audit_safe(s: &str) -> String {
    if KeyKind::parse(s).is_ok() {
        "(redacted)".to_owned()
    } else {
        s.to_owned()
    }
}

/// The actor's role as the keyring decides on it: the stored one when it
/// knows them (a removed user may do nothing), else the one they claim. A
/// refusal of a change (`action`) is recorded; a read's is not, as the
/// library records no reads in the durable trail.
fn standing(
    ctx: &Ctx,
    action: Option<AuditAction>,
    subject: Option<&str>,
) -> Result<Role, Failure> {
    let actor = ctx.actor()?;
    let removed = "this user was removed from the account; set their role again to restore them";
    match ctx.keyring.user(&actor.account, &actor.user)? {
        Some(s) if s.removed => Err(match action {
            Some(action) => refuse(ctx, actor.role, action, subject, removed),
            None => Failure::error(format!("not permitted: {removed}")),
        }),
        Some(s) => Ok(s.role),
        None => Ok(actor.role),
    }
}

/// Refuse a call by the command line's own rules (plan, roles, audit), and
/// leave the refusal in the store's audit trail like the library's own.
fn refuse(
    ctx: &Ctx,
    role: Role,
    action: AuditAction,
    subject: Option<&str>,
    reason: &str,
) -> Failure {
    if let Some(actor) = &ctx.actor {
        let event = AuditEvent {
            id: 0,
            at: Timestamp::now(),
            account: audit_safe(&actor.account),
            actor: audit_safe(&actor.user),
            actor_role: Some(role),
            action,
            key_kind: None,
            key_id: None,
            subject_user: subject.map(audit_safe),
            changes: Vec::new(),
            context: actor.context.clone(),
            outcome: AuditOutcome::Refused {
                error: "not_permitted".to_owned(),
                reason: format!("not permitted: {reason}"),
            },
        };
        if ctx.store.keeps_audit() {
            // Best effort: the answer is the refusal, whatever the trail says.
            let _ = ctx.store.append_audit(&event);
        }
    }
    Failure::error(format!("not permitted: {reason}"))
}

fn settings_out(ctx: &Ctx, account: &str, s: AccountSettings) -> Result<u8, Failure> {
    if ctx.json {
        json_out(&json!({
            "account": account,
            "rest_api": s.rest_api,
            "advanced_permissions": s.advanced_permissions,
        }))?;
    } else {
        let on = |b: bool| if b { "on" } else { "off" };
        out(&format!(
            "account               {account}\nrest api              {}\nadvanced permissions  {}\n",
            on(s.rest_api),
            on(s.advanced_permissions)
        ))?;
    }
    Ok(0)
}

fn account(ctx: &Ctx, cmd: AccountCmd) -> Result<u8, Failure> {
    let actor = ctx.actor()?;
    match cmd {
        AccountCmd::Show => {
            standing(ctx, None, None)?;
            let s = ctx.keyring.account(&actor.account)?;
            settings_out(ctx, &actor.account, s)
        }
        AccountCmd::Set {
            rest_api,
            advanced_permissions,
        } => {
            let mut s = ctx.keyring.account(&actor.account)?;
            if let Some(v) = rest_api {
                s.rest_api = v.is_on();
            }
            if let Some(v) = advanced_permissions {
                s.advanced_permissions = v.is_on();
            }
            // Who may: the core decides (Keyring::set_account_as).
            ctx.keyring.set_account_as(actor, s)?;
            settings_out(ctx, &actor.account, s)
        }
    }
}

fn user(ctx: &Ctx, cmd: UserCmd) -> Result<u8, Failure> {
    let actor = ctx.actor()?;
    match cmd {
        UserCmd::SetRole { user, role } => {
            // Who may: the core decides (Keyring::set_user_role_as).
            ctx.keyring.set_user_role_as(actor, &user, role)?;
            if ctx.json {
                json_out(&json!({ "user": user, "role": role.as_str(), "removed": false }))?;
            } else {
                out(&format!("{user}: role {role}\n"))?;
            }
            Ok(0)
        }
        UserCmd::Remove { user } => {
            let n = ctx.keyring.remove_user_as(actor, &user)?;
            if ctx.json {
                json_out(&json!({ "user": user, "removed": true, "keys_disabled": n }))?;
            } else {
                out(&format!(
                    "{user}: removed; {n} key{} disabled\n",
                    if n == 1 { "" } else { "s" }
                ))?;
            }
            Ok(0)
        }
        UserCmd::Show { user } => {
            let mine = standing(ctx, None, Some(&user))?;
            if user != actor.user && !mine.is_admin_or_owner() {
                return Err(Failure::error(format!(
                    "not permitted: the role '{mine}' may see only its own user"
                )));
            }
            let state = ctx.keyring.user(&actor.account, &user)?;
            if ctx.json {
                json_out(&json!({
                    "user": user,
                    "known": state.is_some(),
                    "role": state.map(|s| s.role.as_str()),
                    "removed": state.map(|s| s.removed),
                }))?;
            } else {
                match state {
                    None => out(&format!(
                        "{user}: unknown to the keyring (no role stored)\n"
                    ))?,
                    Some(s) if s.removed => {
                        out(&format!("{user}: removed (role was {})\n", s.role))?
                    }
                    Some(s) => out(&format!("{user}: role {}\n", s.role))?,
                }
            }
            Ok(0)
        }
    }
}

// -- keys ----------------------------------------------------------------------------------------

fn create(ctx: &Ctx, cmd: CreateCmd) -> Result<u8, Failure> {
    let (spec, expiry) = match cmd {
        CreateCmd::General {
            description,
            read_only,
            expiry,
        } => {
            let access = if read_only {
                AccessLevel::ReadOnly
            } else {
                AccessLevel::FullAccess
            };
            (NewKey::general(&description, access), expiry)
        }
        CreateCmd::UserToken {
            description,
            expiry,
        } => (NewKey::user_token(&description), expiry),
        CreateCmd::Integration {
            description,
            service,
            expiry,
        } => (NewKey::integration(&service, &description), expiry),
        CreateCmd::Routing {
            description,
            orchestration,
            expiry,
        } => (NewKey::routing(&orchestration, &description), expiry),
        CreateCmd::Scoped {
            description,
            scopes,
            expiry,
        } => (NewKey::scoped(&description, &scopes), expiry),
    };
    let spec = match expiry.expires {
        Some(d) => spec.expires_at(ctx.now.saturating_add(d)),
        None => spec,
    };
    let issued = ctx.keyring.create(ctx.actor()?, spec)?;
    let r = issued.record();
    new_key_out(ctx, issued.secret().expose(), r)?;
    note(&format!(
        "created {} key {} (\"{}\", account {}){}. {}",
        r.kind,
        r.id,
        output::cut(&r.description, 60),
        r.account,
        r.expires_at
            .map(|e| format!(", expires {}", rfc3339(e)))
            .unwrap_or_default(),
        shown_once(ctx)
    ));
    Ok(0)
}

fn shown_once(ctx: &Ctx) -> &'static str {
    if ctx.json {
        "The key (\"key\" above) is shown this once and never again: store it now."
    } else {
        "The key above is shown this once and never again: store it now."
    }
}

/// A new key, on standard output, once: alone on its line, or with its record as JSON.
fn new_key_out(ctx: &Ctx, key: &str, r: &apikeys::KeyRecord) -> Result<(), Failure> {
    if ctx.json {
        json_out(&json!({ "key": key, "record": key_json(r, ctx.now) }))
    } else {
        out(&format!("{key}\n"))
    }
}

fn list(ctx: &Ctx, kind: Option<KeyKind>) -> Result<u8, Failure> {
    let mut records = ctx.keyring.list(ctx.actor()?)?;
    if let Some(k) = kind {
        records.retain(|r| r.kind == k);
    }
    if ctx.json {
        let keys: Vec<Value> = records.iter().map(|r| key_json(r, ctx.now)).collect();
        json_out(&json!({ "keys": keys }))?;
    } else if records.is_empty() {
        note("no keys that this user may see");
    } else {
        out(&output::key_table(&records, ctx.now))?;
    }
    Ok(0)
}

fn show(ctx: &Ctx, id: &str) -> Result<u8, Failure> {
    let r = ctx.keyring.get(ctx.actor()?, id)?;
    if ctx.json {
        json_out(&key_json(&r, ctx.now))?;
    } else {
        out(&output::key_details(&r, ctx.now))?;
    }
    Ok(0)
}

fn changed(ctx: &Ctx, r: &apikeys::KeyRecord, what: &str) -> Result<u8, Failure> {
    if ctx.json {
        json_out(&key_json(r, ctx.now))?;
    } else {
        out(&format!(
            "{what} {} key {} (\"{}\")\n",
            r.kind,
            r.id,
            output::cut(&r.description, 60)
        ))?;
    }
    Ok(0)
}

fn rotate(ctx: &Ctx, id: &str, grace: std::time::Duration) -> Result<u8, Failure> {
    let issued = ctx.keyring.rotate(ctx.actor()?, id, grace)?;
    let r = issued.record();
    new_key_out(ctx, issued.secret().expose(), r)?;
    // The old record as the rotation left it (read from the store: the
    // actor was just allowed to rotate it, and this leaves no audit record).
    let until = key_id(id)
        .ok()
        .and_then(|old| ctx.store.get(old).ok().flatten())
        .and_then(|old| old.rotation.and_then(|rot| rot.overlap_until));
    note(&format!(
        "rotated {id} to {} key {}; the old key works until {} at the latest (grace {}), \
         sooner once clients use the new one. {}",
        r.kind,
        r.id,
        until.map_or_else(|| "its grace ends".to_owned(), rfc3339),
        format_duration(grace),
        shown_once(ctx)
    ));
    Ok(0)
}

// -- the audit trail -----------------------------------------------------------------------------

fn audit(ctx: &Ctx, args: &AuditArgs) -> Result<u8, Failure> {
    let actor = ctx.actor()?;
    let role = standing(ctx, None, None)?;
    if !ctx
        .keyring
        .grants()
        .allows(role, Some("audit_records"), false)
    {
        return Err(Failure::error(format!(
            "not permitted: the role '{role}' may not read the audit trail (audit_records.read)"
        )));
    }
    let when = |s: &Option<String>, flag: &str| -> Result<Option<Timestamp>, Failure> {
        s.as_deref()
            .map(|v| parse_when(v, ctx.now).map_err(|e| Failure::error(format!("{flag}: {e}"))))
            .transpose()
    };
    let mut actions = Vec::new();
    for a in &args.actions {
        actions.push(a.parse::<AuditAction>().map_err(Failure::from)?);
    }
    let query = AuditQuery {
        account: actor.account.clone(),
        key_id: args.key.as_deref().map(key_id).transpose()?,
        actor: args.by.clone(),
        actions,
        since: when(&args.since, "--since")?,
        until: when(&args.until, "--until")?,
        limit: args.limit.unwrap_or(0),
        cursor: args.cursor.clone(),
    };
    if args.limit == Some(0) {
        return Err(Failure::error("--limit must be 1 to 1000"));
    }
    let page = ctx.keyring.audit_records(&query)?;
    if ctx.json {
        let records: Vec<Value> = page.records.iter().map(AuditEvent::to_pagerduty).collect();
        json_out(&json!({
            "records": records,
            "next_cursor": page.next_cursor,
            "limit": if query.limit == 0 { 100 } else { query.limit },
        }))?;
    } else {
        if page.records.is_empty() {
            note("no audit records in this window");
        } else {
            out(&output::audit_table(&page.records))?;
        }
        if let Some(c) = &page.next_cursor {
            note(&format!("more records: add --cursor {c}"));
        }
    }
    Ok(0)
}

// -- verify --------------------------------------------------------------------------------------

/// The key to verify: the argument, or `-` for one line of standard input.
fn read_token(arg: &str) -> Result<String, Failure> {
    if arg != "-" {
        return Ok(arg.to_owned());
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(4097)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::error(format!("cannot read standard input: {e}")))?;
    if buf.len() > 4096 {
        return Err(Failure::error(
            "standard input is too long to be a key (give the key alone)",
        ));
    }
    let text = String::from_utf8(buf)
        .map_err(|_| Failure::error("standard input is not text: a key is ASCII"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Failure::error("no key on standard input"));
    }
    Ok(token.to_owned())
}

fn verify(ctx: &Ctx, args: &VerifyArgs, token: &str) -> Result<u8, Failure> {
    let request = if args.events {
        Request::events()
    } else {
        let r = Request::rest(&args.method);
        match &args.scope {
            Some(s) => r.with_scope(s)?,
            None => r,
        }
    };
    // A check by hand is not a use: the key's last use stays as it was.
    let checker = keyring(Arc::new(NoUseNoted(ctx.store.clone())))?;
    let what = if args.events {
        "an Events API request".to_owned()
    } else {
        format!(
            "REST {}{}",
            request.method().as_str(),
            request
                .scope()
                .map(|s| format!(" needing {s}"))
                .unwrap_or_default()
        )
    };
    match checker.authenticate(token, &request) {
        Ok(p) => {
            if ctx.json {
                json_out(&json!({
                    "admitted": true,
                    "request": what,
                    "key_id": p.key_id().to_string(),
                    "kind": p.kind().as_str(),
                    "account": p.account(),
                    "owner": p.owner(),
                    "role": p.role().map(Role::as_str),
                    "access": p.access().as_str(),
                    "scopes": p.scopes().iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "target": p.target(),
                }))?;
            } else {
                let mut s = format!(
                    "admitted: {what}\nkey      {} ({} key, account {})\n",
                    p.key_id(),
                    p.kind(),
                    p.account()
                );
                if let Some(o) = p.owner() {
                    s.push_str(&format!(
                        "owner    {o}{}\n",
                        p.role()
                            .map(|r| format!(", acting as {r}"))
                            .unwrap_or_default()
                    ));
                }
                match p.kind() {
                    KeyKind::General => s.push_str(&format!("access   {}\n", p.access().as_str())),
                    KeyKind::Scoped => s.push_str(&format!(
                        "scopes   {}\n",
                        p.scopes()
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                    KeyKind::Integration | KeyKind::Routing => {
                        s.push_str(&format!("target   {}\n", p.target().unwrap_or("-")));
                    }
                    KeyKind::UserToken => {}
                }
                out(&s)?;
            }
            Ok(0)
        }
        Err(e @ (Error::Store(_) | Error::Random)) => Err(e.into()),
        Err(e) => {
            // Which stored key it is, when it is one (never the key itself).
            let known = ctx.keyring.check_leaked(&[token])?.into_iter().next();
            let reason = e.reason();
            if ctx.json {
                json_out(&json!({
                    "admitted": false,
                    "request": what,
                    "error": e.kind_name(),
                    "status": e.http_status(),
                    "code": e.code(),
                    "reason": reason,
                    "key_id": known.as_ref().map(|k| k.key_id.to_string()),
                    "kind": known.as_ref().map(|k| k.kind.as_str()),
                    "account": known.as_ref().map(|k| k.account.clone()),
                    "state": known.as_ref().map(|k| k.state.as_str()),
                }))?;
            } else {
                let mut s = format!(
                    "refused: {what}\nanswer   {} {} (PagerDuty code {})\nreason   {reason}\n",
                    e.http_status(),
                    e.kind_name(),
                    e.code()
                );
                if let Some(k) = known {
                    s.push_str(&format!(
                        "key      {} ({} key, account {}, {})\n",
                        k.key_id, k.kind, k.account, k.state
                    ));
                }
                out(&s)?;
            }
            Ok(EXIT_FOUND)
        }
    }
}

// -- scan ----------------------------------------------------------------------------------------

/// What a scan has found and done so far.
#[derive(Default)]
struct ScanState {
    files: u64,
    bytes: u64,
    live: u64,
    inactive: u64,
    errors: Vec<String>,
    findings: Vec<Value>,
    /// Keys already disabled (or tried) by `--disable`.
    acted_on: HashSet<KeyId>,
}

fn scan(ctx: &Ctx, args: &ScanArgs) -> Result<u8, Failure> {
    let mut state = ScanState::default();
    for path in &args.paths {
        if path.as_os_str() == "-" {
            let stdin = std::io::stdin();
            scan_stream(ctx, args, &mut state, "(stdin)", &mut stdin.lock())?;
        } else {
            scan_path(ctx, args, &mut state, path)?;
        }
    }
    let summary = format!(
        "scanned {} file{}, {} bytes: {} live key{} found{}{}",
        state.files,
        if state.files == 1 { "" } else { "s" },
        state.bytes,
        state.live,
        if state.live == 1 { "" } else { "s" },
        if state.inactive > 0 {
            format!(", and {} that can no longer work", state.inactive)
        } else {
            String::new()
        },
        if state.errors.is_empty() {
            String::new()
        } else {
            format!("; {} error(s)", state.errors.len())
        }
    );
    if ctx.json {
        json_out(&json!({
            "findings": state.findings,
            "files": state.files,
            "bytes": state.bytes,
            "live": state.live,
            "errors": state.errors,
        }))?;
    }
    note(&summary);
    Ok(if !state.errors.is_empty() {
        EXIT_ERROR
    } else if state.live > 0 {
        EXIT_FOUND
    } else {
        0
    })
}

/// A file, or a directory's files (recursively; `.git` and symbolic links
/// to directories are left out).
fn scan_path(
    ctx: &Ctx,
    args: &ScanArgs,
    state: &mut ScanState,
    path: &Path,
) -> Result<(), Failure> {
    let shown = path.display().to_string();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            scan_error(state, format!("cannot read {shown}: {e}"));
            return Ok(());
        }
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
            Err(e) => {
                scan_error(state, format!("cannot read the directory {shown}: {e}"));
                return Ok(());
            }
        };
        entries.sort();
        for entry in entries {
            if entry.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            let is_link =
                std::fs::symlink_metadata(&entry).is_ok_and(|m| m.file_type().is_symlink());
            if is_link && entry.is_dir() {
                continue;
            }
            scan_path(ctx, args, state, &entry)?;
        }
        return Ok(());
    }
    match std::fs::File::open(path) {
        Ok(mut f) => scan_stream(ctx, args, state, &shown, &mut f),
        Err(e) => {
            scan_error(state, format!("cannot read {shown}: {e}"));
            Ok(())
        }
    }
}

fn scan_error(state: &mut ScanState, message: String) {
    note(&format!("error: {message}"));
    state.errors.push(crate::redact(&message));
}

/// One stream, a chunk at a time (never the whole in memory).
fn scan_stream(
    ctx: &Ctx,
    args: &ScanArgs,
    state: &mut ScanState,
    name: &str,
    reader: &mut dyn Read,
) -> Result<(), Failure> {
    state.files += 1;
    let mut scanner = StreamScanner::new();
    let mut chunk = vec![0u8; SCAN_CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                scan_error(state, format!("cannot read {name}: {e}"));
                return Ok(());
            }
        };
        state.bytes += n as u64;
        let found = scanner.feed(&chunk[..n]);
        report(ctx, args, state, name, &found)?;
    }
    let found = scanner.finish();
    report(ctx, args, state, name, &found)
}

/// The keys of the store among `found`: reported by id and place, never by
/// their text; with `--disable`, the live general ones disabled.
fn report(
    ctx: &Ctx,
    args: &ScanArgs,
    state: &mut ScanState,
    name: &str,
    found: &[StreamCandidate<'_>],
) -> Result<(), Failure> {
    if found.is_empty() {
        return Ok(());
    }
    let texts: Vec<&str> = found.iter().map(StreamCandidate::expose).collect();
    for leak in ctx.keyring.check_leaked(&texts)? {
        let at = &found[leak.index];
        let disabled_now = if args.disable && leak.live {
            disable_leaked(ctx, state, &leak)
        } else {
            false
        };
        if leak.live {
            state.live += 1;
        } else {
            state.inactive += 1;
        }
        if ctx.json {
            state.findings.push(json!({
                "path": name,
                "offset": at.offset,
                "line": at.line,
                "column": at.column,
                "key_id": leak.key_id.to_string(),
                "kind": leak.kind.as_str(),
                "account": leak.account,
                "description": leak.description,
                "state": leak.state.as_str(),
                "live": leak.live,
                "hint": leak.hint.as_str(),
                "disabled_now": disabled_now,
            }));
        } else {
            out(&format!(
                "{name}:{}:{}: {} {} key {} (account {}, \"{}\", {}, ends …{}) at byte {}{}\n",
                at.line,
                at.column,
                if leak.live { "LIVE" } else { "inactive" },
                leak.kind,
                leak.key_id,
                leak.account,
                output::cut(&leak.description, 40),
                leak.state,
                leak.hint,
                at.offset,
                if disabled_now { "; disabled now" } else { "" }
            ))?;
        }
    }
    Ok(())
}

/// `--disable`: disable a live general key found, once, as the acting user.
/// Says why not for any other kind, or when refused.
fn disable_leaked(ctx: &Ctx, state: &mut ScanState, leak: &LeakedKey) -> bool {
    if !state.acted_on.insert(leak.key_id) {
        return false;
    }
    let id = leak.key_id.to_string();
    if leak.kind != KeyKind::General {
        note(&format!(
            "{id} is a {} key: only general keys can be disabled; delete it (apikeys delete {id}) \
             or rotate it (apikeys rotate {id} --grace 0s)",
            leak.kind
        ));
        return false;
    }
    if leak.state != apikeys::LeakState::Active {
        return false;
    }
    let Some(actor) = &ctx.actor else {
        return false;
    };
    match ctx.keyring.disable(actor, &id) {
        Ok(_) => {
            note(&format!("disabled {id}"));
            true
        }
        Err(e) => {
            scan_error(state, format!("could not disable {id}: {e}"));
            false
        }
    }
}
