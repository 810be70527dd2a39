//! The limits: [`Limit`] (requests per window), the [`LimitClass`] a key is
//! counted in, and the [`RateLimits`] table of defaults and per-account and
//! per-key overrides, which says which [`RateBucket`] a request is counted in.

use std::time::Duration;

use hashbrown::HashMap;

use crate::error::{Error, Result};
use crate::key::KeyKind;
use crate::record::{KeyId, KeyRecord};

/// A limit: `requests` per `window`. Made only by [`Limit::new`] or
/// [`Limit::per_minute`], which refuse what no limiter could honour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limit {
    pub(super) requests: u32,
    pub(super) window_ms: u32,
}

impl Limit {
    /// The longest window accepted: 31 days (a monthly budget still fits).
    pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 86_400);

    /// `requests` per `window`. The window is counted in whole milliseconds (a
    /// fraction of one is dropped).
    ///
    /// Fails with [`Error::InvalidInput`] (field `requests` or `window`) for zero
    /// requests, a window under 1 ms, or one longer than [`Limit::MAX_WINDOW`].
    pub fn new(requests: u32, window: Duration) -> Result<Limit> {
        if requests == 0 {
            return Err(Error::invalid(
                "requests",
                "must be at least 1 (to refuse everything, disable or delete the key)".to_owned(),
            ));
        }
        if window < Duration::from_millis(1) {
            return Err(Error::invalid(
                "window",
                format!("must be at least 1 ms, got {window:?}"),
            ));
        }
        if window > Limit::MAX_WINDOW {
            return Err(Error::invalid(
                "window",
                format!("must be at most 31 days, got {window:?}"),
            ));
        }
        Ok(Limit {
            requests,
            // At most 31 days: 2,678,400,000 ms fits a u32.
            window_ms: window.as_millis() as u32,
        })
    }

    /// `requests` per minute. Fails like [`Limit::new`] for zero requests.
    pub fn per_minute(requests: u32) -> Result<Limit> {
        Limit::new(requests, Duration::from_secs(60))
    }

    /// PagerDuty's numbers, known to be valid.
    const fn per_minute_const(requests: u32) -> Limit {
        Limit {
            requests,
            window_ms: 60_000,
        }
    }

    /// Requests admitted per window (at least 1).
    pub const fn requests(self) -> u32 {
        self.requests
    }

    /// The window (whole milliseconds, 1 ms to [`Limit::MAX_WINDOW`]).
    pub const fn window(self) -> Duration {
        Duration::from_millis(self.window_ms as u64)
    }
}

/// The four things a limit applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitClass {
    /// Each general access key.
    GeneralKey,
    /// Each user, across all of their user tokens.
    User,
    /// Each account, across all of its scoped tokens.
    ScopedAccount,
    /// Each integration or routing key.
    EventsKey,
}

crate::names::from_name!(LimitClass, "limit_class");

impl LimitClass {
    /// The snake_case name: `"general_key"`, `"user"`, `"scoped_account"`, `"events_key"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitClass::GeneralKey => "general_key",
            LimitClass::User => "user",
            LimitClass::ScopedAccount => "scoped_account",
            LimitClass::EventsKey => "events_key",
        }
    }

    /// Every class, in declaration order.
    pub const ALL: [LimitClass; 4] = [
        LimitClass::GeneralKey,
        LimitClass::User,
        LimitClass::ScopedAccount,
        LimitClass::EventsKey,
    ];

    /// The class a key of `kind` is counted in.
    pub const fn of(kind: KeyKind) -> LimitClass {
        match kind {
            KeyKind::General => LimitClass::GeneralKey,
            KeyKind::UserToken => LimitClass::User,
            KeyKind::Scoped => LimitClass::ScopedAccount,
            KeyKind::Integration | KeyKind::Routing => LimitClass::EventsKey,
        }
    }

    const fn index(self) -> usize {
        match self {
            LimitClass::GeneralKey => 0,
            LimitClass::User => 1,
            LimitClass::ScopedAccount => 2,
            LimitClass::EventsKey => 3,
        }
    }
}

/// Which limit applies to which key: defaults per class, then overrides per
/// account and per key (a key's override wins over its account's, which wins
/// over the default). `None` means unlimited.
///
/// Everything set can be read back: [`RateLimits::limit`] for the defaults,
/// [`RateLimits::account_limit`] / [`RateLimits::account_limits`] and
/// [`RateLimits::key_limit`] / [`RateLimits::key_limits`] for the overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateLimits {
    defaults: [Option<Limit>; 4],
    accounts: HashMap<String, [Option<Option<Limit>>; 4]>,
    keys: HashMap<KeyId, Option<Limit>>,
}

