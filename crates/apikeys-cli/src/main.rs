//! `apikeys`: the command line of the `apikeys` library. Every command is
//! described in docs/cli.md; `apikeys --help` lists them.
//!
//! Errors are one line on standard error (`apikeys: error: …`), never a
//! panic's message or a backtrace, and never a key: every message goes
//! through [`redact`] on its way out.

mod cli;
mod commands;
mod db;
mod output;
mod time;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

/// The status of a command that failed.
pub(crate) const EXIT_ERROR: u8 = 2;

/// How a command failed: its exit status, and what to say (nothing for a
/// quiet end, such as a closed output pipe).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: Option<String>,
}

impl Failure {
    /// An error: status 2 and this one-line message.
    pub(crate) fn error(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_ERROR,
            message: Some(message.into()),
        }
    }

    /// An end with this status and nothing to say.
    pub(crate) fn quiet(code: u8) -> Failure {
        Failure {
            code,
            message: None,
        }
    }
}

impl From<apikeys::Error> for Failure {
    fn from(e: apikeys::Error) -> Failure {
        // The library's messages never hold a key; they name the rule or field.
        Failure::error(e.to_string())
    }
}

/// `text` on one line, with every run of `[A-Za-z0-9_+-]` that is or holds
/// something shaped like a key (any kind, no context needed) replaced by
/// `(redacted)`. Every message goes through it, so that a key typed where
/// something else was expected is never repeated.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let key_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+');
    for c in text.chars() {
        if key_char(c) {
            run.push(c);
        } else {
            out.push_str(redact_run(&run));
            run.clear();
            out.push(if c.is_control() { ' ' } else { c });
        }
    }
    out.push_str(redact_run(&run));
    out
}

/// A run of `[A-Za-z0-9_+-]`, or `(redacted)` when it is a key, or when a
/// piece between its `+` signs is one (with a `u+` or `s+` prefix before it
/// or not).
fn redact_run(run: &str) -> &str {
    // This program's own words that happen to have a general key's shape.
    const OURS: [&str; 2] = [crate::db::DATABASE_ENV, "advanced_permissions"];
    let is_key = |s: &str| apikeys::KeyKind::parse(s).is_ok() && !OURS.contains(&s);
    if is_key(run) {
        return "(redacted)";
    }
    let mut at: usize = 0;
    for piece in run.split('+') {
        // The piece with the `u+`/`s+` before it, when there is one.
        let with_prefix = at
            .checked_sub(2)
            .filter(|&p| matches!(run.as_bytes()[p], b'u' | b's'))
            .map(|p| &run[p..at + piece.len()]);
        if is_key(piece) || with_prefix.is_some_and(is_key) {
            return "(redacted)";
        }
        at += piece.len() + 1;
    }
    run
}

fn main() -> ExitCode {
    // Whatever happens, no panic message or backtrace reaches the user: one line instead.
    std::panic::set_hook(Box::new(|_| {
        let _ = writeln!(
            std::io::stderr(),
            "apikeys: internal error (a bug in apikeys; nothing about keys was printed)"
        );
    }));
    let code = std::panic::catch_unwind(run).unwrap_or(EXIT_ERROR);
    ExitCode::from(code)
}

fn run() -> u8 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(f) => {
            if let Some(m) = &f.message {
                let _ = writeln!(std::io::stderr(), "apikeys: error: {}", redact(m));
            }
            f.code
        }
    }
}

/// clap's answer for `--help`, `--version`, or bad usage: help and version
/// as clap prints them; an error as one line, with where to look.
fn usage_error(e: &clap::Error) -> u8 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = writeln!(
                std::io::stderr(),
                "apikeys: error: a command is needed (see 'apikeys --help')"
            );
            EXIT_ERROR
        }
        _ => {
            // The error's first paragraph, on one line; the usage and tips after it are left out.
            let rendered = e.render().to_string();
            let said: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let said = said.join(" ");
            let first = said.strip_prefix("error: ").unwrap_or(&said);
            let _ = writeln!(
                std::io::stderr(),
                "apikeys: error: {} (see 'apikeys --help')",
                redact(first)
            );
            EXIT_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_every_key_shape_and_keeps_the_rest() {
        let user = "u+aB3dE6gH9jK2mN5pQ8";
        let general = "y_NbAkKc66ryYTWUXYEu";
        let hex = "0123456789abcdef0123456789abcdef";
        let text = format!("unexpected argument '{user}' found; {general}, {hex}\nnext");
        let r = redact(&text);
        assert_eq!(
            r,
            "unexpected argument '(redacted)' found; (redacted), (redacted) next"
        );
        assert_eq!(
            redact("no key P0123456789ABC here"),
            "no key P0123456789ABC here"
        );
        assert_eq!(redact("é ü"), "é ü");
        // Behind a diff's '+', glued to another word by '+', or as a piece of a run.
        for hidden in [
            format!("+{user}"),
            format!("a+{user}+b"),
            format!("{general}+"),
            format!("x+{hex}"),
        ] {
            assert_eq!(redact(&format!("'{hidden}'")), "'(redacted)'", "{hidden}");
        }
        assert_eq!(
            redact("unexpected argument '--advanced-permission'"),
            "unexpected argument '--advanced-permission'"
        );
        assert_eq!(
            redact("set APIKEYS_DATABASE_URL"),
            "set APIKEYS_DATABASE_URL"
        );
    }
}
