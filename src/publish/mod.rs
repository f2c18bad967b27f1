//! Publishing what `shipit build` recorded in `dist/manifest.json`. Each channel is one file
//! behind [`Publisher`] plus one line in [`channels`]: it plans as printable data (what
//! `--dry-run` shows), checks what it needs before any channel starts, then publishes and
//! records the result in the manifest.

pub mod announce;
pub mod apt;
mod channel;
pub mod chocolatey;
pub mod docker;
pub mod folder;
pub mod git;
pub mod github;
pub mod homebrew;
pub mod npm;
pub mod recheck;
pub mod scoop;
pub mod windows;
pub mod winget;
pub mod yum;

use std::path::Path;

use futures_util::future::LocalBoxFuture;

use serde::de::DeserializeOwned;

use crate::config::{ChannelInfo, Loaded, Problem};
use crate::error::Error;
use crate::events::{Event, Level, Reporter};
use crate::facts::Facts;
use crate::manifest::Manifest;
pub use channel::Channel;

/// What a channel may read while it plans.
pub struct Context<'a> {
    /// The pipeline file.
    pub loaded: &'a Loaded,
    /// Facts of this run.
    pub facts: &'a Facts,
    /// What the build produced.
    pub manifest: &'a Manifest,
    /// The dist folder.
    pub dist: &'a Path,
}

/// What a channel works with while it publishes.
pub struct Run<'a> {
    /// The manifest, holding what earlier channels published.
    pub manifest: &'a mut Manifest,
    /// Where it is written.
    pub dist: &'a Path,
    /// Where messages and events go.
    pub reporter: &'a dyn Reporter,
    /// Step outputs (`$GITHUB_OUTPUT`) collected so far.
    pub outputs: Vec<(&'static str, String)>,
}

impl Run<'_> {
    /// Writes the manifest with what was published so far, so an interrupted release keeps it.
    pub fn record(&self) -> Result<(), Error> {
        self.manifest
            .write(self.dist)
            .map(|_| ())
            .map_err(|e| Error::Failed(e.to_string()))
    }

    /// An informational line.
    pub fn say(&self, text: String) {
        self.tell(Level::Info, text);
    }

    /// A line at `level`.
    pub fn tell(&self, level: Level, text: String) {
        self.reporter.report(&Event::Message { level, text: &text });
    }
}

/// A release channel.
pub trait Publisher: Sync {
    /// Its name: its section is `[release.<name>]`, and other channels name it in
    /// [`Publisher::needs`].
    fn name(&self) -> &'static str;

    /// One line about what it publishes.
    fn about(&self) -> &'static str;

    /// JSON Schema of its section (for `shipit schema`, and unknown keys in `shipit check`).
    fn schema(&self) -> schemars::Schema;

    /// Checks its section without project facts, as `shipit check` does; every problem
    /// located.
    fn check(&self, loaded: &Loaded) -> Vec<Problem>;

    /// Whether it tells people about the release rather than publishing it: it runs last,
    /// after the check, and only once every other configured channel has published.
    fn announces(&self) -> bool {
        false
    }

    /// Channels whose results it builds on: when one of them fails, it is skipped.
    fn needs(&self) -> &'static [&'static str] {
        &[]
    }

    /// Decides everything before any request, from the file, the facts and the manifest;
    /// `None` when the pipeline does not configure it.
    fn plan(&self, cx: &Context<'_>) -> Result<Option<Box<dyn Planned>>, Error>;
}

/// A channel's plan: printable, checkable, then applied.
pub trait Planned: Send + Sync {
    /// What it would do (`--dry-run`).
    fn describe(&self, say: &dyn Fn(String));

    /// Checks what it needs to run (a token) before any channel starts.
    fn preflight(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Publishes, records the result in the manifest and adds its step outputs; returns the
    /// record (for the `channel_finished` event).
    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>>;

    /// Re-reads what it published, as its users would get it, and compares every file with
    /// what it should hold (`release --check`).
    fn recheck<'a>(&'a self, manifest: &'a Manifest) -> recheck::Rechecked<'a>;
}

/// A channel that does nothing this time, and says why (a pre-release it does not publish).
pub struct Skipped(pub String);

impl Planned for Skipped {
    fn describe(&self, say: &dyn Fn(String)) {
        say(self.0.clone());
    }

