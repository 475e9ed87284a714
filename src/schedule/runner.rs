//! A plain sleep-loop runner: sleeps until the earliest due job, starts due jobs on their own
//! threads, skips a job whose previous run is still going, and on stop waits (bounded) for the
//! running ones.

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use super::Schedule;
use crate::{Error, ErrorKind, Result};

/// Asks a [`Runner`] to stop: a shared flag, cheap to clone.
///
/// The binary sets it from its SIGINT/SIGTERM handler (setting an `AtomicBool` is
/// async-signal-safe), either through [`StopFlag::stop`] or on the `Arc` from
/// [`StopFlag::as_arc`].
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is not set.
    pub fn new() -> StopFlag {
        StopFlag::default()
    }

    /// Wraps an existing flag (one a signal handler already sets).
    pub fn from_arc(flag: Arc<AtomicBool>) -> StopFlag {
        StopFlag(flag)
    }

    /// The shared flag, to hand to a signal handler.
    pub fn as_arc(&self) -> &Arc<AtomicBool> {
        &self.0
    }

    /// Sets the flag; every clone sees it.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the flag is set.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A job's body. It runs on a thread of its own; an `Err` (or a panic) counts as a failed run.
pub type JobFn = Arc<dyn Fn() -> Result<()> + Send + Sync>;

/// A named task and when to run it.
#[derive(Clone)]
pub struct Job {
    /// Shown in events (a regsync entry's source, a regbot script's name).
    pub name: String,
    /// When to run.
    pub schedule: Schedule,
    /// What to run.
    pub run: JobFn,
}

impl Job {
    /// A job from a closure.
    pub fn new(
        name: impl Into<String>,
        schedule: Schedule,
        run: impl Fn() -> Result<()> + Send + Sync + 'static,
    ) -> Job {
        Job {
            name: name.into(),
            schedule,
            run: Arc::new(run),
        }
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// Something that happened while running, for the caller to log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A run started.
    Started {
        /// The job's name.
        job: String,
        /// The time the run was due.
        scheduled: SystemTime,
    },
    /// A run ended (reported from the job's thread).
    Finished {
        /// The job's name.
        job: String,
        /// How long it ran.
        elapsed: Duration,
        /// Its error, or the panic turned into an error; `None` on success.
        error: Option<Error>,
    },
    /// A run was due while the previous run of the same job was still going, so it was skipped.
    Skipped {
        /// The job's name.
        job: String,
        /// The time the skipped run was due.
        scheduled: SystemTime,
    },
    /// The job's schedule has no future run (`0 0 30 2 *`); it never runs.
    NoNextRun {
        /// The job's name.
        job: String,
    },
    /// Stopping: the job was still running when the grace period ran out. Its thread is left
    /// to finish on its own.
    Abandoned {
        /// The job's name.
        job: String,
    },
}

/// Receives [`Event`]s; called from the runner's thread and (for [`Event::Finished`]) from job
/// threads, so events of different jobs may interleave.
pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// What a [`Runner::run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs started.
    pub started: u64,
    /// Runs that finished without error.
    pub succeeded: u64,
    /// Runs that returned an error or panicked.
    pub failed: u64,
    /// Runs skipped because the job's previous run was still going.
    pub skipped: u64,
    /// Jobs still running when the grace period ran out, in job order.
    pub abandoned: Vec<String>,
}

/// Runs [`Job`]s on their schedules until stopped.
pub struct Runner {
    jobs: Vec<Job>,
    grace: Duration,
    slice: Duration,
    sink: Option<EventSink>,
}

/// Default for [`Runner::grace`].
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// Default for [`Runner::slice`].
pub const DEFAULT_SLICE: Duration = Duration::from_secs(1);

