//! Blob transfers: a resumable, verified download stream and uploads.
//!
//! Downloads resume an interrupted body with a ranged GET (`Range: bytes=<n>-`) and refuse a
//! response whose `Content-Range` does not start where we stopped. Uploads are decided by the
//! pure state machine in `upload.rs`; [`put`] only performs its actions. Input of unknown digest
//! (stdin) is hashed while spooling to a temporary file first, so the PUT can name its digest.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyReader};
use crate::error::{Error, ErrorKind, Result};
use crate::reference::Reference;
use crate::scheme::{BlobExpect, BlobReader};
use crate::transport::client::{Body, Method, Request, Target, Transport};
use crate::transport::throttle::Priority;
use crate::url::Url;

use super::upload;

/// Re-requests allowed for one download before giving up.
const MAX_RESUMES: u32 = 3;

struct Resumable {
    transport: Arc<Transport>,
    r: Reference,
    digest: Digest,
    total: Option<u64>,
    done: u64,
    resumes: u32,
    inner: Box<dyn Read + Send>,
}

fn blob_request<'a>(r: &Reference, d: &Digest, size: u64) -> Request<'a> {
    let mut req = Request::new(
        Method::Get,
        &r.registry,
        &r.repository,
        Target::Repo(format!("blobs/{d}")),
    );
    req.priority = Priority::Blob { size };
    req
}

impl Resumable {
    fn resume(&mut self) -> io::Result<()> {
        if self.resumes >= MAX_RESUMES {
            return Err(Error::new(
                ErrorKind::ShortRead,
                format!(
                    "download of {} interrupted {} times, giving up",
                    self.digest, self.resumes
                ),
            )
            .into_io());
        }
        self.resumes += 1;
        let req = blob_request(&self.r, &self.digest, self.total.unwrap_or(0))
            .header("Range", &format!("bytes={}-", self.done));
        let resp = self.transport.send(req).map_err(Error::into_io)?;
        let start = resp
            .header("content-range")
            .and_then(|v| v.trim().strip_prefix("bytes "))
            .and_then(|v| v.split('-').next())
            .and_then(|v| v.parse::<u64>().ok());
        if resp.status != 206 || start != Some(self.done) {
            return Err(Error::new(
                ErrorKind::ShortRead,
                format!(
                    "resuming {} at byte {}: the registry answered {} without a matching Content-Range",
                    self.digest, self.done, resp.status
                ),
            )
            .into_io());
        }
        self.inner = resp.into_reader();
        Ok(())
    }
}

impl crate::scheme::SeekSource for Resumable {
    /// A new ranged GET from `offset` (nothing to fetch at the end of a known-size blob).
    fn seek_to(&mut self, offset: u64) -> io::Result<()> {
        self.done = offset;
        if self.total == Some(offset) {
            self.inner = Box::new(io::empty());
            return Ok(());
        }
        // A seek is asked for, not a failure: it does not use up the resume budget.
        let resumes = std::mem::take(&mut self.resumes);
        let r = self.resume();
        self.resumes = resumes;
        r
    }
}

impl Read for Resumable {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // Bounded: each failed attempt consumes one of MAX_RESUMES.
        loop {
            match self.inner.read(buf) {
                Ok(0) if self.total.is_some_and(|t| self.done < t) => self.resume()?,
                Ok(n) => {
                    self.done += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.total.is_some() => {
                    if self.resumes >= MAX_RESUMES {
                        return Err(e);
                    }
                    self.resume()?
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Streams a blob, verified at EOF, resuming interrupted bodies.
pub(super) fn get(transport: &Arc<Transport>, r: &Reference, d: &Descriptor) -> Result<BlobReader> {
    let size = u64::try_from(d.size).ok();
    let req = blob_request(r, &d.digest, size.unwrap_or(0));
    let resp = transport
        .send(req)
        .map_err(|e| e.context(format!("getting blob {} from {}", d.digest, r.repo_name())))?;
    let len = resp
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok());
    if let (Some(want), Some(got)) = (size, len) {
        if want != got {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                format!(
                    "blob {} is {got} bytes at the registry, descriptor says {want}",
                    d.digest
                ),
            ));
        }
    }
    let headers = resp.headers.clone();
    let mut desc = d.clone();
    if desc.size < 0 {
        desc.size = len.map(|l| l as i64).unwrap_or(-1);
    }
    let inner = Resumable {
        transport: transport.clone(),
        r: r.clone(),
        digest: d.digest.clone(),
        total: size.or(len),
        done: 0,
        resumes: 0,
        inner: resp.into_reader(),
    };
    Ok(BlobReader::seekable(desc, Box::new(inner)).with_headers(headers))
}

/// An anonymous (already unlinked) temporary file.
fn temp_file() -> Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        ".regclient-spool-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(e, format!("creating spool file {}", path.display())))?;
    // Unlinked at once: the data lives only as long as the handle.
    let _ = std::fs::remove_file(&path);
    Ok(f)
}

/// Hashes `rdr` into an anonymous temporary file; returns the file rewound, digest and size.
fn spool(rdr: &mut dyn Read, algo: crate::digest::Algorithm) -> Result<(File, Digest, u64)> {
    let mut f = temp_file()?;
    let mut dg = algo.digester();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = rdr
            .read(&mut buf)
            .map_err(|e| Error::io(e, "reading blob input"))?;
        if n == 0 {
            break;
        }
        dg.update(&buf[..n]);
        f.write_all(&buf[..n])
            .map_err(|e| Error::io(e, "writing spool file"))?;
        size += n as u64;
    }
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(e, "rewinding spool file"))?;
    Ok((f, dg.finish(), size))
}

