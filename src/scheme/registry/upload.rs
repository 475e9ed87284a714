//! The blob upload state machine, as pure code.
//!
//! [`Upload`] never touches the network or the input: it is fed a [`Reply`] summarising each
//! response (status, `Location`, `Range`, `OCI-Chunk-Min-Length`, `Docker-Content-Digest`) and
//! answers with the next [`Action`]. The I/O loop in `blob.rs` performs the actions.
//!
//! Protocol (OCI distribution spec, "Pushing blobs"; regclient `BlobPut`):
//!
//! 1. Optional mount: `POST blobs/uploads/?mount=<d>[&from=<repo>]`. 201 = done. 202 with a
//!    `Location` is an upload session the registry opened for us: the upload continues in it
//!    (no second POST). Anything else falls back to a plain POST.
//! 2. `POST blobs/uploads/` → 202 + `Location` (missing → "location header missing").
//! 3. Monolithic `PUT <location>&digest=<d>` with `Content-Length` when `blob_max` allows
//!    (`blob_max` ≤ 0: always; otherwise only for sizes ≤ `blob_max`) and no body cap learned
//!    from an earlier 413 rules it out. 201/204 = done.
//! 4. A monolithic failure that is not an auth failure, with a rewindable input, falls back to
//!    chunked upload from byte 0 **in a fresh session**: the refused session is cancelled and a
//!    new one POSTed. A fresh session is chosen because registries differ on whether a refused
//!    PUT leaves the session usable; a new session is valid everywhere and costs two small
//!    requests. Without a rewindable input: cancel and fail.
//! 5. Chunked: `PATCH <location>` with `Content-Range: <start>-<end>` (inclusive, no unit). The
//!    chunk size is the host `blob_chunk` (default 1 MiB), raised to `OCI-Chunk-Min-Length`
//!    (capped at `blobLimit`, default [`MAX_CHUNK`]), and lowered to a learned body cap after a 413 (GHCR answers 413
//!    above 4 MiB). 202 (or ECR's early 201) moves on to the newest `Location`. Any other answer
//!    asks for the upload status (`GET <location>` → 204 + `Range: 0-<n>`) and resumes from
//!    `n+1`; at most [`MAX_RECOVERIES`] times. A `Range` that goes backwards (stale, ECR/Zot)
//!    resends from the reported offset, which needs a rewindable input.
//! 6. `PUT <location>&digest=<d>` with an empty body → 201/204.
//! 7. Any failure once a session exists cancels it (`DELETE <location>`, errors ignored) before
//!    failing.

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind};
use crate::url::Url;

/// Default chunk size (regclient `blobChunk`).
pub const DEFAULT_CHUNK: u64 = 1 << 20;
/// Largest chunk `OCI-Chunk-Min-Length` may ask for (each chunk is buffered in memory).
pub const MAX_CHUNK: u64 = 64 << 20;
/// The body cap assumed after a 413 when the chunk is above it (GHCR's per-request limit).
pub const BODY_CAP_GUESS: u64 = 4 << 20;
/// Smallest chunk a 413 can shrink the chunk size to.
pub const MIN_CHUNK: u64 = 64 << 10;
/// Status queries (recoveries) allowed in one upload.
pub const MAX_RECOVERIES: u32 = 10;

/// How the upload starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountFrom {
    /// No mount attempt: POST at once.
    None,
    /// `?mount=<digest>` without `from` (the registry may find the blob anywhere).
    Anonymous,
    /// `?mount=<digest>&from=<repo>`.
    Repo(String),
}

/// What the machine needs to know about the blob and the host.
#[derive(Debug, Clone)]
pub struct Config {
    /// Digest of the whole blob (appended to the final PUT).
    pub digest: Digest,
    /// Size of the whole blob.
    pub size: u64,
    /// Media type for the returned descriptor.
    pub media_type: String,
    /// Host `blob_chunk` (≤ 0: [`DEFAULT_CHUNK`]).
    pub blob_chunk: i64,
    /// Host `blob_max` (≤ 0: always monolithic first; else only sizes ≤ it).
    pub blob_max: i64,
    /// The input can be re-read from any offset (needed to fall back from a failed monolithic
    /// PUT and to resend after a stale `Range`).
    pub rewindable: bool,
    /// Mount attempt first.
    pub mount: MountFrom,
    /// A request body cap already learned for this host (a 413 seen earlier).
    pub body_cap: Option<u64>,
    /// Largest chunk to hold in memory (`blobLimit`; 0: [`MAX_CHUNK`]). Caps the host chunk
    /// size and what `OCI-Chunk-Min-Length` may ask for.
    pub chunk_limit: u64,
}

/// A response, summarised. `status` 0 means no HTTP response (network or input failure).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status (0: none).
    pub status: u16,
    /// The URL the request went to, to resolve a relative `Location`.
    pub url: Url,
    /// `Location`, raw.
    pub location: Option<String>,
    /// `Range: 0-<end>` (inclusive).
    pub range: Option<(u64, u64)>,
    /// `OCI-Chunk-Min-Length`.
    pub chunk_min: Option<u64>,
    /// `Docker-Content-Digest`.
    pub digest: Option<Digest>,
    /// The error, for failures (used in the final message).
    pub error: Option<Error>,
}

