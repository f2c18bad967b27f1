//! Mach-O images (a thin file, or each slice of a universal one): `LC_UUID` derived from the
//! content; the debug map's `N_OSO` entries (the object files a debugger reads the DWARF from)
//! lose their modification times and name the objects under the build's remapped folders, as
//! Apple's `ld -oso_prefix` would (zig's linker has no such flag); the ad-hoc code signature is
//! laid out again for the new size and its page hashes recomputed, so it still holds.
//!
//! Renaming the objects changes the string table's size. That is redone only when the string
//! table and the signature are the last things in `__LINKEDIT`, the segment last in the file
//! (as zig and ld64 lay them out); another layout keeps its names.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::{Malformed, derived_id, put, u32_be, u32_le};
use crate::remap::{self, Remap};

const LC_SYMTAB: u32 = 0x2;
const LC_DYSYMTAB: u32 = 0xb;
const LC_SEGMENT_64: u32 = 0x19;
const LC_UUID: u32 = 0x1b;
const LC_CODE_SIGNATURE: u32 = 0x1d;
const LC_DYLD_INFO: u32 = 0x22;
const LC_DYLD_INFO_ONLY: u32 = 0x8000_0022;
/// `linkedit_data_command`s other than the signature: split info, function starts, data in
/// code, code-signing DRs, optimisation hints, exports trie, chained fixups.
const LINKEDIT_DATA: [u32; 7] = [0x1e, 0x26, 0x29, 0x2b, 0x2e, 0x8000_0033, 0x8000_0034];
const N_OSO: u8 = 0x66;
const NLIST_LEN: usize = 16;
const CPU_TYPE_ARM64: u32 = 0x0100_000c;
const CSMAGIC_EMBEDDED_SIGNATURE: u32 = 0xfade_0cc0;
const CSMAGIC_CODEDIRECTORY: u32 = 0xfade_0c02;
const CS_HASHTYPE_SHA256: u8 = 2;

/// Where a Mach-O image keeps what normalising touches.
struct Layout {
    cputype: u32,
    uuid: Option<usize>,
    symtab: Option<Symtab>,
    /// The `LC_CODE_SIGNATURE` command, and the signature's offset and size.
    signature: Option<(usize, usize, usize)>,
    /// The `__LINKEDIT` segment command.
    linkedit: Option<usize>,
    /// Where the `__LINKEDIT` data other than the strings and the signature ends.
    other_end: usize,
}

/// The `LC_SYMTAB` command and the tables it names.
struct Symtab {
    cmd: usize,
    symoff: usize,
    nsyms: usize,
    stroff: usize,
    strsize: usize,
}

fn layout(data: &[u8]) -> Result<Layout, Malformed> {
    let bad = || Malformed("a Mach-O file whose load commands do not parse".into());
    let word = |at: usize| u32_le(data, at).map(|w| w as usize).ok_or_else(bad);
    let mut layout = Layout {
        cputype: word(4)? as u32,
        uuid: None,
        symtab: None,
        signature: None,
        linkedit: None,
        other_end: 0,
    };
    let mut ends = Vec::new();
    let mut at = 32;
    for _ in 0..word(16)? {
        let size = word(at + 4)?;
        match word(at)? as u32 {
            LC_UUID => layout.uuid = Some(at + 8),
            LC_SYMTAB => {
                let symtab = Symtab {
                    cmd: at,
                    symoff: word(at + 8)?,
                    nsyms: word(at + 12)?,
                    stroff: word(at + 16)?,
                    strsize: word(at + 20)?,
                };
                ends.push(symtab.symoff + symtab.nsyms * NLIST_LEN);
                layout.symtab = Some(symtab);
            }
            LC_CODE_SIGNATURE => layout.signature = Some((at, word(at + 8)?, word(at + 12)?)),
            LC_SEGMENT_64 if data.get(at + 8..at + 19) == Some(b"__LINKEDIT\0") => {
                layout.linkedit = Some(at);
            }
            LC_DYSYMTAB => {
                // toc, module table, external refs, indirect symbols, external and local
                // relocations: offset, count, and each entry's size.
                for (field, entry) in (32..).step_by(8).zip([8, 56, 4, 4, 8, 8]) {
                    let count = word(at + field + 4)?;
                    if count > 0 {
                        ends.push(word(at + field)? + count * entry);
                    }
                }
            }
            LC_DYLD_INFO | LC_DYLD_INFO_ONLY => {
                for field in (8..48).step_by(8) {
                    ends.push(word(at + field)? + word(at + field + 4)?);
                }
            }
            cmd if LINKEDIT_DATA.contains(&cmd) => ends.push(word(at + 8)? + word(at + 12)?),
            _ => {}
        }
        if size < 8 {
            return Err(bad());
        }
        at += size;
    }
    layout.other_end = ends.into_iter().max().unwrap_or(0);
    Ok(layout)
}

