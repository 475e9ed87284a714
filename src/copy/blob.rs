//! Copying one blob: skip when present, mount within a registry, else stream source to target.

use std::io::{Cursor, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Event, Kind};
use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::reference::Reference;
use crate::scheme::{BlobExpect, Scheme};

/// Progress events are emitted at most this often...
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);
/// ...or after this many bytes, so fast local copies still report something.
const PROGRESS_BYTES: u64 = 8 * 1024 * 1024;

/// What a blob copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The target already had it.
    Skipped,
    /// Mounted from another repository of the same registry.
    Mounted,
    /// Streamed; the byte count.
    Copied(u64),
}

/// Copies the blob `desc` from `src`'s repository to `tgt`'s.
///
/// Nothing happens when both name the same repository or the target already has the blob
/// (`Ok(false)`). Within one registry a cross-repository mount is tried first; otherwise the
/// blob is streamed from the source into the target, verified against `desc`, never buffered
/// whole. Embedded descriptor `data` is used instead of reading the source. Returns `Ok(true)`
/// when the blob was transferred (streamed or mounted).
pub fn blob_copy(
    src_scheme: &dyn Scheme,
    src: &Reference,
    tgt_scheme: &dyn Scheme,
    tgt: &Reference,
    desc: &Descriptor,
    progress: &(dyn Fn(&Event) + Sync),
) -> Result<bool> {
    let out = copy_blob(
        src_scheme,
        src,
        tgt_scheme,
        tgt,
        desc,
        progress,
        Stop::default(),
    )?;
    Ok(out != Outcome::Skipped)
}

/// When a transfer must stop early: a sibling transfer failed (the copy's flag) or the
/// caller's deadline passed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stop<'a> {
    pub flag: Option<&'a AtomicBool>,
    pub deadline: Option<Instant>,
}

impl Stop<'_> {
    /// Why to stop now, if so.
    pub fn reason(&self) -> Option<&'static str> {
        if self.flag.is_some_and(|a| a.load(Ordering::Relaxed)) {
            Some("copy canceled")
        } else if crate::deadline::passed(self.deadline) {
            Some("copy stopped: deadline reached")
        } else {
            None
        }
    }
}

/// [`blob_copy`] that stops the stream early when told to (see [`Stop`]).
pub(crate) fn copy_blob(
    src_scheme: &dyn Scheme,
    src: &Reference,
    tgt_scheme: &dyn Scheme,
    tgt: &Reference,
    desc: &Descriptor,
    progress: &(dyn Fn(&Event) + Sync),
    stop: Stop<'_>,
) -> Result<Outcome> {
    let skipped = || {
        progress(&Event::Skipped {
            kind: Kind::Blob,
            digest: desc.digest.clone(),
            size: desc.size,
        });
        Ok(Outcome::Skipped)
    };
    if src.equal_repository(tgt) {
        return skipped();
    }
    // Within one registry the mount request answers both questions (201: the blob is there
    // now, whether it was before or not), so it goes first and saves a HEAD per blob. A failed
    // mount only costs the attempt; the HEAD and the stream below still work.
    let same_registry = src.equal_registry(tgt);
    if same_registry && matches!(tgt_scheme.blob_mount(src, tgt, desc), Ok(true)) {
        progress(&Event::Started {
            digest: desc.digest.clone(),
            size: desc.size,
        });
        progress(&Event::Finished {
            digest: desc.digest.clone(),
            size: desc.size,
            mounted: true,
        });
        return Ok(Outcome::Mounted);
    }
    // Any HEAD failure means "copy it": a real problem resurfaces on the put.
    if tgt_scheme.blob_head(tgt, desc).is_ok() {
        return skipped();
    }
    progress(&Event::Started {
        digest: desc.digest.clone(),
        size: desc.size,
    });
    // One retry for failures on the target side (a refused monolithic PUT of a large blob,
    // a dropped connection): the upload cannot go back in a stream it already sent, so the
    // source is read again from the start, and the target scheme now knows its limits.
    let mut attempt = 0;
    let done = loop {
        attempt += 1;
        match stream_once(src_scheme, src, tgt_scheme, tgt, desc, progress, stop) {
            Ok(n) => break n,
            Err((e, target_side))
                if target_side
                    && attempt < 2
                    && stop.reason().is_none()
                    && matches!(
                        e.kind(),
                        ErrorKind::Network | ErrorKind::HttpStatus | ErrorKind::Unsupported
                    ) =>
            {
                continue
            }
            Err((e, _)) => return Err(e),
        }
    };
    progress(&Event::Finished {
        digest: desc.digest.clone(),
        size: desc.size,
        mounted: false,
    });
    Ok(Outcome::Copied(done))
}

