//! Image tar files: [`export`] writes one tar that is both a `docker load` input
//! (`manifest.json`) and an OCI image layout (`oci-layout`, `index.json`, `blobs/`), and
//! [`import`] reads such tars, OCI layout tars and `docker save` tars back into any
//! [`Scheme`](crate::scheme::Scheme).
//!
//! Memory stays bounded whatever the image size: export streams each blob from `blob_get`
//! into its tar entry (the size is known from the descriptor); import indexes the tar's
//! headers in one pass and then streams each blob from its offset in the file. A gzip input
//! is first decompressed to a temporary file (removed afterwards), since a gzip stream cannot
//! be seeked; zstd, xz and bzip2 inputs are recognised and refused.

mod export;
mod import;
mod tarindex;

pub use export::{export, ExportOpts};
pub use import::{import, ImportOpts, ImportReport};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};

/// Annotation carrying the full image name in `index.json` (containerd, skopeo, regclient).
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// Annotation carrying the tag in `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Compression of a file, detected by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed (or not recognised).
    None,
    /// gzip (`1f 8b 08`).
    Gzip,
    /// zstd (`28 b5 2f fd`).
    Zstd,
    /// xz (`fd 37 7a 58 5a 00`).
    Xz,
    /// bzip2 (`BZh` level, then a block or end-of-stream magic).
    Bzip2,
}

impl Compression {
    /// Detects the compression from the start of a file.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.len() >= 10
            && head.starts_with(b"BZh")
            && (b'1'..=b'9').contains(&head[3])
            && (head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
                || head[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
        {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Xz => "xz",
            Compression::Bzip2 => "bzip2",
        }
    }
}

/// A file in the temp dir, removed on drop.
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    pub(crate) fn create(prefix: &str) -> Result<(TempFile, File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => return Ok((TempFile { path }, f)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(e, format!("creating {}", path.display()))),
            }
        }
        Err(Error::new(
            ErrorKind::Io,
            format!("no free temporary file name in {}", base.display()),
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_compression() {
        assert_eq!(
            Compression::detect(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(
            Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd, 0]),
            Compression::Zstd
        );
        assert_eq!(
            Compression::detect(&[0xfd, b'7', b'z', b'X', b'Z', 0, 0]),
            Compression::Xz
        );
        assert_eq!(Compression::detect(b"BZh91AY&SY...."), Compression::Bzip2);
        assert_eq!(Compression::detect(b"BZh9-not-bzip"), Compression::None);
        assert_eq!(Compression::detect(b"oci-layout\0"), Compression::None);
        assert_eq!(Compression::detect(b""), Compression::None);
    }
}

#[cfg(test)]
mod deadline_tests {
    use super::*;
    use crate::scheme::ocidir::{OciDir, OciDirOpts};
    use crate::scheme::{Scheme, TagOpts};
    use crate::Reference;

    /// An import whose deadline has passed stops before pushing anything: no tag appears.
    #[test]
    fn import_stops_at_its_deadline_without_tagging() {
        let dir =
            std::env::temp_dir().join(format!("regclient-import-deadline-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ocidir = OciDir::new(OciDirOpts::default());
        let src = Reference::parse(&format!(
            "ocidir://{}/testdata/testrepo:v1",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let tar = dir.join("v1.tar");
        let mut f = std::fs::File::create(&tar).unwrap();
        export(&ocidir, &src, &ExportOpts::default(), &mut f).unwrap();
        drop(f);
        let tgt = Reference::parse(&format!("ocidir://{}/out:v1", dir.display())).unwrap();
        let late = ImportOpts {
            deadline: Some(std::time::Instant::now()),
            ..Default::default()
        };
        let err = import(&ocidir, &tgt, &tar, &late).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Canceled, "{err}");
        let tags = ocidir.tag_list(&tgt, &TagOpts::default()).map(|l| l.tags);
        assert!(tags.unwrap_or_default().is_empty());
        // The same import without a deadline lands.
        import(&ocidir, &tgt, &tar, &ImportOpts::default()).unwrap();
        let tags = ocidir.tag_list(&tgt, &TagOpts::default()).unwrap().tags;
        assert!(tags.contains(&"v1".to_string()), "{tags:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
