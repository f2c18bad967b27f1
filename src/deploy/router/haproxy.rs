//! HAProxy's runtime API (the stats socket, over a unix socket or TCP): the router of every
//! deploy. Servers are added, weighted, drained and removed while HAProxy runs, so a rollout
//! never needs a reload, and per-server counters feed the analysis.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Router, RouterError, Server, Stats};

/// Longest wait for one runtime API command.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where the runtime API listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `unix:///run/haproxy/admin.sock`.
    Unix(PathBuf),
    /// `tcp://127.0.0.1:9999`.
    Tcp(String),
}

impl Address {
    /// Parses `unix://PATH`, a bare absolute path, or `tcp://HOST:PORT`.
    pub fn parse(text: &str) -> Result<Address, crate::invalid::Invalid> {
        if let Some(path) = text.strip_prefix("unix://") {
            return Ok(Address::Unix(path.into()));
        }
        if text.starts_with('/') {
            return Ok(Address::Unix(text.into()));
        }
        if let Some(host) = text.strip_prefix("tcp://")
            && host
                .rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            return Ok(Address::Tcp(host.into()));
        }
        Err(format!(
            "`{text}` is not a runtime API address: write `unix:///run/haproxy/admin.sock` or `tcp://127.0.0.1:9999`"
        ).into())
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "unix://{}", path.display()),
            Address::Tcp(host) => write!(f, "tcp://{host}"),
        }
    }
}

/// A client of one HAProxy's runtime API.
#[derive(Debug, Clone)]
pub struct Haproxy {
    address: Address,
}

impl Haproxy {
    /// A client for `address`.
    pub fn new(address: Address) -> Haproxy {
        Haproxy { address }
    }

    /// A client for the address `router = { haproxy = "..." }` gives.
    pub fn from_options(options: &serde_json::Value) -> Result<Haproxy, crate::invalid::Invalid> {
        let text = options.as_str().unwrap_or_default();
        Ok(Haproxy::new(Address::parse(text)?))
    }

    /// Sends one command and returns the answer (HAProxy closes the connection after it).
    pub async fn command(&self, command: &str) -> Result<String, RouterError> {
        // One command per connection: a line break or `;` would start another one.
        if command.contains(['\n', '\r', ';', '\0']) {
            return Err(RouterError::Refused {
                command: command.escape_debug().to_string(),
                answer: "not sent: a name in it holds a line break or `;`".into(),
            });
        }
        let unreachable = |source: std::io::Error| RouterError::Unreachable {
            address: self.address.to_string(),
            source,
        };
        let exchange = async {
            let mut answer = Vec::new();
            let line = format!("{command}\n");
            match &self.address {
                Address::Unix(path) => {
                    let mut stream = tokio::net::UnixStream::connect(path).await?;
                    stream.write_all(line.as_bytes()).await?;
                    stream.read_to_end(&mut answer).await?;
                }
                Address::Tcp(host) => {
                    let mut stream = tokio::net::TcpStream::connect(host).await?;
                    stream.write_all(line.as_bytes()).await?;
                    stream.read_to_end(&mut answer).await?;
                }
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer).into_owned())
        };
        let answer = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(std::io::Error::other("no answer within 10s")))?
            .map_err(unreachable)?;
        tracing::debug!("haproxy: {command} -> {}", answer.trim());
        Ok(answer)
    }

    /// Runs a command whose success is an empty answer or one of `ok` (a prefix).
    async fn command_ok(&self, command: &str, ok: &[&str]) -> Result<(), RouterError> {
        let answer = self.command(command).await?;
        let text = answer.trim();
        if text.is_empty() || ok.iter().any(|o| text.starts_with(o)) {
            return Ok(());
        }
        Err(RouterError::Refused {
            command: command.into(),
            answer: text.lines().next().unwrap_or_default().into(),
        })
    }
}

impl Router for Haproxy {
    /// The backend's servers.
    fn servers<'a>(
        &'a self,
        backend: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Server>, RouterError>> {
        Box::pin(async move {
            let command = format!("show servers state {backend}");
            let answer = self.command(&command).await?;
            if answer.contains("Can't find backend") {
                return Err(RouterError::Refused {
                    command,
                    answer: answer.trim().into(),
                });
            }
            Ok(parse_servers(&answer))
        })
    }

