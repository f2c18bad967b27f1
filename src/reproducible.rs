//! Makes linked binaries byte-reproducible where linkers write the wall clock or randomness:
//!
//! - PE (Windows): the COFF header's and every debug directory entry's time stamp become the
//!   source date; a CodeView record's PDB GUID is derived from the file's content (age 1); the
//!   header checksum is recomputed when the linker wrote one.
//! - Mach-O (macOS, thin or universal): `LC_UUID` is derived from the content; the debug map's
//!   `N_OSO` entries lose the object files' modification times; an ad-hoc code signature's page
//!   hashes are recomputed afterwards, so the signature still holds.
//!
//! ELF needs none of this (its build id is already a content hash). Derived identifiers are
//! SHA-256 of the file with the identifier itself (and a code signature) left out, so two builds
//! of the same bytes get the same identifier and different bytes different ones.

use sha2::{Digest, Sha256};

/// An executable whose structures do not parse (or cannot be redone here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(String);

/// Normalises `data` in place; returns whether anything changed. Files of other formats, and
/// structures that do not parse, are left alone.
pub fn normalize(data: &mut [u8], epoch: u32) -> Result<bool, Malformed> {
    let before = Sha256::digest(&*data);
    match data.get(..4) {
        Some([b'M', b'Z', ..]) => pe(data, epoch)?,
        Some([0xcf, 0xfa, 0xed, 0xfe]) => macho(data)?,
        Some([0xca, 0xfe, 0xba, 0xbe]) => fat(data)?,
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

const LC_SYMTAB: u32 = 0x2;
const LC_UUID: u32 = 0x1b;
const LC_CODE_SIGNATURE: u32 = 0x1d;
const N_OSO: u8 = 0x66;
const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
const CS_HASHTYPE_SHA256: u8 = 2;

/// One 64-bit little-endian Mach-O image (a whole file, or a slice of a universal one).
fn macho(data: &mut [u8]) -> Result<(), Malformed> {
    let bad = || Malformed("a Mach-O file whose load commands do not parse".into());
    let ncmds = u32_le(data, 16).ok_or_else(bad)? as usize;
    let mut at = 32;
    let (mut uuid, mut symtab, mut signature) = (None, None, None);
    for _ in 0..ncmds {
        let cmd = u32_le(data, at).ok_or_else(bad)?;
        let size = u32_le(data, at + 4).ok_or_else(bad)? as usize;
        match cmd {
            LC_UUID => uuid = Some(at + 8),
            LC_SYMTAB => {
                let off = u32_le(data, at + 8).ok_or_else(bad)? as usize;
                let n = u32_le(data, at + 12).ok_or_else(bad)? as usize;
                symtab = Some((off, n));
            }
            LC_CODE_SIGNATURE => {
                let off = u32_le(data, at + 8).ok_or_else(bad)? as usize;
                let len = u32_le(data, at + 12).ok_or_else(bad)? as usize;
                signature = Some((off, len));
            }
            _ => {}
        }
        if size < 8 {
            return Err(bad());
        }
        at += size;
    }
    // The debug map names object files with their modification times: build times.
    if let Some((off, n)) = symtab {
        for i in 0..n {
            let entry = off + i * 16;
            if data.get(entry + 4) == Some(&N_OSO) {
                put(data, entry + 8, &0u64.to_le_bytes())?;
            }
        }
    }
    if let Some(uuid) = uuid {
        put(data, uuid, &[0; 16])?;
        let signed_end = signature.map_or(data.len(), |(off, _)| off.min(data.len()));
        let id = derived_id(&Sha256::digest(&data[..signed_end]));
        put(data, uuid, &id)?;
    }
    if let Some((off, len)) = signature {
        resign(data, off, len)?;
    }
    Ok(())
}

/// Recomputes the page hashes of every code directory of an embedded (ad-hoc) signature.
fn resign(data: &mut [u8], off: usize, len: usize) -> Result<(), Malformed> {
    let bad = || Malformed("a code signature that does not parse".into());
    if u32_be(data, off) != Some(CSMAGIC_EMBEDDED_SIGNATURE) {
        return Ok(());
    }
    let count = u32_be(data, off + 8).ok_or_else(bad)? as usize;
    for i in 0..count {
        let blob = off + u32_be(data, off + 12 + i * 8 + 4).ok_or_else(bad)? as usize;
        if blob >= off + len || u32_be(data, blob) != Some(CSMAGIC_CODEDIRECTORY) {
            continue;
        }
        let hash_offset = u32_be(data, blob + 16).ok_or_else(bad)? as usize;
        let slots = u32_be(data, blob + 28).ok_or_else(bad)? as usize;
        let code_limit = u32_be(data, blob + 32).ok_or_else(bad)? as usize;
        let hash_size = *data.get(blob + 36).ok_or_else(bad)? as usize;
        let hash_type = *data.get(blob + 37).ok_or_else(bad)?;
        let page_log = *data.get(blob + 39).ok_or_else(bad)? as u32;
        if hash_type != CS_HASHTYPE_SHA256 || hash_size != 32 || page_log > 20 {
            return Err(Malformed(format!(
                "a code signature with hash type {hash_type} cannot be redone here; only SHA-256 ad-hoc signatures are"
            )));
        }
        let page = 1usize << page_log;
        for slot in 0..slots {
            let start = slot * page;
            let end = (start + page).min(code_limit).min(off);
            let hash = Sha256::digest(data.get(start..end).ok_or_else(bad)?);
            put(data, blob + hash_offset + slot * hash_size, &hash)?;
        }
    }
    Ok(())
}

/// A universal binary: each 64-bit slice on its own.
fn fat(data: &mut [u8]) -> Result<(), Malformed> {
    let bad = || Malformed("a universal binary whose header does not parse".into());
    let count = u32_be(data, 4).ok_or_else(bad)? as usize;
    // Java class files share the magic; they have far more "architectures".
    if count == 0 || count > 16 {
        return Ok(());
    }
    for i in 0..count {
        let entry = 8 + i * 20;
        let off = u32_be(data, entry + 8).ok_or_else(bad)? as usize;
        let size = u32_be(data, entry + 12).ok_or_else(bad)? as usize;
        let slice = data.get_mut(off..off + size).ok_or_else(bad)?;
        if slice.get(..4) == Some(&[0xcf, 0xfa, 0xed, 0xfe]) {
            macho(slice)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(normalize(&mut a, 315_532_800).unwrap());
        assert!(normalize(&mut b, 315_532_800).unwrap());
        assert_eq!(a, b);
        assert_eq!(&a[0x88..0x8c], &315_532_800u32.to_le_bytes());
        assert_eq!(&a[0x204..0x208], &315_532_800u32.to_le_bytes());
        assert_ne!(&a[0x304..0x314], &[0; 16]);
        assert_eq!(&a[0x314..0x318], &1u32.to_le_bytes());
        assert_eq!(u32_le(&a, 0x98 + 64), Some(pe_checksum(&a, 0x98 + 64)));
        // Other content, another GUID.
        let mut c = pe_with_codeview(0x6b04_a775, [1; 16]);
        c[0x3f0] = 9;
        normalize(&mut c, 315_532_800).unwrap();
        assert_ne!(&c[0x304..0x314], &a[0x304..0x314]);
        assert!(
            !normalize(&mut a, 315_532_800).unwrap(),
            "already normalized"
        );
    }

    /// A minimal arm64 Mach-O: UUID, a symbol table with one N_OSO entry, and an ad-hoc
    /// signature over the first 0x1000 bytes (one page).
    fn macho_signed(uuid: [u8; 16], mtime: u64) -> Vec<u8> {
        let mut d = vec![0u8; 0x1200];
        d[..4].copy_from_slice(&[0xcf, 0xfa, 0xed, 0xfe]);
        d[16..20].copy_from_slice(&3u32.to_le_bytes());
        let mut at = 32;
        let mut cmd = |d: &mut Vec<u8>, words: &[u32], extra: &[u8]| {
            for (i, w) in words.iter().enumerate() {
                d[at + i * 4..at + i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            d[at + words.len() * 4..at + words.len() * 4 + extra.len()].copy_from_slice(extra);
            at += words[1] as usize;
        };
        cmd(&mut d, &[LC_UUID, 24], &uuid);
        cmd(&mut d, &[LC_SYMTAB, 24, 0x800, 1, 0x900, 16], &[]);
        cmd(&mut d, &[LC_CODE_SIGNATURE, 16, 0x1000, 0x200], &[]);
        d[0x804] = N_OSO;
        d[0x808..0x810].copy_from_slice(&mtime.to_le_bytes());
        let sig = 0x1000;
        d[sig..sig + 4].copy_from_slice(&CSMAGIC_EMBEDDED_SIGNATURE.to_be_bytes());
        d[sig + 8..sig + 12].copy_from_slice(&1u32.to_be_bytes());
        d[sig + 16..sig + 20].copy_from_slice(&20u32.to_be_bytes()); // blob at +20
        let cd = sig + 20;
        d[cd..cd + 4].copy_from_slice(&CSMAGIC_CODEDIRECTORY.to_be_bytes());
        d[cd + 16..cd + 20].copy_from_slice(&64u32.to_be_bytes()); // hashOffset
        d[cd + 28..cd + 32].copy_from_slice(&1u32.to_be_bytes()); // one code slot
        d[cd + 32..cd + 36].copy_from_slice(&0x1000u32.to_be_bytes()); // codeLimit
        d[cd + 36] = 32;
        d[cd + 37] = CS_HASHTYPE_SHA256;
        d[cd + 39] = 12;
        d
    }

    #[test]
    fn macho_uuid_debug_map_times_and_signature_are_redone() {
        let mut a = macho_signed([3; 16], 1_700_000_000);
        let mut b = macho_signed([4; 16], 1_700_000_999);
        normalize(&mut a, 0).unwrap();
        normalize(&mut b, 0).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[0x808..0x810], &[0; 8], "N_OSO time cleared");
        assert_ne!(&a[40..56], &[0; 16]);
        let page_hash = Sha256::digest(&a[..0x1000]);
        let slot = 0x1000 + 20 + 64;
        assert_eq!(&a[slot..slot + 32], page_hash.as_slice(), "signature holds");
        // A universal binary of two such slices.
        let mut fat = vec![0u8; 0x3000];
        fat[..4].copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe]);
        fat[4..8].copy_from_slice(&1u32.to_be_bytes());
        fat[16..20].copy_from_slice(&0x1000u32.to_be_bytes());
        fat[20..24].copy_from_slice(&0x1200u32.to_be_bytes());
        fat[0x1000..0x2200].copy_from_slice(&macho_signed([5; 16], 42));
        normalize(&mut fat, 0).unwrap();
        assert_eq!(&fat[0x1000..0x2200], &a[..]);
    }

    #[test]
    fn other_files_are_left_alone() {
        let mut elf = b"\x7fELF rest".to_vec();
        assert!(!normalize(&mut elf, 1).unwrap());
        let mut class = vec![0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 50];
        assert!(!normalize(&mut class, 1).unwrap());
    }
}
