//! `regbot server`: scripts run on their schedule or interval (never at start, never
//! overlapping themselves), scripts without either are ignored, and SIGTERM stops the server
//! with exit 0. Waits are on log lines read as they arrive, each with a deadline.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::TempDir;

fn field(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

#[test]
fn server_runs_scheduled_scripts_and_stops_on_sigterm() {
    let tmp = TempDir::new();
    let cfg = tmp.join("regbot.yaml");
    std::fs::write(
        &cfg,
        "version: 1\ndefaults:\n  skipDockerConfig: true\n  parallel: 2\nscripts:\n  - name: cron\n    schedule: \"@every 1s\"\n    script: |\n      local n = 0\n      for i = 1, 10 do n = n + i end\n  - name: ticker\n    interval: 1s\n    script: x = 1\n  - name: manual\n    script: x = 2\n",
    )
    .unwrap();
    let home = tmp.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_regbot"))
        .args(["server", "-v", "debug", "--logopt", "json", "-c"])
        .arg(&cfg)
        .env("HOME", &home)
        .env("DOCKER_CONFIG", tmp.join("docker"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn regbot server");
    // Lines go through a channel as they arrive, so the test can wait for a given line with
    // a deadline; the channel closes when the server exits.
    let (tx, rx) = mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::<String>::new();
    let started = |log: &[String], script: &str| {
        log.iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| field(v, "msg") == "script started" && field(v, "script") == script)
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while started(&log, "cron") < 2 || started(&log, "ticker") < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => log.push(l),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("scripts did not run twice within 30 s:\n{}", log.join("\n"));
            }
        }
    }
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    // Collect the rest until the server closes stderr on exit.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => log.push(l),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("regbot server did not stop within 30 s of SIGTERM");
            }
        }
    }
    let code = child.wait().unwrap();
    let text = log.join("\n");
    assert!(code.success(), "exit {code}: {text}");
    assert!(text.contains("server stopped"), "{text}");
    assert!(
        text.contains("neither schedule nor interval") && text.contains("\"manual\""),
        "the unscheduled script was not reported: {text}"
    );
    assert_eq!(started(&log, "manual"), 0, "{text}");
    assert!(
        !text.contains("script failed"),
        "a scheduled run failed: {text}"
    );
    let runs: Vec<serde_json::Value> = log
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let finished = runs
        .iter()
        .filter(|v| field(v, "msg") == "script finished" && field(v, "script") == "cron")
        .count();
    assert!(finished >= 1, "{text}");
}