impl Reply {
    /// A reply from a status, request URL and response headers.
    pub fn from_headers(status: u16, url: Url, headers: &[(String, String)]) -> Reply {
        let h = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        };
        Reply {
            status,
            url,
            location: h("location").filter(|v| !v.is_empty()).map(str::to_string),
            range: h("range").and_then(parse_range),
            chunk_min: h("oci-chunk-min-length").and_then(|v| v.parse().ok()),
            digest: h("docker-content-digest").and_then(|v| Digest::parse(v).ok()),
            error: None,
        }
    }

    /// A failed request: the status when there was one (0 otherwise) and the error.
    pub fn failure(status: u16, url: Url, error: Error) -> Reply {
        Reply {
            status,
            url,
            location: None,
            range: None,
            chunk_min: None,
            digest: None,
            error: Some(error),
        }
    }
}

/// Parses an upload `Range` header: `0-<end>` or `bytes=0-<end>`, inclusive.
pub fn parse_range(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes=").unwrap_or(v);
    let (a, b) = v.split_once('-')?;
    let a = a.trim().parse::<u64>().ok()?;
    let b = b.trim().parse::<u64>().ok()?;
    (b >= a).then_some((a, b))
}

/// Bytes a `Range` says the registry holds. Distribution reports `0-0` for an empty session
/// (and, ambiguously, for one byte); it is read as empty, so at worst one byte is resent.
fn committed(range: Option<(u64, u64)>) -> u64 {
    match range {
        Some((0, 0)) | None => 0,
        Some((_, end)) => end + 1,
    }
}

/// The next thing to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// `POST blobs/uploads/?mount=<digest>[&from=<repo>]` (a failure is expected and fine).
    Mount {
        /// Blob to mount.
        digest: Digest,
        /// Source repository (`None`: anonymous mount).
        from: Option<String>,
    },
    /// `POST blobs/uploads/`.
    Post,
    /// `PUT <url>` (already carrying `digest=`) with the whole blob, `Content-Length: len`.
    PutMonolithic {
        /// Target.
        url: Url,
        /// Body length.
        len: u64,
    },
    /// `PATCH <url>` with bytes `start..=end` and `Content-Range: <start>-<end>`.
    Patch {
        /// Target.
        url: Url,
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// `PUT <url>` (already carrying `digest=`) with an empty body.
    PutFinal {
        /// Target.
        url: Url,
    },
    /// `GET <url>`: upload status.
    GetStatus {
        /// Target.
        url: Url,
    },
    /// `DELETE <url>`: cancel the session (its outcome is ignored).
    Cancel {
        /// Target.
        url: Url,
    },
    /// The blob is stored.
    Done(Descriptor),
    /// The upload failed (any session was cancelled first).
    Failed(Error),
}

#[derive(Debug, Clone)]
enum State {
    Idle,
    Mounting,
    Posting,
    Monolithic,
    /// Waiting for the answer to a PATCH of `start..=end`.
    Chunking {
        start: u64,
        end: u64,
    },
    Status,
    Finalizing,
    Cancelling(After),
    Finished,
}

#[derive(Debug, Clone)]
enum After {
    Fail(Error),
    Repost,
}

/// The upload state machine. Drive it with [`start`](Upload::start), then
/// [`step`](Upload::step) with the reply to each action until `Done` or `Failed`.
#[derive(Debug, Clone)]
pub struct Upload {
    cfg: Config,
    state: State,
    /// Current session URL (newest `Location`).
    url: Option<Url>,
    chunked: bool,
    /// Next byte to send.
    offset: u64,
    /// Highest byte count ever sent (the registry cannot hold more).
    sent: u64,
    recoveries: u32,
    chunk_min: Option<u64>,
    cap: Option<u64>,
}

fn status_of(code: u16) -> &'static str {
    match code {
        0 => "no response",
        _ => "status",
    }
}

impl Upload {
    /// A machine for one blob.
    pub fn new(cfg: Config) -> Upload {
        let cap = cfg.body_cap;
        Upload {
            cfg,
            state: State::Idle,
            url: None,
            chunked: false,
            offset: 0,
            sent: 0,
            recoveries: 0,
            chunk_min: None,
            cap,
        }
    }

    /// The first action.
    pub fn start(&mut self) -> Action {
        match &self.cfg.mount {
            MountFrom::None => self.post(),
            m => {
                let from = match m {
                    MountFrom::Repo(r) => Some(r.clone()),
                    _ => None,
                };
                self.state = State::Mounting;
                Action::Mount {
                    digest: self.cfg.digest.clone(),
                    from,
                }
            }
        }
    }

