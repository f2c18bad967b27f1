//! `[release.announce]` against a local HTTP receiver (webhook, Slack, Discord) and a real
//! SMTP server (aiosmtpd, STARTTLS and AUTH required): one message per place per version, a
//! failed place retried alone by the next run, and the release never failed by it.

use crate::common::built_tiny;
use crate::common::fake_github::FakeGithub;
use crate::common::receivers::{HttpReceiver, SmtpServer};
use crate::common::{shipit, text};
use crate::release::TOKEN;

const SMTP_PASSWORD: &str = "smtp-Secret-0451";

#[test]
fn each_place_gets_one_announcement_per_version_and_a_failed_one_is_retried_alone() {
    let http = HttpReceiver::start();
    let smtp = SmtpServer::start("ada", SMTP_PASSWORD);
    let announce = format!(
        "\n[release.announce]\nwebhooks = [{{ url_env = \"HOOK_URL\" }}]\n\
         slack = {{ url_env = \"SLACK_URL\" }}\ndiscord = {{ url_env = \"DISCORD_URL\" }}\n\
         email = {{ host = \"127.0.0.1\", port = {}, ca_file = \"{}\", from = \"shipit <releases@example.com>\", \
         to = [\"users@example.com\"], username_env = \"SMTP_USER\", password_env = \"SMTP_PASSWORD\" }}\n",
        smtp.port,
        smtp.ca.display()
    );
    let dir = built_tiny("1.0.0", &announce);
    let fake = FakeGithub::start(TOKEN);
    let slack_url = format!("{}/slack", http.url);
    let release = || {
        let out = shipit(dir.path())
            .arg("release")
            .env("GITHUB_API_URL", &fake.url)
            .env("GITHUB_TOKEN", TOKEN)
            .env("HOOK_URL", format!("{}/hook", http.url))
            .env("SLACK_URL", &slack_url)
            .env("DISCORD_URL", format!("{}/discord", http.url))
            .env("SMTP_USER", "ada")
            .env("SMTP_PASSWORD", SMTP_PASSWORD)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        for secret in [SMTP_PASSWORD, slack_url.as_str()] {
            assert!(
                !stdout.contains(secret) && !stderr.contains(secret),
                "{secret} shown:\n{stderr}"
            );
        }
        stderr
    };
    let page = "https://github.com/acme/tiny/releases/tag/v1.0.0";
    let line = format!("tiny 1.0.0 is out: {page}");

    // Discord refuses: the release still succeeds, and says what to expect.
    http.fail("/discord");
    let stderr = release();
    assert!(stderr.contains("could not announce to discord"), "{stderr}");
    let hook = http.at("/hook");
    assert_eq!(hook.len(), 1, "{stderr}");
    assert_eq!(hook[0].body["version"], "1.0.0");
    assert_eq!(hook[0].body["name"], "tiny 1.0.0");
    assert_eq!(hook[0].body["url"], page);
    assert_eq!(http.at("/slack")[0].body["text"], line.as_str());
    assert!(http.at("/discord").is_empty());
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("Subject: tiny 1.0.0 released"),
        "{}",
        mails[0]
    );
    assert!(mails[0].contains(&line), "{}", mails[0]);

    // The next run sends only what did not get through; the one after, nothing.
    http.heal();
    let stderr = release();
    assert!(
        stderr.contains("announced tiny 1.0.0 to discord"),
        "{stderr}"
    );
    assert!(
        stderr.contains("was announced to slack already"),
        "{stderr}"
    );
    release();
    assert_eq!(http.at("/discord").len(), 1);
    assert_eq!(http.at("/discord")[0].body["content"], line.as_str());
    assert_eq!(http.at("/hook").len(), 1);
    assert_eq!(http.at("/slack").len(), 1);
    assert_eq!(smtp.mails().len(), 1);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dist/manifest.json")).unwrap(),
    )
    .unwrap();
    let sent = manifest["published"]["announce"]["sent"]
        .as_object()
        .unwrap();
    let mut places: Vec<&String> = sent.keys().collect();
    places.sort();
    assert_eq!(places, ["discord", "email", "slack", "webhooks[0]"]);
}
