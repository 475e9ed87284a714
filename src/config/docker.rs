//! Importing logins from Docker's `config.json` (and `DOCKER_AUTH_CONFIG`).
//!
//! Docker keys logins by server strings of several shapes (`https://index.docker.io/v1/`,
//! `http://host:5000/`, bare names); each becomes a [`Host`] named as references name it.
//! Helpers are recorded, not run: `credHelpers` entries just name the program, and a
//! `credsStore` needs a `list` call, which [`import`] makes through a [`Runner`].

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::credhelper::{self, Runner};
use super::host::{normalize_name, Host};
use super::{env_get, EnvMap};
use crate::error::{Error, ErrorKind, Result, ResultExt};
use crate::reference::DOCKER_REGISTRY;

/// Prefix of credential helper programs.
pub const HELPER_PREFIX: &str = "docker-credential-";
/// Largest docker config read.
const MAX_DOCKER_CONFIG: u64 = 16 << 20;

/// One `auths` entry. `Debug` hides the secrets.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DockerAuth {
    /// base64 `user:pass`.
    #[serde(default)]
    pub auth: String,
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password.
    #[serde(default)]
    pub password: String,
    /// Identity token (becomes the host's `token`).
    #[serde(default)]
    pub identitytoken: String,
    /// Read for compatibility, unused.
    #[serde(default)]
    pub registrytoken: String,
}

impl fmt::Debug for DockerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("DockerAuth")
            .field("auth", &r(&self.auth))
            .field("username", &self.username)
            .field("password", &r(&self.password))
            .field("identitytoken", &r(&self.identitytoken))
            .field("registrytoken", &r(&self.registrytoken))
            .finish()
    }
}

impl DockerAuth {
    /// `(user, pass)`: from `auth` when set (trailing NULs trimmed), else the separate fields.
    pub fn user_pass(&self) -> Result<(String, String)> {
        if self.auth.is_empty() {
            return Ok((self.username.clone(), self.password.clone()));
        }
        let raw = crate::base64::decode(self.auth.trim())
            .map_err(|_| Error::new(ErrorKind::Parse, "invalid base64 in docker auth entry"))?;
        let s = String::from_utf8(raw)
            .map_err(|_| Error::new(ErrorKind::Parse, "docker auth entry is not UTF-8"))?;
        let s = s.trim_end_matches('\0');
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| Error::new(ErrorKind::Parse, "docker auth entry lacks a ':'"))?;
        Ok((u.to_string(), p.to_string()))
    }
}

/// The parts of Docker's `config.json` that matter here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DockerConfig {
    /// Logins by server.
    #[serde(default)]
    pub auths: BTreeMap<String, DockerAuth>,
    /// Helper suffix by server.
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
    /// Default helper suffix.
    #[serde(default, rename = "credsStore")]
    pub creds_store: String,
}

