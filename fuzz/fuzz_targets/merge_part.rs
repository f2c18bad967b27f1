//! Any bytes as a split part's `manifest.json`, through merge planning: parsing and checking
//! it against the plan must never panic, and never accept a path outside the part.
#![no_main]

use std::collections::BTreeMap;
use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = shipit::manifest::Manifest::from_text(PathBuf::from("part"), text) else {
        return;
    };
    let owner = BTreeMap::from([("linux-x64".to_string(), "part".to_string())]);
    let planned = BTreeMap::from([
        ("linux-x64/demo".to_string(), Some("linux-x64".to_string())),
        ("demo-1.0.0-linux-x64.tar.gz".to_string(), Some("linux-x64".to_string())),
        ("NOTES.txt".to_string(), None),
    ]);
    let parts = [(PathBuf::from("part"), "part".to_string(), manifest)];
    if let Ok(checked) = shipit::merge::check_parts(&parts, &owner, &planned) {
        for item in checked {
            assert!(planned.contains_key(item.path.as_str()));
            assert!(!item.path.as_str().split('/').any(|c| c == ".." || c.is_empty()));
        }
    }
});