    /// The chunk size in force now.
    pub fn chunk_size(&self) -> u64 {
        let base = u64::try_from(self.cfg.blob_chunk)
            .ok()
            .filter(|&c| c > 0)
            .unwrap_or(DEFAULT_CHUNK);
        let limit = match self.cfg.chunk_limit {
            0 => MAX_CHUNK,
            l => l,
        };
        let mut c = match self.chunk_min {
            Some(m) => base.max(m.min(limit)),
            None => base,
        };
        if self.cfg.chunk_limit > 0 {
            // An explicit limit also caps the configured chunk size.
            c = c.min(self.cfg.chunk_limit);
        }
        if let Some(cap) = self.cap {
            c = c.min(cap);
        }
        c.max(1)
    }

    /// A body cap learned from a 413 during this upload (or given in the config).
    pub fn body_cap(&self) -> Option<u64> {
        self.cap
    }

    /// Status queries made so far.
    #[cfg(test)]
    pub fn recoveries(&self) -> u32 {
        self.recoveries
    }

    /// Whether the upload went chunked.
    #[cfg(test)]
    pub fn is_chunked(&self) -> bool {
        self.chunked
    }

    /// The input could not be read (or did not match its digest): cancel and fail.
    pub fn input_failed(&mut self, err: Error) -> Action {
        self.fail(err)
    }

    /// The next action given the reply to the previous one.
    pub fn step(&mut self, reply: Reply) -> Action {
        if let Some(m) = reply.chunk_min {
            self.chunk_min = Some(self.chunk_min.map_or(m, |c| c.max(m)));
        }
        let ok = (200..300).contains(&reply.status);
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Idle | State::Finished => Action::Failed(Error::new(
                ErrorKind::Other,
                "upload state machine stepped outside an upload",
            )),
            State::Mounting => {
                if reply.status == 201 {
                    return self.done();
                }
                if reply.status == 202 {
                    if let Some(u) = self.resolve(&reply) {
                        self.url = Some(u);
                        return self.begin();
                    }
                }
                self.post()
            }
            State::Posting => {
                if !ok {
                    return self.fail(reply_error(&reply, "starting the upload"));
                }
                match self.resolve(&reply) {
                    Some(u) => {
                        self.url = Some(u);
                        self.begin()
                    }
                    None => self.fail(Error::new(
                        ErrorKind::HttpStatus,
                        "location header missing in upload response",
                    )),
                }
            }
            State::Monolithic => {
                if ok {
                    return self.done();
                }
                let err = reply_error(&reply, "monolithic upload");
                // Learn the cap even when this upload cannot fall back: the caller's retry
                // then goes chunked at once.
                if reply.status == 413 {
                    self.cap = Some(self.cap.unwrap_or(BODY_CAP_GUESS).min(BODY_CAP_GUESS));
                }
                if is_auth(&reply) || !self.cfg.rewindable {
                    return self.fail(err);
                }
                self.chunked = true;
                self.offset = 0;
                self.sent = 0;
                match self.url.take() {
                    Some(url) => {
                        self.state = State::Cancelling(After::Repost);
                        Action::Cancel { url }
                    }
                    None => self.post(),
                }
            }
            State::Chunking { start, end } => {
                if reply.status == 201 || reply.status == 202 {
                    // 201 is ECR answering early; the final PUT still follows.
                    if let Some(u) = self.resolve(&reply) {
                        self.url = Some(u);
                    }
                    self.offset = end + 1;
                    self.sent = self.sent.max(end + 1);
                    return self.next_chunk();
                }
                if is_auth(&reply) {
                    return self.fail(reply_error(&reply, "chunked upload"));
                }
                if reply.status == 413 {
                    let c = end - start + 1;
                    let shrunk = if c > BODY_CAP_GUESS {
                        BODY_CAP_GUESS
                    } else {
                        (c / 2).max(MIN_CHUNK)
                    };
                    if shrunk >= c && c <= MIN_CHUNK {
                        return self.fail(reply_error(&reply, "chunked upload"));
                    }
                    self.cap = Some(self.cap.map_or(shrunk, |cap| cap.min(shrunk)));
                }
                // The chunk may or may not have landed.
                self.sent = self.sent.max(end + 1);
                self.recover(&reply)
            }
            State::Status => {
                if !ok {
                    return self.fail(reply_error(&reply, "querying the upload status"));
                }
                if let Some(u) = self.resolve(&reply) {
                    self.url = Some(u);
                }
                let have = committed(reply.range);
                if have > self.sent {
                    return self.fail(Error::new(
                        ErrorKind::HttpStatus,
                        format!(
                            "upload status reports {have} bytes, only {} were sent",
                            self.sent
                        ),
                    ));
                }
                if have < self.offset && !self.cfg.rewindable {
                    return self.fail(Error::new(
                        ErrorKind::HttpStatus,
                        format!(
                            "registry went back to byte {have} of the upload and the input cannot be re-read from there"
                        ),
                    ));
                }
                self.offset = have;
                self.next_chunk()
            }
            State::Finalizing => {
                if ok {
                    if let Some(d) = &reply.digest {
                        if d.algorithm() == self.cfg.digest.algorithm() && *d != self.cfg.digest {
                            return self.fail(Error::new(
                                ErrorKind::DigestMismatch,
                                format!("registry stored {d} for blob {}", self.cfg.digest),
                            ));
                        }
                    }
                    return self.done();
                }
                self.fail(reply_error(&reply, "completing the upload"))
            }
            State::Cancelling(after) => match after {
                After::Fail(e) => Action::Failed(e),
                After::Repost => self.post(),
            },
        }
    }

    fn post(&mut self) -> Action {
        self.url = None;
        self.state = State::Posting;
        Action::Post
    }

    fn done(&mut self) -> Action {
        self.state = State::Finished;
        Action::Done(Descriptor {
            media_type: self.cfg.media_type.clone(),
            digest: self.cfg.digest.clone(),
            size: self.cfg.size as i64,
            ..Default::default()
        })
    }

    fn fail(&mut self, err: Error) -> Action {
        match self.url.take() {
            Some(url) => {
                self.state = State::Cancelling(After::Fail(err));
                Action::Cancel { url }
            }
            None => {
                self.state = State::Finished;
                Action::Failed(err)
            }
        }
    }

    fn resolve(&self, reply: &Reply) -> Option<Url> {
        reply
            .location
            .as_deref()
            .and_then(|l| reply.url.join(l).ok())
    }

    fn with_digest(&self, url: &Url) -> Url {
        let mut u = url.clone();
        u.append_query("digest", &self.cfg.digest.to_string());
        u
    }

    /// With a session open: monolithic or the first chunk.
    fn begin(&mut self) -> Action {
        let size = self.cfg.size;
        let blob_max_ok = self.cfg.blob_max <= 0 || size <= self.cfg.blob_max as u64;
        let cap_ok = self.cap.is_none_or(|c| size <= c);
        if !self.chunked && blob_max_ok && cap_ok {
            self.state = State::Monolithic;
            let url = self.with_digest(self.url.as_ref().expect("session open"));
            return Action::PutMonolithic { url, len: size };
        }
        self.chunked = true;
        self.next_chunk()
    }

    fn next_chunk(&mut self) -> Action {
        let url = self.url.clone().expect("session open");
        if self.offset >= self.cfg.size {
            self.state = State::Finalizing;
            return Action::PutFinal {
                url: self.with_digest(&url),
            };
        }
        let start = self.offset;
        let end = (start + self.chunk_size()).min(self.cfg.size) - 1;
        self.state = State::Chunking { start, end };
        Action::Patch { url, start, end }
    }

    fn recover(&mut self, reply: &Reply) -> Action {
        if self.recoveries >= MAX_RECOVERIES {
            let e = reply_error(reply, "chunked upload");
            return self.fail(Error::new(
                e.kind(),
                format!(
                    "upload of {} failed after {MAX_RECOVERIES} recoveries: {}",
                    self.cfg.digest,
                    e.message()
                ),
            ));
        }
        self.recoveries += 1;
        self.state = State::Status;
        Action::GetStatus {
            url: self.url.clone().expect("session open"),
        }
    }
}

