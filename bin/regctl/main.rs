//! regctl: a command-line client for OCI registries and OCI image layouts.
//!
//! The binary is thin: `flags` turns the command line into [`flags::Matches`] using the
//! command table in `commands`, `cmd::*` call the library and print, and `main` maps the
//! outcome to an exit code. Output goes to stdout; logs and errors go to stderr.

mod cmd;
mod commands;
mod flags;
mod log;
mod progress;
mod setup;

use std::io::Write;
use std::process::ExitCode;

use regclient::{Client, Error, ErrorKind, Result};

use crate::cmd::{Ctx, HostOpt};
use crate::log::{Level, Logger};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`regctl blob get ... | head`) is not a failure.
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        // `image check-base` already said "base image has changed" on stdout; like regctl it
        // adds nothing on stderr, only the exit code.
        Err(e)
            if e.kind() == ErrorKind::Mismatch
                && e.message().contains("base image has changed") =>
        {
            ExitCode::FAILURE
        }
        Err(e) => {
            let msg = log::redact(&e.to_string());
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "Error: {msg}");
            if msg.contains("server gave HTTP response to HTTPS client") {
                let _ = writeln!(
                    err,
                    "Hint: for a plain HTTP registry, run `regctl registry set --tls disabled <registry>`"
                );
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let m = flags::parse(
        &commands::ROOT,
        commands::GLOBAL_FLAGS,
        std::env::args_os().skip(1),
    )?;
    if m.help || m.cmd.run.is_none() {
        let text = flags::help(&m.path, m.cmd, commands::GLOBAL_FLAGS);
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(());
    }
    let level = Level::parse(m.value("verbosity")).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            format!(
                "invalid --verbosity {:?}: use trace, debug, info, warn or error",
                m.value("verbosity")
            ),
        )
    })?;
    let mut logger = Logger { level, json: false };
    for opt in m.values("logopt") {
        match opt.as_str() {
            "json" => logger.json = true,
            o => logger.warn("unknown log option", &[("opt", o)]),
        }
    }
    let hosts = m
        .values("host")
        .iter()
        .map(|h| HostOpt::parse(h))
        .collect::<Result<Vec<_>>>()?;
    for h in &hosts {
        logger.debug(
            "host configured from the command line",
            &[
                ("reg", h.reg.as_str()),
                ("user", h.user.as_str()),
                ("pass", h.pass.as_str()),
                ("tls", h.tls.as_str()),
            ],
        );
    }
    let settings = setup::load_settings(setup::env_snapshot(), &logger);
    let cfg = setup::client_config(&settings, &hosts, m.given("user-agent"), &logger)?;
    let client = Client::new(cfg);
    let run = m.cmd.run.expect("checked above");
    let ctx = Ctx::new(m, client, logger, hosts, settings);
    let res = run(&ctx);
    // Close (layout GC) whatever happened; a close error matters only when the command
    // itself succeeded.
    let closed = ctx.close_all();
    match (res, closed) {
        (Err(e), Err(c)) => {
            ctx.log
                .warn("close failed", &[("err", c.to_string().as_str())]);
            Err(e)
        }
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}
