//! `registry login|logout|set|config|whoami`, `config get|set`, `repo ls` and
//! `image ratelimit`: the commands that read or change regctl's settings, and the registry-only
//! reads.

use std::io::{BufRead, IsTerminal, Read};
use std::sync::Arc;

use regclient::config::credhelper::{self, ProcessRunner};
use regclient::config::{normalize_name, ConfigFile, Host, Tls};
use regclient::format;
use regclient::ratelimit::RateLimit;
use regclient::reference::{Reference, Scheme as RefScheme, DOCKER_REGISTRY};
use regclient::template::{Object, Value};
use regclient::{Client, Error, ErrorKind, Result};

use super::{invalid, Ctx};

/// The registry argument (default Docker Hub), validated: an optional `http://`/`https://`
/// prefix, no path.
fn registry_arg(ctx: &Ctx) -> Result<(String, bool)> {
    let raw = if ctx.m.arg(0).is_empty() {
        DOCKER_REGISTRY
    } else {
        ctx.m.arg(0)
    };
    let n = normalize_name(raw);
    if n.name.is_empty() || n.name.contains('/') {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("invalid registry {raw:?}: give a host name, without a path"),
        ));
    }
    Reference::parse_host(&n.name)?;
    Ok((n.name, n.tls_disabled))
}

fn config_path(ctx: &Ctx) -> Result<std::path::PathBuf> {
    ctx.settings.path.clone().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "no config file location: set HOME or REGCTL_CONFIG",
        )
    })
}

fn save(ctx: &Ctx, file: &ConfigFile) -> Result<()> {
    let path = config_path(ctx)?;
    file.save(&path)
}

/// Pings `name` with the settings `host` (a client of its own, so the check sees exactly what
/// would be saved).
fn check(ctx: &Ctx, name: &str, host: &Host) -> Result<()> {
    let mut cfg = regclient::ClientConfig {
        user_agent: ctx.client.config().user_agent.clone(),
        ..Default::default()
    };
    cfg.transport = ctx.client.config().transport.clone();
    let mut h = host.clone();
    h.name = name.to_string();
    cfg.hosts.insert(name.to_string(), h);
    let client = Client::new(cfg);
    let r = Reference::parse_host(name)?;
    client.scheme(&r)?.ping(&r)
}

fn host_entry(file: &ConfigFile, name: &str) -> Host {
    file.hosts.get(name).cloned().unwrap_or_else(|| {
        let mut h = Host::new_default_name(file.host_default.as_ref(), name);
        h.name = String::new();
        // Only what the user sets is stored, not the built-in defaults.
        Host {
            tls: h.tls,
            ..Host::default()
        }
    })
}

/// Reads a line from the terminal with echo off (via `stty`), for passwords.
fn read_secret(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "no password given: use --pass or --pass-stdin (stdin is not a terminal)",
        ));
    }
    eprint!("{prompt}");
    let tty = || std::fs::File::open("/dev/tty");
    let stty = |arg: &str| {
        if let Ok(t) = tty() {
            let _ = std::process::Command::new("stty")
                .arg(arg)
                .stdin(t)
                .status();
        }
    };
    stty("-echo");
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    stty("echo");
    eprintln!();
    res?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(ctx: &Ctx) -> Result<()> {
    let (name, tls_off) = registry_arg(ctx)?;
    let mut file = ctx.settings.file.clone();
    let mut host = host_entry(&file, &name);
    if tls_off {
        host.tls = Tls::Disabled;
    }
    let mut user = ctx.m.value("user").to_string();
    if user.is_empty() {
        if !std::io::stdin().is_terminal() || ctx.m.on("pass-stdin") {
            return Err(invalid("--user is required".to_string()));
        }
        eprint!("User [{}]: ", host.user);
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        user = match line.trim() {
            "" => host.user.clone(),
            u => u.to_string(),
        };
    }
    let pass = if ctx.m.on("pass-stdin") {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .take(1 << 20)
            .read_to_string(&mut s)?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else if let Some(p) = ctx.m.given("pass") {
        p.to_string()
    } else {
        read_secret("Password: ")?
    };
    if user == credhelper::TOKEN_USER {
        host.user.clear();
        host.pass.clear();
        host.token = pass;
    } else {
        host.user = user;
        host.pass = pass;
        host.token.clear();
    }
    host.cred_helper.clear();
    if !ctx.m.on("skip-check") {
        check(ctx, &name, &host).map_err(|e| e.context(format!("logging in to {name}")))?;
    }
    file.hosts.insert(name.clone(), host);
    save(ctx, &file)?;
    ctx.log
        .info("credentials saved", &[("registry", name.as_str())]);
    Ok(())
}

pub fn logout(ctx: &Ctx) -> Result<()> {
    let (name, _) = registry_arg(ctx)?;
    let mut file = ctx.settings.file.clone();
    let Some(host) = file.hosts.get_mut(&name) else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("No configuration found for registry {name}"),
        ));
    };
    host.user.clear();
    host.pass.clear();
    host.token.clear();
    if host.is_zero() {
        file.hosts.remove(&name);
    }
    save(ctx, &file)
}

