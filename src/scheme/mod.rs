//! Where bytes live. Every command and the copy engine go through [`Scheme`], so a new backend
//! (the registry scheme, a tar file) plugs in without touching them.
//!
//! All methods are blocking and take `&self`: implementations are shared between the worker
//! threads of a copy and do their own locking.

pub mod ocidir;
pub mod registry;

use std::io::Read;

use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyReader};
use crate::error::Result;
use crate::manifest::Manifest;
use crate::reference::Reference;

/// What a manifest HEAD learned. Registries may omit the digest; layouts always know it.
#[derive(Debug, Clone, Default)]
pub struct ManifestHead {
    /// Media type (may be empty when the server did not say).
    pub media_type: String,
    /// Digest, when known.
    pub digest: Option<Digest>,
    /// Size, when known.
    pub size: Option<i64>,
    /// Response headers (registries; rate-limit and `raw` output).
    pub headers: Vec<(String, String)>,
}

impl ManifestHead {
    /// A descriptor, when the digest is known.
    pub fn descriptor(&self) -> Option<Descriptor> {
        Some(Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone()?,
            size: self.size.unwrap_or(0),
            ..Default::default()
        })
    }
}

/// Options for a manifest put.
#[derive(Debug, Clone, Copy, Default)]
pub struct PutOpts {
    /// A child of an index being copied: layouts do not list it in `index.json`.
    pub child: bool,
}

/// Options for a manifest delete.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeleteOpts {
    /// Read the manifest first and, when it has a subject, remove it from the referrers
    /// fallback tag.
    pub check_referrers: bool,
}

/// Options for tag listing.
#[derive(Debug, Clone, Default)]
pub struct TagOpts {
    /// Return tags after this one (registry `last`).
    pub last: Option<String>,
    /// At most this many (registry `n`).
    pub limit: Option<usize>,
}

/// A tag listing.
#[derive(Debug, Clone, Default)]
pub struct TagList {
    /// Repository name as the backend reports it.
    pub name: String,
    /// Tags, sorted.
    pub tags: Vec<String>,
    /// The raw body (the registry JSON, or a layout's `index.json`).
    pub raw: Vec<u8>,
    /// Media type of `raw`.
    pub media_type: String,
    /// Response headers.
    pub headers: Vec<(String, String)>,
}

/// A blob stream that can continue from another offset (a ranged GET, a file seek).
pub trait SeekSource: Read + Send {
    /// Makes the next read return the byte at `offset`.
    fn seek_to(&mut self, offset: u64) -> std::io::Result<()>;
}

impl SeekSource for std::fs::File {
    fn seek_to(&mut self, offset: u64) -> std::io::Result<()> {
        std::io::Seek::seek(self, std::io::SeekFrom::Start(offset)).map(|_| ())
    }
}

enum Source {
    Stream(Box<dyn Read + Send>),
    Seek(Box<dyn SeekSource>),
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Stream(r) => r.read(buf),
            Source::Seek(r) => r.read(buf),
        }
    }
}

/// A streamed blob whose size and digest are verified at EOF.
///
/// Readers from layouts and registries also implement [`std::io::Seek`] (a registry reader
/// re-requests with `Range`). Seeking back to 0 verifies the digest again; after a seek anywhere
/// else only the size can be checked, which [`BlobReader::verifies_digest`] reports.
pub struct BlobReader {
    desc: Descriptor,
    headers: Vec<(String, String)>,
    inner: VerifyReader<Source>,
}

impl BlobReader {
    /// Wraps a raw stream; `desc` gives the expected digest and size (a negative size means
    /// unknown).
    pub fn new(desc: Descriptor, inner: Box<dyn Read + Send>) -> BlobReader {
        BlobReader::from_source(desc, Source::Stream(inner))
    }

    /// Like [`BlobReader::new`] over a source that can seek.
    pub fn seekable(desc: Descriptor, inner: Box<dyn SeekSource>) -> BlobReader {
        BlobReader::from_source(desc, Source::Seek(inner))
    }

