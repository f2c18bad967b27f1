//! Reading Debian data back: the `control` stanza of a `.deb`, deb822 stanzas (`Packages`,
//! `Release`), and dpkg's version order. Input is untrusted (a repository folder, a package
//! from elsewhere): sizes are bounded and nothing is unpacked to disk.

use std::cmp::Ordering;
use std::io::Read;
use std::path::Path;

use crate::file_error::FileError;

/// The most a control member or an index file may hold when read back.
const MAX_CONTROL: u64 = 16 << 20;

/// One deb822 paragraph: fields in their order; a multi-line value keeps its continuation
/// lines (each starting with a space) after a newline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stanza(pub Vec<(String, String)>);

impl Stanza {
    /// The value of `field` (case-insensitive, as deb822 says).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(field))
            .map(|(_, v)| v.as_str())
    }

    /// Sets `field`, replacing it in place or adding it at the end.
    pub fn set(&mut self, field: &str, value: String) {
        match self
            .0
            .iter_mut()
            .find(|(f, _)| f.eq_ignore_ascii_case(field))
        {
            Some((_, v)) => *v = value,
            None => self.0.push((field.to_owned(), value)),
        }
    }

    /// The paragraph as text, ending in a newline.
    pub fn render(&self) -> String {
        self.0
            .iter()
            .map(|(field, value)| format!("{field}: {value}\n"))
            .collect()
    }
}

/// Why Debian data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] FileError),
    /// It is not what it should be.
    #[error("{path}: {why}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// Parses deb822 paragraphs. A line that is neither a field, a continuation nor blank is an
/// error: an index that says something else is not read as if it said nothing.
pub fn parse(text: &str) -> Result<Vec<Stanza>, String> {
    let mut stanzas = Vec::new();
    let mut current = Stanza::default();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !current.0.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            let Some((_, value)) = current.0.last_mut() else {
                return Err(format!("line {}: a continuation with no field", number + 1));
            };
            value.push('\n');
            value.push_str(line);
        } else if let Some((field, value)) = line.split_once(':') {
            if field.is_empty() || field.contains(char::is_whitespace) {
                return Err(format!(
                    "line {}: `{field}` is not a field name",
                    number + 1
                ));
            }
            current.0.push((field.to_owned(), value.trim().to_owned()));
        } else {
            return Err(format!("line {}: not `Field: value`", number + 1));
        }
    }
    if !current.0.is_empty() {
        stanzas.push(current);
    }
    Ok(stanzas)
}

/// The `control` paragraph of a `.deb`: its `ar` members are walked to `control.tar.*`, which
/// is decompressed in memory (gzip, or none) and searched for `./control`.
pub fn control_of(deb: &Path) -> Result<Stanza, DebianError> {
    let file = std::fs::File::open(deb).map_err(FileError::on("read", deb))?;
    control_from(file, deb)
}

/// [`control_of`] for a file already open (`deb` names it in errors).
pub fn control_from(file: std::fs::File, deb: &Path) -> Result<Stanza, DebianError> {
    Ok(read_deb(file, deb, false)?.control)
}

/// What [`check_deb`] found in a `.deb` whose every file matched.
#[derive(Debug)]
pub struct Checked {
    /// The `control` paragraph.
    pub control: Stanza,
    /// How many files of the data tar matched `md5sums`.
    pub files: usize,
}

/// Reads a whole `.deb` and checks its data against its own `md5sums`: every regular file of
/// `data.tar` must be listed (conffiles may be left out, as dpkg allows) with its MD5, and
/// every listed file must be there. A replaced or edited `data.tar` fails here even when the
/// control member is the original.
pub fn check_deb(file: std::fs::File, deb: &Path) -> Result<Checked, DebianError> {
    read_deb(file, deb, true)
}

/// The control member's files shipit reads: `control`, `md5sums`, `conffiles`.
#[derive(Default)]
struct ControlFiles {
    control: Option<String>,
    md5sums: Option<String>,
    conffiles: Option<String>,
}

