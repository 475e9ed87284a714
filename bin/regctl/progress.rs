//! The `image copy` progress display: one line per blob in flight and a summary line, redrawn
//! in place on stderr at most ten times a second from the copy engine's events.
//!
//! Events arrive from the copy's worker threads, so the state sits behind a mutex; drawing
//! happens while holding it so frames never interleave.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use regclient::copy::{Event, Kind};

const REDRAW_EVERY: Duration = Duration::from_millis(100);
/// Blobs in flight shown individually; more are summarised in one line.
const MAX_BLOB_LINES: usize = 8;
const BAR_WIDTH: usize = 20;

/// A copy event reduced to what the display needs. [`step`] is the one place that knows the
/// copy engine's event type.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Plan { manifests: usize },
    ManifestSkipped { digest: String },
    Skipped { digest: String },
    Started { digest: String, size: i64 },
    Progress { digest: String, bytes: u64 },
    Finished { digest: String },
    ManifestPushed { digest: String },
}

/// Converts an event; events the display does not use give `None`.
pub fn step(ev: &Event) -> Option<Step> {
    // Fields are matched with `..` and unknown variants fall through, so richer events
    // (plans, mounts) do not break the display.
    #[allow(unreachable_patterns)]
    Some(match ev {
        Event::Plan { manifests, .. } => Step::Plan {
            manifests: *manifests,
        },
        Event::Skipped {
            kind: Kind::Manifest,
            digest,
            ..
        } => Step::ManifestSkipped {
            digest: digest.to_string(),
        },
        Event::Skipped { digest, .. } => Step::Skipped {
            digest: digest.to_string(),
        },
        Event::Started { digest, size, .. } => Step::Started {
            digest: digest.to_string(),
            size: *size,
        },
        Event::Progress {
            digest, bytes_done, ..
        } => Step::Progress {
            digest: digest.to_string(),
            bytes: *bytes_done,
        },
        Event::Finished { digest, .. } => Step::Finished {
            digest: digest.to_string(),
        },
        Event::ManifestPushed { digest, .. } => Step::ManifestPushed {
            digest: digest.to_string(),
        },
        _ => return None,
    })
}

#[derive(Debug, Default, Clone)]
pub struct State {
    /// Digest → (bytes done, size) of blobs in flight.
    pub active: BTreeMap<String, (u64, i64)>,
    pub copied: usize,
    pub skipped: usize,
    pub manifests: usize,
    pub manifests_total: usize,
}

impl State {
    pub fn apply(&mut self, st: Step) {
        match st {
            Step::Plan { manifests } => self.manifests_total = manifests,
            Step::ManifestSkipped { .. } => {
                self.manifests += 1;
                self.manifests_total = self.manifests_total.max(self.manifests);
            }
            Step::Skipped { .. } => self.skipped += 1,
            Step::Started { digest, size } => {
                self.active.insert(digest, (0, size));
            }
            Step::Progress { digest, bytes } => {
                if let Some(e) = self.active.get_mut(&digest) {
                    e.0 = bytes;
                }
            }
            Step::Finished { digest } => {
                self.active.remove(&digest);
                self.copied += 1;
            }
            Step::ManifestPushed { .. } => {
                self.manifests += 1;
                self.manifests_total = self.manifests_total.max(self.manifests);
            }
        }
    }
}

/// The frame for `state` after `elapsed`.
pub fn render(state: &State, elapsed: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    for (digest, (done, size)) in state.active.iter().take(MAX_BLOB_LINES) {
        let short = digest.get(..19).unwrap_or(digest);
        let line = if *size > 0 {
            let frac = (*done as f64 / *size as f64).clamp(0.0, 1.0);
            let filled = (frac * BAR_WIDTH as f64).round() as usize;
            format!(
                "{short} [{}{}] {:>3}% {} / {}",
                "=".repeat(filled),
                " ".repeat(BAR_WIDTH - filled),
                (frac * 100.0).floor() as u64,
                human_size(*done),
                human_size(*size as u64)
            )
        } else {
            format!("{short} {}", human_size(*done))
        };
        lines.push(line);
    }
    if state.active.len() > MAX_BLOB_LINES {
        lines.push(format!(
            "... and {} more",
            state.active.len() - MAX_BLOB_LINES
        ));
    }
    lines.push(format!(
        "Manifests: {}/{} | Blobs: {} copied, {} skipped, {} queued | Elapsed: {}s",
        state.manifests,
        state.manifests_total.max(state.manifests),
        state.copied,
        state.skipped,
        state.active.len(),
        elapsed.as_secs()
    ));
    lines
}

