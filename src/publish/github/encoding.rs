//! How names travel to GitHub: tags percent-encoded into paths, and the MIME type a file is
//! served with.

use std::path::Path;

/// Percent-encodes one path segment (a tag in `releases/tags/{tag}`).
pub(super) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Percent-encodes a ref name for `git/refs/tags/{ref}`, whose `/` separate its parts.
pub(super) fn encode_ref(text: &str) -> String {
    text.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The MIME type GitHub should serve a file with.
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        "application/gzip"
    } else if name.ends_with(".zip") {
        "application/zip"
    } else if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with("sums")
        || name.ends_with(".sha256")
        || name.ends_with(".sha512")
        || name.ends_with(".minisig")
        || name.ends_with(".pub")
        || name.ends_with(".txt")
    {
        "text/plain"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_and_query_encoding() {
        assert_eq!(
            content_type(Path::new("a-1.0-linux.tar.gz")),
            "application/gzip"
        );
        assert_eq!(content_type(Path::new("a.zip")), "application/zip");
        assert_eq!(content_type(Path::new("SHA256SUMS")), "text/plain");
        assert_eq!(
            content_type(Path::new("demo.exe")),
            "application/octet-stream"
        );
        assert_eq!(encode("demo 1.0+x/y"), "demo%201.0%2Bx%2Fy");
        assert_eq!(encode_ref("cli/v1.0.0+b"), "cli/v1.0.0%2Bb");
    }
}
