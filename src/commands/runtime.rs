//! The async runtime commands run network work on, how Ctrl-C / SIGTERM stop it, and the step
//! outputs they leave for GitHub Actions.

use crate::error::Error;

/// The async runtime commands run their work on.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the async runtime: {e}")))
}

/// Runs `work` to its end on a new runtime, or stops it on Ctrl-C / SIGTERM.
pub(super) fn block_on_interruptible<T>(
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
pub(super) fn github_output(pairs: &[(&str, String)]) -> Result<(), Error> {
    let Some(path) = std::env::var_os(crate::env_vars::GITHUB_OUTPUT) else {
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

/// A panic is a bug: its message is masked like any other output (it may quote a value that
/// holds a secret), and the process ends with exit 3 at once.
pub(super) fn install_panic_hook(masker: std::sync::Arc<crate::secrets::Masker>) {
    std::panic::set_hook(Box::new(move |info| {
        let message = masker.mask(&info.to_string()).into_owned();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            format!("internal error (a bug in shipit, please report it): {message}\n").as_bytes(),
        );
        std::process::exit(crate::exit::ExitCode::Internal.code());
    }));
}
