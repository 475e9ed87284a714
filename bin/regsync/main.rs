//! regsync: mirror images between registries and OCI layouts as described by a YAML file.

#![forbid(unsafe_code)]

#[path = "../regctl/log.rs"]
#[allow(dead_code)]
mod log;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use lexopt::prelude::*;
use regclient::config::{self, ProcessRunner};
use regclient::sync::{Config, Mode, Runner};
use regclient::transport::client::LogEvent;
use regclient::transport::proxy::{ProxyConfig, ProxyEnv};
use regclient::{Client, ClientConfig};

use log::{Level, Logger};

const VERSION: &str = env!("CARGO_PKG_VERSION");

const USAGE: &str = "Usage: regsync <command> [flags]

Commands:
  once      run every sync entry once
  check     report what would be copied, copy nothing
  config    print the processed configuration
  server    copy what is missing, then run each entry on its schedule until SIGINT/SIGTERM
  version   print the version

Flags:
  -c, --config FILE     configuration file (\"-\" reads stdin)
      --missing         once: copy only tags absent on the target
      --abort-on-error  stop at the first failure
      --report FILE     once/check: write a JSON summary of the run
  -v, --verbosity LVL   log level: trace, debug, info, warn, error (default info)
      --logopt json     log as JSON lines
  -h, --help            this help
";

struct Args {
    cmd: String,
    config: Option<PathBuf>,
    missing: bool,
    abort: bool,
    report: Option<PathBuf>,
    level: Level,
    json: bool,
    format: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        cmd: String::new(),
        config: None,
        missing: false,
        abort: false,
        report: None,
        level: Level::Info,
        json: false,
        format: None,
    };
    let mut p = lexopt::Parser::from_env();
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(e)? {
        match arg {
            Short('c') | Long("config") => a.config = Some(p.value().map_err(e)?.into()),
            Long("missing") => a.missing = true,
            Long("abort-on-error") => a.abort = true,
            Long("report") => a.report = Some(p.value().map_err(e)?.into()),
            Long("format") => a.format = Some(p.value().map_err(e)?.string().map_err(e)?),
            Short('v') | Long("verbosity") => {
                let v = p.value().map_err(e)?.string().map_err(e)?;
                a.level = Level::parse(&v).ok_or(format!("invalid verbosity {v:?}"))?;
            }
            Long("logopt") => {
                let v = p.value().map_err(e)?.string().map_err(e)?;
                match v.as_str() {
                    "json" => a.json = true,
                    _ => return Err(format!("unknown logopt {v:?}")),
                }
            }
            Short('h') | Long("help") => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            Value(v) if a.cmd.is_empty() => a.cmd = v.string().map_err(e)?,
            arg => return Err(arg.unexpected().to_string()),
        }
    }
    if a.cmd.is_empty() {
        return Err("missing command".into());
    }
    Ok(a)
}