/// Normalises one 64-bit little-endian Mach-O image.
pub(super) fn normalize(data: &mut Vec<u8>, remaps: &[Remap]) -> Result<(), Malformed> {
    let mut layout = layout(data)?;
    if let Some(symtab) = &layout.symtab {
        // The debug map names object files with their modification times: build times.
        for i in 0..symtab.nsyms {
            let entry = symtab.symoff + i * NLIST_LEN;
            if data.get(entry + 4) == Some(&N_OSO) {
                put(data, entry + 8, &0u64.to_le_bytes())?;
            }
        }
        if strings_are_last(data, &layout)
            && let Some(renamed) = renamed_objects(data, symtab, remaps)?
        {
            relink(data, &layout, renamed)?;
            layout = self::layout(data)?;
        }
    }
    if let Some(uuid) = layout.uuid {
        put(data, uuid, &[0; 16])?;
        let signed_end = layout
            .signature
            .map_or(data.len(), |(_, off, _)| off.min(data.len()));
        let id = derived_id(&Sha256::digest(&data[..signed_end]));
        put(data, uuid, &id)?;
    }
    if let Some((_, off, len)) = layout.signature {
        resign(data, off, len)?;
    }
    Ok(())
}

/// Whether the string table (then the signature, if any) ends `__LINKEDIT`, the file's end.
fn strings_are_last(data: &[u8], layout: &Layout) -> bool {
    let (Some(symtab), Some(linkedit)) = (&layout.symtab, layout.linkedit) else {
        return false;
    };
    let segment_end = u32_le(data, linkedit + 40)
        .zip(u32_le(data, linkedit + 48))
        .map(|(off, size)| off as u64 + size as u64);
    let strings_end = symtab.stroff + symtab.strsize;
    let rest_fits = match layout.signature {
        Some((_, off, len)) => strings_end <= off && off + len <= data.len(),
        None => strings_end <= data.len(),
    };
    layout.other_end <= symtab.stroff
        && rest_fits
        && segment_end == Some(data.len() as u64)
        && u32_le(data, linkedit + 44) == Some(0)
        && u32_le(data, linkedit + 52) == Some(0)
}

/// A string table with the debug map's object files renamed, and the symbols whose string
/// moved (their `n_strx` field's offset and its new value).
struct Renamed {
    table: Vec<u8>,
    moved: Vec<(usize, u32)>,
}

/// The string table with each `N_OSO` name under a remapped folder renamed; `None` when no
/// name changes, or when another symbol shares the bytes of one that would.
fn renamed_objects(
    data: &[u8],
    symtab: &Symtab,
    remaps: &[Remap],
) -> Result<Option<Renamed>, Malformed> {
    let bad = || Malformed("a Mach-O symbol table that does not parse".into());
    let table = data
        .get(symtab.stroff..symtab.stroff + symtab.strsize)
        .ok_or_else(bad)?;
    let strx = |i: usize| u32_le(data, symtab.symoff + i * NLIST_LEN).ok_or_else(bad);
    // Each name's start, end (its NUL) and new bytes.
    let mut names: BTreeMap<usize, (usize, Vec<u8>)> = BTreeMap::new();
    for i in 0..symtab.nsyms {
        if data.get(symtab.symoff + i * NLIST_LEN + 4) != Some(&N_OSO) {
            continue;
        }
        let start = strx(i)? as usize;
        let len = table
            .get(start..)
            .and_then(|t| t.iter().position(|&b| b == 0))
            .ok_or_else(bad)?;
        let renamed = std::str::from_utf8(&table[start..start + len])
            .ok()
            .and_then(|name| remap::apply(remaps, name));
        if let Some(name) = renamed {
            names.insert(start, (start + len, name.into_bytes()));
        }
    }
    if names.is_empty() {
        return Ok(None);
    }
    let mut new = Vec::with_capacity(table.len());
    // Old start, old end, new start, new length.
    let mut spans = Vec::with_capacity(names.len());
    let mut copied = 0;
    for (&start, (end, name)) in &names {
        if start < copied {
            return Ok(None);
        }
        new.extend_from_slice(&table[copied..start]);
        spans.push((start, *end, new.len(), name.len()));
        new.extend_from_slice(name);
        copied = *end;
    }
    new.extend_from_slice(&table[copied..]);
    // The old padding goes; the new table is padded to 8 bytes as the linkers pad it.
    while new.ends_with(&[0, 0]) {
        new.pop();
    }
    new.resize(new.len().next_multiple_of(8), 0);
    let mut moved = Vec::new();
    for i in 0..symtab.nsyms {
        let old = strx(i)? as usize;
        let before = spans.partition_point(|(start, ..)| *start <= old);
        let new_strx = match before.checked_sub(1).map(|s| spans[s]) {
            None => old,
            Some((start, _, to, _)) if old == start => to,
            Some((_, end, to, len)) if old >= end => to + len + (old - end),
            Some(_) => return Ok(None),
        };
        if new_strx >= new.len() {
            return Ok(None);
        }
        if new_strx != old {
            let value = u32::try_from(new_strx).map_err(|_| bad())?;
            moved.push((symtab.symoff + i * NLIST_LEN, value));
        }
    }
    Ok(Some(Renamed { table: new, moved }))
}

