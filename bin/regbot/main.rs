//! regbot: runs Lua scripts against registries, once or on a schedule, as described by a YAML
//! file (see `regclient::bot::config`).

#![forbid(unsafe_code)]

#[path = "../regctl/log.rs"]
#[allow(dead_code)]
mod log;
#[path = "../common/tool.rs"]
mod tool;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use regclient::bot::config::{Config, ScriptEntry};
use regclient::bot::{run_script, LogFn, ScriptEnv};
use regclient::schedule::{Event, Job, StopFlag};
use regclient::Client;

use log::{Level, Logger};
use tool::Extra;

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

fn main() -> ExitCode {
    let mut dry_run = false;
    let parsed = tool::parse_args(USAGE, |f, _| match f {
        Extra::Long(l) if l == "dry-run" => {
            dry_run = true;
            Ok(true)
        }
        _ => Ok(false),
    });
    let args = match parsed {
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
        "version" => return tool::print_version(args.format.as_deref(), &log),
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
        Err(e) => return tool::fail(&log, "failed to load config", &e),
    };
    let d = &cfg.defaults;
    let client = match tool::client_config(
        "regbot",
        &d.user_agent,
        d.skip_docker_config,
        d.blob_limit,
        &cfg.creds,
        &log,
    ) {
        Ok(cc) => Arc::new(Client::new(cc)),
        Err(e) => return tool::fail(&log, "failed to set up the client", &e),
    };
    let bot = Bot {
        client,
        cfg: Arc::new(cfg),
        log,
        dry_run,
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
        let Some(stop) = tool::stop_on_signals(&self.log) else {
            return ExitCode::FAILURE;
        };
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
