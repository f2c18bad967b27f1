//! `[release.announce]`: once every configured channel has published the version and the
//! check after publishing passed, tell people: JSON webhooks, Slack, Discord, Mattermost and
//! mail. Each place gets one message per version: what was delivered is recorded in the
//! manifest as it happens, and a re-run sends only what did not get through. A failed
//! announcement is a warning, never a failed release: the release already went out.

pub mod config;
mod send;

use futures_util::future::LocalBoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::config::{AnnounceConfig, DEFAULT_MESSAGE, SmtpTls};
use crate::config::{Loaded, Problem};
use crate::error::Error;
use crate::events::Level;
use crate::manifest::Manifest;
use crate::publish::recheck::Rechecked;
use crate::publish::{Context, Planned, Run};

/// The announce channel.
pub struct Announce;

impl crate::publish::Channel for Announce {
    type Section = AnnounceConfig;
    const NAME: &'static str = "announce";
    const ABOUT: &'static str =
        "once the release is whole and checked: webhooks, Slack, Discord, Mattermost, email";
    const ANNOUNCES: bool = true;

    fn check(&self, loaded: &Loaded, section: &AnnounceConfig) -> Vec<Problem> {
        config::check(loaded, section)
    }

    fn plan(&self, cx: &Context<'_>, config: AnnounceConfig) -> Result<Box<dyn Planned>, Error> {
        if let Some(email) = &config.email
            && email.tls == Some(SmtpTls::None)
            && !send::is_loopback(&email.host)
        {
            return Err(Error::Usage(format!(
                "[release.announce] email: `tls = \"none\"` is only for a server on this machine, not {}",
                email.host
            )));
        }
        let waits_for = crate::publish::channels()
            .iter()
            .filter(|c| !c.announces() && cx.loaded.file.release.0.contains_key(c.name()))
            .map(|c| c.name())
            .collect();
        Ok(Box::new(AnnouncePlan {
            ca_file: config
                .email
                .as_ref()
                .and_then(|e| e.ca_file.as_deref())
                .map(|f| cx.loaded.resolve(f)),
            config,
            vars: serde_json::to_value(cx.facts.template_vars())
                .map_err(|e| Error::Internal(e.to_string()))?,
            name: format!("{} {}", cx.facts.project, cx.facts.version),
            version: cx.facts.version.clone(),
            waits_for,
        }))
    }
}

/// Where to announce, decided before anything is published.
struct AnnouncePlan {
    config: AnnounceConfig,
    ca_file: Option<std::path::PathBuf>,
    /// The global template variables.
    vars: serde_json::Value,
    /// `demo 1.2.0`.
    name: String,
    version: String,
    /// The configured channels that must have published first.
    waits_for: Vec<&'static str>,
}

/// One place an announcement goes, by the key the record and messages name it with.
enum Place<'a> {
    Webhook(usize, &'a config::WebhookConfig),
    Chat(&'static str, &'a config::HookConfig),
    Email(&'a config::EmailConfig),
}

impl Place<'_> {
    fn key(&self) -> String {
        match self {
            Place::Webhook(i, _) => format!("webhooks[{i}]"),
            Place::Chat(service, _) => (*service).to_owned(),
            Place::Email(_) => "email".to_owned(),
        }
    }
}

/// What the manifest records: when each place got this version's announcement, and why the
/// others did not.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Announced {
    version: String,
    #[serde(default)]
    sent: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    failed: std::collections::BTreeMap<String, String>,
}