/// How much of a streamed input is kept for going back (the chunked fallback after a refused
/// monolithic PUT, a stale `Range`): small blobs whole, large ones only a window behind the
/// current position. Larger blobs are never copied to disk: when an upload of one must go
/// further back than the window, it fails and the caller re-reads the source (the copy engine
/// retries a failed blob once), by then knowing the registry's limits.
const SPOOL_MEM: usize = 1 << 20;

/// What was read from the input: all of it (memory, or a temporary file for spooled stdin), or
/// a window of the most recent bytes.
struct Spool {
    mem: VecDeque<u8>,
    /// Offset of `mem[0]` in the input.
    base: u64,
    file: Option<File>,
    len: u64,
    /// Keep at most this many bytes in memory, dropping the oldest (None: keep everything).
    window: Option<usize>,
}

impl Spool {
    fn new(window: Option<usize>) -> Spool {
        Spool {
            mem: VecDeque::new(),
            base: 0,
            file: None,
            len: 0,
            window,
        }
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        match &mut self.file {
            Some(f) => {
                f.seek(SeekFrom::End(0))
                    .and_then(|_| f.write_all(data))
                    .map_err(|e| Error::io(e, "writing spool file"))?;
            }
            None if self.window == Some(0) && self.mem.is_empty() => {
                // Nothing to keep: skip the copy through the buffer.
                self.base += data.len() as u64;
            }
            None => {
                self.mem.extend(data);
                if let Some(w) = self.window {
                    if self.mem.len() > w {
                        let excess = self.mem.len() - w;
                        self.mem.drain(..excess);
                        self.base += excess as u64;
                    }
                }
            }
        }
        self.len += data.len() as u64;
        Ok(())
    }

    /// Fills `buf` from `off` (the range must be spooled and still in the window).
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<()> {
        match &mut self.file {
            Some(f) => f
                .seek(SeekFrom::Start(off))
                .and_then(|_| f.read_exact(buf))
                .map_err(|e| Error::io(e, "reading spool file")),
            None => {
                if off < self.base {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "cannot go back to byte {off} of a streamed blob (kept from byte {})",
                            self.base
                        ),
                    ));
                }
                let s = (off - self.base) as usize;
                let n = buf.len();
                for (dst, src) in buf.iter_mut().zip(self.mem.range(s..s + n)) {
                    *dst = *src;
                }
                Ok(())
            }
        }
    }
}

/// The blob being uploaded: read once from its source (verified for digest and size at EOF),
/// re-readable from any offset through the spool.
struct Input<'a> {
    src: Option<VerifyReader<&'a mut dyn Read>>,
    spool: Spool,
    size: u64,
    /// The first failure reading the input (so a failed request can be told apart from it).
    error: Option<Error>,
}

