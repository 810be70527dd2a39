//! The command line's grammar (clap).

use std::time::Duration;

use apikeys::{KeyKind, Role};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::time::parse_duration;

const ABOUT: &str = "Issue, manage and check PagerDuty-style API keys, read the audit trail, \
                     and scan files for leaked keys.";

const AFTER: &str = "\
Database: --db PATH (SQLite, default ./apikeys.db) or --db postgres://…; \
without --db, APIKEYS_DATABASE_URL. Keys digested under a pepper: set APIKEYS_PEPPER.
Acting user: --as ACCOUNT/USER/ROLE (role: owner, admin, manager, responder, observer, \
restricted_access, read_only_user, read_only_limited_user); their stored role, once \
known, is the one that counts.
Exit status: 0 done; 1 verify refused the key, or scan found live keys; 2 error.
Every command: docs/cli.md.";

#[derive(Debug, Parser)]
#[command(
    name = "apikeys",
    version,
    about = ABOUT,
    after_help = AFTER,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    /// The database: a SQLite file (default ./apikeys.db) or a postgres:// URL [env: APIKEYS_DATABASE_URL]
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub(crate) db: Option<String>,

    /// Who acts: ACCOUNT/USER/ROLE, checked against the permission matrix
    #[arg(long = "as", global = true, value_name = "ACCOUNT/USER/ROLE")]
    pub(crate) actor: Option<String>,

    /// Print JSON (one document on standard output) instead of tables
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// How long to wait for a PostgreSQL server
    #[arg(long, global = true, value_name = "DURATION", default_value = "5s", value_parser = duration)]
    pub(crate) connect_timeout: Duration,

    /// PostgreSQL only: the schema the tables are in, when the application
    /// keeps them in one of their own (PostgresOptions::schema)
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) schema: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// The account's plan: whether it has the REST API and Advanced Permissions
    #[command(subcommand)]
    Account(AccountCmd),
    /// Users' roles: user tokens act with their owner's role now
    #[command(subcommand)]
    User(UserCmd),
    /// Make a key; it is printed once, on standard output
    #[command(subcommand)]
    Create(CreateCmd),
    /// The keys of the acting user's account that they may see
    List {
        /// Only keys of this kind
        #[arg(long, value_parser = kind)]
        kind: Option<KeyKind>,
    },
    /// One key's record
    Show {
        /// The key's id (P and 13 characters)
        id: String,
    },
    /// Disable a general key: it stops working until enabled
    Disable {
        /// The key's id
        id: String,
    },
    /// Enable a disabled general key
    Enable {
        /// The key's id
        id: String,
    },
    /// Delete a key for good
    Delete {
        /// The key's id
        id: String,
    },
    /// Replace a key by a new one; the old one works on for the grace at most
    Rotate {
        /// The key's id
        id: String,
        /// How long the old key may go on working (15m, 7d, 1h30m); it stops
        /// sooner once clients have moved to the new key
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        grace: Duration,
    },
    /// End a rotation's overlap now: the old key stops working
    EndRotation {
        /// The id of the key that was rotated (the old one)
        id: String,
    },
    /// The account's audit trail, newest first
    Audit(AuditArgs),
    /// What authenticating with a key would answer now, and why
    Verify(VerifyArgs),
    /// Look for live keys in files (or standard input: -)
    Scan(ScanArgs),
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccountCmd {
    /// Change the plan (Owner or Admin)
    Set {
        /// Whether the plan has the REST API
        #[arg(long, value_enum)]
        rest_api: Option<Switch>,
        /// Whether the plan has Advanced Permissions (needed for user tokens)
        #[arg(long, value_enum)]
        advanced_permissions: Option<Switch>,
    },
    /// The plan
    Show,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UserCmd {
    /// Set a user's role (Owner or Admin; only an Owner makes or changes an Owner)
    SetRole {
        /// The user's id
        user: String,
        /// The role (owner, admin, manager, responder, observer, …)
        #[arg(value_parser = role)]
        role: Role,
    },
    /// Remove a user: their user tokens and the scoped tokens they made stop working
    Remove {
        /// The user's id
        user: String,
    },
    /// What is known of a user (oneself, or anyone for an Owner or Admin)
    Show {
        /// The user's id
        user: String,
    },
}

/// When a new key stops working.
#[derive(Debug, Args)]
pub(crate) struct Expiry {
    /// The key stops working this long from now (15m, 7d, 1h30m)
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub(crate) expires: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CreateCmd {
    /// A general access REST key for the account (Owner or Admin)
    General {
        /// What the key is for
        description: String,
        /// GET and HEAD only
        #[arg(long)]
        read_only: bool,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// A personal REST token for the acting user, acting with their role
    UserToken {
        /// What the token is for
        description: String,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// An Events API key for a service (Manager or above)
    Integration {
        /// What the key is for
        description: String,
        /// The service's id
        #[arg(long, value_name = "ID")]
        service: String,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// An Events API routing key for an event orchestration (Manager or above)
    Routing {
        /// What the key is for
        description: String,
        /// The event orchestration's id
        #[arg(long, value_name = "ID")]
        orchestration: String,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// A REST token limited to scopes, within its maker's own grants (Manager or above)
    Scoped {
        /// What the token is for
        description: String,
        /// A scope (incidents.write, services.read …); repeat, or separate with commas
        #[arg(
            long = "scope",
            value_name = "SCOPE",
            required = true,
            value_delimiter = ','
        )]
        scopes: Vec<String>,
        #[command(flatten)]
        expiry: Expiry,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// From this time on: now, a duration ago (2h, 7d), a date or a UTC time (default: 24 hours before --until)
    #[arg(long, value_name = "WHEN")]
    pub(crate) since: Option<String>,
    /// Before this time (default: now); at most 31 days after --since
    #[arg(long, value_name = "WHEN")]
    pub(crate) until: Option<String>,
    /// Only records about this key
    #[arg(long, value_name = "ID")]
    pub(crate) key: Option<String>,
    /// Only records of this acting user ("system" for plan and role changes)
    #[arg(long = "actor", value_name = "USER")]
    pub(crate) by: Option<String>,
    /// Only these actions (create, list, get, disable, enable, delete, rotate,
    /// end_rotation, set_account, set_user_role, remove_user); repeat or separate with commas
    #[arg(long = "action", value_name = "ACTION", value_delimiter = ',')]
    pub(crate) actions: Vec<String>,
    /// Records per page (default 100, at most 1000)
    #[arg(long)]
    pub(crate) limit: Option<usize>,
    /// The next page: the cursor the page before gave
    #[arg(long)]
    pub(crate) cursor: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The key, or - to read it from standard input (keeps it out of the shell's history)
    // Keys may start with '-'.
    #[arg(allow_hyphen_values = true)]
    pub(crate) token: String,
    /// The REST request's HTTP method
    #[arg(long, default_value = "GET", conflicts_with = "events")]
    pub(crate) method: String,
    /// The scope the REST request needs (incidents.write …)
    #[arg(long, conflicts_with = "events")]
    pub(crate) scope: Option<String>,
    /// Check it as an Events API request instead of a REST one
    #[arg(long)]
    pub(crate) events: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// Files or directories to scan (directories recursively, without .git);
    /// - for standard input
    #[arg(value_name = "PATH", required = true)]
    pub(crate) paths: Vec<std::path::PathBuf>,
    /// Disable every live general key found, as the acting user (--as)
    #[arg(long)]
    pub(crate) disable: bool,
}

/// `on` or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Switch {
    On,
    Off,
}

impl Switch {
    pub(crate) fn is_on(self) -> bool {
        self == Switch::On
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be more than 0s".to_owned()),
        d => Ok(d),
    }
}

fn role(s: &str) -> Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

fn kind(s: &str) -> Result<KeyKind, String> {
    s.parse::<KeyKind>().map_err(|e| e.to_string())
}
