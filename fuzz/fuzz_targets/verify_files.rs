//! Any bytes as the files `shipit verify` reads from a release folder: checksum lines (each
//! named path made a safe relative path), `.minisig` signatures and `.pub` keys. Parsing must
//! never panic, and no accepted path may leave the folder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.lines() {
        if let Some((_, name)) = shipit::checksum::parse_line(line)
            && let Ok(path) = shipit::relpath::RelPath::new(name)
        {
            let path = path.as_str();
            assert!(!path.starts_with('/') && !path.split('/').any(|c| c == ".." || c.is_empty()));
        }
    }
    if let Ok(signature) = shipit::minisign::Signature::from_text(text) {
        let _ = signature.trusted_comment();
        let _ = signature.to_text();
    }
    let _ = shipit::minisign::PublicKey::from_text(text);
});
