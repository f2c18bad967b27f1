//! Who deploys, from where and when: what locks and records say of a run.

/// This machine's host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

/// `user@host`, for records and locks.
pub fn who() -> String {
    let user = std::env::var(crate::env_vars::GITHUB_ACTOR)
        .ok()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "unknown".into());
    format!("{user}@{}", hostname())
}

/// Now, as RFC 3339 seconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
