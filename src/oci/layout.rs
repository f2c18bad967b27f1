//! An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/...`): where images
//! are assembled before a push, and what `skopeo copy oci:<dir>` reads too.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Descriptor, INDEX, ImageIndex, digest_hex};

/// An image layout folder.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens `root`, creating the layout if needed.
    pub fn create(root: &Path) -> io::Result<Layout> {
        std::fs::create_dir_all(root.join("blobs/sha256"))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Layout {
            root: root.to_path_buf(),
        })
    }

    /// The layout's folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a blob lives.
    pub fn blob_path(&self, digest: &str) -> io::Result<PathBuf> {
        let hex = digest_hex(digest).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad digest `{digest}`"))
        })?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// Whether the blob is present with the right size (contents are checked when pushed).
    pub fn has(&self, descriptor: &Descriptor) -> bool {
        self.blob_path(&descriptor.digest)
            .ok()
            .and_then(|p| p.metadata().ok())
            .is_some_and(|m| m.len() == descriptor.size)
    }

    /// Stores `bytes` as a blob of `media_type`.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> io::Result<Descriptor> {
        let descriptor = Descriptor::of(media_type, bytes);
        if !self.has(&descriptor) {
            let path = self.blob_path(&descriptor.digest)?;
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, bytes)?;
            std::fs::rename(&tmp, &path)?;
        }
        Ok(descriptor)
    }

    /// Reads a blob whole (manifests and configs), checking its digest.
    pub fn read(&self, digest: &str) -> io::Result<Vec<u8>> {
        let bytes = std::fs::read(self.blob_path(digest)?)?;
        if super::sha256_digest(&bytes) != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {digest} in {} is corrupt", self.root.display()),
            ));
        }
        Ok(bytes)
    }

    /// A writer for a new blob; [`BlobWriter::commit`] names it by its digest.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let tmp = tempfile::NamedTempFile::new_in(self.root.join("blobs/sha256"))?;
        Ok(BlobWriter {
            file: io::BufWriter::with_capacity(256 * 1024, tmp),
            hash: Sha256::new(),
            size: 0,
            dir: self.root.join("blobs/sha256"),
        })
    }

    /// Points `index.json` at `image`, named `ref_name` (what `oci:<dir>:<ref_name>` selects).
    pub fn set_index(&self, image: &Descriptor, ref_name: &str) -> io::Result<()> {
        let mut image = image.clone();
        image
            .annotations
            .insert("org.opencontainers.image.ref.name".into(), ref_name.into());
        let index = ImageIndex {
            schema_version: 2,
            media_type: INDEX.into(),
            manifests: vec![image],
            annotations: Default::default(),
        };
        let bytes = serde_json::to_vec_pretty(&index).map_err(io::Error::other)?;
        let tmp = self.root.join("index.json.partial");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, self.root.join("index.json"))
    }
}

/// Streams a blob into the layout, hashing as it goes.
pub struct BlobWriter {
    file: io::BufWriter<tempfile::NamedTempFile>,
    hash: Sha256,
    size: u64,
    dir: PathBuf,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Finishes the blob: it is stored under its digest and described as `media_type`.
    pub fn commit(self, media_type: &str) -> io::Result<Descriptor> {
        let digest = format!("sha256:{}", hex::encode(self.hash.finalize()));
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        let path = self.dir.join(digest_hex(&digest).unwrap_or_default());
        file.persist(&path).map_err(|e| e.error)?;
        Ok(Descriptor {
            media_type: media_type.into(),
            digest,
            size: self.size,
            platform: None,
            annotations: Default::default(),
        })
    }
}

/// Counts and hashes what passes through, for a layer's uncompressed digest (its diff ID).
pub struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Sha256::new(),
        }
    }

    /// The inner writer and `sha256:<hex>` of everything written.
    pub fn finish(self) -> (W, String) {
        (
            self.inner,
            format!("sha256:{}", hex::encode(self.hash.finalize())),
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_stored_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let d = layout.put("text/plain", b"hello").unwrap();
        assert!(layout.has(&d));
        assert_eq!(layout.read(&d.digest).unwrap(), b"hello");
        let mut w = layout.writer().unwrap();
        w.write_all(b"hello").unwrap();
        assert_eq!(w.commit("text/plain").unwrap(), d);
        layout.set_index(&d, "1.0").unwrap();
        let index: ImageIndex =
            serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(
            index.manifests[0].annotations["org.opencontainers.image.ref.name"],
            "1.0"
        );
        std::fs::write(layout.blob_path(&d.digest).unwrap(), b"HELLO").unwrap();
        assert!(layout.read(&d.digest).is_err());
    }
}
