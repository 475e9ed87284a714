//! regsync: mirror images between registries and OCI layouts as described by a YAML file.

#![forbid(unsafe_code)]

#[path = "../regctl/log.rs"]
#[allow(dead_code)]
mod log;
#[path = "../common/tool.rs"]
mod tool;

use std::path::PathBuf;
use std::process::ExitCode;

use regclient::sync::{Config, Mode, Runner};
use regclient::Client;

use log::{Level, Logger};
use tool::Extra;

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

/// regsync's own flags.
#[derive(Default)]
struct SyncFlags {
    missing: bool,
    abort: bool,
    report: Option<PathBuf>,
}

fn main() -> ExitCode {
    let mut flags = SyncFlags::default();
    let parsed = tool::parse_args(USAGE, |f, p| {
        let e = |e: lexopt::Error| e.to_string();
        match f {
            Extra::Long(l) if l == "missing" => flags.missing = true,
            Extra::Long(l) if l == "abort-on-error" => flags.abort = true,
            Extra::Long(l) if l == "report" => flags.report = Some(p.value().map_err(e)?.into()),
            _ => return Ok(false),
        }
        Ok(true)
    });
    let args = match parsed {
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
        "version" => return tool::print_version(args.format.as_deref(), &log),
        "server" => Mode::Copy,
        "once" if flags.missing => Mode::Missing,
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
        Err(e) => return tool::fail(&log, "failed to load config", &e),
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
    let d = &cfg.defaults;
    let cc = match tool::client_config(
        "regsync",
        &d.user_agent,
        d.skip_docker_config,
        d.blob_limit,
        &cfg.creds,
        &log,
    ) {
        Ok(c) => c,
        Err(e) => return tool::fail(&log, "failed to set up the client", &e),
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
        .abort_on_error(flags.abort)
        .run();
    if let Some(p) = &flags.report {
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
    let Some(stop) = tool::stop_on_signals(&log) else {
        return ExitCode::FAILURE;
    };
    let mut jobs = Vec::new();
    let mut scheduled = Vec::new();
    for (i, e) in cfg.sync.iter().enumerate() {
        let sched = if !e.opts.schedule.is_empty() {
            regclient::schedule::Schedule::parse(&e.opts.schedule)
        } else if !e.opts.interval.0.is_zero() {
            regclient::schedule::Schedule::every(e.opts.interval.0)
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
