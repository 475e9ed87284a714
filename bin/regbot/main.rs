//! regbot: runs Lua scripts against registries, once or on a schedule, as described by a YAML
//! file (see `regclient::bot::config`).

#![forbid(unsafe_code)]

#[path = "../regctl/log.rs"]
#[allow(dead_code)]
mod log;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lexopt::prelude::*;
use regclient::bot::config::{Config, ScriptEntry};
use regclient::bot::{run_script, LogFn, ScriptEnv};
use regclient::config::{self, ProcessRunner};
use regclient::schedule::{Event, Job, StopFlag};
use regclient::transport::client::LogEvent;
use regclient::transport::proxy::{ProxyConfig, ProxyEnv};
use regclient::{Client, ClientConfig};

use log::{Level, Logger};

const VERSION: &str = env!("CARGO_PKG_VERSION");

const USAGE: &str = "Usage: regbot <command> [flags]

Commands:
  once      run every script once
  server    run each script on its schedule or interval until SIGINT/SIGTERM
  version   print the version

Flags:
  -c, --config FILE     configuration file (\"-\" reads stdin)
      --dry-run         log every registry write instead of doing it
  -v, --verbosity LVL   log level: trace, debug, info, warn, error (default info)
      --logopt json     log as JSON lines
      --format TMPL     version: Go template over the version info
  -h, --help            this help
";

struct Args {
    cmd: String,
    config: Option<PathBuf>,
    dry_run: bool,
    level: Level,
    json: bool,
    format: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        cmd: String::new(),
        config: None,
        dry_run: false,
        level: Level::Info,
        json: false,
        format: None,
    };
    let mut p = lexopt::Parser::from_env();
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = p.next().map_err(e)? {
        match arg {
            Short('c') | Long("config") => a.config = Some(p.value().map_err(e)?.into()),
            Long("dry-run") => a.dry_run = true,
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

/// Client settings from the file: creds merged over docker's logins (unless
/// `skipDockerConfig`), proxies from the environment, registry warnings and requests logged.
fn client_config(cfg: &Config, log: &Logger) -> regclient::Result<ClientConfig> {
    let env: config::EnvMap = std::env::vars().collect();
    let mut cc = ClientConfig {
        user_agent: if cfg.defaults.user_agent.is_empty() {
            format!("regclient/regbot ({VERSION})")
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

fn print_version(format: Option<&str>, log: &Logger) -> ExitCode {
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

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("regbot: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let log = Logger {
        level: args.level,
        json: args.json,
    };
    match args.cmd.as_str() {
        "version" => return print_version(args.format.as_deref(), &log),
        "once" | "server" => {}
        other => {
            eprintln!("regbot: unknown command {other:?}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    }
    let Some(path) = &args.config else {
        eprintln!("regbot: --config is required\n\n{USAGE}");
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
    let client = match client_config(&cfg, &log) {
        Ok(cc) => Arc::new(Client::new(cc)),
        Err(e) => {
            log.log(
                Level::Error,
                "failed to set up the client",
                &[("err", &e.to_string())],
            );
            return ExitCode::FAILURE;
        }
    };
    let bot = Bot {
        client,
        cfg: Arc::new(cfg),
        log,
        dry_run: args.dry_run,
    };
    if args.cmd == "server" {
        bot.server()
    } else {
        bot.once()
    }
}

/// What every run shares: one client, the config and the logger.
#[derive(Clone)]
struct Bot {
    client: Arc<Client>,
    cfg: Arc<Config>,
    log: Logger,
    dry_run: bool,
}

impl Bot {
    /// Runs one script once in a fresh environment. A panic inside the run becomes an error
    /// naming the script, so one broken script cannot take the others down.
    fn run(&self, script: &ScriptEntry) -> regclient::Result<()> {
        let env = ScriptEnv {
            client: self.client.clone(),
            dry_run: self.dry_run,
            log: script_logger(self.log.clone()),
            limits: self.cfg.limits(script),
        };
        self.log
            .debug("script started", &[("script", &script.name)]);
        let start = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| {
            run_script(&env, &script.name, &script.script)
        }))
        .unwrap_or_else(|_| {
            Err(regclient::Error::new(
                regclient::ErrorKind::Other,
                format!("script {}: panicked", script.name),
            ))
        });
        if res.is_ok() {
            self.log.debug(
                "script finished",
                &[
                    ("script", &script.name),
                    ("elapsed", &format!("{:?}", start.elapsed())),
                ],
            );
        }
        res
    }

    /// `regbot once`: every script once, up to `defaults.parallel` at a time. A failed script
    /// is logged and the others go on; the exit code is 1 when any failed.
    fn once(&self) -> ExitCode {
        let scripts = &self.cfg.scripts;
        let results: Vec<Mutex<Option<regclient::Result<()>>>> =
            scripts.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.cfg.defaults.parallel.clamp(1, scripts.len().max(1));
        // Each worker takes the next script until none is left, so at most `workers` run.
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(script) = scripts.get(i) else { break };
                    let res = self.run(script);
                    if let Err(e) = &res {
                        self.log.warn(
                            "script failed",
                            &[("script", &script.name), ("err", &e.to_string())],
                        );
                    }
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(res);
                });
            }
        });
        let mut failed = results.into_iter().zip(scripts).filter_map(|(r, s)| {
            match r.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Err(e)) => Some((s, e)),
                _ => None,
            }
        });
        let Some((first, err)) = failed.next() else {
            return ExitCode::SUCCESS;
        };
        let more = failed.count();
        self.log.log(
            Level::Error,
            "regbot failed",
            &[
                ("script", &first.name),
                ("err", &err.to_string()),
                ("failed", &(more + 1).to_string()),
            ],
        );
        ExitCode::FAILURE
    }

    /// `regbot server`: each script with a schedule or interval runs when due (no run at
    /// start) until SIGINT or SIGTERM; a run still going when the next is due makes that next
    /// run skip. At most `defaults.parallel` scripts run at the same time.
    fn server(&self) -> ExitCode {
        let stop = StopFlag::new();
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            if let Err(e) = signal_hook::flag::register(sig, stop.as_arc().clone()) {
                self.log.log(
                    Level::Error,
                    "cannot handle signals",
                    &[("err", &e.to_string())],
                );
                return ExitCode::FAILURE;
            }
        }
        let slots = Arc::new(Slots::new(self.cfg.defaults.parallel));
        let mut jobs = Vec::new();
        for (i, script) in self.cfg.scripts.iter().enumerate() {
            let sched = match script.trigger() {
                Ok(Some(s)) => s,
                Ok(None) => {
                    self.log.log(
                        Level::Error,
                        "script has neither schedule nor interval, ignored",
                        &[("script", &script.name)],
                    );
                    continue;
                }
                // Config::parse already validated it; kept for a clear message all the same.
                Err(e) => {
                    self.log.log(
                        Level::Error,
                        "invalid schedule",
                        &[("script", &script.name), ("err", &e.to_string())],
                    );
                    return ExitCode::FAILURE;
                }
            };
            self.log.info(
                "script scheduled",
                &[("script", &script.name), ("schedule", &sched.to_string())],
            );
            let (bot, slots, stop) = (self.clone(), slots.clone(), stop.clone());
            jobs.push(Job::new(script.name.clone(), sched, move || {
                let Some(_slot) = slots.acquire(&stop) else {
                    return Ok(()); // stopping: don't start
                };
                bot.run(&bot.cfg.scripts[i])
            }));
        }
        if jobs.is_empty() {
            self.log.warn(
                "no script has a schedule or interval; waiting for a signal",
                &[],
            );
        }
        let elog = self.log.clone();
        let summary = regclient::schedule::Runner::new(jobs)
            .on_event(move |ev| match ev {
                Event::Finished {
                    job,
                    error: Some(e),
                    ..
                } => elog.warn("script failed", &[("script", job), ("err", &e.to_string())]),
                Event::Skipped { job, .. } => {
                    elog.warn("previous run still going, skipped", &[("script", job)])
                }
                Event::NoNextRun { job } => {
                    elog.warn("schedule has no future run", &[("script", job)])
                }
                Event::Abandoned { job } => {
                    elog.warn("script still running at exit", &[("script", job)])
                }
                _ => {}
            })
            .run(&stop);
        self.log.info(
            "server stopped",
            &[
                ("runs", &summary.started.to_string()),
                ("failed", &summary.failed.to_string()),
            ],
        );
        ExitCode::SUCCESS
    }
}

