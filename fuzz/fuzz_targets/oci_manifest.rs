//! Any bytes as what a registry answers: an OCI image manifest or index, an image reference,
//! a `Link` header. Parsing must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<shipit::oci::ImageManifest>(data);
    let _ = serde_json::from_slice::<shipit::oci::ImageIndex>(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = shipit::oci::reference::Reference::parse(text);
        let _ = shipit::oci::registry::next_page(text);
    }
});
