//! Configuration: per-registry host settings, regctl's config file, Docker's config import and
//! credential helpers.
//!
//! Nothing here reads the process environment: constructors that need `HOME` and friends take an
//! [`EnvMap`] snapshot that the binary collects once (`std::env::vars().collect()`).

use std::collections::BTreeMap;

/// A snapshot of environment variables, passed explicitly to the constructors that need one.
pub type EnvMap = BTreeMap<String, String>;

/// A variable from the snapshot, treating empty as unset (like regclient).
pub(crate) fn env_get<'a>(env: &'a EnvMap, key: &str) -> Option<&'a str> {
    env.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

pub mod credhelper;
pub mod docker;
pub mod file;
pub mod host;

pub use credhelper::{HelperCred, ProcessRunner, Runner};
pub use docker::DockerConfig;
pub use file::ConfigFile;
pub use host::{normalize_name, GoDuration, Host, HostName, Tls};

use crate::reference::DOCKER_REGISTRY;

/// Merges host entries from several sources, in precedence order (built-in Hub default first,
/// then docker import, then regctl's file or YAML `creds`, then `--host` flags), into one map by
/// normalised name. Each new name starts from [`Host::new_name`]'s defaults. Returns the
/// merge warnings too.
pub fn merge_hosts(
    sources: impl IntoIterator<Item = Host>,
) -> (BTreeMap<String, Host>, Vec<String>) {
    let mut hosts = BTreeMap::new();
    hosts.insert(DOCKER_REGISTRY.to_string(), Host::new_name(DOCKER_REGISTRY));
    let mut warnings = Vec::new();
    for mut h in sources {
        let n = normalize_name(&h.name);
        if n.name.is_empty() {
            warnings.push("host entry without a name ignored".to_string());
            continue;
        }
        h.name = n.name.clone();
        // Overriding a built-in default is not a change worth a warning; overriding an
        // earlier source is.
        let fresh = !hosts.contains_key(&n.name);
        let base = hosts
            .entry(n.name.clone())
            .or_insert_with(|| Host::new_name(&n.name));
        let w = base.merge(&h);
        if !fresh {
            warnings.extend(w);
        }
    }
    (hosts, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_hosts_precedence() {
        let docker = Host {
            user: "d".into(),
            pass: "dp".into(),
            ..Host::new_name("https://index.docker.io/v1/")
        };
        let file = Host {
            name: "docker.io".into(),
            cred_helper: "docker-credential-x".into(),
            ..Host::default()
        };
        let flag = Host {
            name: "reg.example".into(),
            tls: Tls::Disabled,
            ..Host::default()
        };
        let nameless = Host::default();
        let (hosts, warnings) = merge_hosts([docker, file, flag, nameless]);
        assert_eq!(
            hosts.keys().collect::<Vec<_>>(),
            ["docker.io", "reg.example"]
        );
        let hub = &hosts["docker.io"];
        // The helper from the later source replaced the docker login.
        assert_eq!(hub.cred_helper, "docker-credential-x");
        assert!(hub.user.is_empty() && hub.pass.is_empty());
        assert_eq!(hub.hostname, "registry-1.docker.io");
        let reg = &hosts["reg.example"];
        assert_eq!((reg.tls, reg.req_concurrent), (Tls::Disabled, 3));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let (_, warnings) = merge_hosts([
            Host {
                name: "r".into(),
                user: "a".into(),
                ..Host::default()
            },
            Host {
                name: "r".into(),
                user: "b".into(),
                ..Host::default()
            },
        ]);
        assert_eq!(warnings, ["changing login user for registry r"]);
        let (hosts, _) = merge_hosts([]);
        assert_eq!(hosts["docker.io"].cred_host, "https://index.docker.io/v1/");
    }
}
