//! Registries over the OCI distribution API (`registry/repo:tag`).
//!
//! Thin on purpose: each method builds a [`Request`], hands it to the [`Transport`] (auth,
//! retries, throttle, redirects) and interprets the answer. Decisions that are protocol rather
//! than I/O live in pure modules (`auth`, `transport::retry`, `transport::link`).

mod blob;
mod tagdelete;
mod upload;

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Manifest, Source};
use crate::mediatype as mt;
use crate::reference::Reference;
use crate::referrer::fallback;
use crate::scheme::{
    BlobExpect, BlobReader, DeleteOpts, ManifestHead, PutOpts, Scheme, TagList, TagOpts,
};
use crate::transport::client::{Body, Method, Request, Response, Target, Transport};
use crate::transport::link::{PageStep, Pager};
use crate::transport::throttle::Priority;

/// Most pages followed for one tag or referrers listing.
const MAX_PAGES: u32 = 10_000;
/// Largest tag-list or catalog page.
const MAX_LIST_BODY: usize = 16 * 1024 * 1024;
/// How long a "no referrers API here" answer is remembered.
const REFERRERS_FEATURE_TTL: Duration = Duration::from_secs(300);

/// One page of a registry's catalog.
#[derive(Debug, Clone, Default)]
pub struct RepoList {
    /// Repository names.
    pub repositories: Vec<String>,
    /// The raw response body.
    pub raw: Vec<u8>,
    /// Response headers.
    pub headers: Vec<(String, String)>,
}

/// The registry scheme.
pub struct Registry {
    transport: Arc<Transport>,
    /// Serialises read-modify-write of referrers fallback tags within this process.
    fallback_lock: Mutex<()>,
    /// Repositories known to lack the referrers API.
    no_referrers_api: Mutex<HashMap<String, Instant>>,
    /// Largest request body each registry accepted (learned from a 413), so later uploads
    /// go straight to chunks that fit.
    body_caps: Mutex<HashMap<String, u64>>,
}

fn accept() -> String {
    mt::MANIFEST_ACCEPT.join(", ")
}

fn manifest_ref(r: &Reference) -> Result<String> {
    if !r.digest.is_empty() {
        Ok(r.digest.clone())
    } else if !r.tag.is_empty() {
        Ok(r.tag.clone())
    } else {
        Err(Error::new(
            ErrorKind::MissingTagOrDigest,
            format!("reference {} has neither tag nor digest", r.common_name()),
        ))
    }
}

fn digest_header(resp: &Response) -> Option<Digest> {
    resp.header("docker-content-digest")
        .and_then(|d| Digest::parse(d.trim()).ok())
}

impl Registry {
    /// A registry scheme over a transport.
    pub fn new(transport: Arc<Transport>) -> Registry {
        Registry {
            transport,
            fallback_lock: Mutex::new(()),
            no_referrers_api: Mutex::new(HashMap::new()),
            body_caps: Mutex::new(HashMap::new()),
        }
    }

