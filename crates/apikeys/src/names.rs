//! String forms of the public enums, decided once here for all three
//! languages: each has `as_str` (its snake_case name, as serialized) and
//! `FromStr`, which accepts exactly those names and refuses anything else
//! with [`Error::InvalidInput`](crate::Error) naming the field and the names
//! it accepts. The bindings convert with these, never with tables of their own.

/// `FromStr` for an enum with `ALL` and `as_str`: exact names only.
macro_rules! from_name {
    ($t:ty, $field:literal) => {
        impl ::std::str::FromStr for $t {
            type Err = $crate::Error;
            fn from_str(s: &str) -> ::std::result::Result<$t, $crate::Error> {
                <$t>::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<String> = <$t>::ALL
                            .iter()
                            .map(|v| format!("'{}'", v.as_str()))
                            .collect();
                        $crate::Error::invalid(
                            $field,
                            format!("must be one of {}", names.join(", ")),
                        )
                    })
            }
        }
    };
}

pub(crate) use from_name;

#[cfg(test)]
mod tests {
    use crate::audit::AuditAction;
    use crate::key::KeyKind;
    use crate::policy::Action;
    use crate::ratelimit::LimitClass;
    use crate::record::{AccessLevel, ApiVersion};
    use crate::role::Role;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr<Err = crate::Error>,
        T: AsName,
    {
        for v in all {
            assert_eq!(v.name().parse::<T>().unwrap(), *v);
        }
        for bad in ["", " ", "GENERAL", "x", "general ", "user_token\0"] {
            if all.iter().any(|v| v.name() == bad) {
                continue;
            }
            let e = bad.parse::<T>().unwrap_err();
            assert_eq!(e.http_status(), 400, "{bad:?}");
            assert!(e.to_string().contains("must be one of"), "{e}");
        }
    }

    trait AsName {
        fn name(&self) -> &'static str;
    }
    macro_rules! as_name {
        ($($t:ty),*) => {$(impl AsName for $t { fn name(&self) -> &'static str { self.as_str() } })*};
    }
    as_name!(
        KeyKind,
        AccessLevel,
        ApiVersion,
        LimitClass,
        AuditAction,
        Action
    );

    #[test]
    fn every_enum_name_round_trips_and_nothing_else_parses() {
        round_trips(&KeyKind::ALL);
        round_trips(&AccessLevel::ALL);
        round_trips(&ApiVersion::ALL);
        round_trips(&LimitClass::ALL);
        round_trips(&AuditAction::ALL);
        round_trips(&Action::ALL);
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
    }
}
