//! `[release.announce]` as the pipeline file writes it, and what `shipit check` checks of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{Loaded, Problem};
use crate::path;

/// The message when none is written.
pub const DEFAULT_MESSAGE: &str = "{{ name }} is out: {{ url }}";
/// The variables an announcement's templates may use, besides the global ones.
pub const VARS: &[&str] = &["name", "url", "notes"];

/// `[release.announce]`: once every channel has published a version (and the check after it
/// passed), tell people, once per version and place.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AnnounceConfig {
    /// The text (template; `name`, `url`, `notes` and every global variable). Default:
    /// `{{ name }} is out: {{ url }}`.
    pub message: Option<String>,
    /// JSON posted to each address: the release's fields, or the `template`'s output.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// A Slack incoming webhook.
    pub slack: Option<HookConfig>,
    /// A Discord webhook.
    pub discord: Option<HookConfig>,
    /// A Mattermost incoming webhook.
    pub mattermost: Option<HookConfig>,
    /// Mail through an SMTP server.
    pub email: Option<EmailConfig>,
}

/// A generic webhook.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The environment variable holding the address (webhook addresses carry their token).
    pub url_env: String,
    /// The JSON body (template; every value is written as a JSON string or number, so
    /// `{"text": {{ message }}}` is safe whatever the values hold). Default: `project`,
    /// `version`, `tag`, `name`, `url` and `text`.
    pub template: Option<String>,
}

/// A chat service's incoming webhook.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HookConfig {
    /// The environment variable holding the webhook's address.
    pub url_env: String,
}

/// Mail through SMTP.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct EmailConfig {
    /// The server's host name.
    pub host: String,
    /// Its port. Default: 587 (465 for `tls = "tls"`).
    pub port: Option<u16>,
    /// `starttls` (the default: plain, then upgraded before anything is sent), `tls` (TLS
    /// from the first byte), or `none` (only to a loopback address, never with credentials).
    pub tls: Option<SmtpTls>,
    /// A PEM file of certificates to trust besides the system's, for a private server
    /// (relative to the pipeline file).
    pub ca_file: Option<String>,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// The subject (template). Default: the message's `name`, `released`.
    pub subject: Option<String>,
    /// The environment variable holding the user name for AUTH.
    pub username_env: Option<String>,
    /// The environment variable holding the password for AUTH.
    pub password_env: Option<String>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain, upgraded with STARTTLS before anything else (refused when the server cannot).
    #[default]
    Starttls,
    /// TLS from the first byte.
    Tls,
    /// No TLS: only to a loopback address, never with credentials.
    None,
}

/// Every problem of the section, located.
pub fn check(loaded: &Loaded, announce: &AnnounceConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let at = |key: &str| loaded.span(path!["release", "announce", key]);
    let nowhere = announce.webhooks.is_empty()
        && announce.slack.is_none()
        && announce.discord.is_none()
        && announce.mattermost.is_none()
        && announce.email.is_none();
    if nowhere {
        problems.push(
            Problem::new("`[release.announce]` announces nowhere", loaded.span(path!["release", "announce"]))
                .help("add `slack = { url_env = \"SLACK_WEBHOOK_URL\" }`, `discord`, `mattermost`, `webhooks = [...]` or `email = { ... }`"),
        );
    }
    let mut templates = vec![("message", announce.message.clone())];
    if let Some(email) = &announce.email {
        templates.push(("email", email.subject.clone()));
        if email.to.is_empty() {
            problems.push(
                Problem::new("`email.to` names no recipient", at("email"))
                    .help("write `to = [\"releases@example.com\"]`"),
            );
        }
        let credentials = email.username_env.is_some() || email.password_env.is_some();
        if email.tls == Some(SmtpTls::None) && credentials {
            problems.push(
                Problem::new(
                    "`tls = \"none\"` would send the SMTP password in the clear",
                    at("email"),
                )
                .help("use `tls = \"starttls\"` (the default) or `\"tls\"`"),
            );
        }
        if email.username_env.is_some() != email.password_env.is_some() {
            problems.push(
                Problem::new("`username_env` and `password_env` go together", at("email"))
                    .help("set both, or neither for a server that needs no AUTH"),
            );
        }
    }
    for (key, template) in templates {
        if let Some(template) = template
            && let Err(e) = crate::template::check(&template, &all_vars())
        {
            problems.push(Problem::new(format!("{key}: {}", e.message), at(key)));
        }
    }
    for (i, hook) in announce.webhooks.iter().enumerate() {
        if let Some(template) = &hook.template {
            let mut vars = all_vars();
            vars.push("message");
            if let Err(e) = crate::template::check(template, &vars) {
                problems.push(Problem::new(
                    format!("webhooks[{i}].template: {}", e.message),
                    at("webhooks"),
                ));
            }
        }
    }
    problems
}

/// The global variables and the announcement's own.
pub fn all_vars() -> Vec<&'static str> {
    let mut vars = crate::template::GLOBAL_VARS.to_vec();
    vars.extend_from_slice(VARS);
    vars
}
