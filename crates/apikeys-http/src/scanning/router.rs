//! The receiver in axum (feature `router`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{Refused, SecretScanning, check_declared_length, refusal};

impl SecretScanning {
    /// An axum [`Router`](axum::Router) answering reports at `path` (any
    /// method reaches [`SecretScanning::handle`], which answers 405 to all
    /// but `POST`). Merge it into the application's router:
    /// `app.merge(scanning.router("/github/secret-scanning"))`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use apikeys::{Keyring, MemoryStore};
    /// use apikeys_http::SecretScanning;
    ///
    /// # fn github_keys() -> String { String::new() }
    /// let keyring = Arc::new(Keyring::new(MemoryStore::new()));
    /// // The body of GET https://api.github.com/meta/public_keys/secret_scanning.
    /// let scanning = SecretScanning::new(keyring).trust_github_keys(&github_keys())?;
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/health", axum::routing::get(|| async { "ok" }))
    ///     .merge(Arc::new(scanning).router("/github/secret-scanning"));
    /// # Ok::<(), apikeys_http::ScanningConfigError>(())
    /// ```
    ///
    /// The body is read up to the receiver's bound (a larger one, or a
    /// `Content-Length` over it, is refused with 413 without reading on);
    /// when the keyring may wait on its store ([`apikeys::Keyring::may_block`])
    /// the report is handled on tokio's blocking pool. The peer's address —
    /// a `SocketAddr` in the request's extensions, or axum's
    /// `ConnectInfo<SocketAddr>` — is kept in the audit records.
    pub fn router(self: Arc<Self>, path: &str) -> axum::Router {
        axum::Router::new().route(
            path,
            axum::routing::any(move |request: Request| {
                let scanning = self.clone();
                async move { scanning.serve(request).await }
            }),
        )
    }

    /// Answer one axum request: read the body (bounded), then
    /// [`SecretScanning::handle`], on the blocking pool when the keyring
    /// may block. For an application routing it itself.
    pub async fn serve(self: Arc<Self>, request: Request) -> Response {
        let (mut parts, body) = request.into_parts();
        if let Some(axum::extract::ConnectInfo(peer)) = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .copied()
        {
            parts.extensions.get_or_insert_with(|| peer);
        }
        if let Some(declared) = parts.headers.get(CONTENT_LENGTH) {
            if let Err(refused) = check_declared_length(declared, self.max_body) {
                return into_axum(refusal(&refused));
            }
        }
        let bytes = match Limited::new(body, self.max_body).collect().await {
            Ok(c) => c.to_bytes().to_vec(),
            Err(e) if e.is::<LengthLimitError>() => {
                return into_axum(refusal(&Refused::TooLarge(self.max_body)));
            }
            Err(_) => return into_axum(refusal(&Refused::Unreadable)),
        };
        let request = http::Request::from_parts(parts, bytes);
        let answer = if self.keyring.may_block() {
            let scanning = self.clone();
            match tokio::task::spawn_blocking(move || scanning.handle(request)).await {
                Ok(answer) => answer,
                Err(_) => refusal(&Refused::Internal),
            }
        } else {
            self.handle(request)
        };
        into_axum(answer)
    }
}

fn into_axum(res: http::Response<Vec<u8>>) -> Response {
    res.map(Body::from)
}
