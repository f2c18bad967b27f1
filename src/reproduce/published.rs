//! What a release published: each file's name and SHA-256, and its bytes on request. Behind
//! one small trait, so a GitHub release, a manifest in a folder and a manifest at an address
//! are compared the same way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::Manifest;
use crate::publish::github::{Asset, Client};
use crate::relpath::RelPath;

use super::ReproduceError;

/// The most a manifest read from an address may be.
const MAX_MANIFEST: u64 = 64 << 20;

/// One published file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedFile {
    /// Its name on the release (one path segment, checked).
    pub name: String,
    /// Its size, as the release states it.
    pub size: u64,
    /// Its SHA-256, lowercase hex, as the release states it (or as its bytes hash, where the
    /// release states none).
    pub sha256: String,
}

/// A published release.
pub trait Published {
    /// Which release, for messages: `the GitHub release acme/tiny v1.0.0`.
    fn describe(&self) -> String;
    /// Every file it holds.
    fn files(&self) -> &[PublishedFile];
    /// The manifest it was published from, when it has one (commit, date).
    fn manifest(&self) -> Option<&Manifest>;
    /// Writes the bytes of `file` to `to`; an error when they are not the ones its SHA-256
    /// names.
    fn fetch(&self, file: &PublishedFile, to: &Path) -> Result<(), ReproduceError>;
}

/// A release name that is one plain path segment; anything else (a name from GitHub or a
/// manifest is data) is refused, so a fetched file never lands outside the scratch folder.
fn checked_name(name: &str) -> Result<String, ReproduceError> {
    RelPath::file_name(name)
        .map(|n| n.as_str().to_owned())
        .map_err(|e| {
            ReproduceError::Refused(format!(
                "the release names a file `{}`: {e}",
                name.escape_debug()
            ))
        })
}

/// Checks fetched bytes against the digest the release states.
fn expect_digest(file: &PublishedFile, found: Option<String>) -> Result<(), ReproduceError> {
    match found {
        Some(found) if found.eq_ignore_ascii_case(&file.sha256) => Ok(()),
        found => Err(ReproduceError::Refused(format!(
            "{}: the bytes served hash to {}, the release states sha256:{}",
            file.name,
            found.map_or_else(
                || "more than its stated size".into(),
                |f| format!("sha256:{f}")
            ),
            file.sha256
        ))),
    }
}

/// A release on GitHub (or a GitHub Enterprise server), read through the REST API.
pub struct GithubRelease {
    client: Client,
    runtime: tokio::runtime::Runtime,
    repo: String,
    tag: String,
    assets: Vec<Asset>,
    files: Vec<PublishedFile>,
}

impl GithubRelease {
    /// Finds the published release of `tag` on `repo` and every uploaded asset's digest
    /// (downloaded and hashed where GitHub reports none). `token` may be empty for a public
    /// repository.
    pub fn open(api_url: &str, token: &str, repo: &str, tag: &str) -> Result<Self, ReproduceError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ReproduceError::Setup(format!("cannot start the async runtime: {e}")))?;
        let client = Client::new(api_url, token, Duration::from_secs(300))?;
        let (assets, files) = runtime.block_on(async {
            let release = client
                .find_release(repo, tag)
                .await?
                .filter(|r| !r.draft)
                .ok_or_else(|| {
                    ReproduceError::Usage(format!("{repo} has no published release for {tag}"))
                })?;
            let assets: Vec<Asset> = client
                .assets(repo, release.id)
                .await?
                .into_iter()
                .filter(|a| a.state == "uploaded")
                .collect();
            let mut files = Vec::new();
            for asset in &assets {
                let name = checked_name(&asset.name)?;
                let reported = asset
                    .digest
                    .as_deref()
                    .and_then(|d| d.strip_prefix("sha256:"))
                    .filter(|d| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()));
                let sha256 = match reported {
                    Some(digest) => digest.to_ascii_lowercase(),
                    None => client.asset_sha256(repo, asset).await?,
                };
                files.push(PublishedFile {
                    name,
                    size: asset.size,
                    sha256,
                });
            }
            Ok::<_, ReproduceError>((assets, files))
        })?;
        Ok(GithubRelease {
            client,
            runtime,
            repo: repo.to_owned(),
            tag: tag.to_owned(),
            assets,
            files,
        })
    }
}