/// Puts the renamed string table in place and lays out what follows it again: the signature
/// (16-byte aligned, sized for the new length) and `__LINKEDIT`'s sizes.
fn relink(data: &mut Vec<u8>, layout: &Layout, renamed: Renamed) -> Result<(), Malformed> {
    let too_big = || Malformed("a Mach-O file over 4 GiB".into());
    let (Some(symtab), Some(linkedit)) = (&layout.symtab, layout.linkedit) else {
        return Ok(());
    };
    for (at, strx) in renamed.moved {
        put(data, at, &strx.to_le_bytes())?;
    }
    let signature = layout
        .signature
        .map(|(cmd, off, len)| (cmd, data[off..off + len].to_vec()));
    data.truncate(symtab.stroff);
    data.extend_from_slice(&renamed.table);
    let strsize = u32::try_from(renamed.table.len()).map_err(|_| too_big())?;
    put(data, symtab.cmd + 20, &strsize.to_le_bytes())?;
    if let Some((cmd, old)) = signature {
        data.resize(data.len().next_multiple_of(16), 0);
        let off = data.len();
        let blob = resized_signature(&old, off)?;
        data.extend_from_slice(&blob);
        data.resize(data.len().next_multiple_of(16), 0);
        let off = u32::try_from(off).map_err(|_| too_big())?;
        let len = u32::try_from(data.len()).map_err(|_| too_big())? - off;
        put(data, cmd + 8, &off.to_le_bytes())?;
        put(data, cmd + 12, &len.to_le_bytes())?;
    }
    let fileoff = u32_le(data, linkedit + 40).unwrap_or(0) as u64;
    let filesize = data.len() as u64 - fileoff;
    let page = if layout.cputype == CPU_TYPE_ARM64 {
        0x4000
    } else {
        0x1000
    };
    put(data, linkedit + 48, &filesize.to_le_bytes())?;
    put(
        data,
        linkedit + 32,
        &filesize.next_multiple_of(page).to_le_bytes(),
    )?;
    Ok(())
}

/// The fields of a code directory (the blob at `at`) that normalising reads.
struct CodeDirectory {
    hash_offset: usize,
    slots: usize,
    code_limit: usize,
    hash_size: usize,
    hash_type: u8,
    page_log: u32,
}

impl CodeDirectory {
    fn read(data: &[u8], at: usize) -> Option<CodeDirectory> {
        let word = |field: usize| u32_be(data, at + field).map(|w| w as usize);
        let directory = CodeDirectory {
            hash_offset: word(16)?,
            slots: word(28)?,
            code_limit: word(32)?,
            hash_size: *data.get(at + 36)? as usize,
            hash_type: *data.get(at + 37)?,
            page_log: *data.get(at + 39)? as u32,
        };
        (directory.page_log <= 20).then_some(directory)
    }
}

