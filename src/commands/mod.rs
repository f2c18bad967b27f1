//! One function per command: each turns parsed arguments into work and returns how it ended.

mod build;
mod ci;
mod deploy;
mod doctor;
mod init;
mod keygen;
mod merge;
mod release;
mod verify;

use std::sync::Arc;

use clap::Parser;
use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::cli::{Cli, Command};
use crate::config::StageKinds;
use crate::config::{self, ConfigError};
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::plan::kinds;
use crate::secrets::Masker;
use crate::ui::{Printer, UiOptions};
use crate::{plan, ui};

/// Everything a command needs from the command line and the environment.
pub struct Session {
    /// Parsed global options.
    pub cli: Cli,
    /// Output settings.
    pub ui: UiOptions,
    /// The one place that prints.
    pub printer: Printer,
}

/// Parses the command line, runs the command, reports errors. Returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Success
            };
        }
    };
    let ui = UiOptions::detect(cli.global.json, cli.global.verbosity(), cli.global.color);
    let masker = Arc::new(Masker::from_env());
    install_panic_hook(masker.clone());
    // Debug builds only: lets the tests prove a panic's message is masked and exits 3.
    if cfg!(debug_assertions)
        && let Ok(message) = std::env::var("SHIPIT_DEBUG_PANIC")
    {
        panic!("{message}");
    }
    init_tracing(ui.verbosity, masker.clone());
    let printer = Printer::new(masker, ui.color);
    let session = Session { cli, ui, printer };
    match run(&session) {
        Ok(code) => code,
        Err(error) => {
            report_error(&session, &error);
            error.exit_code()
        }
    }
}

/// A panic is a bug: its message is masked like any other output (it may quote a value that
/// holds a secret), and the process ends with exit 3 at once.
fn install_panic_hook(masker: Arc<Masker>) {
    std::panic::set_hook(Box::new(move |info| {
        let message = masker.mask(&info.to_string()).into_owned();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            format!("internal error (a bug in shipit, please report it): {message}\n").as_bytes(),
        );
        std::process::exit(ExitCode::Internal.code());
    }));
}

