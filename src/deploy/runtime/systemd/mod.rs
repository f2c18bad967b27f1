//! The systemd runtime: a plain Linux host reached over ssh, where a release is an archive from
//! the manifest unpacked into `<root>/releases/<version>` and an instance is a unit instance
//! `<unit>@<name>` running it on a port of its own. Preflight sends every host its archive and
//! checks it there (SHA-256, and the signed checksums when a public key is set) before any host
//! changes what runs; `current` is switched by renaming a new link over it. Everything the host
//! does is one POSIX sh script (`remote.sh`), so what runs there can be read in one place.

mod options;
pub mod ssh;
pub mod unit;

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::future::LocalBoxFuture;

use options::is_word;
pub use options::{Options, check};
use ssh::{Destination, Ssh};

use super::{
    Archive, Container, ContainerSpec, Control, Holder, Record, Runtime, RuntimeError, SignedSums,
};

/// The script every operation runs on the host.
const REMOTE: &str = include_str!("remote.sh");

/// One host.
pub struct Systemd {
    address: String,
    ssh: Ssh,
    root: String,
    unit: String,
    systemctl: String,
    keep: u32,
    bins: Vec<String>,
    public_key: Option<String>,
    /// The archives this deploy may send, and the one chosen for the host in preflight.
    archives: Vec<Archive>,
    signed: Option<SignedSums>,
    target: Option<String>,
    chosen: Mutex<Option<Archive>>,
}

impl Systemd {
    /// The host at `address` (`ssh://user@host[:port]`) with `options`; `app` names the
    /// defaults, `base` is the folder relative option paths start from.
    pub fn new(
        address: &str,
        app: &str,
        options: &Options,
        base: &std::path::Path,
        archives: Vec<Archive>,
        signed: Option<SignedSums>,
    ) -> Result<Systemd, RuntimeError> {
        let destination = Destination::parse(address)
            .map_err(|e| RuntimeError::new("read the host's address", address, e))?;
        if !is_word(app, "") {
            return Err(RuntimeError::new(
                "name the unit",
                address,
                std::io::Error::other(format!("`{app}` cannot name a unit")),
            ));
        }
        let path = |p: &Option<String>| p.as_ref().map(|p| base.join(p));
        Ok(Systemd {
            address: address.to_string(),
            ssh: Ssh {
                destination,
                identity: path(&options.identity),
                known_hosts: path(&options.known_hosts),
            },
            root: options.root.clone().unwrap_or_else(|| app.to_string()),
            unit: options.unit.clone().unwrap_or_else(|| app.to_string()),
            systemctl: options
                .systemctl
                .clone()
                .unwrap_or_else(|| vec!["systemctl".into()])
                .join(" "),
            keep: options.keep.unwrap_or(3),
            bins: options
                .bins
                .clone()
                .unwrap_or_else(|| vec![app.to_string()]),
            public_key: options.public_key.clone(),
            archives,
            signed,
            target: options.target.clone(),
            chosen: Mutex::new(None),
        })
    }

    /// Runs `op` on the host with `words` (names, versions, digests, numbers: each one that
    /// could name a file there is checked here, then quoted), `input` on its stdin.
    async fn remote(
        &self,
        action: &str,
        op: &str,
        words: &[&str],
        input: &[u8],
    ) -> Result<String, RuntimeError> {
        if let Some(bad) = words.iter().find(|w| !is_word(w, "+")) {
            return Err(self.refuse(action, format!("`{bad}` cannot name a file on the host")));
        }
        self.remote_quoted(action, op, words, input).await
    }

    /// Runs `op` with `args` only quoted (keys and base64 text, never a file name).
    async fn remote_quoted(
        &self,
        action: &str,
        op: &str,
        args: &[&str],
        input: &[u8],
    ) -> Result<String, RuntimeError> {
        let mut command = format!(
            "SYSTEMCTL={} UNIT={} BIND={} sh -c {} shipit {} {op}",
            crate::quote::sh(&self.systemctl),
            crate::quote::sh(&self.unit),
            crate::quote::sh(&self.ssh.destination.host),
            crate::quote::sh(REMOTE),
            crate::quote::sh(&self.root),
        );
        for arg in args {
            command.push(' ');
            command.push_str(&crate::quote::sh(arg));
        }
        self.ssh
            .run(&command, input)
            .await
            .map_err(|e| RuntimeError::new(action, &self.address, e))
    }

