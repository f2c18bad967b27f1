//! Makes linked binaries byte-reproducible where linkers write the wall clock or randomness:
//!
//! - PE (Windows): the COFF header's and every debug directory entry's time stamp become the
//!   source date; a CodeView record's PDB GUID is derived from the file's content (age 1); the
//!   header checksum is recomputed when the linker wrote one.
//! - Mach-O (macOS, thin or universal): `LC_UUID` is derived from the content; the debug map's
//!   `N_OSO` entries lose the object files' modification times and name them under the build's
//!   remapped folders; an ad-hoc code signature is laid out again and its page hashes
//!   recomputed, so the signature still holds (see [`macho`]).
//!
//! ELF needs none of this (its build id is already a content hash). Derived identifiers are
//! SHA-256 of the file with the identifier itself (and a code signature) left out, so two builds
//! of the same bytes get the same identifier and different bytes different ones.

mod macho;

use sha2::{Digest, Sha256};

use crate::remap::Remap;

/// How the linked binaries of one build are normalised.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Normalization {
    /// The source date (`SOURCE_DATE_EPOCH`) time stamps become.
    pub epoch: u64,
    /// The build's folders and their names (see [`crate::remap`]), for the object files a
    /// Mach-O debug map names.
    pub remaps: Vec<Remap>,
}

/// An executable whose structures do not parse (or cannot be redone here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(String);

/// Normalises `data` in place; returns whether anything changed. Files of other formats, and
/// structures that do not parse, are left alone.
pub fn normalize(data: &mut Vec<u8>, how: &Normalization) -> Result<bool, Malformed> {
    let before = Sha256::digest(&*data);
    let epoch = u32::try_from(how.epoch).unwrap_or(u32::MAX);
    match data.get(..4) {
        Some([b'M', b'Z', ..]) => pe(data, epoch)?,
        Some([0xcf, 0xfa, 0xed, 0xfe]) => macho::normalize(data, &how.remaps)?,
        Some([0xca, 0xfe, 0xba, 0xbe]) => macho::fat(data, &how.remaps)?,
        _ => return Ok(false),
    }
    Ok(Sha256::digest(&*data) != before)
}