pub fn set(ctx: &Ctx) -> Result<()> {
    let (name, tls_off) = registry_arg(ctx)?;
    let mut file = ctx.settings.file.clone();
    let mut host = host_entry(&file, &name);
    if tls_off {
        host.tls = Tls::Disabled;
    }
    let m = &ctx.m;
    let num = |flag: &str| -> Result<Option<i64>> {
        match m.given(flag) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| invalid(format!("--{flag} must be a number, got {v:?}"))),
        }
    };
    if let Some(v) = m.given("tls") {
        host.tls = Tls::parse(v)?;
    }
    if let Some(v) = m.given("cacert") {
        host.regcert = v.to_string();
    }
    if let Some(v) = m.given("client-cert") {
        host.client_cert = v.to_string();
    }
    if let Some(v) = m.given("client-key") {
        host.client_key = v.to_string();
    }
    if let Some(v) = m.given("cred-helper") {
        host.cred_helper = v.to_string();
        if !v.is_empty() {
            host.user.clear();
            host.pass.clear();
            host.token.clear();
        }
    }
    if let Some(v) = m.given("hostname") {
        host.hostname = v.to_string();
    }
    if let Some(v) = m.given("path-prefix") {
        host.path_prefix = v.trim_matches('/').to_string();
    }
    if !m.values("mirror").is_empty() {
        host.mirrors = m
            .values("mirror")
            .iter()
            .filter(|v| !v.is_empty())
            .cloned()
            .collect();
    }
    if let Some(v) = num("priority")? {
        host.priority =
            u64::try_from(v).map_err(|_| invalid("--priority must not be negative".into()))?;
    }
    if m.given("repo-auth").is_some() {
        host.repo_auth = m.on("repo-auth");
    }
    if let Some(v) = num("req-concurrent")? {
        host.req_concurrent = v;
    }
    if let Some(v) = m.given("req-per-sec") {
        host.req_per_sec = v
            .parse::<f64>()
            .map_err(|_| invalid(format!("--req-per-sec must be a number, got {v:?}")))?;
    }
    if let Some(v) = num("blob-chunk")? {
        host.blob_chunk = v;
    }
    if let Some(v) = num("blob-max")? {
        host.blob_max = v;
    }
    for kv in m.values("api-opts") {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid(format!("--api-opts takes key=value, got {kv:?}")))?;
        if v.is_empty() {
            host.api_opts.remove(k);
        } else {
            host.api_opts.insert(k.to_string(), v.to_string());
        }
    }
    if !m.on("skip-check") {
        check(ctx, &name, &host).map_err(|e| e.context(format!("checking {name}")))?;
    }
    if host.is_zero() {
        file.hosts.remove(&name);
    } else {
        file.hosts.insert(name, host);
    }
    save(ctx, &file)
}

/// Host settings as shown by `registry config`: secrets removed.
fn shown(h: &Host) -> serde_json::Value {
    let mut v = serde_json::to_value(h.redacted()).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        for k in ["pass", "token", "clientKey"] {
            o.remove(k);
        }
    }
    v
}

pub fn config(ctx: &Ctx) -> Result<()> {
    let file = &ctx.settings.file;
    let value = if ctx.m.arg(0).is_empty() {
        let all: serde_json::Map<String, serde_json::Value> = file
            .hosts
            .iter()
            .map(|(k, h)| (k.clone(), shown(h)))
            .collect();
        serde_json::Value::Object(all)
    } else {
        let (name, _) = registry_arg(ctx)?;
        let Some(h) = file.hosts.get(&name) else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("No configuration found for registry {name}"),
            ));
        };
        let mut v = shown(h);
        // A helper's user is part of the configuration people want to see.
        if !h.cred_helper.is_empty() {
            let runner = ProcessRunner::new();
            if let Ok(c) = credhelper::get(&runner, &h.cred_helper, h.cred_host()) {
                if let Some(o) = v.as_object_mut() {
                    o.insert("user".into(), c.username.into());
                }
            }
        }
        v
    };
    ctx.render(ctx.m.value("format"), &format::json(value))
}

