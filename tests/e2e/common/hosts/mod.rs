//! Plain Linux test hosts on this machine, for the systemd runtime: each its own user (so its
//! own filesystem root, the home folder) and its own sshd on a loopback address of its own,
//! reached with a test key checked against a test `known_hosts` (see
//! `../shared/notes/test-hosts.md`). Units run under the stand-in `systemctl` beside this file,
//! which says what it implements. Dropping the hosts stops every process of their users, their
//! sshd, and removes the users and their homes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{require, text};

/// Hosts started by this test process, for addresses and user names of their own.
static STARTED: AtomicU32 = AtomicU32::new(0);

/// One host.
pub struct Host {
    /// Its user (and its folder `/home/<user>`).
    pub user: String,
    /// Its loopback address.
    pub addr: String,
    /// `ssh://user@addr:2222`.
    pub url: String,
    pid_file: PathBuf,
}

impl Host {
    /// Its home folder, where its releases live.
    pub fn home(&self) -> PathBuf {
        PathBuf::from("/home").join(&self.user)
    }
}

/// Several hosts and the client side that reaches them.
pub struct Hosts {
    /// In order.
    pub hosts: Vec<Host>,
    /// The test key ssh logs in with.
    pub identity: PathBuf,
    /// The hosts' keys.
    pub known_hosts: PathBuf,
    /// The stand-in systemctl, where every host user can run it.
    pub systemctl: PathBuf,
    dir: tempfile::TempDir,
}

impl Hosts {
    /// Starts `n` hosts, each answering ssh.
    pub fn start(n: usize) -> Hosts {
        for tool in ["/usr/sbin/sshd", "ssh", "ssh-keygen", "useradd", "setsid"] {
            require(tool);
        }
        let dir = tempfile::tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        let keygen = |file: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(file)
                .output()
                .unwrap();
            assert!(out.status.success(), "{:?}", text(&out));
        };
        let identity = dir.path().join("id");
        keygen(&identity);
        let client_key = std::fs::read_to_string(dir.path().join("id.pub")).unwrap();
        let systemctl = dir.path().join("systemctl");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/common/hosts/systemctl"),
            &systemctl,
        )
        .unwrap();
        set_mode(&systemctl, 0o755);
        std::fs::create_dir_all("/run/sshd").unwrap();
        let id = std::process::id() % 250;
        let mut known = String::new();
        let mut hosts = Vec::new();
        for _ in 0..n {
            let k = STARTED.fetch_add(1, Ordering::SeqCst);
            let user = format!("sh{}x{k}", std::process::id());
            let addr = format!("127.77.{id}.{}", k + 11);
            let out = Command::new("useradd")
                .args(["-m", "-s", "/bin/sh", &user])
                .output()
                .unwrap();
            assert!(out.status.success(), "{:?}", text(&out));
            // A locked account (useradd's `!`) is refused by sshd without PAM; `*` only has
            // no password.
            let out = Command::new("usermod")
                .args(["-p", "*", &user])
                .output()
                .unwrap();
            assert!(out.status.success(), "{:?}", text(&out));
            let home = PathBuf::from("/home").join(&user);
            let ssh_dir = home.join(".ssh");
            std::fs::create_dir_all(&ssh_dir).unwrap();
            std::fs::write(ssh_dir.join("authorized_keys"), &client_key).unwrap();
            let host_key = dir.path().join(format!("host-{k}"));
            keygen(&host_key);
            let public = std::fs::read_to_string(host_key.with_extension("pub")).unwrap();
            let public: Vec<&str> = public.split_whitespace().take(2).collect();
            known.push_str(&format!("[{addr}]:2222 {}\n", public.join(" ")));
            let pid_file = dir.path().join(format!("sshd-{k}.pid"));
            let config = dir.path().join(format!("sshd-{k}.conf"));
            std::fs::write(
                &config,
                format!(
                    "ListenAddress {addr}:2222\nHostKey {}\nPidFile {}\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowUsers {user}\n\
                     MaxStartups 100:30:200\nMaxSessions 50\n",
                    host_key.display(),
                    pid_file.display()
                ),
            )
            .unwrap();
            let out = Command::new("/usr/sbin/sshd")
                .arg("-f")
                .arg(&config)
                .arg("-E")
                .arg(dir.path().join(format!("sshd-{k}.log")))
                .output()
                .unwrap();
            assert!(out.status.success(), "{:?}", text(&out));
            let units = home.join(".config/systemd/user");
            std::fs::create_dir_all(&units).unwrap();
            let chown = Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(&home)
                .output()
                .unwrap();
            assert!(chown.status.success());
            hosts.push(Host {
                url: format!("ssh://{user}@{addr}:2222"),
                user,
                addr,
                pid_file,
            });
        }
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, known).unwrap();
        let all = Hosts {
            hosts,
            identity,
            known_hosts,
            systemctl,
            dir,
        };
        for host in &all.hosts {
            all.wait_for(host);
        }
        all
    }

    /// Waits until `host` answers ssh.
    fn wait_for(&self, host: &Host) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.ssh(host, "true");
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < until,
                "sshd of {} never answered: {:?}",
                host.addr,
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `command` on `host` over ssh, as shipit would reach it.
    pub fn ssh(&self, host: &Host, command: &str) -> std::process::Output {
        self.ssh_command(host, command).output().unwrap()
    }

    /// The ssh command that runs `command` on `host`, in its home.
    pub fn ssh_command(&self, host: &Host, command: &str) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-p",
            "2222",
            "-i",
        ])
        .arg(&self.identity)
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
        .arg(format!("{}@{}", host.user, host.addr))
        .arg(command)
        .stdin(std::process::Stdio::null());
        ssh
    }

    /// Installs `unit` as every host's `<name>@.service`.
    pub fn install_unit(&self, name: &str, unit: &str) {
        for host in &self.hosts {
            let file = host
                .home()
                .join(format!(".config/systemd/user/{name}@.service"));
            std::fs::write(&file, unit).unwrap();
        }
    }

    /// The `[deploy.<env>.systemd]` lines that reach these hosts.
    pub fn options(&self) -> String {
        format!(
            "identity = \"{}\"\nknown_hosts = \"{}\"\nsystemctl = [\"{}\"]\n",
            self.identity.display(),
            self.known_hosts.display(),
            self.systemctl.display()
        )
    }

    /// Every unit instance's log on every host (the stand-in's `<unit>@<name>.log`), for
    /// failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for host in &self.hosts {
            let dir = host.home().join(".stand-in");
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .collect();
            files.sort();
            for file in files {
                let log = std::fs::read_to_string(&file).unwrap_or_default();
                all.push_str(&format!("--- {} {}\n{log}", host.addr, file.display()));
            }
        }
        all
    }

    /// `hosts = [...]`.
    pub fn list(&self) -> String {
        let urls: Vec<String> = self
            .hosts
            .iter()
            .map(|h| format!("\"{}\"", h.url))
            .collect();
        format!("hosts = [{}]", urls.join(", "))
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &self.hosts {
            if let Ok(pid) = std::fs::read_to_string(&host.pid_file) {
                let _ = Command::new("kill").arg(pid.trim()).output();
            }
            let _ = Command::new("pkill")
                .args(["-KILL", "-u", &host.user])
                .output();
            std::thread::sleep(Duration::from_millis(100));
            let _ = Command::new("userdel")
                .args(["-r", "-f", &host.user])
                .output();
        }
        let _ = &self.dir;
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
