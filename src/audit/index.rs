//! Yanked versions, read from a registry's sparse index (`https://index.crates.io/`): one file
//! per crate, a JSON line per version with its `yanked` flag. Only crates.io packages are
//! looked up; an index that cannot be reached is one warning, not a failure, since the audit
//! must work offline.

use http::{Method, StatusCode};
use rustsec::Lockfile;

use crate::http::feed::{Feed, Upload};

use super::Warning;

/// The largest index file read (the biggest crates have a few MiB of versions).
const MAX_INDEX_FILE: usize = 32 << 20;

/// The path of a crate's file in a sparse index.
fn index_path(name: &str) -> String {
    let name = name.to_ascii_lowercase();
    match name.len() {
        1 => format!("1/{name}"),
        2 => format!("2/{name}"),
        3 => format!("3/{}/{name}", &name[..1]),
        _ => format!("{}/{}/{name}", &name[..2], &name[2..4]),
    }
}

/// A warning for each crates.io package of `lockfile` whose locked version is yanked.
pub fn yanked(index: &str, lockfile: &Lockfile) -> Vec<Warning> {
    let packages: Vec<(String, String)> = lockfile
        .packages
        .iter()
        .filter(|p| p.source.as_ref().is_some_and(|s| s.is_default_registry()))
        .map(|p| (p.name.to_string(), p.version.to_string()))
        .collect();
    if packages.is_empty() {
        return Vec::new();
    }
    let check = async {
        let feed = Feed::new("sparse index", index, None).map_err(|e| e.to_string())?;
        let mut warnings = Vec::new();
        for (name, version) in &packages {
            let url = feed.url(&index_path(name));
            let what = format!("reading {name} from the index");
            let reply = feed
                .send(&what, Method::GET, &url, &Upload::None, MAX_INDEX_FILE)
                .await
                .map_err(|e| e.to_string())?;
            // Not in this index: nothing to say about it.
            if reply.status == StatusCode::NOT_FOUND {
                continue;
            }
            if !reply.status.is_success() {
                return Err(format!("{url}: {}", reply.status));
            }
            let yanked = String::from_utf8_lossy(&reply.body).lines().any(|line| {
                serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
                    v["vers"].as_str() == Some(version.as_str()) && v["yanked"] == true
                })
            });
            if yanked {
                warnings.push(Warning {
                    kind: "yanked".into(),
                    text: format!("{name} {version} is yanked from crates.io"),
                });
            }
        }
        Ok::<_, String>(warnings)
    };
    let outcome = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(check),
        Err(_) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(check),
            Err(e) => Err(e.to_string()),
        },
    };
    outcome.unwrap_or_else(|why| {
        vec![Warning {
            kind: "yanked".into(),
            text: format!("could not check for yanked crates at {index}: {why}"),
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_index_paths_follow_cargos_layout() {
        assert_eq!(index_path("a"), "1/a");
        assert_eq!(index_path("ab"), "2/ab");
        assert_eq!(index_path("abc"), "3/a/abc");
        assert_eq!(index_path("Serde"), "se/rd/serde");
    }
}
