//! Reproducible archives: tar.gz, zip, or a bare binary.
//!
//! The same inputs give the same bytes: entries sorted, one fixed mtime, uid/gid 0 and no
//! owner names, no pax times, gzip header without time or name, zip without extra time fields.
//! Paths are relative and never contain `..`; symlinks are stored as links and must stay inside
//! the archive.

pub mod pgzip;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::file_error::FileError;

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Format {
    /// gzip-compressed tar, for unix targets.
    #[serde(rename = "tar.gz")]
    TarGz,
    /// zip, for Windows.
    #[serde(rename = "zip")]
    Zip,
    /// The binary itself, renamed.
    #[serde(rename = "binary")]
    Binary,
}

impl Format {
    /// The file name extension, with its dot (empty for a bare binary).
    pub fn extension(self) -> &'static str {
        match self {
            Format::TarGz => ".tar.gz",
            Format::Zip => ".zip",
            Format::Binary => "",
        }
    }
}

/// Extra files to put in an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSpec {
    /// A glob, relative to the project folder.
    pub src: String,
    /// Where matches go inside the archive: a folder (ending in `/`) or, for a single match, a
    /// file name. Default: their path relative to the glob's fixed prefix.
    pub dst: Option<String>,
    /// A glob that matches nothing is fine.
    pub optional: bool,
}

/// Everything needed to write one archive: plain data, planned before the run.
#[derive(Debug, Clone, Serialize)]
pub struct ArchiveSpec {
    /// Format.
    pub format: Format,
    /// The archive file to write.
    pub output: PathBuf,
    /// Top folder inside the archive, if any.
    pub folder: Option<String>,
    /// Executables to include at the top, by path (mode 0755).
    pub binaries: Vec<PathBuf>,
    /// Extra files.
    pub files: Vec<FileSpec>,
    /// Where `files` globs are resolved.
    pub base: PathBuf,
    /// Modification time of every entry (Unix seconds).
    pub mtime: u64,
    /// Deflate level, 0 to 9.
    pub level: u32,
}

/// One thing inside an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    File { source: PathBuf, executable: bool },
    Symlink { target: String },
    Dir,
}

/// Why an archive was not written.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// What it would hold is refused: a path out of its root, two files under one name, a
    /// glob that matches nothing.
    #[error("{0}")]
    Refused(String),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] crate::file_error::FileError),
}

impl From<String> for ArchiveError {
    fn from(reason: String) -> Self {
        ArchiveError::Refused(reason)
    }
}

/// Writes the archive; returns the number of entries.
pub fn write(spec: &ArchiveSpec, threads: usize) -> Result<usize, ArchiveError> {
    let entries = entries(spec)?;
    if let Some(parent) = spec.output.parent() {
        std::fs::create_dir_all(parent).map_err(FileError::on("create", parent))?;
    }
    // Written beside the target under a name of its own (archives of several targets are
    // written at once) and renamed at the end: no half archive under the real name.
    let cannot = |source: std::io::Error| FileError::on("write", &spec.output)(source);
    let parent = spec.output.parent().unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".shipit-archive-")
        .suffix(".partial")
        .tempfile_in(parent)
        .map_err(cannot)?;
    let result = match spec.format {
        Format::TarGz => write_tar_gz(tmp.path(), &entries, spec, threads),
        Format::Zip => write_zip(tmp.path(), &entries, spec),
        Format::Binary => write_binary(tmp.path(), &entries),
    };
    result.map_err(cannot)?;
    if spec.format != Format::Binary {
        // Temporary files are private; a published archive is not.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(cannot)?;
    }
    tmp.persist(&spec.output).map_err(|e| cannot(e.error))?;
    Ok(entries.len())
}

