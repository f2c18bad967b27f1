//! Where announcements go: JSON to a webhook (generic, Slack, Discord, Mattermost) and mail
//! through SMTP (lettre). Addresses and passwords come from variables and never appear in a
//! message: errors name the place by its key (`slack`, `webhooks[0]`), not by its address.

use std::time::Duration;

use http::Method;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::config::{EmailConfig, SmtpTls};
use crate::http::feed::{Feed, Upload};

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an announcement was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The webhook's address is not an http(s) address.
    #[error("the address in ${0} is not an http(s) URL")]
    Address(String),
    /// The webhook did not answer, or not with success.
    #[error("the webhook answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
    /// The request never got a final answer.
    #[error(transparent)]
    Feed(#[from] crate::http::feed::FeedError),
    /// The mail could not be written (a bad address).
    #[error("cannot write the mail: {0}")]
    Mail(String),
    /// The SMTP server refused, or could not be reached securely.
    #[error("the SMTP server {host}: {source}")]
    Smtp {
        /// The server.
        host: String,
        /// What went wrong.
        #[source]
        source: lettre::transport::smtp::Error,
    },
    /// The CA file could not be read.
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// POSTs `body` to the webhook at `url` (read from `$var`).
pub async fn webhook(var: &str, url: &str, body: serde_json::Value) -> Result<(), SendError> {
    let address = reqwest::Url::parse(url).map_err(|_| SendError::Address(var.to_owned()))?;
    if !matches!(address.scheme(), "http" | "https") || !address.has_host() {
        return Err(SendError::Address(var.to_owned()));
    }
    let origin = format!("{}/", address.origin().ascii_serialization());
    let feed =
        Feed::new("webhook", &origin, None).map_err(|_| SendError::Address(var.to_owned()))?;
    let what = format!("posting to the webhook in ${var}");
    let reply = feed
        .send(&what, Method::POST, &address, &Upload::Json(body), 64 << 10)
        .await?;
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(SendError::Refused {
            status: reply.status.as_u16(),
            message: reply.message(),
        })
    }
}

/// What one mail needs beyond the section.
pub struct Mail<'a> {
    /// The subject.
    pub subject: &'a str,
    /// The text.
    pub body: &'a str,
    /// AUTH user and password, when the section names them.
    pub credentials: Option<(String, String)>,
    /// The CA file, resolved.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Sends the mail through the section's server.
pub async fn email(config: &EmailConfig, mail: Mail<'_>) -> Result<(), SendError> {
    let mut message = Message::builder()
        .from(
            config
                .from
                .parse()
                .map_err(|e| SendError::Mail(format!("from: {e}")))?,
        )
        .subject(mail.subject)
        .header(ContentType::TEXT_PLAIN);
    for to in &config.to {
        message = message.to(to
            .parse()
            .map_err(|e| SendError::Mail(format!("to {to}: {e}")))?);
    }
    let message = message
        .body(mail.body.to_owned())
        .map_err(|e| SendError::Mail(e.to_string()))?;
    let smtp = |source| SendError::Smtp {
        host: config.host.clone(),
        source,
    };
    let mode = config.tls.unwrap_or_default();
    let tls = match mode {
        SmtpTls::None => Tls::None,
        SmtpTls::Starttls | SmtpTls::Tls => {
            let mut parameters = TlsParameters::builder(config.host.clone());
            if let Some(path) = &mail.ca_file {
                let pem = std::fs::read(path).map_err(|source| SendError::CaFile {
                    path: path.clone(),
                    source,
                })?;
                parameters =
                    parameters.add_root_certificate(Certificate::from_pem(&pem).map_err(smtp)?);
            }
            let parameters = parameters.build_rustls().map_err(smtp)?;
            if mode == SmtpTls::Tls {
                Tls::Wrapper(parameters)
            } else {
                Tls::Required(parameters)
            }
        }
    };
    let port = config
        .port
        .unwrap_or(if mode == SmtpTls::Tls { 465 } else { 587 });
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
    if let Some((user, password)) = mail.credentials {
        transport = transport.credentials(Credentials::new(user, password));
    }
    transport.build().send(message).await.map_err(smtp)?;
    Ok(())
}

/// Whether `host` is this machine (the only place mail may go without TLS).
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