fn client_config(cfg: &Config, log: &Logger) -> regclient::Result<ClientConfig> {
    let env: config::EnvMap = std::env::vars().collect();
    let mut cc = ClientConfig {
        user_agent: if cfg.defaults.user_agent.is_empty() {
            format!("regclient/regsync ({VERSION})")
        } else {
            cfg.defaults.user_agent.clone()
        },
        ..Default::default()
    };
    let runner = Arc::new(ProcessRunner::new());
    let mut sources = Vec::new();
    if !cfg.defaults.skip_docker_config {
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
    sources.extend(cfg.creds.iter().cloned());
    let (hosts, warnings) = config::merge_hosts(sources);
    for w in warnings {
        log.debug(&w, &[]);
    }
    cc.hosts = hosts;
    cc.transport.cred_runner = runner;
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

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("regsync: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let log = Logger {
        level: args.level,
        json: args.json,
    };
    let mode = match args.cmd.as_str() {
        "version" => {
            match args.format.as_deref() {
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
            return ExitCode::SUCCESS;
        }
        "server" => Mode::Copy,
        "once" if args.missing => Mode::Missing,
        "once" => Mode::Copy,
        "check" => Mode::Check,
        "config" => Mode::Check,
        other => {
            eprintln!("regsync: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let Some(path) = &args.config else {
        eprintln!("regsync: --config is required\n\n{USAGE}");
        return ExitCode::FAILURE;
    };
    let cfg = match Config::load(path) {
        Ok(c) => c,
        Err(e) => {
            log.log(
                Level::Error,
                "failed to load config",
                &[("err", &e.to_string())],
            );
            return ExitCode::FAILURE;
        }
    };
    if args.cmd == "config" {
        return match cfg.to_yaml() {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                log.log(
                    Level::Error,
                    "failed to encode config",
                    &[("err", &e.to_string())],
                );
                ExitCode::FAILURE
            }
        };
    }
    let cc = match client_config(&cfg, &log) {
        Ok(c) => c,
        Err(e) => {
            log.log(
                Level::Error,
                "failed to set up the client",
                &[("err", &e.to_string())],
            );
            return ExitCode::FAILURE;
        }
    };
    let client = Client::new(cc);
    let logger = log.clone();
    let logfn = move |lvl: regclient::sync::Level, msg: &str, fields: &[(&str, &str)]| {
        let l = match lvl {
            regclient::sync::Level::Debug => Level::Debug,
            regclient::sync::Level::Info => Level::Info,
            regclient::sync::Level::Warn => Level::Warn,
            regclient::sync::Level::Error => Level::Error,
        };
        logger.log(l, msg, fields);
    };
    if args.cmd == "server" {
        return server(client, cfg, log.clone());
    }
    let report = Runner::new(&client, &cfg, mode, &logfn)
        .abort_on_error(args.abort)
        .run();
    if let Some(p) = &args.report {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(p, text + "\n") {
            log.log(
                Level::Error,
                "failed to write report",
                &[("file", &p.display().to_string()), ("err", &e.to_string())],
            );
            return ExitCode::FAILURE;
        }
    }
    if report.failed() {
        for e in report.errors() {
            log.log(Level::Error, "sync failed", &[("err", &e)]);
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// Maps the library's log levels onto the binary's logger.
fn sync_logger(
    log: Logger,
) -> impl Fn(regclient::sync::Level, &str, &[(&str, &str)]) + Send + Sync {
    move |lvl, msg, fields| {
        let l = match lvl {
            regclient::sync::Level::Debug => Level::Debug,
            regclient::sync::Level::Info => Level::Info,
            regclient::sync::Level::Warn => Level::Warn,
            regclient::sync::Level::Error => Level::Error,
        };
        log.log(l, msg, fields);
    }
}

/// `regsync server`: a pass copying what is missing, then every entry on its `schedule` or
/// `interval` until SIGINT or SIGTERM; running copies get a bounded grace period to finish.
fn server(client: Client, cfg: Config, log: Logger) -> ExitCode {
    let client = std::sync::Arc::new(client);
    let cfg = std::sync::Arc::new(cfg);
    let stop = regclient::schedule::StopFlag::new();
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.as_arc().clone()) {
            log.log(
                Level::Error,
                "cannot handle signals",
                &[("err", &e.to_string())],
            );
            return ExitCode::FAILURE;
        }
    }
    let mut jobs = Vec::new();
    let mut scheduled = Vec::new();
    for (i, e) in cfg.sync.iter().enumerate() {
        let sched = if !e.schedule.is_empty() {
            regclient::schedule::Schedule::parse(&e.schedule)
        } else if !e.interval.0.is_zero() {
            regclient::schedule::Schedule::every(e.interval.0)
        } else {
            log.log(
                Level::Error,
                "entry has neither schedule nor interval, ignored",
                &[("source", &e.source), ("target", &e.target)],
            );
            continue;
        };
        let sched = match sched {
            Ok(s) => s,
            Err(err) => {
                log.log(
                    Level::Error,
                    "invalid schedule",
                    &[("source", &e.source), ("err", &err.to_string())],
                );
                return ExitCode::FAILURE;
            }
        };
        scheduled.push(i);
        let (client, cfg, log) = (client.clone(), cfg.clone(), log.clone());
        jobs.push(regclient::schedule::Job::new(
            format!("sync[{i}] {}", e.source),
            sched,
            move || {
                let logfn = sync_logger(log.clone());
                let rep = Runner::new(&client, &cfg, Mode::Copy, &logfn).run_entry(i, &cfg.sync[i]);
                match rep.error {
                    Some(e) => Err(regclient::Error::new(regclient::ErrorKind::Other, e)),
                    None => Ok(()),
                }
            },
        ));
    }
    // Start-up pass: copy only what is missing, as upstream's server does.
    let logfn = sync_logger(log.clone());
    let first = Runner::new(&client, &cfg, Mode::Missing, &logfn);
    for &i in &scheduled {
        if stop.is_stopped() {
            break;
        }
        if let Some(e) = first.run_entry(i, &cfg.sync[i]).error {
            log.log(Level::Error, "sync failed", &[("err", &e)]);
        }
    }
    let elog = log.clone();
    let summary = regclient::schedule::Runner::new(jobs)
        .on_event(move |ev| match ev {
            regclient::schedule::Event::Finished {
                job,
                error: Some(e),
                ..
            } => elog.log(
                Level::Error,
                "sync failed",
                &[("job", job), ("err", &e.to_string())],
            ),
            regclient::schedule::Event::Skipped { job, .. } => elog.log(
                Level::Warn,
                "previous run still going, skipped",
                &[("job", job)],
            ),
            regclient::schedule::Event::Started { job, .. } => {
                elog.log(Level::Debug, "sync started", &[("job", job)])
            }
            _ => {}
        })
        .run(&stop);
    log.log(
        Level::Info,
        "server stopped",
        &[
            ("runs", &summary.started.to_string()),
            ("failed", &summary.failed.to_string()),
        ],
    );
    ExitCode::SUCCESS
}
