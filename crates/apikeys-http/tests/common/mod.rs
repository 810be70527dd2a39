//! A server on a loopback port and a plain HTTP/1.1 client written by hand, so
//! that requests can be as broken as a test needs.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Answer {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    /// PagerDuty's error body: (code, message).
    pub fn error(&self) -> (u64, String) {
        let v = self.json();
        let e = &v["error"];
        assert_eq!(
            e.as_object().map(|o| o.len()),
            Some(2),
            "error body has exactly message and code: {v}"
        );
        (
            e["code"].as_u64().expect("numeric code"),
            e["message"].as_str().expect("string message").to_owned(),
        )
    }

    pub fn whole(&self) -> String {
        format!("{}\r\n\r\n{}", self.head, self.body)
    }
}

/// Send raw bytes (a whole request, `Connection: close`) and read the answer.
pub fn send(addr: SocketAddr, raw: &[u8]) -> Answer {
    try_send(addr, raw).expect("the server answered")
}

/// Like [`send`], `None` when the server closed the connection without a
/// readable answer.
pub fn try_send(addr: SocketAddr, raw: &[u8]) -> Option<Answer> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer and close before reading everything (an oversized
    // head or body): a failed write is not a failure; the answer is what counts.
    let _ = s.write_all(raw);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some(Answer {
        status,
        head: head.to_owned(),
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A request with the given extra header lines.
pub fn request(method: &str, path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if !body.is_empty() || method != "GET" {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// `GET path` with `Authorization: Token token=<key>`.
pub fn get(addr: SocketAddr, path: &str, key: &str) -> Answer {
    send(
        addr,
        &request(
            "GET",
            path,
            &[&format!("Authorization: Token token={key}")],
            "",
        ),
    )
}

/// `POST path` with `Authorization: Token token=<key>` and a JSON body.
pub fn post(addr: SocketAddr, path: &str, key: &str, body: &str) -> Answer {
    send(
        addr,
        &request(
            "POST",
            path,
            &[&format!("Authorization: Token token={key}")],
            body,
        ),
    )
}

/// An Events API v2 body.
pub fn event(routing_key: &str) -> String {
    serde_json::json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {"summary": "disk full", "source": "db1", "severity": "critical"}
    })
    .to_string()
}
