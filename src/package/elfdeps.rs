//! An rpm's `Requires` from the binaries it ships, derived as rpm's own dependency generator
//! (`elfdeps --requires`) derives them: each shared library an executable needs
//! (`libc.so.6()(64bit)`), each symbol version it needs of one (`libc.so.6(GLIBC_2.34)(64bit)`),
//! and `rtld(GNU_HASH)` when it has only a GNU hash table. A static binary (musl) needs nothing.

use object::elf;
use object::read::elf::{Dyn, FileHeader};
use object::{Endianness, FileKind};

/// The `Requires` of the ELF executable `data`; none for anything else.
pub fn requires(data: &[u8]) -> Result<Vec<String>, object::Error> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf64) => of::<elf::FileHeader64<Endianness>>(data, true),
        Ok(FileKind::Elf32) => of::<elf::FileHeader32<Endianness>>(data, false),
        _ => Ok(Vec::new()),
    }
}

fn of<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
    wide: bool,
) -> Result<Vec<String>, object::Error> {
    let header = H::parse(data)?;
    let endian = header.endian()?;
    // rpm marks 64-bit dependencies, except on Alpha, which never had the marker.
    let marker = if wide && header.e_machine(endian) != elf::EM_ALPHA {
        "(64bit)"
    } else {
        ""
    };
    let sections = header.sections(endian, data)?;
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let mut requires = Vec::new();
    if let Some((mut needs, link)) = sections.gnu_verneed(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        while let Some((need, mut versions)) = needs.next()? {
            let file = text(need.file(endian, strings)?);
            while let Some(version) = versions.next()? {
                let name = text(version.name(endian, strings)?);
                push(&mut requires, format!("{file}({name}){marker}"));
            }
        }
    }
    let (mut hash, mut gnu_hash) = (false, false);
    if let Some((entries, link)) = sections.dynamic(endian, data)? {
        let strings = sections.strings(endian, data, link)?;
        for entry in entries {
            let tag = entry.d_tag(endian);
            if tag == elf::DT_NULL {
                break;
            } else if tag == elf::DT_NEEDED {
                let soname = text(entry.string(endian, strings)?);
                let dependency = if marker.is_empty() {
                    soname
                } else {
                    format!("{soname}(){marker}")
                };
                push(&mut requires, dependency);
            } else if tag == elf::DT_HASH {
                hash = true;
            } else if tag == elf::DT_GNU_HASH {
                gnu_hash = true;
            }
        }
    }
    if gnu_hash && !hash {
        push(&mut requires, "rtld(GNU_HASH)".into());
    }
    Ok(requires)
}

fn push(list: &mut Vec<String>, dependency: String) {
    if !list.contains(&dependency) {
        list.push(dependency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary itself is a glibc executable: it needs libc and its versions.
    #[test]
    fn a_glibc_executable_needs_libc_and_its_symbol_versions()
    -> Result<(), Box<dyn std::error::Error>> {
        let me = std::fs::read(std::env::current_exe()?)?;
        let found = requires(&me)?;
        assert!(found.iter().any(|r| r == "libc.so.6()(64bit)"), "{found:?}");
        assert!(
            found.iter().any(|r| r.starts_with("libc.so.6(GLIBC_2.")),
            "{found:?}"
        );
        assert_eq!(requires(b"#!/bin/sh\n")?, Vec::<String>::new());
        Ok(())
    }
}
