//! regctl's own config file (`config.json`): location, load, atomic save.
//!
//! The file holds secrets in clear text (like regctl), so it is written 0600 in a 0700
//! directory, and replaced with a rename so a crash never leaves half a file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::host::{normalize_name, Host, Tls};
use super::{env_get, EnvMap};
use crate::error::{Error, ErrorKind, Result, ResultExt};

/// Largest config file we read; real ones are a few KiB.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// regctl's configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    /// Format version: 0 (omitted) or 1.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub version: i64,
    /// Hosts by normalised registry name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, Host>,
    /// Template for hosts not otherwise configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_default: Option<Host>,
    /// Largest blob chunk kept in memory.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub blob_limit: i64,
    /// `false` stops trusting `/etc/docker/certs.d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inc_docker_cert: Option<bool>,
    /// `false` stops importing docker logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inc_docker_cred: Option<bool>,
    /// Warnings from loading (duplicate host entries); never saved.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

impl ConfigFile {
    /// Where the config lives: `$REGCTL_CONFIG`; else `$XDG_CONFIG_HOME/regctl/config.json`
    /// (`$HOME/.config/...` without XDG) when that file exists; else `$HOME/.regctl/config.json`.
    /// `None` without any of those variables.
    pub fn locate(env: &EnvMap) -> Option<PathBuf> {
        if let Some(p) = env_get(env, "REGCTL_CONFIG") {
            return Some(PathBuf::from(p));
        }
        let home = env_get(env, "HOME");
        let xdg = env_get(env, "XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| home.map(|h| Path::new(h).join(".config")));
        if let Some(x) = xdg {
            let p = x.join("regctl").join("config.json");
            if p.is_file() {
                return Some(p);
            }
        }
        home.map(|h| Path::new(h).join(".regctl").join("config.json"))
    }

    /// Loads `path`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<ConfigFile> {
        let what = || format!("reading config {}", path.display());
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
            Err(e) => return Err(Error::io(e, what())),
        };
        if file.metadata().with_context(what)?.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("{} is a directory", path.display()),
            ));
        }
        let mut data = Vec::new();
        file.take(MAX_CONFIG_SIZE + 1)
            .read_to_end(&mut data)
            .with_context(what)?;
        if data.len() as u64 > MAX_CONFIG_SIZE {
            return Err(Error::new(ErrorKind::SizeLimit, "config file too large").context(what()));
        }
        ConfigFile::parse(&data).map_err(|e| e.context(what()))
    }

    /// Parses a config document, normalising host names (Hub aliases collapse into `docker.io`;
    /// when two keys collapse, the later one in name order is merged over the earlier).
    pub fn parse(data: &[u8]) -> Result<ConfigFile> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Ok(ConfigFile::default());
        }
        let mut c: ConfigFile = serde_json::from_slice(data)
            .map_err(|e| Error::new(ErrorKind::Parse, format!("parsing config: {e}")))?;
        if c.version > 1 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("unsupported config version {}", c.version),
            ));
        }
        let raw = std::mem::take(&mut c.hosts);
        for (key, mut h) in raw {
            let n = normalize_name(&key);
            h.name = n.name.clone();
            c.warnings.extend(h.deprecation_warnings());
            if n.tls_disabled && h.tls == Tls::Undefined {
                h.tls = Tls::Disabled;
            }
            match c.hosts.get_mut(&n.name) {
                Some(existing) => {
                    c.warnings
                        .push(format!("config entry {key:?} merged into {:?}", n.name));
                    let w = existing.merge(&h);
                    c.warnings.extend(w);
                }
                None => {
                    c.hosts.insert(n.name, h);
                }
            }
        }
        Ok(c)
    }

    /// The JSON document (2-space indent, trailing newline), secrets included.
    pub fn to_json(&self) -> Result<String> {
        let mut s = serde_json::to_string_pretty(self)
            .map_err(|e| Error::new(ErrorKind::Other, format!("encoding config: {e}")))?;
        s.push('\n');
        Ok(s)
    }

    /// A copy with every password, token and client key blanked, for `config get`.
    pub fn redacted(&self) -> ConfigFile {
        ConfigFile {
            hosts: self
                .hosts
                .iter()
                .map(|(k, h)| (k.clone(), h.redacted()))
                .collect(),
            host_default: self.host_default.as_ref().map(Host::redacted),
            ..self.clone()
        }
    }

    /// The settings for registry `name`: its entry, else `hostDefault` (or the library
    /// defaults) specialised for the name.
    pub fn host(&self, name: &str) -> Host {
        let n = normalize_name(name);
        match self.hosts.get(&n.name) {
            Some(h) => {
                let mut base = Host::new_name(&n.name);
                base.merge(h);
                base
            }
            None => Host::new_default_name(self.host_default.as_ref(), name),
        }
    }

    /// Writes the file atomically: a temp file in the same directory (mode 0600, or the mode of
    /// the file being replaced) renamed over `path`; the directory is created 0700.
    pub fn save(&self, path: &Path) -> Result<()> {
        let what = || format!("saving config {}", path.display());
        let data = self.to_json()?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        create_private_dir(&dir).with_context(what)?;
        let mode = existing_mode(path);
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("config.json");
        let (tmp, mut f) = create_temp(&dir, file_name, mode).with_context(what)?;
        keep_owner(path, &tmp);
        let written = f
            .write_all(data.as_bytes())
            .and_then(|()| f.sync_all())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(e, what()));
        }
        Ok(())
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn existing_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).map_or(0o600, |m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> u32 {
    0
}

/// Gives the replacement the owner of the file it replaces (a root-run `regctl` editing a
/// user's file). Only root may do this, so failure is expected and ignored.
#[cfg(unix)]
fn keep_owner(path: &Path, tmp: &Path) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(path) {
        let _ = std::os::unix::fs::chown(tmp, Some(m.uid()), Some(m.gid()));
    }
}

