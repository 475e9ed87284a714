//! Per-host request slots and request spacing.
//!
//! Each registry host gets a [`Throttle`] with `reqConcurrent` slots (default 3); a request holds
//! a slot ([`Guard`]) from before it is sent until its body is consumed, and the slot is released
//! when the guard drops, even on panic.
//!
//! When several requests wait, the next free slot goes to the most urgent one: HEAD requests,
//! then manifests, then other small queries (tag lists, referrers), and only then blobs, largest
//! first (starting big transfers early shortens the whole copy), with FIFO order among equals.
//! An image copy stays responsive this way: the manifest lookups that decide what to copy are not
//! stuck behind gigabyte layers.
//!
//! A blob copy between registries needs a slot on the source and on the target at once.
//! Taking them one at a time in arbitrary order can deadlock (copy A→B holds A and waits for B
//! while copy B→A holds B and waits for A), so [`acquire_pair`] always takes them in one global
//! order (host name, then identity); a copy within one host takes two slots of that host in a
//! single step. Callers must not hold other guards while acquiring a pair.
//!
//! `reqPerSec` spacing is a pure reservation: [`Throttle::start_delay`] returns how long the
//! caller must sleep before starting, so tests need no clock.

use std::cmp::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How urgent a waiting request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A HEAD request (existence checks), served first.
    Head,
    /// A manifest GET or PUT.
    Manifest,
    /// Another small request: tag list, catalog, referrers, upload session handling.
    Query,
    /// A blob transfer of this many bytes (0 when unknown), served last, largest first.
    Blob {
        /// Size of the blob in bytes.
        size: u64,
    },
}

impl Priority {
    fn rank(self) -> (u8, u64) {
        match self {
            Priority::Head => (3, 0),
            Priority::Manifest => (2, 0),
            Priority::Query => (1, 0),
            Priority::Blob { size } => (0, size),
        }
    }
}

/// Throttle settings for one host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Requests in flight at once (`reqConcurrent`); at least 1.
    pub concurrent: usize,
    /// Request starts per second (`reqPerSec`); 0 (or anything not positive) is unlimited.
    pub per_sec: f64,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            concurrent: 3,
            per_sec: 0.0,
        }
    }
}

/// The longest spacing `per_sec` can impose, so a tiny rate cannot overflow time arithmetic.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug)]
struct Waiter {
    id: u64,
    priority: Priority,
}

#[derive(Debug, Default)]
struct State {
    active: usize,
    waiters: Vec<Waiter>,
    next_id: u64,
    next_start: Option<Instant>,
}

impl State {
    /// The id of the waiter to serve next: highest rank, then oldest.
    fn best(&self) -> Option<u64> {
        self.waiters
            .iter()
            .max_by(|a, b| {
                a.priority
                    .rank()
                    .cmp(&b.priority.rank())
                    .then_with(|| b.id.cmp(&a.id))
            })
            .map(|w| w.id)
    }

    fn remove(&mut self, id: u64) {
        self.waiters.retain(|w| w.id != id);
    }
}

#[derive(Debug)]
struct Shared {
    host: String,
    limit: usize,
    interval: Option<Duration>,
    state: Mutex<State>,
    changed: Condvar,
}

/// The slots of one host; clones share them.
#[derive(Debug, Clone)]
pub struct Throttle(Arc<Shared>);

/// One or more slots of a [`Throttle`], released on drop.
#[derive(Debug)]
#[must_use = "the slot is released when the guard drops"]
pub struct Guard {
    throttle: Throttle,
    slots: usize,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut st = self.throttle.lock();
        st.active = st.active.saturating_sub(self.slots);
        drop(st);
        self.throttle.0.changed.notify_all();
    }
}

impl Guard {
    /// The number of slots held.
    pub fn slots(&self) -> usize {
        self.slots
    }
}

/// Slots on a source and a target host, held together.
#[derive(Debug)]
#[must_use = "the slots are released when the guard drops"]
pub struct PairGuard {
    _first: Guard,
    _second: Option<Guard>,
}

