//! Rust endpoints mounted in Node (`apikeys/express`'s `management` and
//! `secretScanning`): the JavaScript half (`endpoints.js`) reads a request's
//! parts off node:http and writes back the `[status, headers, body]` answered
//! here. Every rule, route and answer is the endpoint's Rust code
//! (`apikeys_http::mount`); this module only converts.
//!
//! - An endpoint travels to JavaScript as an opaque `External`; the functions
//!   here are static, underscored and left out of the typings (not public API).
//! - `_endpointHandle` answers on the JavaScript thread; `_endpointHandleAsync`
//!   on libuv's thread pool, for an endpoint that may block (a durable store):
//!   `endpoints.js` picks by `mayBlock`.
//! - node:http gives header values and the URL as Latin-1 strings (one char
//!   per byte received): they are turned back into those bytes here. A char
//!   above U+00FF (never from a socket) is passed on as UTF-8, and a lone
//!   surrogate (napi turns it into U+FFFD) likewise: the Rust side refuses what
//!   it does not accept, with PagerDuty's body, never a crash.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use apikeys_http::mount::{self, Answer, Endpoint, Parts};
use apikeys_http::{Management, SecretScanning};
use napi::bindgen_prelude::{AsyncTask, Buffer, External};
use napi::{Env, Error, Result, Task};
use napi_derive::napi;

use crate::keyring::Keyring;
use crate::types::Actor;

/// A mounted endpoint, as JavaScript holds it.
pub type Mounted = Arc<dyn Endpoint>;

/// `[status, [name, value, name, value, …], body]`.
type JsAnswer = (u32, Vec<String>, Buffer);

/// A string node:http made of bytes one char each (Latin-1) back into them.
fn latin1(s: &str) -> Vec<u8> {
    if s.is_ascii() {
        return s.as_bytes().to_vec();
    }
    if s.chars().all(|c| u32::from(c) <= 0xff) {
        return s.chars().map(|c| c as u8).collect();
    }
    s.as_bytes().to_vec()
}

fn to_js(a: Answer) -> JsAnswer {
    let mut headers = Vec::with_capacity(a.headers.len() * 2);
    for (name, value) in a.headers {
        headers.push(name);
        // One char per byte: node:http writes a header string as Latin-1.
        headers.push(value.iter().map(|&b| char::from(b)).collect());
    }
    (u32::from(a.status), headers, a.body.into())
}

/// A request read into owned bytes, ready to move to another thread.
struct Owned {
    method: Vec<u8>,
    target: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    body: Vec<u8>,
    peer: Option<SocketAddr>,
    mount_path: Option<String>,
    actor: Option<apikeys::Actor>,
    /// The actor could not be made (an unknown role …): the host's fault, a 500.
    bad_actor: bool,
}

impl Owned {
    fn read(request: Incoming, body: &[u8], limit: usize, actor: Option<Actor>) -> Owned {
        let Incoming {
            method,
            target,
            raw_headers,
            remote_address,
            remote_port,
            mount_path,
        } = request;
        let mut headers = Vec::with_capacity(raw_headers.len() / 2);
        let mut it = raw_headers.into_iter();
        while let (Some(n), Some(v)) = (it.next(), it.next()) {
            headers.push((latin1(&n), latin1(&v)));
        }
        let peer = remote_address
            .and_then(|a| a.parse::<IpAddr>().ok())
            .zip(remote_port.and_then(|p| u16::try_from(p).ok()))
            .map(SocketAddr::from);
        let (actor, bad_actor) = match actor.map(|a| crate::keyring::core_actor(&a)) {
            None => (None, false),
            Some(Ok(a)) => (Some(a), false),
            Some(Err(_)) => (None, true),
        };
        Owned {
            method: latin1(&method),
            target: latin1(&target),
            headers,
            // What the endpoint reads, and one byte more (it refuses the rest).
            body: body[..body.len().min(limit.saturating_add(1))].to_vec(),
            peer,
            mount_path: mount_path.filter(|m| !m.is_empty()),
            actor,
            bad_actor,
        }
    }

    fn serve(self, endpoint: &dyn Endpoint) -> Answer {
        if self.bad_actor {
            return mount::internal_error();
        }
        let parts = Parts {
            method: &self.method,
            target: &self.target,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_slice(), v.as_slice()))
                .collect(),
            body: self.body,
            peer: self.peer,
            mount_path: self.mount_path.as_deref(),
        };
        mount::serve(endpoint, self.actor.as_ref(), parts)
    }
}

/// A request's head as `endpoints.js` reads it off node:http.
struct Incoming {
    /// `req.method`.
    method: String,
    /// The URL below the mount point (`req.url` under Express).
    target: String,
    /// `req.rawHeaders`: name, value, name, value …
    raw_headers: Vec<String>,
    /// `req.socket.remoteAddress`.
    remote_address: Option<String>,
    /// `req.socket.remotePort`.
    remote_port: Option<u32>,
    /// Where the router mounted the endpoint (`req.baseUrl`).
    mount_path: Option<String>,
}

/// One request answered on libuv's thread pool.
pub struct Serve {
    endpoint: Mounted,
    request: Option<Owned>,
}

impl Task for Serve {
    type Output = Answer;
    type JsValue = JsAnswer;

    fn compute(&mut self) -> Result<Answer> {
        let request = self
            .request
            .take()
            .ok_or_else(|| Error::from_reason("this request was already answered"))?;
        let endpoint = &*self.endpoint;
        // A panic must not unwind into libuv's thread pool: answer a 500.
        Ok(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| request.serve(endpoint)))
                .unwrap_or_else(|_| mount::internal_error()),
        )
    }

    fn resolve(&mut self, _env: Env, output: Answer) -> Result<JsAnswer> {
        Ok(to_js(output))
    }
}

