//! Building the client from the outside world: environment, regctl's config file, Docker's
//! config and credential helpers, `/etc/docker/certs.d`, and `--host` flags. This is the only
//! place that reads the environment; the library gets explicit values.

use std::path::PathBuf;
use std::sync::Arc;

use regclient::config::{self, ConfigFile, EnvMap, Host, ProcessRunner, Tls};
use regclient::transport::client::LogEvent;
use regclient::transport::proxy::{ProxyConfig, ProxyEnv};
use regclient::{ClientConfig, Result};

use crate::cmd::HostOpt;
use crate::log::{Level, Logger};

/// Where docker keeps per-registry CA folders.
const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

/// The loaded configuration file, kept for commands that change it.
pub struct Settings {
    /// Where the file is (or would be created).
    pub path: Option<PathBuf>,
    /// Its contents (empty when missing).
    pub file: ConfigFile,
    /// The environment snapshot.
    pub env: EnvMap,
}

/// Reads the environment snapshot once.
pub fn env_snapshot() -> EnvMap {
    std::env::vars().collect()
}

/// Loads regctl's config file; a missing file is empty, an unreadable one is a warning.
pub fn load_settings(env: EnvMap, log: &Logger) -> Settings {
    let path = ConfigFile::locate(&env);
    let file = match &path {
        Some(p) => match ConfigFile::load(p) {
            Ok(f) => f,
            Err(e) => {
                log.warn(
                    "ignoring config file",
                    &[("file", &p.display().to_string()), ("err", &e.to_string())],
                );
                ConfigFile::default()
            }
        },
        None => ConfigFile::default(),
    };
    for w in &file.warnings {
        log.warn(w, &[]);
    }
    Settings { path, file, env }
}

/// A host entry from a `--host` flag.
fn flag_host(h: &HostOpt) -> Result<Host> {
    let mut host = Host::new_name(&h.reg);
    host.name = h.reg.clone();
    host.user = h.user.clone();
    host.pass = h.pass.clone();
    if !h.tls.is_empty() {
        host.tls = Tls::parse(&h.tls)?;
    }
    Ok(host)
}

/// The client settings for this run.
pub fn client_config(
    settings: &Settings,
    flags: &[HostOpt],
    user_agent: Option<&str>,
    log: &Logger,
) -> Result<ClientConfig> {
    let mut cfg = ClientConfig::default();
    if let Some(ua) = user_agent {
        cfg.user_agent = ua.to_string();
    }
    let file = &settings.file;
    let runner = Arc::new(ProcessRunner::new());
    let mut sources: Vec<Host> = Vec::new();
    if file.inc_docker_cred != Some(false) {
        match config::docker::import(&settings.env, runner.as_ref()) {
            Ok((hosts, warnings)) => {
                sources.extend(hosts);
                for w in warnings {
                    log.warn(&w, &[]);
                }
            }
            Err(e) => log.warn("ignoring docker config", &[("err", &e.to_string())]),
        }
    }
    for (name, h) in &file.hosts {
        let mut h = h.clone();
        h.name = name.clone();
        sources.push(h);
    }
    for f in flags {
        sources.push(flag_host(f)?);
    }
    let (hosts, warnings) = config::merge_hosts(sources);
    for w in warnings {
        log.debug(&w, &[]);
    }
    cfg.hosts = hosts;
    cfg.host_default = file.host_default.clone();
    if file.inc_docker_cert != Some(false) {
        cfg.transport
            .cert_dirs
            .push(PathBuf::from(DOCKER_CERTS_DIR));
    }
    cfg.transport.cred_runner = runner;
    cfg.transport.blob_limit = u64::try_from(file.blob_limit).unwrap_or(0);
    cfg.transport.proxy = ProxyConfig::new(&ProxyEnv::from_vars(settings.env.iter()))?;
    let logger = log.clone();
    cfg.transport.log = Some(Arc::new(move |ev: &LogEvent| transport_log(&logger, ev)));
    if let Some(secs) = source_date_epoch(&settings.env, log) {
        cfg.ocidir.created = Some(regclient::scheme::ocidir::rfc3339(secs));
    }
    Ok(cfg)
}

fn transport_log(log: &Logger, ev: &LogEvent) {
    match ev {
        LogEvent::Request {
            method,
            url,
            headers,
        } if log.enabled(Level::Trace) => {
            let h = fmt_headers(headers);
            log.log(
                Level::Trace,
                "request",
                &[("method", method), ("url", url), ("headers", &h)],
            );
        }
        LogEvent::Response {
            method,
            url,
            status,
            headers,
        } if log.enabled(Level::Trace) => {
            let h = fmt_headers(headers);
            log.log(
                Level::Trace,
                "response",
                &[
                    ("method", method),
                    ("url", url),
                    ("status", &status.to_string()),
                    ("headers", &h),
                ],
            );
        }
        LogEvent::Warning { host, text } => log.warn(
            "Registry warning message",
            &[("host", host), ("warning", text)],
        ),
        LogEvent::Retry { url, reason, wait } => log.debug(
            "retrying request",
            &[
                ("url", url),
                ("reason", reason),
                ("wait", &format!("{wait:?}")),
            ],
        ),
        _ => {}
    }
}

fn fmt_headers(h: &[(String, String)]) -> String {
    h.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `SOURCE_DATE_EPOC` (regclient's spelling) in unix seconds: it fixes the `created`
/// annotation layouts write, for reproducible output. A bad value is ignored with a warning
/// rather than failing every command.
fn source_date_epoch(env: &EnvMap, log: &Logger) -> Option<i64> {
    let v = env.get("SOURCE_DATE_EPOC")?;
    match v.trim().parse::<i64>() {
        Ok(secs) => Some(secs),
        Err(_) => {
            log.warn(
                "ignoring SOURCE_DATE_EPOC: not unix seconds",
                &[("value", v.as_str())],
            );
            None
        }
    }
}
