//! regsync's rate-limit wait (`ratelimit.min` / `ratelimit.retry`): a fake registry source that
//! answers Docker Hub style `RateLimit-*` headers, an OCI layout target, and the library runner
//! with a short poll interval ([`Runner::ratelimit_poll`]) in place of the 5 minute minimum.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regclient::config::{Host, Tls};
use regclient::sync::{Action, Config, Level, Mode, Report, Runner};
use regclient::{Client, ClientConfig};
use support::fakereg::{FakeRegistry, RateLimitFault};
use support::TempDir;

const POLL: Duration = Duration::from_millis(100);

struct Run {
    report: Report,
    /// `level message key=value…` lines.
    logs: Vec<String>,
    /// Manifest HEADs at the source.
    heads: usize,
}

impl Run {
    fn delays(&self) -> Vec<&String> {
        self.logs
            .iter()
            .filter(|l| l.contains("Delaying for rate limit"))
            .collect()
    }

    fn action(&self) -> Action {
        self.report.entries[0].images[0].action
    }
}

/// One `type: image` entry `<fake>/src:t0000` → `ocidir://<tmp>/out:t0000` with
/// `ratelimit.min: 10`, the source answering `remaining` (one value per manifest HEAD).
fn sync(remaining: Option<&[i64]>, max_wait: Option<Duration>) -> Run {
    let reg = FakeRegistry::start();
    let tags = reg.seed_tags("src", 1);
    if let Some(r) = remaining {
        reg.faults().ratelimit = Some(RateLimitFault::new(100, r));
    }
    let tmp = TempDir::new();
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\n  ratelimit:\n    min: 10\n    retry: 1m\n\
         sync:\n  - source: {host}/src:{tag}\n    target: ocidir://{out}:{tag}\n    type: image\n",
        host = reg.host(),
        tag = tags[0],
        out = tmp.join("out").display(),
    );
    let config = Config::parse(yaml.as_bytes(), "regsync.yaml").unwrap();
    // The configured retry is raised to the 5 minute minimum; the runner knob overrides it.
    assert_eq!(
        config.sync[0].opts.ratelimit.retry.0,
        Duration::from_secs(300)
    );
    let mut hosts = BTreeMap::new();
    let mut host = Host::new_name(&reg.host());
    host.tls = Tls::Disabled;
    hosts.insert(reg.host(), host);
    let client = Client::new(ClientConfig {
        hosts,
        ..Default::default()
    });
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    let log = move |level: Level, msg: &str, kv: &[(&str, &str)]| {
        let mut line = format!("{level:?} {msg}");
        for (k, v) in kv {
            line.push_str(&format!(" {k}={v}"));
        }
        sink.lock().unwrap().push(line);
    };
    let mut runner = Runner::new(&client, &config, Mode::Copy, &log).ratelimit_poll(POLL);
    if let Some(m) = max_wait {
        runner = runner.ratelimit_max_wait(m);
    }
    let report = runner.run();
    drop(runner);
    let logs = logs.lock().unwrap().clone();
    Run {
        report,
        logs,
        heads: reg.count("HEAD", "/v2/src/manifests/"),
    }
}

#[test]
fn waits_while_remaining_is_below_min_then_copies() {
    // Step 1 of the image decision HEADs the source (5), then the rate-limit loop re-HEADs:
    // 5 → wait, 5 → wait, 50 → copy.
    let r = sync(Some(&[5, 5, 5, 50]), None);
    assert_eq!(r.action(), Action::Copied, "{:#?}\n{:#?}", r.report, r.logs);
    let delays = r.delays();
    assert_eq!(delays.len(), 2, "{:#?}", r.logs);
    for d in &delays {
        assert!(d.starts_with("Info "), "{d}");
        assert!(d.contains(" remain=5 "), "{d}");
        assert!(d.contains(" min=10 "), "{d}");
        // The knob, not the configured 5 minutes.
        assert!(d.contains(" retry=100ms"), "{d}");
    }
    // The copy starts after the last wait.
    let copy_log = r
        .logs
        .iter()
        .position(|l| l.contains("Image sync running"))
        .expect("copy log");
    let last_delay = r
        .logs
        .iter()
        .rposition(|l| l.contains("Delaying for rate limit"))
        .unwrap();
    assert!(last_delay < copy_log, "{:#?}", r.logs);
    // Two polls at the source besides the decision HEAD and the HEAD that let the copy go.
    let baseline = sync(None, None);
    assert_eq!(baseline.action(), Action::Copied);
    assert_eq!(r.heads, baseline.heads + 2, "{:#?}", r.logs);
    assert!(r.report.entries[0].images[0].duration_ms >= 200);
}

#[test]
fn one_wait_for_5_5_50() {
    let r = sync(Some(&[5, 5, 50]), None);
    assert_eq!(r.action(), Action::Copied, "{:#?}", r.logs);
    assert_eq!(r.delays().len(), 1, "{:#?}", r.logs);
    let baseline = sync(None, None);
    assert_eq!(r.heads, baseline.heads + 1);
}

#[test]
fn no_headers_no_wait() {
    let r = sync(None, None);
    assert_eq!(r.action(), Action::Copied, "{:#?}", r.logs);
    assert!(r.delays().is_empty(), "{:#?}", r.logs);
    // The decision HEAD plus one rate-limit check, at most a HEAD more from the copy.
    assert!((2..=3).contains(&r.heads), "{} HEADs", r.heads);
}

#[test]
fn remaining_above_min_no_wait() {
    let r = sync(Some(&[50]), None);
    assert_eq!(r.action(), Action::Copied, "{:#?}", r.logs);
    assert!(r.delays().is_empty(), "{:#?}", r.logs);
    assert_eq!(r.heads, sync(None, None).heads);
    // Exactly min is enough.
    let r = sync(Some(&[10]), None);
    assert_eq!(r.action(), Action::Copied);
    assert!(r.delays().is_empty(), "{:#?}", r.logs);
}

#[test]
fn gives_up_after_max_wait() {
    // Never recovers: two 100 ms waits fit in 250 ms, the third does not.
    let r = sync(Some(&[5]), Some(Duration::from_millis(250)));
    let img = &r.report.entries[0].images[0];
    assert_eq!(img.action, Action::Failed, "{:#?}", r.logs);
    let err = img.error.as_deref().unwrap();
    assert!(err.contains("rate limit"), "{err}");
    assert!(err.contains("5 remaining (min 10)"), "{err}");
    assert_eq!(r.delays().len(), 2, "{:#?}", r.logs);
    assert!(
        r.logs
            .iter()
            .any(|l| l.starts_with("Error Rate limit wait exceeded") && l.contains("waited=200ms")),
        "{:#?}",
        r.logs
    );
    assert!(!r.logs.iter().any(|l| l.contains("Image sync running")));
    assert!(r.report.failed());
    // Decision HEAD + three checks.
    assert_eq!(r.heads, 4);
}
