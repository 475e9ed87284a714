//! `regsync server`: entries run on their schedule until SIGTERM, which stops the loop and lets
//! the process exit 0.

mod support;

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{testrepo, TempDir};

/// Counts "sync started"-style runs in the JSON log lines of a finished server.
fn runs_of(log: &str, job: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("sync started") && l.contains(job))
        .count()
}

#[test]
fn server_runs_entries_on_schedule_and_stops_on_sigterm() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let cfg = tmp.join("regsync.yaml");
    std::fs::write(
        &cfg,
        format!(
            "version: 1\nsync:\n  - source: ocidir://{r}:v1\n    target: ocidir://{t}/a:v1\n    type: image\n    schedule: \"@every 1s\"\n  - source: ocidir://{r}:v2\n    target: ocidir://{t}/b:v2\n    type: image\n    interval: 1s\n",
            r = repo.display(),
            t = tmp.path().display()
        ),
    )
    .unwrap();
    let mut child = support::spawn_server(support::regsync(&tmp), &cfg);
    // Drain stderr on a thread so the server never blocks on a full pipe.
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    // The start-up pass copies both images; then each entry runs every second. Wait (bounded)
    // until the scheduled runs have had time to happen at least twice.
    let deadline = Instant::now() + Duration::from_secs(30);
    let a = tmp.join("a/index.json");
    let b = tmp.join("b/index.json");
    while !(a.is_file() && b.is_file()) && Instant::now() < deadline {
        std::thread::park_timeout(Duration::from_millis(100));
    }
    assert!(
        a.is_file() && b.is_file(),
        "the start-up pass did not copy both images"
    );
    std::thread::park_timeout(Duration::from_millis(2500));
    // `kill` as the shell's builtin: no procps needed.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("regsync server did not stop within 30 s of SIGTERM");
        }
        std::thread::park_timeout(Duration::from_millis(50));
    };
    let log = reader.join().unwrap();
    assert!(code.success(), "exit {code}: {log}");
    assert!(log.contains("server stopped"), "{log}");
    assert!(
        runs_of(&log, "sync[0]") >= 1,
        "entry 0 never ran on schedule: {log}"
    );
    assert!(
        runs_of(&log, "sync[1]") >= 1,
        "entry 1 never ran on schedule: {log}"
    );
}