/// The problems of the `files` entries that can be judged before anything is built: globs that
/// match nothing (and are not optional), lead out of the project or map several files to one
/// name. Entries under `generated` (the build's own output folders) are left to the run.
pub fn check_files(files: &[FileSpec], base: &Path, generated: &[&Path]) -> Vec<(usize, String)> {
    // Compared as absolute paths: a dist folder written relative to the pipeline file
    // (`dist = "dist"` beside `shipit.toml`) is the same folder as the project's `dist`.
    let absolute = |p: &Path| {
        crate::config::normalize(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
    };
    let generated: Vec<std::path::PathBuf> = generated.iter().map(|g| absolute(g)).collect();
    files
        .iter()
        .enumerate()
        .filter(|(_, file)| {
            let root = absolute(&base.join(fixed_prefix(&file.src)));
            !generated.iter().any(|g| root.starts_with(g))
        })
        .filter_map(|(i, file)| expand(file, base).err().map(|why| (i, why.to_string())))
        .collect()
}

/// Every entry with its path inside the archive, sorted, directories included.
fn entries(spec: &ArchiveSpec) -> Result<BTreeMap<String, Content>, ArchiveError> {
    let mut files: BTreeMap<String, Content> = BTreeMap::new();
    let mut add = |path: String, content: Content| -> Result<(), ArchiveError> {
        check_inside(&path)?;
        if files.insert(path.clone(), content).is_some() {
            return Err(format!("two files would be `{path}` in the archive").into());
        }
        Ok(())
    };
    for binary in &spec.binaries {
        let name = binary
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| format!("{} has no file name", binary.display()))?;
        add(
            name,
            Content::File {
                source: binary.clone(),
                executable: true,
            },
        )?;
    }
    let mut unmatched = Vec::new();
    for file in &spec.files {
        // Every `files` problem is reported, not only the first.
        match expand(file, &spec.base) {
            Ok(found) => {
                for (path, content) in found {
                    add(path, content)?;
                }
            }
            Err(why) => unmatched.push(why.to_string()),
        }
    }
    if !unmatched.is_empty() {
        return Err(unmatched.join("; ").into());
    }
    if spec.format == Format::Binary {
        return Ok(files);
    }
    let prefix = spec
        .folder
        .as_deref()
        .filter(|f| !f.is_empty())
        .map(|f| format!("{}/", f.trim_end_matches('/')));
    let mut all = BTreeMap::new();
    for (path, content) in files {
        let full = match &prefix {
            Some(prefix) => format!("{prefix}{path}"),
            None => path,
        };
        // Every folder above an entry gets its own entry, so extraction sets its mode too.
        let mut dir = Path::new(&full).parent();
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            all.insert(format!("{}/", d.display()), Content::Dir);
            dir = d.parent();
        }
        check_inside(&full)?;
        if let Content::Symlink { target } = &content {
            check_link(&full, target, prefix.as_deref())?;
        }
        all.insert(full, content);
    }
    Ok(all)
}

/// Paths inside an archive are relative and never climb out.
fn check_inside(path: &str) -> Result<(), ArchiveError> {
    if path.is_empty()
        || path.starts_with('/')
        || path
            .trim_end_matches('/')
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return Err(
            format!("`{path}` is not a safe archive path (absolute, empty, or with `..`)").into(),
        );
    }
    Ok(())
}

/// A symlink must resolve inside the archive's root.
fn check_link(path: &str, target: &str, prefix: Option<&str>) -> Result<(), ArchiveError> {
    if Path::new(target).is_absolute() {
        return Err(format!(
            "symlink `{path}` points to the absolute path `{target}`, outside the archive"
        )
        .into());
    }
    let root_depth = prefix.map_or(0, |_| 1);
    let mut depth: i64 = Path::new(path).components().count() as i64 - 1;
    for component in Path::new(target).components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < root_depth {
            return Err(
                format!("symlink `{path}` points to `{target}`, outside the archive").into(),
            );
        }
    }
    Ok(())
}

/// The folders of a glob before its first wildcard: where its matches can be.
fn fixed_prefix(glob: &str) -> PathBuf {
    Path::new(glob)
        .components()
        .take_while(|c| {
            !c.as_os_str()
                .to_string_lossy()
                .contains(['*', '?', '[', '{'])
        })
        .collect()
}