/// Script log lines: the library's level mapped onto the logger, the script's name first.
fn script_logger(log: Logger) -> Arc<LogFn> {
    Arc::new(move |lvl, script, msg, fields| {
        let l = match lvl {
            regclient::sync::Level::Debug => Level::Debug,
            regclient::sync::Level::Info => Level::Info,
            regclient::sync::Level::Warn => Level::Warn,
            regclient::sync::Level::Error => Level::Error,
        };
        let mut all = Vec::with_capacity(fields.len() + 1);
        all.push(("script", script));
        all.extend_from_slice(fields);
        log.log(l, msg, &all);
    })
}

/// A counting semaphore limiting concurrent script runs in server mode.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

/// Gives its slot back when dropped.
struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }

    /// Waits for a free slot; `None` once `stop` is set. The wait wakes up every second to
    /// look at the flag, which a signal handler sets without notifying the condvar.
    fn acquire(&self, stop: &StopFlag) -> Option<Slot<'_>> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if stop.is_stopped() {
                return None;
            }
            if *free > 0 {
                *free -= 1;
                return Some(Slot(self));
            }
            free = self
                .cv
                .wait_timeout(free, Duration::from_secs(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_limit_and_release() {
        let slots = Slots::new(2);
        let stop = StopFlag::new();
        let a = slots.acquire(&stop).expect("first slot");
        let _b = slots.acquire(&stop).expect("second slot");
        // Both taken: a waiter gets the slot as soon as one is dropped.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| slots.acquire(&stop).is_some());
            drop(a);
            assert!(waiter.join().unwrap());
        });
        // A stopped server hands out nothing, even when a slot is free.
        stop.stop();
        assert!(Slots::new(1).acquire(&stop).is_none());
        assert_eq!(*Slots::new(0).free.lock().unwrap(), 1, "at least one slot");
    }
}