#[napi]
impl Keyring {
    /// `[mayBlock, bodyLimit]` of a mounted endpoint.
    #[napi(catch_unwind, js_name = "_endpointInfo", skip_typescript)]
    pub fn endpoint_info(endpoint: &External<Mounted>) -> (bool, f64) {
        (endpoint.may_block(), endpoint.body_limit() as f64)
    }

    /// The answer when the host's actor function failed: 500, nothing of the cause.
    #[napi(catch_unwind, js_name = "_endpointInternalError", skip_typescript)]
    pub fn endpoint_internal_error() -> JsAnswer {
        to_js(mount::internal_error())
    }

    /// Answer one request on the JavaScript thread: its method, target (the
    /// URL below the mount point), `rawHeaders`, body (at most the limit and
    /// one byte more are kept), the peer's address and port, the mount path
    /// (`req.baseUrl`) and the actor (`null`: nobody logged in).
    #[napi(catch_unwind, js_name = "_endpointHandle", skip_typescript)]
    #[allow(clippy::too_many_arguments)]
    pub fn endpoint_handle(
        endpoint: &External<Mounted>,
        method: String,
        target: String,
        raw_headers: Vec<String>,
        body: &[u8],
        remote_address: Option<String>,
        remote_port: Option<u32>,
        mount_path: Option<String>,
        actor: Option<Actor>,
    ) -> JsAnswer {
        let head = Incoming {
            method,
            target,
            raw_headers,
            remote_address,
            remote_port,
            mount_path,
        };
        let request = Owned::read(head, body, endpoint.body_limit(), actor);
        to_js(request.serve(&***endpoint))
    }

    /// `_endpointHandle` on libuv's thread pool: a Promise of the answer.
    #[napi(catch_unwind, js_name = "_endpointHandleAsync", skip_typescript)]
    #[allow(clippy::too_many_arguments)]
    pub fn endpoint_handle_async(
        endpoint: &External<Mounted>,
        method: String,
        target: String,
        raw_headers: Vec<String>,
        body: &[u8],
        remote_address: Option<String>,
        remote_port: Option<u32>,
        mount_path: Option<String>,
        actor: Option<Actor>,
    ) -> AsyncTask<Serve> {
        let head = Incoming {
            method,
            target,
            raw_headers,
            remote_address,
            remote_port,
            mount_path,
        };
        let request = Owned::read(head, body, endpoint.body_limit(), actor);
        AsyncTask::new(Serve {
            endpoint: Arc::clone(endpoint),
            request: Some(request),
        })
    }

    /// `apikeys_http::Management` over `keyring` (`management` of
    /// `apikeys/express`): `mountPath` for a host whose router does not say
    /// where it mounted it (Express's `req.baseUrl` says, per request),
    /// `page: false` for the API alone.
    #[napi(catch_unwind, js_name = "_management", skip_typescript)]
    pub fn management(
        env: Env,
        keyring: &Keyring,
        mount_path: Option<String>,
        page: Option<bool>,
    ) -> Result<External<Mounted>> {
        let mut m = Management::new(Arc::clone(keyring.core()));
        if let Some(path) = mount_path {
            m = m
                .mount_path(&path)
                .map_err(|e| crate::error::to_js(&env, &e))?;
        }
        if page == Some(false) {
            m = m.without_page();
        }
        Ok(External::new(Arc::new(m)))
    }

    /// `apikeys_http::SecretScanning` over `keyring` (`secretScanning` of
    /// `apikeys/express`): the trusted keys as parallel lists (identifier,
    /// key bytes, whether PEM text or SPKI DER), GitHub's key list,
    /// `delete` for deleting live keys rather than disabling them, and the
    /// largest report read.
    #[napi(catch_unwind, js_name = "_secretScanning", skip_typescript)]
    #[allow(clippy::too_many_arguments)]
    pub fn secret_scanning(
        keyring: &Keyring,
        identifiers: Vec<String>,
        keys: Vec<Buffer>,
        pem: Vec<bool>,
        github_keys: Option<String>,
        delete: bool,
        max_body_bytes: Option<f64>,
    ) -> Result<External<Mounted>> {
        let invalid = |field: &str, e: &dyn std::fmt::Display| {
            Error::new(napi::Status::InvalidArg, format!("invalid {field}: {e}"))
        };
        let mut s = SecretScanning::new(Arc::clone(keyring.core()));
        if identifiers.len() != keys.len() || keys.len() != pem.len() {
            return Err(invalid("options.publicKeys", &"the lists differ in length"));
        }
        for ((id, key), is_pem) in identifiers.iter().zip(&keys).zip(&pem) {
            s = if *is_pem {
                let text = std::str::from_utf8(key)
                    .map_err(|_| invalid("options.publicKeys", &"a PEM key must be text"))?;
                s.trust_pem(id, text)
            } else {
                s.trust_der(id, key)
            }
            .map_err(|e| invalid("options.publicKeys", &e))?;
        }
        if let Some(list) = github_keys {
            s = s
                .trust_github_keys(&list)
                .map_err(|e| invalid("options.githubKeys", &e))?;
        }
        if delete {
            s = s.on_live_key(apikeys::LeakAction::Delete);
        }
        if let Some(max) = max_body_bytes {
            if !(max.is_finite() && max >= 1.0 && max.fract() == 0.0) {
                return Err(invalid(
                    "options.maxBodyBytes",
                    &"must be a positive integer",
                ));
            }
            s = s.max_body_bytes(max.min(usize::MAX as f64) as usize);
        }
        Ok(External::new(Arc::new(s)))
    }
}
