//! Per-registry settings (`Host`), their merge rules and the Docker Hub defaults.
//!
//! JSON keys are the camelCase names regctl writes; regsync/regbot YAML `creds` entries use the
//! same keys plus `registry` for the name (in regctl's file the name is the map key, so it is
//! read from `registry` but never written).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::auth::Credential;
use crate::error::{Error, ErrorKind, Result};
use crate::reference::{DOCKER_REGISTRY, DOCKER_REGISTRY_AUTH, DOCKER_REGISTRY_HOST};

/// Requests in flight per host when nothing is configured.
pub const DEFAULT_REQ_CONCURRENT: i64 = 3;
/// How long a credential helper's answer is reused when `credExpire` is unset.
pub const DEFAULT_CRED_EXPIRE: Duration = Duration::from_secs(3600);

/// How to talk to a registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tls {
    /// Not configured (merging keeps the previous value).
    #[default]
    Undefined,
    /// HTTPS with certificate verification.
    Enabled,
    /// HTTPS without verification.
    Insecure,
    /// Plain HTTP.
    Disabled,
}

impl Tls {
    /// The config-file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Tls::Undefined => "",
            Tls::Enabled => "enabled",
            Tls::Insecure => "insecure",
            Tls::Disabled => "disabled",
        }
    }

    /// Parses `enabled`, `insecure` or `disabled` (case-insensitive).
    pub fn parse(s: &str) -> Result<Tls> {
        match s.to_ascii_lowercase().as_str() {
            "enabled" => Ok(Tls::Enabled),
            "insecure" => Ok(Tls::Insecure),
            "disabled" => Ok(Tls::Disabled),
            "" => Ok(Tls::Undefined),
            _ => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unknown TLS value {s:?}, expected enabled, insecure or disabled"),
            )),
        }
    }

    fn is_undefined(&self) -> bool {
        *self == Tls::Undefined
    }
}

impl Serialize for Tls {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Tls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Tls, D::Error> {
        let s = String::deserialize(d)?;
        Tls::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A duration written like Go (`"1h0m0s"`), read from such a string or a number of nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoDuration(pub Duration);

impl GoDuration {
    fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Parses Go's duration syntax (`1h30m`, `1.5s`, `300ms`, `0`); negative values are refused.
    pub fn parse(s: &str) -> Result<GoDuration> {
        let bad = || Error::new(ErrorKind::InvalidInput, format!("invalid duration {s:?}"));
        let rest = s.strip_prefix('+').unwrap_or(s);
        if rest == "0" {
            return Ok(GoDuration::default());
        }
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u128 = 0;
        let mut rest = rest;
        // Each round consumes a number and a unit, so the loop ends with the input.
        while !rest.is_empty() {
            let int_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (int, after) = rest.split_at(int_end);
            let (frac, after) = match after.strip_prefix('.') {
                Some(a) => {
                    let e = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                    a.split_at(e)
                }
                None => ("", after),
            };
            if int.is_empty() && frac.is_empty() {
                return Err(bad());
            }
            let unit_end = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_end);
            let unit_ns: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(bad()),
            };
            let int: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| bad())?
            };
            let mut value = int.checked_mul(unit_ns).ok_or_else(bad)?;
            // Fractions beyond nanosecond precision are dropped, like Go.
            let mut scale = unit_ns;
            for d in frac.bytes().take(20) {
                scale /= 10;
                value += u128::from(d - b'0') * scale;
            }
            total = total.checked_add(value).ok_or_else(bad)?;
            rest = after;
        }
        let secs = u64::try_from(total / 1_000_000_000).map_err(|_| bad())?;
        Ok(GoDuration(Duration::new(
            secs,
            (total % 1_000_000_000) as u32,
        )))
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn frac(v: u128, unit: u128) -> String {
            let (int, rem) = (v / unit, v % unit);
            if rem == 0 {
                return int.to_string();
            }
            let width = unit.to_string().len() - 1;
            let digits = format!("{rem:0width$}");
            format!("{int}.{}", digits.trim_end_matches('0'))
        }
        let ns = self.0.as_nanos();
        match ns {
            0 => f.write_str("0s"),
            1..=999 => write!(f, "{ns}ns"),
            1_000..=999_999 => write!(f, "{}µs", frac(ns, 1_000)),
            1_000_000..=999_999_999 => write!(f, "{}ms", frac(ns, 1_000_000)),
            _ => {
                let secs = ns / 1_000_000_000;
                let (h, m) = (secs / 3600, secs % 3600 / 60);
                let s = frac(ns % 60_000_000_000, 1_000_000_000);
                if h > 0 {
                    write!(f, "{h}h{m}m{s}s")
                } else if m > 0 {
                    write!(f, "{m}m{s}s")
                } else {
                    write!(f, "{s}s")
                }
            }
        }
    }
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<GoDuration, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => GoDuration::parse(&s).map_err(D::Error::custom),
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(|ns| GoDuration(Duration::from_nanos(ns)))
                .ok_or_else(|| D::Error::custom("duration must be a non-negative integer")),
            serde_json::Value::Null => Ok(GoDuration::default()),
            _ => Err(D::Error::custom("duration must be a string or a number")),
        }
    }
}

