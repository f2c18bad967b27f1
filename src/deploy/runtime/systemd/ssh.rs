//! One host reached with the system `ssh` client: never a password or a prompt (`BatchMode`),
//! host keys checked against `known_hosts` and never learned on the way
//! (`StrictHostKeyChecking=yes`), every remote word quoted, and what is long or secret on
//! stdin rather than on any command line.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::invalid::Invalid;

/// The most a host's answer may be: records and listings are small; more is a broken host.
const MAX_ANSWER: u64 = 16 << 20;

/// How long one remote operation may take (an archive upload included).
const TIMEOUT: Duration = Duration::from_secs(600);

/// An `ssh://user@host:port` destination, checked so none of it can read as an ssh option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The login user, if given.
    pub user: Option<String>,
    /// Host name or address (no brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
}

impl Destination {
    /// Reads `ssh://[user@]host[:port]`.
    pub fn parse(text: &str) -> Result<Destination, Invalid> {
        let bad = |why: &str| Invalid::new(format!("`{text}`: {why}"));
        let rest = text
            .strip_prefix("ssh://")
            .ok_or_else(|| bad("a systemd host is `ssh://user@host[:port]`"))?;
        let url = reqwest::Url::parse(&format!("ssh://{rest}"))
            .map_err(|e| bad(&format!("not an ssh address: {e}")))?;
        if url.path() != "" && url.path() != "/"
            || url.query().is_some()
            || url.password().is_some()
        {
            return Err(bad(
                "only `ssh://user@host[:port]`: no path, query or password",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let word = |s: &str, extra: &[char]| {
            !s.is_empty()
                && !s.starts_with('-')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c) || extra.contains(&c))
        };
        if !word(&host, &[':']) {
            return Err(bad("the host must be a name or an address"));
        }
        let user = match url.username() {
            "" => None,
            user if word(user, &[]) => Some(user.to_string()),
            _ => return Err(bad("the user must be letters, digits, `.`, `_` or `-`")),
        };
        Ok(Destination {
            user,
            host,
            port: url.port(),
        })
    }
}

/// How shipit talks to one host.
#[derive(Debug, Clone)]
pub struct Ssh {
    /// Where.
    pub destination: Destination,
    /// `-i`: the key to log in with, else ssh's own choice (agent, `~/.ssh/id_*`).
    pub identity: Option<PathBuf>,
    /// `UserKnownHostsFile`, else ssh's own.
    pub known_hosts: Option<PathBuf>,
}

/// A remote operation that failed: its exit status and what the host said.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `ssh` could not run here.
    #[error("cannot run ssh")]
    Spawn(#[source] std::io::Error),
    /// The host was not reached (ssh's own exit 255).
    #[error("cannot reach the host: {0}")]
    Unreachable(String),
    /// The operation ran and failed.
    #[error("{0}")]
    Failed(String),
    /// It took longer than it may.
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The answer was longer than any real one.
    #[error("the host answered more than {MAX_ANSWER} bytes")]
    TooLong,
}

impl Ssh {
    /// Runs `command` (already quoted for the remote shell) with `input` on its stdin; its
    /// stdout. The remote's own stderr becomes the error's text.
    pub async fn run(&self, command: &str, input: &[u8]) -> Result<String, SshError> {
        let mut ssh = tokio::process::Command::new("ssh");
        ssh.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "LogLevel=ERROR",
            "-T",
        ]);
        if let Some(file) = &self.known_hosts {
            ssh.arg("-o")
                .arg(format!("UserKnownHostsFile={}", file.display()));
        }
        if let Some(key) = &self.identity {
            ssh.arg("-o").arg("IdentitiesOnly=yes").arg("-i").arg(key);
        }
        let d = &self.destination;
        if let Some(port) = d.port {
            ssh.arg("-p").arg(port.to_string());
        }
        if let Some(user) = &d.user {
            ssh.arg("-l").arg(user);
        }
        // `--`: whatever follows is the destination and the command, never an option.
        ssh.arg("--").arg(&d.host).arg(command);
        ssh.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let work = async {
            let mut child = ssh.spawn().map_err(SshError::Spawn)?;
            let mut stdin = child.stdin.take();
            let mut stdout = child.stdout.take();
            let mut stderr = child.stderr.take();
            let write = async {
                if let Some(mut pipe) = stdin.take() {
                    // A host that stops reading early says why on stderr.
                    let _ = pipe.write_all(input).await;
                    let _ = pipe.shutdown().await;
                }
            };
            let read = |pipe: Option<tokio::process::ChildStdout>| async move {
                let mut out = Vec::new();
                if let Some(pipe) = pipe {
                    pipe.take(MAX_ANSWER + 1).read_to_end(&mut out).await?;
                }
                Ok::<_, std::io::Error>(out)
            };
            let read_err = async {
                let mut out = Vec::new();
                if let Some(pipe) = stderr.take() {
                    pipe.take(64 << 10).read_to_end(&mut out).await?;
                }
                Ok::<_, std::io::Error>(out)
            };
            let ((), out, err) = tokio::join!(write, read(stdout.take()), read_err);
            let status = child.wait().await.map_err(SshError::Spawn)?;
            let (out, err) = (out.map_err(SshError::Spawn)?, err.map_err(SshError::Spawn)?);
            if out.len() as u64 > MAX_ANSWER {
                return Err(SshError::TooLong);
            }
            // Every output passes the masker in `ui`; a host's words are only text here.
            let said = String::from_utf8_lossy(&err).trim().to_string();
            match status.code() {
                Some(0) => Ok(String::from_utf8_lossy(&out).into_owned()),
                Some(255) => Err(SshError::Unreachable(if said.is_empty() {
                    "ssh exited with 255".into()
                } else {
                    said
                })),
                code => Err(SshError::Failed(if said.is_empty() {
                    format!("exit {code:?}")
                } else {
                    said.trim_start_matches("shipit-remote: ").to_string()
                })),
            }
        };
        tokio::time::timeout(TIMEOUT, work)
            .await
            .unwrap_or(Err(SshError::Timeout(TIMEOUT)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_read_and_option_looking_parts_refused() {
        assert_eq!(
            Destination::parse("ssh://deploy@web-1:2222").unwrap(),
            Destination {
                user: Some("deploy".into()),
                host: "web-1".into(),
                port: Some(2222)
            }
        );
        assert_eq!(
            Destination::parse("ssh://127.0.0.11").unwrap().host,
            "127.0.0.11"
        );
        for bad in [
            "web-1",
            "ssh://-oProxyCommand=x@web",
            "ssh://deploy@-oProxyCommand=x",
            "ssh://a:b@web",
            "ssh://web/path",
            "ssh://us$er@web",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
    }
}