fn is_auth(reply: &Reply) -> bool {
    matches!(reply.status, 401 | 403)
        || reply
            .error
            .as_ref()
            .is_some_and(|e| e.kind() == ErrorKind::Unauthorized)
}

fn reply_error(reply: &Reply, what: &str) -> Error {
    match &reply.error {
        Some(e) => e.clone(),
        None => Error::new(
            crate::transport::retry::status_error_kind(reply.status),
            format!(
                "{what}: unexpected {} {} from {}",
                status_of(reply.status),
                reply.status,
                reply.url
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://reg.example:5000/v2/repo/blobs/uploads/";

    fn digest(data: &[u8]) -> Digest {
        Digest::sha256(data)
    }

    fn cfg(size: u64) -> Config {
        Config {
            digest: digest(&vec![7u8; size as usize]),
            size,
            media_type: "application/octet-stream".into(),
            blob_chunk: 0,
            blob_max: 0,
            rewindable: true,
            mount: MountFrom::None,
            body_cap: None,
            chunk_limit: 0,
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// A reply to a request sent to `to`.
    fn reply(status: u16, to: &Url, headers: &[(&str, &str)]) -> Reply {
        let h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Reply::from_headers(status, to.clone(), &h)
    }

    fn fail(status: u16, to: &Url) -> Reply {
        Reply::failure(
            status,
            to.clone(),
            Error::new(
                crate::transport::retry::status_error_kind(status),
                format!("returned {status}"),
            ),
        )
    }

    fn action_url(a: &Action) -> Url {
        match a {
            Action::PutMonolithic { url, .. }
            | Action::Patch { url, .. }
            | Action::PutFinal { url }
            | Action::GetStatus { url }
            | Action::Cancel { url } => url.clone(),
            other => panic!("no url in {other:?}"),
        }
    }

    /// Starts with a POST answered 202 + `loc`.
    fn posted(c: Config, loc: &str, extra: &[(&str, &str)]) -> (Upload, Action) {
        let mut m = Upload::new(c);
        assert!(matches!(m.start(), Action::Post));
        let mut h = vec![("Location", loc), ("Range", "0-0")];
        h.extend_from_slice(extra);
        let a = m.step(reply(202, &url(BASE), &h));
        (m, a)
    }

    /// Answers every PATCH with 202 and a new location; returns the (start, end) of each.
    fn patch_all(m: &mut Upload, mut a: Action) -> (Vec<(u64, u64)>, Action) {
        let mut chunks = Vec::new();
        let mut n = 0;
        while let Action::Patch { url: u, start, end } = &a {
            chunks.push((*start, *end));
            n += 1;
            let loc = format!("/v2/repo/blobs/uploads/x?_state={n}");
            let range = format!("0-{end}");
            a = m.step(reply(202, u, &[("Location", &loc), ("Range", &range)]));
        }
        (chunks, a)
    }

    #[test]
    fn range_parsing() {
        assert_eq!(parse_range("0-99"), Some((0, 99)));
        assert_eq!(parse_range("bytes=0-5"), Some((0, 5)));
        assert_eq!(parse_range(" 0 - 7 "), Some((0, 7)));
        assert_eq!(parse_range("5-1"), None);
        assert_eq!(parse_range("x"), None);
        assert_eq!(committed(Some((0, 0))), 0);
        assert_eq!(committed(Some((0, 9))), 10);
        assert_eq!(committed(None), 0);
    }

    #[test]
    fn mount_201_is_done() {
        let mut c = cfg(10);
        c.mount = MountFrom::Repo("src".into());
        let mut m = Upload::new(c.clone());
        match m.start() {
            Action::Mount { digest, from } => {
                assert_eq!(digest, c.digest);
                assert_eq!(from.as_deref(), Some("src"));
            }
            a => panic!("{a:?}"),
        }
        match m.step(reply(201, &url(BASE), &[])) {
            Action::Done(d) => {
                assert_eq!(d.digest, c.digest);
                assert_eq!(d.size, 10);
            }
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn mount_202_reuses_the_session() {
        let mut c = cfg(10);
        c.mount = MountFrom::Anonymous;
        let mut m = Upload::new(c.clone());
        assert!(matches!(m.start(), Action::Mount { from: None, .. }));
        let a = m.step(reply(
            202,
            &url(BASE),
            &[("Location", "/v2/repo/blobs/uploads/m1?_state=a")],
        ));
        match &a {
            Action::PutMonolithic { url, len } => {
                assert_eq!(*len, 10);
                assert_eq!(
                    url.to_string(),
                    format!(
                        "http://reg.example:5000/v2/repo/blobs/uploads/m1?_state=a&digest={}",
                        crate::url::encode_query_value(&c.digest.to_string())
                    )
                );
            }
            a => panic!("expected the mount session to be used, got {a:?}"),
        }
        assert!(matches!(
            m.step(reply(201, &action_url(&a), &[])),
            Action::Done(_)
        ));
    }

    #[test]
    fn mount_error_falls_back_to_post() {
        let mut c = cfg(10);
        c.mount = MountFrom::Anonymous;
        let mut m = Upload::new(c);
        m.start();
        assert!(matches!(m.step(fail(401, &url(BASE))), Action::Post));
        // 202 without a Location is no usable session either.
        let mut c = cfg(10);
        c.mount = MountFrom::Anonymous;
        let mut m = Upload::new(c);
        m.start();
        assert!(matches!(m.step(reply(202, &url(BASE), &[])), Action::Post));
    }

    #[test]
    fn monolithic_ok() {
        let c = cfg(100);
        let (mut m, a) = posted(c.clone(), "/v2/repo/blobs/uploads/u1", &[]);
        let u = match &a {
            Action::PutMonolithic { url, len } => {
                assert_eq!(*len, 100);
                assert_eq!(
                    url.query(),
                    Some(
                        format!(
                            "digest={}",
                            crate::url::encode_query_value(&c.digest.to_string())
                        )
                        .as_str()
                    )
                );
                url.clone()
            }
            a => panic!("{a:?}"),
        };
        assert!(matches!(m.step(reply(201, &u, &[])), Action::Done(_)));
        assert!(!m.is_chunked());
    }

    #[test]
    fn post_without_location_fails_without_cancel() {
        let mut m = Upload::new(cfg(1));
        m.start();
        match m.step(reply(202, &url(BASE), &[])) {
            Action::Failed(e) => assert!(e.to_string().contains("location header missing"), "{e}"),
            a => panic!("{a:?}"),
        }
        let mut m = Upload::new(cfg(1));
        m.start();
        assert!(matches!(m.step(fail(403, &url(BASE))), Action::Failed(_)));
    }

    #[test]
    fn absolute_location_and_query() {
        let c = cfg(1);
        let (_, a) = posted(c.clone(), "https://upload.example/session/9?sig=abc", &[]);
        let u = action_url(&a);
        assert_eq!(u.host(), "upload.example");
        assert!(u.query().unwrap().starts_with("sig=abc&digest="), "{u}");
        let (_, a) = posted(c, "https://upload.example/session/9", &[]);
        assert!(action_url(&a).query().unwrap().starts_with("digest="));
    }

    #[test]
    fn relative_location_without_slash() {
        let (_, a) = posted(cfg(1), "abc?x=1", &[]);
        let u = action_url(&a);
        assert_eq!(u.path(), "/v2/repo/blobs/uploads/abc");
        assert!(u.query().unwrap().starts_with("x=1&digest="));
    }

    #[test]
    fn blob_max_chooses_chunked() {
        let mut c = cfg(2500);
        c.blob_max = 1000;
        c.blob_chunk = 1000;
        let (mut m, a) = posted(c.clone(), "/u?_state=0", &[]);
        let (chunks, a) = patch_all(&mut m, a);
        assert_eq!(chunks, vec![(0, 999), (1000, 1999), (2000, 2499)]);
        let u = action_url(&a);
        assert!(matches!(a, Action::PutFinal { .. }));
        // The newest Location is used, digest appended with '&'.
        assert!(u.query().unwrap().starts_with("_state=3&digest="), "{u}");
        assert!(matches!(m.step(reply(201, &u, &[])), Action::Done(_)));
        // Within blob_max: monolithic.
        c.size = 1000;
        let (_, a) = posted(c, "/u", &[]);
        assert!(matches!(a, Action::PutMonolithic { .. }));
    }

    #[test]
    fn monolithic_refused_goes_chunked_in_a_fresh_session() {
        let mut c = cfg(3000);
        c.blob_chunk = 1024;
        let (mut m, a) = posted(c, "/v2/repo/blobs/uploads/u1?_state=1", &[]);
        let u = action_url(&a);
        let a = m.step(fail(400, &u));
        match &a {
            Action::Cancel { url } => assert_eq!(url.path(), "/v2/repo/blobs/uploads/u1"),
            a => panic!("{a:?}"),
        }
        let a = m.step(reply(204, &action_url(&a), &[]));
        assert!(matches!(a, Action::Post));
        let a = m.step(reply(
            202,
            &url(BASE),
            &[("Location", "/v2/repo/blobs/uploads/u2?_state=2")],
        ));
        assert_eq!(action_url(&a).path(), "/v2/repo/blobs/uploads/u2");
        let (chunks, a) = patch_all(&mut m, a);
        assert_eq!(chunks, vec![(0, 1023), (1024, 2047), (2048, 2999)]);
        assert!(matches!(a, Action::PutFinal { .. }));
        assert!(m.is_chunked());
    }

    #[test]
    fn monolithic_refused_not_rewindable_cancels_and_fails() {
        let mut c = cfg(10);
        c.rewindable = false;
        let (mut m, a) = posted(c, "/u", &[]);
        let a = m.step(fail(500, &action_url(&a)));
        assert!(matches!(a, Action::Cancel { .. }));
        match m.step(fail(404, &action_url(&a))) {
            Action::Failed(e) => assert!(e.to_string().contains("500"), "{e}"),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn monolithic_auth_failure_does_not_fall_back() {
        let (mut m, a) = posted(cfg(10), "/u", &[]);
        let a = m.step(fail(403, &action_url(&a)));
        assert!(matches!(a, Action::Cancel { .. }));
        match m.step(reply(204, &action_url(&a), &[])) {
            Action::Failed(e) => assert_eq!(e.kind(), ErrorKind::Unauthorized),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn patch_416_recovers_from_status() {
        let mut c = cfg(3000);
        c.blob_max = 1;
        c.blob_chunk = 1000;
        let (mut m, a) = posted(c, "/u?_state=0", &[]);
        assert!(matches!(
            a,
            Action::Patch {
                start: 0,
                end: 999,
                ..
            }
        ));
        let a = m.step(reply(
            202,
            &action_url(&a),
            &[("Location", "/u?_state=1"), ("Range", "0-999")],
        ));
        assert!(matches!(
            a,
            Action::Patch {
                start: 1000,
                end: 1999,
                ..
            }
        ));
        let a = m.step(fail(416, &action_url(&a)));
        let su = action_url(&a);
        assert!(matches!(a, Action::GetStatus { .. }));
        assert_eq!(su.query(), Some("_state=1"));
        let a = m.step(reply(
            204,
            &su,
            &[("Location", "/u?_state=2"), ("Range", "0-999")],
        ));
        match &a {
            Action::Patch { url, start, end } => {
                assert_eq!((*start, *end), (1000, 1999));
                assert_eq!(url.query(), Some("_state=2"));
            }
            a => panic!("{a:?}"),
        }
        let (chunks, a) = patch_all(&mut m, a);
        assert_eq!(chunks, vec![(1000, 1999), (2000, 2999)]);
        assert!(matches!(a, Action::PutFinal { .. }));
        assert_eq!(m.recoveries(), 1);
    }

    #[test]
    fn stale_range_resends_from_the_reported_offset() {
        let mut c = cfg(4000);
        c.blob_max = 1;
        c.blob_chunk = 1000;
        let (mut m, a) = posted(c.clone(), "/u", &[]);
        let (_, a) = {
            // Two chunks accepted, the third fails.
            let a = m.step(reply(202, &action_url(&a), &[("Location", "/u")]));
            let a = m.step(reply(202, &action_url(&a), &[("Location", "/u")]));
            assert!(matches!(a, Action::Patch { start: 2000, .. }));
            ((), m.step(fail(500, &action_url(&a))))
        };
        assert!(matches!(a, Action::GetStatus { .. }));
        // The status lies: only half of what was received.
        let a = m.step(reply(204, &action_url(&a), &[("Range", "0-999")]));
        assert!(
            matches!(
                a,
                Action::Patch {
                    start: 1000,
                    end: 1999,
                    ..
                }
            ),
            "{a:?}"
        );
        // Not rewindable: the same lie is fatal.
        c.rewindable = false;
        let (mut m, a) = posted(c, "/u", &[]);
        let a = m.step(reply(202, &action_url(&a), &[("Location", "/u")]));
        let a = m.step(reply(202, &action_url(&a), &[("Location", "/u")]));
        let a = m.step(fail(500, &action_url(&a)));
        let a = m.step(reply(204, &action_url(&a), &[("Range", "0-999")]));
        assert!(matches!(a, Action::Cancel { .. }));
        assert!(matches!(
            m.step(reply(204, &url(BASE), &[])),
            Action::Failed(_)
        ));
    }

    #[test]
    fn status_claiming_more_than_sent_fails() {
        let mut c = cfg(2000);
        c.blob_max = 1;
        c.blob_chunk = 1000;
        let (mut m, a) = posted(c, "/u", &[]);
        let a = m.step(fail(500, &action_url(&a)));
        let a = m.step(reply(204, &action_url(&a), &[("Range", "0-1500")]));
        assert!(matches!(a, Action::Cancel { .. }));
    }

    #[test]
    fn ecr_early_201_is_tolerated() {
        let mut c = cfg(2000);
        c.blob_max = 1;
        c.blob_chunk = 1000;
        let (mut m, a) = posted(c, "/u?_state=0", &[]);
        // ECR: 201 without a Location; the current URL stays.
        let a = m.step(reply(201, &action_url(&a), &[]));
        match &a {
            Action::Patch { url, start, .. } => {
                assert_eq!(*start, 1000);
                assert_eq!(url.query(), Some("_state=0"));
            }
            a => panic!("{a:?}"),
        }
        let a = m.step(reply(201, &action_url(&a), &[("Location", "/u?_state=9")]));
        assert!(matches!(a, Action::PutFinal { .. }));
        assert!(action_url(&a)
            .query()
            .unwrap()
            .starts_with("_state=9&digest="));
        assert!(matches!(
            m.step(reply(201, &action_url(&a), &[])),
            Action::Done(_)
        ));
    }

    #[test]
    fn chunk_min_raises_the_chunk_and_is_capped() {
        let mut c = cfg(10 << 20);
        c.blob_max = 1;
        let (m, a) = posted(c.clone(), "/u", &[("OCI-Chunk-Min-Length", "5242880")]);
        assert_eq!(m.chunk_size(), 5 << 20);
        assert!(matches!(a, Action::Patch { start: 0, end, .. } if end == (5 << 20) - 1));
        let (m, _) = posted(c.clone(), "/u", &[("OCI-Chunk-Min-Length", "999999999999")]);
        assert_eq!(m.chunk_size(), MAX_CHUNK);
        // Smaller than the host chunk: no effect.
        c.blob_chunk = 2 << 20;
        let (m, _) = posted(c, "/u", &[("OCI-Chunk-Min-Length", "100")]);
        assert_eq!(m.chunk_size(), 2 << 20);
    }

    #[test]
    fn blob_limit_caps_requested_and_configured_chunks() {
        let mut c = cfg(200 << 20);
        c.blob_max = 1;
        c.chunk_limit = 3 << 20;
        let (m, a) = posted(c.clone(), "/u", &[("OCI-Chunk-Min-Length", "5242880")]);
        assert_eq!(m.chunk_size(), 3 << 20);
        assert!(matches!(a, Action::Patch { start: 0, end, .. } if end == (3 << 20) - 1));
        c.blob_chunk = 8 << 20;
        let (m, _) = posted(c.clone(), "/u", &[]);
        assert_eq!(m.chunk_size(), 3 << 20, "the limit caps blobChunk too");
        // A limit above the default lets a registry ask for more than 64 MiB.
        c.blob_chunk = 0;
        c.chunk_limit = 128 << 20;
        let (m, _) = posted(c, "/u", &[("OCI-Chunk-Min-Length", "100000000")]);
        assert_eq!(m.chunk_size(), 100_000_000);
    }

    #[test]
    fn body_cap_413_shrinks_chunks() {
        // Monolithic 413 → chunked with chunks ≤ 4 MiB even though the host asked for 8 MiB.
        let mut c = cfg(10 << 20);
        c.blob_chunk = 8 << 20;
        let (mut m, a) = posted(c.clone(), "/u", &[]);
        assert!(matches!(a, Action::PutMonolithic { .. }));
        let a = m.step(fail(413, &action_url(&a)));
        let a = m.step(reply(204, &action_url(&a), &[]));
        assert!(matches!(a, Action::Post));
        let a = m.step(reply(202, &url(BASE), &[("Location", "/u2")]));
        let (chunks, a) = patch_all(&mut m, a);
        assert!(
            chunks.iter().all(|(s, e)| e - s < BODY_CAP_GUESS),
            "{chunks:?}"
        );
        assert_eq!(chunks.len(), 3);
        assert!(matches!(a, Action::PutFinal { .. }));
        assert_eq!(m.body_cap(), Some(BODY_CAP_GUESS));
        // A 413 on a PATCH: status, then smaller chunks from the committed offset.
        c.blob_max = 1;
        let (mut m, a) = posted(c.clone(), "/u", &[]);
        assert!(matches!(a, Action::Patch { start: 0, end, .. } if end == (8 << 20) - 1));
        let a = m.step(fail(413, &action_url(&a)));
        assert!(matches!(a, Action::GetStatus { .. }));
        let a = m.step(reply(204, &action_url(&a), &[("Range", "0-0")]));
        assert!(matches!(a, Action::Patch { start: 0, end, .. } if end == BODY_CAP_GUESS - 1));
        // A learned cap skips the monolithic attempt for larger blobs.
        c.blob_max = 0;
        c.body_cap = Some(BODY_CAP_GUESS);
        let (_, a) = posted(c, "/u", &[]);
        assert!(matches!(a, Action::Patch { .. }));
    }

    #[test]
    fn recovery_limit() {
        let mut c = cfg(2000);
        c.blob_max = 1;
        c.blob_chunk = 1000;
        let (mut m, mut a) = posted(c, "/u", &[]);
        for _ in 0..MAX_RECOVERIES {
            a = m.step(fail(416, &action_url(&a)));
            assert!(matches!(a, Action::GetStatus { .. }), "{a:?}");
            a = m.step(reply(204, &action_url(&a), &[("Range", "0-0")]));
            assert!(matches!(a, Action::Patch { start: 0, .. }));
        }
        let a = m.step(fail(416, &action_url(&a)));
        assert!(matches!(a, Action::Cancel { .. }));
        match m.step(reply(204, &url(BASE), &[])) {
            Action::Failed(e) => assert!(e.to_string().contains("10 recoveries"), "{e}"),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn failure_after_session_cancels() {
        // Final PUT refused.
        let mut c = cfg(10);
        c.blob_max = 1;
        let (mut m, a) = posted(c.clone(), "/u?_state=1", &[]);
        let a = m.step(reply(202, &action_url(&a), &[("Location", "/u?_state=2")]));
        let a = m.step(fail(400, &action_url(&a)));
        match &a {
            Action::Cancel { url } => assert_eq!(url.query(), Some("_state=2")),
            a => panic!("{a:?}"),
        }
        assert!(matches!(m.step(fail(500, &url(BASE))), Action::Failed(_)));
        // Input failure mid-upload.
        let (mut m, _) = posted(c, "/u", &[]);
        let a = m.input_failed(Error::new(ErrorKind::DigestMismatch, "bad input"));
        assert!(matches!(a, Action::Cancel { .. }));
        match m.step(reply(204, &url(BASE), &[])) {
            Action::Failed(e) => assert_eq!(e.kind(), ErrorKind::DigestMismatch),
            a => panic!("{a:?}"),
        }
    }

    #[test]
    fn empty_blob() {
        let c = cfg(0);
        let (mut m, a) = posted(c.clone(), "/u", &[]);
        assert!(matches!(a, Action::PutMonolithic { len: 0, .. }));
        assert!(matches!(
            m.step(reply(201, &action_url(&a), &[])),
            Action::Done(_)
        ));
        let mut c = c;
        c.blob_max = -1;
        c.body_cap = Some(0);
        let (_, a) = posted(c, "/u", &[]);
        assert!(matches!(a, Action::PutMonolithic { len: 0, .. }));
    }

    #[test]
    fn final_digest_header_mismatch_fails() {
        let other = digest(b"other").to_string();
        let mut c = cfg(1);
        c.blob_max = 1;
        c.size = 2;
        let (mut m, a) = posted(c, "/u", &[]);
        let a = m.step(reply(202, &action_url(&a), &[]));
        assert!(matches!(a, Action::PutFinal { .. }));
        let a = m.step(reply(
            201,
            &action_url(&a),
            &[("Docker-Content-Digest", &other)],
        ));
        assert!(matches!(a, Action::Cancel { .. }));
        match m.step(reply(204, &url(BASE), &[])) {
            Action::Failed(e) => assert_eq!(e.kind(), ErrorKind::DigestMismatch),
            a => panic!("{a:?}"),
        }
    }
}