/// The files one `files` entry matches, with their paths inside the archive.
fn expand(file: &FileSpec, base: &Path) -> Result<Vec<(String, Content)>, ArchiveError> {
    let glob = globset::GlobBuilder::new(&file.src)
        .literal_separator(true)
        .build()
        .map_err(|e| format!("bad glob `{}`: {e}", file.src))?
        .compile_matcher();
    // Walk only below the glob's fixed prefix.
    let fixed = fixed_prefix(&file.src);
    crate::relpath::RelPath::new(&file.src).map_err(|e| format!("`files`: {e}"))?;
    let root = base.join(&fixed);
    let mut matches = Vec::new();
    if root.exists() {
        // A link on the way to the glob's folder (`docs -> /etc`) must not lead out.
        let (real_root, real_base) = (root.canonicalize(), base.canonicalize());
        if let (Ok(real_root), Ok(real_base)) = (&real_root, &real_base)
            && !real_root.starts_with(real_base)
        {
            return Err(format!(
                "`files` glob `{}` leads through a symbolic link to {}, outside the project",
                file.src,
                real_root.display()
            )
            .into());
        }
        for entry in walkdir::WalkDir::new(&root)
            .follow_links(false)
            .follow_root_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| format!("cannot read files for `{}`: {e}", file.src))?;
            if entry.file_type().is_dir() {
                continue;
            }
            let rel = entry.path().strip_prefix(base).unwrap_or(entry.path());
            if glob.is_match(rel) {
                // Decided from the walk's own lstat, before anything opens it: opening a FIFO
                // would wait for a writer forever, and a device never ends.
                let kind = entry.file_type();
                if !kind.is_file() && !kind.is_symlink() {
                    return Err(format!(
                        "`files` glob `{}` matches {}, which is not a regular file (a FIFO, socket or device); only files and links go into an archive",
                        file.src,
                        entry.path().display()
                    )
                    .into());
                }
                matches.push(entry.path().to_path_buf());
            }
        }
    }
    if matches.is_empty() {
        if file.optional {
            return Ok(Vec::new());
        }
        return Err(format!(
            "`files` glob `{}` matches nothing in {} (add `optional = true` if that is fine)",
            file.src,
            base.display()
        )
        .into());
    }
    if let Some(dst) = &file.dst
        && !dst.ends_with('/')
        && matches.len() > 1
    {
        return Err(format!(
            "`{}` matches {} files but `dst = \"{dst}\"` names one file; end it with `/` for a folder",
            file.src,
            matches.len()
        ).into());
    }
    let mut out = Vec::with_capacity(matches.len());
    for path in matches {
        let below_fixed = path
            .strip_prefix(base.join(&fixed))
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new(path.file_name().unwrap_or_default()));
        let name = match &file.dst {
            Some(dst) if dst.ends_with('/') => format!("{dst}{}", below_fixed.display()),
            Some(dst) => dst.clone(),
            None if fixed.as_os_str().is_empty() || path == base.join(&fixed) => path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string(),
            None => path
                .strip_prefix(base)
                .unwrap_or(&path)
                .display()
                .to_string(),
        };
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let content = if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&path)
                .map_err(|e| format!("cannot read link {}: {e}", path.display()))?;
            Content::Symlink {
                target: target.to_string_lossy().into_owned(),
            }
        } else {
            Content::File {
                source: path.clone(),
                executable: meta.permissions().mode() & 0o111 != 0,
            }
        };
        out.push((name, content));
    }
    Ok(out)
}

/// Opens a file to pack: without blocking (a FIFO swapped in after the walk must not hang the
/// build) and only when it is a regular file.
pub fn open_source(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file (a FIFO, socket or device)",
            path.display()
        )));
    }
    Ok(file)
}

fn mode(content: &Content) -> u32 {
    match content {
        Content::File {
            executable: true, ..
        }
        | Content::Dir => 0o755,
        Content::File { .. } => 0o644,
        Content::Symlink { .. } => 0o777,
    }
}

fn write_tar_gz(
    out: &Path,
    entries: &BTreeMap<String, Content>,
    spec: &ArchiveSpec,
    threads: usize,
) -> io::Result<()> {
    let file = BufWriter::with_capacity(256 * 1024, File::create(out)?);
    let gz = pgzip::ParallelGzWriter::new(file, spec.level, threads)?;
    let mut tar = tar::Builder::new(gz);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(spec.mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("")?;
        header.set_groupname("")?;
        header.set_mode(mode(content));
        match content {
            Content::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, path, io::empty())?;
            }
            Content::Symlink { target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                tar.append_link(&mut header, path, target)?;
            }
            Content::File { source, .. } => {
                let file = open_source(source)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(file.metadata()?.len());
                tar.append_data(&mut header, path, file)?;
            }
        }
    }
    let gz = tar.into_inner()?;
    let mut file = gz.finish()?;
    file.flush()?;
    file.get_ref().sync_all()
}

/// A zip entry time for a Unix time (1980 at the earliest, two-second precision).
pub fn zip_time(unix: u64) -> zip::DateTime {
    // DOS times start in 1980; zip keeps two-second precision.
    let text = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(315_532_800)),
    )
    .to_string();
    let n = |range: std::ops::Range<usize>| text[range].parse::<u16>().unwrap_or(0);
    zip::DateTime::from_date_and_time(
        n(0..4),
        n(5..7) as u8,
        n(8..10) as u8,
        n(11..13) as u8,
        n(14..16) as u8,
        n(17..19) as u8,
    )
    .unwrap_or_default()
}

