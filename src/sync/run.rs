//! Running sync entries: the per-image decision, repository and registry expansion, reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::config::{render, Config, SyncEntry, SyncType};
use super::filter::filter_tags;
use crate::scheme::TagOpts;
use crate::template::Value;
use crate::{Client, Digest, Error, ErrorKind, Reference, Result};

/// How entries run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Copy whatever differs.
    Copy,
    /// Copy only tags absent on the target.
    Missing,
    /// Copy nothing; report what would change.
    Check,
}

/// Log levels of [`LogFn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details.
    Debug,
    /// Normal progress.
    Info,
    /// Something odd that did not fail the entry.
    Warn,
    /// A failure.
    Error,
}

/// Receives log lines: level, message, key/value fields.
pub type LogFn = dyn Fn(Level, &str, &[(&str, &str)]) + Sync;

/// What happened to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Copied to the target.
    Copied,
    /// Nothing to do.
    Skipped,
    /// The copy (or a check) failed.
    Failed,
    /// Check mode: a copy is needed.
    WouldCopy,
}

/// The outcome for one image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageReport {
    /// Source reference.
    pub source: String,
    /// Target reference.
    pub target: String,
    /// Source manifest digest (empty when unknown).
    pub source_digest: String,
    /// Target digest before the run (empty when absent).
    pub target_digest_before: String,
    /// Target digest after the run (empty when absent).
    pub target_digest_after: String,
    /// What was done.
    pub action: Action,
    /// Why it was skipped, when skipped.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Bytes streamed.
    pub bytes: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// Error text, when failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome for one sync entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryReport {
    /// Index in the `sync` list.
    pub index: usize,
    /// Entry source.
    pub source: String,
    /// Entry target.
    pub target: String,
    /// Entry type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Entry-level error (listing, filtering), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Images handled.
    pub images: Vec<ImageReport>,
}

impl EntryReport {
    /// Did anything in this entry fail?
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.images.iter().any(|i| i.action == Action::Failed)
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Mode name (`once`, `missing`, `check`).
    pub mode: String,
    /// One per entry run.
    pub entries: Vec<EntryReport>,
}

impl Report {
    /// Did anything fail?
    pub fn failed(&self) -> bool {
        self.entries.iter().any(|e| e.failed())
    }

    /// Errors, one line each.
    pub fn errors(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.entries {
            if let Some(err) = &e.error {
                out.push(format!("sync[{}] {}: {err}", e.index, e.source));
            }
            for i in &e.images {
                if let Some(err) = &i.error {
                    out.push(format!("{} -> {}: {err}", i.source, i.target));
                }
            }
        }
        out
    }
}

/// Runs the entries of a configuration against a client.
pub struct Runner<'a> {
    client: &'a Client,
    config: &'a Config,
    mode: Mode,
    abort_on_error: bool,
    log: &'a LogFn,
    aborted: AtomicBool,
    platform_cache: Mutex<BTreeMap<(String, String), Digest>>,
    /// Images being written per layout path: closing a layout collects unreferenced blobs, so
    /// it waits until no other entry is writing there.
    inflight: Mutex<BTreeMap<String, usize>>,
    /// Overrides `ratelimit.retry` (see [`Runner::ratelimit_poll`]).
    ratelimit_poll: Option<Duration>,
    /// Longest total wait for one image before giving up (see [`Runner::ratelimit_max_wait`]).
    ratelimit_max_wait: Duration,
    /// Manifests this run found or put at targets: the tags of a repository mostly share
    /// their children, which are then checked once per run instead of once per tag.
    seen: std::sync::Arc<crate::copy::Seen>,
}

/// Default for [`Runner::ratelimit_max_wait`]: a Docker Hub window is 6 hours.
pub const RATELIMIT_MAX_WAIT: Duration = Duration::from_secs(6 * 3600);

fn is_not_found(e: &Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.status() == Some(404)
}