impl Throttle {
    /// A throttle for `host`.
    pub fn new(host: &str, config: ThrottleConfig) -> Throttle {
        let interval = (config.per_sec > 0.0 && config.per_sec.is_finite()).then(|| {
            Duration::try_from_secs_f64(1.0 / config.per_sec)
                .map_or(MAX_INTERVAL, |d| d.min(MAX_INTERVAL))
        });
        Throttle(Arc::new(Shared {
            host: host.to_string(),
            limit: config.concurrent.max(1),
            interval,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }))
    }

    /// The host this throttle is for.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// Slots in use.
    pub fn active(&self) -> usize {
        self.lock().active
    }

    /// Requests waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }

    // The state is a few counters that are always consistent between statements, so a panic
    // elsewhere while the lock was held leaves nothing to repair.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a slot, however long other requests take.
    pub fn acquire(&self, priority: Priority) -> Guard {
        match self.acquire_slots(priority, 1, None) {
            Some(g) => g,
            // Without a deadline the wait only ends with a slot.
            None => unreachable!("untimed acquire returned no slot"),
        }
    }

    /// Waits up to `timeout` for a slot.
    pub fn acquire_timeout(&self, priority: Priority, timeout: Duration) -> Option<Guard> {
        self.acquire_slots(priority, 1, Some(deadline_after(timeout)))
    }

    /// Takes a slot only if one is free and nobody is waiting (never jumps the queue).
    pub fn try_acquire(&self) -> Option<Guard> {
        let mut st = self.lock();
        if st.waiters.is_empty() && st.active < self.0.limit {
            st.active += 1;
            return Some(Guard {
                throttle: self.clone(),
                slots: 1,
            });
        }
        None
    }

    /// Reserves the next request start under `reqPerSec` and returns how long to wait from
    /// `now` before starting. Zero when no rate is configured.
    pub fn start_delay(&self, now: Instant) -> Duration {
        let Some(interval) = self.0.interval else {
            return Duration::ZERO;
        };
        let mut st = self.lock();
        let start = match st.next_start {
            Some(t) if t > now => t,
            _ => now,
        };
        st.next_start = start.checked_add(interval);
        start - now
    }

