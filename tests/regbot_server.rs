//! `regbot server`: scripts run on their schedule or interval (never at start, never
//! overlapping themselves), scripts without either are ignored, and SIGTERM stops the server
//! with exit 0. Waits are on log lines read as they arrive, each with a deadline.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::TempDir;

/// A running `regbot server` whose JSON log lines are collected as they arrive.
struct Server {
    child: Child,
    rx: mpsc::Receiver<String>,
    lines: Vec<serde_json::Value>,
    _tmp: TempDir,
}

impl Server {
    fn start(yaml: &str) -> Server {
        let tmp = TempDir::new();
        let cfg = tmp.join("regbot.yaml");
        std::fs::write(&cfg, yaml).unwrap();
        let mut child = support::spawn_server(support::regbot(&tmp), &cfg);
        // A reader thread feeds a channel, so waiting for a line can have a deadline; the
        // channel closes when the server exits.
        let (tx, rx) = mpsc::channel::<String>();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Server {
            child,
            rx,
            lines: Vec::new(),
            _tmp: tmp,
        }
    }

    fn text(&self) -> String {
        self.lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Lines with message `msg` for `script`.
    fn count(&self, msg: &str, script: &str) -> usize {
        self.lines
            .iter()
            .filter(|l| l["msg"] == msg && l["script"] == script)
            .count()
    }

    /// Reads lines until `done` holds; kills the server and panics after 30 s.
    fn wait_for(&mut self, what: &str, done: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self
                    .lines
                    .push(serde_json::from_str(&l).unwrap_or(serde_json::Value::String(l))),
                Err(_) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("{what}: not seen within 30 s:\n{}", self.text());
                }
            }
        }
    }

    /// Sends SIGTERM and collects the rest of the log until the server exits (bounded).
    fn terminate(mut self) -> (ExitStatus, Server) {
        // `kill` as the shell's builtin: no procps needed.
        let status = Command::new("sh")
            .args(["-c", &format!("kill -TERM {}", self.child.id())])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self
                    .lines
                    .push(serde_json::from_str(&l).unwrap_or(serde_json::Value::String(l))),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    panic!("regbot server did not stop within 30 s of SIGTERM");
                }
            }
        }
        (self.child.wait().unwrap(), self)
    }
}

#[test]
fn server_runs_scheduled_scripts_and_stops_on_sigterm() {
    let mut s = Server::start(
        "version: 1\ndefaults:\n  skipDockerConfig: true\n  parallel: 2\nscripts:\n  - name: cron\n    schedule: \"@every 1s\"\n    script: |\n      local n = 0\n      for i = 1, 10 do n = n + i end\n      log(\"tick \" .. n)\n  - name: ticker\n    interval: 1s\n    script: x = 1\n  - name: manual\n    script: x = 2\n",
    );
    s.wait_for("two runs of each scheduled script", |s| {
        s.count("script finished", "cron") >= 2 && s.count("script finished", "ticker") >= 2
    });
    let (code, s) = s.terminate();
    let text = s.text();
    assert!(code.success(), "exit {code}: {text}");
    assert!(text.contains("server stopped"), "{text}");
    assert!(
        s.count(
            "script has neither schedule nor interval, ignored",
            "manual"
        ) == 1,
        "the unscheduled script was not reported: {text}"
    );
    assert_eq!(s.count("script started", "manual"), 0, "{text}");
    assert!(!text.contains("script failed"), "a run failed: {text}");
    assert!(s.count("User script message", "cron") >= 2, "{text}");
}

/// A run longer than the period: the next due runs are skipped, never started alongside.
#[test]
fn server_never_overlaps_runs_of_one_script() {
    let mut s = Server::start(
        "version: 1\ndefaults:\n  skipDockerConfig: true\n  parallel: 4\nscripts:\n  - name: slow\n    schedule: \"@every 1s\"\n    timeout: 20s\n    script: |\n      -- os.clock() is wall-clock seconds since this run started.\n      while os.clock() < 2.5 do end\n",
    );
    s.wait_for("a skipped run and two finished runs", |s| {
        s.count("previous run still going, skipped", "slow") >= 1
            && s.count("script finished", "slow") >= 2
    });
    let (code, s) = s.terminate();
    let text = s.text();
    assert!(code.success(), "exit {code}: {text}");
    // Starts and finishes of the script alternate: no second start while one is running.
    let mut running = false;
    for l in s.lines.iter().filter(|l| l["script"] == "slow") {
        if l["msg"] == "script started" {
            assert!(!running, "overlapping runs: {text}");
            running = true;
        } else if l["msg"] == "script finished" {
            running = false;
        }
    }
    assert!(!text.contains("script failed"), "{text}");
}