/// Checks a docker server key: optional `http(s)://`, no path except Hub's legacy URL, a
/// plausible `host[:port]`.
fn valid_name(name: &str) -> bool {
    if name.trim() != name || name.is_empty() {
        return false;
    }
    if normalize_name(name).name == DOCKER_REGISTRY {
        return true;
    }
    let rest =
        name.split_once("://").map_or(
            name,
            |(s, r)| {
                if s == "http" || s == "https" {
                    r
                } else {
                    ""
                }
            },
        );
    let host = rest.strip_suffix('/').unwrap_or(rest);
    !host.is_empty()
        && !host.contains('/')
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-_:[]".contains(&c))
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn path(env: &EnvMap) -> Option<PathBuf> {
        if let Some(d) = env_get(env, "DOCKER_CONFIG") {
            return Some(Path::new(d).join("config.json"));
        }
        env_get(env, "HOME").map(|h| Path::new(h).join(".docker").join("config.json"))
    }

    /// Parses a docker config document.
    pub fn parse(data: &[u8]) -> Result<DockerConfig> {
        serde_json::from_slice(data).map_err(|e| {
            Error::new(
                ErrorKind::Parse,
                format!(
                    "parsing docker config: invalid JSON at line {} column {}",
                    e.line(),
                    e.column()
                ),
            )
        })
    }

    /// Loads a docker config file; missing means empty.
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let what = || format!("reading docker config {}", path.display());
        let f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DockerConfig::default())
            }
            Err(e) => return Err(Error::io(e, what())),
        };
        let mut data = Vec::new();
        f.take(MAX_DOCKER_CONFIG + 1)
            .read_to_end(&mut data)
            .with_context(what)?;
        if data.len() as u64 > MAX_DOCKER_CONFIG {
            return Err(Error::new(ErrorKind::SizeLimit, "docker config too large").context(what()));
        }
        DockerConfig::parse(&data).map_err(|e| e.context(what()))
    }

    /// The file config then `DOCKER_AUTH_CONFIG`, in that order (later ones override when merged).
    pub fn from_env(env: &EnvMap) -> Result<Vec<DockerConfig>> {
        let mut out = Vec::new();
        if let Some(p) = DockerConfig::path(env) {
            out.push(DockerConfig::load(&p)?);
        }
        if let Some(json) = env_get(env, "DOCKER_AUTH_CONFIG") {
            out.push(
                DockerConfig::parse(json.as_bytes())
                    .map_err(|e| e.context("DOCKER_AUTH_CONFIG"))?,
            );
        }
        Ok(out)
    }

    /// The `credsStore` helper program, when set; its `list` names the servers it holds.
    pub fn creds_store(&self) -> Option<String> {
        (!self.creds_store.is_empty()).then(|| format!("{HELPER_PREFIX}{}", self.creds_store))
    }

    fn helper_for(&self, name: &str) -> String {
        match self.cred_helpers.get(name) {
            Some(s) if !s.is_empty() => format!("{HELPER_PREFIX}{s}"),
            _ => self.creds_store().unwrap_or_default(),
        }
    }

    /// Hosts from `auths` and `credHelpers`. Entries with an invalid name, undecodable `auth`,
    /// or neither login nor helper are skipped.
    pub fn hosts(&self) -> Vec<Host> {
        let mut out = Vec::new();
        for (name, a) in &self.auths {
            if !valid_name(name) {
                continue;
            }
            let Ok((user, pass)) = a.user_pass() else {
                continue;
            };
            let mut h = Host::new_name(name);
            h.user = user;
            h.pass = pass;
            h.token = a.identitytoken.clone();
            if h.user.is_empty() && h.pass.is_empty() && h.token.is_empty() {
                h.cred_helper = self.helper_for(name);
                if h.cred_helper.is_empty() {
                    continue;
                }
            }
            out.push(h);
        }
        for (name, suffix) in &self.cred_helpers {
            if self.auths.contains_key(name) || suffix.is_empty() || !valid_name(name) {
                continue;
            }
            let mut h = Host::new_name(name);
            h.cred_helper = format!("{HELPER_PREFIX}{suffix}");
            out.push(h);
        }
        out
    }
}

/// Hosts for every server a `credsStore` helper listed, each using that helper.
pub fn store_hosts(helper: &str, listed: &BTreeMap<String, String>) -> Vec<Host> {
    listed
        .keys()
        .filter(|name| valid_name(name))
        .map(|name| {
            let mut h = Host::new_name(name);
            h.cred_helper = helper.to_string();
            h
        })
        .collect()
}

