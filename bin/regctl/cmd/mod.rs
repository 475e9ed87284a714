//! Command implementations and what they share: the [`Ctx`] handed to each command, output
//! helpers, and flag conversions.

pub mod archive;
pub mod artifact;
pub mod blob;
pub mod image;
pub mod index;
pub mod inspect;
pub mod manifest;
pub mod misc;
pub mod registry;
pub mod repo;
pub mod tag;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;

use regclient::format::{self, Data};
use regclient::referrer::MatchOpts;
use regclient::{Client, Digest, Error, ErrorKind, Platform, Reference, Result};

use crate::flags::Matches;
use crate::log::Logger;

/// A `--host` entry, kept for registry access (the registry scheme is not wired in yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostOpt {
    pub reg: String,
    pub user: String,
    pub pass: String,
    pub tls: String,
}

impl HostOpt {
    /// Parses `reg=NAME,user=U,pass=P,tls=enabled|insecure|disabled`.
    pub fn parse(s: &str) -> Result<HostOpt> {
        let mut h = HostOpt::default();
        for kv in s.split(',').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "--host entries are key=value, got {:?}",
                    crate::log::redact(kv)
                ))
            })?;
            match k.trim() {
                "reg" | "registry" => h.reg = v.to_string(),
                "user" => h.user = v.to_string(),
                "pass" => h.pass = v.to_string(),
                "tls" => match v {
                    "enabled" | "insecure" | "disabled" => h.tls = v.to_string(),
                    _ => {
                        return Err(invalid(format!(
                            "--host tls must be enabled, insecure or disabled, got {v:?}"
                        )))
                    }
                },
                k => return Err(invalid(format!("--host: unknown key {k:?}"))),
            }
        }
        if h.reg.is_empty() {
            return Err(invalid("--host needs reg=NAME".to_string()));
        }
        Ok(h)
    }
}

pub fn invalid(msg: String) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

/// What a command runs with.
pub struct Ctx {
    pub m: Matches,
    pub client: Client,
    pub log: Logger,
    /// `--host` entries (already merged into the client's host settings).
    #[allow(dead_code)]
    pub hosts: Vec<HostOpt>,
    /// The config file and environment, for commands that change settings.
    pub settings: crate::setup::Settings,
    /// References to close (layout GC) once the command ends, whatever its outcome.
    closing: RefCell<Vec<Reference>>,
}

impl Ctx {
    pub fn new(
        m: Matches,
        client: Client,
        log: Logger,
        hosts: Vec<HostOpt>,
        settings: crate::setup::Settings,
    ) -> Ctx {
        Ctx {
            m,
            client,
            log,
            hosts,
            settings,
            closing: RefCell::new(Vec::new()),
        }
    }

    /// Parses a reference argument and remembers to close it.
    pub fn reference(&self, s: &str) -> Result<Reference> {
        let r = Reference::parse(s)?;
        self.closing.borrow_mut().push(r.clone());
        Ok(r)
    }

    /// Closes every reference used, once per repository.
    pub fn close_all(&self) -> Result<()> {
        let refs = std::mem::take(&mut *self.closing.borrow_mut());
        let mut first_err = None;
        let mut done: Vec<Reference> = Vec::new();
        for r in refs {
            if done.iter().any(|d| d.equal_repository(&r)) {
                continue;
            }
            // Registry refs have nothing to close yet; their scheme lookup fails today.
            if let Err(e) = self.client.close(&r) {
                if e.kind() != ErrorKind::Unsupported {
                    first_err.get_or_insert(e);
                }
            }
            done.push(r);
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Writes bytes to stdout.
    pub fn out(&self, b: &[u8]) -> Result<()> {
        let mut o = std::io::stdout().lock();
        o.write_all(b)?;
        o.flush()?;
        Ok(())
    }

    /// Renders `fmt` over `data` to stdout.
    pub fn render(&self, fmt: &str, data: &Data) -> Result<()> {
        let b = format::render(fmt, data)?;
        self.out(&b)
    }

    /// The `-p/--platform` flag, parsed, if given (or defaulted).
    pub fn platform(&self) -> Result<Option<Platform>> {
        match self.m.value("platform") {
            "" => Ok(None),
            p => Platform::parse(p).map(Some),
        }
    }

    /// Referrer filters from `--filter-artifact-type`, `--filter-annotation`, `--sort-*` and
    /// `--latest`.
    pub fn match_opts(&self) -> Result<MatchOpts> {
        let mut annotations = BTreeMap::new();
        for a in self.m.values("filter-annotation") {
            match a.split_once('=') {
                Some((k, v)) => annotations.insert(k.to_string(), Some(v.to_string())),
                None => annotations.insert(a.to_string(), None),
            };
        }
        let mut mo = MatchOpts {
            artifact_type: self.m.value("filter-artifact-type").to_string(),
            annotations,
            sort_annotation: self.m.value("sort-annotation").to_string(),
            sort_desc: self.m.on("sort-desc"),
        };
        if self.m.on("latest") {
            if !mo.sort_annotation.is_empty() {
                return Err(invalid(
                    "--latest cannot be used with --sort-annotation".to_string(),
                ));
            }
            mo.sort_annotation = ANNOTATION_CREATED.to_string();
            mo.sort_desc = true;
        }
        Ok(mo)
    }

    /// The digest of `r` (its own, or from a HEAD, or from a GET when the HEAD does not
    /// report one); with a platform, the digest of that platform's manifest.
    pub fn resolve_digest(&self, r: &Reference, platform: Option<&Platform>) -> Result<Digest> {
        if let Some(p) = platform {
            return Ok(self.client.manifest_get_platform(r, p)?.digest().clone());
        }
        // HEAD even with a digest at hand, so a missing manifest is an error rather than an
        // empty listing.
        let head = self
            .client
            .scheme(r)?
            .manifest_head(r)
            .map_err(|e| e.context(format!("reading manifest {}", r.common_name())))?;
        if !r.digest.is_empty() {
            return Digest::parse(&r.digest);
        }
        match head.digest {
            Some(d) => Ok(d),
            None => Ok(self.client.manifest_get(r)?.digest().clone()),
        }
    }
}

pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";

/// Is this an ignorable "not found" for `--ignore-missing`?
pub fn is_not_found(e: &Error) -> bool {
    e.kind() == ErrorKind::NotFound
}

/// Makes sure the `raw`/`body`/`headers` keywords see the original bytes and headers, whatever
/// the data constructor filled in.
pub fn with_raw(mut d: Data, body: &[u8], headers: &[(String, String)]) -> Data {
    if d.raw_body.is_none() {
        d.raw_body = Some(body.to_vec());
    }
    if d.raw_headers.is_empty() {
        d.raw_headers = headers.to_vec();
    }
    d
}

/// Headers as `Key: value` lines.
pub fn headers_text(h: &[(String, String)]) -> String {
    h.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_opt_parse() {
        let h = HostOpt::parse("reg=r.example:5000,user=bob,pass=p=w,tls=disabled").unwrap();
        assert_eq!(h.reg, "r.example:5000");
        assert_eq!(h.user, "bob");
        assert_eq!(h.pass, "p=w");
        assert_eq!(h.tls, "disabled");
        assert!(HostOpt::parse("reg=x,tls=maybe").is_err());
        assert!(HostOpt::parse("user=bob").is_err());
        let e = HostOpt::parse("reg=x,hunter2").unwrap_err().to_string();
        assert!(e.contains("key=value"), "{e}");
        let e = HostOpt::parse("reg=x,color=red").unwrap_err().to_string();
        assert!(e.contains("color"), "{e}");
    }
}