    fn acquire_slots(
        &self,
        priority: Priority,
        need: usize,
        deadline: Option<Instant>,
    ) -> Option<Guard> {
        // Asking for more slots than exist would wait forever; a pair on a one-slot host
        // shares the slot.
        let need = need.clamp(1, self.0.limit);
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.waiters.push(Waiter { id, priority });
        // Observers (and tests) wait on the same condvar for queue changes.
        self.0.changed.notify_all();
        // Each round is a wakeup after a release, a new waiter or a timeout; the loop ends when
        // this waiter is first in line and its slots are free, or at the deadline.
        loop {
            if st.best() == Some(id) && st.active + need <= self.0.limit {
                st.remove(id);
                st.active += need;
                drop(st);
                // Slots may remain for the next waiter in line.
                self.0.changed.notify_all();
                return Some(Guard {
                    throttle: self.clone(),
                    slots: need,
                });
            }
            match deadline {
                None => st = self.0.changed.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        st.remove(id);
                        drop(st);
                        // This waiter may have been blocking the line.
                        self.0.changed.notify_all();
                        return None;
                    }
                    st = self
                        .0
                        .changed
                        .wait_timeout(st, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Blocks until at least `n` requests wait or `timeout` passes; true if they do. For tests
    /// and diagnostics.
    pub fn wait_for_waiters(&self, n: usize, timeout: Duration) -> bool {
        let deadline = deadline_after(timeout);
        let mut st = self.lock();
        // Bounded by the deadline.
        while st.waiters.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .0
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    fn order(&self, other: &Throttle) -> Ordering {
        self.host()
            .cmp(other.host())
            .then_with(|| (Arc::as_ptr(&self.0) as usize).cmp(&(Arc::as_ptr(&other.0) as usize)))
    }
}

/// The deadline `timeout` from now; absurd timeouts are capped at a year so the addition
/// cannot overflow.
fn deadline_after(timeout: Duration) -> Instant {
    Instant::now() + timeout.min(Duration::from_secs(365 * 24 * 3600))
}

/// Acquires a slot on both `a` and `b` (source and target of a blob copy) without risking
/// deadlock: throttles are taken in a fixed global order, and a pair on one throttle takes two
/// of its slots at once (one if the host has only one).
pub fn acquire_pair(a: &Throttle, b: &Throttle, priority: Priority) -> PairGuard {
    if Arc::ptr_eq(&a.0, &b.0) {
        let guard = match a.acquire_slots(priority, 2, None) {
            Some(g) => g,
            None => unreachable!("untimed acquire returned no slot"),
        };
        return PairGuard {
            _first: guard,
            _second: None,
        };
    }
    let (first, second) = if a.order(b) == Ordering::Greater {
        (b, a)
    } else {
        (a, b)
    };
    let first = first.acquire(priority);
    let second = second.acquire(priority);
    PairGuard {
        _first: first,
        _second: Some(second),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;

    const LONG: Duration = Duration::from_secs(10);

    fn throttle(host: &str, concurrent: usize) -> Throttle {
        Throttle::new(
            host,
            ThrottleConfig {
                concurrent,
                per_sec: 0.0,
            },
        )
    }

    #[test]
    fn slots_are_limited_and_released_on_drop() {
        let t = throttle("reg.io", 3);
        let g1 = t.acquire(Priority::Manifest);
        let g2 = t.acquire(Priority::Head);
        let g3 = t.try_acquire().expect("third slot");
        assert_eq!(t.active(), 3);
        assert!(t.try_acquire().is_none());
        drop(g2);
        assert_eq!(t.active(), 2);
        let g4 = t.try_acquire().expect("freed slot");
        drop((g1, g3, g4));
        assert_eq!(t.active(), 0);
        // Zero concurrency is treated as one slot, not a deadlock.
        let t = throttle("x", 0);
        let _g = t.acquire(Priority::Query);
        assert!(t.try_acquire().is_none());
    }

    #[test]
    fn timeout_gives_up_and_leaves_the_queue() {
        let t = throttle("reg.io", 1);
        let held = t.acquire(Priority::Query);
        assert!(t
            .acquire_timeout(Priority::Head, Duration::from_millis(20))
            .is_none());
        assert_eq!(t.waiting(), 0);
        assert_eq!(t.active(), 1);
        drop(held);
        // A free slot is taken at once, and an enormous timeout does not overflow.
        let g = t.acquire_timeout(Priority::Blob { size: 1 }, Duration::MAX);
        assert_eq!(g.map(|g| g.slots()), Some(1));
    }

    #[test]
    fn small_requests_go_before_blobs() {
        let t = throttle("reg.io", 1);
        let held = t.acquire(Priority::Query);
        let events = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = mpsc::channel();
        let waiters = [
            ("blob-small", Priority::Blob { size: 10 }),
            ("query-1", Priority::Query),
            ("blob-large", Priority::Blob { size: 1 << 30 }),
            ("manifest", Priority::Manifest),
            ("query-2", Priority::Query),
            ("head", Priority::Head),
            ("blob-unknown", Priority::Blob { size: 0 }),
        ];
        let mut handles = Vec::new();
        for (i, (name, prio)) in waiters.iter().copied().enumerate() {
            let (t2, ev, tx) = (t.clone(), events.clone(), done_tx.clone());
            handles.push(thread::spawn(move || {
                let _g = t2.acquire(prio);
                ev.lock().unwrap().push(name);
                tx.send(()).unwrap();
            }));
            // Queue them one by one so FIFO among equals is well defined.
            assert!(t.wait_for_waiters(i + 1, LONG), "{name} never queued");
        }
        drop(held);
        for _ in 0..waiters.len() {
            done_rx
                .recv_timeout(LONG)
                .expect("a waiter never got its slot");
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            *events.lock().unwrap(),
            [
                "head",
                "manifest",
                "query-1",
                "query-2",
                "blob-large",
                "blob-small",
                "blob-unknown"
            ]
        );
        assert_eq!(t.active(), 0);
    }

    #[test]
    fn guard_released_when_holder_panics() {
        let t = throttle("reg.io", 1);
        let t2 = t.clone();
        let result = thread::spawn(move || {
            let _g = t2.acquire(Priority::Query);
            panic!("request failed while holding the slot");
        })
        .join();
        assert!(result.is_err());
        assert_eq!(t.active(), 0);
        assert!(t.try_acquire().is_some());
    }

    #[test]
    fn pairs_in_opposite_orders_do_not_deadlock() {
        let a = throttle("source.io", 1);
        let b = throttle("target.io", 1);
        let (tx, rx) = mpsc::channel();
        let mut handles = Vec::new();
        for swap in [false, true, false, true] {
            let (a, b, tx) = (a.clone(), b.clone(), tx.clone());
            handles.push(thread::spawn(move || {
                for _ in 0..200 {
                    let (x, y) = if swap { (&b, &a) } else { (&a, &b) };
                    let _p = acquire_pair(x, y, Priority::Blob { size: 1 });
                    // Both slots are ours while the pair is held.
                    assert_eq!((a.active(), b.active()), (1, 1));
                }
                tx.send(()).unwrap();
            }));
        }
        for _ in 0..4 {
            rx.recv_timeout(LONG).expect("pair acquisition deadlocked");
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!((a.active(), b.active()), (0, 0));
    }

    #[test]
    fn pair_on_one_host_takes_two_slots_at_once() {
        let t = throttle("reg.io", 3);
        let p = acquire_pair(&t, &t.clone(), Priority::Blob { size: 5 });
        assert_eq!(t.active(), 2);
        let g = t.try_acquire().expect("third slot");
        assert!(t.try_acquire().is_none());
        drop(p);
        assert_eq!(t.active(), 1);
        drop(g);

        // A one-slot host shares its slot between source and target.
        let one = throttle("small.io", 1);
        let p = acquire_pair(&one, &one, Priority::Query);
        assert_eq!(one.active(), 1);
        drop(p);
        assert_eq!(one.active(), 0);
    }

    #[test]
    fn pair_waits_for_both_in_global_order() {
        // The pair must take "a.io" before "b.io" whatever the argument order: while a.io is
        // busy, nothing of b.io may be held by the waiting pair.
        let a = throttle("a.io", 1);
        let b = throttle("b.io", 1);
        let held = a.acquire(Priority::Query);
        let (tx, rx) = mpsc::channel();
        let (a2, b2) = (a.clone(), b.clone());
        let h = thread::spawn(move || {
            let _p = acquire_pair(&b2, &a2, Priority::Manifest);
            tx.send(()).unwrap();
        });
        assert!(a.wait_for_waiters(1, LONG));
        assert_eq!(b.active(), 0, "b.io taken before a.io");
        assert!(rx.try_recv().is_err());
        drop(held);
        rx.recv_timeout(LONG).expect("pair never acquired");
        h.join().unwrap();
        assert_eq!((a.active(), b.active()), (0, 0));
    }

    #[test]
    fn request_spacing() {
        let t = Throttle::new(
            "reg.io",
            ThrottleConfig {
                concurrent: 3,
                per_sec: 10.0,
            },
        );
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(t.start_delay(t0), Duration::ZERO);
        assert_eq!(t.start_delay(t0), ms(100));
        assert_eq!(t.start_delay(t0), ms(200));
        assert_eq!(t.start_delay(t0 + ms(250)), ms(50));
        // After a quiet period the next start is immediate again.
        assert_eq!(t.start_delay(t0 + ms(5000)), Duration::ZERO);
        assert_eq!(t.start_delay(t0 + ms(5000)), ms(100));

        let unlimited = throttle("x", 3);
        assert_eq!(unlimited.start_delay(t0), Duration::ZERO);
        assert_eq!(unlimited.start_delay(t0), Duration::ZERO);

        // Absurd rates stay finite.
        let slow = Throttle::new(
            "y",
            ThrottleConfig {
                concurrent: 1,
                per_sec: 1e-300,
            },
        );
        assert_eq!(slow.start_delay(t0), Duration::ZERO);
        assert_eq!(slow.start_delay(t0), MAX_INTERVAL);
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let t = Throttle::new(
                "z",
                ThrottleConfig {
                    concurrent: 1,
                    per_sec: bad,
                },
            );
            t.start_delay(t0);
            assert_eq!(t.start_delay(t0), Duration::ZERO, "{bad}");
        }
    }
}
