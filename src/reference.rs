//! Image references: `[registry/]repo[:tag][@digest]` and `ocidir://path[:tag][@digest]`.
//!
//! Parsing follows regclient's grammar, including Docker Hub normalisation (`alpine` is
//! `docker.io/library/alpine:latest`), ports, bracketed IPv6 hosts and the rule that a first
//! path component is a registry only when it looks like one (a dot, a port, `localhost`, an
//! upper-case letter or brackets).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};

/// Docker Hub's canonical registry name.
pub const DOCKER_REGISTRY: &str = "docker.io";
/// Docker Hub's real host name.
pub const DOCKER_REGISTRY_HOST: &str = "registry-1.docker.io";
/// Docker Hub's legacy name, used as credential helper key.
pub const DOCKER_REGISTRY_AUTH: &str = "https://index.docker.io/v1/";

/// Which backend a reference points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// A registry reached over HTTP(S).
    Registry,
    /// An OCI image layout directory.
    OciDir,
    /// An OCI layout tar file (parsed for compatibility, not usable yet).
    OciFile,
}

impl Scheme {
    /// regclient's short name (`reg`, `ocidir`, `ocifile`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Registry => "reg",
            Scheme::OciDir => "ocidir",
            Scheme::OciFile => "ocifile",
        }
    }
}

/// A parsed, normalised reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Backend.
    pub scheme: Scheme,
    /// The string as the user gave it.
    pub reference: String,
    /// Registry host (`docker.io`, `localhost:5000`); empty for layouts.
    pub registry: String,
    /// Repository path (`library/alpine`); empty for layouts.
    pub repository: String,
    /// Tag, possibly empty.
    pub tag: String,
    /// Digest (`sha256:...`), possibly empty.
    pub digest: String,
    /// Layout directory for `ocidir://`.
    pub path: String,
}

fn invalid(s: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidReference,
        format!("invalid reference {s:?}: {why}"),
    )
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `[A-Za-z0-9]` with inner `-`.
fn valid_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && is_alnum(b[0])
        && is_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum(c) || c == b'-')
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

fn valid_ipv6(s: &str) -> bool {
    let groups_ok = |part: &str| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut n = 0;
        for g in part.split(':') {
            if g.is_empty() || g.len() > 4 || !g.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            n += 1;
        }
        Some(n)
    };
    match s.split_once("::") {
        Some((l, r)) => {
            if r.contains("::") {
                return false;
            }
            matches!((groups_ok(l), groups_ok(r)), (Some(a), Some(b)) if a + b < 8)
        }
        None => groups_ok(s) == Some(8),
    }
}

/// Is `s` (a first path component) a registry host? Returns the kind of match for the caller.
fn is_registry(s: &str) -> bool {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        return valid_ipv6(addr)
            && (after.is_empty() || after.strip_prefix(':').is_some_and(valid_port));
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) => {
            if !valid_port(p) {
                return false;
            }
            (h, Some(p))
        }
        None => (s, None),
    };
    let host_body = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = !host_body.is_empty() && host_body.split('.').all(valid_label);
    if !labels_ok {
        return false;
    }
    host.contains('.')
        || host == "localhost"
        || host.bytes().any(|b| b.is_ascii_uppercase())
        || port.is_some()
}

/// One repository component: `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn valid_repo_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0]) || !is_lower_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_lower_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (is_alnum(b[0]) || b[0] == b'_')
        && b.iter()
            .all(|&c| is_alnum(c) || c == b'_' || c == b'.' || c == b'-')
}

/// regclient's digest grammar for references (any algorithm, at least 32 hex digits).
fn valid_ref_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = algo.split(['-', '_', '+', '.']).all(|p| {
        let b = p.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|c| c.is_ascii_alphanumeric())
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

fn valid_ocidir_path(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| is_alnum(b) || b"/_-. ~+".contains(&b))
}