impl<'a> Runner<'a> {
    /// A runner; nothing happens until [`Runner::run`].
    pub fn new(client: &'a Client, config: &'a Config, mode: Mode, log: &'a LogFn) -> Runner<'a> {
        Runner {
            client,
            config,
            mode,
            abort_on_error: false,
            log,
            aborted: AtomicBool::new(false),
            platform_cache: Mutex::default(),
            inflight: Mutex::default(),
            ratelimit_poll: None,
            ratelimit_max_wait: RATELIMIT_MAX_WAIT,
            seen: Default::default(),
        }
    }

    /// Waits `poll` between rate-limit checks instead of the entry's `ratelimit.retry`.
    ///
    /// For tests and embedders only: configuration files keep the 5 minute minimum of
    /// `ratelimit.retry`, and the `regsync` command never sets this.
    pub fn ratelimit_poll(mut self, poll: Duration) -> Self {
        self.ratelimit_poll = Some(poll);
        self
    }

    /// Gives up on an image (it fails with a "rate limit" error) once its rate-limit waits add
    /// up to more than `max` ([`RATELIMIT_MAX_WAIT`] by default). The check before the first
    /// wait always happens.
    pub fn ratelimit_max_wait(mut self, max: Duration) -> Self {
        self.ratelimit_max_wait = max;
        self
    }

    /// Stop at the first failure.
    pub fn abort_on_error(mut self, v: bool) -> Self {
        self.abort_on_error = v;
        self
    }

    /// Runs every entry (concurrently when `defaults.parallel > 1`).
    pub fn run(&self) -> Report {
        let entries = &self.config.sync;
        let parallel = self.config.defaults.parallel.max(1) as usize;
        let mut results: Vec<Option<EntryReport>> = vec![None; entries.len()];
        // Check mode is a sequential dry run.
        if parallel <= 1 || entries.len() <= 1 || self.mode == Mode::Check {
            for (i, e) in entries.iter().enumerate() {
                if self.aborted.load(Ordering::SeqCst) {
                    break;
                }
                results[i] = Some(self.run_entry(i, e));
            }
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let out = Mutex::new(&mut results);
            std::thread::scope(|s| {
                for _ in 0..parallel.min(entries.len()) {
                    s.spawn(|| loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= entries.len() || self.aborted.load(Ordering::SeqCst) {
                            break;
                        }
                        let r = self.run_entry(i, &entries[i]);
                        out.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                    });
                }
            });
        }
        Report {
            mode: match self.mode {
                Mode::Copy => "once",
                Mode::Missing => "missing",
                Mode::Check => "check",
            }
            .to_string(),
            entries: results.into_iter().flatten().collect(),
        }
    }

    /// Runs one entry.
    pub fn run_entry(&self, index: usize, e: &SyncEntry) -> EntryReport {
        let mut rep = EntryReport {
            index,
            source: e.source.clone(),
            target: e.target.clone(),
            kind: e.kind.clone(),
            error: None,
            images: Vec::new(),
        };
        if let Err(err) = self.entry(e, &mut rep.images) {
            (self.log)(
                Level::Error,
                "Failed to sync",
                &[
                    ("source", &e.source),
                    ("target", &e.target),
                    ("err", &err.to_string()),
                ],
            );
            rep.error = Some(err.to_string());
        }
        if self.abort_on_error && rep.failed() {
            self.aborted.store(true, Ordering::SeqCst);
        }
        rep
    }