    fn from_source(desc: Descriptor, inner: Source) -> BlobReader {
        let size = u64::try_from(desc.size).ok();
        let inner = VerifyReader::new(inner, Some(desc.digest.clone()), size);
        BlobReader {
            desc,
            headers: Vec::new(),
            inner,
        }
    }

    /// Whether the digest is still verified at EOF (false after a seek away from the start).
    pub fn verifies_digest(&self) -> bool {
        self.inner.verifies_digest()
    }

    /// Attaches response headers.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> BlobReader {
        self.headers = headers;
        self
    }

    /// The descriptor being read.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    /// Response headers, if any.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.inner.bytes_read()
    }

    /// Reads the whole blob, refusing more than `max` bytes (configs, small artifacts).
    pub fn read_all(mut self, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        (&mut self.inner)
            .take(max as u64 + 1)
            .read_to_end(&mut out)?;
        if out.len() > max {
            return Err(crate::Error::new(
                crate::ErrorKind::SizeLimit,
                format!("blob {} exceeds the {max} byte limit", self.desc.digest),
            ));
        }
        Ok(out)
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

impl std::io::Seek for BlobReader {
    /// Moves within the blob; `End` needs a known size. Fails for plain streams (stdin).
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        use std::io::SeekFrom;
        let size = u64::try_from(self.desc.size).ok();
        let here = self.inner.bytes_read();
        let target = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => here.checked_add_signed(d),
            SeekFrom::End(d) => size.and_then(|s| s.checked_add_signed(d)),
        };
        let bad = |why: String| crate::Error::new(crate::ErrorKind::InvalidInput, why).into_io();
        let target = target
            .filter(|t| size.is_none_or(|s| *t <= s))
            .ok_or_else(|| bad(format!("seek {pos:?} outside blob {}", self.desc.digest)))?;
        if target == here {
            return Ok(here);
        }
        match self.inner.inner_mut() {
            Source::Seek(s) => s.seek_to(target)?,
            Source::Stream(_) => {
                return Err(bad(format!(
                    "blob {} is a stream and cannot seek",
                    self.desc.digest
                )))
            }
        }
        self.inner.restart_at(target);
        Ok(target)
    }
}

/// What a blob put must produce. Unknown digest (stdin) means "compute it".
#[derive(Debug, Clone, Default)]
pub struct BlobExpect {
    /// Expected digest.
    pub digest: Option<Digest>,
    /// Expected size.
    pub size: Option<u64>,
    /// Media type, for backends that record it.
    pub media_type: String,
}

impl BlobExpect {
    /// Expect exactly what `desc` says.
    pub fn from_descriptor(desc: &Descriptor) -> BlobExpect {
        BlobExpect {
            digest: Some(desc.digest.clone()),
            size: u64::try_from(desc.size).ok(),
            media_type: desc.media_type.clone(),
        }
    }
}

/// A backend that stores manifests, blobs and tags.
pub trait Scheme: Send + Sync {
    /// Reads a manifest by tag or digest (verified against the reference digest).
    fn manifest_get(&self, r: &Reference) -> Result<Manifest>;
    /// Checks a manifest exists and learns its type, digest and size.
    fn manifest_head(&self, r: &Reference) -> Result<ManifestHead>;
    /// Writes a manifest to the reference's tag, or by digest when the reference has only a
    /// digest. Everything the manifest references must already be there.
    fn manifest_put(&self, r: &Reference, m: &Manifest, opts: PutOpts) -> Result<()>;
    /// Deletes a manifest by digest (the reference must carry one).
    fn manifest_delete(&self, r: &Reference, opts: DeleteOpts) -> Result<()>;