fn write_zip(
    out: &Path,
    entries: &BTreeMap<String, Content>,
    spec: &ArchiveSpec,
) -> io::Result<()> {
    let file = BufWriter::new(File::create(out)?);
    let mut zip = zip::ZipWriter::new(file);
    let time = zip_time(spec.mtime);
    for (path, content) in entries {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(spec.level as i64))
            .last_modified_time(time)
            .unix_permissions(mode(content));
        match content {
            Content::Dir => zip.add_directory(path.as_str(), options)?,
            Content::Symlink { target } => {
                zip.add_symlink(path.as_str(), target.as_str(), options)?
            }
            Content::File { source, .. } => {
                zip.start_file(path.as_str(), options)?;
                io::copy(&mut open_source(source)?, &mut zip)?;
            }
        }
    }
    let mut file = zip.finish()?;
    file.flush()?;
    file.get_ref().sync_all()
}

fn write_binary(out: &Path, entries: &BTreeMap<String, Content>) -> io::Result<()> {
    let mut files = entries.values().filter_map(|c| match c {
        Content::File { source, .. } => Some(source),
        _ => None,
    });
    let (Some(source), None) = (files.next(), files.next()) else {
        return Err(io::Error::other(
            "format `binary` needs exactly one binary and no other files",
        ));
    };
    std::fs::copy(source, out)?;
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o755))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, format: Format) -> ArchiveSpec {
        ArchiveSpec {
            format,
            output: dir.join(format!("out{}", format.extension())),
            folder: Some("demo-1.0.0-linux-x64".into()),
            binaries: vec![dir.join("bin/demo")],
            files: vec![FileSpec {
                src: "README.md".into(),
                dst: None,
                optional: false,
            }],
            base: dir.to_path_buf(),
            mtime: 1_700_000_000,
            level: 6,
        }
    }

    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/demo"), b"\x7fELF...").unwrap();
        std::fs::write(dir.path().join("README.md"), b"# demo\n").unwrap();
        dir
    }

    #[test]
    fn archives_are_byte_identical_across_runs_and_thread_counts() {
        let dir = fixture();
        for format in [Format::TarGz, Format::Zip] {
            let s = spec(dir.path(), format);
            write(&s, 1).unwrap();
            let first = std::fs::read(&s.output).unwrap();
            // Newer file times must not matter.
            std::fs::write(dir.path().join("README.md"), b"# demo\n").unwrap();
            write(&s, 4).unwrap();
            assert_eq!(first, std::fs::read(&s.output).unwrap(), "{format:?}");
        }
    }

    #[test]
    fn tar_entries_are_sorted_owned_by_root_with_fixed_times_and_modes() {
        let dir = fixture();
        let s = spec(dir.path(), Format::TarGz);
        write(&s, 2).unwrap();
        let gz = flate2::read::GzDecoder::new(File::open(&s.output).unwrap());
        let mut archive = tar::Archive::new(gz);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            assert_eq!(h.username().unwrap(), Some(""));
            seen.push((
                entry.path().unwrap().display().to_string(),
                h.mode().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("demo-1.0.0-linux-x64/".to_string(), 0o755),
                ("demo-1.0.0-linux-x64/README.md".to_string(), 0o644),
                ("demo-1.0.0-linux-x64/demo".to_string(), 0o755),
            ]
        );
    }

    #[test]
    fn unsafe_paths_and_escaping_links_are_refused() {
        assert!(check_inside("../x").is_err());
        assert!(check_inside("/etc/passwd").is_err());
        assert!(check_inside("a/./b").is_err());
        assert!(check_inside("a/b").is_ok());
        assert!(check_link("top/a/link", "../b", Some("top/")).is_ok());
        assert!(check_link("top/link", "../../etc/passwd", Some("top/")).is_err());
        assert!(check_link("top/link", "../outside", Some("top/")).is_err());
        assert!(check_link("link", "/etc/passwd", None).is_err());
    }

    #[test]
    fn a_glob_matching_nothing_is_named_unless_optional() {
        let dir = fixture();
        let mut s = spec(dir.path(), Format::TarGz);
        s.files.push(FileSpec {
            src: "LICENSE*".into(),
            dst: None,
            optional: false,
        });
        let err = write(&s, 1).unwrap_err().to_string();
        assert!(err.contains("`LICENSE*` matches nothing"), "{err}");
        s.files.last_mut().unwrap().optional = true;
        write(&s, 1).unwrap();
    }
}
