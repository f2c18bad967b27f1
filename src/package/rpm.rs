//! The `.rpm` writer, through the `rpm` crate (format v4; a zstd payload compressed on every
//! core, or gzip for rpm before 4.14). Signed with the stage's OpenPGP key when one is set: an RSA, EdDSA or ECDSA
//! header signature made at `SOURCE_DATE_EPOCH`, so a signed package is as reproducible as an
//! unsigned one.

use std::io::Read;

use rpm::{BuildConfig, CompressionWithLevel, Dependency, FileMode, FileOptions, PackageBuilder};

use super::{Content, Entry, PackageError, PackageSpec, scripts};
use crate::file_error::FileError;
use crate::openpgp::PgpKey;

pub(super) fn write(spec: &PackageSpec, key: Option<&PgpKey>) -> Result<usize, PackageError> {
    let meta = &spec.meta;
    let rpm_error = PackageError::Rpm;
    let mut builder = PackageBuilder::new(
        &meta.name,
        &meta.version,
        &meta.license,
        &meta.arch,
        &meta.summary,
    );
    builder.using_config(
        BuildConfig::v4()
            .source_date(u32::try_from(spec.mtime).unwrap_or(u32::MAX))
            .compression(match spec.compression {
                super::Compression::Zstd => CompressionWithLevel::Zstd(3),
                super::Compression::Gzip => CompressionWithLevel::Gzip(6),
            }),
    );
    builder.release(&meta.release);
    // rpmlint wants both; fixed values keep the package reproducible.
    builder.build_host("localhost");
    builder.add_changelog_entry(
        format!("{} - {}-{}", meta.maintainer, meta.version, meta.release),
        format!("- Release {}.", meta.version),
        u32::try_from(spec.mtime).unwrap_or(u32::MAX),
    );
    builder.packager(&meta.maintainer);
    builder.vendor(&meta.maintainer);
    builder.group(&meta.section);
    if !meta.description.is_empty() {
        builder.description(&meta.description);
    } else {
        builder.description(&meta.summary);
    }
    if let Some(homepage) = &meta.homepage {
        builder.url(homepage);
    }
    for (relations, add) in [
        (
            &meta.depends,
            PackageBuilder::requires as fn(&mut PackageBuilder, Dependency) -> &mut PackageBuilder,
        ),
        (&meta.recommends, PackageBuilder::recommends),
        (&meta.conflicts, PackageBuilder::conflicts),
        (&meta.provides, PackageBuilder::provides),
        (&meta.replaces, PackageBuilder::obsoletes),
    ] {
        for relation in relations {
            add(&mut builder, dependency(relation)?);
        }
    }
    // rpm packages own only what they install: the folders `/usr` or `/usr/bin` belong to the
    // distribution's `filesystem` package, so parents are not added as they are for deb.
    let mut requires: Vec<String> = Vec::new();
    let mut entries: Vec<&Entry> = spec.entries.iter().collect();
    entries.sort_by(|a, b| a.dst.cmp(&b.dst));
    for entry in &entries {
        let mode = u16::try_from(entry.mode).unwrap_or(0o644);
        match &entry.content {
            Content::File { src, config } => {
                let mut options = FileOptions::new(&entry.dst).mode(FileMode::regular(mode));
                if *config {
                    options = options.config().noreplace();
                }
                let bytes = super::read(src)?;
                // As rpm's generator does: only executables add what they link to.
                if entry.mode & 0o111 != 0 {
                    let needs = super::elfdeps::requires(&bytes).map_err(|e| {
                        PackageError::Refused(format!(
                            "{}: an executable whose ELF headers cannot be read: {e}",
                            src.display()
                        ))
                    })?;
                    for need in needs {
                        requires.push(need);
                    }
                }
                builder
                    .with_file_contents(bytes, options)
                    .map_err(|e| read_error(src, e))?;
            }
            Content::Gzipped { src } => {
                builder
                    .with_file_contents(
                        super::gzip_max(&super::read(src)?),
                        FileOptions::new(&entry.dst)
                            .mode(FileMode::regular(mode))
                            .doc(),
                    )
                    .map_err(rpm_error)?;
            }
            Content::Generated { bytes } => {
                builder
                    .with_file_contents(
                        bytes.clone(),
                        FileOptions::new(&entry.dst).mode(FileMode::regular(mode)),
                    )
                    .map_err(rpm_error)?;
            }
            Content::Dir => {
                builder
                    .with_dir_entry(FileOptions::dir(&entry.dst).mode(FileMode::dir(mode)))
                    .map_err(rpm_error)?;
            }
            Content::Symlink { target } => {
                builder
                    .with_symlink(FileOptions::symlink(&entry.dst, target))
                    .map_err(rpm_error)?;
            }
        }
    }
    requires.sort();
    requires.dedup();
    for need in requires {
        builder.requires(Dependency::any(need));
    }
    for (name, body) in scripts::rpm(spec)? {
        match name {
            "preinst" => builder.pre_install_script(body),
            "postinst" => builder.post_install_script(body),
            "prerm" => builder.pre_uninstall_script(body),
            _ => builder.post_uninstall_script(body),
        };
    }
    let package = match key {
        Some(key) => builder.build_and_sign(Signer(key)),
        None => builder.build(),
    }
    .map_err(|e| match e {
        rpm::Error::SignError(source) => match source.downcast::<crate::openpgp::PgpError>() {
            Ok(pgp) => PackageError::Sign(*pgp),
            Err(other) => PackageError::Rpm(rpm::Error::SignError(other)),
        },
        other => PackageError::Rpm(other),
    })?;
    package
        .write_file(&spec.output)
        .map_err(|e| read_error(&spec.output, e))?;
    Ok(entries.len())
}

