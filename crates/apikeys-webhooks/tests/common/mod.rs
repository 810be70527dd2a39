//! A real webhook receiver for the tests: an HTTP/1.1 server on
//! 127.0.0.1:0 that checks every request's Standard Webhooks signature,
//! answers as it is told (2xx, an error status, hanging past the sender's
//! timeout, closing the connection), and notes whether two requests for the
//! same `webhook-id` were ever in flight at once.

#![allow(dead_code, unreachable_pub)]

pub mod crash;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apikeys_webhooks::{SigningSecret, verify};

/// How the receiver answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behave {
    /// 204.
    Ok,
    /// This status.
    Status(u16),
    /// Read the request, answer nothing for this long, then close.
    Hang(Duration),
    /// Read the request and close the connection without answering.
    Close,
}

/// One request received.
#[derive(Clone, Debug)]
pub struct Got {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub valid: bool,
    pub answer: Behave,
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Behave>>,
    default: Mutex<Option<Behave>>,
    got: Mutex<Vec<Got>>,
    in_flight: Mutex<HashSet<String>>,
    overlaps: AtomicUsize,
    hold: Mutex<Duration>,
    stop: AtomicBool,
}

pub struct Receiver {
    pub url: String,
    pub secret_text: String,
    state: Arc<State>,
    addr: std::net::SocketAddr,
}

impl Receiver {
    /// A receiver answering 204 to everything, with a fresh secret.
    pub fn start() -> Receiver {
        let secret_text = SigningSecret::generate().unwrap();
        let secret = SigningSecret::parse(&secret_text).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        *state.default.lock().unwrap() = Some(Behave::Ok);
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (s, secret) = (s.clone(), secret.clone());
                std::thread::spawn(move || serve(conn, &s, &secret));
            }
        });
        Receiver {
            url: format!("http://{addr}/hooks"),
            secret_text,
            state,
            addr,
        }
    }

    /// Answer the next requests this way, in order, then as by default.
    pub fn script(&self, answers: &[Behave]) {
        self.state.script.lock().unwrap().extend(answers);
    }

    /// Answer this way once the script is used up.
    pub fn default(&self, b: Behave) {
        *self.state.default.lock().unwrap() = Some(b);
    }

    /// Keep each request open this long before answering (widens races).
    pub fn hold(&self, d: Duration) {
        *self.state.hold.lock().unwrap() = d;
    }

    pub fn got(&self) -> Vec<Got> {
        self.state.got.lock().unwrap().clone()
    }

    /// How many times a request came in while another one for the same
    /// `webhook-id` was still being answered.
    pub fn overlaps(&self) -> usize {
        self.state.overlaps.load(Ordering::SeqCst)
    }

    /// The ids accepted (answered 2xx), with how many times each was.
    pub fn accepted(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for g in self.got() {
            if g.answer == Behave::Ok {
                *m.entry(g.id).or_insert(0) += 1;
            }
        }
        m
    }

    /// Wait until `cond` holds of what was received, or panic after `within`.
    pub fn wait_for(&self, within: Duration, what: &str, cond: impl Fn(&[Got]) -> bool) {
        let start = Instant::now();
        loop {
            if cond(&self.got()) {
                return;
            }
            assert!(
                start.elapsed() < within,
                "waited {within:?} for {what}; received {} requests",
                self.got().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, s: &State, secret: &SigningSecret) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut headers = HashMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
    let h = |k: &str| headers.get(k).cloned().unwrap_or_default();
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let valid = verify(secret, &id, &ts, &sig, body.as_bytes(), now, 300).is_ok();
    let answer = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| s.default.lock().unwrap().unwrap_or(Behave::Ok));
    if !s.in_flight.lock().unwrap().insert(id.clone()) {
        s.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    s.got.lock().unwrap().push(Got {
        id: id.clone(),
        timestamp: ts,
        signature: sig,
        body,
        valid,
        answer,
    });
    let hold = *s.hold.lock().unwrap();
    if !hold.is_zero() {
        std::thread::sleep(hold);
    }
    let reply = |code: u16| {
        format!("HTTP/1.1 {code} X\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").into_bytes()
    };
    match answer {
        Behave::Ok => {
            s.in_flight.lock().unwrap().remove(&id);
            let _ = conn.write_all(&reply(204));
        }
        Behave::Status(c) => {
            s.in_flight.lock().unwrap().remove(&id);
            let _ = conn.write_all(&reply(c));
        }
        Behave::Hang(d) => {
            // The sender gives up at its timeout; a retry after that is not
            // a concurrent delivery.
            s.in_flight.lock().unwrap().remove(&id);
            std::thread::sleep(d);
        }
        Behave::Close => {
            s.in_flight.lock().unwrap().remove(&id);
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}