/// State shared between the runner and job threads.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled whenever a run ends.
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// Per job: a run is going.
    running: Vec<bool>,
    succeeded: u64,
    failed: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Runner {
    /// A runner for `jobs`, with a grace period of [`DEFAULT_GRACE`] and sleep slices of
    /// [`DEFAULT_SLICE`].
    pub fn new(jobs: Vec<Job>) -> Runner {
        Runner {
            jobs,
            grace: DEFAULT_GRACE,
            slice: DEFAULT_SLICE,
            sink: None,
        }
    }

    /// How long [`Runner::run`] waits for running jobs after the stop flag is set.
    pub fn grace(mut self, grace: Duration) -> Runner {
        self.grace = grace;
        self
    }

    /// The longest single sleep, i.e. how quickly the stop flag is noticed (at least 1 ms).
    pub fn slice(mut self, slice: Duration) -> Runner {
        self.slice = slice.max(Duration::from_millis(1));
        self
    }

    /// Where events go (nowhere by default).
    pub fn on_event(mut self, sink: impl Fn(&Event) + Send + Sync + 'static) -> Runner {
        self.sink = Some(Arc::new(sink));
        self
    }

    /// The jobs.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    fn emit(&self, event: Event) {
        if let Some(sink) = &self.sink {
            sink(&event);
        }
    }

    /// Runs until `stop` is set: the first run of each job is its schedule's next time after
    /// now (no run at start); each due job starts on its own thread unless its previous run is
    /// still going (then that run is skipped and reported). A run that was missed (the process
    /// was suspended, the clock jumped) is made up once, not once per missed slot.
    ///
    /// Once `stop` is set nothing new starts; running jobs get up to the grace period to finish,
    /// and those still running are reported as abandoned (their threads are detached).
    pub fn run(&self, stop: &StopFlag) -> Summary {
        let shared = Arc::new(Shared::default());
        shared.lock().running = vec![false; self.jobs.len()];
        let mut summary = Summary::default();
        let mut handles: Vec<thread::JoinHandle<()>> = Vec::new();

        let start = SystemTime::now();
        let mut next: Vec<Option<SystemTime>> = Vec::with_capacity(self.jobs.len());
        for job in &self.jobs {
            let n = job.schedule.next_after(start);
            if n.is_none() {
                self.emit(Event::NoNextRun {
                    job: job.name.clone(),
                });
            }
            next.push(n);
        }

        while !stop.is_stopped() {
            let now = SystemTime::now();
            for (i, job) in self.jobs.iter().enumerate() {
                let Some(due) = next[i].filter(|t| *t <= now) else {
                    continue;
                };
                if !self.fire(i, job, due, stop, &shared, &mut summary, &mut handles) {
                    break;
                }
                next[i] = next_run(&job.schedule, due, now);
                if next[i].is_none() {
                    self.emit(Event::NoNextRun {
                        job: job.name.clone(),
                    });
                }
            }
            handles.retain(|h| !h.is_finished());
            if stop.is_stopped() {
                break;
            }
            let now = SystemTime::now();
            let wait = next
                .iter()
                .flatten()
                .min()
                .map(|t| t.duration_since(now).unwrap_or(Duration::ZERO))
                .unwrap_or(self.slice);
            thread::sleep(wait.min(self.slice));
        }

        // Stopping: wait, bounded, for the running jobs.
        let deadline = Instant::now() + self.grace;
        let mut state = shared.lock();
        while state.running.iter().any(|r| *r) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = shared
                .done
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        summary.succeeded = state.succeeded;
        summary.failed = state.failed;
        let running = state.running.clone();
        drop(state);
        for (i, r) in running.into_iter().enumerate() {
            if r {
                let job = self.jobs[i].name.clone();
                summary.abandoned.push(job.clone());
                self.emit(Event::Abandoned { job });
            }
        }
        // Threads that ended are joined; the others are detached.
        for h in handles {
            if h.is_finished() {
                let _ = h.join();
            }
        }
        summary
    }

    /// Starts job `i` (due at `due`) on a new thread, or skips it when it is still running.
    /// Returns false, starting nothing, once `stop` is set.
    #[allow(clippy::too_many_arguments)]
    fn fire(
        &self,
        i: usize,
        job: &Job,
        due: SystemTime,
        stop: &StopFlag,
        shared: &Arc<Shared>,
        summary: &mut Summary,
        handles: &mut Vec<thread::JoinHandle<()>>,
    ) -> bool {
        {
            let mut state = shared.lock();
            // Checked under the lock: a job that sets `stop` and then ends has its end recorded
            // under this lock, so its own next run never starts.
            if stop.is_stopped() {
                return false;
            }
            if state.running[i] {
                drop(state);
                summary.skipped += 1;
                self.emit(Event::Skipped {
                    job: job.name.clone(),
                    scheduled: due,
                });
                return true;
            }
            state.running[i] = true;
        }
        summary.started += 1;
        self.emit(Event::Started {
            job: job.name.clone(),
            scheduled: due,
        });
        let body = job.run.clone();
        let sink = self.sink.clone();
        let name = job.name.clone();
        let thread_shared = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("job {}", job.name))
            .spawn(move || {
                let began = Instant::now();
                let result = catch_unwind(AssertUnwindSafe(|| body())).unwrap_or_else(|panic| {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(Error::new(
                        ErrorKind::Other,
                        format!("job {name} panicked: {msg}"),
                    ))
                });
                let elapsed = began.elapsed();
                let error = result.err();
                let failed = error.is_some();
                if let Some(sink) = &sink {
                    sink(&Event::Finished {
                        job: name,
                        elapsed,
                        error,
                    });
                }
                finish(&thread_shared, i, failed);
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                let error = Error::io(e, format!("starting job {}", job.name));
                self.emit(Event::Finished {
                    job: job.name.clone(),
                    elapsed: Duration::ZERO,
                    error: Some(error),
                });
                finish(shared, i, true);
            }
        }
        true
    }
}

/// Records the end of a run of job `i` and wakes a runner waiting to stop.
fn finish(shared: &Shared, i: usize, failed: bool) {
    let mut state = shared.lock();
    state.running[i] = false;
    if failed {
        state.failed += 1;
    } else {
        state.succeeded += 1;
    }
    drop(state);
    shared.done.notify_all();
}

/// The run after one due at `due`, handled at `now`: the schedule's next time after `due`
/// (a steady rhythm for intervals), or after `now` when that is already past (missed runs are
/// made up once, not in a burst).
fn next_run(schedule: &Schedule, due: SystemTime, now: SystemTime) -> Option<SystemTime> {
    match schedule.next_after(due) {
        Some(t) if t > now => Some(t),
        _ => schedule.next_after(now),
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("jobs", &self.jobs)
            .field("grace", &self.grace)
            .field("slice", &self.slice)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
pub(super) fn next_run_for_test(
    schedule: &Schedule,
    due: SystemTime,
    now: SystemTime,
) -> Option<SystemTime> {
    next_run(schedule, due, now)
}