/// Everything docker knows for this environment: for each config (file, then
/// `DOCKER_AUTH_CONFIG`), the hosts its `credsStore` lists, then its `auths`/`credHelpers`.
/// A failing `credsStore` helper is a warning, not an error (docker may be half set up).
pub fn import(env: &EnvMap, runner: &dyn Runner) -> Result<(Vec<Host>, Vec<String>)> {
    let mut hosts = Vec::new();
    let mut warnings = Vec::new();
    for cfg in DockerConfig::from_env(env)? {
        if let Some(helper) = cfg.creds_store() {
            match credhelper::list(runner, &helper) {
                Ok(listed) => hosts.extend(store_hosts(&helper, &listed)),
                Err(e) => warnings.push(format!("listing docker credentials store: {e}")),
            }
        }
        hosts.extend(cfg.hosts());
    }
    Ok((hosts, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tls;

    fn b64(s: &str) -> String {
        crate::base64::encode(s.as_bytes())
    }

    #[test]
    fn auths_table() {
        let doc = format!(
            r#"{{
              "auths": {{
                "https://index.docker.io/v1/": {{"auth": "{}"}},
                "reg.example": {{"username": "u2", "password": "p2"}},
                "tok.example": {{"identitytoken": "idt"}},
                "http://insecure.example:5000/": {{"auth": "{}"}},
                "https://secure.example": {{"auth": "{}"}},
                "path.example/some/repo": {{"auth": "{}"}},
                "bad name": {{"auth": "{}"}},
                "empty.example": {{}},
                "helped.example": {{}},
                "badb64.example": {{"auth": "!!!"}}
              }},
              "credHelpers": {{"helped.example": "pass", "gcr.io": "gcloud"}},
              "HttpHeaders": {{"X": "y"}}, "detachKeys": "ctrl-p"
            }}"#,
            b64("hubuser:hub:pass\0\0"),
            b64("iu:ip"),
            b64("su:sp"),
            b64("x:y"),
            b64("x:y"),
        );
        let cfg = DockerConfig::parse(doc.as_bytes()).unwrap();
        let hosts = cfg.hosts();
        let by: BTreeMap<&str, &Host> = hosts.iter().map(|h| (h.name.as_str(), h)).collect();
        assert_eq!(
            by.keys().copied().collect::<Vec<_>>(),
            [
                "docker.io",
                "gcr.io",
                "helped.example",
                "insecure.example:5000",
                "reg.example",
                "secure.example",
                "tok.example"
            ]
        );
        let hub = by["docker.io"];
        assert_eq!(
            (hub.user.as_str(), hub.pass.as_str()),
            ("hubuser", "hub:pass")
        );
        assert_eq!(hub.hostname, "registry-1.docker.io");
        assert_eq!(hub.cred_host, "https://index.docker.io/v1/");
        assert_eq!(
            (
                by["reg.example"].user.as_str(),
                by["reg.example"].pass.as_str()
            ),
            ("u2", "p2")
        );
        assert_eq!(by["tok.example"].token, "idt");
        let ins = by["insecure.example:5000"];
        assert_eq!(ins.tls, Tls::Disabled);
        assert_eq!(ins.cred_host, "http://insecure.example:5000/");
        assert_eq!(ins.user, "iu");
        assert_eq!(by["secure.example"].tls, Tls::Enabled);
        assert_eq!(by["helped.example"].cred_helper, "docker-credential-pass");
        assert_eq!(by["gcr.io"].cred_helper, "docker-credential-gcloud");
        assert!(!format!("{cfg:?}").contains(&b64("iu:ip")));
    }

    #[test]
    fn creds_store_fills_empty_entries() {
        let cfg =
            DockerConfig::parse(br#"{"auths":{"reg.example":{}},"credsStore":"desktop"}"#).unwrap();
        assert_eq!(
            cfg.creds_store().as_deref(),
            Some("docker-credential-desktop")
        );
        let hosts = cfg.hosts();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].cred_helper, "docker-credential-desktop");
        let listed: BTreeMap<String, String> = [
            ("https://index.docker.io/v1/".to_string(), "hub".to_string()),
            ("reg.example".to_string(), "u".to_string()),
            ("not valid/x".to_string(), "u".to_string()),
        ]
        .into();
        let hs = store_hosts("docker-credential-desktop", &listed);
        assert_eq!(
            hs.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
            ["docker.io", "reg.example"]
        );
        assert!(hs
            .iter()
            .all(|h| h.cred_helper == "docker-credential-desktop"));
    }

    struct ListOnly;
    impl Runner for ListOnly {
        fn run(&self, program: &str, arg: &str, _: &[u8]) -> Result<Vec<u8>> {
            match (program, arg) {
                ("docker-credential-desktop", "list") => Ok(br#"{"store.example":"u"}"#.to_vec()),
                _ => Err(Error::new(
                    ErrorKind::NotFound,
                    format!("{program} not found"),
                )),
            }
        }
    }

    #[test]
    fn import_file_and_env() {
        let dir = std::env::temp_dir().join(format!("regclient-docker-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.json"),
            format!(
                r#"{{"auths":{{"file.example":{{"auth":"{}"}}}},"credsStore":"desktop"}}"#,
                b64("f:p")
            ),
        )
        .unwrap();
        let mut env: EnvMap = [("DOCKER_CONFIG".to_string(), dir.display().to_string())].into();
        env.insert(
            "DOCKER_AUTH_CONFIG".into(),
            format!(
                r#"{{"auths":{{"file.example":{{"auth":"{}"}}}},"credsStore":"broken"}}"#,
                b64("e:q")
            ),
        );
        let (hosts, warnings) = import(&env, &ListOnly).unwrap();
        let summary: Vec<(String, String, String)> = hosts
            .iter()
            .map(|h| (h.name.clone(), h.user.clone(), h.cred_helper.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "store.example".into(),
                    "".into(),
                    "docker-credential-desktop".into()
                ),
                ("file.example".into(), "f".into(), "".into()),
                ("file.example".into(), "e".into(), "".into()),
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        // Missing file: nothing, no error. HOME fallback path.
        let env: EnvMap = [("HOME".to_string(), dir.join("nohome").display().to_string())].into();
        assert_eq!(
            DockerConfig::path(&env),
            Some(dir.join("nohome/.docker/config.json"))
        );
        assert!(import(&env, &ListOnly).unwrap().0.is_empty());
        let env: EnvMap = [("DOCKER_AUTH_CONFIG".to_string(), "{bad".to_string())].into();
        assert_eq!(
            import(&env, &ListOnly).unwrap_err().kind(),
            ErrorKind::Parse
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names() {
        let cases = [
            ("docker.io", true),
            ("https://index.docker.io/v1/", true),
            ("registry-1.docker.io", true),
            ("reg.example:5000", true),
            ("http://reg.example/", true),
            ("[::1]:5000", true),
            ("reg.example/path", false),
            ("https://reg.example/v1/", false),
            ("ftp://reg.example", false),
            (" reg.example", false),
            ("", false),
        ];
        for (n, want) in cases {
            assert_eq!(valid_name(n), want, "{n}");
        }
    }
}