/// Diagnostics (`-vv`, `SHIPIT_LOG`) go to stderr through the masker too, whatever library
/// logs them.
fn init_tracing(verbosity: i8, masker: Arc<Masker>) {
    let level = match verbosity {
        i8::MIN..=1 => "off",
        2 => "shipit=debug",
        _ => "shipit=trace",
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("SHIPIT_LOG").unwrap_or_else(|_| level.into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(MaskedStderr(masker))
        .without_time()
        .try_init();
}

/// Hands tracing one buffer per event; the event is masked and written when it is dropped.
struct MaskedStderr(Arc<Masker>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskedStderr {
    type Writer = MaskedEvent;

    fn make_writer(&'a self) -> MaskedEvent {
        MaskedEvent {
            masker: self.0.clone(),
            buf: Vec::new(),
        }
    }
}

/// One tracing event on its way to stderr.
struct MaskedEvent {
    masker: Arc<Masker>,
    buf: Vec<u8>,
}

impl std::io::Write for MaskedEvent {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskedEvent {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            self.masker.mask(&text).as_bytes(),
        );
    }
}

fn run(session: &Session) -> Result<ExitCode, Error> {
    let global = &session.cli.global;
    match &session.cli.command {
        Command::Build(args) => build::run(session, args),
        Command::Plan(args) => {
            let loaded = config::load(&global.pipeline, kinds::BUILTINS)?;
            let facts = Facts::gather(&loaded, FactsOptions::from(args))?;
            let plan = plan::build(&loaded, &facts)?;
            if global.json {
                let text = serde_json::to_string_pretty(&plan)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                session.printer.out(&text);
            } else {
                session.printer.out(&plan.to_string());
            }
            Ok(ExitCode::Success)
        }
        Command::Check => {
            // The whole file: its text, then everything the plan resolves against the project
            // (packages, binaries, features, files, keys and their passwords), as a build would.
            let loaded = config::load(&global.pipeline, kinds::BUILTINS)?;
            let facts = Facts::gather(&loaded, FactsOptions::default())?;
            let plan = plan::build(&loaded, &facts)?;
            build::signing_keys(&plan)?;
            let stages = loaded.file.stages.len();
            if global.json {
                let value =
                    serde_json::json!({"file": global.pipeline, "valid": true, "stages": stages});
                session.printer.out(&value.to_string());
            } else if global.verbosity() >= 0 {
                session.printer.err(&format!(
                    "{}: valid, {stages} stages",
                    global.pipeline.display()
                ));
            }
            Ok(ExitCode::Success)
        }
        Command::Init(args) => init::run(session, args),
        Command::Doctor => doctor::run(session),
        Command::Ci(crate::cli::CiCommand::Github(args)) => ci::github(session, args),
        Command::Schema => {
            let schema = kinds::BUILTINS.pipeline_schema();
            let text =
                serde_json::to_string_pretty(schema).map_err(|e| Error::Internal(e.to_string()))?;
            session.printer.out(&text);
            Ok(ExitCode::Success)
        }
        Command::Version => {
            let target = env!("SHIPIT_BUILD_TARGET");
            session
                .printer
                .out(&format!("shipit {} ({target})", env!("CARGO_PKG_VERSION")));
            Ok(ExitCode::Success)
        }
        Command::Release(args) => release::run(session, args),
        Command::Deploy(args) => deploy::run(session, args),
        Command::Rollback(args) => deploy::rollback(session, args),
        Command::Keygen(args) => keygen::run(session, args),
        Command::Verify(args) => verify::run(session, args),
    }
}

/// The async runtime commands run their work on.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

/// Runs `work` to its end on a new runtime, or stops it on Ctrl-C / SIGTERM.
fn block_on_interruptible<T>(
    work: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let runtime = runtime()?;
    let result = runtime.block_on(async {
        let interrupt = tokio_util::sync::CancellationToken::new();
        tokio::spawn(cancel_on_signal(interrupt.clone()));
        tokio::select! {
            result = work => result,
            _ = interrupt.cancelled() => Err(Error::Interrupted),
        }
    });
    runtime.shutdown_background();
    result
}

/// Cancels `token` on Ctrl-C or SIGTERM.
pub(crate) async fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    token.cancel();
}

/// Appends `key=value` lines to `$GITHUB_OUTPUT`, when it is set (GitHub Actions step outputs).
fn github_output(pairs: &[(&str, String)]) -> Result<(), Error> {
    let Some(path) = std::env::var_os("GITHUB_OUTPUT") else {
        return Ok(());
    };
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        for (key, value) in pairs {
            writeln!(file, "{key}={value}")?;
        }
        Ok(())
    };
    write().map_err(|e| Error::Failed(format!("cannot write $GITHUB_OUTPUT: {e}")))
}

/// Prints an error the way its kind deserves: located diagnostics for config problems.
fn report_error(session: &Session, error: &Error) {
    let printer = &session.printer;
    if session.ui.json {
        let value = match error {
            Error::Config(config) => serde_json::json!({
                "event": "error",
                "kind": "config",
                "message": config.to_string(),
                "problems": config.problems().iter().map(|p| serde_json::json!({
                    "location": config.location(p),
                    "message": p.message,
                    "help": p.help,
                })).collect::<Vec<_>>(),
            }),
            other => {
                serde_json::json!({"event": "error", "kind": format!("{:?}", other.exit_code()).to_lowercase(), "message": other.to_string()})
            }
        };
        printer.out(&value.to_string());
        return;
    }
    match error {
        Error::Config(config) => printer.err(&render_config_error(config, session.ui.color)),
        // Reported stage by stage (with annotations under GitHub Actions) as they ended.
        Error::StagesFailed => return,
        other => {
            let prefix = if session.ui.color {
                console::style("error:").red().bold().to_string()
            } else {
                "error:".to_string()
            };
            printer.err(&format!("{prefix} {other}"));
        }
    }
    if session.ui.github {
        printer.out(&format!(
            "::error::{}",
            ui::github::escape(&error.to_string())
        ));
    }
}

/// Renders every problem with its snippet, caret and hint, then a one-line summary.
pub fn render_config_error(error: &ConfigError, color: bool) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    // Never split target names such as `linux-x64-musl` at their hyphens.
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false)
        .with_word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = String::new();
    for diagnostic in error.diagnostics() {
        let _ = handler.render_report(&mut out, &diagnostic);
    }
    out.push_str(&format!("error: {}", error));
    out
}