/// An I/O error from the rpm crate becomes a [`FileError`] naming the file.
fn read_error(path: &std::path::Path, error: rpm::Error) -> PackageError {
    match error {
        rpm::Error::Io(source) => FileError::on("read", path)(source).into(),
        other => PackageError::Rpm(other),
    }
}

/// `name`, or `name OP version` with `OP` one of `< <= = >= >` (rpm's own syntax).
fn dependency(relation: &str) -> Result<Dependency, PackageError> {
    let words: Vec<&str> = relation.split_whitespace().collect();
    Ok(match words.as_slice() {
        [name] => Dependency::any(*name),
        [name, "=", version] => Dependency::eq(*name, *version),
        [name, "<", version] => Dependency::less(*name, *version),
        [name, "<=", version] => Dependency::less_eq(*name, *version),
        [name, ">", version] => Dependency::greater(*name, *version),
        [name, ">=", version] => Dependency::greater_eq(*name, *version),
        _ => {
            return Err(PackageError::Refused(format!(
                "rpm relation `{relation}` is not `name` or `name OP version`"
            )));
        }
    })
}

/// Checks an rpm relation the way [`dependency`] reads it.
pub fn check_relation(relation: &str) -> Result<(), String> {
    dependency(relation).map(drop).map_err(|e| e.to_string())
}

/// The stage's key, as the rpm crate's signer.
#[derive(Debug)]
struct Signer<'a>(&'a PgpKey);

impl rpm::signature::Signing for Signer<'_> {
    type Signature = Vec<u8>;

    fn sign(&self, data: impl Read, time: rpm::Timestamp) -> Result<Vec<u8>, rpm::Error> {
        self.0
            .sign_binary(data, u64::from(time.0))
            .map_err(|e| rpm::Error::SignError(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_use_rpm_operators() {
        assert!(dependency("glibc >= 2.31").is_ok());
        assert!(dependency("systemd").is_ok());
        assert!(dependency("glibc (>= 2.31)").is_err());
        assert!(dependency("a >= 1 b").is_err());
    }
}