    fn refuse(&self, action: &str, why: String) -> RuntimeError {
        RuntimeError::new(action, &self.address, std::io::Error::other(why))
    }

    /// The archive for a host whose `uname -m` is `machine`.
    fn archive_for(&self, machine: &str) -> Option<Archive> {
        let arch = match machine {
            "x86_64" | "amd64" => "x64",
            "aarch64" | "arm64" => "arm64",
            "armv7l" | "armv7" | "armv6l" => "arm",
            "i686" | "i386" => "x86",
            "riscv64" => "riscv64",
            "ppc64le" => "ppc64le",
            "s390x" => "s390x",
            "loongarch64" => "loong64",
            other => other,
        };
        let mut fitting: Vec<&Archive> =
            self.archives
                .iter()
                .filter(|a| match &self.target {
                    Some(target) => crate::targets::Target::parse(target, "")
                        .is_ok_and(|t| t.triple == a.target),
                    None => a.arch == arch,
                })
                .collect();
        // Static first: it runs on any libc.
        fitting.sort_by_key(|a| !a.target.ends_with("-musl"));
        fitting.first().map(|a| (*a).clone())
    }

    /// Reads `instance NAME REVISION RELEASE PORT STATE` lines.
    fn instances(&self, answer: &str) -> Vec<Container> {
        answer
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                let [kind, name, revision, release, port, state] = f[..] else {
                    return None;
                };
                let port: u16 = port.parse().ok().filter(|_| kind == "instance")?;
                let state = if state == "running" {
                    "running"
                } else {
                    "exited"
                };
                Some(Container {
                    name: name.to_string(),
                    revision: revision.parse().unwrap_or(0),
                    version: release.to_string(),
                    image: release.to_string(),
                    state: state.into(),
                    address: (state == "running")
                        .then(|| address(&self.ssh.destination.host, port)),
                    host: self.address.clone(),
                })
            })
            .collect()
    }

    /// The instance `name` in the host's answer: an answer about another instance is refused,
    /// since its port would be routed under this one's name.
    fn one(&self, action: &str, name: &str, answer: &str) -> Result<Container, RuntimeError> {
        let listed = self.instances(answer);
        match listed.iter().find(|c| c.name == name) {
            Some(c) => Ok(c.clone()),
            None => Err(self.refuse(
                action,
                match listed.first() {
                    Some(other) => format!("the host answered about {}, not {name}", other.name),
                    None => "the host did not list the instance".into(),
                },
            )),
        }
    }

    /// Sends the chosen archive unless the host has it, and checks it there.
    async fn stage(&self, archive: &Archive, staged: &str) -> Result<(), RuntimeError> {
        let action = format!("send {} to the host", archive.target);
        match staged {
            "yes" => return Ok(()),
            "tampered" => {
                return Err(self.refuse(
                    &action,
                    format!(
                        "the host's copy of the archive (incoming/{}) does not match the manifest's digest: it changed on the host; nothing was changed, remove it once you know why",
                        archive.sha256
                    ),
                ));
            }
            _ => {}
        }
        let bytes = tokio::fs::read(&archive.path)
            .await
            .map_err(|e| RuntimeError::new(&action, &self.address, e))?;
        let mut args = vec![archive.sha256.clone()];
        if let Some(key) = &self.public_key {
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::STANDARD;
            let signed = self.signed.as_ref().ok_or_else(|| {
                self.refuse(
                    &action,
                    "a public key is set but the release has no signed SHA256SUMS".into(),
                )
            })?;
            args.extend([
                key.clone(),
                b64.encode(&signed.sums),
                b64.encode(&signed.signature),
            ]);
        }
        if !is_word(&archive.sha256, "") {
            return Err(self.refuse(&action, format!("`{}` is not a digest", archive.sha256)));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.remote_quoted(&action, "stage", &args, &bytes).await?;
        Ok(())
    }
}

/// `host:port`, bracketed for IPv6.
fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `key<TAB>value` lines.
fn fields(answer: &str) -> BTreeMap<&str, &str> {
    answer.lines().filter_map(|l| l.split_once('\t')).collect()
}