impl RateLimits {
    /// No limits at all (add some with the `with_…` methods).
    pub fn none() -> RateLimits {
        RateLimits::default()
    }

    /// PagerDuty's limits (see the module docs).
    pub fn pagerduty() -> RateLimits {
        RateLimits::none()
            .with_limit(LimitClass::GeneralKey, Some(Limit::per_minute_const(960)))
            .with_limit(LimitClass::User, Some(Limit::per_minute_const(960)))
            .with_limit(
                LimitClass::ScopedAccount,
                Some(Limit::per_minute_const(960)),
            )
            .with_limit(LimitClass::EventsKey, Some(Limit::per_minute_const(120)))
    }

    /// Set the default limit of a class (`None`: unlimited).
    pub fn with_limit(mut self, class: LimitClass, limit: Option<Limit>) -> RateLimits {
        self.defaults[class.index()] = limit;
        self
    }

    /// Set one account's limit for a class (`None`: unlimited for that account).
    pub fn with_account_limit(
        mut self,
        account: &str,
        class: LimitClass,
        limit: Option<Limit>,
    ) -> RateLimits {
        self.accounts.entry_ref(account).or_insert([None; 4])[class.index()] = Some(limit);
        self
    }

    /// Set one key's limit (`None`: unlimited). For user tokens and scoped
    /// tokens this sets the limit of the bucket the key counts in (its owner,
    /// its account) whenever this key is the one used.
    pub fn with_key_limit(mut self, key: KeyId, limit: Option<Limit>) -> RateLimits {
        self.keys.insert(key, limit);
        self
    }

    /// The default limit of a class (`None`: unlimited).
    pub fn limit(&self, class: LimitClass) -> Option<Limit> {
        self.defaults[class.index()]
    }

    /// The override set for one account and class: `None` if there is none (the
    /// default applies), `Some(None)` if the account was made unlimited.
    pub fn account_limit(&self, account: &str, class: LimitClass) -> Option<Option<Limit>> {
        self.accounts.get(account).and_then(|a| a[class.index()])
    }

    /// Every account override, as `(account, class, limit)`, sorted by account
    /// then class (`None`: that account is unlimited in that class).
    pub fn account_limits(&self) -> Vec<(&str, LimitClass, Option<Limit>)> {
        let mut v: Vec<_> = self
            .accounts
            .iter()
            .flat_map(|(account, set)| {
                LimitClass::ALL
                    .into_iter()
                    .filter_map(move |c| set[c.index()].map(|l| (account.as_str(), c, l)))
            })
            .collect();
        v.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        v
    }

    /// The override set for one key: `None` if there is none, `Some(None)` if
    /// the key was made unlimited.
    pub fn key_limit(&self, key: KeyId) -> Option<Option<Limit>> {
        self.keys.get(&key).copied()
    }