impl Published for GithubRelease {
    fn describe(&self) -> String {
        format!("the GitHub release {} {}", self.repo, self.tag)
    }

    fn files(&self) -> &[PublishedFile] {
        &self.files
    }

    fn manifest(&self) -> Option<&Manifest> {
        None
    }

    fn fetch(&self, file: &PublishedFile, to: &Path) -> Result<(), ReproduceError> {
        let asset = self
            .assets
            .iter()
            .find(|a| a.name == file.name)
            .ok_or_else(|| ReproduceError::Refused(format!("{} left the release", file.name)))?;
        let mut out = create(to)?;
        let found = self
            .runtime
            .block_on(self.client.download_asset(&self.repo, asset, &mut out))?;
        expect_digest(file, found)
    }
}

/// A `manifest.json` shipit wrote, in a folder (a build's dist, a CI artifact) or at an
/// address; the files are looked for beside it.
pub struct ManifestRelease {
    manifest: Manifest,
    place: Place,
    files: Vec<PublishedFile>,
}

/// Where a manifest's files are.
enum Place {
    Folder(PathBuf),
    Address {
        base: reqwest::Url,
        http: reqwest::Client,
        runtime: Box<tokio::runtime::Runtime>,
    },
}

impl ManifestRelease {
    /// Reads the manifest at `place`: a file path, or an `https://` (or `http://`) address.
    pub fn open(place: &str) -> Result<Self, ReproduceError> {
        let (manifest, place) = if place.starts_with("https://") || place.starts_with("http://") {
            let url = reqwest::Url::parse(place)
                .map_err(|e| ReproduceError::Usage(format!("--manifest {place}: {e}")))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    ReproduceError::Setup(format!("cannot start the async runtime: {e}"))
                })?;
            let http = crate::http::builder()
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(Duration::from_secs(120))
                .build()
                .map_err(|e| ReproduceError::Setup(crate::http::describe(&e)))?;
            let mut text = Vec::new();
            runtime.block_on(download(&http, &url, MAX_MANIFEST, &mut text))?;
            let text = String::from_utf8(text)
                .map_err(|_| ReproduceError::Refused(format!("{url} is not UTF-8 text")))?;
            let manifest = Manifest::from_text(PathBuf::from(url.as_str()), &text)
                .map_err(|e| ReproduceError::Refused(e.to_string()))?;
            let base = url
                .join(".")
                .map_err(|e| ReproduceError::Usage(format!("--manifest {url}: {e}")))?;
            let runtime = Box::new(runtime);
            (
                manifest,
                Place::Address {
                    base,
                    http,
                    runtime,
                },
            )
        } else {
            let path = Path::new(place);
            let folder = match path.file_name() {
                Some(name) if name == crate::manifest::FILE_NAME => {
                    path.parent().unwrap_or(Path::new(".")).to_path_buf()
                }
                _ if path.is_dir() => path.to_path_buf(),
                _ => {
                    return Err(ReproduceError::Usage(format!(
                        "--manifest {place}: expected a manifest.json or the folder holding one"
                    )));
                }
            };
            let manifest = Manifest::read_untrusted(&folder)
                .map_err(|e| ReproduceError::Usage(e.to_string()))?;
            (manifest, Place::Folder(folder))
        };
        // What a GitHub release carries: the manifest's top-level files.
        let files = manifest
            .artifacts
            .iter()
            .filter(|a| !a.path.contains('/'))
            .map(|a| {
                Ok(PublishedFile {
                    name: checked_name(&a.path)?,
                    size: a.size,
                    sha256: a.sha256.to_ascii_lowercase(),
                })
            })
            .collect::<Result<Vec<PublishedFile>, ReproduceError>>()?;
        // What is published is the files, not what the manifest says of them: each is hashed
        // as served (a file changed beside an unchanged manifest then differs).
        let mut release = ManifestRelease {
            manifest,
            place,
            files: Vec::new(),
        };
        for mut file in files {
            file.sha256 = release.served(&file, &mut std::io::sink())?;
            release.files.push(file);
        }
        Ok(release)
    }

    /// Streams `file` as the folder or address serves it into `to` (no more than its stated
    /// size and one byte); the SHA-256 of what came.
    fn served(&self, file: &PublishedFile, to: &mut dyn Write) -> Result<String, ReproduceError> {
        let name =
            RelPath::file_name(&file.name).map_err(|e| ReproduceError::Refused(e.to_string()))?;
        let mut tee = Tee {
            to,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        };
        match &self.place {
            Place::Folder(folder) => {
                let (from, _) = crate::relpath::open_regular(folder, &name).map_err(|e| {
                    ReproduceError::Refused(format!(
                        "{} is not beside the manifest in {}: {e}",
                        file.name,
                        folder.display()
                    ))
                })?;
                std::io::copy(&mut std::io::Read::take(from, file.size + 1), &mut tee)
                    .map_err(|e| ReproduceError::Refused(format!("{}: {e}", file.name)))?;
            }
            Place::Address {
                base,
                http,
                runtime,
            } => {
                let url = base
                    .join(name.as_str())
                    .map_err(|e| ReproduceError::Refused(format!("{}: {e}", file.name)))?;
                runtime.block_on(download(http, &url, file.size, &mut tee))?;
            }
        }
        Ok(hex::encode(sha2::Digest::finalize(tee.hasher)))
    }
}