/// Settings for one registry. `Debug` hides `pass`, `token` and `clientKey`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    /// Name used in references (`docker.io`); the map key in regctl's file, `registry` in YAML.
    #[serde(rename = "registry", default, skip_serializing)]
    pub name: String,
    /// TLS mode.
    #[serde(default, skip_serializing_if = "Tls::is_undefined")]
    pub tls: Tls,
    /// Extra CA certificate (PEM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub regcert: String,
    /// Client certificate for mTLS (PEM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_cert: String,
    /// Client key for mTLS (PEM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_key: String,
    /// DNS `name[:port]` actually connected to (default: the name; Hub: `registry-1.docker.io`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// Login user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Login password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pass: String,
    /// Identity (refresh) token.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// Credential helper program (`docker-credential-ecr-login`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cred_helper: String,
    /// How long a helper's answer is reused (0: [`DEFAULT_CRED_EXPIRE`]).
    #[serde(default, skip_serializing_if = "GoDuration::is_zero")]
    pub cred_expire: GoDuration,
    /// Name given to the helper when it differs from the hostname.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cred_host: String,
    /// Inserted after `/v2/` in every repository path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path_prefix: String,
    /// Names of other hosts used as read mirrors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
    /// Mirror sort key.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub priority: u64,
    /// Separate auth state per repository.
    #[serde(default, skip_serializing_if = "is_false")]
    pub repo_auth: bool,
    /// Deprecated, kept so old files round-trip.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api: String,
    /// API options; only `disableHead` is used.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_opts: BTreeMap<String, String>,
    /// Chunk size for chunked uploads.
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub blob_chunk: i64,
    /// Size above which a monolithic upload is skipped (0 default, -1 never).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub blob_max: i64,
    /// Request rate limit (0: unlimited).
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub req_per_sec: f64,
    /// Concurrent requests (0: [`DEFAULT_REQ_CONCURRENT`]).
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub req_concurrent: i64,
    /// Deprecated (use `tls`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}
fn is_false(v: &bool) -> bool {
    !*v
}

fn secret(s: &str) -> &'static str {
    if s.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("tls", &self.tls)
            .field("regcert", &self.regcert.len())
            .field("client_cert", &self.client_cert.len())
            .field("client_key", &secret(&self.client_key))
            .field("hostname", &self.hostname)
            .field("user", &self.user)
            .field("pass", &secret(&self.pass))
            .field("token", &secret(&self.token))
            .field("cred_helper", &self.cred_helper)
            .field("cred_expire", &self.cred_expire.to_string())
            .field("cred_host", &self.cred_host)
            .field("path_prefix", &self.path_prefix)
            .field("mirrors", &self.mirrors)
            .field("priority", &self.priority)
            .field("repo_auth", &self.repo_auth)
            .field("api", &self.api)
            .field("api_opts", &self.api_opts)
            .field("blob_chunk", &self.blob_chunk)
            .field("blob_max", &self.blob_max)
            .field("req_per_sec", &self.req_per_sec)
            .field("req_concurrent", &self.req_concurrent)
            .field("scheme", &self.scheme)
            .finish()
    }
}

/// A registry name as users write it, reduced to the name used in references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName {
    /// The normalised name (`docker.io`, `registry.example:5000`).
    pub name: String,
    /// The input had `http://`.
    pub tls_disabled: bool,
    /// The input differed from the name (a URL form), so helpers should be asked with it.
    pub original: Option<String>,
}