fn u16_le(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn u32_be(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn put(data: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), Malformed> {
    data.get_mut(at..at + bytes.len())
        .ok_or_else(|| Malformed(format!("offset {at} is past the end of the file")))?
        .copy_from_slice(bytes);
    Ok(())
}

/// A 16-byte identifier from SHA-256, marked as a name-based (version 5) RFC 4122 UUID.
fn derived_id(hash: &[u8]) -> [u8; 16] {
    let mut id = [0u8; 16];
    id.copy_from_slice(&hash[..16]);
    id[6] = (id[6] & 0x0f) | 0x50;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}

const PE_DEBUG_DIRECTORY: usize = 6;
const IMAGE_DEBUG_TYPE_CODEVIEW: u32 = 2;

fn pe(data: &mut [u8], epoch: u32) -> Result<(), Malformed> {
    let bad = || Malformed("a PE file whose headers do not parse".into());
    let pe = u32_le(data, 0x3c).ok_or_else(bad)? as usize;
    if data.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Ok(());
    }
    let sections = u16_le(data, pe + 6).ok_or_else(bad)? as usize;
    let optional_size = u16_le(data, pe + 20).ok_or_else(bad)? as usize;
    let opt = pe + 24;
    let (directories, count_at) = match u16_le(data, opt).ok_or_else(bad)? {
        0x10b => (opt + 96, opt + 92),
        0x20b => (opt + 112, opt + 108),
        _ => return Ok(()),
    };
    put(data, pe + 8, &epoch.to_le_bytes())?;
    let checksum_at = opt + 64;
    let section_table = opt + optional_size;
    let to_offset = |data: &[u8], rva: u32| -> Option<usize> {
        (0..sections).find_map(|i| {
            let s = section_table + i * 40;
            let (size, va) = (u32_le(data, s + 8)?, u32_le(data, s + 12)?);
            let (raw_size, raw) = (u32_le(data, s + 16)?, u32_le(data, s + 20)?);
            let end = va.checked_add(size.max(raw_size))?;
            (rva >= va && rva < end).then(|| (raw + (rva - va)) as usize)
        })
    };
    let mut guids = Vec::new();
    let directory_count = u32_le(data, count_at).unwrap_or(0) as usize;
    if directory_count > PE_DEBUG_DIRECTORY {
        let entry = directories + PE_DEBUG_DIRECTORY * 8;
        let (rva, size) = (
            u32_le(data, entry).ok_or_else(bad)?,
            u32_le(data, entry + 4).ok_or_else(bad)?,
        );
        if rva != 0
            && let Some(start) = to_offset(data, rva)
        {
            for i in 0..(size as usize / 28) {
                let d = start + i * 28;
                put(data, d + 4, &epoch.to_le_bytes())?;
                let kind = u32_le(data, d + 12).ok_or_else(bad)?;
                let raw = u32_le(data, d + 24).ok_or_else(bad)? as usize;
                if kind == IMAGE_DEBUG_TYPE_CODEVIEW && data.get(raw..raw + 4) == Some(b"RSDS") {
                    put(data, raw + 4, &[0; 16])?;
                    put(data, raw + 20, &1u32.to_le_bytes())?;
                    guids.push(raw + 4);
                }
            }
        }
    }
    let had_checksum = u32_le(data, checksum_at).is_some_and(|c| c != 0);
    put(data, checksum_at, &[0; 4])?;
    if !guids.is_empty() {
        let id = derived_id(&Sha256::digest(&*data));
        for at in guids {
            put(data, at, &id)?;
        }
    }
    if had_checksum {
        let sum = pe_checksum(data, checksum_at);
        put(data, checksum_at, &sum.to_le_bytes())?;
    }
    Ok(())
}

/// The PE image checksum: a 16-bit folded sum of the file (the field itself skipped), plus the
/// file's length.
pub fn pe_checksum(data: &[u8], field: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in data.chunks(2).enumerate() {
        let at = i * 2;
        if at >= field && at < field + 4 {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]) as u64;
        sum += word;
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    (sum as u32).wrapping_add(data.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: u64) -> Normalization {
        Normalization {
            epoch,
            remaps: Vec::new(),
        }
    }

    /// A minimal PE32+ with one section holding a debug directory with a CodeView record.
    fn pe_with_codeview(stamp: u32, guid: [u8; 16]) -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c] = 0x80;
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        d[0x86..0x88].copy_from_slice(&1u16.to_le_bytes()); // one section
        d[0x88..0x8c].copy_from_slice(&stamp.to_le_bytes());
        d[0x94..0x96].copy_from_slice(&240u16.to_le_bytes()); // optional header size
        let opt = 0x98;
        d[opt..opt + 2].copy_from_slice(&0x20bu16.to_le_bytes());
        d[opt + 64..opt + 68].copy_from_slice(&0x1234u32.to_le_bytes()); // a checksum
        d[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        let dd = opt + 112 + 6 * 8;
        d[dd..dd + 4].copy_from_slice(&0x1000u32.to_le_bytes());
        d[dd + 4..dd + 8].copy_from_slice(&28u32.to_le_bytes());
        let section = opt + 240;
        d[section + 8..section + 12].copy_from_slice(&0x100u32.to_le_bytes());
        d[section + 12..section + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        d[section + 16..section + 20].copy_from_slice(&0x100u32.to_le_bytes());
        d[section + 20..section + 24].copy_from_slice(&0x200u32.to_le_bytes());
        let entry = 0x200;
        d[entry + 4..entry + 8].copy_from_slice(&stamp.to_le_bytes());
        d[entry + 12..entry + 16].copy_from_slice(&2u32.to_le_bytes());
        d[entry + 24..entry + 28].copy_from_slice(&0x300u32.to_le_bytes());
        d[0x300..0x304].copy_from_slice(b"RSDS");
        d[0x304..0x314].copy_from_slice(&guid);
        d[0x314..0x318].copy_from_slice(&7u32.to_le_bytes());
        d
    }

    #[test]
    fn pe_stamps_and_pdb_guids_follow_the_content_not_the_clock() {
        let mut a = pe_with_codeview(0x6b04_a775, [1; 16]);
        let mut b = pe_with_codeview(0x6b04_b000, [2; 16]);
        assert!(normalize(&mut a, &at(315_532_800)).unwrap());
        assert!(normalize(&mut b, &at(315_532_800)).unwrap());
        assert_eq!(a, b);
        assert_eq!(&a[0x88..0x8c], &315_532_800u32.to_le_bytes());
        assert_eq!(&a[0x204..0x208], &315_532_800u32.to_le_bytes());
        assert_ne!(&a[0x304..0x314], &[0; 16]);
        assert_eq!(&a[0x314..0x318], &1u32.to_le_bytes());
        assert_eq!(u32_le(&a, 0x98 + 64), Some(pe_checksum(&a, 0x98 + 64)));
        // Other content, another GUID.
        let mut c = pe_with_codeview(0x6b04_a775, [1; 16]);
        c[0x3f0] = 9;
        normalize(&mut c, &at(315_532_800)).unwrap();
        assert_ne!(&c[0x304..0x314], &a[0x304..0x314]);
        assert!(
            !normalize(&mut a, &at(315_532_800)).unwrap(),
            "already normalized"
        );
    }

    #[test]
    fn other_files_are_left_alone() {
        let mut elf = b"\x7fELF rest".to_vec();
        assert!(!normalize(&mut elf, &at(1)).unwrap());
        let mut class = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 50];
        assert!(!normalize(&mut class, &at(1)).unwrap());
    }
}