    fn apply<'a>(
        &'a self,
        run: &'a mut Run<'_>,
    ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            run.say(self.0.clone());
            Ok(serde_json::json!({ "skipped": self.0 }))
        })
    }
    fn recheck<'a>(&'a self, _: &'a Manifest) -> recheck::Rechecked<'a> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Every channel, in the order they run: container images first, so the release announces
/// images that exist; then the GitHub release; then channels whose files point at the
/// release's download URLs (Homebrew, Scoop, winget, Chocolatey); then the package
/// repositories and registries, which hold their own copies; last, once all of them have
/// published and been checked, the announcements.
pub fn channels() -> &'static [&'static dyn Publisher] {
    &[
        &docker::Docker,
        &github::Github,
        &homebrew::Homebrew,
        &scoop::Scoop,
        &winget::Winget,
        &chocolatey::Chocolatey,
        &apt::Apt,
        &yum::Yum,
        &npm::Npm,
        &announce::Announce,
    ]
}

/// `shipit release --help`'s text: what it does and every channel, from the registry.
pub fn help() -> String {
    let mut text = String::from(
        "Publish dist/manifest.json through the channels the pipeline file configures, one \
         `[release.<channel>]` section each, in this order:\n",
    );
    for channel in channels() {
        text.push_str(&format!("\n  {:<11} {}", channel.name(), channel.about()));
    }
    text.push_str(
        "\n\nEvery channel plans and checks what it needs before any sends anything; each \
         records what it published in the manifest, so a re-run completes the rest without \
         duplicates.",
    );
    text
}

/// The channels as config sees them, for [`crate::config::Extensions::channels`].
pub fn channel_infos() -> &'static [ChannelInfo] {
    static INFOS: std::sync::OnceLock<Vec<ChannelInfo>> = std::sync::OnceLock::new();
    INFOS.get_or_init(|| {
        channels()
            .iter()
            .map(|c| ChannelInfo {
                name: c.name(),
                about: c.about(),
                schema: c.schema().to_value(),
            })
            .collect()
    })
}

/// The channel whose section is `[release.<name>]`.
pub fn find(name: &str) -> Option<&'static dyn Publisher> {
    channels().iter().copied().find(|c| c.name() == name)
}

/// A channel's section as `T`; `None` when the file has none. Loading checked it already, so
/// an error here is still reported as the located config error it is.
pub fn section<T: DeserializeOwned>(loaded: &Loaded, channel: &str) -> Result<Option<T>, Error> {
    loaded
        .channel_section(channel)
        .map_err(|problems| Error::Config(loaded.error(problems)))
}

/// Which of the configured channels one run publishes (`--only`, `--skip`): the others are
/// not planned, so they need nothing (no token) and keep what an earlier run recorded.
#[derive(Debug, Clone, Default)]
pub struct Pick {
    /// Only these (all when empty).
    pub only: Vec<String>,
    /// Not these.
    pub skip: Vec<String>,
}