impl Published for ManifestRelease {
    fn describe(&self) -> String {
        match &self.place {
            Place::Folder(folder) => format!("the manifest in {}", folder.display()),
            Place::Address { base, .. } => format!("the manifest under {base}"),
        }
    }

    fn files(&self) -> &[PublishedFile] {
        &self.files
    }

    fn manifest(&self) -> Option<&Manifest> {
        Some(&self.manifest)
    }

    fn fetch(&self, file: &PublishedFile, to: &Path) -> Result<(), ReproduceError> {
        let mut out = create(to)?;
        let found = self.served(file, &mut out)?;
        expect_digest(file, Some(found))
    }
}

/// Streams `url` into `to`, refusing more than `max` bytes.
async fn download(
    http: &reqwest::Client,
    url: &reqwest::Url,
    max: u64,
    to: &mut dyn Write,
) -> Result<(), ReproduceError> {
    let failed = |e: reqwest::Error| {
        ReproduceError::Refused(format!("{url}: {}", crate::http::describe(&e)))
    };
    let mut response = http.get(url.clone()).send().await.map_err(failed)?;
    if !response.status().is_success() {
        return Err(ReproduceError::Refused(format!(
            "{url} answered {}",
            response.status()
        )));
    }
    let mut read = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        read += chunk.len() as u64;
        if read > max {
            return Err(ReproduceError::Refused(format!(
                "{url} is over {max} bytes"
            )));
        }
        to.write_all(&chunk)
            .map_err(|e| ReproduceError::Refused(e.to_string()))?;
    }
    Ok(())
}

/// A writer that hashes what passes through it.
struct Tee<'a> {
    to: &'a mut dyn Write,
    hasher: sha2::Sha256,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.to.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.to.flush()
    }
}

fn create(path: &Path) -> Result<std::fs::File, ReproduceError> {
    std::fs::File::create(path).map_err(|e| io_failed(path, e))
}

fn io_failed(path: &Path, e: std::io::Error) -> ReproduceError {
    ReproduceError::Setup(format!("{}: {e}", path.display()))
}