impl<'a> Input<'a> {
    /// A source of known size and digest, read as the upload goes.
    fn stream(rdr: &'a mut dyn Read, digest: &Digest, size: u64) -> Input<'a> {
        Input {
            src: Some(VerifyReader::new(rdr, Some(digest.clone()), Some(size))),
            // Larger blobs keep nothing while sent whole (they cannot go back anyway), and only
            // the current chunk once chunked: memory stays flat however many uploads run.
            spool: Spool::new((size > SPOOL_MEM as u64).then_some(0)),
            size,
            error: None,
        }
    }

    /// An input already spooled (and verified) in `f`.
    fn spooled(f: File, size: u64) -> Input<'a> {
        Input {
            src: None,
            spool: Spool {
                file: Some(f),
                len: size,
                ..Spool::new(None)
            },
            size,
            error: None,
        }
    }

    fn note<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.error.get_or_insert_with(|| e.clone());
        }
        r
    }

    /// Reads new bytes from the source into `buf` (appending them to the spool).
    fn pull(&mut self, buf: &mut [u8]) -> Result<usize> {
        let want = buf.len().min((self.size - self.spool.len) as usize);
        let Some(src) = self.src.as_mut() else {
            return Err(short(self.spool.len, self.size));
        };
        let n = loop {
            match src.read(&mut buf[..want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io(e, "reading blob input")),
            }
        };
        if n == 0 && want > 0 {
            return Err(short(self.spool.len, self.size));
        }
        self.spool.append(&buf[..n])?;
        Ok(n)
    }

    /// Reads the source to its end: verifies its size and digest.
    fn finish(&mut self) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        while self.spool.len < self.size {
            let n = self.pull(&mut buf)?;
            if n == 0 {
                break;
            }
        }
        if let Some(mut src) = self.src.take() {
            let mut one = [0u8; 1];
            loop {
                match src.read(&mut one) {
                    Ok(0) => break,
                    Ok(_) => {
                        return Err(Error::new(
                            ErrorKind::SizeLimit,
                            format!("blob input exceeds its size of {} bytes", self.size),
                        ))
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(Error::io(e, "reading blob input")),
                }
            }
        }
        Ok(())
    }

    /// Fills `buf` with the bytes at `off`.
    fn read_at(&mut self, off: u64, buf: &mut [u8]) -> Result<()> {
        let end = off + buf.len() as u64;
        let mut scratch = vec![0u8; 256 * 1024];
        while self.spool.len < end {
            // Never past `end`: a window of one chunk must still hold the chunk's start.
            let want = ((end - self.spool.len) as usize).min(scratch.len());
            let r = self.pull(&mut scratch[..want]);
            self.note(r)?;
        }
        if self.spool.len == self.size {
            let r = self.finish();
            self.note(r)?;
        }
        let r = self.spool.read_at(off, buf);
        self.note(r)
    }
}

fn short(got: u64, size: u64) -> Error {
    Error::new(
        ErrorKind::ShortRead,
        format!("short read: expected {size} bytes, got {got}"),
    )
}

/// The whole input from byte 0, as a request body.
struct Whole<'i, 'a> {
    input: &'i mut Input<'a>,
    pos: u64,
}

impl Read for Whole<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let size = self.input.size;
        if self.pos >= size || buf.is_empty() {
            if self.pos >= size {
                let r = self.input.finish();
                self.input.note(r).map_err(Error::into_io)?;
            }
            return Ok(0);
        }
        let n = buf.len().min((size - self.pos) as usize);
        let n = if self.pos < self.input.spool.len {
            let n = n.min((self.input.spool.len - self.pos) as usize);
            let r = self.input.spool.read_at(self.pos, &mut buf[..n]);
            self.input.note(r).map_err(Error::into_io)?;
            n
        } else {
            let r = self.input.pull(&mut buf[..n]);
            self.input.note(r).map_err(Error::into_io)?
        };
        self.pos += n as u64;
        Ok(n)
    }
}

fn remember_cap(
    caps: &Mutex<HashMap<String, u64>>,
    registry: &str,
    old: Option<u64>,
    new: Option<u64>,
) {
    if let (Some(c), true) = (new, new != old) {
        caps.lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string(), c);
    }
}

/// `POST .../blobs/uploads/?mount=<digest>[&from=<repo>]`: a probe whose failure is expected.
fn mount_request<'a>(r: &Reference, digest: &Digest, from: Option<&str>) -> Request<'a> {
    let mut req = Request::new(
        Method::Post,
        &r.registry,
        &r.repository,
        Target::Repo("blobs/uploads/".to_string()),
    )
    .query("mount", &digest.to_string());
    if let Some(f) = from {
        req = req.query("from", f);
        req.extra_scopes.push(format!("repository:{f}:pull"));
    }
    req.expect_failure = true;
    req.priority = Priority::Query;
    req
}