/// The embedded signature `old` for a file whose signed part now ends at `code_limit`: each
/// code directory gets as many page slots as that needs (their hashes filled in by
/// [`resign`]); other blobs are kept.
fn resized_signature(old: &[u8], code_limit: usize) -> Result<Vec<u8>, Malformed> {
    let bad = || Malformed("a code signature that does not parse".into());
    if u32_be(old, 0) != Some(CSMAGIC_EMBEDDED_SIGNATURE) {
        return Ok(old.to_vec());
    }
    let count = u32_be(old, 8).ok_or_else(bad)? as usize;
    if count > 64 {
        return Err(bad());
    }
    let mut blobs = Vec::with_capacity(count);
    for i in 0..count {
        let kind = u32_be(old, 12 + i * 8).ok_or_else(bad)?;
        let off = u32_be(old, 16 + i * 8).ok_or_else(bad)? as usize;
        let len = u32_be(old, off + 4).ok_or_else(bad)? as usize;
        let mut blob = old.get(off..off + len).ok_or_else(bad)?.to_vec();
        if u32_be(&blob, 0) == Some(CSMAGIC_CODEDIRECTORY) {
            let cd = CodeDirectory::read(&blob, 0).ok_or_else(bad)?;
            if cd.hash_offset + cd.slots * cd.hash_size != len {
                return Err(Malformed(
                    "a code directory with data after its page hashes cannot be laid out again"
                        .into(),
                ));
            }
            let slots = code_limit.div_ceil(1 << cd.page_log);
            blob.truncate(cd.hash_offset);
            blob.resize(cd.hash_offset + slots * cd.hash_size, 0);
            let words = [(4, blob.len()), (28, slots), (32, code_limit)];
            for (at, value) in words {
                let value = u32::try_from(value).map_err(|_| bad())?;
                put(&mut blob, at, &value.to_be_bytes())?;
            }
        }
        blobs.push((kind, blob));
    }
    let header = 12 + 8 * count;
    let total = header + blobs.iter().map(|(_, b)| b.len()).sum::<usize>();
    let word = |v: usize| u32::try_from(v).map(u32::to_be_bytes).map_err(|_| bad());
    let mut out = Vec::with_capacity(total);
    out.extend(CSMAGIC_EMBEDDED_SIGNATURE.to_be_bytes());
    out.extend(word(total)?);
    out.extend(word(count)?);
    let mut at = header;
    for (kind, blob) in &blobs {
        out.extend(kind.to_be_bytes());
        out.extend(word(at)?);
        at += blob.len();
    }
    for (_, blob) in blobs {
        out.extend(blob);
    }
    Ok(out)
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
        let cd = CodeDirectory::read(data, blob).ok_or_else(bad)?;
        if cd.hash_type != CS_HASHTYPE_SHA256 || cd.hash_size != 32 {
            return Err(Malformed(format!(
                "a code signature with hash type {} cannot be redone here; only SHA-256 ad-hoc signatures are",
                cd.hash_type
            )));
        }
        let page = 1usize << cd.page_log;
        for slot in 0..cd.slots {
            let start = slot * page;
            let end = (start + page).min(cd.code_limit).min(off);
            let hash = Sha256::digest(data.get(start..end).ok_or_else(bad)?);
            put(data, blob + cd.hash_offset + slot * cd.hash_size, &hash)?;
        }
    }
    Ok(())
}

