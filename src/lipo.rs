//! A universal (fat) Mach-O from single-architecture slices, as `lipo -create` makes it: a
//! big-endian fat header, one entry per slice, each slice at an offset aligned to its page
//! size. Deterministic: the same slices always give the same bytes.

use crate::invalid::Invalid;

const FAT_MAGIC: u32 = 0xcafe_babe;
const MH_MAGIC_64: [u8; 4] = [0xcf, 0xfa, 0xed, 0xfe];
const CPU_TYPE_ARM64: u32 = 0x0100_000c;
/// Entries of the fat header: cputype, cpusubtype, offset, size, align.
const FAT_ARCH_LEN: usize = 20;

/// The universal binary holding `slices` (64-bit little-endian Mach-O files, one per
/// architecture), x86_64 before arm64 as `lipo` orders them.
pub fn universal(slices: &[&[u8]]) -> Result<Vec<u8>, Invalid> {
    let mut entries = Vec::with_capacity(slices.len());
    for (i, slice) in slices.iter().enumerate() {
        if slice.get(..4) != Some(&MH_MAGIC_64[..]) {
            return Err(Invalid::new(format!(
                "slice {} is not a 64-bit Mach-O file",
                i + 1
            )));
        }
        let word = |at: usize| {
            slice
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let (Some(cputype), Some(cpusubtype)) = (word(4), word(8)) else {
            return Err(Invalid::new(format!("slice {} is cut short", i + 1)));
        };
        // Apple's page sizes: 16 KiB on arm64, 4 KiB elsewhere.
        let align: u32 = if cputype == CPU_TYPE_ARM64 { 14 } else { 12 };
        entries.push((cputype, cpusubtype, align, *slice));
    }
    if entries.len() < 2 {
        return Err(Invalid::new("a universal binary needs two slices or more"));
    }
    entries.sort_by_key(|(cputype, _, align, _)| (*align, *cputype));
    if entries.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Invalid::new("two slices have the same architecture"));
    }
    let header_len = 8 + FAT_ARCH_LEN * entries.len();
    let mut offsets = Vec::with_capacity(entries.len());
    let mut end = header_len as u64;
    for (_, _, align, slice) in &entries {
        let offset = end.next_multiple_of(1u64 << align);
        offsets.push(offset);
        end = offset + slice.len() as u64;
    }
    let too_big =
        || Invalid::new("the slices together are over 4 GiB, past what a fat header holds");
    let mut out = Vec::with_capacity(usize::try_from(end).map_err(|_| too_big())?);
    out.extend(FAT_MAGIC.to_be_bytes());
    out.extend((entries.len() as u32).to_be_bytes());
    for ((cputype, cpusubtype, align, slice), offset) in entries.iter().zip(&offsets) {
        let offset = u32::try_from(*offset).map_err(|_| too_big())?;
        let size = u32::try_from(slice.len()).map_err(|_| too_big())?;
        for word in [*cputype, *cpusubtype, offset, size, *align] {
            out.extend(word.to_be_bytes());
        }
    }
    for ((_, _, _, slice), offset) in entries.iter().zip(&offsets) {
        out.resize(*offset as usize, 0);
        out.extend_from_slice(slice);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(cputype: u32, len: usize) -> Vec<u8> {
        let mut data = vec![0u8; len];
        data[..4].copy_from_slice(&MH_MAGIC_64);
        data[4..8].copy_from_slice(&cputype.to_le_bytes());
        data[8..12].copy_from_slice(&3u32.to_le_bytes());
        data
    }

    #[test]
    fn slices_sit_aligned_behind_a_big_endian_header_x86_first() {
        let arm = slice(CPU_TYPE_ARM64, 5000);
        let x86 = slice(0x0100_0007, 3000);
        let fat = universal(&[&arm, &x86]).unwrap();
        let be = |at: usize| u32::from_be_bytes(fat[at..at + 4].try_into().unwrap());
        assert_eq!((be(0), be(4)), (FAT_MAGIC, 2));
        // x86_64 first, at 4 KiB; arm64 next, at the next 16 KiB boundary.
        assert_eq!(
            (be(8), be(16), be(20), be(24)),
            (0x0100_0007, 4096, 3000, 12)
        );
        assert_eq!(
            (be(28), be(36), be(40), be(44)),
            (CPU_TYPE_ARM64, 16384, 5000, 14)
        );
        assert_eq!(&fat[4096..7096], &x86[..]);
        assert_eq!(&fat[16384..], &arm[..]);
        assert_eq!(
            universal(&[&x86, &arm]).unwrap(),
            fat,
            "order of the inputs matters not"
        );
    }

    #[test]
    fn what_is_not_two_distinct_mach_o_slices_is_refused() {
        let x86 = slice(0x0100_0007, 100);
        assert!(universal(&[&x86]).is_err());
        assert!(universal(&[&x86, &x86]).is_err());
        assert!(universal(&[&x86, b"\x7fELF....."]).is_err());
        assert!(universal(&[&x86, &MH_MAGIC_64]).is_err());
    }
}
