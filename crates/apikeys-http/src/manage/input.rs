//! Reading what a caller sends: a JSON body of known fields, a query
//! string. Messages name the field that is wrong and never echo a value
//! (a key pasted into the wrong field must not come back).

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::error::Failure;

/// How a field is named in a message: its name when it is a plain, short
/// identifier that is not shaped like a key; else "a field".
fn field_name(name: &str) -> Cow<'static, str> {
    let plain = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'[' || b == b']'
        })
        && apikeys::KeyKind::parse(name).is_err();
    if plain {
        Cow::Owned(format!("'{name}'"))
    } else {
        Cow::Borrowed("a field")
    }
}

/// A JSON object's fields, taken one by one; the rest are unknown.
pub(crate) struct Fields {
    map: Map<String, Value>,
    /// Where these fields are, for messages (`api_key.`).
    at: &'static str,
}

impl Fields {
    /// The body as `{"<wrapper>": {…}}`; an empty body is an empty object
    /// when `empty_ok`.
    pub(crate) fn wrapped(
        body: &[u8],
        wrapper: &'static str,
        empty_ok: bool,
    ) -> Result<Self, Failure> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return if empty_ok {
                Ok(Fields {
                    map: Map::new(),
                    at: wrapper,
                })
            } else {
                Err(Failure::bad(format!(
                    "the body must be a JSON object {{\"{wrapper}\": {{…}}}}"
                )))
            };
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            Failure::bad(format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(mut top) = value else {
            return Err(Failure::bad("the body must be a JSON object"));
        };
        let inner = top.remove(wrapper);
        if let Some(k) = top.keys().next() {
            return Err(Failure::bad(format!("unknown field {}", field_name(k))));
        }
        match inner {
            None if empty_ok => Ok(Fields {
                map: Map::new(),
                at: wrapper,
            }),
            None => Err(Failure::bad(format!("the body must hold '{wrapper}'"))),
            Some(Value::Object(map)) => Ok(Fields { map, at: wrapper }),
            Some(_) => Err(Failure::bad(format!("'{wrapper}' must be an object"))),
        }
    }

    fn wrong(&self, name: &str, what: &str) -> Failure {
        Failure::bad(format!("'{}.{name}' must be {what}", self.at))
    }

    /// An optional string field.
    pub(crate) fn string(&mut self, name: &str) -> Result<Option<String>, Failure> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.wrong(name, "a string")),
        }
    }

    /// An optional boolean field.
    pub(crate) fn boolean(&mut self, name: &str) -> Result<Option<bool>, Failure> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(self.wrong(name, "true or false")),
        }
    }

    /// An optional whole number field, at most `max`.
    pub(crate) fn number(&mut self, name: &str, max: u64) -> Result<Option<u64>, Failure> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if v <= max => Ok(Some(v)),
                _ => Err(self.wrong(name, &format!("a whole number from 0 to {max}"))),
            },
            Some(_) => Err(self.wrong(name, "a number")),
        }
    }

    /// An optional list of strings.
    pub(crate) fn strings(&mut self, name: &str) -> Result<Option<Vec<String>>, Failure> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(self.wrong(name, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(self.wrong(name, "a list of strings")),
        }
    }

    /// Refuse any field not taken.
    pub(crate) fn done(self) -> Result<(), Failure> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(Failure::bad(format!(
                "unknown field {} in '{}'",
                field_name(k),
                self.at
            ))),
        }
    }
}

/// A query string's pairs, percent-decoded; `name[]` and `name` are the same name.
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(query: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| {
                let k = k
                    .strip_suffix("[]")
                    .map_or_else(|| k.to_string(), str::to_owned);
                (k, v.into_owned())
            })
            .collect();
        Query { pairs }
    }

    /// Refuse names this endpoint does not know.
    pub(crate) fn only(&self, known: &[&str]) -> Result<(), Failure> {
        match self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, _)) => Err(Failure::bad(format!("unknown parameter {}", field_name(k)))),
        }
    }

    /// The one value of `name`, if given (given twice: refused).
    pub(crate) fn one(&self, name: &str) -> Result<Option<&str>, Failure> {
        let mut it = self.pairs.iter().filter(|(k, _)| k == name);
        let first = it.next().map(|(_, v)| v.as_str());
        if it.next().is_some() {
            return Err(Failure::bad(format!("'{name}' given more than once")));
        }
        Ok(first)
    }

    /// Every value of `name` (`name[]=a&name[]=b`, or `name=a,b`).
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// A whole number from `min` to `max`.
    pub(crate) fn number(
        &self,
        name: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<usize>, Failure> {
        match self.one(name)? {
            None => Ok(None),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Failure::bad(format!(
                    "'{name}' must be a whole number from {min} to {max}"
                ))),
            },
        }
    }

    /// `true` or `false`.
    pub(crate) fn boolean(&self, name: &str) -> Result<Option<bool>, Failure> {
        match self.one(name)? {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(Failure::bad(format!("'{name}' must be true or false"))),
        }
    }
}
