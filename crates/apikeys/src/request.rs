//! [`Request`]: what an authenticated call wants to do.

use crate::error::Result;
use crate::key::Api;
use crate::record::Scope;

/// An HTTP method, as far as permissions care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other method (treated as a write).
    Other,
}

impl Method {
    /// Parse a method name, ignoring ASCII case. Unknown names give [`Method::Other`].
    pub fn parse(s: &str) -> Method {
        let b = s.as_bytes();
        let is = |m: &str| b.eq_ignore_ascii_case(m.as_bytes());
        if is("GET") {
            Method::Get
        } else if is("HEAD") {
            Method::Head
        } else if is("POST") {
            Method::Post
        } else if is("PUT") {
            Method::Put
        } else if is("PATCH") {
            Method::Patch
        } else if is("DELETE") {
            Method::Delete
        } else if is("OPTIONS") {
            Method::Options
        } else {
            Method::Other
        }
    }

    /// `GET` and `HEAD` read; every other method writes.
    pub const fn is_read(self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }

    /// The method's name (`"OTHER"` for [`Method::Other`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// What a request wants: which API, for REST the method, and optionally a scope.
///
/// Without a scope a request stands for the broadest one: a read (`GET`/`HEAD`)
/// needs read access, and any other method write access, to every resource that
/// is not admin-only. With a scope, the request needs that scope; a write method
/// always needs write access, even if the scope named is a `.read` one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    api: Api,
    method: Method,
    scope: Option<Scope>,
    place: Option<Box<crate::record::UsePlace>>,
}

impl Request {
    /// A REST request with this HTTP method (any case; unknown methods count as writes).
    pub fn rest(method: &str) -> Request {
        Request {
            api: Api::Rest,
            method: Method::parse(method),
            scope: None,
            place: None,
        }
    }

    /// A REST request with an already parsed method.
    pub fn rest_method(method: Method) -> Request {
        Request {
            api: Api::Rest,
            method,
            scope: None,
            place: None,
        }
    }

    /// An Events API request (sending an event).
    pub fn events() -> Request {
        Request {
            api: Api::Events,
            method: Method::Post,
            scope: None,
            place: None,
        }
    }

    /// The same request, needing `scope` (`"incidents.write"`).
    pub fn with_scope(mut self, scope: &str) -> Result<Request> {
        self.scope = Some(Scope::parse(scope)?);
        Ok(self)
    }

    /// The same request, needing an already parsed scope.
    pub fn with_parsed_scope(mut self, scope: Scope) -> Request {
        self.scope = Some(scope);
        self
    }

    /// The same request, saying where it came from: the caller's address and
    /// the path (its query string is dropped). The key remembers the place
    /// of its last use with its last-use time (at most once a minute per
    /// key; [`KeyRecord::last_used_from`](crate::KeyRecord::last_used_from)).
    pub fn with_place(mut self, remote_address: Option<&str>, path: Option<&str>) -> Request {
        let method = self.method.as_str();
        let place = crate::record::UsePlace::new(remote_address, Some(method), path);
        self.place = Some(Box::new(place));
        self
    }

    /// Where the request came from, if it says.
    pub fn place(&self) -> Option<&crate::record::UsePlace> {
        self.place.as_deref()
    }

    /// The API.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The method (`POST` for Events requests).
    pub fn method(&self) -> Method {
        self.method
    }

    /// The scope, if one was given.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// Whether the request needs write access (a write method, or a `.write` scope).
    pub fn needs_write(&self) -> bool {
        !self.method.is_read() || self.scope.as_ref().is_some_and(Scope::is_write)
    }
}
