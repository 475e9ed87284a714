//! What regsync and regbot share: the command line frame, the client built from a config
//! file's creds, `version`, and signal handling for `server`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use lexopt::prelude::*;
use regclient::config::{self, Host, ProcessRunner};
use regclient::schedule::StopFlag;
use regclient::transport::client::LogEvent;
use regclient::transport::proxy::{ProxyConfig, ProxyEnv};
use regclient::ClientConfig;

use crate::log::{Level, Logger};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The flags both tools take, plus the command.
pub struct ToolArgs {
    pub cmd: String,
    pub config: Option<PathBuf>,
    pub level: Level,
    pub json: bool,
    pub format: Option<String>,
}

/// A flag the common parser did not know, handed to the tool.
pub enum Extra {
    Long(String),
    Short(char),
}

/// Parses the command line; `extra` takes the tool's own flags (returning `Ok(false)` for an
/// unknown one) and may read a value from the parser. `-h` prints `usage` and exits.
pub fn parse_args(
    usage: &str,
    mut extra: impl FnMut(&Extra, &mut lexopt::Parser) -> Result<bool, String>,
) -> Result<ToolArgs, String> {
    let mut a = ToolArgs {
        cmd: String::new(),
        config: None,
        level: Level::Info,
        json: false,
        format: None,
    };
    let mut p = lexopt::Parser::from_env();
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(e)? {
        let other = match arg {
            Short('c') | Long("config") => {
                a.config = Some(p.value().map_err(e)?.into());
                continue;
            }
            Long("format") => {
                a.format = Some(p.value().map_err(e)?.string().map_err(e)?);
                continue;
            }
            Short('v') | Long("verbosity") => {
                let v = p.value().map_err(e)?.string().map_err(e)?;
                a.level = Level::parse(&v).ok_or(format!("invalid verbosity {v:?}"))?;
                continue;
            }
            Long("logopt") => {
                let v = p.value().map_err(e)?.string().map_err(e)?;
                match v.as_str() {
                    "json" => a.json = true,
                    _ => return Err(format!("unknown logopt {v:?}")),
                }
                continue;
            }
            Short('h') | Long("help") => {
                print!("{usage}");
                std::process::exit(0);
            }
            Value(v) if a.cmd.is_empty() => {
                a.cmd = v.string().map_err(e)?;
                continue;
            }
            Long(l) => Extra::Long(l.to_string()),
            Short(c) => Extra::Short(c),
            Value(v) => return Err(format!("unexpected argument {}", show(&v))),
        };
        if !extra(&other, &mut p)? {
            return Err(match other {
                Extra::Long(l) => format!("invalid option '--{l}'"),
                Extra::Short(c) => format!("invalid option '-{c}'"),
            });
        }
    }
    if a.cmd.is_empty() {
        return Err("missing command".into());
    }
    Ok(a)
}

fn show(v: &OsString) -> String {
    format!("{:?}", v.to_string_lossy())
}

/// Client settings from a config file: `creds` merged over docker's logins (unless
/// `skip_docker_config`), proxies from the environment, registry warnings and requests logged.
pub fn client_config(
    tool: &str,
    user_agent: &str,
    skip_docker_config: bool,
    blob_limit: i64,
    creds: &[Host],
    log: &Logger,
) -> regclient::Result<ClientConfig> {
    let env: config::EnvMap = std::env::vars().collect();
    let mut cc = ClientConfig {
        user_agent: if user_agent.is_empty() {
            format!("regclient/{tool} ({VERSION})")
        } else {
            user_agent.to_string()
        },
        ..Default::default()
    };
    let runner = Arc::new(ProcessRunner::new());
    let mut sources = Vec::new();
    if !skip_docker_config {
        match config::docker::import(&env, runner.as_ref()) {
            Ok((hosts, warnings)) => {
                sources.extend(hosts);
                for w in warnings {
                    log.warn(&w, &[]);
                }
            }
            Err(e) => log.warn("ignoring docker config", &[("err", &e.to_string())]),
        }
        cc.transport
            .cert_dirs
            .push(PathBuf::from("/etc/docker/certs.d"));
    }
    sources.extend(creds.iter().cloned());
    let (hosts, warnings) = config::merge_hosts(sources);
    for w in warnings {
        log.debug(&w, &[]);
    }
    cc.hosts = hosts;
    cc.transport.cred_runner = runner;
    cc.transport.blob_limit = u64::try_from(blob_limit).unwrap_or(0);
    cc.transport.proxy = ProxyConfig::new(&ProxyEnv::from_vars(env.iter()))?;
    let logger = log.clone();
    cc.transport.log = Some(Arc::new(move |ev: &LogEvent| match ev {
        LogEvent::Warning { host, text } => logger.warn(
            "Registry warning message",
            &[("host", host), ("warning", text)],
        ),
        LogEvent::Request { method, url, .. } => {
            logger.log(Level::Trace, "request", &[("method", method), ("url", url)])
        }
        _ => {}
    }));
    Ok(cc)
}

/// `version [--format TMPL]`.
pub fn print_version(format: Option<&str>, log: &Logger) -> ExitCode {
    match format {
        Some(f) if f.contains("{{") => {
            let data = regclient::template::Value::Json(serde_json::json!({
                "VCSTag": VERSION, "VCSRef": "", "GoVer": "", "Platform": ""
            }));
            match regclient::template::Template::parse(f).and_then(|t| t.render(&data)) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    log.log(Level::Error, "format failed", &[("err", &e.to_string())]);
                    return ExitCode::FAILURE;
                }
            }
        }
        _ => println!("VCSTag: {VERSION}"),
    }
    ExitCode::SUCCESS
}

/// A stop flag raised by SIGINT and SIGTERM (`server`).
pub fn stop_on_signals(log: &Logger) -> Option<StopFlag> {
    let stop = StopFlag::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.as_arc().clone()) {
            log.log(
                Level::Error,
                "cannot handle signals",
                &[("err", &e.to_string())],
            );
            return None;
        }
    }
    Some(stop)
}

/// Logs `what` with the error and gives the failing exit code.
pub fn fail(log: &Logger, what: &str, e: &regclient::Error) -> ExitCode {
    log.log(Level::Error, what, &[("err", &e.to_string())]);
    ExitCode::FAILURE
}