#[cfg(not(unix))]
fn keep_owner(_path: &Path, _tmp: &Path) {}

/// Creates a fresh temp file next to the target; names are tried in turn so concurrent savers
/// (two regctl processes) never share one.
fn create_temp(dir: &Path, name: &str, mode: u32) -> std::io::Result<(PathBuf, std::fs::File)> {
    let pid = std::process::id();
    let mut last = None;
    for i in 0..100 {
        let tmp = dir.join(format!(".{name}.tmp-{pid}-{i}"));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match opts.open(&tmp) {
            Ok(f) => {
                // The umask may have narrowed the mode; an existing file's mode wins.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temp file name available")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("regclient-cfg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn locate_order() {
        let d = tempdir("locate");
        let home = d.join("home");
        let xdg = d.join("xdg");
        let h = home.to_str().unwrap();
        let x = xdg.to_str().unwrap();
        assert_eq!(ConfigFile::locate(&env(&[])), None);
        assert_eq!(
            ConfigFile::locate(&env(&[("HOME", h), ("XDG_CONFIG_HOME", x)])),
            Some(home.join(".regctl/config.json"))
        );
        // The XDG file counts only once it exists.
        std::fs::create_dir_all(xdg.join("regctl")).unwrap();
        std::fs::write(xdg.join("regctl/config.json"), "{}").unwrap();
        assert_eq!(
            ConfigFile::locate(&env(&[("HOME", h), ("XDG_CONFIG_HOME", x)])),
            Some(xdg.join("regctl/config.json"))
        );
        std::fs::create_dir_all(home.join(".config/regctl")).unwrap();
        std::fs::write(home.join(".config/regctl/config.json"), "{}").unwrap();
        assert_eq!(
            ConfigFile::locate(&env(&[("HOME", h)])),
            Some(home.join(".config/regctl/config.json"))
        );
        assert_eq!(
            ConfigFile::locate(&env(&[("HOME", h), ("REGCTL_CONFIG", "/x/c.json")])),
            Some(PathBuf::from("/x/c.json"))
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn parse_table() {
        let c = ConfigFile::parse(
            br#"{"version":1,"hosts":{
                "https://index.docker.io/v1/":{"user":"hubuser","pass":"hubpass"},
                "registry-1.docker.io":{"pass":"later"},
                "http://reg.local:5000":{},
                "reg.example":{"tls":"insecure","credHelper":"docker-credential-x"}},
              "hostDefault":{"credHelper":"docker-credential-def"},
              "blobLimit":1024,"incDockerCert":false,"incDockerCred":true,"unknownKey":1}"#,
        )
        .unwrap();
        assert_eq!(
            c.hosts.keys().collect::<Vec<_>>(),
            ["docker.io", "reg.example", "reg.local:5000"]
        );
        let hub = &c.hosts["docker.io"];
        assert_eq!(
            (hub.name.as_str(), hub.user.as_str(), hub.pass.as_str()),
            ("docker.io", "hubuser", "later")
        );
        assert!(!c.warnings.is_empty());
        assert_eq!(c.hosts["reg.local:5000"].tls, Tls::Disabled);
        assert_eq!(c.blob_limit, 1024);
        assert_eq!(
            (c.inc_docker_cert, c.inc_docker_cred),
            (Some(false), Some(true))
        );
        // Resolution: configured entry over defaults, hostDefault for the rest.
        let h = c.host("reg.example");
        assert_eq!((h.tls, h.req_concurrent), (Tls::Insecure, 3));
        let h = c.host("other.example");
        assert_eq!(
            (h.name.as_str(), h.cred_helper.as_str()),
            ("other.example", "docker-credential-def")
        );
        assert_eq!(c.host("docker.io").hostname, "registry-1.docker.io");

        assert_eq!(ConfigFile::parse(b"").unwrap(), ConfigFile::default());
        let e = ConfigFile::parse(br#"{"version":2}"#).unwrap_err();
        assert!(e.to_string().contains("unsupported config version"), "{e}");
        assert_eq!(
            ConfigFile::parse(b"{bad").unwrap_err().kind(),
            ErrorKind::Parse
        );
        assert_eq!(
            ConfigFile::parse(br#"{"hosts":{"x":{"tls":"maybe"}}}"#)
                .unwrap_err()
                .kind(),
            ErrorKind::Parse
        );
    }

    #[test]
    fn redacted_blanks_secrets() {
        let mut c = ConfigFile::default();
        c.hosts.insert(
            "r".into(),
            Host {
                user: "u".into(),
                pass: "pw-1".into(),
                token: "tk-2".into(),
                client_key: "key-3".into(),
                ..Host::default()
            },
        );
        c.host_default = Some(Host {
            pass: "pw-4".into(),
            ..Host::default()
        });
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("pw-1") && !dbg.contains("tk-2") && !dbg.contains("key-3"),
            "{dbg}"
        );
        let json = c.redacted().to_json().unwrap();
        for s in ["pw-1", "tk-2", "key-3", "pw-4"] {
            assert!(!json.contains(s), "{json}");
        }
        assert!(json.contains("\"user\": \"u\""), "{json}");
        assert!(c.to_json().unwrap().contains("pw-1"));
    }

    #[test]
    fn load_save_round_trip() {
        let d = tempdir("save");
        let path = d.join("sub/dir/config.json");
        assert_eq!(ConfigFile::load(&path).unwrap(), ConfigFile::default());
        let mut c = ConfigFile {
            version: 1,
            ..ConfigFile::default()
        };
        let mut h = Host::new_name("reg.example");
        h.user = "u".into();
        h.pass = "p".into();
        c.hosts.insert(h.name.clone(), h);
        c.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("{\n  \"version\": 1,\n  \"hosts\": {\n    \"reg.example\": {"),
            "{text}"
        );
        assert!(
            !text.contains("registry"),
            "name is the key, not a field: {text}"
        );
        let back = ConfigFile::load(&path).unwrap();
        assert_eq!(back.hosts["reg.example"].pass, "p");
        assert_eq!(back.hosts["reg.example"].name, "reg.example");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&d.join("sub/dir")), 0o700);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            c.save(&path).unwrap();
            assert_eq!(mode(&path), 0o640);
        }
        // No temp files left behind.
        let names: Vec<_> = std::fs::read_dir(d.join("sub/dir"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["config.json"]);
        assert_eq!(
            ConfigFile::load(&d).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
