//! One function per command: each turns parsed arguments into work and returns how it ended.

mod build;
mod check;
mod ci;
mod deploy;
mod docs;
mod doctor;
mod init;
mod keygen;
mod merge;
mod pipeline;
mod release;
mod report;
mod reproduce;
mod runtime;
mod verify;

use std::sync::Arc;

use clap::Parser;

pub use pipeline::PIPELINE;
pub use report::render_config_error;
use report::report_error;
use runtime::{block_on_interruptible, cancel_on_signal, github_output, runtime};

use crate::cli::{Cli, Command};
use crate::config;
use crate::config::Extensions;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::facts::{Facts, FactsOptions};
use crate::plan;
use crate::secrets::Masker;
use crate::ui::{Printer, UiOptions};

/// Everything a command needs from the command line and the environment.
pub struct Session {
    /// Parsed global options.
    pub cli: Cli,
    /// Output settings.
    pub ui: UiOptions,
    /// The one place that prints.
    pub printer: Printer,
    /// When the command began.
    pub started: std::time::Instant,
}

/// Parses the command line, runs the command, reports errors. Returns the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if crate::cli::is_bare_run(&e) {
                let _ = <Cli as clap::CommandFactory>::command().print_help();
                return ExitCode::Success;
            }
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
    runtime::install_panic_hook(masker.clone());
    // Debug builds only: lets the tests prove a panic's message is masked and exits 3.
    if cfg!(debug_assertions)
        && let Ok(message) = std::env::var(crate::env_vars::SHIPIT_DEBUG_PANIC)
    {
        panic!("{message}");
    }
    init_tracing(ui.verbosity, masker.clone());
    let printer = Printer::new(masker, ui.color);
    let session = Session {
        cli,
        ui,
        printer,
        started: std::time::Instant::now(),
    };
    match run(&session) {
        Ok(code) => code,
        Err(error) => {
            report_error(&session, &error);
            error.exit_code()
        }
    }
}

/// Diagnostics (`-vv`, `SHIPIT_LOG`) go to stderr through the masker too, whatever library
/// logs them.
fn init_tracing(verbosity: i8, masker: Arc<Masker>) {
    let level = match verbosity {
        i8::MIN..=1 => "off",
        2 => "shipit=debug",
        _ => "shipit=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env(crate::env_vars::SHIPIT_LOG)
        .unwrap_or_else(|_| level.into());
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
            let loaded = config::load(&global.pipeline, PIPELINE)?;
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
        Command::Check => check::run(session),
        Command::Init(args) => init::run(session, args),
        Command::Doctor => doctor::run(session),
        Command::Ci(crate::cli::CiCommand::Github(args)) => ci::github(session, args),
        Command::Schema => {
            let schema = PIPELINE.pipeline_schema();
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
        Command::Reproduce(args) => reproduce::run(session, args),
        Command::Man(args) => docs::man(session, args),
        Command::Completions(args) => docs::completions(session, args),
    }
}