/// Normalises a registry name: Hub aliases (`registry-1.docker.io`, `index.docker.io`,
/// `https://index.docker.io/v1/`) become `docker.io`, `http://`/`https://` and any path are
/// dropped (`http://` meaning TLS disabled).
pub fn normalize_name(input: &str) -> HostName {
    let mut name = input;
    let mut tls_disabled = false;
    if let Some(i) = name.find("://") {
        tls_disabled = name[..i].eq_ignore_ascii_case("http");
        name = &name[i + 3..];
    }
    if let Some(i) = name.find('/') {
        name = &name[..i];
    }
    let name = match name {
        DOCKER_REGISTRY | DOCKER_REGISTRY_HOST | "index.docker.io" => DOCKER_REGISTRY,
        n => n,
    };
    HostName {
        name: name.to_string(),
        tls_disabled,
        original: (name != input).then(|| input.to_string()),
    }
}

impl Host {
    /// A host with the library defaults and no name (TLS on, 3 concurrent requests).
    pub fn new() -> Host {
        Host {
            tls: Tls::Enabled,
            req_concurrent: DEFAULT_REQ_CONCURRENT,
            ..Host::default()
        }
    }

    /// The defaults for `name`, including Docker Hub's (hostname `registry-1.docker.io`,
    /// credHost `https://index.docker.io/v1/`).
    pub fn new_name(name: &str) -> Host {
        Host::new_default_name(None, name)
    }

    /// Like [`new_name`](Self::new_name) starting from a `hostDefault` template.
    pub fn new_default_name(default: Option<&Host>, name: &str) -> Host {
        let mut h = default.cloned().unwrap_or_else(Host::new);
        let n = normalize_name(name);
        h.name = n.name.clone();
        if n.name == DOCKER_REGISTRY {
            h.hostname = DOCKER_REGISTRY_HOST.to_string();
            h.cred_host = DOCKER_REGISTRY_AUTH.to_string();
            return h;
        }
        h.hostname = n.name;
        if n.tls_disabled {
            h.tls = Tls::Disabled;
        }
        if let Some(orig) = n.original {
            h.cred_host = orig;
        }
        h
    }

    /// `pathPrefix` without leading or trailing `/`.
    pub fn path_prefix(&self) -> &str {
        self.path_prefix.trim_matches('/')
    }

    /// `reqConcurrent` or its default.
    pub fn req_concurrent(&self) -> i64 {
        if self.req_concurrent > 0 {
            self.req_concurrent
        } else {
            DEFAULT_REQ_CONCURRENT
        }
    }

    /// `credExpire` or its default.
    pub fn cred_expire(&self) -> Duration {
        if self.cred_expire.0.is_zero() {
            DEFAULT_CRED_EXPIRE
        } else {
            self.cred_expire.0
        }
    }

    /// The hostname to connect to (the name when unset).
    pub fn hostname(&self) -> &str {
        if self.hostname.is_empty() {
            &self.name
        } else {
            &self.hostname
        }
    }

    /// The name to give a credential helper: `credHost`, else the hostname.
    pub fn cred_host(&self) -> &str {
        if self.cred_host.is_empty() {
            self.hostname()
        } else {
            &self.cred_host
        }
    }

    /// True when `apiOpts.disableHead` is `true`.
    pub fn disable_head(&self) -> bool {
        self.api_opts
            .get("disableHead")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The stored login as an auth credential.
    pub fn credential(&self) -> Credential {
        Credential {
            user: self.user.clone(),
            pass: self.pass.clone(),
            token: self.token.clone(),
        }
    }

    /// True when nothing but the name is set (`registry logout` then drops the entry).
    pub fn is_zero(&self) -> bool {
        *self
            == Host {
                name: self.name.clone(),
                ..Host::default()
            }
    }

    /// Warnings for deprecated settings that are set but ignored (`api`, `scheme`).
    pub fn deprecation_warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if !self.api.is_empty() {
            w.push(format!(
                "registry {}: the api setting is deprecated and ignored",
                self.name
            ));
        }
        if !self.scheme.is_empty() {
            w.push(format!(
                "registry {}: the scheme setting is deprecated, use tls",
                self.name
            ));
        }
        w
    }

    /// A copy with `pass`, `token` and `clientKey` blanked, for display.
    pub fn redacted(&self) -> Host {
        Host {
            pass: String::new(),
            token: String::new(),
            client_key: String::new(),
            ..self.clone()
        }
    }