/// A reader for a member of the `ar` archive, decompressed (gzip, or none).
fn decompressed<'a>(name: &str, member: impl Read + 'a) -> Option<Box<dyn Read + 'a>> {
    match name.rsplit_once(".tar").map(|(_, z)| z) {
        Some(".gz") => Some(Box::new(flate2::read::GzDecoder::new(member))),
        Some("") => Some(Box::new(member)),
        _ => None,
    }
}

/// Walks the `ar` members of `deb`: the control member always, the data member with `data`.
fn read_deb(mut file: std::fs::File, deb: &Path, data: bool) -> Result<Checked, DebianError> {
    let malformed = |why: &str| DebianError::Malformed {
        path: deb.display().to_string(),
        why: why.to_owned(),
    };
    let mut magic = [0u8; 8];
    file.read_exact(&mut magic)
        .map_err(FileError::on("read", deb))?;
    if &magic != b"!<arch>\n" {
        return Err(malformed(
            "not an ar archive (a .deb starts with `!<arch>`)",
        ));
    }
    let mut control: Option<(Stanza, ControlFiles)> = None;
    loop {
        let mut header = [0u8; 60];
        if file.read_exact(&mut header).is_err() {
            return match (control, data) {
                (None, _) => Err(malformed("no control.tar member")),
                (Some(_), true) => Err(malformed("no data.tar member")),
                (Some((control, _)), false) => Ok(Checked { control, files: 0 }),
            };
        }
        let name = String::from_utf8_lossy(&header[..16])
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let size: u64 = String::from_utf8_lossy(&header[48..58])
            .trim()
            .parse()
            .map_err(|_| malformed("an ar member size is not a number"))?;
        if name.starts_with("control.tar") {
            if size > MAX_CONTROL {
                return Err(malformed("control.tar is larger than 16 MiB"));
            }
            let mut member = Vec::new();
            (&mut file)
                .take(size)
                .read_to_end(&mut member)
                .map_err(FileError::on("read", deb))?;
            let reader = decompressed(&name, &member[..]).ok_or_else(|| {
                malformed(&format!(
                    "{name} is compressed in a way shipit does not read"
                ))
            })?;
            let files =
                control_files(reader).ok_or_else(|| malformed("control.tar is not a tar"))?;
            let text = files
                .control
                .as_deref()
                .ok_or_else(|| malformed("control.tar has no control file"))?;
            let mut stanzas = parse(text).map_err(|why| malformed(&format!("control: {why}")))?;
            if stanzas.len() != 1 {
                return Err(malformed("control does not hold exactly one paragraph"));
            }
            if !data {
                return Ok(Checked {
                    control: stanzas.remove(0),
                    files: 0,
                });
            }
            control = Some((stanzas.remove(0), files));
            if size % 2 == 1 {
                std::io::copy(&mut (&mut file).take(1), &mut std::io::sink())
                    .map_err(FileError::on("read", deb))?;
            }
            continue;
        }
        if name.starts_with("data.tar") && data {
            let Some((stanza, files)) = control else {
                return Err(malformed("data.tar comes before control.tar"));
            };
            let reader = decompressed(&name, (&mut file).take(size)).ok_or_else(|| {
                malformed(&format!(
                    "{name} is compressed in a way shipit does not read"
                ))
            })?;
            let matched = match_md5sums(reader, &files).map_err(|why| malformed(&why))?;
            return Ok(Checked {
                control: stanza,
                files: matched,
            });
        }
        std::io::copy(&mut (&mut file).take(size + size % 2), &mut std::io::sink())
            .map_err(FileError::on("read", deb))?;
    }
}

