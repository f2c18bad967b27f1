//! HTTP/1.1 as the test servers read and write it: request heads, bodies (length-delimited or
//! chunked), responses with GitHub's recorded headers.

use std::io::{BufRead, Write};

use serde_json::Value;

/// A request line and headers.
pub struct Head {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path with its query, as sent.
    pub path: String,
    /// Headers in the order sent.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// A header's value (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Sent with `Transfer-Encoding: chunked`.
    pub fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    }

    /// The path without its query.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }
}

/// A response: status, extra headers, body.
pub type Response = (u16, Vec<(&'static str, String)>, Vec<u8>);

pub fn read_head(reader: &mut impl BufRead) -> Option<Head> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some(Head {
        method,
        path,
        headers,
    })
}

/// Reads the body (content-length or chunked); with `limit`, stops after that many bytes.
pub fn read_body(reader: &mut impl BufRead, head: &Head, limit: Option<usize>) -> Option<Vec<u8>> {
    if head.chunked() {
        return read_chunked(reader, limit);
    }
    let length: usize = head
        .header("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let take = limit.map_or(length, |l| l.min(length));
    let mut body = vec![0; take];
    reader.read_exact(&mut body).ok()?;
    Some(body)
}

/// Reads a chunked body to its end; with `limit`, stops after the chunk that reaches it.
pub fn read_chunked(reader: &mut impl BufRead, limit: Option<usize>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut end = String::new();
            reader.read_line(&mut end).ok()?;
            return Some(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
        if limit.is_some_and(|l| body.len() >= l) {
            return Some(body);
        }
    }
}

/// Writes a response with the headers GitHub sends on every answer (from the recording).
pub fn write_response(
    writer: &mut impl Write,
    recorded: &Value,
    (status, extra, body): Response,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for name in [
        "x-github-media-type",
        "x-github-request-id",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-resource",
    ] {
        if let Some(value) = recorded[name].as_str()
            && !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    for (name, value) in &extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if status != 204 {
        head.push_str("content-type: application/json; charset=utf-8\r\n");
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    writer.write_all(head.as_bytes())?;
    writer.write_all(&body)?;
    writer.flush()
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