    /// Adds a server that takes traffic at `weight` (HAProxy adds it in maintenance; it is
    /// enabled once registered).
    fn add_server<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
        addr: &'a str,
        weight: u32,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            self.command_ok(
                &format!("add server {backend}/{name} {addr} weight {weight}"),
                &["New server registered."],
            )
            .await?;
            self.command_ok(&format!("enable server {backend}/{name}"), &[])
                .await
        })
    }

    /// Sets a server's weight (0 to 256); 0 takes it out of the rotation for new requests.
    fn set_weight<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
        weight: u32,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            self.command_ok(&format!("set server {backend}/{name} weight {weight}"), &[])
                .await
        })
    }

    /// Drains a server: no new requests, in-flight ones finish.
    fn drain<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            self.command_ok(&format!("set server {backend}/{name} state drain"), &[])
                .await
        })
    }

    /// Puts a server back in the rotation.
    fn ready<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            self.command_ok(&format!("set server {backend}/{name} state ready"), &[])
                .await
        })
    }

    /// Removes a server: maintenance, then `del server` (HAProxy refuses while it still has
    /// connections; callers drain first).
    fn remove_server<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            self.command_ok(&format!("set server {backend}/{name} state maint"), &[])
                .await?;
            self.command_ok(
                &format!("del server {backend}/{name}"),
                &["Server deleted."],
            )
            .await
        })
    }

    /// Per-server counters of the backend.
    fn stats<'a>(
        &'a self,
        backend: &'a str,
    ) -> LocalBoxFuture<'a, Result<Vec<Stats>, RouterError>> {
        Box::pin(async move {
            let answer = self.command("show stat").await?;
            Ok(parse_stats(&answer, backend))
        })
    }

    fn totals<'a>(&'a self, backend: &'a str) -> LocalBoxFuture<'a, Result<Stats, RouterError>> {
        Box::pin(async move {
            let answer = self.command("show stat").await?;
            parse_totals(&answer, backend).ok_or_else(|| RouterError::Refused {
                command: "show stat".into(),
                answer: format!("no backend `{backend}`"),
            })
        })
    }

    /// `shutdown sessions server`.
    fn close_sessions<'a>(
        &'a self,
        backend: &'a str,
        name: &'a str,
    ) -> LocalBoxFuture<'a, Result<(), RouterError>> {
        Box::pin(async move {
            self.command(&format!("shutdown sessions server {backend}/{name}"))
                .await
                .map(|_| ())
        })
    }
}

/// Parses `show servers state` (format 1: a version line, a `#` header, one line per server).
fn parse_servers(answer: &str) -> Vec<Server> {
    let mut header: Vec<&str> = Vec::new();
    let mut servers = Vec::new();
    for line in answer.lines() {
        if let Some(names) = line.strip_prefix("# ") {
            header = names.split_whitespace().collect();
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if header.is_empty() || fields.len() < header.len() {
            continue;
        }
        let get = |name: &str| {
            header
                .iter()
                .position(|h| *h == name)
                .and_then(|i| fields.get(i).copied())
                .unwrap_or_default()
        };
        servers.push(Server {
            name: get("srv_name").into(),
            addr: get("srv_addr").into(),
            port: get("srv_port").parse().unwrap_or(0),
            op_state: get("srv_op_state").parse().unwrap_or(0),
            admin_state: get("srv_admin_state").parse().unwrap_or(0),
            weight: get("srv_uweight").parse().unwrap_or(0),
        });
    }
    servers
}

/// Parses `show stat` CSV for the servers of `backend`.
fn parse_stats(answer: &str, backend: &str) -> Vec<Stats> {
    parse_rows(answer, backend, false)
}

/// The `BACKEND` row of `backend`: its own totals, over servers come and gone.
fn parse_totals(answer: &str, backend: &str) -> Option<Stats> {
    parse_rows(answer, backend, true).into_iter().next()
}

/// The server rows of `backend`, or (`totals`) its `BACKEND` row.
fn parse_rows(answer: &str, backend: &str, totals: bool) -> Vec<Stats> {
    let mut lines = answer.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Vec::new();
    };
    let header: Vec<&str> = header.split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv) = (column("pxname"), column("svname"));
    let mut out = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let get = |name: &str| {
            column(name)
                .and_then(|i| fields.get(i).copied())
                .unwrap_or("")
        };
        let number = |name: &str| get(name).parse::<u64>().unwrap_or(0);
        let (Some(px), Some(sv)) = (px, sv) else {
            return out;
        };
        let wanted = match fields.get(sv) {
            Some(&"BACKEND") => totals,
            Some(&"FRONTEND") | None => false,
            Some(_) => !totals,
        };
        if fields.get(px) != Some(&backend) || !wanted {
            continue;
        }
        out.push(Stats {
            name: fields[sv].into(),
            current: number("scur"),
            responses: number("hrsp_1xx")
                + number("hrsp_2xx")
                + number("hrsp_3xx")
                + number("hrsp_4xx")
                + number("hrsp_5xx")
                + number("hrsp_other"),
            errors_5xx: number("hrsp_5xx"),
            connection_errors: number("econ") + number("eresp"),
            response_ms: number("rtime"),
            status: get("status").into(),
        });
    }
    out
}

