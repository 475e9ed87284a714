//! OCI image layout directories (`ocidir://path`). Stub: implemented in its own change.

use std::io::Read;

use crate::descriptor::Descriptor;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::reference::Reference;
use crate::scheme::{
    BlobExpect, BlobReader, DeleteOpts, ManifestHead, PutOpts, Scheme, TagList, TagOpts,
};

/// Options for the layout scheme.
#[derive(Debug, Clone)]
pub struct OciDirOpts {
    /// Garbage-collect unreferenced blobs on close (default true).
    pub gc: bool,
}

impl Default for OciDirOpts {
    fn default() -> Self {
        OciDirOpts { gc: true }
    }
}

/// The OCI layout scheme.
#[derive(Debug, Default)]
pub struct OciDir {
    opts: OciDirOpts,
}

impl OciDir {
    /// A layout scheme with options.
    pub fn new(opts: OciDirOpts) -> OciDir {
        OciDir { opts }
    }
}

fn todo() -> Error {
    let _ = OciDirOpts::default().gc;
    Error::new(ErrorKind::Unsupported, "ocidir not implemented yet")
}

impl Scheme for OciDir {
    fn manifest_get(&self, _r: &Reference) -> Result<Manifest> {
        Err(todo())
    }
    fn manifest_head(&self, _r: &Reference) -> Result<ManifestHead> {
        Err(todo())
    }
    fn manifest_put(&self, _r: &Reference, _m: &Manifest, _o: PutOpts) -> Result<()> {
        Err(todo())
    }
    fn manifest_delete(&self, _r: &Reference, _o: DeleteOpts) -> Result<()> {
        Err(todo())
    }
    fn blob_get(&self, _r: &Reference, _d: &Descriptor) -> Result<BlobReader> {
        Err(todo())
    }
    fn blob_head(&self, _r: &Reference, _d: &Descriptor) -> Result<Descriptor> {
        Err(todo())
    }
    fn blob_put(&self, _r: &Reference, _e: &BlobExpect, _rdr: &mut dyn Read) -> Result<Descriptor> {
        Err(todo())
    }
    fn blob_delete(&self, _r: &Reference, _d: &Descriptor) -> Result<()> {
        Err(todo())
    }
    fn tag_list(&self, _r: &Reference, _o: &TagOpts) -> Result<TagList> {
        Err(todo())
    }
    fn tag_delete(&self, _r: &Reference) -> Result<()> {
        Err(todo())
    }
    fn ping(&self, _r: &Reference) -> Result<()> {
        Err(todo())
    }
    fn close(&self, _r: &Reference) -> Result<()> {
        let _ = &self.opts;
        Ok(())
    }
}