/// A lock holder's labels file: `id=TOKEN` then the labels as one line of JSON.
fn holder(name: &str, lines: &mut std::str::Lines<'_>) -> Holder {
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("id="))
        .map(|token| format!("{name}/{token}"));
    let labels = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    Holder { id, labels }
}

impl Runtime for Systemd {
    fn address(&self) -> &str {
        &self.address
    }

    /// Reaches the host, checks its systemctl, free space and architecture, and sends it the
    /// archive, checked there: nothing that runs changes.
    fn preflight(&self) -> LocalBoxFuture<'_, Result<(), RuntimeError>> {
        Box::pin(async move {
            // One round trip: the host's facts and the state of every archive it may get.
            let candidates: Vec<&str> = self.archives.iter().map(|a| a.sha256.as_str()).collect();
            let probe = self
                .remote("check the host", "check", &candidates, b"")
                .await?;
            let facts = fields(&probe);
            let machine = facts.get("arch").copied().unwrap_or("unknown");
            let Some(archive) = self.archive_for(machine) else {
                return Err(self.refuse(
                    "choose the archive",
                    format!(
                        "the manifest has no Linux archive for this host's architecture ({machine}); archives: {}",
                        if self.archives.is_empty() {
                            "none (build the release first, or the manifest is for another version)".to_string()
                        } else {
                            self.archives.iter().map(|a| a.target.as_str()).collect::<Vec<_>>().join(", ")
                        }
                    ),
                ));
            };
            if self.public_key.is_some() && facts.get("minisign") != Some(&"yes") {
                return Err(self.refuse(
                    "check the signature",
                    "a public key is set but the host has no minisign to check the release with"
                        .into(),
                ));
            }
            let free_kb: u64 = facts
                .get("free_kb")
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            // The archive, its unpacked copy (compressed about 3:1) and room to spare.
            let needed_kb = archive.size.saturating_mul(5) / 1024 + 10 * 1024;
            if free_kb < needed_kb {
                return Err(self.refuse(
                    "check the free space",
                    format!(
                        "{} MiB free under {}, {} MiB needed",
                        free_kb / 1024,
                        self.root,
                        needed_kb / 1024
                    ),
                ));
            }
            let staged = facts
                .get(format!("staged {}", archive.sha256).as_str())
                .copied()
                .unwrap_or("no");
            self.stage(&archive, staged).await?;
            if let Ok(mut chosen) = self.chosen.lock() {
                *chosen = Some(archive);
            }
            Ok(())
        })
    }

    /// Unpacks release `image` (a version): the archive preflight checked, or one kept from an
    /// earlier deploy.
    fn ensure_image<'a>(
        &'a self,
        image: &'a str,
        _credentials: Option<(String, String)>,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let action = format!("unpack release {image}");
            let chosen = self.chosen.lock().ok().and_then(|c| c.clone());
            let sha = match chosen.filter(|a| a.version == image) {
                Some(archive) => archive.sha256,
                // A kept release: its marker names the digest it was unpacked from.
                None => "kept".to_string(),
            };
            let mut args = vec![image, sha.as_str()];
            args.extend(self.bins.iter().map(String::as_str));
            self.remote(&action, "unpack", &args, b"").await.map(|_| ())
        })
    }

    fn start<'a>(
        &'a self,
        spec: &'a ContainerSpec,
    ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
        Box::pin(async move {
            let action = format!("start {}", spec.name);
            let name = spec.name.as_str();
            let revision = spec
                .labels
                .get(super::REVISION)
                .cloned()
                .unwrap_or_default();
            let release = spec.image.as_str();
            let mut env = String::new();
            for line in &spec.env {
                // One variable a line: a newline would start another.
                env.push_str(&line.replace('\n', " "));
                env.push('\n');
            }
            let port = spec.port.to_string();
            let answer = self
                .remote(
                    &action,
                    "start",
                    &[name, release, &revision, &port],
                    env.as_bytes(),
                )
                .await?;
            self.one(&action, name, &answer)
        })
    }

    fn containers<'a>(
        &'a self,
        _app: &'a str,
        _env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Container>, RuntimeError>> {
        Box::pin(async move {
            let answer = self.remote("list the instances", "list", &[], b"").await?;
            let mut all = self.instances(&answer);
            all.sort_by(|a, b| (a.revision, &a.name).cmp(&(b.revision, &b.name)));
            Ok(all)
        })
    }

    fn remove<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let action = format!("remove {name}");
            let keep = self.keep.to_string();
            self.remote(&action, "remove", &[name, &keep], b"")
                .await
                .map(|_| ())
        })
    }

    fn stop<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let action = format!("stop {name}");
            self.remote(&action, "stop", &[name], b"").await.map(|_| ())
        })
    }

    fn restart<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
        Box::pin(async move {
            let action = format!("restart {name}");
            let answer = self.remote(&action, "restart", &[name], b"").await?;
            self.one(&action, name, &answer)
        })
    }

    fn reload<'a>(
        &'a self,
        name: &'a str,
        image: &'a str,
        revision: u64,
    ) -> LocalBoxFuture<'a, Result<Container, RuntimeError>> {
        Box::pin(async move {
            let action = format!("reload {name} on release {image}");
            let revision = revision.to_string();
            let answer = self
                .remote(&action, "reload", &[name, image, &revision], b"")
                .await?;
            self.one(&action, name, &answer)
        })
    }

    fn lock<'a>(
        &'a self,
        name: &'a str,
        labels: BTreeMap<String, String>,
    ) -> LocalBoxFuture<'a, Result<Result<(), Holder>, RuntimeError>> {
        Box::pin(async move {
            let action = "take the deploy lock";
            let token = format!("{}-{}", std::process::id(), rand::random::<u64>());
            let input = format!(
                "id={token}\n{}\n",
                serde_json::to_string(&labels).unwrap_or_default()
            );
            let answer = self
                .remote(action, "lock", &[name], input.as_bytes())
                .await?;
            let mut lines = answer.lines();
            match lines.next() {
                Some("taken") => Ok(Ok(())),
                _ => Ok(Err(holder(name, &mut lines))),
            }
        })
    }

    fn holder<'a>(
        &'a self,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<Holder>, RuntimeError>> {
        Box::pin(async move {
            let action = "read the deploy lock";
            let answer = self.remote(action, "holder", &[name], b"").await?;
            let mut lines = answer.lines();
            Ok(match lines.next() {
                Some("held") => Some(holder(name, &mut lines)),
                _ => None,
            })
        })
    }

    fn remove_lock<'a>(&'a self, id: &'a str) -> LocalBoxFuture<'a, Result<bool, RuntimeError>> {
        Box::pin(async move {
            let action = "remove the stale lock";
            let (name, token) = id.split_once('/').unwrap_or((id, ""));
            let answer = self.remote(action, "unlock", &[name, token], b"").await?;
            Ok(answer.trim() == "removed")
        })
    }

    fn set_control<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        control: Option<&'a Control>,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let action = "leave the operator's command";
            let file = format!("{app}-{env}");
            let input = control
                .map(|c| serde_json::to_string(c).unwrap_or_default())
                .unwrap_or_default();
            self.remote(action, "set-control", &[&file], input.as_bytes())
                .await
                .map(|_| ())
        })
    }

    fn control<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Option<Control>, RuntimeError>> {
        Box::pin(async move {
            let action = "read the operator's command";
            let file = format!("{app}-{env}");
            let answer = self.remote(action, "control", &[&file], b"").await?;
            Ok(serde_json::from_str(answer.trim()).ok())
        })
    }

    fn add_record<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
        record: &'a Record,
    ) -> LocalBoxFuture<'a, Result<(), RuntimeError>> {
        Box::pin(async move {
            let action = "record the deploy";
            let file = format!("{app}-{env}-r{}.json", record.revision);
            let line = serde_json::to_string(record)
                .map_err(|e| RuntimeError::new(action, &self.address, e))?;
            self.remote(action, "add-record", &[&file], line.as_bytes())
                .await
                .map(|_| ())
        })
    }

    fn records<'a>(
        &'a self,
        app: &'a str,
        env: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Record>, RuntimeError>> {
        Box::pin(async move {
            let action = "read the deploy records";
            let prefix = format!("{app}-{env}");
            let answer = self.remote(action, "records", &[&prefix], b"").await?;
            // A line that is not a record (a damaged file) is not one; the others stand.
            let mut records: Vec<Record> = answer
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            records.sort_by_key(|r| r.revision);
            Ok(records)
        })
    }
}

#[cfg(test)]
mod tests;
