//! Reads an executable's header and checks it was built for the target it claims: a
//! misconfigured linker must never ship a Linux binary as `darwin-arm64`.

use std::fmt;
use std::path::Path;

use object::read::macho::{FatArch, MachOFatFile32, MachOFatFile64};
use object::{Architecture, FileKind, Object};

use crate::reproducible::Normalization;
use crate::targets::Target;

/// Executable container formats shipit builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Linux and the BSDs.
    Elf,
    /// macOS, one architecture.
    MachO,
    /// macOS, several architectures in one file.
    MachOFat,
    /// Windows.
    Pe,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Elf => "ELF",
            Format::MachO => "Mach-O",
            Format::MachOFat => "universal Mach-O",
            Format::Pe => "PE",
        })
    }
}

/// What a binary's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Container format.
    pub format: Format,
    /// Architectures, in the order the file lists them (one unless universal).
    pub arches: Vec<String>,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format, self.arches.join("+"))
    }
}

/// Why a binary cannot be read, shipped or normalised.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    /// The file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
    /// It is not an executable format shipit knows.
    #[error("{} is not an executable shipit knows: {reason}", path.display())]
    Unknown {
        /// The file.
        path: std::path::PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// It is an executable for another platform.
    #[error(transparent)]
    WrongPlatform(Box<WrongPlatform>),
    /// Its structures do not parse, so it cannot be made reproducible.
    #[error("{}: {source}", path.display())]
    Malformed {
        /// The file.
        path: std::path::PathBuf,
        /// What does not parse.
        source: crate::reproducible::Malformed,
    },
}

/// A binary for another platform than its target's.
#[derive(Debug, thiserror::Error)]
#[error("{} is {found}, but target `{target}` needs {want}; refusing to ship it (check the linker configured for {triple})", path.display())]
pub struct WrongPlatform {
    /// The file.
    pub path: std::path::PathBuf,
    /// What it is.
    pub found: Header,
    /// What the target needs.
    pub want: Header,
    /// The target's name.
    pub target: String,
    /// The target's triple.
    pub triple: String,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BinaryError {
    let on = crate::file_error::FileError::on(action, path);
    move |source| BinaryError::Io(on(source))
}

/// Reads the header of the executable at `path`.
pub fn read(path: &Path) -> Result<Header, BinaryError> {
    let data = std::fs::read(path).map_err(io("read", path))?;
    parse(&data).map_err(|reason| BinaryError::Unknown {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    })
}

/// Parses an executable's header from its bytes; what the parser said when it is none.
pub fn parse(data: &[u8]) -> Result<Header, crate::invalid::Invalid> {
    let kind = FileKind::parse(data).map_err(crate::invalid::Invalid::new)?;
    let format = match kind {
        FileKind::Elf32 | FileKind::Elf64 => Format::Elf,
        FileKind::MachO32 | FileKind::MachO64 => Format::MachO,
        FileKind::Pe32 | FileKind::Pe64 => Format::Pe,
        FileKind::MachOFat32 => {
            let fat = MachOFatFile32::parse(data).map_err(crate::invalid::Invalid::new)?;
            return Ok(fat_header(fat.arches().iter().map(|a| a.architecture())));
        }
        FileKind::MachOFat64 => {
            let fat = MachOFatFile64::parse(data).map_err(crate::invalid::Invalid::new)?;
            return Ok(fat_header(fat.arches().iter().map(|a| a.architecture())));
        }
        other => return Err(format!("unsupported file kind {other:?}").into()),
    };
    let file = object::File::parse(data).map_err(crate::invalid::Invalid::new)?;
    Ok(Header {
        format,
        arches: vec![arch_name(file.architecture())],
    })
}

fn fat_header(arches: impl Iterator<Item = Architecture>) -> Header {
    Header {
        format: Format::MachOFat,
        arches: arches.map(arch_name).collect(),
    }
}

/// shipit's architecture names (`x64`, `arm64`), as in target aliases.
fn arch_name(arch: Architecture) -> String {
    match arch {
        Architecture::X86_64 => "x64".into(),
        Architecture::Aarch64 => "arm64".into(),
        Architecture::I386 => "x86".into(),
        Architecture::Arm => "arm".into(),
        Architecture::Riscv64 => "riscv64".into(),
        Architecture::PowerPc64 => "ppc64le".into(),
        Architecture::S390x => "s390x".into(),
        Architecture::LoongArch64 => "loong64".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The header a binary for `target` must have.
pub fn expected(target: &Target) -> Header {
    let format = match target.os.as_str() {
        "darwin" if target.arch == "universal" => Format::MachOFat,
        "darwin" => Format::MachO,
        "windows" => Format::Pe,
        _ => Format::Elf,
    };
    let arches = if format == Format::MachOFat {
        vec!["x64".into(), "arm64".into()]
    } else {
        vec![target.arch.clone()]
    };
    Header { format, arches }
}

/// Checks that the binary at `path` is an executable for `target`.
pub fn verify(path: &Path, target: &Target) -> Result<Header, BinaryError> {
    let found = read(path)?;
    let want = expected(target);
    let arches_match = if want.format == Format::MachOFat {
        let mut found_sorted = found.arches.clone();
        found_sorted.sort();
        let mut want_sorted = want.arches.clone();
        want_sorted.sort();
        found_sorted == want_sorted
    } else {
        found.arches == want.arches
    };
    if found.format != want.format || !arches_match {
        return Err(BinaryError::WrongPlatform(Box::new(WrongPlatform {
            path: path.to_path_buf(),
            found,
            want,
            target: target.to_string(),
            triple: target.triple.clone(),
        })));
    }
    Ok(found)
}

/// Makes a linked binary reproducible where its linker wrote the wall clock, randomness or the
/// build's folders (PE time stamps and PDB GUID, Mach-O UUID, the debug map's times and object
/// names, and the ad-hoc signature over them); see [`crate::reproducible`]. ELF files are left
/// as they are.
pub fn normalize(path: &Path, how: &Normalization) -> Result<bool, BinaryError> {
    let mut data = std::fs::read(path).map_err(io("read", path))?;
    let changed = crate::reproducible::normalize(&mut data, how).map_err(|source| {
        BinaryError::Malformed {
            path: path.to_path_buf(),
            source,
        }
    })?;
    if changed {
        std::fs::write(path, &data).map_err(io("write", path))?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        let header = read(&exe).unwrap();
        assert_eq!(header.format, Format::Elf);
        let host = Target::from_triple(env!("SHIPIT_BUILD_TARGET")).unwrap();
        assert_eq!(header.arches, vec![host.arch.clone()]);
        verify(&exe, &host).unwrap();
    }

    #[test]
    fn rejects_a_binary_for_another_target() {
        let exe = std::env::current_exe().unwrap();
        let darwin = Target::parse("darwin-arm64", "x").unwrap();
        let err = verify(&exe, &darwin).unwrap_err().to_string();
        assert!(err.contains("needs Mach-O arm64"), "{err}");
        let windows = Target::parse("windows-x64", "x").unwrap();
        assert!(
            verify(&exe, &windows)
                .unwrap_err()
                .to_string()
                .contains("needs PE x64")
        );
    }

    #[test]
    fn rejects_non_executables() {
        assert!(parse(b"#!/bin/sh\necho hi\n").is_err());
    }

    #[test]
    fn expects_both_slices_in_a_universal_binary() {
        let universal = Target::parse("darwin-universal", "x").unwrap();
        assert_eq!(
            expected(&universal).to_string(),
            "universal Mach-O x64+arm64"
        );
    }
}
