//! `shipit keygen`: a new minisign key pair, or with `--pgp` an OpenPGP one; the secret key
//! encrypted unless asked not to.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::Session;
use crate::cli::KeygenArgs;
use crate::error::Error;
use crate::exit::ExitCode;
use crate::minisign::SecretKey;

/// Writes the key pair.
pub fn run(session: &Session, args: &KeygenArgs) -> Result<ExitCode, Error> {
    let (secret_default, public_default) = if args.pgp {
        ("shipit-pgp.key", "shipit-pgp.asc")
    } else if args.cosign {
        ("cosign.key", "cosign.pub")
    } else {
        ("shipit.key", "shipit.pub")
    };
    let secret_path = args
        .secret_key
        .clone()
        .unwrap_or_else(|| PathBuf::from(secret_default));
    let public_path = args
        .public_key
        .clone()
        .unwrap_or_else(|| PathBuf::from(public_default));
    for path in [&secret_path, &public_path] {
        // `symlink_metadata`: a dangling link is still something --force would replace.
        if path.symlink_metadata().is_ok() && !args.force {
            return Err(Error::Usage(format!(
                "{} exists; pass --force to replace it (the old key can then no longer sign)",
                path.display()
            )));
        }
    }
    let password = if args.unencrypted {
        None
    } else {
        Some(password(&args.password_env)?)
    };
    if args.cosign {
        let key = crate::cosign::CosignKey::generate();
        let failed = |e: crate::cosign::CosignError| Error::Failed(e.to_string());
        let sealed = key
            .to_encrypted_pem(password.as_deref().unwrap_or(""))
            .map_err(failed)?;
        write_file(&secret_path, &sealed, 0o600)?;
        write_file(&public_path, &key.public().to_pem().map_err(failed)?, 0o644)?;
        session.printer.err(&format!(
            "wrote {} (cosign, encrypted with your password) and {}\n\
             use it from a secret: COSIGN_KEY=\"$(cat {})\", then in [release.docker]\n\
             sign = {{ key = {{ env = \"COSIGN_KEY\", password_env = \"{}\" }} }}",
            secret_path.display(),
            public_path.display(),
            secret_path.display(),
            args.password_env,
        ));
        return Ok(ExitCode::Success);
    }
    if args.pgp {
        let (secret, public) = crate::openpgp::generate(&args.user_id, password.as_deref())
            .map_err(|e| Error::Failed(e.to_string()))?;
        write_file(&secret_path, &secret, 0o600)?;
        write_file(&public_path, &public, 0o644)?;
        let password_part = match &password {
            Some(_) => format!(", password_env = \"{}\"", args.password_env),
            None => String::new(),
        };
        session.printer.err(&format!(
            "wrote {} (OpenPGP, {}) and {}\n\
             use it from a secret: SHIPIT_PGP_KEY=\"$(cat {})\", then\n\
             key = {{ env = \"SHIPIT_PGP_KEY\"{password_part} }} in a `uses = \"rpm\"` stage or [release.apt] / [release.yum]",
            secret_path.display(),
            if password.is_some() { "encrypted with your password" } else { "NOT encrypted" },
            public_path.display(),
            secret_path.display(),
        ));
        return Ok(ExitCode::Success);
    }
    let (key, secret_text) =
        SecretKey::generate(password.as_deref()).map_err(|e| Error::Failed(e.to_string()))?;
    let public = key.public();
    write_file(&secret_path, &secret_text, 0o600)?;
    write_file(&public_path, &public.to_text(), 0o644)?;
    let protection = if password.is_some() {
        "encrypted with your password"
    } else {
        "NOT encrypted"
    };
    // An unencrypted key has no password to name.
    let key_table = match &password {
        Some(_) => format!(
            "{{ file = \"{}\", password_env = \"{}\" }}",
            secret_path.display(),
            args.password_env
        ),
        None => format!("{{ file = \"{}\" }}", secret_path.display()),
    };
    session.printer.err(&format!(
        "wrote {} ({protection}) and {}; key id {}\n\
         sign with: [stages.sign] uses = \"sign\", key = {key_table}\n\
         verify with: minisign -V -p {} -m <file>   or   shipit verify dist/ --key {}",
        secret_path.display(),
        public_path.display(),
        public.key_id(),
        public_path.display(),
        public_path.display()
    ));
    Ok(ExitCode::Success)
}

/// The password from the environment, or asked twice on a terminal.
fn password(var: &str) -> Result<String, Error> {
    if let Some(password) = std::env::var(var).ok().filter(|p| !p.is_empty()) {
        crate::secrets::register(&password);
        return Ok(password);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(format!(
            "no password: set `{var}`, or pass --unencrypted for a key without one"
        )));
    }
    let first = rpassword::prompt_password("Password for the new secret key: ")
        .map_err(|e| Error::Usage(format!("cannot read the password: {e}")))?;
    let again = rpassword::prompt_password("Password again: ")
        .map_err(|e| Error::Usage(format!("cannot read the password: {e}")))?;
    if first != again {
        return Err(Error::Usage("the passwords differ".into()));
    }
    if first.is_empty() {
        return Err(Error::Usage(
            "an empty password; pass --unencrypted for a key without one".into(),
        ));
    }
    Ok(first)
}

/// Writes `text` to a new private temporary file beside `path` (`O_EXCL`, mode 0600), sets
/// `mode`, then renames it over `path`: an existing file's mode is never kept and a symlink at
/// `path` is replaced, not written through.
fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let failed =
        |e: &dyn std::fmt::Display| Error::Failed(format!("cannot write {}: {e}", path.display()));
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", parent.display())))?;
    let mut file = tempfile::Builder::new()
        .prefix(".shipit-key-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(parent)
        .map_err(|e| failed(&e))?;
    file.write_all(text.as_bytes()).map_err(|e| failed(&e))?;
    file.as_file().sync_all().map_err(|e| failed(&e))?;
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(mode))
        .map_err(|e| failed(&e))?;
    file.persist(path).map_err(|e| failed(&e.error))?;
    Ok(())
}