impl Pick {
    /// Whether `channel` is published this run.
    pub fn takes(&self, channel: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|c| c == channel))
            && !self.skip.iter().any(|c| c == channel)
    }

    /// Every name given must be a channel `loaded` configures.
    fn check(&self, loaded: &Loaded) -> Result<(), Error> {
        let configured: Vec<&str> = channels()
            .iter()
            .map(|c| c.name())
            .filter(|n| loaded.file.release.0.contains_key(*n))
            .collect();
        for (flag, names) in [("--only", &self.only), ("--skip", &self.skip)] {
            if let Some(bad) = names.iter().find(|n| !configured.contains(&n.as_str())) {
                let what = if find(bad).is_some() {
                    format!("{} has no `[release.{bad}]`", loaded.path.display())
                } else {
                    format!("there is no channel `{bad}`")
                };
                return Err(Error::Usage(format!(
                    "{flag} {bad}: {what}; the configured channels are {}",
                    configured.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// The plans of every configured channel, in order.
pub struct ReleasePlan {
    planned: Vec<(&'static dyn Publisher, Box<dyn Planned>)>,
    /// Configured channels this run leaves alone.
    left: Vec<&'static str>,
}

/// Plans every configured channel `pick` takes; the first planning error stops it (nothing
/// was sent).
pub fn plan(cx: &Context<'_>, pick: &Pick) -> Result<ReleasePlan, Error> {
    pick.check(cx.loaded)?;
    let mut planned = Vec::new();
    let mut left = Vec::new();
    for channel in channels() {
        if !pick.takes(channel.name()) {
            if cx.loaded.file.release.0.contains_key(channel.name()) {
                left.push(channel.name());
            }
            continue;
        }
        if let Some(plan) = channel.plan(cx)? {
            planned.push((*channel, plan));
        }
    }
    if planned.is_empty() && !left.is_empty() {
        return Err(Error::Usage(format!(
            "--only/--skip leave no channel to publish (configured: {})",
            left.join(", ")
        )));
    }
    Ok(ReleasePlan { planned, left })
}

impl ReleasePlan {
    /// Whether no channel is configured.
    pub fn is_empty(&self) -> bool {
        self.planned.is_empty()
    }

    /// Every action, in order (`--dry-run`).
    pub fn describe(&self, say: &dyn Fn(String)) {
        self.say_left(say);
        for (_, plan) in &self.planned {
            plan.describe(say);
        }
    }

    /// Names the configured channels this run leaves alone, if any.
    fn say_left(&self, say: &dyn Fn(String)) {
        if !self.left.is_empty() {
            say(format!(
                "not publishing {} this run (--only/--skip): each keeps what an earlier run recorded",
                self.left.join(", ")
            ));
        }
    }

    /// Re-reads every channel and compares what it holds with the manifest; fails naming
    /// each file that differs or is missing.
    pub async fn recheck(&self, manifest: &Manifest, reporter: &dyn Reporter) -> Result<(), Error> {
        let mut results = Vec::new();
        for (channel, plan) in &self.planned {
            results.push((channel.name(), plan.recheck(manifest).await));
        }
        recheck::conclude(results, reporter)
    }

    /// Every channel's preflight, before any of them runs.
    pub fn preflight(&self) -> Result<(), Error> {
        self.planned
            .iter()
            .try_for_each(|(_, plan)| plan.preflight())
    }

    /// Publishes every channel in order. A failed channel does not stop the ones that do not
    /// need it; they run, and the failures are reported together at the end. With `check`,
    /// once every channel has published, each is read back and compared with the manifest.
    pub async fn apply(&self, run: &mut Run<'_>, check: bool) -> Result<(), Error> {
        self.say_left(&|text| run.say(text));
        self.publish(run, false).await?;
        if check {
            self.recheck(run.manifest, run.reporter).await?;
        }
        self.publish(run, true).await
    }

    /// Publishes the channels that announce, or those that do not, in order.
    async fn publish(&self, run: &mut Run<'_>, announcers: bool) -> Result<(), Error> {
        let mut failed: Vec<&'static str> = Vec::new();
        let mut errors = Vec::new();
        let planned = self
            .planned
            .iter()
            .filter(|(c, _)| c.announces() == announcers);
        for (channel, plan) in planned {
            let name = channel.name();
            if let Some(need) = channel.needs().iter().find(|n| failed.contains(n)) {
                failed.push(name);
                let why = format!("skipped: {need} failed");
                run.say(format!("skipping {name}: {need} failed"));
                run.reporter.report(&Event::ChannelFinished {
                    channel: name,
                    record: None,
                    error: Some(&why),
                });
                continue;
            }
            match plan.apply(run).await {
                Ok(record) => {
                    if record.get("skipped").is_some() {
                        // Nothing to publish this version: the channel is done with it.
                        run.manifest.published.record(name, record.clone());
                        run.record()?;
                    }
                    run.reporter.report(&Event::ChannelFinished {
                        channel: name,
                        record: Some(&record),
                        error: None,
                    })
                }
                Err(Error::Interrupted) => return Err(Error::Interrupted),
                Err(e) => {
                    let why = crate::error::chain(&e);
                    run.reporter.report(&Event::ChannelFinished {
                        channel: name,
                        record: None,
                        error: Some(&why),
                    });
                    failed.push(name);
                    errors.push((name, e));
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0).1),
            _ => Err(Error::work(ChannelsFailed(errors))),
        }
    }
}

/// More than one channel failed: each with its causes, one line per channel.
#[derive(Debug)]
struct ChannelsFailed(Vec<(&'static str, Error)>);

impl std::fmt::Display for ChannelsFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} channels failed:", self.0.len())?;
        for (channel, error) in &self.0 {
            write!(f, "\n  {channel}: {}", crate::error::chain(error))?;
        }
        Ok(())
    }
}

impl std::error::Error for ChannelsFailed {}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A channel that records that it ran and fails when told to.
    struct Fake {
        name: &'static str,
        needs: &'static [&'static str],
        fails: bool,
        ran: &'static Mutex<Vec<&'static str>>,
    }

    impl Publisher for Fake {
        fn name(&self) -> &'static str {
            self.name
        }
        fn needs(&self) -> &'static [&'static str] {
            self.needs
        }
        fn about(&self) -> &'static str {
            "a channel for this test"
        }
        fn schema(&self) -> schemars::Schema {
            schemars::json_schema!({"type": "object"})
        }
        fn check(&self, _: &Loaded) -> Vec<Problem> {
            Vec::new()
        }
        fn plan(&self, _: &Context<'_>) -> Result<Option<Box<dyn Planned>>, Error> {
            unreachable!("planned by the test")
        }
    }

    impl Planned for Fake {
        fn describe(&self, say: &dyn Fn(String)) {
            say(format!("would publish {}", self.name));
        }
        fn apply<'a>(
            &'a self,
            _: &'a mut Run<'_>,
        ) -> LocalBoxFuture<'a, Result<serde_json::Value, Error>> {
            Box::pin(async move {
                self.ran.lock().unwrap().push(self.name);
                if self.fails {
                    Err(Error::Failed(format!("{} refused", self.name)))
                } else {
                    Ok(serde_json::json!({"published": self.name}))
                }
            })
        }
        fn recheck<'a>(&'a self, _: &'a Manifest) -> recheck::Rechecked<'a> {
            Box::pin(async { Ok(Vec::new()) })
        }
    }

    fn fake(
        name: &'static str,
        needs: &'static [&'static str],
        fails: bool,
        ran: &'static Mutex<Vec<&'static str>>,
    ) -> (&'static dyn Publisher, Box<dyn Planned>) {
        let channel: &'static Fake = Box::leak(Box::new(Fake {
            name,
            needs,
            fails,
            ran,
        }));
        let planned = Box::new(Fake {
            name,
            needs,
            fails,
            ran,
        });
        (channel, planned)
    }

    #[test]
    fn a_failed_channel_skips_its_dependents_and_not_the_others() {
        static RAN: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        let plan = ReleasePlan {
            left: Vec::new(),
            planned: vec![
                fake("images", &[], true, &RAN),
                fake("release", &[], true, &RAN),
                fake("tap", &["release"], false, &RAN),
                fake("scoop", &[], false, &RAN),
            ],
        };
        let dist = tempfile::tempdir().unwrap();
        let mut manifest: Manifest = serde_json::from_value(serde_json::json!({
            "schema": 1, "project": "p", "version": "1.0.0", "tag": "v1.0.0",
            "commit": "c", "date": "d", "artifacts": []
        }))
        .unwrap();
        let reporter = Collect(Mutex::new(Vec::new()));
        let mut run = Run {
            manifest: &mut manifest,
            dist: dist.path(),
            reporter: &reporter,
            outputs: Vec::new(),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let error = runtime.block_on(plan.apply(&mut run, true)).unwrap_err();
        assert_eq!(*RAN.lock().unwrap(), ["images", "release", "scoop"]);
        assert_eq!(
            error.to_string(),
            "2 channels failed:\n  images: images refused\n  release: release refused"
        );
        let events = reporter.0.lock().unwrap();
        let finished: Vec<(&str, bool)> = events
            .iter()
            .filter(|e| e["event"] == "channel_finished")
            .map(|e| (e["channel"].as_str().unwrap(), e["ok"].as_bool().unwrap()))
            .collect();
        assert_eq!(
            finished,
            [
                ("images", false),
                ("release", false),
                ("tap", false),
                ("scoop", true)
            ]
        );
        assert_eq!(events.last().unwrap()["record"]["published"], "scoop");
        assert!(
            events
                .iter()
                .any(|e| e["text"] == "skipping tap: release failed"),
            "{events:?}"
        );
    }

    /// The events a release's channels send, as the fields this test reads.
    struct Collect(Mutex<Vec<serde_json::Value>>);

    impl Reporter for Collect {
        fn report(&self, event: &Event<'_>) {
            let value = match event {
                Event::ChannelFinished {
                    channel,
                    record,
                    error,
                } => serde_json::json!({
                    "event": "channel_finished", "channel": channel, "ok": error.is_none(),
                    "record": record,
                }),
                Event::Message { text, .. } => serde_json::json!({"text": text}),
                _ => return,
            };
            self.0.lock().unwrap().push(value);
        }
    }
}
