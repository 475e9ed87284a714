//! Blob transfers: a resumable, verified download stream and uploads.
//!
//! Downloads resume an interrupted body with a ranged GET (`Range: bytes=<n>-`) and refuse a
//! response whose `Content-Range` does not start where we stopped. Uploads POST for a session,
//! then send the whole blob in one PUT with `Content-Length`; input of unknown digest (stdin) is
//! hashed while spooling to a temporary file first, so the PUT can name its digest.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use crate::descriptor::Descriptor;
use crate::digest::{Digest, VerifyReader};
use crate::error::{Error, ErrorKind, Result};
use crate::reference::Reference;
use crate::scheme::{BlobExpect, BlobReader};
use crate::transport::client::{Body, Method, Request, Target, Transport};
use crate::transport::throttle::Priority;

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
    Ok(BlobReader::new(desc, Box::new(inner)).with_headers(headers))
}

/// Hashes `rdr` into an anonymous temporary file; returns the file rewound, digest and size.
fn spool(rdr: &mut dyn Read, algo: crate::digest::Algorithm) -> Result<(File, Digest, u64)> {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        ".regclient-spool-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| Error::io(e, format!("creating spool file {}", path.display())))?;
    // Unlinked at once: the data lives only as long as the handle.
    let _ = std::fs::remove_file(&path);
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

/// Uploads a blob: POST for a session, then one PUT with the whole body.
pub(super) fn put(
    transport: &Arc<Transport>,
    r: &Reference,
    expect: &BlobExpect,
    rdr: &mut dyn Read,
) -> Result<Descriptor> {
    let mut spooled;
    let (digest, size, input): (Digest, u64, &mut dyn Read) = match (&expect.digest, expect.size) {
        (Some(d), Some(s)) => (d.clone(), s, rdr),
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
            spooled = f;
            (d, s, &mut spooled)
        }
    };
    let ctx = || format!("putting blob {digest} to {}", r.repo_name());
    let mut post = Request::new(
        Method::Post,
        &r.registry,
        &r.repository,
        Target::Repo("blobs/uploads/".to_string()),
    );
    post.priority = Priority::Query;
    let resp = transport.send(post).map_err(|e| e.context(ctx()))?;
    let loc = resp.header("location").map(str::to_string).ok_or_else(|| {
        Error::new(
            ErrorKind::HttpStatus,
            "location header missing in upload response",
        )
        .context(ctx())
    })?;
    let mut url = resp.url.join(&loc).map_err(|e| e.context(ctx()))?;
    drop(resp);
    url.append_query("digest", &digest.to_string());
    let mut verify = VerifyReader::new(input, Some(digest.clone()), Some(size));
    let mut req = Request::new(
        Method::Put,
        &r.registry,
        &r.repository,
        Target::Url(url.clone()),
    )
    .header("Content-Type", "application/octet-stream");
    req.priority = Priority::Blob { size };
    req.body = Body::Stream {
        reader: &mut verify,
        len: size,
    };
    match transport.send(req) {
        Ok(_) => Ok(Descriptor {
            media_type: expect.media_type.clone(),
            digest,
            size: size as i64,
            ..Default::default()
        }),
        Err(e) => {
            // Cancel the session; its own failure changes nothing for the caller.
            let mut cancel =
                Request::new(Method::Delete, &r.registry, &r.repository, Target::Url(url));
            cancel.expect_failure = true;
            let _ = transport.send(cancel);
            Err(e.context(ctx()))
        }
    }
}

/// Mounts a blob from another repository of the same registry; `false` when declined.
pub(super) fn mount(
    transport: &Arc<Transport>,
    src: &Reference,
    tgt: &Reference,
    d: &Descriptor,
) -> Result<bool> {
    let mut req = Request::new(
        Method::Post,
        &tgt.registry,
        &tgt.repository,
        Target::Repo("blobs/uploads/".to_string()),
    )
    .query("mount", &d.digest.to_string())
    .query("from", &src.repository);
    req.extra_scopes
        .push(format!("repository:{}:pull", src.repository));
    req.expect_failure = true;
    req.priority = Priority::Query;
    let resp = match transport.send(req) {
        Ok(r) => r,
        Err(_) => return Ok(false),
    };
    if resp.status == 201 {
        return Ok(true);
    }
    // 202: the registry opened an upload session instead; close it.
    if let Some(loc) = resp.header("location") {
        if let Ok(url) = resp.url.join(loc) {
            let mut cancel = Request::new(
                Method::Delete,
                &tgt.registry,
                &tgt.repository,
                Target::Url(url),
            );
            cancel.expect_failure = true;
            drop(resp);
            let _ = transport.send(cancel);
        }
    }
    Ok(false)
}