/// `control`, `md5sums` and `conffiles` of a control tar; `None` when it is not a tar.
fn control_files(reader: Box<dyn Read + '_>) -> Option<ControlFiles> {
    let mut files = ControlFiles::default();
    let mut archive = tar::Archive::new(reader.take(MAX_CONTROL));
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let path = entry.path().ok()?.to_string_lossy().into_owned();
        let slot = match path.trim_start_matches("./") {
            "control" => &mut files.control,
            "md5sums" => &mut files.md5sums,
            "conffiles" => &mut files.conffiles,
            _ => continue,
        };
        let mut text = String::new();
        entry.read_to_string(&mut text).ok()?;
        *slot = Some(text);
    }
    Some(files)
}

/// Hashes every regular file of the data tar and compares it with `md5sums`; the number of
/// files that matched, or the first that did not.
fn match_md5sums(reader: Box<dyn Read + '_>, files: &ControlFiles) -> Result<usize, String> {
    use md5::{Digest, Md5};
    let listed = files
        .md5sums
        .as_deref()
        .ok_or("it has no md5sums, so its files cannot be checked")?;
    let mut expected: std::collections::BTreeMap<String, String> =
        std::collections::BTreeMap::new();
    for line in listed.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, path) = line.split_once(char::is_whitespace).ok_or_else(|| {
            format!(
                "md5sums: not `sum  path`: {:?}",
                line.escape_debug().to_string()
            )
        })?;
        expected.insert(
            path.trim_start().trim_start_matches('/').to_owned(),
            sum.to_ascii_lowercase(),
        );
    }
    let conffiles: Vec<&str> = files
        .conffiles
        .as_deref()
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches('/'))
        .collect();
    let mut archive = tar::Archive::new(reader);
    let mut matched = 0;
    let entries = archive
        .entries()
        .map_err(|_| "data.tar is not a tar".to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("data.tar: {e}"))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("data.tar: {e}"))?
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_owned();
        let mut md5 = Md5::new();
        std::io::copy(&mut entry, &mut md5).map_err(|e| format!("data.tar: {e}"))?;
        match expected.remove(&path) {
            Some(sum) if sum == hex::encode(md5.finalize()) => matched += 1,
            Some(_) => return Err(format!("{path} does not match its MD5 in md5sums")),
            None if conffiles.contains(&path.as_str()) => {}
            None => return Err(format!("{path} is in data.tar but not in md5sums")),
        }
    }
    match expected.keys().next() {
        Some(missing) => Err(format!("{missing} is in md5sums but not in data.tar")),
        None => Ok(matched),
    }
}

/// dpkg's version order (deb-version(7)): epoch, then upstream version, then revision, each
/// compared with `~` before everything (even the end), letters before other characters, and
/// digit runs as numbers.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |v: &str| {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, rest)) if e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.parse::<u64>().unwrap_or(0), rest)
            }
            _ => (0, v),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        (epoch, upstream.to_owned(), revision.to_owned())
    };
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(&ua, &ub))
        .then_with(|| verrevcmp(&ra, &rb))
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ca, cb) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first == Ordering::Equal {
                first = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first != Ordering::Equal {
            return first;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_dpkg_sorts_them() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.2.0~rc.1-1", "1.2.0-1", Less),
            ("1.2.0-1", "1.2.0-2", Less),
            ("1.10.0-1", "1.9.0-1", Greater),
            ("1:0.1-1", "2.0-1", Greater),
            ("1.0~", "1.0", Less),
            ("1.0a", "1.0", Greater),
            ("1.0+b1", "1.0", Greater),
            ("0.2.0-1", "0.10.0-1", Less),
            ("1.002", "1.2", Equal),
        ] {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn stanzas_parse_and_render_back() {
        let text =
            "Package: demo\nDescription: one\n two\n .\n three\n\nPackage: other\nVersion: 1\n";
        let stanzas = parse(text).unwrap();
        assert_eq!(stanzas.len(), 2);
        assert_eq!(stanzas[0].get("description"), Some("one\n two\n .\n three"));
        assert_eq!(stanzas[0].render() + "\n" + &stanzas[1].render(), text);
        assert!(parse("Package demo\n").is_err());
        assert!(parse(" continuation\n").is_err());
    }
}