/// Decimal sizes as regctl prints them (`512B`, `1.50kB`, `2.75MB`).
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.2}{}", UNITS[unit])
}

/// A live display on stderr.
pub struct Progress {
    inner: Mutex<Inner>,
    start: Instant,
}

struct Inner {
    state: State,
    last_draw: Option<Instant>,
    lines_drawn: usize,
}

impl Progress {
    pub fn new(manifests_total: usize) -> Progress {
        Progress {
            inner: Mutex::new(Inner {
                state: State {
                    manifests_total,
                    ..Default::default()
                },
                last_draw: None,
                lines_drawn: 0,
            }),
            start: Instant::now(),
        }
    }

    pub fn event(&self, ev: &Event) {
        let Some(st) = step(ev) else {
            return;
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.state.apply(st);
        let now = Instant::now();
        if inner
            .last_draw
            .is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY)
        {
            self.draw(&mut inner, now);
        }
    }

    /// Draws the final frame.
    pub fn finish(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.draw(&mut inner, Instant::now());
    }

    fn draw(&self, inner: &mut Inner, now: Instant) {
        let lines = render(&inner.state, now.duration_since(self.start));
        let mut frame = String::new();
        if inner.lines_drawn > 0 {
            // Back to the top of the previous frame, then clear to the end of the screen.
            frame.push_str(&format!("\x1b[{}A\r\x1b[J", inner.lines_drawn));
        }
        for l in &lines {
            frame.push_str(l);
            frame.push('\n');
        }
        inner.lines_drawn = lines.len();
        inner.last_draw = Some(now);
        let _ = std::io::stderr().lock().write_all(frame.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1500), "1.50kB");
        assert_eq!(human_size(2_746_000), "2.75MB");
        assert_eq!(human_size(3_000_000_000), "3.00GB");
    }

    fn started(d: &str, size: i64) -> Step {
        Step::Started {
            digest: d.to_string(),
            size,
        }
    }

    #[test]
    fn frames_follow_steps() {
        let a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let mut s = State {
            manifests_total: 3,
            ..Default::default()
        };
        s.apply(Step::Skipped {
            digest: "sha256:b".into(),
        });
        s.apply(started(a, 2000));
        s.apply(Step::Progress {
            digest: a.to_string(),
            bytes: 1000,
        });
        let lines = render(&s, Duration::from_secs(2));
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("sha256:aaaaaaaaaaaa "), "{}", lines[0]);
        assert!(lines[0].contains(" 50% 1.00kB / 2.00kB"), "{}", lines[0]);
        assert_eq!(
            lines[1],
            "Manifests: 0/3 | Blobs: 0 copied, 1 skipped, 1 queued | Elapsed: 2s"
        );
        s.apply(Step::Finished {
            digest: a.to_string(),
        });
        s.apply(Step::ManifestPushed {
            digest: "sha256:m".into(),
        });
        let lines = render(&s, Duration::from_secs(3));
        assert_eq!(
            lines,
            vec!["Manifests: 1/3 | Blobs: 1 copied, 1 skipped, 0 queued | Elapsed: 3s"]
        );
    }

    #[test]
    fn many_blobs_are_summarised() {
        let mut s = State::default();
        for i in 0..12 {
            s.apply(started(&format!("sha256:{i:064}"), -1));
        }
        let lines = render(&s, Duration::ZERO);
        assert_eq!(lines.len(), MAX_BLOB_LINES + 2);
        assert_eq!(lines[MAX_BLOB_LINES], "... and 4 more");
    }

    #[test]
    fn events_convert() {
        let d = regclient::Digest::sha256(b"x");
        let st = step(&Event::Started {
            digest: d.clone(),
            size: 5,
        });
        assert_eq!(st, Some(started(&d.to_string(), 5)));
    }
}