pub fn whoami(ctx: &Ctx) -> Result<()> {
    let (name, _) = registry_arg(ctx)?;
    let host = ctx.client.registry().transport().host(&name);
    let user = if !host.cred_helper.is_empty() {
        let runner = ProcessRunner::new();
        match credhelper::get(&runner, &host.cred_helper, host.cred_host()) {
            Ok(c) => c.username,
            Err(_) => String::new(),
        }
    } else if !host.token.is_empty() {
        credhelper::TOKEN_USER.to_string()
    } else {
        host.user.clone()
    };
    if user.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no login found for {name}"),
        ));
    }
    ctx.out(format!("{user}\n").as_bytes())
}

struct ConfigObj {
    file: ConfigFile,
    path: String,
}

impl Object for ConfigObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Filename" => Some(Value::String(self.path.clone())),
            _ => {
                let j = self.to_json();
                j.as_object().and_then(|o| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| Value::Json(v.clone()))
                })
            }
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.file.redacted().to_json().unwrap_or_default())
            .unwrap_or_default()
    }
}

pub fn config_get(ctx: &Ctx) -> Result<()> {
    let path = ctx
        .settings
        .path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let data = format::Data::new(Value::Object(Arc::new(ConfigObj {
        file: ctx.settings.file.clone(),
        path,
    })));
    ctx.render(ctx.m.value("format"), &data)
}

pub fn config_set(ctx: &Ctx) -> Result<()> {
    let mut file = ctx.settings.file.clone();
    let m = &ctx.m;
    if let Some(v) = m.given("blob-limit") {
        file.blob_limit = v
            .parse::<i64>()
            .map_err(|_| invalid(format!("--blob-limit must be a number, got {v:?}")))?;
    }
    if let Some(v) = m.given("default-cred-helper") {
        let mut d = file.host_default.clone().unwrap_or_default();
        d.cred_helper = v.to_string();
        file.host_default = if d.is_zero() { None } else { Some(d) };
    }
    // Only `false` is stored: true is the default and removes the key.
    if m.given("docker-cert").is_some() {
        file.inc_docker_cert = if m.on("docker-cert") {
            None
        } else {
            Some(false)
        };
    }
    if m.given("docker-cred").is_some() {
        file.inc_docker_cred = if m.on("docker-cred") {
            None
        } else {
            Some(false)
        };
    }
    save(ctx, &file)
}

pub fn repo_list(ctx: &Ctx) -> Result<()> {
    let r = Reference::parse_host(ctx.m.arg(0))?;
    if r.scheme != RefScheme::Registry {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "repo ls needs a registry, not a layout",
        ));
    }
    let limit = match ctx.m.value("limit") {
        "" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| invalid(format!("--limit must be a number, got {n:?}")))?,
        ),
    };
    let last = Some(ctx.m.value("last")).filter(|s| !s.is_empty());
    let list = ctx.client.registry().repo_list(&r, last, limit)?;
    let mut repos = list.repositories;
    repos.sort();
    let mut data = format::Data::new(Value::Object(Arc::new(RepoListObj(repos))));
    data.raw_body = Some(list.raw);
    data.raw_headers = list.headers;
    ctx.render(ctx.m.value("format"), &data)
}

struct RepoListObj(Vec<String>);

impl Object for RepoListObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Repositories" | "GetRepos" => Some(Value::List(
                self.0.iter().map(|r| Value::String(r.clone())).collect(),
            )),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "repositories": self.0 })
    }
    fn pretty(&self) -> Option<String> {
        Some(self.0.iter().map(|r| format!("{r}\n")).collect())
    }
}

struct RateLimitObj(RateLimit);

impl Object for RateLimitObj {
    fn field(&self, name: &str) -> Option<Value> {
        let j = self.to_json();
        j.get(name).cloned().map(Value::Json)
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
    fn pretty(&self) -> Option<String> {
        let r = &self.0;
        if !r.set {
            return Some("Rate limit: none reported\n".to_string());
        }
        Some(format!(
            "Limit:     {}\nRemaining: {}\nReset:     {}\nPolicies:  {}\n",
            r.limit,
            r.remain,
            r.reset,
            r.policies.join(", ")
        ))
    }
}

pub fn ratelimit(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let head = ctx.client.scheme(&r)?.manifest_head(&r)?;
    let pairs: Vec<(&str, &str)> = head
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let rl = RateLimit::from_headers(&pairs);
    let mut data = format::Data::new(Value::Object(Arc::new(RateLimitObj(rl))));
    data.raw_headers = head.headers.clone();
    ctx.render(ctx.m.value("format"), &data)
}
