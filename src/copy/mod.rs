//! The image copy engine. STUB in the cli branch only: the real engine is merged from the copy
//! branch; signatures here follow its contract so the CLI compiles.

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::referrer::MatchOpts;
use crate::scheme::Scheme;

/// Copy options.
#[derive(Debug, Clone, Default)]
pub struct CopyOpts {
    /// Copy only this platform's manifest (target becomes single-platform).
    pub platform: Option<Platform>,
    /// Keep the index, copy only matching children.
    pub platforms: Vec<Platform>,
    /// Copy digest tags.
    pub digest_tags: bool,
    /// Copy referrers.
    pub referrers: bool,
    /// Referrer filters (union; empty = all).
    pub referrer_filters: Vec<MatchOpts>,
    /// Read referrers from this repository.
    pub referrer_src: Option<Reference>,
    /// Write referrers to this repository.
    pub referrer_tgt: Option<Reference>,
    /// Skip referrer/digest-tag refresh when the digest matches.
    pub fast: bool,
    /// Re-copy everything.
    pub force_recursive: bool,
    /// Copy foreign layers.
    pub include_external: bool,
}

/// Progress events.
#[derive(Debug, Clone)]
pub enum Event {
    /// A blob already exists at the target.
    Skipped {
        /// Digest.
        digest: Digest,
        /// Size.
        size: i64,
    },
    /// A blob transfer started.
    Started {
        /// Digest.
        digest: Digest,
        /// Size.
        size: i64,
    },
    /// Bytes transferred so far.
    Progress {
        /// Digest.
        digest: Digest,
        /// Bytes done.
        bytes_done: u64,
    },
    /// A blob transfer finished.
    Finished {
        /// Digest.
        digest: Digest,
        /// Size.
        size: i64,
    },
    /// A manifest was pushed.
    ManifestPushed {
        /// Digest.
        digest: Digest,
    },
}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Digest of the top manifest.
    pub digest: Digest,
    /// Nothing to do.
    pub skipped: bool,
    /// Manifests pushed.
    pub manifests_copied: usize,
    /// Blobs transferred.
    pub blobs_copied: usize,
    /// Blobs already present.
    pub blobs_skipped: usize,
    /// Bytes transferred.
    pub bytes_copied: u64,
}

/// Copies an image (stub).
pub fn image_copy(
    _src_scheme: &dyn Scheme,
    _src: &Reference,
    _tgt_scheme: &dyn Scheme,
    _tgt: &Reference,
    _opts: &CopyOpts,
    _pool: &rayon::ThreadPool,
    _progress: &(dyn Fn(&Event) + Sync),
) -> Result<CopyReport> {
    Err(Error::new(ErrorKind::Unsupported, "copy stub"))
}

/// Copies one blob (stub).
pub fn blob_copy(
    _src_scheme: &dyn Scheme,
    _src: &Reference,
    _tgt_scheme: &dyn Scheme,
    _tgt: &Reference,
    _desc: &Descriptor,
    _progress: &(dyn Fn(&Event) + Sync),
) -> Result<bool> {
    Err(Error::new(ErrorKind::Unsupported, "copy stub"))
}
