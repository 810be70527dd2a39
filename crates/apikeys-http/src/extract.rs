//! The axum extractor for the authenticated principal.

use apikeys::Principal;
use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;

use crate::rejection::Rejection;

/// The [`Principal`] a [`crate::RestAuthLayer`] or [`crate::EventsAuthLayer`]
/// authenticated, as an axum extractor:
///
/// ```
/// use apikeys_http::Authenticated;
///
/// async fn list(Authenticated(who): Authenticated) -> String {
///     format!("incidents of {}", who.account())
/// }
/// # let _: axum::routing::MethodRouter = axum::routing::get(list);
/// ```
///
/// On a route with no layer in front it answers 500 (a server bug, reported
/// to the client only as "an internal error occurred"); `Option<Authenticated>`
/// gives `None` there instead.
#[derive(Clone, Debug)]
pub struct Authenticated(pub Principal);

impl std::ops::Deref for Authenticated {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authenticated)
            .ok_or_else(Rejection::not_protected)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Principal>()
            .cloned()
            .map(Authenticated))
    }
}