/// A request on an upload session URL (small-request priority).
fn session_request<'a>(method: Method, r: &Reference, url: &Url) -> Request<'a> {
    let mut req = Request::new(method, &r.registry, &r.repository, Target::Url(url.clone()));
    req.priority = Priority::Query;
    req
}

/// The HTTP status of a failed request; 0 when there was no response.
fn error_status(e: &Error) -> u16 {
    e.status().unwrap_or(match e.kind() {
        ErrorKind::Unauthorized => 401,
        ErrorKind::NotFound => 404,
        ErrorKind::RateLimit => 429,
        _ => 0,
    })
}

/// Uploads a blob, driving the [`upload::Upload`] state machine: anonymous mount (a 202 session
/// is reused), POST, monolithic PUT, chunked fallback with status recovery, cancel on failure.
///
/// Input of known digest and size streams straight into the request (no whole-blob buffering
/// before sending). Because the input is a plain `Read` that cannot be re-opened, what was read
/// is kept in a [`Spool`] (memory up to [`SPOOL_MEM`], then an unlinked temporary file) so the
/// chunked fallback and stale-`Range` recovery can re-read it; the spool is dropped when the
/// call returns. Input of unknown digest or size is hashed into a temporary file first (as
/// before), and only then uploaded (no mount attempt: the caller did not name the blob).
pub(super) fn put(
    transport: &Arc<Transport>,
    caps: &Mutex<HashMap<String, u64>>,
    r: &Reference,
    expect: &BlobExpect,
    rdr: &mut dyn Read,
) -> Result<Descriptor> {
    // Like regclient, only a caller that names the blob gets the (anonymous) mount attempt.
    let mut mount = upload::MountFrom::Anonymous;
    let (digest, size, mut input) = match (&expect.digest, expect.size) {
        (Some(d), Some(s)) => (d.clone(), s, Input::stream(rdr, d, s)),
        _ => {
            let algo = expect
                .digest
                .as_ref()
                .map(|d| d.algorithm())
                .unwrap_or_default();
            let (f, d, s) = spool(rdr, algo)?;
            if let Some(want) = &expect.digest {
                if want != &d {
                    return Err(Error::new(
                        ErrorKind::DigestMismatch,
                        format!("blob input has digest {d}, expected {want}"),
                    ));
                }
            }
            if expect.digest.is_none() {
                mount = upload::MountFrom::None;
            }
            (d, s, Input::spooled(f, s))
        }
    };
    let ctx = || format!("putting blob {digest} to {}", r.repo_name());
    let host = transport.host(&r.registry);
    let cap = caps
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&r.registry)
        .copied();
    let mut machine = upload::Upload::new(upload::Config {
        digest: digest.clone(),
        size,
        media_type: expect.media_type.clone(),
        blob_chunk: host.blob_chunk,
        blob_max: host.blob_max,
        rewindable: input.spool.window.is_none(),
        mount,
        body_cap: cap,
        chunk_limit: transport.config().blob_limit,
    });
    let placeholder = Url::parse(&format!("http://{}/v2/", r.registry))
        .or_else(|_| Url::parse("http://registry.invalid/v2/"))?;
    let mut action = machine.start();
    let mut chunk: Vec<u8> = Vec::new();
    loop {
        let (req, at) = match action {
            upload::Action::Done(d) => {
                // The transport may stop at `Content-Length` without reading the end of the
                // input: make sure it ends there (a mount read nothing and checks nothing).
                if input.spool.len > 0 {
                    input.finish().map_err(|e| e.context(ctx()))?;
                }
                remember_cap(caps, &r.registry, cap, machine.body_cap());
                return Ok(d);
            }
            upload::Action::Failed(e) => {
                // A failed upload still taught us the limit; the caller's retry uses it.
                remember_cap(caps, &r.registry, cap, machine.body_cap());
                return Err(e.context(ctx()));
            }
            upload::Action::Mount { digest, from } => (
                mount_request(r, &digest, from.as_deref()),
                placeholder.clone(),
            ),
            upload::Action::Post => {
                let mut req = Request::new(
                    Method::Post,
                    &r.registry,
                    &r.repository,
                    Target::Repo("blobs/uploads/".to_string()),
                );
                req.priority = Priority::Query;
                (req, placeholder.clone())
            }
            upload::Action::PutMonolithic { url, len } => {
                // Streamed: the transport sends it once; a failure goes back to the machine.
                let reply = {
                    let mut body = Whole {
                        input: &mut input,
                        pos: 0,
                    };
                    let mut req = Request::new(
                        Method::Put,
                        &r.registry,
                        &r.repository,
                        Target::Url(url.clone()),
                    )
                    .header("Content-Type", "application/octet-stream");
                    req.priority = Priority::Blob { size: len };
                    req.body = Body::Stream {
                        reader: &mut body,
                        len,
                    };
                    exchange(transport, req, &url)
                };
                if let Some(e) = input.error.take() {
                    action = machine.input_failed(e);
                    continue;
                }
                action = machine.step(reply);
                continue;
            }
            upload::Action::Patch { url, start, end } => {
                // The window behind the current position must hold at least one chunk.
                if let Some(w) = input.spool.window.as_mut() {
                    *w = (*w).max(machine.chunk_size() as usize);
                }
                let len = (end - start + 1) as usize;
                chunk.resize(len, 0);
                if let Err(e) = input.read_at(start, &mut chunk) {
                    action = machine.input_failed(e);
                    continue;
                }
                let mut req = Request::new(
                    Method::Patch,
                    &r.registry,
                    &r.repository,
                    Target::Url(url.clone()),
                )
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", &format!("{start}-{end}"));
                req.priority = Priority::Blob { size };
                req.body = Body::Bytes(&chunk);
                let reply = exchange(transport, req, &url);
                action = machine.step(reply);
                continue;
            }
            upload::Action::PutFinal { url } => {
                // Everything was read: the input must match its digest and size before the
                // registry is asked to commit it.
                let r2 = input.finish();
                if let Err(e) = input.note(r2) {
                    action = machine.input_failed(e);
                    continue;
                }
                let req = session_request(Method::Put, r, &url);
                (req, url)
            }
            upload::Action::GetStatus { url } => {
                let req = session_request(Method::Get, r, &url);
                (req, url)
            }
            upload::Action::Cancel { url } => {
                let mut req = session_request(Method::Delete, r, &url);
                req.expect_failure = true;
                (req, url)
            }
        };
        let reply = exchange(transport, req, &at);
        action = machine.step(reply);
    }
}