    /// Every key override, as `(key id, limit)`, sorted by key id (`None`:
    /// that key is unlimited).
    pub fn key_limits(&self) -> Vec<(KeyId, Option<Limit>)> {
        let mut v: Vec<_> = self.keys.iter().map(|(k, l)| (*k, *l)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// The limit that applies to `record`, and the bucket it is counted in.
    #[inline(always)]
    pub fn applicable<'r>(&self, record: &'r KeyRecord) -> Option<(RateBucket<'r>, Limit)> {
        let class = LimitClass::of(record.kind);
        let mut limit = self.defaults[class.index()];
        if !self.accounts.is_empty() {
            if let Some(Some(l)) = self
                .accounts
                .get(&*record.account)
                .map(|a| a[class.index()])
            {
                limit = l;
            }
        }
        if !self.keys.is_empty() {
            if let Some(l) = self.keys.get(&record.id) {
                limit = *l;
            }
        }
        let limit = limit?;
        let bucket = match class {
            LimitClass::GeneralKey | LimitClass::EventsKey => RateBucket::Key(record.id),
            LimitClass::User => RateBucket::User {
                account: &record.account,
                user: record.owner.as_deref().unwrap_or(""),
            },
            LimitClass::ScopedAccount => RateBucket::Account(&record.account),
        };
        Some((bucket, limit))
    }
}

/// What a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateBucket<'a> {
    /// One key.
    Key(KeyId),
    /// One user of an account.
    User {
        /// The account.
        account: &'a str,
        /// The user.
        user: &'a str,
    },
    /// One account.
    Account(&'a str),
}

impl RateBucket<'_> {
    /// A name for the bucket, usable as a key in a shared store:
    /// `k:<key id>`, `u:<len>:<account>:<user>`, `a:<account>`.
    pub fn name(&self) -> String {
        match self {
            RateBucket::Key(id) => format!("k:{id}"),
            // The account's length makes the split unambiguous whatever the ids hold.
            RateBucket::User { account, user } => format!("u:{}:{account}:{user}", account.len()),
            RateBucket::Account(a) => format!("a:{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_zero_requests_and_absurd_windows() {
        for (requests, window, field) in [
            (0, Duration::from_secs(60), "requests"),
            (10, Duration::ZERO, "window"),
            (10, Duration::from_micros(999), "window"),
            (10, Limit::MAX_WINDOW + Duration::from_millis(1), "window"),
            (10, Duration::MAX, "window"),
        ] {
            match Limit::new(requests, window) {
                Err(Error::InvalidInput { field: f, reason }) => {
                    assert_eq!(f, field, "{requests} per {window:?}: {reason}")
                }
                r => panic!("{requests} per {window:?}: {r:?}"),
            }
        }
        assert!(matches!(
            Limit::per_minute(0),
            Err(Error::InvalidInput {
                field: "requests",
                ..
            })
        ));
    }

    #[test]
    fn limits_keep_whole_milliseconds_within_range() {
        let l = Limit::new(1, Duration::from_millis(1)).unwrap();
        assert_eq!((l.requests(), l.window()), (1, Duration::from_millis(1)));
        let l = Limit::new(u32::MAX, Limit::MAX_WINDOW).unwrap();
        assert_eq!((l.requests(), l.window()), (u32::MAX, Limit::MAX_WINDOW));
        let l = Limit::new(5, Duration::from_micros(1_500)).unwrap();
        assert_eq!(l.window(), Duration::from_millis(1));
        assert_eq!(
            Limit::per_minute(960).unwrap(),
            Limit::per_minute_const(960)
        );
    }

    #[test]
    fn every_override_reads_back() {
        let five = Limit::per_minute(5).unwrap();
        let k1 = KeyId::from_u64(1);
        let k2 = KeyId::from_u64(2);
        let k3 = KeyId::from_u64(3);
        let l = RateLimits::pagerduty()
            .with_limit(LimitClass::EventsKey, None)
            .with_account_limit("globex", LimitClass::User, Some(five))
            .with_account_limit("acme", LimitClass::ScopedAccount, None)
            .with_account_limit("acme", LimitClass::GeneralKey, Some(five))
            .with_key_limit(k2, None)
            .with_key_limit(k1, Some(five));
        assert_eq!(l.limit(LimitClass::EventsKey), None);
        assert_eq!(l.limit(LimitClass::User), Limit::per_minute(960).ok());
        assert_eq!(
            l.account_limit("acme", LimitClass::GeneralKey),
            Some(Some(five))
        );
        assert_eq!(
            l.account_limit("acme", LimitClass::ScopedAccount),
            Some(None)
        );
        assert_eq!(l.account_limit("acme", LimitClass::User), None);
        assert_eq!(l.account_limit("initech", LimitClass::User), None);
        assert_eq!(
            l.account_limits(),
            vec![
                ("acme", LimitClass::GeneralKey, Some(five)),
                ("acme", LimitClass::ScopedAccount, None),
                ("globex", LimitClass::User, Some(five)),
            ]
        );
        assert_eq!(l.key_limit(k1), Some(Some(five)));
        assert_eq!(l.key_limit(k2), Some(None));
        assert_eq!(l.key_limit(k3), None);
        assert_eq!(l.key_limits(), vec![(k1, Some(five)), (k2, None)]);
        assert!(RateLimits::none().account_limits().is_empty());
        assert!(RateLimits::none().key_limits().is_empty());
    }

    #[test]
    fn names_are_unambiguous() {
        let a = RateBucket::User {
            account: "a:b",
            user: "c",
        }
        .name();
        let b = RateBucket::User {
            account: "a",
            user: "b:c",
        }
        .name();
        assert_ne!(a, b);
    }
}
