//! The axum mount (feature `router`): every path and method goes to
//! [`Management::handle`], off the async workers when the keyring may block.

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Request};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};

use super::{MAX_BODY_BYTES, Management, error::Failure, failure};

impl Management {
    /// An axum `Router` answering every path under where it is nested
    /// (`Router::new().nest("/admin/keys", management.router(actor))`).
    ///
    /// `actor` says who is logged in, from the request's head (a session
    /// cookie, a header set by an authenticating proxy …); `None` answers
    /// 401. Bodies are read up to [`MAX_BODY_BYTES`] (413 past it). When the
    /// keyring may block, each call runs in `spawn_blocking`. The page's
    /// links follow the path the router was nested at (axum's `OriginalUri`),
    /// so [`Management::mount_path`] is not needed here.
    pub fn router<F>(self, actor: F) -> Router
    where
        F: Fn(&http::request::Parts) -> Option<apikeys::Actor> + Clone + Send + Sync + 'static,
    {
        let handler = move |request: Request| {
            let this = self.clone();
            let actor = actor.clone();
            async move { this.serve(&actor, request).await }
        };
        // `/` and every path below, also when nested (axum matches a nested
        // router's fallback only under its prefix's own routes).
        Router::new()
            .route("/", axum::routing::any(handler.clone()))
            .route("/{*rest}", axum::routing::any(handler.clone()))
            .fallback(handler)
    }

    async fn serve<F>(&self, actor: &F, request: Request) -> Response
    where
        F: Fn(&http::request::Parts) -> Option<apikeys::Actor>,
    {
        let (parts, body) = request.into_parts();
        let who = actor(&parts);
        let mount = parts.extensions.get::<OriginalUri>().and_then(|o| {
            // Nested at `/admin/keys`, `/admin/keys` itself arrives as `/`.
            let inner = parts.uri.path();
            o.path()
                .strip_suffix(inner)
                .or((inner == "/").then(|| o.path()))
                .map(str::to_owned)
        });
        let bytes = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(c) => c.to_bytes().to_vec(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return into_axum(failure(&Failure::too_large(MAX_BODY_BYTES)));
            }
            Err(_) => return into_axum(failure(&Failure::bad("the body could not be read"))),
        };
        let request = http::Request::from_parts(parts, bytes);
        let res = if self.may_block() {
            let this = self.clone();
            match tokio::task::spawn_blocking(move || {
                this.handle_at(who.as_ref(), request, mount.as_deref())
            })
            .await
            {
                Ok(r) => r,
                Err(_) => failure(&Failure::internal()),
            }
        } else {
            self.handle_at(who.as_ref(), request, mount.as_deref())
        };
        into_axum(res)
    }
}

fn into_axum(res: http::Response<Vec<u8>>) -> Response {
    res.map(Body::from).into_response()
}