impl AnnouncePlan {
    fn places(&self) -> Vec<Place<'_>> {
        let c = &self.config;
        let mut places: Vec<Place<'_>> = c
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| Place::Webhook(i, w))
            .collect();
        for (service, hook) in [
            ("slack", &c.slack),
            ("discord", &c.discord),
            ("mattermost", &c.mattermost),
        ] {
            if let Some(hook) = hook {
                places.push(Place::Chat(service, hook));
            }
        }
        if let Some(email) = &c.email {
            places.push(Place::Email(email));
        }
        places
    }

    /// Every variable a variable or password is read from, each checked before publishing.
    fn variables(&self) -> Vec<&str> {
        self.places()
            .into_iter()
            .flat_map(|place| match place {
                Place::Webhook(_, w) => vec![w.url_env.as_str()],
                Place::Chat(_, h) => vec![h.url_env.as_str()],
                Place::Email(e) => [&e.username_env, &e.password_env]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect(),
            })
            .collect()
    }

    /// The template variables with the release's own: `name`, and `url` (the GitHub release
    /// page, once it exists).
    fn vars(&self, manifest: &Manifest) -> serde_json::Value {
        let mut vars = self.vars.clone();
        vars["name"] = json!(self.name);
        vars["url"] = json!(
            manifest
                .published
                .github
                .as_ref()
                .map(|g| g.url.clone())
                .unwrap_or_default()
        );
        vars
    }

    async fn deliver(&self, place: &Place<'_>, vars: &serde_json::Value) -> Result<(), Error> {
        let value = minijinja::Value::from_serialize(vars);
        let render = |text: &str| {
            crate::template::render(text, &value)
                .map_err(|e| Error::Usage(format!("[release.announce]: {}", e.message)))
        };
        let message = render(self.config.message.as_deref().unwrap_or(DEFAULT_MESSAGE))?;
        let url =
            |var: &str| crate::http::feed::credential(var, "announce", "the webhook's address");
        match place {
            Place::Webhook(_, hook) => {
                let body = match &hook.template {
                    Some(template) => {
                        let mut with_message = vars.clone();
                        with_message["message"] = json!(message);
                        crate::template::render_json(
                            template,
                            &minijinja::Value::from_serialize(&with_message),
                        )
                        .map_err(|e| {
                            Error::Usage(format!(
                                "[release.announce] webhook template: {}",
                                e.message
                            ))
                        })?
                    }
                    None => json!({
                        "project": vars["project"], "version": vars["version"], "tag": vars["tag"],
                        "name": vars["name"], "url": vars["url"], "text": message,
                    }),
                };
                send::webhook(&hook.url_env, &url(&hook.url_env)?, body)
                    .await
                    .map_err(Error::work)
            }
            Place::Chat(service, hook) => {
                // Discord calls the text `content`; Slack and Mattermost call it `text`.
                let field = if *service == "discord" {
                    "content"
                } else {
                    "text"
                };
                send::webhook(
                    &hook.url_env,
                    &url(&hook.url_env)?,
                    json!({ field: message }),
                )
                .await
                .map_err(Error::work)
            }
            Place::Email(email) => {
                let subject = match &email.subject {
                    Some(subject) => render(subject)?,
                    None => format!("{} released", self.name),
                };
                let credentials = match (&email.username_env, &email.password_env) {
                    (Some(user), Some(password)) => Some((
                        crate::http::feed::credential(user, "announce", "the SMTP user")?,
                        crate::http::feed::credential(password, "announce", "the SMTP password")?,
                    )),
                    _ => None,
                };
                send::email(
                    email,
                    send::Mail {
                        subject: &subject,
                        body: &format!("{message}\n"),
                        credentials,
                        ca_file: self.ca_file.clone(),
                    },
                )
                .await
                .map_err(Error::work)
            }
        }
    }
}

impl Planned for AnnouncePlan {
    fn describe(&self, say: &dyn Fn(String)) {
        let places: Vec<String> = self.places().iter().map(Place::key).collect();
        say(format!(
            "would announce {} to {} once {} published it and the check passed, once per place",
            self.name,
            places.join(", "),
            if self.waits_for.is_empty() {
                "every channel".to_owned()
            } else {
                self.waits_for.join(", ")
            }
        ));
    }

    fn preflight(&self) -> Result<(), Error> {
        for var in self.variables() {
            if std::env::var(var).map_or(true, |v| v.trim().is_empty()) {
                return Err(Error::Usage(format!(
                    "[release.announce] reads ${var}, which is not set"
                )));
            }
        }
        Ok(())
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let waiting: Vec<&str> = self
                .waits_for
                .iter()
                .copied()
                .filter(|c| !run.manifest.published.is_whole(c))
                .collect();
            if !waiting.is_empty() {
                run.tell(
                    Level::Warn,
                    format!(
                        "not announcing {} yet: {} has not published it; the run that completes the release announces it",
                        self.name,
                        waiting.join(", ")
                    ),
                );
                return Ok(json!({ "waiting": waiting }));
            }
            let mut announced: Announced = run
                .manifest
                .published
                .channels
                .get("announce")
                .and_then(|r| serde_json::from_value(r.clone()).ok())
                .filter(|a: &Announced| a.version == self.version)
                .unwrap_or_default();
            announced.version = self.version.clone();
            let vars = self.vars(run.manifest);
            for place in self.places() {
                let key = place.key();
                if announced.sent.contains_key(&key) {
                    run.say(format!("{} was announced to {key} already", self.name));
                    continue;
                }
                match self.deliver(&place, &vars).await {
                    Ok(()) => {
                        announced.failed.remove(&key);
                        announced.sent.insert(
                            key.clone(),
                            humantime::format_rfc3339_seconds(std::time::SystemTime::now())
                                .to_string(),
                        );
                        run.say(format!("announced {} to {key}", self.name));
                    }
                    Err(e) => {
                        let why = crate::error::chain(&e);
                        run.tell(
                            Level::Warn,
                            format!("could not announce to {key}: {why}; the release is out, and a re-run tries {key} again"),
                        );
                        announced.failed.insert(key, why);
                    }
                }
                // Recorded at once, so an interrupted run never announces twice.
                let record =
                    serde_json::to_value(&announced).map_err(|e| Error::Internal(e.to_string()))?;
                run.manifest.published.record("announce", record);
                run.record()?;
            }
            serde_json::to_value(&announced).map_err(|e| Error::Internal(e.to_string()))
        })
    }

    fn recheck<'a>(&'a self, _: &'a Manifest) -> Rechecked<'a> {
        // An announcement is not a file anyone downloads.
        Box::pin(async { Ok(Vec::new()) })
    }
}