    fn entry(&self, e: &SyncEntry, out: &mut Vec<ImageReport>) -> Result<()> {
        match e.sync_type()? {
            SyncType::Image => {
                let src = Reference::parse(&e.source)?;
                let tgt = Reference::parse(&e.target)?;
                out.push(self.image(e, &src, &tgt));
                Ok(())
            }
            SyncType::Repository => {
                let src = Reference::parse(&e.source)?;
                let tgt = Reference::parse(&e.target)?;
                self.repository(e, &src, &tgt, out)
            }
            SyncType::Registry => {
                // The catalog is read from the registry part of the source.
                let full = Reference::parse(&format!("{}/repo", e.source))?;
                let src = Reference::parse_host(&full.registry)?;
                let prefix = if e.source.contains('/') {
                    full.repository
                        .strip_suffix("repo")
                        .unwrap_or_default()
                        .to_string()
                } else {
                    // `docker.io` alone must not become the `library/` prefix.
                    String::new()
                };
                let filter = e.repos.compile()?;
                let mut repos = Vec::new();
                let mut last: Option<String> = None;
                loop {
                    let page = self
                        .client
                        .registry()
                        .repo_list(&src, last.as_deref(), None)?;
                    let before = repos.len();
                    for r in page.repositories {
                        if last.as_deref() == Some(r.as_str()) || repos.contains(&r) {
                            continue;
                        }
                        repos.push(r);
                    }
                    if repos.len() == before || repos.len() > 1_000_000 {
                        break;
                    }
                    last = repos.last().cloned();
                }
                // With a source prefix, only repositories under it count, named relative to it.
                let mut repos: Vec<String> = repos
                    .into_iter()
                    .filter_map(|r| r.strip_prefix(prefix.as_str()).map(str::to_string))
                    .collect();
                repos.retain(|r| filter.matches(r));
                for repo in repos {
                    if self.aborted.load(Ordering::SeqCst) {
                        break;
                    }
                    let s = Reference::parse(&format!("{}/{repo}", e.source))?;
                    let t = Reference::parse(&format!("{}/{repo}", e.target))?;
                    if let Err(err) = self.repository(e, &s, &t, out) {
                        (self.log)(
                            Level::Error,
                            "Failed to sync repository",
                            &[("source", &s.common_name()), ("err", &err.to_string())],
                        );
                        out.push(failed(&s, &t, err));
                        if self.abort_on_error {
                            break;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn list_tags(&self, r: &Reference) -> Result<Vec<String>> {
        // Backends follow their own pagination and return every tag.
        let list = self.client.scheme(r)?.tag_list(r, &TagOpts::default())?;
        Ok(list.tags)
    }

    fn repository(
        &self,
        e: &SyncEntry,
        src: &Reference,
        tgt: &Reference,
        out: &mut Vec<ImageReport>,
    ) -> Result<()> {
        let all = self.list_tags(src)?;
        let mut tags = filter_tags(&all, &e.tag_filters())?;
        if tags.is_empty() {
            (self.log)(
                Level::Warn,
                "No matching tags found",
                &[("source", &src.common_name())],
            );
            return Ok(());
        }
        if self.mode == Mode::Missing {
            match self.list_tags(tgt) {
                Ok(existing) => tags.retain(|t| !existing.contains(t)),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err),
            }
        }
        for t in tags {
            if self.aborted.load(Ordering::SeqCst) {
                break;
            }
            let rep = self.image(e, &src.set_tag(&t), &tgt.set_tag(&t));
            out.push(rep);
        }
        Ok(())
    }

    fn head_digest(&self, r: &Reference) -> Result<(Digest, String)> {
        let scheme = self.client.scheme(r)?;
        let h = scheme.manifest_head(r)?;
        if let Some(d) = h.digest {
            if !h.media_type.is_empty() {
                return Ok((d, h.media_type));
            }
        }
        let m = scheme.manifest_get(r)?;
        Ok((m.digest().clone(), m.media_type().to_string()))
    }

    /// Syncs one image, never failing: the outcome is in the report.
    pub fn image(&self, e: &SyncEntry, src: &Reference, tgt: &Reference) -> ImageReport {
        let start = Instant::now();
        let mut rep = ImageReport {
            source: src.common_name(),
            target: tgt.common_name(),
            source_digest: String::new(),
            target_digest_before: String::new(),
            target_digest_after: String::new(),
            action: Action::Skipped,
            reason: String::new(),
            bytes: 0,
            duration_ms: 0,
            error: None,
        };
        let layout = (tgt.scheme == crate::reference::Scheme::OciDir).then(|| tgt.path.clone());
        if let Some(p) = &layout {
            *self.inflight_map().entry(p.clone()).or_default() += 1;
        }
        if let Err(err) = self.image_inner(e, src, tgt, &mut rep) {
            (self.log)(
                Level::Error,
                "Failed to copy image",
                &[
                    ("source", &rep.source),
                    ("target", &rep.target),
                    ("err", &err.to_string()),
                ],
            );
            rep.action = Action::Failed;
            rep.error = Some(err.to_string());
            if self.abort_on_error {
                self.aborted.store(true, Ordering::SeqCst);
            }
        }
        // The lock is held while closing, so no other image starts writing to the layout
        // during its garbage collection.
        let mut map = self.inflight_map();
        let last = match &layout {
            Some(p) => {
                let n = map.entry(p.clone()).or_default();
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => true,
        };
        if last {
            if let Ok(s) = self.client.scheme(tgt) {
                if let Err(err) = s.close(tgt) {
                    (self.log)(Level::Warn, "closing target", &[("err", &err.to_string())]);
                }
            }
        }
        drop(map);
        rep.duration_ms = start.elapsed().as_millis() as u64;
        rep
    }

    fn inflight_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, usize>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn image_inner(
        &self,
        e: &SyncEntry,
        src: &Reference,
        tgt: &Reference,
        rep: &mut ImageReport,
    ) -> Result<()> {
        let fields = [
            ("source", rep.source.clone()),
            ("target", rep.target.clone()),
        ];
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // The target first: `head_known` says the HEAD answered (found or 404), so the copy
        // need not ask again.
        let (tgt_digest, head_known) = match self.head_digest(tgt) {
            Ok((d, _)) => (Some(d), true),
            Err(err) if is_not_found(&err) => (None, true),
            Err(err) => {
                (self.log)(
                    Level::Debug,
                    "target HEAD failed",
                    &[("err", &err.to_string())],
                );
                (None, false)
            }
        };
        // Nothing at the target: a copy follows (unless filtered out below) and needs the
        // source manifest, so one GET serves both the comparison and the copy. Not in check
        // mode, and not while rate limits are watched (a GET counts as a pull; the limit is
        // checked with HEADs first), and not for a single platform (the copy reads the index
        // and the platform's manifest itself).
        let prefetch = head_known
            && tgt_digest.is_none()
            && self.mode != Mode::Check
            && e.opts.ratelimit.min <= 0
            && e.platform.is_empty();
        let (src_digest, src_mt, src_manifest) = if prefetch {
            let m = self.client.scheme(src)?.manifest_get(src)?;
            (m.digest().clone(), m.media_type().to_string(), Some(m))
        } else {
            let (d, mt) = self.head_digest(src)?;
            (d, mt, None)
        };
        rep.source_digest = src_digest.to_string();
        rep.target_digest_before = tgt_digest
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default();
        rep.target_digest_after = rep.target_digest_before.clone();
        let fast = e.opts.fast_check.unwrap_or(false);
        let deep = e.opts.force_recursive.unwrap_or(false)
            || e.opts.referrers.unwrap_or(false)
            || e.opts.digest_tags.unwrap_or(false);
        let mut src_cmp = src_digest.clone();
        if tgt_digest.as_ref() == Some(&src_cmp) && (fast || !deep) {
            rep.reason = "matches".into();
            (self.log)(Level::Debug, "Image matches", &f);
            return Ok(());
        }
        if tgt_digest.is_some() && self.mode == Mode::Missing {
            rep.reason = "exists".into();
            (self.log)(Level::Debug, "Image exists, missing mode", &f);
            return Ok(());
        }
        if !e.opts.media_types.iter().any(|m| m == &src_mt) {
            rep.reason = format!("media type {src_mt} not allowed");
            (self.log)(
                Level::Info,
                "Skipping image with unsupported media type",
                &f,
            );
            return Ok(());
        }
        if !e.platform.is_empty() && crate::mediatype::is_index(&src_mt) {
            let key = (src_digest.to_string(), e.platform.clone());
            let cached = self
                .platform_cache
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .cloned();
            let d = match cached {
                Some(d) => d,
                None => {
                    let p = crate::Platform::parse(&e.platform)?;
                    let m = self
                        .client
                        .manifest_get_platform(&src.set_digest(&src_digest.to_string()), &p)?;
                    let d = m.digest().clone();
                    self.platform_cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key, d.clone());
                    d
                }
            };
            src_cmp = d;
            if tgt_digest.as_ref() == Some(&src_cmp) && (fast || !deep) {
                rep.reason = "matches".into();
                (self.log)(Level::Debug, "Image matches for platform", &f);
                return Ok(());
            }
        }
        if self.mode == Mode::Check {
            rep.action = Action::WouldCopy;
            let msg = if tgt_digest.is_none() {
                "Image sync needed"
            } else {
                "Image refreshing"
            };
            (self.log)(Level::Info, msg, &f);
            return Ok(());
        }
        self.ratelimit_wait(e, src, &f)?;
        if let Some(td) = &tgt_digest {
            if *td != src_cmp && !e.opts.backup.is_empty() {
                if let Err(err) = self.backup(e, tgt, td) {
                    (self.log)(
                        Level::Warn,
                        "Failed to backup existing image",
                        &[("target", &rep.target), ("err", &err.to_string())],
                    );
                }
            }
        }
        (self.log)(Level::Info, "Image sync running", &f);
        let mut opts = e.copy_opts()?;
        if head_known {
            opts.target_head = Some(tgt_digest.clone());
        }
        opts.source_manifest = src_manifest;
        opts.seen = Some(self.seen.clone());
        let src_scheme = self.client.scheme(src)?;
        let tgt_scheme = self.client.scheme(tgt)?;
        let cr = crate::copy::image_copy(
            src_scheme,
            src,
            tgt_scheme,
            tgt,
            &opts,
            self.client.pool(),
            &|_| {},
        )?;
        rep.bytes = cr.bytes_copied;
        rep.target_digest_after = cr.digest.to_string();
        rep.action = if cr.skipped {
            Action::Skipped
        } else {
            Action::Copied
        };
        if cr.skipped {
            rep.reason = "matches".into();
        }
        Ok(())
    }

    /// While a registry source reports fewer remaining pulls than `ratelimit.min`, waits
    /// `ratelimit.retry` (or [`Runner::ratelimit_poll`]) and asks again with a HEAD, which does
    /// not count as a pull. Gives up after [`Runner::ratelimit_max_wait`] in total.
    ///
    /// Nothing is held while sleeping: the target layout's in-flight count is a counter, not a
    /// lock, and no registry connection or throttle slot is kept (the HEAD response is
    /// complete). This implementation has no image-level copy slot to release: concurrency is
    /// `defaults.parallel` entry threads, so a waiting image occupies only its own entry's
    /// thread and other entries keep running.
    fn ratelimit_wait(&self, e: &SyncEntry, src: &Reference, f: &[(&str, &str)]) -> Result<()> {
        if e.opts.ratelimit.min <= 0 || src.scheme != crate::reference::Scheme::Registry {
            return Ok(());
        }
        let scheme = self.client.scheme(src)?;
        let poll = self.ratelimit_poll.unwrap_or(e.opts.ratelimit.retry.0);
        let mut waited = Duration::ZERO;
        loop {
            let h = scheme.manifest_head(src)?;
            let hdrs: Vec<(&str, &str)> = h
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let rl = crate::ratelimit::RateLimit::from_headers(&hdrs);
            if !rl.set || rl.remain >= e.opts.ratelimit.min {
                return Ok(());
            }
            let remain = rl.remain.to_string();
            let min = e.opts.ratelimit.min.to_string();
            let wait = crate::config::GoDuration(poll).to_string();
            let mut fields = f.to_vec();
            fields.extend([
                ("remain", remain.as_str()),
                ("min", min.as_str()),
                ("retry", wait.as_str()),
            ]);
            if waited + poll > self.ratelimit_max_wait {
                let total = crate::config::GoDuration(waited).to_string();
                fields.push(("waited", total.as_str()));
                (self.log)(Level::Error, "Rate limit wait exceeded", &fields);
                return Err(Error::new(
                    ErrorKind::RateLimit,
                    format!(
                        "rate limit: {remain} remaining (min {min}) after waiting {total}, giving up"
                    ),
                ));
            }
            (self.log)(Level::Info, "Delaying for rate limit", &fields);
            std::thread::sleep(poll);
            waited += poll;
        }
    }

    fn backup(&self, e: &SyncEntry, tgt: &Reference, digest: &Digest) -> Result<()> {
        let ref_val = serde_json::json!({
            "Registry": tgt.registry, "Repository": tgt.repository, "Tag": tgt.tag,
            "Digest": tgt.digest, "Reference": tgt.common_name(),
        });
        let data = Value::Map(BTreeMap::from([
            ("Ref".to_string(), Value::Json(ref_val)),
            ("Step".to_string(), Value::Map(BTreeMap::new())),
            ("Sync".to_string(), e.template_value()),
        ]));
        let name = render(&e.opts.backup, &data)?;
        let bref = if name.contains(':') || name.contains('/') {
            Reference::parse(&name)?
        } else {
            tgt.set_tag(&name)
        };
        (self.log)(
            Level::Info,
            "Saving backup",
            &[
                ("original", &tgt.common_name()),
                ("backup", &bref.common_name()),
            ],
        );
        let s = self.client.scheme(tgt)?;
        let b = self.client.scheme(&bref)?;
        let from = tgt.set_digest(&digest.to_string());
        crate::copy::image_copy(
            s,
            &from,
            b,
            &bref,
            &Default::default(),
            self.client.pool(),
            &|_| {},
        )?;
        Ok(())
    }
}

fn failed(src: &Reference, tgt: &Reference, err: Error) -> ImageReport {
    ImageReport {
        source: src.common_name(),
        target: tgt.common_name(),
        source_digest: String::new(),
        target_digest_before: String::new(),
        target_digest_after: String::new(),
        action: Action::Failed,
        reason: String::new(),
        bytes: 0,
        duration_ms: 0,
        error: Some(err.to_string()),
    }
}