/// A universal binary: each 64-bit slice on its own, the file laid out again (as
/// [`crate::lipo`] assembles it) when a slice's size changed.
pub(super) fn fat(data: &mut Vec<u8>, remaps: &[Remap]) -> Result<(), Malformed> {
    let bad = || Malformed("a universal binary whose header does not parse".into());
    let count = u32_be(data, 4).ok_or_else(bad)? as usize;
    // Java class files share the magic; they have far more "architectures".
    if count == 0 || count > 16 {
        return Ok(());
    }
    let mut slices = Vec::with_capacity(count);
    for i in 0..count {
        let entry = 8 + i * 20;
        let off = u32_be(data, entry + 8).ok_or_else(bad)? as usize;
        let size = u32_be(data, entry + 12).ok_or_else(bad)? as usize;
        let mut slice = data.get(off..off + size).ok_or_else(bad)?.to_vec();
        if slice.get(..4) == Some(&[0xcf, 0xfa, 0xed, 0xfe]) {
            normalize(&mut slice, remaps)?;
        }
        slices.push((off, size, slice));
    }
    if slices.iter().all(|(_, size, slice)| slice.len() == *size) {
        for (off, size, slice) in slices {
            data[off..off + size].copy_from_slice(&slice);
        }
        return Ok(());
    }
    let views: Vec<&[u8]> = slices.iter().map(|(_, _, s)| s.as_slice()).collect();
    *data = crate::lipo::universal(&views).map_err(|e| Malformed(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const STROFF: usize = 0x900;

    /// A minimal arm64 Mach-O: UUID, `__LINKEDIT` from 0x800, a symbol table with one N_OSO
    /// entry naming `object` and one other symbol after it, and an ad-hoc signature over
    /// everything before it.
    fn macho_signed(uuid: [u8; 16], mtime: u64, object: &str) -> Vec<u8> {
        let mut d = vec![0u8; STROFF];
        d[..4].copy_from_slice(&[0xcf, 0xfa, 0xed, 0xfe]);
        d[4..8].copy_from_slice(&CPU_TYPE_ARM64.to_le_bytes());
        d[16..20].copy_from_slice(&4u32.to_le_bytes());
        // Strings: "\0", the object, "_main".
        let mut strings = vec![0u8];
        strings.extend(object.as_bytes());
        strings.push(0);
        let main = strings.len() as u32;
        strings.extend(b"_main\0");
        strings.resize(strings.len().next_multiple_of(8), 0);
        d.extend(&strings);
        d.resize(d.len().next_multiple_of(16), 0);
        let sig = d.len();
        let mut cd = vec![0u8; 64];
        cd[..4].copy_from_slice(&CSMAGIC_CODEDIRECTORY.to_be_bytes());
        let slots = sig.div_ceil(0x1000);
        cd[4..8].copy_from_slice(&((64 + slots * 32) as u32).to_be_bytes());
        cd[16..20].copy_from_slice(&64u32.to_be_bytes());
        cd[28..32].copy_from_slice(&(slots as u32).to_be_bytes());
        cd[32..36].copy_from_slice(&(sig as u32).to_be_bytes());
        cd[36] = 32;
        cd[37] = CS_HASHTYPE_SHA256;
        cd[39] = 12;
        cd.resize(64 + slots * 32, 0);
        d.extend(CSMAGIC_EMBEDDED_SIGNATURE.to_be_bytes());
        d.extend(((20 + cd.len()) as u32).to_be_bytes());
        d.extend(1u32.to_be_bytes());
        d.extend(0u32.to_be_bytes());
        d.extend(20u32.to_be_bytes());
        d.extend(&cd);
        let end = d.len();
        let mut at = 32;
        let mut cmd = |d: &mut Vec<u8>, words: &[u32], extra: &[u8]| {
            for (i, w) in words.iter().enumerate() {
                d[at + i * 4..at + i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            d[at + words.len() * 4..at + words.len() * 4 + extra.len()].copy_from_slice(extra);
            at += words[1] as usize;
        };
        cmd(&mut d, &[LC_UUID, 24], &uuid);
        cmd(
            &mut d,
            &[LC_SYMTAB, 24, 0x800, 2, STROFF as u32, strings.len() as u32],
            &[],
        );
        cmd(
            &mut d,
            &[LC_CODE_SIGNATURE, 16, sig as u32, (end - sig) as u32],
            &[],
        );
        let mut segment = [0u8; 64];
        segment[..11].copy_from_slice(b"__LINKEDIT\0");
        segment[32..40].copy_from_slice(&0x800u64.to_le_bytes());
        segment[40..48].copy_from_slice(&((end - 0x800) as u64).to_le_bytes());
        cmd(&mut d, &[LC_SEGMENT_64, 72], &segment);
        d[0x800..0x804].copy_from_slice(&1u32.to_le_bytes());
        d[0x804] = N_OSO;
        d[0x808..0x810].copy_from_slice(&mtime.to_le_bytes());
        d[0x810..0x814].copy_from_slice(&main.to_le_bytes());
        d[0x814] = 0x0f;
        d
    }

    fn remaps(target: &str) -> Vec<Remap> {
        vec![Remap {
            from: PathBuf::from(target),
            to: "/target".into(),
        }]
    }

    fn string_at(d: &[u8], strx_at: usize) -> String {
        let stroff = u32_le(d, 32 + 24 + 16).unwrap() as usize;
        let strx = u32_le(d, strx_at).unwrap() as usize;
        let s = &d[stroff + strx..];
        String::from_utf8(s[..s.iter().position(|&b| b == 0).unwrap()].to_vec()).unwrap()
    }

    fn signature_holds(d: &[u8]) {
        let l = layout(d).unwrap();
        let (_, sig, len) = l.signature.unwrap();
        assert_eq!(sig + len, d.len());
        let cd = sig + 20;
        let slots = u32_be(d, cd + 28).unwrap() as usize;
        assert_eq!(u32_be(d, cd + 32), Some(sig as u32), "code limit");
        assert_eq!(slots, sig.div_ceil(0x1000));
        for slot in 0..slots {
            let page = &d[slot * 0x1000..((slot + 1) * 0x1000).min(sig)];
            let at = cd + 64 + slot * 32;
            assert_eq!(
                &d[at..at + 32],
                Sha256::digest(page).as_slice(),
                "page {slot}"
            );
        }
        let linkedit = l.linkedit.unwrap();
        assert_eq!(u32_le(d, linkedit + 48), Some((d.len() - 0x800) as u32));
    }

    #[test]
    fn uuid_debug_map_times_and_signature_are_redone() {
        let mut a = macho_signed([3; 16], 1_700_000_000, "/o/a.o");
        let mut b = macho_signed([4; 16], 1_700_000_999, "/o/a.o");
        normalize(&mut a, &[]).unwrap();
        normalize(&mut b, &[]).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[0x808..0x810], &[0; 8], "N_OSO time cleared");
        assert_ne!(&a[40..56], &[0; 16]);
        signature_holds(&a);
        // A universal binary of two such slices.
        let mut fat_file = vec![0u8; 0x1000];
        fat_file[..4].copy_from_slice(&[0xca, 0xfe, 0xba, 0xbe]);
        fat_file[4..8].copy_from_slice(&1u32.to_be_bytes());
        let slice = macho_signed([5; 16], 42, "/o/a.o");
        fat_file[16..20].copy_from_slice(&0x1000u32.to_be_bytes());
        fat_file[20..24].copy_from_slice(&(slice.len() as u32).to_be_bytes());
        fat_file.extend(&slice);
        fat(&mut fat_file, &[]).unwrap();
        assert_eq!(&fat_file[0x1000..], &a[..]);
    }

    /// Regression (issue 31): the debug map named object files by the folder they were built
    /// in, so two clones linked different darwin binaries.
    #[test]
    fn objects_built_in_two_folders_get_one_name_and_a_signature_that_holds() {
        let short = "/t/aarch64-apple-darwin/release/deps/app-1.app.0.rcgu.o";
        let long = format!("/home/someone/a/much/longer/folder{}", &short[2..]);
        let mut a = macho_signed([1; 16], 7, short);
        let mut b = macho_signed([2; 16], 8, &long);
        normalize(&mut a, &remaps("/t")).unwrap();
        normalize(&mut b, &remaps("/home/someone/a/much/longer/folder")).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            string_at(&a, 0x800),
            "/target/aarch64-apple-darwin/release/deps/app-1.app.0.rcgu.o"
        );
        assert_eq!(
            string_at(&a, 0x810),
            "_main",
            "the symbol after it moved along"
        );
        signature_holds(&a);
        // A name crossing a page boundary changes how many pages are signed.
        let huge = format!("/h/{}/x.o", "d".repeat(0x1100));
        let mut c = macho_signed([1; 16], 7, &huge);
        normalize(&mut c, &remaps("/h")).unwrap();
        assert_eq!(
            string_at(&c, 0x800),
            format!("/target/{}/x.o", "d".repeat(0x1100))
        );
        signature_holds(&c);
        let mut d = macho_signed([1; 16], 7, &huge);
        normalize(&mut d, &remaps(&format!("/h/{}", "d".repeat(0x1100)))).unwrap();
        assert_eq!(string_at(&d, 0x800), "/target/x.o");
        signature_holds(&d);
        assert!(d.len() < c.len());
    }

    #[test]
    fn names_outside_the_remapped_folders_are_kept() {
        let mut a = macho_signed([1; 16], 7, "/elsewhere/a.o");
        let before = a.len();
        normalize(&mut a, &remaps("/t")).unwrap();
        assert_eq!(a.len(), before);
        assert_eq!(string_at(&a, 0x800), "/elsewhere/a.o");
        signature_holds(&a);
    }
}