/// The problem with `router = { haproxy = ... }` in environment `env`, located.
pub fn check(loaded: &crate::config::Loaded, env: &str) -> Vec<crate::config::Problem> {
    let here = crate::path!["deploy", env, "router", "haproxy"];
    let text = loaded
        .file
        .deploy
        .get(env)
        .and_then(|d| d.router.options.get("haproxy"))
        .and_then(|v| v.as_str());
    let problem = match text {
        None => "`haproxy` must be the runtime API's address, a string".to_string(),
        Some(text) => match Address::parse(text) {
            Ok(_) => return Vec::new(),
            Err(e) => e.to_string(),
        },
    };
    vec![
        crate::config::Problem::new(problem, loaded.span(here))
            .label("here")
            .help("the HAProxy stats socket, with `level admin`"),
    ]
}

/// A starter HAProxy configuration with the runtime API and the backend shipit manages, for
/// the environment `env` of the file (or its first one).
pub fn starter_config(loaded: &crate::config::Loaded, env: Option<&str>) -> String {
    let config = env
        .and_then(|e| loaded.file.deploy.get(e))
        .or_else(|| loaded.file.deploy.values().next());
    let backend = config.map_or("app", |c| c.router.backend.as_str());
    let socket = config
        .and_then(|c| c.router.options.get("haproxy")?.as_str())
        .map(|text| text.trim_start_matches("unix://").to_string())
        .unwrap_or_else(|| "/run/haproxy/admin.sock".into());
    format!(
        "# HAProxy for shipit deploys: shipit adds, weighs, drains and removes the servers of\n\
         # backend `{backend}` through the runtime API; no reload is ever needed.\n\
         global\n    stats socket {socket} mode 660 level admin\n    stats timeout 30s\n\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n\
         \x20   retries 3\n    option redispatch\n\n\
         frontend web\n    bind :80\n    default_backend {backend}\n\n\
         backend {backend}\n    balance roundrobin\n    # servers are added by `shipit deploy`\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            Address::parse("unix:///run/haproxy/admin.sock").unwrap(),
            Address::Unix("/run/haproxy/admin.sock".into())
        );
        assert_eq!(
            Address::parse("tcp://127.0.0.1:9999").unwrap(),
            Address::Tcp("127.0.0.1:9999".into())
        );
        assert!(Address::parse("http://x").is_err());
        assert!(Address::parse("tcp://nohost").is_err());
    }

    #[test]
    fn server_state_lines() {
        let answer = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n3 demo 1 blue-1 127.0.0.1 2 8 100 100 0 1 0 0 0 0 0 0 - 18081 - 0 0 - - 0\n\n";
        let servers = parse_servers(answer);
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].name, "blue-1");
        assert_eq!(servers[0].port, 18081);
        assert!(servers[0].draining() && !servers[0].in_maintenance());
    }

    #[test]
    fn stat_lines_of_one_backend() {
        let answer = "# pxname,svname,scur,econ,eresp,status,hrsp_2xx,hrsp_5xx,rtime\nweb,FRONTEND,1,,,OPEN,10,0,\ndemo,blue-1,2,0,1,UP,90,10,4\ndemo,BACKEND,2,0,1,UP,90,10,4\nother,x,0,0,0,UP,1,1,1\n";
        assert_eq!(parse_totals(answer, "demo").map(|t| t.errors_5xx), Some(10));
        let stats = parse_stats(answer, "demo");
        assert_eq!(
            stats,
            [Stats {
                name: "blue-1".into(),
                current: 2,
                responses: 100,
                errors_5xx: 10,
                connection_errors: 1,
                response_ms: 4,
                status: "UP".into()
            }]
        );
    }
}