/// Sends one request and summarises the answer for the machine.
fn exchange(transport: &Transport, req: Request<'_>, at: &Url) -> upload::Reply {
    match transport.send(req) {
        Ok(resp) => upload::Reply::from_headers(resp.status, resp.url.clone(), &resp.headers),
        Err(e) => upload::Reply::failure(error_status(&e), at.clone(), e),
    }
}

/// Mounts a blob from another repository of the same registry; `false` when declined. A 202
/// session the registry opens instead is cancelled (the caller then copies the bytes through
/// [`put`], which opens its own).
pub(super) fn mount(
    transport: &Arc<Transport>,
    src: &Reference,
    tgt: &Reference,
    d: &Descriptor,
) -> Result<bool> {
    let mut machine = upload::Upload::new(upload::Config {
        digest: d.digest.clone(),
        size: u64::try_from(d.size).unwrap_or(0),
        media_type: d.media_type.clone(),
        blob_chunk: 0,
        blob_max: 0,
        rewindable: false,
        mount: upload::MountFrom::Repo(src.repository.clone()),
        body_cap: None,
        chunk_limit: 0,
    });
    let upload::Action::Mount { digest, from } = machine.start() else {
        return Ok(false);
    };
    let req = mount_request(tgt, &digest, from.as_deref());
    let placeholder = Url::parse(&format!("http://{}/v2/", tgt.registry))
        .or_else(|_| Url::parse("http://registry.invalid/v2/"))?;
    let reply = exchange(transport, req, &placeholder);
    match machine.step(reply) {
        upload::Action::Done(_) => Ok(true),
        upload::Action::Post => Ok(false),
        _ => {
            // 202: the registry opened an upload session instead; close it.
            if let upload::Action::Cancel { url } =
                machine.input_failed(Error::new(ErrorKind::Canceled, "mount declined"))
            {
                let mut cancel = session_request(Method::Delete, tgt, &url);
                cancel.expect_failure = true;
                let _ = transport.send(cancel);
            }
            Ok(false)
        }
    }
}
