//! The I/O shell: sends registry requests with ureq and drives the pure cores around them
//! (auth steps, retry decisions, per-host throttle, redirect rules, warnings).
//!
//! ureq is configured so that every status reaches us (`http_status_as_error(false)`), it never
//! follows redirects itself (we apply our own rules, and never replay credentials to another
//! host), it reads no proxy from the environment (the caller passes a Go-compatible
//! [`ProxyConfig`]) and it does not decode gzip (blob bytes must stay exact).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::auth::{state_key, AuthState, Credential, Step};
use crate::config::credhelper::{self, Runner};
use crate::config::host::Tls;
use crate::config::Host;
use crate::error::{Error, ErrorKind, Result};
use crate::transport::absolute::{AbsoluteFormConnector, ProxyResolver};
use crate::transport::proxy::{ProxyConfig, ProxyScheme};
use crate::transport::redirect;
use crate::transport::retry::{Decision, HostBackoff, NetError, Outcome, RetryPolicy};
use crate::transport::throttle::{Guard, Priority, Throttle, ThrottleConfig};
use crate::transport::warning::{registry_warnings, WarningSet};
use crate::url::Url;
use ureq::unversioned::transport::{Connector, RustlsConnector, TcpConnector};

/// Largest error body read for a message.
const MAX_ERROR_BODY: u64 = 64 * 1024;
/// Bound on auth round trips within one request (challenge, token, retry, ...).
const MAX_AUTH_STEPS: u32 = 8;
/// Longest wait for a host slot by a streamed upload (see `send`).
const STREAM_SLOT_WAIT: Duration = Duration::from_secs(2);
/// Longest wait for a host slot by a small request (see `send`).
const SMALL_SLOT_WAIT: Duration = Duration::from_secs(5);

/// A log event from the transport; the binaries decide whether and how to print it.
/// Credentials never appear in events: `Authorization` values are replaced.
#[derive(Debug, Clone)]
pub enum LogEvent {
    /// A request is being sent (trace level).
    Request {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// Headers, redacted.
        headers: Vec<(String, String)>,
    },
    /// A response arrived (trace level).
    Response {
        /// Method.
        method: String,
        /// URL.
        url: String,
        /// Status.
        status: u16,
        /// Headers.
        headers: Vec<(String, String)>,
    },
    /// A registry `Warning: 299` text, reported once per transport.
    Warning {
        /// Registry host.
        host: String,
        /// The warning text.
        text: String,
    },
    /// A retry is scheduled (debug level).
    Retry {
        /// URL.
        url: String,
        /// Why.
        reason: String,
        /// Wait before the retry.
        wait: Duration,
    },
}

/// A log sink.
pub type LogSink = Arc<dyn Fn(&LogEvent) + Send + Sync>;

/// Transport settings.
#[derive(Clone)]
pub struct TransportConfig {
    /// User agent (also the token `client_id`).
    pub user_agent: String,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time to wait for response headers.
    pub response_timeout: Duration,
    /// Proxy selection.
    pub proxy: ProxyConfig,
    /// Folders with `<hostname>/*.crt` CA files (`/etc/docker/certs.d`).
    pub cert_dirs: Vec<PathBuf>,
    /// Candidate system CA bundles; the first that exists is used (else Mozilla's roots).
    pub system_ca_files: Vec<PathBuf>,
    /// Runs credential helpers.
    pub cred_runner: Arc<dyn Runner + Send + Sync>,
    /// Where transport events go.
    pub log: Option<LogSink>,
    /// Largest upload chunk held in memory (`blobLimit`; 0: the 64 MiB default). Applies to
    /// chunked uploads, whose chunk size a registry can raise with `OCI-Chunk-Min-Length`.
    pub blob_limit: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            user_agent: format!("regclient/regctl ({})", env!("CARGO_PKG_VERSION")),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(30),
            response_timeout: Duration::from_secs(120),
            proxy: ProxyConfig::default(),
            cert_dirs: Vec::new(),
            system_ca_files: [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
                "/etc/ssl/ca-bundle.pem",
                "/etc/ssl/cert.pem",
                "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            ]
            .iter()
            .map(PathBuf::from)
            .collect(),
            cred_runner: Arc::new(credhelper::ProcessRunner::new()),
            log: None,
            blob_limit: 0,
        }
    }
}

/// HTTP methods the registry API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD.
    Head,
    /// PUT.
    Put,
    /// POST.
    Post,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// What to request.