impl Reference {
    /// Parses and normalises a reference.
    pub fn parse(s: &str) -> Result<Reference> {
        if let Some((scheme, rest)) = split_scheme(s) {
            return match scheme {
                "ocidir" => Self::parse_ocidir(s, rest, Scheme::OciDir),
                "ocifile" => Self::parse_ocidir(s, rest, Scheme::OciFile),
                _ => Err(invalid(s, &format!("unknown scheme {scheme:?}"))),
            };
        }
        Self::parse_reg(s)
    }

    fn parse_ocidir(s: &str, rest: &str, scheme: Scheme) -> Result<Reference> {
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => (r, d.to_string()),
            None => (rest, String::new()),
        };
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) => (p, t.to_string()),
            None => (rest, String::new()),
        };
        if !valid_ocidir_path(path) {
            return Err(invalid(s, "invalid path"));
        }
        if !tag.is_empty() && !valid_tag(&tag) {
            return Err(invalid(s, "invalid tag"));
        }
        if !digest.is_empty() && !valid_ref_digest(&digest) {
            return Err(invalid(s, "invalid digest"));
        }
        Ok(Reference {
            scheme,
            reference: s.to_string(),
            registry: String::new(),
            repository: String::new(),
            tag,
            digest,
            path: path.to_string(),
        })
    }

    fn parse_reg(s: &str) -> Result<Reference> {
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !valid_ref_digest(d) {
                    return Err(invalid(s, "invalid digest"));
                }
                (n, d.to_string())
            }
            None => (s, String::new()),
        };
        let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match name_tag[last_slash..].find(':') {
            Some(i) => (
                &name_tag[..last_slash + i],
                name_tag[last_slash + i + 1..].to_string(),
            ),
            None => (name_tag, String::new()),
        };
        if !tag.is_empty() && !valid_tag(&tag) {
            return Err(invalid(s, "invalid tag"));
        }
        if name_tag.ends_with(':') {
            return Err(invalid(s, "empty tag"));
        }
        // "localhost:5000" alone names a registry without a repository.
        if !name.contains('/') && name == "localhost" && !tag.is_empty() && valid_port(&tag) {
            return Err(invalid(s, "missing repository"));
        }
        let (mut registry, repo) = match name.split_once('/') {
            Some((first, rest)) if is_registry(first) => (first.to_string(), rest.to_string()),
            _ => (String::new(), name.to_string()),
        };
        if name.starts_with('[') && registry.is_empty() {
            return Err(invalid(s, "invalid registry"));
        }
        if repo.is_empty() {
            return Err(invalid(s, "missing repository"));
        }
        for c in repo.split('/') {
            if !valid_repo_component(c) {
                if c.bytes().any(|b| b.is_ascii_uppercase()) {
                    return Err(invalid(s, "repo must be lowercase"));
                }
                return Err(invalid(s, "invalid repository"));
            }
        }
        if registry.is_empty() || registry == DOCKER_REGISTRY_HOST || registry == "index.docker.io"
        {
            registry = DOCKER_REGISTRY.to_string();
        }
        let repository = if registry == DOCKER_REGISTRY && !repo.contains('/') {
            format!("library/{repo}")
        } else {
            repo
        };
        let tag = if tag.is_empty() && digest.is_empty() {
            "latest".to_string()
        } else {
            tag
        };
        Ok(Reference {
            scheme: Scheme::Registry,
            reference: s.to_string(),
            registry,
            repository,
            tag,
            digest,
            path: String::new(),
        })
    }

    /// Parses a registry host (`docker.io`, `localhost:5000`, `http://x` is not accepted here)
    /// or an `ocidir://path`, for commands that take a host rather than an image.
    pub fn parse_host(s: &str) -> Result<Reference> {
        if let Some((scheme, rest)) = split_scheme(s) {
            if scheme == "ocidir" {
                return Self::parse_ocidir(s, rest, Scheme::OciDir);
            }
            return Err(invalid(s, &format!("unknown scheme {scheme:?}")));
        }
        if !is_registry(s) && !valid_label(s) {
            return Err(invalid(s, "invalid registry"));
        }
        let registry = match s {
            DOCKER_REGISTRY_HOST | "index.docker.io" => DOCKER_REGISTRY.to_string(),
            _ => s.to_string(),
        };
        Ok(Reference {
            scheme: Scheme::Registry,
            reference: s.to_string(),
            registry,
            repository: String::new(),
            tag: String::new(),
            digest: String::new(),
            path: String::new(),
        })
    }

    /// `registry/repo[:tag][@digest]`, or `ocidir://path[:tag][@digest]`; empty for ocifile.
    pub fn common_name(&self) -> String {
        let mut s = match self.scheme {
            Scheme::Registry => {
                if self.repository.is_empty() {
                    self.registry.clone()
                } else {
                    format!("{}/{}", self.registry, self.repository)
                }
            }
            Scheme::OciDir => format!("ocidir://{}", self.path),
            Scheme::OciFile => return String::new(),
        };
        if !self.tag.is_empty() {
            s.push(':');
            s.push_str(&self.tag);
        }
        if !self.digest.is_empty() {
            s.push('@');
            s.push_str(&self.digest);
        }
        s
    }

    /// Same reference with a tag (and no digest).
    pub fn set_tag(&self, tag: &str) -> Reference {
        let mut r = self.clone();
        r.tag = tag.to_string();
        r.digest.clear();
        r.reference = r.common_name();
        r
    }

    /// Same reference with a digest (and no tag).
    pub fn set_digest(&self, digest: &str) -> Reference {
        let mut r = self.clone();
        r.digest = digest.to_string();
        r.tag.clear();
        r.reference = r.common_name();
        r
    }

    /// Same reference with a digest added (tag kept for display).
    pub fn add_digest(&self, digest: &str) -> Reference {
        let mut r = self.clone();
        r.digest = digest.to_string();
        r.reference = r.common_name();
        r
    }

    /// Has the reference a tag or a digest (registry) or a path (layout)?
    pub fn is_set(&self) -> bool {
        match self.scheme {
            Scheme::Registry => !self.tag.is_empty() || !self.digest.is_empty(),
            _ => !self.path.is_empty(),
        }
    }

    /// The tag to use, `latest` when neither tag nor digest was given.
    pub fn tag_or_latest(&self) -> &str {
        if self.tag.is_empty() {
            "latest"
        } else {
            &self.tag
        }
    }

    /// Same registry (or same layout path)?
    pub fn equal_registry(&self, other: &Reference) -> bool {
        self.scheme == other.scheme
            && match self.scheme {
                Scheme::Registry => self.registry == other.registry,
                _ => self.path == other.path,
            }
    }

    /// Same repository (or same layout path)?
    pub fn equal_repository(&self, other: &Reference) -> bool {
        self.equal_registry(other)
            && (self.scheme != Scheme::Registry || self.repository == other.repository)
    }

    /// The repository without tag and digest, for listing operations.
    pub fn repo_name(&self) -> String {
        match self.scheme {
            Scheme::Registry => format!("{}/{}", self.registry, self.repository),
            Scheme::OciDir => format!("ocidir://{}", self.path),
            Scheme::OciFile => format!("ocifile://{}", self.path),
        }
    }

    /// A registry-style reference for a layout (`localhost/<cleaned path>`), used for names
    /// inside docker tars.
    pub fn to_reg(&self) -> Reference {
        if self.scheme == Scheme::Registry {
            return self.clone();
        }
        let cleaned: String = self
            .path
            .trim_matches('/')
            .to_ascii_lowercase()
            .bytes()
            .map(|b| {
                if b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'/'
                    || b == b'.'
                    || b == b'_'
                {
                    b as char
                } else {
                    '-'
                }
            })
            .collect();
        let repo: Vec<String> = cleaned
            .split('/')
            .filter(|c| !c.is_empty() && *c != "." && *c != "..")
            .map(|c| {
                c.trim_matches(|ch: char| !ch.is_ascii_alphanumeric())
                    .to_string()
            })
            .filter(|c| !c.is_empty())
            .collect();
        let repository = if repo.is_empty() {
            "image".to_string()
        } else {
            repo.join("/")
        };
        let mut r = Reference {
            scheme: Scheme::Registry,
            reference: String::new(),
            registry: "localhost".to_string(),
            repository,
            tag: self.tag.clone(),
            digest: self.digest.clone(),
            path: String::new(),
        };
        r.reference = r.common_name();
        r
    }
}

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once("://")?;
    if !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_lowercase()) {
        Some((scheme, rest))
    } else {
        None
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.common_name())
    }
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Reference> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D64: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn valid_table() {
        let d = D64;
        let cases: Vec<(String, &str, &str, &str, &str)> = vec![
            ("alpine".into(), "docker.io", "library/alpine", "latest", ""),
            (
                "docker.io/alpine".into(),
                "docker.io",
                "library/alpine",
                "latest",
                "",
            ),
            (
                "regclient/regctl:edge".into(),
                "docker.io",
                "regclient/regctl",
                "edge",
                "",
            ),
            (
                "index.docker.io/library/alpine".into(),
                "docker.io",
                "library/alpine",
                "latest",
                "",
            ),
            (
                "registry-1.docker.io/library/alpine".into(),
                "docker.io",
                "library/alpine",
                "latest",
                "",
            ),
            (
                "example.com/group/image:v42".into(),
                "example.com",
                "group/image",
                "v42",
                "",
            ),
            (
                "EXAMPLE/group-image:V42".into(),
                "EXAMPLE",
                "group-image",
                "V42",
                "",
            ),
            (
                "Example-1/group-image:V42".into(),
                "Example-1",
                "group-image",
                "V42",
                "",
            ),
            (
                "example-A/group-image:V42".into(),
                "example-A",
                "group-image",
                "V42",
                "",
            ),
            (
                "example./g/roup/image:a".into(),
                "example.",
                "g/roup/image",
                "a",
                "",
            ),
            (
                "example.:5000/g/roup/image:a".into(),
                "example.:5000",
                "g/roup/image",
                "a",
                "",
            ),
            (
                "e.xample.co/g-r.o__u_p/im----age:a".into(),
                "e.xample.co",
                "g-r.o__u_p/im----age",
                "a",
                "",
            ),
            (
                "e.xample.co/g/i:__a--b..5__".into(),
                "e.xample.co",
                "g/i",
                "__a--b..5__",
                "",
            ),
            (
                "localhost/group/image:v42".into(),
                "localhost",
                "group/image",
                "v42",
                "",
            ),
            (
                "localhost:5000/group/image:v42".into(),
                "localhost:5000",
                "group/image",
                "v42",
                "",
            ),
            (
                "127.0.0.1:5000/image:v42".into(),
                "127.0.0.1:5000",
                "image",
                "v42",
                "",
            ),
            (
                "[::1]:5000/image:v42".into(),
                "[::1]:5000",
                "image",
                "v42",
                "",
            ),
            (
                "[fddd:1222:1222:1222::ac29:5a6a]/image:v42".into(),
                "[fddd:1222:1222:1222::ac29:5a6a]",
                "image",
                "v42",
                "",
            ),
            (
                format!("registry:5000/group/image@{d}"),
                "registry:5000",
                "group/image",
                "",
                d,
            ),
            (
                format!("registry:5000/group/image:v1@{d}"),
                "registry:5000",
                "group/image",
                "v1",
                d,
            ),
            ("localhost/x".into(), "localhost", "x", "latest", ""),
        ];
        for (input, reg, repo, tag, dig) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.scheme, Scheme::Registry, "{input}");
            assert_eq!(r.registry, reg, "{input}");
            assert_eq!(r.repository, repo, "{input}");
            assert_eq!(r.tag, tag, "{input}");
            assert_eq!(r.digest, dig, "{input}");
        }
    }

    #[test]
    fn ocidir_table() {
        let r = Reference::parse("ocidir://path/to/DIR:v1.2.3").unwrap();
        assert_eq!(
            (r.scheme, r.path.as_str(), r.tag.as_str()),
            (Scheme::OciDir, "path/to/DIR", "v1.2.3")
        );
        let r = Reference::parse("ocidir://path/2/~dir~/+rules_oci+/examples:latest").unwrap();
        assert_eq!(r.path, "path/2/~dir~/+rules_oci+/examples");
        let r = Reference::parse(&format!("ocidir:///abs/dir@{D64}")).unwrap();
        assert_eq!(
            (r.path.as_str(), r.tag.as_str(), r.digest.as_str()),
            ("/abs/dir", "", D64)
        );
        assert_eq!(r.common_name(), format!("ocidir:///abs/dir@{D64}"));
        let r = Reference::parse("ocidir://./rel").unwrap();
        assert_eq!(r.tag_or_latest(), "latest");
        for bad in [
            "ocidir://bad*name:tag",
            "ocidir://f:tag=x",
            "ocidir://f@sha256:abcd",
            "ocidir://",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let r = Reference::parse("ocifile://x.tar:v1").unwrap();
        assert_eq!(r.scheme, Scheme::OciFile);
        assert_eq!(r.common_name(), "");
    }

    #[test]
    fn invalid_table() {
        let long_tag = "a".repeat(129);
        let cases = vec![
            "unknown://repo:tag".to_string(),
            "-docker.io/p/i:t".into(),
            "docker-.io/p/i:t".into(),
            "[1::2::3]/p/i:t".into(),
            "::1/p/i:t".into(),
            "docker.io/Upper/Case/Repo:tag".into(),
            "project/-image:tag".into(),
            "project/image-:tag".into(),
            "project/image___x:tag".into(),
            "project/star*:tag".into(),
            "project/image:tag^1".into(),
            format!("project/image:{long_tag}"),
            "project/image@sha256:12345".into(),
            "project/image@sha256:0123456789abcdef0123456789abcdefXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
                .into(),
            "localhost:5000".into(),
            "".into(),
            "image:".into(),
        ];
        for c in cases {
            let err = Reference::parse(&c).expect_err(&c);
            assert_eq!(err.kind(), ErrorKind::InvalidReference, "{c}");
        }
        let e = Reference::parse("docker.io/Upper/Case/Repo:tag").unwrap_err();
        assert!(e.to_string().contains("lowercase"));
    }

    #[test]
    fn common_name_and_setters() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(r.common_name(), "docker.io/library/nginx:latest");
        let r2 = r.set_digest(D64);
        assert_eq!(r2.common_name(), format!("docker.io/library/nginx@{D64}"));
        let r3 = r.add_digest(D64);
        assert_eq!(
            r3.common_name(),
            format!("docker.io/library/nginx:latest@{D64}")
        );
        assert_eq!(r3.set_tag("v2").common_name(), "docker.io/library/nginx:v2");
        assert!(r.equal_repository(&Reference::parse("docker.io/library/nginx:1").unwrap()));
        assert!(!r.equal_repository(&Reference::parse("docker.io/library/alpine").unwrap()));
    }

    #[test]
    fn hosts() {
        assert_eq!(
            Reference::parse_host("localhost:5000").unwrap().registry,
            "localhost:5000"
        );
        assert_eq!(
            Reference::parse_host("registry-1.docker.io")
                .unwrap()
                .registry,
            "docker.io"
        );
        assert_eq!(
            Reference::parse_host("registry").unwrap().registry,
            "registry"
        );
        assert!(Reference::parse_host("bad/host").is_err());
        assert_eq!(Reference::parse_host("ocidir://x").unwrap().path, "x");
    }

    #[test]
    fn to_reg_cleans_path() {
        let r = Reference::parse("ocidir://./Out/My Dir:v1")
            .unwrap()
            .to_reg();
        assert_eq!(r.common_name(), "localhost/out/my-dir:v1");
    }
}