    /// The transport (for throttles and host settings).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    fn req<'a>(&self, method: Method, r: &Reference, path: String) -> Request<'a> {
        Request::new(method, &r.registry, &r.repository, Target::Repo(path))
    }

    /// Lists repositories (`/v2/_catalog`), one page: `last` and `limit` paginate.
    pub fn repo_list(
        &self,
        host: &Reference,
        last: Option<&str>,
        limit: Option<usize>,
    ) -> Result<RepoList> {
        let make = || {
            let mut req = Request::new(Method::Get, &host.registry, "", Target::Catalog)
                .header("Accept", "application/json");
            req.priority = Priority::Query;
            req.extra_scopes.push("registry:catalog:*".to_string());
            if let Some(n) = limit {
                req = req.query("n", &n.to_string());
            }
            if let Some(l) = last {
                req = req.query("last", l);
            }
            req
        };
        let got = self
            .transport
            .fetch(&make, MAX_LIST_BODY)
            .map_err(|e| e.context(format!("listing repositories of {}", host.registry)))?;
        let (headers, body) = (got.headers, got.body);
        #[derive(serde::Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let c: Catalog = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!("parsing catalog of {}: {e}", host.registry),
            )
        })?;
        Ok(RepoList {
            repositories: c.repositories,
            raw: body,
            headers,
        })
    }

    fn manifest_get_inner(&self, r: &Reference) -> Result<Manifest> {
        let mref = manifest_ref(r)?;
        let make = || {
            self.req(Method::Get, r, format!("manifests/{mref}"))
                .header("Accept", &accept())
        };
        let got = self.transport.fetch(&make, manifest::MAX_PULL)?;
        let content_type = got.header("content-type").map(str::to_string);
        let header_digest = got
            .header("docker-content-digest")
            .and_then(|d| Digest::parse(d.trim()).ok());
        let (headers, raw) = (got.headers, got.body);
        let want = if r.digest.is_empty() {
            header_digest
        } else {
            Some(Digest::parse(&r.digest)?)
        };
        let mut m = Manifest::from_bytes(
            raw,
            Source {
                descriptor_type: None,
                content_type: content_type.as_deref(),
                digest: want.as_ref(),
            },
        )?;
        m.set_headers(headers);
        Ok(m)
    }

    fn fallback_update(
        &self,
        r: &Reference,
        subject: &Descriptor,
        change: impl FnOnce(Option<&Manifest>) -> Result<Option<Manifest>>,
    ) -> Result<()> {
        let _guard = self.fallback_lock.lock().unwrap_or_else(|e| e.into_inner());
        let tag_ref = r.set_tag(&subject.digest.fallback_tag());
        let current = match self.manifest_get_inner(&tag_ref) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        match change(current.as_ref())? {
            Some(next) => self.put_raw(&tag_ref, &next).map(|_| ()),
            None => {
                // An emptied index: delete the tag, or leave an empty index if deleting fails.
                if let Some(cur) = &current {
                    let del = self.req(Method::Delete, r, format!("manifests/{}", cur.digest()));
                    if self.transport.send(del).is_err() {
                        let empty = Manifest::from_body(
                            crate::manifest::Body::Index(crate::manifest::Index {
                                schema_version: 2,
                                media_type: mt::OCI1_INDEX.to_string(),
                                ..Default::default()
                            }),
                            crate::digest::Algorithm::Sha256,
                        )?;
                        self.put_raw(&tag_ref, &empty)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn put_raw(&self, r: &Reference, m: &Manifest) -> Result<Vec<(String, String)>> {
        m.check_push_size()?;
        let mref = if r.tag.is_empty() {
            m.digest().to_string()
        } else {
            r.tag.clone()
        };
        let mut req = self
            .req(Method::Put, r, format!("manifests/{mref}"))
            .header("Content-Type", m.media_type());
        req.body = Body::Bytes(m.raw());
        let resp = self.transport.send(req)?;
        if let Some(d) = digest_header(&resp) {
            if d.algorithm() == m.digest().algorithm() && &d != m.digest() {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!("registry computed {d} for manifest {}", m.digest()),
                ));
            }
        }
        // Only headers matter; dropping the response frees the host slot before any follow-up
        // request (fallback tag updates), which would otherwise wait on it.
        Ok(resp.headers)
    }
}

impl Scheme for Registry {
    fn manifest_get(&self, r: &Reference) -> Result<Manifest> {
        self.manifest_get_inner(r)
    }

    fn manifest_head(&self, r: &Reference) -> Result<ManifestHead> {
        let host = self.transport.host(&r.registry);
        if host.disable_head() {
            let m = self.manifest_get_inner(r)?;
            return Ok(ManifestHead {
                media_type: m.media_type().to_string(),
                digest: Some(m.digest().clone()),
                size: Some(m.raw().len() as i64),
                headers: m.headers().to_vec(),
            });
        }
        let mref = manifest_ref(r)?;
        let req = self
            .req(Method::Head, r, format!("manifests/{mref}"))
            .header("Accept", &accept());
        let resp = self.transport.send(req)?;
        let media_type = resp
            .header("content-type")
            .map(mt::base)
            .unwrap_or_default();
        let mut digest = digest_header(&resp);
        if let (Some(d), false) = (&digest, r.digest.is_empty()) {
            // A header that contradicts the requested digest is not trusted.
            if d.to_string() != r.digest {
                digest = Digest::parse(&r.digest).ok();
            }
        }
        let size = resp
            .header("content-length")
            .and_then(|v| v.parse::<i64>().ok());
        Ok(ManifestHead {
            media_type,
            digest,
            size,
            headers: resp.headers,
        })
    }

    fn manifest_put(&self, r: &Reference, m: &Manifest, _opts: PutOpts) -> Result<()> {
        if !r.digest.is_empty() && r.digest != m.digest().to_string() {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "manifest digest {} does not match reference {}",
                    m.digest(),
                    r.common_name()
                ),
            ));
        }
        let headers = self
            .put_raw(r, m)
            .map_err(|e| e.context(format!("putting manifest {}", r.common_name())))?;
        if let Some(subject) = m.subject() {
            let acknowledged = headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("oci-subject") && v.trim() == subject.digest.to_string()
            });
            if !acknowledged {
                let desc = fallback::referrer_descriptor(m);
                self.fallback_update(r, subject, |cur| fallback::add(cur, &desc).map(Some))
                    .map_err(|e| e.context("updating the referrers fallback tag"))?;
            }
        }
        Ok(())
    }

    fn manifest_delete(&self, r: &Reference, opts: DeleteOpts) -> Result<()> {
        if r.digest.is_empty() {
            return Err(Error::new(
                ErrorKind::MissingTagOrDigest,
                format!(
                    "deleting {} needs a digest (tags are deleted with tag delete)",
                    r.common_name()
                ),
            ));
        }
        let subject = if opts.check_referrers {
            match self.manifest_get_inner(r) {
                Ok(m) => m.subject().cloned(),
                Err(_) => None,
            }
        } else {
            None
        };
        let req = self.req(Method::Delete, r, format!("manifests/{}", r.digest));
        self.transport
            .send(req)
            .map_err(|e| e.context(format!("deleting manifest {}", r.common_name())))?;
        if let Some(s) = subject {
            let d = Digest::parse(&r.digest)?;
            self.fallback_update(r, &s, |cur| match cur {
                Some(c) => fallback::remove(c, &d),
                None => Ok(None),
            })?;
        }
        Ok(())
    }

    fn blob_get(&self, r: &Reference, d: &Descriptor) -> Result<BlobReader> {
        if let Some(data) = d.embedded_data() {
            return Ok(BlobReader::new(
                d.clone(),
                Box::new(std::io::Cursor::new(data)),
            ));
        }
        blob::get(&self.transport, r, d)
    }

    fn blob_head(&self, r: &Reference, d: &Descriptor) -> Result<Descriptor> {
        let req = self.req(Method::Head, r, format!("blobs/{}", d.digest));
        let resp = self.transport.send(req)?;
        let mut out = d.clone();
        if let Some(len) = resp
            .header("content-length")
            .and_then(|v| v.parse::<i64>().ok())
        {
            out.size = len;
        }
        Ok(out)
    }

    fn blob_put(
        &self,
        r: &Reference,
        expect: &BlobExpect,
        rdr: &mut dyn Read,
    ) -> Result<Descriptor> {
        blob::put(&self.transport, &self.body_caps, r, expect, rdr)
    }

    fn blob_mount(&self, src: &Reference, tgt: &Reference, d: &Descriptor) -> Result<bool> {
        blob::mount(&self.transport, src, tgt, d)
    }

    fn blob_delete(&self, r: &Reference, d: &Descriptor) -> Result<()> {
        let req = self.req(Method::Delete, r, format!("blobs/{}", d.digest));
        self.transport.send(req).map(|_| ())
    }

    fn tag_list(&self, r: &Reference, opts: &TagOpts) -> Result<TagList> {
        let first = || {
            let mut req = self
                .req(Method::Get, r, "tags/list".to_string())
                .header("Accept", "application/json");
            req.priority = Priority::Query;
            if let Some(n) = opts.limit {
                req = req.query("n", &n.to_string());
            }
            if let Some(l) = &opts.last {
                req = req.query("last", l);
            }
            req
        };
        let mut resp = self.transport.fetch(&first, MAX_LIST_BODY)?;
        let mut pager = Pager::new(&resp.url, MAX_PAGES);
        let mut tags: Vec<String> = Vec::new();
        let mut name = String::new();
        let mut raw = Vec::new();
        let headers = resp.headers.clone();
        loop {
            let url = resp.url.clone();
            let hdrs: Vec<(String, String)> = resp.headers.clone();
            let body = std::mem::take(&mut resp.body);
            #[derive(serde::Deserialize)]
            struct Tags {
                #[serde(default)]
                name: String,
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let t: Tags = serde_json::from_slice(&body).map_err(|e| {
                Error::new(
                    ErrorKind::Parse,
                    format!("parsing tag list of {}: {e}", r.repo_name()),
                )
            })?;
            if name.is_empty() {
                name = t.name;
                raw = body;
            }
            tags.extend(t.tags.unwrap_or_default());
            if opts.limit.is_some_and(|n| tags.len() >= n) {
                break;
            }
            let pairs: Vec<(&str, &str)> =
                hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            match pager.next(&url, &pairs)? {
                PageStep::Fetch(next) => {
                    let make = || {
                        let mut req = Request::new(
                            Method::Get,
                            &r.registry,
                            &r.repository,
                            Target::Url(next.clone()),
                        )
                        .header("Accept", "application/json");
                        req.priority = Priority::Query;
                        req
                    };
                    resp = self.transport.fetch(&make, MAX_LIST_BODY)?;
                }
                PageStep::Done(_) => break,
            }
        }
        // Servers that ignore `last` repeat tags; keep each once, in order.
        let mut seen = std::collections::HashSet::new();
        tags.retain(|t| seen.insert(t.clone()));
        if let Some(n) = opts.limit {
            tags.truncate(n);
        }
        tags.sort();
        Ok(TagList {
            name,
            tags,
            raw,
            media_type: "application/json".to_string(),
            headers,
        })
    }

    fn tag_delete(&self, r: &Reference) -> Result<()> {
        tagdelete::tag_delete(self, r)
    }

    fn referrers_api(&self, r: &Reference, subject: &Digest) -> Result<Option<Manifest>> {
        let key = format!("{}/{}", r.registry, r.repository);
        {
            let mut known = self
                .no_referrers_api
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(at) = known.get(&key) {
                if at.elapsed() < REFERRERS_FEATURE_TTL {
                    return Ok(None);
                }
                known.remove(&key);
            }
        }
        let make = || {
            let mut req = self
                .req(Method::Get, r, format!("referrers/{subject}"))
                .header("Accept", mt::OCI1_INDEX);
            req.expect_failure = true;
            req.priority = Priority::Query;
            req
        };
        let resp = match self.transport.fetch(&make, manifest::MAX_PULL) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::HttpStatus => {
                self.no_referrers_api
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, Instant::now());
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let ct = resp
            .header("content-type")
            .map(mt::base)
            .unwrap_or_default();
        if ct != mt::OCI1_INDEX {
            self.no_referrers_api
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(key, Instant::now());
            return Ok(None);
        }
        let mut pager = Pager::new(&resp.url, MAX_PAGES);
        let mut url = resp.url.clone();
        let mut hdrs = resp.headers.clone();
        let first = resp.body;
        let mut merged: crate::manifest::Index = serde_json::from_slice(&first).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!("parsing referrers of {subject}: {e}"),
            )
        })?;
        loop {
            let pairs: Vec<(&str, &str)> =
                hdrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            match pager.next(&url, &pairs)? {
                PageStep::Fetch(next) => {
                    let make = || {
                        Request::new(
                            Method::Get,
                            &r.registry,
                            &r.repository,
                            Target::Url(next.clone()),
                        )
                        .header("Accept", mt::OCI1_INDEX)
                    };
                    let resp = self.transport.fetch(&make, manifest::MAX_PULL)?;
                    url = resp.url.clone();
                    hdrs = resp.headers.clone();
                    let body = resp.body;
                    let page: crate::manifest::Index =
                        serde_json::from_slice(&body).map_err(|e| {
                            Error::new(
                                ErrorKind::Parse,
                                format!("parsing referrers of {subject}: {e}"),
                            )
                        })?;
                    merged.manifests.extend(page.manifests);
                }
                PageStep::Done(_) => break,
            }
        }
        if pager.pages() <= 1 {
            return Manifest::from_bytes(
                first,
                Source {
                    content_type: Some(mt::OCI1_INDEX),
                    ..Default::default()
                },
            )
            .map(Some);
        }
        merged.media_type = mt::OCI1_INDEX.to_string();
        Manifest::from_body(
            crate::manifest::Body::Index(merged),
            crate::digest::Algorithm::Sha256,
        )
        .map(Some)
    }

    fn ping(&self, r: &Reference) -> Result<()> {
        let req = Request::new(Method::Get, &r.registry, "", Target::Root);
        self.transport
            .send(req)
            .map(|_| ())
            .map_err(|e| e.context(format!("ping {}", r.registry)))
    }

    fn close(&self, _r: &Reference) -> Result<()> {
        Ok(())
    }
}