    /// Merges a later source over this one and returns warnings about values it changed.
    ///
    /// Non-empty values override. A login (user/pass or token) without a helper clears the
    /// helper, and a helper without a login clears the stored login: the two are alternatives,
    /// and keeping both would make the older one win silently at request time.
    pub fn merge(&mut self, new: &Host) -> Vec<String> {
        let mut warnings = Vec::new();
        let name = if new.name.is_empty() {
            self.name.clone()
        } else {
            new.name.clone()
        };
        if self.name.is_empty() {
            self.name = new.name.clone();
        }
        let has_login = !new.user.is_empty() || !new.pass.is_empty() || !new.token.is_empty();
        if new.cred_helper.is_empty() && has_login {
            self.cred_helper.clear();
            self.cred_expire = GoDuration::default();
        }
        if !new.cred_helper.is_empty() && !has_login {
            self.user.clear();
            self.pass.clear();
            self.token.clear();
        }
        let mut warn = |what: &str, changed: bool| {
            if changed {
                warnings.push(format!("changing {what} for registry {name}"));
            }
        };
        // Secrets are only reported as changed, never quoted.
        macro_rules! string_field {
            ($field:ident, $what:expr) => {
                if !new.$field.is_empty() {
                    warn($what, !self.$field.is_empty() && self.$field != new.$field);
                    self.$field = new.$field.clone();
                }
            };
        }
        string_field!(user, "login user");
        string_field!(pass, "login password");
        string_field!(token, "login token");
        string_field!(cred_helper, "credential helper");
        string_field!(cred_host, "credential host");
        string_field!(regcert, "certificate");
        string_field!(client_cert, "client certificate");
        string_field!(client_key, "client key");
        string_field!(hostname, "hostname");
        string_field!(path_prefix, "path prefix");
        string_field!(api, "API");
        string_field!(scheme, "scheme");
        if !new.cred_expire.is_zero() {
            warn(
                "credential expiration",
                !self.cred_expire.is_zero() && self.cred_expire != new.cred_expire,
            );
            self.cred_expire = new.cred_expire;
        }
        if new.tls != Tls::Undefined {
            warn("TLS", self.tls != Tls::Undefined && self.tls != new.tls);
            self.tls = new.tls;
        }
        if !new.mirrors.is_empty() {
            warn(
                "mirrors",
                !self.mirrors.is_empty() && self.mirrors != new.mirrors,
            );
            self.mirrors = new.mirrors.clone();
        }
        if new.priority != 0 {
            warn(
                "priority",
                self.priority != 0 && self.priority != new.priority,
            );
            self.priority = new.priority;
        }
        if new.repo_auth {
            self.repo_auth = true;
        }
        for (k, v) in &new.api_opts {
            let old = self.api_opts.insert(k.clone(), v.clone());
            warn(
                &format!("API option {k}"),
                old.is_some_and(|o| !o.is_empty() && o != *v),
            );
        }
        if new.blob_chunk > 0 {
            warn(
                "blob chunk size",
                self.blob_chunk > 0 && self.blob_chunk != new.blob_chunk,
            );
            self.blob_chunk = new.blob_chunk;
        }
        if new.blob_max != 0 {
            warn(
                "blob max size",
                self.blob_max != 0 && self.blob_max != new.blob_max,
            );
            self.blob_max = new.blob_max;
        }
        if new.req_per_sec > 0.0 {
            warn(
                "requests per second",
                self.req_per_sec > 0.0 && self.req_per_sec != new.req_per_sec,
            );
            self.req_per_sec = new.req_per_sec;
        }
        if new.req_concurrent > 0 {
            warn(
                "concurrent requests",
                self.req_concurrent > 0 && self.req_concurrent != new.req_concurrent,
            );
            self.req_concurrent = new.req_concurrent;
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_table() {
        let cases = [
            ("docker.io", "docker.io", false, false),
            ("registry-1.docker.io", "docker.io", false, true),
            ("index.docker.io", "docker.io", false, true),
            ("https://index.docker.io/v1/", "docker.io", false, true),
            ("http://reg.local:5000/", "reg.local:5000", true, true),
            ("https://reg.example", "reg.example", false, true),
            ("reg.example/some/path", "reg.example", false, true),
            ("localhost:5000", "localhost:5000", false, false),
        ];
        for (input, name, http, orig) in cases {
            let n = normalize_name(input);
            assert_eq!(n.name, name, "{input}");
            assert_eq!(n.tls_disabled, http, "{input}");
            assert_eq!(n.original.is_some(), orig, "{input}");
        }
    }

    #[test]
    fn defaults() {
        for hub in [
            "docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
        ] {
            let h = Host::new_name(hub);
            assert_eq!(h.name, "docker.io");
            assert_eq!(h.hostname, "registry-1.docker.io");
            assert_eq!(h.cred_host, "https://index.docker.io/v1/");
            assert_eq!(h.tls, Tls::Enabled);
            assert_eq!(h.req_concurrent(), 3);
        }
        let h = Host::new_name("http://reg.local:5000/");
        assert_eq!(
            (h.name.as_str(), h.hostname.as_str()),
            ("reg.local:5000", "reg.local:5000")
        );
        assert_eq!(h.tls, Tls::Disabled);
        assert_eq!(h.cred_host(), "http://reg.local:5000/");
        let h = Host::new_name("reg.example");
        assert_eq!(h.cred_host(), "reg.example");
        assert_eq!(h.cred_expire(), Duration::from_secs(3600));
        let def = Host {
            cred_helper: "docker-credential-x".into(),
            ..Host::new()
        };
        let h = Host::new_default_name(Some(&def), "reg.example");
        assert_eq!(
            (h.name.as_str(), h.cred_helper.as_str()),
            ("reg.example", "docker-credential-x")
        );
        let h = Host {
            path_prefix: "/mirror/ns/".into(),
            ..Host::new()
        };
        assert_eq!(h.path_prefix(), "mirror/ns");
    }

    #[test]
    fn json_names_round_trip() {
        let json = r#"{"tls":"insecure","regcert":"C","clientCert":"CC","clientKey":"CK","hostname":"h:1",
            "user":"u","pass":"p","token":"t","credHelper":"docker-credential-x","credExpire":"1h30m0s",
            "credHost":"ch","pathPrefix":"pp","mirrors":["m1"],"priority":2,"repoAuth":true,"api":"v2",
            "apiOpts":{"disableHead":"true"},"blobChunk":5,"blobMax":-1,"reqPerSec":0.5,"reqConcurrent":7,
            "scheme":"https"}"#;
        let h: Host = serde_json::from_str(json).unwrap();
        assert_eq!(h.tls, Tls::Insecure);
        assert_eq!(h.cred_expire.0, Duration::from_secs(5400));
        assert!(h.disable_head() && h.repo_auth);
        assert_eq!((h.blob_max, h.req_per_sec, h.req_concurrent), (-1, 0.5, 7));
        let back: serde_json::Value = serde_json::to_value(&h).unwrap();
        let orig: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig);
        // YAML-style entries carry the name; it is never written back.
        let h: Host =
            serde_json::from_str(r#"{"registry":"r.example","credExpire":60000000000}"#).unwrap();
        assert_eq!(h.name, "r.example");
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"{"credExpire":"1m0s"}"#
        );
        assert!(serde_json::from_str::<Host>(r#"{"tls":"sometimes"}"#).is_err());
        assert_eq!(serde_json::to_string(&Host::default()).unwrap(), "{}");
    }

    #[test]
    fn duration_table() {
        let cases = [
            ("0", 0),
            ("0s", 0),
            ("1h", 3_600_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5s", 1_500_000_000),
            ("300ms", 300_000_000),
            ("2us", 2_000),
            ("2µs", 2_000),
            ("7ns", 7),
            ("1m0.25s", 60_250_000_000),
            (".5m", 30_000_000_000),
        ];
        for (s, ns) in cases {
            assert_eq!(GoDuration::parse(s).unwrap().0.as_nanos(), ns, "{s}");
        }
        for bad in ["", "1", "h", "1d", "-1h", "1..5s", "s1"] {
            assert!(GoDuration::parse(bad).is_err(), "{bad}");
        }
        let fmt = [
            (0, "0s"),
            (7, "7ns"),
            (1_500, "1.5µs"),
            (2_500_000, "2.5ms"),
            (1_500_000_000, "1.5s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (93_784_000_000_000, "26h3m4s"),
        ];
        for (ns, want) in fmt {
            assert_eq!(GoDuration(Duration::from_nanos(ns)).to_string(), want);
        }
    }

    #[test]
    fn debug_redacts() {
        let h = Host {
            user: "alice".into(),
            pass: "hunter2-pass".into(),
            token: "tok-secret".into(),
            client_key: "-----BEGIN KEY-----".into(),
            ..Host::new_name("reg.example")
        };
        let d = format!("{h:?}");
        assert!(d.contains("alice"));
        for s in ["hunter2-pass", "tok-secret", "BEGIN KEY"] {
            assert!(!d.contains(s), "{d}");
        }
        let r = h.redacted();
        assert!(r.pass.is_empty() && r.token.is_empty() && r.client_key.is_empty());
        assert_eq!(r.user, "alice");
    }

    #[test]
    fn merge_table() {
        struct Case {
            name: &'static str,
            old: Host,
            new: Host,
            want: Host,
            warnings: usize,
        }
        let login = |u: &str, p: &str| Host {
            user: u.into(),
            pass: p.into(),
            ..Host::default()
        };
        let helper = |c: &str| Host {
            cred_helper: c.into(),
            ..Host::default()
        };
        let cases = [
            Case {
                name: "empty new keeps old",
                old: login("u", "p"),
                new: Host::default(),
                want: login("u", "p"),
                warnings: 0,
            },
            Case {
                name: "same values no warning",
                old: login("u", "p"),
                new: login("u", "p"),
                want: login("u", "p"),
                warnings: 0,
            },
            Case {
                name: "changed login warns",
                old: login("u", "p"),
                new: login("v", "q"),
                want: login("v", "q"),
                warnings: 2,
            },
            Case {
                name: "login clears helper",
                old: helper("docker-credential-a"),
                new: login("u", "p"),
                want: login("u", "p"),
                warnings: 0,
            },
            Case {
                name: "token clears helper",
                old: helper("docker-credential-a"),
                new: Host {
                    token: "t".into(),
                    ..Host::default()
                },
                want: Host {
                    token: "t".into(),
                    ..Host::default()
                },
                warnings: 0,
            },
            Case {
                name: "helper clears login",
                old: Host {
                    token: "t".into(),
                    ..login("u", "p")
                },
                new: helper("docker-credential-b"),
                want: helper("docker-credential-b"),
                warnings: 0,
            },
            Case {
                name: "helper change warns",
                old: helper("docker-credential-a"),
                new: helper("docker-credential-b"),
                want: helper("docker-credential-b"),
                warnings: 1,
            },
            Case {
                name: "tls and numbers",
                old: Host {
                    tls: Tls::Enabled,
                    req_concurrent: 3,
                    blob_max: 5,
                    ..Host::default()
                },
                new: Host {
                    tls: Tls::Disabled,
                    req_per_sec: 1.5,
                    repo_auth: true,
                    ..Host::default()
                },
                want: Host {
                    tls: Tls::Disabled,
                    req_concurrent: 3,
                    blob_max: 5,
                    req_per_sec: 1.5,
                    repo_auth: true,
                    ..Host::default()
                },
                warnings: 1,
            },
            Case {
                name: "api opts merged per key",
                old: Host {
                    api_opts: [("a".to_string(), "1".to_string())].into(),
                    ..Host::default()
                },
                new: Host {
                    api_opts: [("disableHead".to_string(), "true".to_string())].into(),
                    ..Host::default()
                },
                want: Host {
                    api_opts: [
                        ("a".to_string(), "1".to_string()),
                        ("disableHead".to_string(), "true".to_string()),
                    ]
                    .into(),
                    ..Host::default()
                },
                warnings: 0,
            },
            Case {
                name: "mirrors replaced",
                old: Host {
                    mirrors: vec!["a".into()],
                    ..Host::default()
                },
                new: Host {
                    mirrors: vec!["b".into()],
                    priority: 4,
                    ..Host::default()
                },
                want: Host {
                    mirrors: vec!["b".into()],
                    priority: 4,
                    ..Host::default()
                },
                warnings: 1,
            },
        ];
        for mut c in cases {
            let w = c.old.merge(&c.new);
            assert_eq!(c.old, c.want, "{}", c.name);
            assert_eq!(w.len(), c.warnings, "{}: {w:?}", c.name);
        }
        // Warnings never quote secrets.
        let mut h = Host {
            name: "r".into(),
            ..login("u", "old-secret")
        };
        let w = h.merge(&login("u", "new-secret"));
        assert_eq!(w, ["changing login password for registry r"]);
    }

    #[test]
    fn zero_and_credential() {
        assert!(Host {
            name: "x".into(),
            ..Host::default()
        }
        .is_zero());
        assert!(!Host::new_name("x").is_zero());
        assert!(Host::new_name("x").deprecation_warnings().is_empty());
        let old = Host {
            api: "v2".into(),
            scheme: "http".into(),
            ..Host::new_name("x")
        };
        assert_eq!(old.deprecation_warnings().len(), 2);
        let c = Host {
            user: "u".into(),
            pass: "p".into(),
            token: "t".into(),
            ..Host::default()
        }
        .credential();
        assert_eq!(
            (c.user.as_str(), c.pass.as_str(), c.token.as_str()),
            ("u", "p", "t")
        );
    }
}