    /// Streams a blob.
    fn blob_get(&self, r: &Reference, d: &Descriptor) -> Result<BlobReader>;
    /// Checks a blob exists; returns its descriptor (size as stored).
    fn blob_head(&self, r: &Reference, d: &Descriptor) -> Result<Descriptor>;
    /// Stores a blob from a stream; verifies what `expect` gives and returns the descriptor.
    fn blob_put(
        &self,
        r: &Reference,
        expect: &BlobExpect,
        rdr: &mut dyn Read,
    ) -> Result<Descriptor>;
    /// Mounts a blob from another repository of the same backend; `Ok(false)` when the backend
    /// declined (the caller then copies the bytes).
    fn blob_mount(&self, _src: &Reference, _tgt: &Reference, _d: &Descriptor) -> Result<bool> {
        Ok(false)
    }
    /// Deletes a blob.
    fn blob_delete(&self, r: &Reference, d: &Descriptor) -> Result<()>;

    /// Lists tags of the reference's repository.
    fn tag_list(&self, r: &Reference, opts: &TagOpts) -> Result<TagList>;
    /// Deletes only the reference's tag.
    fn tag_delete(&self, r: &Reference) -> Result<()>;

    /// Referrers of `subject` through a native API; `Ok(None)` means "no API here, use the
    /// fallback tag".
    fn referrers_api(&self, _r: &Reference, _subject: &Digest) -> Result<Option<Manifest>> {
        Ok(None)
    }

    /// Every manifest digest known to the backend without walking tags (layouts: all
    /// `index.json` entries, for the slow referrer scan). `Ok(None)` when not possible.
    fn manifest_scan(&self, _r: &Reference) -> Result<Option<Vec<Descriptor>>> {
        Ok(None)
    }

    /// Checks the backend is reachable.
    fn ping(&self, r: &Reference) -> Result<()>;
    /// Ends use of a reference: layouts garbage-collect unreferenced blobs they changed.
    fn close(&self, r: &Reference) -> Result<()>;
}

#[cfg(test)]
pub(crate) mod memory;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn desc(data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "application/octet-stream".into(),
            digest: crate::Algorithm::Sha256.digest(data),
            size: data.len() as i64,
            ..Default::default()
        }
    }

    #[test]
    fn file_readers_seek_and_reverify_from_the_start() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let path = std::env::temp_dir().join(format!("regclient-seek-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&data)
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let mut b = BlobReader::seekable(desc(&data), Box::new(file));
        b.seek(SeekFrom::Start(4000)).unwrap();
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, &data[4000..]);
        assert!(!b.verifies_digest());
        b.seek(SeekFrom::Start(0)).unwrap();
        let mut all = Vec::new();
        b.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        assert!(b.verifies_digest());

        // A wrong expected digest is caught again after seeking back to 0.
        let mut bad = desc(&data);
        bad.digest = crate::Algorithm::Sha256.digest(b"other");
        let cursor = std::io::Cursor::new(data.clone());
        struct C(std::io::Cursor<Vec<u8>>);
        impl Read for C {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf)
            }
        }
        impl SeekSource for C {
            fn seek_to(&mut self, offset: u64) -> std::io::Result<()> {
                self.0.seek(SeekFrom::Start(offset)).map(|_| ())
            }
        }
        let mut b = BlobReader::seekable(bad, Box::new(C(cursor)));
        b.seek(SeekFrom::End(-10)).unwrap();
        b.seek(SeekFrom::Current(-90)).unwrap();
        b.seek(SeekFrom::Start(0)).unwrap();
        assert!(b.read_to_end(&mut Vec::new()).is_err());
    }

    #[test]
    fn streams_refuse_to_seek() {
        let mut b = BlobReader::new(
            desc(b"abc"),
            Box::new(std::io::Cursor::new(b"abc".to_vec())),
        );
        assert!(b.seek(SeekFrom::Start(1)).is_err());
        assert_eq!(b.seek(SeekFrom::Start(0)).unwrap(), 0, "no move needed");
    }
}