pub enum Target {
    /// `/v2/` (ping).
    Root,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<pathPrefix>/<repo>/<path>`, e.g. `manifests/v1`.
    Repo(String),
    /// An absolute URL given by the registry (upload `Location`, `Link`).
    Url(Url),
}

/// A request body.
pub enum Body<'a> {
    /// No body.
    Empty,
    /// Bytes in memory (can be re-sent on retry).
    Bytes(&'a [u8]),
    /// A stream of known length (sent once: a failure is not retried here).
    Stream {
        /// The bytes.
        reader: &'a mut dyn Read,
        /// Its length, sent as `Content-Length`.
        len: u64,
    },
}

/// One registry request.
pub struct Request<'a> {
    /// Method.
    pub method: Method,
    /// Registry name as in references (`docker.io`).
    pub registry: String,
    /// Repository (empty for ping and catalog).
    pub repo: String,
    /// Path or URL.
    pub target: Target,
    /// Query parameters to add.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body<'a>,
    /// Throttle priority.
    pub priority: Priority,
    /// Failures are expected (probes): drop the host without backoff.
    pub expect_failure: bool,
    /// Extra auth scope beyond the repository's (`registry:catalog:*`, a mount source).
    pub extra_scopes: Vec<String>,
}

impl<'a> Request<'a> {
    /// A request with defaults (no query, headers or body; small-request priority).
    pub fn new(method: Method, registry: &str, repo: &str, target: Target) -> Request<'a> {
        Request {
            method,
            registry: registry.to_string(),
            repo: repo.to_string(),
            target,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
            priority: match method {
                Method::Head => Priority::Head,
                _ => Priority::Manifest,
            },
            expect_failure: false,
            extra_scopes: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Request<'a> {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, k: &str, v: &str) -> Request<'a> {
        self.query.push((k.to_string(), v.to_string()));
        self
    }
}

/// A response whose status the caller checks. The host slot stays held until the body is
/// read or the response dropped, so concurrent blob reads respect `reqConcurrent`.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// Final URL (after redirects).
    pub url: Url,
    body: Option<Box<dyn Read + Send>>,
    _slot: Option<HeldSlot>,
}

impl Response {
    /// First header value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Headers as borrowed pairs (for the pure parsers).
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// Reads the body, refusing more than `max` bytes.
    pub fn read_body(mut self, max: usize) -> Result<Vec<u8>> {
        if let Some(len) = self
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok())
        {
            if len > max as u64 {
                return Err(Error::new(
                    ErrorKind::SizeLimit,
                    format!(
                        "response of {len} bytes from {} exceeds the {max} byte limit",
                        self.url
                    ),
                ));
            }
        }
        let mut out = Vec::new();
        if let Some(b) = self.body.take() {
            b.take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| Error::io(e, format!("reading response from {}", self.url)))?;
        }
        if out.len() > max {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                format!("response from {} exceeds the {max} byte limit", self.url),
            ));
        }
        Ok(out)
    }

    /// The body as a stream (holding the host slot until dropped).
    pub fn into_reader(mut self) -> Box<dyn Read + Send> {
        let body = self
            .body
            .take()
            .unwrap_or_else(|| Box::new(std::io::empty()));
        Box::new(SlotReader {
            inner: body,
            _slot: self._slot.take(),
        })
    }
}

/// A small response read whole by [`Transport::fetch`].
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Final URL.
    pub url: Url,
    /// The body.
    pub body: Vec<u8>,
}

impl Fetched {
    /// First header value by name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Headers as borrowed pairs (for the pure parsers).
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

struct SlotReader {
    inner: Box<dyn Read + Send>,
    _slot: Option<HeldSlot>,
}

/// A host slot held by a response body, remembered with the thread that asked for it: further
/// requests of that thread to the same host (the upload fed by this download, in a copy within
/// one registry) run without a second slot, as regclient takes source and target slots
/// together. Without this, every slot could be held by downloads waiting on their uploads.
struct HeldSlot {
    _guard: Guard,
    hs: Arc<HostState>,
    thread: std::thread::ThreadId,
}

impl HeldSlot {
    fn new(guard: Guard, hs: Arc<HostState>) -> HeldSlot {
        let thread = std::thread::current().id();
        *hs.holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(thread)
            .or_insert(0) += 1;
        HeldSlot {
            _guard: guard,
            hs,
            thread,
        }
    }
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        let mut h = self.hs.holders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = h.get_mut(&self.thread) {
            *n -= 1;
            if *n == 0 {
                h.remove(&self.thread);
            }
        }
    }
}

impl Read for SlotReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

struct HostState {
    host: Host,
    agent: OnceLock<std::result::Result<ureq::Agent, Error>>,
    throttle: Throttle,
    auth: Mutex<HashMap<String, AuthState>>,
    backoff: Mutex<HostBackoff>,
    cred: Mutex<Option<(Credential, Instant)>>,
    /// Threads holding a slot of this host through a response body, and how many.
    holders: Mutex<HashMap<std::thread::ThreadId, usize>>,
}

/// Sends registry requests for a set of configured hosts.
pub struct Transport {
    cfg: TransportConfig,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    host_config: Box<dyn Fn(&str) -> Host + Send + Sync>,
    warnings: Mutex<WarningSet>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Replaces credentials in header values for logs.
pub fn redact_headers(headers: &[(String, String)]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let secret = matches!(
                k.to_ascii_lowercase().as_str(),
                "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
            );
            (
                k.clone(),
                if secret {
                    "[redacted]".to_string()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

fn classify(e: &ureq::Error) -> NetError {
    match e {
        ureq::Error::Timeout(_) => NetError::Timeout,
        ureq::Error::HostNotFound => NetError::Dns,
        ureq::Error::ConnectionFailed => NetError::ConnectRefused,
        ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_) => NetError::Tls,
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => NetError::ConnectRefused,
            std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::UnexpectedEof => NetError::Reset,
            std::io::ErrorKind::TimedOut => NetError::Timeout,
            // rustls reports an http answer on an https port as a corrupt message: a TLS
            // problem that retrying cannot fix.
            _ if io.to_string().contains("certificate")
                || io.to_string().contains("corrupt message")
                || io.to_string().contains("InvalidContentType") =>
            {
                NetError::Tls
            }
            _ => NetError::Other,
        },
        _ => NetError::Other,
    }
}

/// One sentence for a network failure, with a hint where one helps.
fn network_error(e: &ureq::Error, url: &Url, registry: &str) -> Error {
    let text = e.to_string();
    let hint = if text.contains("InvalidContentType")
        || text.contains("corrupt message")
        || text.contains("HTTP response to HTTPS")
    {
        format!(
            " (the server answered plain http on an https port: try `regctl registry set --tls disabled {registry}`)"
        )
    } else if matches!(classify(e), NetError::Tls) {
        format!(
            " (TLS verification failed: trust the CA with `regctl registry set --cacert ... {registry}`, or use --tls insecure)"
        )
    } else {
        String::new()
    };
    Error::new(
        ErrorKind::Network,
        format!("{} {url}: {text}{hint}", "request to"),
    )
}

/// Reads registry error JSON (`{"errors":[{"code","message"}]}`) into a short text.
fn error_text(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        #[serde(default)]
        errors: Vec<E>,
    }
    match serde_json::from_slice::<Es>(body) {
        Ok(es) if !es.errors.is_empty() => es
            .errors
            .iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code.clone()
                } else {
                    format!("{}: {}", e.code, e.message)
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body)
            .chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}

impl Transport {
    /// A transport; `host_config(name)` returns the merged settings of a registry name.
    pub fn new(
        cfg: TransportConfig,
        host_config: Box<dyn Fn(&str) -> Host + Send + Sync>,
    ) -> Transport {
        Transport {
            cfg,
            hosts: Mutex::new(HashMap::new()),
            host_config,
            warnings: Mutex::new(WarningSet::new()),
        }
    }

    /// Settings.
    pub fn config(&self) -> &TransportConfig {
        &self.cfg
    }

    /// The merged settings of a registry.
    pub fn host(&self, registry: &str) -> Host {
        self.state(registry).host.clone()
    }

    /// The throttle of a registry (a copy takes source and target slots together).
    pub fn throttle(&self, registry: &str) -> Throttle {
        self.state(registry).throttle.clone()
    }

    fn state(&self, registry: &str) -> Arc<HostState> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts
            .entry(registry.to_string())
            .or_insert_with(|| {
                let host = (self.host_config)(registry);
                let concurrent = usize::try_from(host.req_concurrent()).unwrap_or(3).max(1);
                Arc::new(HostState {
                    throttle: Throttle::new(
                        registry,
                        ThrottleConfig {
                            concurrent,
                            per_sec: host.req_per_sec,
                        },
                    ),
                    host,
                    agent: OnceLock::new(),
                    auth: Mutex::new(HashMap::new()),
                    backoff: Mutex::new(HostBackoff::new(self.cfg.retry.retry_limit.max(1))),
                    cred: Mutex::new(None),
                    holders: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    fn log(&self, ev: LogEvent) {
        if let Some(l) = &self.cfg.log {
            l(&ev);
        }
    }

    /// Builds the ureq agent for a host, loading CA roots only now (first TLS contact).
    fn agent(&self, hs: &HostState) -> Result<ureq::Agent> {
        hs.agent.get_or_init(|| self.build_agent(&hs.host)).clone()
    }

    fn build_agent(&self, host: &Host) -> Result<ureq::Agent> {
        let concurrent = usize::try_from(host.req_concurrent()).unwrap_or(3).max(1);
        let mut b = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(self.cfg.user_agent.as_str())
            .accept("")
            .timeout_connect(Some(self.cfg.connect_timeout))
            .timeout_recv_response(Some(self.cfg.response_timeout))
            .max_idle_connections_per_host(concurrent * 2)
            .max_idle_connections(64);
        let scheme = if host.tls == Tls::Disabled {
            "http"
        } else {
            "https"
        };
        let probe = Url::parse(&format!("{scheme}://{}/v2/", host.hostname()))?;
        let proxy = match self.cfg.proxy.proxy_for(&probe)? {
            // Plain http through an HTTP proxy: absolute-form requests (see `absolute`), not
            // ureq's CONNECT tunnel.
            Some(p) if host.tls == Tls::Disabled && p.scheme == ProxyScheme::Http => {
                let proxies = Arc::new(self.cfg.proxy.clone());
                let connector =
                    ().chain(TcpConnector::default())
                        .chain(RustlsConnector::default())
                        .chain(AbsoluteFormConnector::new(proxies.clone()));
                return Ok(ureq::Agent::with_parts(
                    b.proxy(None).build(),
                    connector,
                    ProxyResolver::new(proxies),
                ));
            }
            Some(p) => Some(ureq::Proxy::new(&p.uri()).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("invalid proxy {}: {e}", p.uri()),
                )
            })?),
            None => None,
        };
        b = b.proxy(proxy);
        if host.tls != Tls::Disabled {
            let mut tls = ureq::tls::TlsConfig::builder();
            if host.tls == Tls::Insecure {
                tls = tls.disable_verification(true);
            } else {
                tls = tls.root_certs(self.roots(host)?);
            }
            if !host.client_cert.is_empty() && !host.client_key.is_empty() {
                let certs: Vec<ureq::tls::Certificate<'static>> =
                    ureq::tls::parse_pem(host.client_cert.as_bytes())
                        .filter_map(|i| match i {
                            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                            _ => None,
                        })
                        .collect();
                let key =
                    ureq::tls::PrivateKey::from_pem(host.client_key.as_bytes()).map_err(|e| {
                        Error::new(
                            ErrorKind::InvalidInput,
                            format!("client key of {}: {e}", host.name),
                        )
                    })?;
                tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&certs, key)));
            }
            b = b.tls_config(tls.build());
        }
        Ok(b.build().new_agent())
    }

    fn roots(&self, host: &Host) -> Result<ureq::tls::RootCerts> {
        let mut pems: Vec<Vec<u8>> = Vec::new();
        let system = self
            .cfg
            .system_ca_files
            .iter()
            .find_map(|p| std::fs::read(p).ok());
        let have_system = system.is_some();
        pems.extend(system);
        for dir in &self.cfg.cert_dirs {
            let d = dir.join(host.hostname());
            if let Ok(entries) = std::fs::read_dir(&d) {
                for e in entries.flatten().take(256) {
                    if e.path().extension().is_some_and(|x| x == "crt") {
                        if let Ok(b) = std::fs::read(e.path()) {
                            pems.push(b);
                        }
                    }
                }
            }
        }
        if !host.regcert.is_empty() {
            pems.push(host.regcert.as_bytes().to_vec());
        }
        if !have_system && pems.is_empty() {
            return Ok(ureq::tls::RootCerts::WebPki);
        }
        let mut certs = Vec::new();
        for p in &pems {
            for item in ureq::tls::parse_pem(p).flatten() {
                if let ureq::tls::PemItem::Certificate(c) = item {
                    certs.push(c);
                }
            }
        }
        Ok(ureq::tls::RootCerts::new_with_certs(&certs))
    }

    fn credential(&self, hs: &HostState) -> Credential {
        if hs.host.cred_helper.is_empty() {
            return hs.host.credential();
        }
        let mut cached = hs.cred.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, at)) = cached.as_ref() {
            if at.elapsed() < hs.host.cred_expire() {
                return c.clone();
            }
        }
        // A failing helper leaves the request anonymous; it is asked again after 5 s.
        let (cred, at) = match credhelper::host_credential(self.cfg.cred_runner.as_ref(), &hs.host)
        {
            Ok(c) => (c, Instant::now()),
            Err(_) => (
                Credential::default(),
                Instant::now()
                    .checked_sub(hs.host.cred_expire().saturating_sub(Duration::from_secs(5)))
                    .unwrap_or_else(Instant::now),
            ),
        };
        *cached = Some((cred.clone(), at));
        cred
    }

    fn url_for(&self, hs: &HostState, req: &Request<'_>, ns: Option<&str>) -> Result<Url> {
        let scheme = if hs.host.tls == Tls::Disabled {
            "http"
        } else {
            "https"
        };
        let base = format!("{scheme}://{}", hs.host.hostname());
        let mut url = match &req.target {
            Target::Root => Url::parse(&format!("{base}/v2/"))?,
            Target::Catalog => Url::parse(&format!("{base}/v2/_catalog"))?,
            Target::Repo(path) => {
                let prefix = hs.host.path_prefix();
                let repo = if prefix.is_empty() {
                    req.repo.clone()
                } else {
                    format!("{prefix}/{}", req.repo)
                };
                Url::parse(&format!("{base}/v2/{repo}/{path}"))?
            }
            Target::Url(u) => u.clone(),
        };
        for (k, v) in &req.query {
            url.append_query(k, v);
        }
        if let Some(ns) = ns {
            url.append_query("ns", ns);
        }
        Ok(url)
    }

    /// Resolves the auth header for a request, fetching tokens as needed.
    fn auth_step(
        &self,
        hs: &HostState,
        name: &str,
        req: &Request<'_>,
        mut step: Step,
    ) -> Result<Option<String>> {
        for _ in 0..MAX_AUTH_STEPS {
            match step {
                Step::Send(h) => return Ok(h),
                Step::Token(treq) => {
                    let (status, body) = self.token_fetch(hs, &treq)?;
                    let key = state_key(name, &req.repo, hs.host.repo_auth);
                    let mut auths = hs.auth.lock().unwrap_or_else(|e| e.into_inner());
                    let st = auths
                        .get_mut(&key)
                        .ok_or_else(|| Error::new(ErrorKind::Other, "auth state vanished"))?;
                    step = st
                        .token_response(&treq, status, &body, now_unix())
                        .map_err(|e| e.context(format!("authenticating to {name}")))?;
                }
            }
        }
        Err(Error::new(
            ErrorKind::Unauthorized,
            format!("authentication with {name} did not settle"),
        ))
    }

    fn token_fetch(
        &self,
        hs: &HostState,
        treq: &crate::auth::TokenRequest,
    ) -> Result<(u16, Vec<u8>)> {
        let agent = self.agent(hs)?;
        let url = treq.url().to_string();
        let mut b = ureq::http::Request::builder()
            .method(if treq.body().is_some() { "POST" } else { "GET" })
            .uri(&url);
        if let Some(a) = treq.authorization() {
            b = b.header("Authorization", a);
        }
        let body = treq.body().unwrap_or_default();
        if treq.body().is_some() {
            b = b.header("Content-Type", "application/x-www-form-urlencoded");
        }
        self.log(LogEvent::Request {
            method: if treq.body().is_some() { "POST" } else { "GET" }.into(),
            url: url.split('?').next().unwrap_or("").to_string(),
            headers: Vec::new(),
        });
        let request = b
            .body(body.into_bytes())
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("token request: {e}")))?;
        let resp = agent.run(request).map_err(|e| {
            Error::new(
                ErrorKind::Network,
                format!("token request to {}: {e}", treq.url().host()),
            )
        })?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(crate::auth::token::MAX_TOKEN_RESPONSE as u64)
            .read_to_end(&mut body)
            .map_err(|e| Error::io(e, "reading token response"))?;
        Ok((status, body))
    }

    /// Sends a request: auth, throttle, redirects and retries included. Returns the final
    /// response whatever its status when the status is one the caller handles (2xx, 3xx that
    /// could not be followed, 404/416 are reported as errors of kind NotFound/HttpStatus).
    pub fn send(&self, mut req: Request<'_>) -> Result<Response> {
        let hosts = self.candidates(&req);
        let upstream_hostname = self.state(&req.registry).host.hostname().to_string();
        let mut hi = 0usize;
        let policy = &self.cfg.retry;
        let ctx_text = format!("{} {}", req.method.as_str(), req.registry);
        let ctx = || ctx_text.clone();
        let mut attempt = 0u32;
        let mut auth_rounds = 0u32;
        loop {
            let (name, hs) = (hosts[hi].0.clone(), hosts[hi].1.clone());
            let key = state_key(&name, &req.repo, hs.host.repo_auth);
            // Mirrors learn which upstream a request is for (`ns=`).
            let ns = (name != req.registry).then(|| upstream_hostname.clone());
            let more_hosts = hi + 1 < hosts.len();
            attempt += 1;
            // Per-host backoff from earlier failures.
            let wait = hs
                .backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .wait(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait.min(policy.delay_max));
            }
            let url = self.url_for(&hs, &req, ns.as_deref())?;
            let step = {
                let mut auths = hs.auth.lock().unwrap_or_else(|e| e.into_inner());
                let st = auths.entry(key.clone()).or_insert_with(|| {
                    AuthState::new(self.credential(&hs), self.cfg.user_agent.clone())
                });
                for s in &req.extra_scopes {
                    let _ = st.prepare_scope(crate::auth::Scope::parse(s), now_unix());
                }
                if req.repo.is_empty() {
                    st.current_header(now_unix())
                        .map_or(Step::Send(None), |h| Step::Send(Some(h)))
                } else {
                    st.prepare(&req.repo, req.method.as_str(), now_unix())
                }
            };
            let auth = self.auth_step(&hs, &name, &req, step)?;
            // A streamed upload is usually fed by a download that holds a slot of its own; when
            // both ends are one registry, every slot can be held by such downloads, each
            // waiting for an upload slot. A bounded wait breaks that cycle: past it the upload
            // goes ahead without a slot (briefly exceeding reqConcurrent) rather than hanging.
            //
            // The same holds for the small requests of that upload (session POST, status GET,
            // cancel): only blob downloads, which are what hold slots for long, wait without
            // limit, so every cycle of waits has an exit.
            let own = hs
                .holders
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(&std::thread::current().id());
            let slot = match (&req.body, req.priority) {
                _ if own => None,
                (Body::Stream { .. }, _) => {
                    hs.throttle.acquire_timeout(req.priority, STREAM_SLOT_WAIT)
                }
                (_, Priority::Blob { .. }) => Some(hs.throttle.acquire(req.priority)),
                _ => hs.throttle.acquire_timeout(req.priority, SMALL_SLOT_WAIT),
            };
            let delay = hs.throttle.start_delay(Instant::now());
            if !delay.is_zero() {
                std::thread::sleep(delay);
            }
            let sent = self.send_once(&hs, &mut req, &url, auth.as_deref());
            let (resp, outcome) = match sent {
                Ok(r) => {
                    let o = Outcome::Status(r.status);
                    (Some(r), o)
                }
                Err(SendError::Net(e)) => {
                    let o = Outcome::Network(classify(&e));
                    let err = network_error(&e, &url, &name);
                    if more_hosts && !matches!(req.body, Body::Stream { .. }) {
                        hs.backoff
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .failure(Instant::now(), policy, policy.backoff(1));
                        hi += 1;
                        continue;
                    }
                    if matches!(req.body, Body::Stream { .. })
                        || attempt >= policy.max_attempts()
                        || matches!(o, Outcome::Network(NetError::Tls))
                    {
                        return Err(err.context(ctx()));
                    }
                    let d = policy.backoff(attempt);
                    self.log(LogEvent::Retry {
                        url: url.to_string(),
                        reason: err.to_string(),
                        wait: d,
                    });
                    hs.backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failure(Instant::now(), policy, d);
                    drop(slot);
                    std::thread::sleep(d);
                    continue;
                }
                Err(SendError::Other(e)) => return Err(e.context(ctx())),
            };
            let mut resp = resp.expect("response present");
            let hdrs: Vec<(&str, &str)> = resp.header_pairs();
            let decision = if req.expect_failure {
                policy.decide_no_backoff(attempt, &outcome, &hdrs, SystemTime::now())
            } else {
                policy.decide(attempt, &outcome, &hdrs, SystemTime::now())
            };
            let status = resp.status;
            match decision {
                Decision::Done => {
                    hs.backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .success();
                    resp._slot = slot.map(|g| HeldSlot::new(g, hs.clone()));
                    return Ok(resp);
                }
                Decision::Reauth if auth_rounds < MAX_AUTH_STEPS => {
                    auth_rounds += 1;
                    let www: Vec<String> = resp
                        .header_all("www-authenticate")
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    let www: Vec<&str> = www.iter().map(String::as_str).collect();
                    let next = {
                        let mut auths = hs.auth.lock().unwrap_or_else(|e| e.into_inner());
                        let st = auths.get_mut(&key).expect("auth state");
                        st.unauthorized(&www, &url, auth.as_deref(), now_unix())
                    };
                    drop(resp);
                    drop(slot);
                    match next {
                        Ok(_) => {
                            attempt -= 1; // an auth round is not a failure of the host
                            continue;
                        }
                        Err(e) => {
                            return Err(Error::new(
                                ErrorKind::Unauthorized,
                                format!(
                                    "unauthorized: {} {} on {}: {}",
                                    req.method.as_str(),
                                    url.path(),
                                    req.registry,
                                    e.message()
                                ),
                            )
                            .with_status(status))
                        }
                    }
                }
                Decision::RetryAfter(d) if !matches!(req.body, Body::Stream { .. }) => {
                    hs.backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .failure(Instant::now(), policy, d);
                    self.log(LogEvent::Retry {
                        url: url.to_string(),
                        reason: format!("status {status}"),
                        wait: d,
                    });
                    drop(resp);
                    drop(slot);
                    std::thread::sleep(d);
                    continue;
                }
                Decision::NextHost(_) | Decision::DropHost(_) if more_hosts => {
                    if matches!(decision, Decision::DropHost(_)) {
                        hs.backoff
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .failure(Instant::now(), policy, policy.backoff(1));
                    }
                    drop(resp);
                    drop(slot);
                    hi += 1;
                    continue;
                }
                _ => {
                    let kind = crate::transport::retry::status_error_kind(status);
                    let body = if req.method == Method::Head {
                        Vec::new()
                    } else {
                        resp.body
                            .take()
                            .map(|b| {
                                let mut v = Vec::new();
                                let _ = b.take(MAX_ERROR_BODY).read_to_end(&mut v);
                                v
                            })
                            .unwrap_or_default()
                    };
                    let text = error_text(&body);
                    let what = match kind {
                        ErrorKind::NotFound => "not found",
                        ErrorKind::Unauthorized => "unauthorized",
                        ErrorKind::RateLimit => "rate limit exceeded",
                        _ => "unexpected http status",
                    };
                    return Err(Error::new(
                        kind,
                        format!(
                            "{what}: {} {} on {} returned {status}{}",
                            req.method.as_str(),
                            url.path(),
                            req.registry,
                            if text.is_empty() {
                                String::new()
                            } else {
                                format!(": {text}")
                            }
                        ),
                    )
                    .with_status(status));
                }
            }
        }
    }

    /// Sends a small request and reads its whole body (at most `max` bytes). A body cut short
    /// (reset, truncated) is requested again, up to three times in all: the retries of `send`
    /// end once headers arrive, and small bodies are cheap to fetch whole again.
    pub fn fetch(&self, make: &dyn Fn() -> Request<'static>, max: usize) -> Result<Fetched> {
        let mut tries = 0;
        loop {
            tries += 1;
            let resp = self.send(make())?;
            let (status, headers, url) = (resp.status, resp.headers.clone(), resp.url.clone());
            match resp.read_body(max) {
                Ok(body) => {
                    return Ok(Fetched {
                        status,
                        headers,
                        url,
                        body,
                    })
                }
                Err(e)
                    if tries < 3
                        && matches!(
                            e.kind(),
                            ErrorKind::Io | ErrorKind::Network | ErrorKind::ShortRead
                        ) =>
                {
                    self.log(LogEvent::Retry {
                        url: url.to_string(),
                        reason: e.to_string(),
                        wait: Duration::ZERO,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Hosts to try, in order: for reads of repository content, the configured mirrors and
    /// the registry itself, by descending `priority` (mirrors first on a tie; hosts in backoff
    /// last); for everything else only the registry.
    fn candidates(&self, req: &Request<'_>) -> Vec<(String, Arc<HostState>)> {
        let upstream = self.state(&req.registry);
        let mirrorable = matches!(req.method, Method::Get | Method::Head)
            && matches!(req.target, Target::Repo(_));
        let mut hosts: Vec<(String, Arc<HostState>)> = Vec::new();
        if mirrorable {
            for m in upstream.host.mirrors.iter().take(16) {
                if m != &req.registry {
                    hosts.push((m.clone(), self.state(m)));
                }
            }
        }
        if hosts.is_empty() {
            return vec![(req.registry.clone(), upstream)];
        }
        hosts.push((req.registry.clone(), upstream));
        let now = Instant::now();
        // Stable sort: equal keys keep mirrors ahead of the upstream.
        hosts.sort_by_key(|(_, h)| {
            let backing_off = !h
                .backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .wait(now)
                .is_zero();
            (backing_off, std::cmp::Reverse(h.host.priority))
        });
        hosts
    }

    fn send_once(
        &self,
        hs: &HostState,
        req: &mut Request<'_>,
        url: &Url,
        auth: Option<&str>,
    ) -> std::result::Result<Response, SendError> {
        let agent = self.agent(hs).map_err(SendError::Other)?;
        let mut url = url.clone();
        let mut auth = auth.map(str::to_string);
        for hop in 0..=redirect::MAX_REDIRECTS {
            let mut b = ureq::http::Request::builder()
                .method(req.method.as_str())
                .uri(url.to_string());
            let mut logged: Vec<(String, String)> = req.headers.clone();
            for (k, v) in &req.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            if let Some(a) = &auth {
                b = b.header("Authorization", a.as_str());
                logged.push(("Authorization".into(), a.clone()));
            }
            self.log(LogEvent::Request {
                method: req.method.as_str().into(),
                url: url.to_string(),
                headers: redact_headers(&logged),
            });
            let result = match &mut req.body {
                Body::Empty => {
                    let needs_len =
                        matches!(req.method, Method::Post | Method::Put | Method::Patch);
                    if needs_len {
                        b = b.header("Content-Length", "0");
                    }
                    let r = b.body(()).map_err(|e| {
                        SendError::Other(Error::new(ErrorKind::InvalidInput, e.to_string()))
                    })?;
                    agent.run(r)
                }
                Body::Bytes(bytes) => {
                    b = b.header("Content-Length", bytes.len().to_string());
                    let r = b.body(*bytes).map_err(|e| {
                        SendError::Other(Error::new(ErrorKind::InvalidInput, e.to_string()))
                    })?;
                    agent.run(r)
                }
                Body::Stream { reader, len } => {
                    b = b.header("Content-Length", len.to_string());
                    let sb = ureq::SendBody::from_reader(&mut **reader);
                    let r = b.body(sb).map_err(|e| {
                        SendError::Other(Error::new(ErrorKind::InvalidInput, e.to_string()))
                    })?;
                    agent.run(r)
                }
            };
            let resp = result.map_err(SendError::Net)?;
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            self.log(LogEvent::Response {
                method: req.method.as_str().into(),
                url: url.to_string(),
                status,
                headers: redact_headers(&headers),
            });
            {
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                for text in registry_warnings(&pairs) {
                    if self
                        .warnings
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(&text)
                    {
                        self.log(LogEvent::Warning {
                            host: req.registry.clone(),
                            text,
                        });
                    }
                }
            }
            let location = headers
                .iter()
                .find(|(k, _)| k == "location")
                .map(|(_, v)| v.clone());
            let is_redirect = matches!(status, 301 | 302 | 303 | 307 | 308);
            if is_redirect && matches!(req.method, Method::Get | Method::Head) {
                if let Some(loc) = location {
                    let to = url.join(&loc).map_err(SendError::Other)?;
                    let action =
                        redirect::check_with(&url, &to, hop + 1, self.cfg.proxy.is_proxied(&url))
                            .map_err(SendError::Other)?;
                    if !action.keep_authorization {
                        auth = None;
                    }
                    url = to;
                    continue;
                }
            }
            let body: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
            return Ok(Response {
                status,
                headers,
                url,
                body: Some(body),
                _slot: None,
            });
        }
        Err(SendError::Other(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "http redirect refused: more than {} redirects",
                redirect::MAX_REDIRECTS
            ),
        )))
    }
}

enum SendError {
    Net(ureq::Error),
    Other(Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> Transport {
        Transport::new(
            TransportConfig::default(),
            Box::new(|name: &str| {
                let mut h = Host::new_name(name);
                match name {
                    "up.example" => {
                        h.mirrors = vec!["m1.example".into(), "m2.example".into()];
                    }
                    "m2.example" => h.priority = 5,
                    _ => {}
                }
                h
            }),
        )
    }

    #[test]
    fn mirrors_only_for_reads_by_priority() {
        let t = transport();
        let names = |req: &Request<'_>| -> Vec<String> {
            t.candidates(req).into_iter().map(|(n, _)| n).collect()
        };
        let get = Request::new(
            Method::Get,
            "up.example",
            "r",
            Target::Repo("manifests/v1".into()),
        );
        assert_eq!(names(&get), ["m2.example", "m1.example", "up.example"]);
        let put = Request::new(
            Method::Put,
            "up.example",
            "r",
            Target::Repo("manifests/v1".into()),
        );
        assert_eq!(names(&put), ["up.example"]);
        let ping = Request::new(Method::Get, "up.example", "", Target::Root);
        assert_eq!(names(&ping), ["up.example"]);
    }

    #[test]
    fn redaction() {
        let h = vec![
            (
                "Authorization".to_string(),
                "Bearer secret-token".to_string(),
            ),
            ("Accept".to_string(), "x".to_string()),
        ];
        let r = redact_headers(&h);
        assert_eq!(r[0].1, "[redacted]");
        assert_eq!(r[1].1, "x");
        assert!(!format!("{r:?}").contains("secret-token"));
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_text(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_text(b"plain text"), "plain text");
    }
}