/// Streams the blob once; on failure says whether the target side failed (worth a retry).
fn stream_once(
    src_scheme: &dyn Scheme,
    src: &Reference,
    tgt_scheme: &dyn Scheme,
    tgt: &Reference,
    desc: &Descriptor,
    progress: &(dyn Fn(&Event) + Sync),
    stop: Stop<'_>,
) -> std::result::Result<u64, (Error, bool)> {
    let inner: Box<dyn Read + Send> = match desc.embedded_data() {
        Some(data) => Box::new(Cursor::new(data)),
        None => Box::new(
            src_scheme
                .blob_get(src, desc)
                .with_context(|| format!("reading from {}", src.repo_name()))
                .map_err(|e| (e, false))?,
        ),
    };
    let mut rdr = ProgressReader {
        inner,
        digest: &desc.digest,
        size: desc.size,
        done: 0,
        reported: 0,
        last: Instant::now(),
        progress,
        stop,
        source_err: None,
    };
    let put = tgt_scheme.blob_put(tgt, &BlobExpect::from_descriptor(desc), &mut rdr);
    if let Some(e) = rdr.source_err.take() {
        // The target only saw a failing stream; name the side that failed.
        return Err((
            e.context(format!("reading from {}", src.repo_name())),
            false,
        ));
    }
    put.with_context(|| format!("writing to {}", tgt.repo_name()))
        .map_err(|e| (e, true))?;
    // The target took the blob without reading the stream (an anonymous mount from another
    // repository it already has): nothing was transferred and there is nothing to verify.
    if rdr.done == 0 && desc.size > 0 {
        return Ok(0);
    }
    // A target that stopped at the expected size never let the source reader verify the
    // digest at EOF; one more read does.
    let mut probe = [0u8; 1];
    match rdr.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => {
            return Err((
                Error::new(
                    ErrorKind::SizeLimit,
                    format!("blob {} is longer than {} bytes", desc.digest, desc.size),
                ),
                false,
            ))
        }
        Err(e) => {
            let e: Error = e.into();
            return Err((
                e.context(format!("reading from {}", src.repo_name())),
                false,
            ));
        }
    }
    Ok(rdr.done)
}

/// Counts bytes, reports progress and stops when told to.
struct ProgressReader<'a> {
    inner: Box<dyn Read + Send>,
    digest: &'a Digest,
    size: i64,
    done: u64,
    reported: u64,
    last: Instant,
    progress: &'a (dyn Fn(&Event) + Sync),
    stop: Stop<'a>,
    /// The first error of the source stream (digest mismatch, short read, I/O).
    source_err: Option<Error>,
}

impl Read for ProgressReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(why) = self.stop.reason() {
            return Err(Error::new(ErrorKind::Canceled, why).into_io());
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) => {
                let e = Error::from(e);
                self.source_err.get_or_insert(e.clone());
                return Err(e.into_io());
            }
        };
        self.done += n as u64;
        if n > 0
            && (self.last.elapsed() >= PROGRESS_INTERVAL
                || self.done - self.reported >= PROGRESS_BYTES)
        {
            self.last = Instant::now();
            self.reported = self.done;
            (self.progress)(&Event::Progress {
                digest: self.digest.clone(),
                bytes_done: self.done,
                size: self.size,
            });
        }
        Ok(n)
    }
}
