//! An in-process distribution-API registry on loopback that can misbehave on purpose.
//!
//! Real registries disagree with the spec in many small ways (see the protocol notes the project
//! was built from); this server reproduces those quirks on demand so client recovery paths can be
//! tested deterministically. It is plain HTTP/1.1 over std sockets: a thread per connection,
//! keep-alive, `Content-Length` and chunked request bodies, in-memory storage.
//!
//! The HTTP plumbing ([`HttpServer`], [`Request`], [`Response`]) and the raw test client
//! ([`http`], [`Client`]) are shared with the token server in `token.rs` and the self-tests.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha512};

/// Largest request body accepted at all (413 above it).
pub const MAX_BODY: usize = 64 << 20;
/// GHCR-like per-request body cap, for [`Faults::body_cap`].
pub const GHCR_BODY_CAP: usize = 4 << 20;
/// Bound on the request line plus headers.
const MAX_HEAD: usize = 64 << 10;
/// A connection idle this long is closed, so a stuck client cannot pin a thread forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_REQUESTS_PER_CONN: usize = 100_000;
/// How long dropping a server waits for its threads.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

// ------------------------------------------------------------------------------------------------
// HTTP server plumbing

/// One parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// Path without the query, not percent-decoded (repository names never need it).
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    http11: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// How a response body is (mis)delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// The whole body.
    None,
    /// Half the body, then the connection is shut down.
    Reset,
    /// The full `Content-Length` is announced but the last quarter is never sent.
    Truncate,
    /// The whole body, slowly: 64 KiB every 50 ms (about 1.3 MB/s).
    Slow,
}

/// A response to write.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Answer to a HEAD: `Content-Length` of `body` but no bytes.
    pub head: bool,
    pub cut: Cut,
    /// Close the connection afterwards.
    pub close: bool,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            head: false,
            cut: Cut::None,
            close: false,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Response {
        self.headers
            .push(("Content-Type".to_string(), content_type.to_string()));
        self.body = body;
        self
    }

    pub fn json(status: u16, v: &Value) -> Response {
        Response::new(status).body("application/json", v.to_string().into_bytes())
    }

    /// An OCI error body (`{"errors":[{"code","message"}]}`).
    pub fn error(status: u16, code: &str, message: &str) -> Response {
        Response::json(
            status,
            &json!({"errors": [{"code": code, "message": message, "detail": null}]}),
        )
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

struct ServerShared {
    shutdown: AtomicBool,
    /// Clones of open connections, shut down on stop to unblock their readers.
    conns: Mutex<HashMap<u64, TcpStream>>,
    active: Mutex<usize>,
    idle: Condvar,
}

/// A loopback HTTP/1.1 server running `handler` for every request; stops when dropped.
pub struct HttpServer {
    addr: SocketAddr,
    shared: Arc<ServerShared>,
    accept: Option<(JoinHandle<()>, mpsc::Receiver<()>)>,
}

/// Decrements the active-connection count even if a handler panics.
struct ActiveGuard(Arc<ServerShared>, u64);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        lock(&self.0.conns).remove(&self.1);
        let mut n = lock(&self.0.active);
        *n -= 1;
        self.0.idle.notify_all();
    }
}

/// Locks, ignoring poisoning: a panicking handler thread must not wedge the whole test.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HttpServer {
    pub fn start(handler: Handler) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(ServerShared {
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            active: Mutex::new(0),
            idle: Condvar::new(),
        });
        let sh = shared.clone();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let accept = thread::spawn(move || {
            // Dropped (disconnecting the channel) when this thread ends, however it ends.
            let _done = done_tx;
            let mut next_id = 0u64;
            // Bounded by the shutdown flag: Drop sets it and then connects to wake accept().
            for conn in listener.incoming() {
                if sh.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let Ok(clone) = stream.try_clone() else {
                    continue;
                };
                next_id += 1;
                {
                    // Checked under the lock Drop takes after setting the flag, so no connection
                    // escapes the shutdown pass.
                    let mut conns = lock(&sh.conns);
                    if sh.shutdown.load(Ordering::SeqCst) {
                        break;
                    }
                    conns.insert(next_id, clone);
                }
                *lock(&sh.active) += 1;
                let guard = ActiveGuard(sh.clone(), next_id);
                let handler = handler.clone();
                thread::spawn(move || {
                    // Moved in so the count drops when this thread ends, however it ends.
                    let guard = guard;
                    serve_conn(stream, &handler, &guard.0);
                });
            }
        });
        HttpServer {
            addr,
            shared,
            accept: Some((accept, done_rx)),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        for c in lock(&self.shared.conns).values() {
            let _ = c.shutdown(Shutdown::Both);
        }
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some((t, done)) = self.accept.take() {
            // Join only once the thread has ended, so a lost wake-up cannot hang the test.
            if let Err(mpsc::RecvTimeoutError::Disconnected) = done.recv_timeout(STOP_TIMEOUT) {
                let _ = t.join();
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut n = lock(&self.shared.active);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break; // leave stragglers detached rather than hang the test
            }
            n = self
                .shared
                .idle
                .wait_timeout(n, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

enum ReadErr {
    /// Clean end of the connection before a request started.
    Eof,
    Io,
    /// Malformed or oversized: answer with this status and close.
    Bad(u16, &'static str),
}

fn serve_conn(stream: TcpStream, handler: &Handler, shared: &ServerShared) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(mut w) = stream.try_clone() else {
        return;
    };
    let mut r = BufReader::new(stream);
    for _ in 0..MAX_REQUESTS_PER_CONN {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let req = match read_request(&mut r, &mut w) {
            Ok(req) => req,
            Err(ReadErr::Bad(status, msg)) => {
                let mut resp = Response::error(status, "UNSUPPORTED", msg);
                resp.close = true;
                let _ = write_response(&mut w, &resp);
                break;
            }
            Err(ReadErr::Eof | ReadErr::Io) => break,
        };
        let keep = req.http11
            && !req
                .header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let mut resp = handler(&req);
        if !keep {
            resp.close = true;
        }
        if write_response(&mut w, &resp).is_err()
            || resp.close
            || matches!(resp.cut, Cut::Reset | Cut::Truncate)
        {
            break;
        }
    }
    let _ = w.shutdown(Shutdown::Both);
}

/// Reads one line (without CRLF), at most `max` bytes.
fn read_line(r: &mut impl BufRead, max: usize) -> Result<String, ReadErr> {
    let mut buf = Vec::new();
    let n = r
        .take(max as u64 + 1)
        .read_until(b'\n', &mut buf)
        .map_err(|_| ReadErr::Io)?;
    if n == 0 {
        return Err(ReadErr::Eof);
    }
    if buf.last() != Some(&b'\n') {
        return Err(if n > max {
            ReadErr::Bad(431, "header line too long")
        } else {
            ReadErr::Io
        });
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| ReadErr::Bad(400, "header is not UTF-8"))
}

fn read_request(r: &mut BufReader<TcpStream>, w: &mut TcpStream) -> Result<Request, ReadErr> {
    let line = read_line(r, MAX_HEAD)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadErr::Bad(400, "bad request line"));
    };
    let http11 = version == "HTTP/1.1";
    let mut headers = Vec::new();
    let mut total = line.len();
    loop {
        let h = match read_line(r, MAX_HEAD) {
            Err(ReadErr::Eof) => return Err(ReadErr::Io),
            other => other?,
        };
        total += h.len();
        if total > MAX_HEAD || headers.len() > 200 {
            return Err(ReadErr::Bad(431, "headers too large"));
        }
        if h.is_empty() {
            break;
        }
        let Some((k, v)) = h.split_once(':') else {
            return Err(ReadErr::Bad(400, "bad header line"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = match get("content-length") {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| ReadErr::Bad(400, "bad Content-Length"))?,
        ),
        None => None,
    };
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadErr::Bad(413, "request body too large"));
    }
    let has_body = chunked || length.is_some_and(|n| n > 0);
    if has_body
        && get("expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        && w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").is_err()
    {
        return Err(ReadErr::Io);
    }
    let mut body = Vec::new();
    if chunked {
        // Bounded: every iteration consumes at least one line and the total is capped.
        for _ in 0..=MAX_BODY {
            let size_line = read_line(r, 1024).map_err(|e| match e {
                ReadErr::Eof => ReadErr::Io,
                e => e,
            })?;
            let hex = size_line.split(';').next().unwrap_or("").trim();
            let size =
                usize::from_str_radix(hex, 16).map_err(|_| ReadErr::Bad(400, "bad chunk size"))?;
            if size == 0 {
                for _ in 0..100 {
                    if read_line(r, MAX_HEAD)?.is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadErr::Bad(413, "request body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..]).map_err(|_| ReadErr::Io)?;
            if !read_line(r, 2)?.is_empty() {
                return Err(ReadErr::Bad(400, "bad chunk terminator"));
            }
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        r.read_exact(&mut body).map_err(|_| ReadErr::Io)?;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (target.to_string(), Vec::new()),
    };
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        path,
        query,
        headers,
        body,
        http11,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn write_response(w: &mut TcpStream, resp: &Response) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    // RFC 9110: no Content-Length on 1xx/204.
    if resp.status != 204 && resp.status >= 200 && resp.get_header("content-length").is_none() {
        head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
    }
    let cut = matches!(resp.cut, Cut::Reset | Cut::Truncate);
    if resp.close || cut {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let body: &[u8] = if resp.head || resp.status == 204 {
        &[]
    } else {
        match resp.cut {
            Cut::None => &resp.body,
            Cut::Slow => {
                w.write_all(head.as_bytes())?;
                for piece in resp.body.chunks(64 << 10) {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    w.write_all(piece)?;
                }
                return w.flush();
            }
            Cut::Reset => &resp.body[..resp.body.len() / 2],
            Cut::Truncate => {
                let n = resp.body.len();
                &resp.body[..n - (n / 4).max(1).min(n)]
            }
        }
    };
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    w.write_all(&out)?;
    w.flush()?;
    if cut {
        let _ = w.shutdown(Shutdown::Both);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Small encoders shared with token.rs

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hexval = |c: u8| (c as char).to_digit(16);
                match (hexval(b[i + 1]), hexval(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parses `a=1&b=2` (also `application/x-www-form-urlencoded` bodies).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_with(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            for _ in c.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    b64_with(data, B64, true)
}

/// base64url without padding (JWT).
pub fn base64url(data: &[u8]) -> String {
    b64_with(data, B64URL, false)
}

/// Decodes standard or url-safe base64, padding optional, whitespace ignored.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b'\r' | b'\n' | b' ' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(data)))
}

/// Computes a digest of `data` with the algorithm of `like` (sha256 or sha512).
fn digest_like(like: &str, data: &[u8]) -> Option<String> {
    match like.split_once(':')?.0 {
        "sha256" => Some(sha256_digest(data)),
        "sha512" => Some(format!("sha512:{}", hex(&Sha512::digest(data)))),
        _ => None,
    }
}

/// 32 random hex chars.
pub fn random_hex() -> String {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system random");
    hex(&b)
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a unix time (civil-from-days, proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `(user, password)` from a `Basic` Authorization header.
pub fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    let h = header?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = String::from_utf8(base64_decode(rest.trim())?).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Splits `type:name:actions`; the name may contain ':' (`host:port/repo`).
pub fn parse_scope(scope: &str) -> Option<(String, String, Vec<String>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some((
        kind.to_string(),
        name.to_string(),
        actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    ))
}

// ------------------------------------------------------------------------------------------------
// Faults

/// A misbehaviour, applied by a [`Rule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Response body: write half of it, then shut the connection down.
    Reset,
    /// Response body: announce the full length, send three quarters, close.
    Truncate,
    /// Answer with this status (request not processed), optionally with `Retry-After` seconds.
    Status { code: u16, retry_after: Option<u64> },
    /// 416 on a PATCH chunk (nothing stored).
    Patch416,
    /// Upload status (`GET <location>`) reports half of what was received.
    StaleRange,
    /// `PUT <location>?digest=` with a body is refused with this status; the session survives,
    /// so the client can fall back to chunked PATCHes.
    RefuseMonolithic { code: u16 },
    /// Mount requests always answer 202 + a new session, even when the blob exists.
    MountNever,
    /// No `Docker-Content-Digest` header.
    NoDigest,
    /// HEAD answers 405.
    HeadDisabled,
    /// Response body sent slowly (see [`Cut::Slow`]).
    Slow,
}

/// Applies `fault` to requests whose method matches (any when `None`) and whose path+query
/// contains `path`, the first `times` matching requests (always when `None`).
#[derive(Debug, Clone)]
pub struct Rule {
    pub fault: Fault,
    pub method: Option<String>,
    pub path: String,
    pub times: Option<usize>,
    /// How many times it has fired.
    pub hits: usize,
}

impl Rule {
    pub fn always(fault: Fault) -> Rule {
        Rule {
            fault,
            method: None,
            path: String::new(),
            times: None,
            hits: 0,
        }
    }

    pub fn first(n: usize, fault: Fault) -> Rule {
        Rule {
            times: Some(n),
            ..Rule::always(fault)
        }
    }

    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_string());
        self
    }

    pub fn path(mut self, p: &str) -> Rule {
        self.path = p.to_string();
        self
    }
}

/// Authentication the registry demands.
#[derive(Debug, Clone, Default)]
pub enum Auth {
    #[default]
    None,
    /// `WWW-Authenticate: Basic realm="fakereg"`, one fixed user.
    Basic { user: String, pass: String },
    /// Bearer tokens from this server's own `/token` endpoint (service `fakereg`).
    Bearer(BearerAuth),
}

#[derive(Debug, Clone, Default)]
pub struct BearerAuth {
    pub user: String,
    pub pass: String,
    /// Anonymous token requests get `pull` (otherwise nothing).
    pub anonymous_pull: bool,
    /// The ACL refuses `push` and `delete` to everyone.
    pub deny_push: bool,
    /// Token lifetime in seconds (0 means 300).
    pub expires_in: u64,
}

/// Runtime switches; change them through [`FakeRegistry::faults`] at any time.
#[derive(Debug, Clone)]
pub struct Faults {
    pub rules: Vec<Rule>,
    /// 413 for request bodies above this (GHCR: [`GHCR_BODY_CAP`]).
    pub body_cap: Option<usize>,
    /// Quay-style tag pages: 50 per page, `last` ignored, paging by a cursor in the `Link` URL.
    pub quay_tags: bool,
    /// The referrers API (on by default); off answers 404 and omits `OCI-Subject`.
    pub referrers: bool,
    /// Adds `Warning: 299 - "<text>"` to every response.
    pub warning: Option<String>,
    pub auth: Auth,
    /// Blob GETs answer 307 to the second listener (see [`FakeRegistry::redirect_requests`]).
    pub redirect_blobs: bool,
    /// `RateLimit-Limit` / `RateLimit-Remaining` headers on manifest responses.
    pub ratelimit: Option<RateLimitFault>,
    /// `OCI-Chunk-Min-Length` on the answer that opens an upload session.
    pub chunk_min: Option<usize>,
}

/// Docker Hub style rate-limit headers on manifest GET and HEAD responses.
#[derive(Debug, Clone, Default)]
pub struct RateLimitFault {
    /// `RateLimit-Limit: <limit>;w=21600`.
    pub limit: i64,
    /// `RateLimit-Remaining`, one value per manifest HEAD (the last repeats); a GET reports the
    /// value of the latest HEAD without consuming one.
    pub remaining: Vec<i64>,
    /// Manifest HEADs answered so far.
    pub heads: usize,
}

impl RateLimitFault {
    pub fn new(limit: i64, remaining: &[i64]) -> RateLimitFault {
        RateLimitFault {
            limit,
            remaining: remaining.to_vec(),
            heads: 0,
        }
    }
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            rules: Vec::new(),
            body_cap: None,
            quay_tags: false,
            referrers: true,
            warning: None,
            auth: Auth::None,
            redirect_blobs: false,
            ratelimit: None,
            chunk_min: None,
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Registry state

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Request headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
    pub status: u16,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether an `Authorization` header was sent.
    pub fn has_auth(&self) -> bool {
        self.header("authorization").is_some()
    }
}

#[derive(Clone)]
struct Manifest {
    body: Vec<u8>,
    media_type: String,
}

#[derive(Default)]
struct Repo {
    manifests: HashMap<String, Manifest>,
    tags: BTreeMap<String, String>,
    blobs: HashMap<String, Arc<Vec<u8>>>,
}

struct Upload {
    repo: String,
    data: Vec<u8>,
}

struct Grant {
    /// `(type, name, actions)`.
    access: Vec<(String, String, Vec<String>)>,
}

#[derive(Default)]
struct Store {
    repos: BTreeMap<String, Repo>,
    uploads: HashMap<String, Upload>,
    tokens: HashMap<String, Grant>,
    refresh: HashMap<String, String>,
    state_counter: u64,
}

struct Inner {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<Req>>,
    redirect_log: Mutex<Vec<Req>>,
    port: AtomicU64,
    redirect_port: AtomicU64,
}

/// The fake registry: a main listener and a second one that serves redirected blob GETs.
pub struct FakeRegistry {
    inner: Arc<Inner>,
    main: HttpServer,
    redirect: HttpServer,
}

impl Default for FakeRegistry {
    fn default() -> Self {
        FakeRegistry::start()
    }
}

impl FakeRegistry {
    pub fn start() -> FakeRegistry {
        let inner = Arc::new(Inner {
            store: Mutex::new(Store::default()),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            redirect_log: Mutex::new(Vec::new()),
            port: AtomicU64::new(0),
            redirect_port: AtomicU64::new(0),
        });
        let i = inner.clone();
        let main = HttpServer::start(Arc::new(move |req| i.handle(req)));
        let i = inner.clone();
        let redirect = HttpServer::start(Arc::new(move |req| i.handle_redirected(req)));
        inner
            .port
            .store(u64::from(main.addr().port()), Ordering::SeqCst);
        inner
            .redirect_port
            .store(u64::from(redirect.addr().port()), Ordering::SeqCst);
        FakeRegistry {
            inner,
            main,
            redirect,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.main.host()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Host of the second listener that redirected blob GETs land on.
    pub fn redirect_host(&self) -> String {
        self.redirect.host()
    }

    /// The switches, to read or change: `reg.faults().quay_tags = true;`.
    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.inner.faults)
    }

    /// Adds a fault rule.
    pub fn add_rule(&self, rule: Rule) {
        self.faults().rules.push(rule);
    }

    /// Removes all rules and resets every switch (storage is kept).
    pub fn clear_faults(&self) {
        *self.faults() = Faults::default();
    }

    /// Every request to the main listener so far, in order.
    pub fn requests(&self) -> Vec<Req> {
        lock(&self.inner.log).clone()
    }

    /// Requests that reached the redirect listener.
    pub fn redirect_requests(&self) -> Vec<Req> {
        lock(&self.inner.redirect_log).clone()
    }

    /// Number of requests with `method` (any when empty) whose path+query starts with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        lock(&self.inner.log)
            .iter()
            .filter(|r| (method.is_empty() || r.method == method) && r.path.starts_with(prefix))
            .count()
    }

    pub fn clear_requests(&self) {
        lock(&self.inner.log).clear();
        lock(&self.inner.redirect_log).clear();
    }

    /// Stores a manifest (tagged unless `tag` is empty); returns its sha256 digest.
    pub fn put_manifest(&self, repo: &str, tag: &str, bytes: &[u8], media_type: &str) -> String {
        let digest = sha256_digest(bytes);
        let mut st = lock(&self.inner.store);
        let r = st.repos.entry(repo.to_string()).or_default();
        r.manifests.insert(
            digest.clone(),
            Manifest {
                body: bytes.to_vec(),
                media_type: media_type.to_string(),
            },
        );
        if !tag.is_empty() {
            r.tags.insert(tag.to_string(), digest.clone());
        }
        digest
    }

    /// Stores a blob; returns its sha256 digest.
    pub fn put_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        lock(&self.inner.store)
            .repos
            .entry(repo.to_string())
            .or_default()
            .blobs
            .insert(digest.clone(), Arc::new(bytes.to_vec()));
        digest
    }

    /// Creates `n` tags `t0000`.. (sorted order = numeric order) on one small OCI manifest with
    /// an empty config; returns the tags.
    pub fn seed_tags(&self, repo: &str, n: usize) -> Vec<String> {
        let config = self.put_blob(repo, b"{}");
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_EMPTY, "digest": config, "size": 2},
            "layers": [],
        })
        .to_string();
        let digest = self.put_manifest(repo, "", m.as_bytes(), OCI_MANIFEST);
        let tags: Vec<String> = (0..n).map(|i| format!("t{i:04}")).collect();
        let mut st = lock(&self.inner.store);
        let r = st.repos.entry(repo.to_string()).or_default();
        for t in &tags {
            r.tags.insert(t.clone(), digest.clone());
        }
        tags
    }

    pub fn blob(&self, repo: &str, digest: &str) -> Option<Vec<u8>> {
        lock(&self.inner.store)
            .repos
            .get(repo)?
            .blobs
            .get(digest)
            .map(|b| b.to_vec())
    }

    /// `(body, media type)` by tag or digest.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(Vec<u8>, String)> {
        let st = lock(&self.inner.store);
        let r = st.repos.get(repo)?;
        let d = if reference.contains(':') {
            reference
        } else {
            r.tags.get(reference)?.as_str()
        };
        r.manifests
            .get(d)
            .map(|m| (m.body.clone(), m.media_type.clone()))
    }

    pub fn tags(&self, repo: &str) -> Vec<String> {
        lock(&self.inner.store)
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Open upload sessions.
    pub fn upload_count(&self) -> usize {
        lock(&self.inner.store).uploads.len()
    }
}

/// Splits `/v2/<name>/<kind>/<rest>` for the route kinds below.
fn split_route(path: &str) -> Option<(&str, &'static str, &str)> {
    let p = path.strip_prefix("/v2/")?;
    for (marker, kind) in [
        ("/blobs/uploads", "uploads"),
        ("/manifests/", "manifests"),
        ("/blobs/", "blobs"),
        ("/tags/list", "tags"),
        ("/referrers/", "referrers"),
    ] {
        if let Some(i) = p.rfind(marker) {
            let name = &p[..i];
            let rest = &p[i + marker.len()..];
            if !name.is_empty() {
                return Some((name, kind, rest));
            }
        }
    }
    None
}

/// `Range: 0-<end>` as distribution reports it (`0-0` for an empty session).
fn upload_range(n: usize) -> String {
    format!("0-{}", n.saturating_sub(1))
}

/// `bytes=a-b` / `bytes=a-` against `total` → inclusive `(a, b)`, or `Err` when unsatisfiable.
fn parse_range(h: &str, total: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix range: the last b bytes.
        let n: usize = b.parse().ok()?;
        if n == 0 || total == 0 {
            return Some(Err(()));
        }
        return Some(Ok((total.saturating_sub(n), total - 1)));
    }
    let a: usize = a.parse().ok()?;
    let b: usize = if b.is_empty() {
        total.saturating_sub(1)
    } else {
        b.parse::<usize>().ok()?.min(total.saturating_sub(1))
    };
    if a >= total || b < a {
        return Some(Err(()));
    }
    Some(Ok((a, b)))
}

/// A blob body with Range support (200, 206 or 416).
fn blob_response(req: &Request, digest: &str, data: &[u8]) -> Response {
    let head = req.method == "HEAD";
    let base = |status: u16| {
        Response::new(status)
            .header("Docker-Content-Digest", digest)
            .header("Accept-Ranges", "bytes")
            .header("ETag", format!("\"{digest}\""))
    };
    let mut resp = match req.header("range").map(|h| parse_range(h, data.len())) {
        Some(Some(Ok((a, b)))) => base(206)
            .header("Content-Range", format!("bytes {a}-{b}/{}", data.len()))
            .body("application/octet-stream", data[a..=b].to_vec()),
        Some(Some(Err(()))) => base(416).header("Content-Range", format!("bytes */{}", data.len())),
        _ => base(200).body("application/octet-stream", data.to_vec()),
    };
    resp.head = head;
    resp
}

fn manifest_refs_subject(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("subject")?
        .get("digest")?
        .as_str()
        .map(str::to_string)
}

fn action_for(method: &str) -> &'static str {
    match method {
        "GET" | "HEAD" => "pull",
        "DELETE" => "delete",
        _ => "push",
    }
}

impl Inner {
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port.load(Ordering::SeqCst))
    }

    /// Finds the first rule that matches the request and satisfies `kind`, counts the hit.
    fn take_fault(&self, req: &Request, kind: impl Fn(&Fault) -> bool) -> Option<Fault> {
        let mut f = lock(&self.faults);
        let i = f.rules.iter().position(|r| {
            kind(&r.fault)
                && r.times.is_none_or(|t| r.hits < t)
                && r.method.as_deref().is_none_or(|m| m == req.method)
                && req.target.contains(&r.path)
        })?;
        f.rules[i].hits += 1;
        Some(f.rules[i].fault.clone())
    }

    fn record(&self, log: &Mutex<Vec<Req>>, req: &Request, status: u16) {
        lock(log).push(Req {
            method: req.method.clone(),
            path: req.target.clone(),
            headers: req.headers.clone(),
            body_len: req.body.len(),
            status,
        });
    }

    fn handle(&self, req: &Request) -> Response {
        let mut resp = self.route(req);
        if let Some(text) = lock(&self.faults).warning.clone() {
            resp.headers
                .push(("Warning".into(), format!("299 - \"{text}\"")));
        }
        if req.path.contains("/manifests/") && matches!(req.method.as_str(), "GET" | "HEAD") {
            if let Some(rl) = lock(&self.faults).ratelimit.as_mut() {
                let n = if req.method == "HEAD" {
                    rl.heads += 1;
                    rl.heads
                } else {
                    rl.heads.max(1)
                };
                let i = (n - 1).min(rl.remaining.len().saturating_sub(1));
                let remain = rl.remaining.get(i).copied().unwrap_or(0);
                resp.headers
                    .push(("RateLimit-Limit".into(), format!("{};w=21600", rl.limit)));
                resp.headers
                    .push(("RateLimit-Remaining".into(), format!("{remain};w=21600")));
            }
        }
        resp.headers.push((
            "Docker-Distribution-API-Version".into(),
            "registry/2.0".into(),
        ));
        self.record(&self.log, req, resp.status);
        resp
    }

    fn handle_redirected(&self, req: &Request) -> Response {
        // `/blob/<repo>/<digest>`: served without auth; the log shows whether the client
        // (wrongly) forwarded its Authorization header.
        let resp = (|| {
            let p = req.path.strip_prefix("/blob/")?;
            let (repo, digest) = p.rsplit_once('/')?;
            let st = lock(&self.store);
            let data = st.repos.get(repo)?.blobs.get(digest)?.clone();
            drop(st);
            Some(blob_response(req, digest, &data))
        })()
        .unwrap_or_else(|| Response::error(404, "BLOB_UNKNOWN", "blob unknown"));
        self.record(&self.redirect_log, req, resp.status);
        resp
    }

    fn route(&self, req: &Request) -> Response {
        if let Some(Fault::Status { code, retry_after }) =
            self.take_fault(req, |f| matches!(f, Fault::Status { .. }))
        {
            let code_name = match code {
                429 => "TOOMANYREQUESTS",
                503 => "UNAVAILABLE",
                _ => "UNKNOWN",
            };
            let mut resp = Response::error(code, code_name, "injected failure");
            if let Some(s) = retry_after {
                resp = resp.header("Retry-After", s.to_string());
            }
            return resp;
        }
        let (auth, cap, redirect) = {
            let f = lock(&self.faults);
            (f.auth.clone(), f.body_cap, f.redirect_blobs)
        };
        if req.path == "/token" {
            if let Auth::Bearer(b) = &auth {
                return self.token(req, b);
            }
            return Response::error(404, "NOT_FOUND", "no token endpoint");
        }
        if cap.is_some_and(|c| req.body.len() > c) {
            return Response::error(413, "SIZE_INVALID", "request body too large");
        }
        if let Some(denied) = self.authorize(req, &auth) {
            return denied;
        }
        if req.method == "HEAD"
            && self
                .take_fault(req, |f| *f == Fault::HeadDisabled)
                .is_some()
        {
            return Response::new(405);
        }
        let mut resp = self.dispatch(req, redirect);
        if resp.get_header("Docker-Content-Digest").is_some()
            && self.take_fault(req, |f| *f == Fault::NoDigest).is_some()
        {
            resp.remove_header("Docker-Content-Digest");
        }
        if !resp.head && !resp.body.is_empty() {
            match self.take_fault(req, |f| {
                matches!(f, Fault::Reset | Fault::Truncate | Fault::Slow)
            }) {
                Some(Fault::Reset) => resp.cut = Cut::Reset,
                Some(Fault::Truncate) => resp.cut = Cut::Truncate,
                Some(Fault::Slow) => resp.cut = Cut::Slow,
                _ => {}
            }
        }
        resp
    }

    /// `None` when the request may proceed, else the 401.
    fn authorize(&self, req: &Request, auth: &Auth) -> Option<Response> {
        match auth {
            Auth::None => None,
            Auth::Basic { user, pass } => {
                if basic_credentials(req.header("authorization"))
                    .is_some_and(|(u, p)| u == *user && p == *pass)
                {
                    return None;
                }
                Some(
                    Response::error(401, "UNAUTHORIZED", "authentication required")
                        .header("WWW-Authenticate", "Basic realm=\"fakereg\""),
                )
            }
            Auth::Bearer(_) => {
                let needed = if req.path == "/v2/" || req.path == "/v2" {
                    None
                } else if req.path.starts_with("/v2/_catalog") {
                    Some(("registry".to_string(), "catalog".to_string(), "*"))
                } else {
                    split_route(&req.path).map(|(name, _, _)| {
                        (
                            "repository".to_string(),
                            name.to_string(),
                            action_for(&req.method),
                        )
                    })
                };
                let token = req
                    .header("authorization")
                    .and_then(|h| h.split_once(' '))
                    .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                    .map(|(_, t)| t.trim().to_string());
                let (known, allowed) = {
                    let st = lock(&self.store);
                    match token.as_ref().and_then(|t| st.tokens.get(t)) {
                        None => (false, false),
                        Some(g) => (
                            true,
                            needed.as_ref().is_none_or(|(k, n, a)| {
                                g.access.iter().any(|(gk, gn, ga)| {
                                    gk == k && gn == n && ga.iter().any(|x| x == a || x == "*")
                                })
                            }),
                        ),
                    }
                };
                if known && allowed {
                    return None;
                }
                let mut chal = format!(
                    "Bearer realm=\"http://{}/token\",service=\"fakereg\"",
                    self.host()
                );
                if let Some((k, n, a)) = &needed {
                    let actions = if *a == "push" { "pull,push" } else { a };
                    chal.push_str(&format!(",scope=\"{k}:{n}:{actions}\""));
                }
                if token.is_some() {
                    chal.push_str(if known {
                        ",error=\"insufficient_scope\""
                    } else {
                        ",error=\"invalid_token\""
                    });
                }
                Some(
                    Response::error(401, "UNAUTHORIZED", "authentication required")
                        .header("WWW-Authenticate", chal),
                )
            }
        }
    }

    /// The in-process token endpoint (GET with optional Basic, or POST form).
    fn token(&self, req: &Request, b: &BearerAuth) -> Response {
        let unauthorized = || {
            Response::error(401, "UNAUTHORIZED", "invalid username or password")
                .header("WWW-Authenticate", "Basic realm=\"fakereg-token\"")
        };
        let (account, scopes) = match req.method.as_str() {
            "GET" => {
                let scopes: Vec<String> = req
                    .query_all("scope")
                    .iter()
                    .flat_map(|s| s.split(' '))
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                match basic_credentials(req.header("authorization")) {
                    Some((u, p)) if u == b.user && p == b.pass => (Some(u), scopes),
                    Some(_) => return unauthorized(),
                    None => (None, scopes),
                }
            }
            "POST" => {
                let form = parse_query(&String::from_utf8_lossy(&req.body));
                let get = |k: &str| {
                    form.iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let scopes = get("scope")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                match get("grant_type").as_str() {
                    "password" if get("username") == b.user && get("password") == b.pass => {
                        (Some(b.user.clone()), scopes)
                    }
                    "refresh_token" => match lock(&self.store).refresh.get(&get("refresh_token")) {
                        Some(a) => (Some(a.clone()), scopes),
                        None => return unauthorized(),
                    },
                    "password" => return unauthorized(),
                    _ => return Response::json(400, &json!({"error": "unsupported_grant_type"})),
                }
            }
            _ => return Response::new(405),
        };
        let access: Vec<(String, String, Vec<String>)> = scopes
            .iter()
            .filter_map(|s| parse_scope(s))
            .map(|(k, n, acts)| {
                let granted = acts
                    .into_iter()
                    .filter(|a| match (&account, a.as_str()) {
                        (None, "pull") => b.anonymous_pull,
                        (None, _) => false,
                        (Some(_), "push" | "delete") => !b.deny_push,
                        // `registry:catalog:*` is a read; `*` on a repository includes push.
                        (Some(_), "*") => k == "registry" || !b.deny_push,
                        (Some(_), _) => true,
                    })
                    .collect();
                (k, n, granted)
            })
            .collect();
        let token = format!("fakereg-{}", random_hex());
        let expires = if b.expires_in == 0 { 300 } else { b.expires_in };
        let mut body = json!({
            "token": token,
            "access_token": token,
            "expires_in": expires,
            "issued_at": rfc3339(unix_now()),
        });
        let mut st = lock(&self.store);
        if let Some(a) = &account {
            let rt = format!("refresh-{}", random_hex());
            st.refresh.insert(rt.clone(), a.clone());
            body["refresh_token"] = json!(rt);
        }
        st.tokens.insert(token, Grant { access });
        Response::json(200, &body)
    }

    fn location(&self, st: &mut Store, name: &str, id: &str) -> String {
        // An opaque, changing query parameter: clients must use the newest Location and append
        // `digest=` with '&'.
        st.state_counter += 1;
        format!("/v2/{name}/blobs/uploads/{id}?_state={}", st.state_counter)
    }

    fn dispatch(&self, req: &Request, redirect: bool) -> Response {
        let m = req.method.as_str();
        if req.path == "/v2/" || req.path == "/v2" {
            return match m {
                "GET" | "HEAD" => {
                    let mut r = Response::json(200, &json!({}));
                    r.head = m == "HEAD";
                    r
                }
                _ => Response::new(405),
            };
        }
        if req.path == "/v2/_catalog" {
            return self.catalog(req);
        }
        let Some((name, kind, rest)) = split_route(&req.path) else {
            return Response::error(404, "NOT_FOUND", "unknown path");
        };
        match (kind, m) {
            ("manifests", "GET" | "HEAD") => self.get_manifest(req, name, rest),
            ("manifests", "PUT") => self.put_manifest(req, name, rest),
            ("manifests", "DELETE") => self.delete_manifest(name, rest),
            ("blobs", "GET" | "HEAD") => self.get_blob(req, name, rest, redirect),
            ("blobs", "DELETE") => {
                let mut st = lock(&self.store);
                match st.repos.get_mut(name).and_then(|r| r.blobs.remove(rest)) {
                    Some(_) => Response::new(202),
                    None => Response::error(404, "BLOB_UNKNOWN", "blob unknown"),
                }
            }
            ("uploads", "POST") if rest.trim_matches('/').is_empty() => {
                self.start_upload(req, name)
            }
            ("uploads", _) if !rest.trim_matches('/').is_empty() => {
                self.upload(req, name, rest.trim_matches('/'))
            }
            ("tags", "GET") => self.tags_list(req, name),
            ("referrers", "GET") => self.referrers(req, name, rest),
            _ => Response::error(405, "UNSUPPORTED", "method not allowed"),
        }
    }

    fn get_manifest(&self, req: &Request, name: &str, reference: &str) -> Response {
        let st = lock(&self.store);
        let found = st.repos.get(name).and_then(|r| {
            let d = if reference.contains(':') {
                reference.to_string()
            } else {
                r.tags.get(reference)?.clone()
            };
            r.manifests.get(&d).map(|m| (d, m.clone()))
        });
        drop(st);
        let Some((digest, m)) = found else {
            return Response::error(404, "MANIFEST_UNKNOWN", "manifest unknown");
        };
        let mut resp = Response::new(200)
            .header("Docker-Content-Digest", digest.clone())
            .header("ETag", format!("\"{digest}\""))
            .body(&m.media_type, m.body);
        resp.head = req.method == "HEAD";
        resp
    }

    fn put_manifest(&self, req: &Request, name: &str, reference: &str) -> Response {
        let by_digest = reference.contains(':');
        let digest = if by_digest {
            match digest_like(reference, &req.body) {
                Some(d) if d == reference => d,
                _ => return Response::error(400, "DIGEST_INVALID", "manifest digest mismatch"),
            }
        } else {
            sha256_digest(&req.body)
        };
        let media_type = req
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
            .filter(|c| !c.is_empty())
            .or_else(|| {
                serde_json::from_slice::<Value>(&req.body)
                    .ok()?
                    .get("mediaType")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| OCI_MANIFEST.to_string());
        if serde_json::from_slice::<Value>(&req.body).is_err() {
            return Response::error(400, "MANIFEST_INVALID", "manifest is not JSON");
        }
        let subject = manifest_refs_subject(&req.body);
        {
            let mut st = lock(&self.store);
            let r = st.repos.entry(name.to_string()).or_default();
            r.manifests.insert(
                digest.clone(),
                Manifest {
                    body: req.body.clone(),
                    media_type,
                },
            );
            if !by_digest {
                r.tags.insert(reference.to_string(), digest.clone());
            }
        }
        let mut resp = Response::new(201)
            .header("Location", format!("/v2/{name}/manifests/{digest}"))
            .header("Docker-Content-Digest", digest);
        if let Some(s) = subject {
            if lock(&self.faults).referrers {
                resp = resp.header("OCI-Subject", s);
            }
        }
        resp
    }

    fn delete_manifest(&self, name: &str, reference: &str) -> Response {
        let mut st = lock(&self.store);
        let Some(r) = st.repos.get_mut(name) else {
            return Response::error(404, "NAME_UNKNOWN", "repository unknown");
        };
        if reference.contains(':') {
            if r.manifests.remove(reference).is_none() {
                return Response::error(404, "MANIFEST_UNKNOWN", "manifest unknown");
            }
            r.tags.retain(|_, d| d != reference);
        } else if r.tags.remove(reference).is_none() {
            return Response::error(404, "MANIFEST_UNKNOWN", "tag unknown");
        }
        Response::new(202)
    }

    fn get_blob(&self, req: &Request, name: &str, digest: &str, redirect: bool) -> Response {
        let data = {
            let st = lock(&self.store);
            st.repos
                .get(name)
                .and_then(|r| r.blobs.get(digest).cloned())
        };
        let Some(data) = data else {
            let mut r = Response::error(404, "BLOB_UNKNOWN", "blob unknown");
            r.head = req.method == "HEAD";
            return r;
        };
        if redirect && req.method == "GET" {
            return Response::new(307).header(
                "Location",
                format!(
                    "http://127.0.0.1:{}/blob/{name}/{digest}",
                    self.redirect_port.load(Ordering::SeqCst)
                ),
            );
        }
        blob_response(req, digest, &data)
    }

    fn start_upload(&self, req: &Request, name: &str) -> Response {
        let mut st = lock(&self.store);
        if let Some(mount) = req.query("mount") {
            let never = {
                drop(st);
                let n = self.take_fault(req, |f| *f == Fault::MountNever).is_some();
                st = lock(&self.store);
                n
            };
            let found = if never {
                None
            } else if let Some(from) = req.query("from") {
                st.repos.get(from).and_then(|r| r.blobs.get(mount).cloned())
            } else {
                // Anonymous mount: the blob may come from any repository.
                st.repos.values().find_map(|r| r.blobs.get(mount).cloned())
            };
            if let Some(data) = found {
                st.repos
                    .entry(name.to_string())
                    .or_default()
                    .blobs
                    .insert(mount.to_string(), data);
                return Response::new(201)
                    .header("Location", format!("/v2/{name}/blobs/{mount}"))
                    .header("Docker-Content-Digest", mount);
            }
        } else if let Some(digest) = req.query("digest") {
            // Single-POST monolithic upload.
            if digest_like(digest, &req.body).as_deref() != Some(digest) {
                return Response::error(400, "DIGEST_INVALID", "digest mismatch");
            }
            st.repos
                .entry(name.to_string())
                .or_default()
                .blobs
                .insert(digest.to_string(), Arc::new(req.body.clone()));
            return Response::new(201)
                .header("Location", format!("/v2/{name}/blobs/{digest}"))
                .header("Docker-Content-Digest", digest);
        }
        let id = random_hex();
        st.uploads.insert(
            id.clone(),
            Upload {
                repo: name.to_string(),
                data: Vec::new(),
            },
        );
        let loc = self.location(&mut st, name, &id);
        let resp = Response::new(202)
            .header("Location", loc)
            .header("Range", upload_range(0))
            .header("Docker-Upload-UUID", id);
        drop(st);
        match lock(&self.faults).chunk_min {
            Some(n) => resp.header("OCI-Chunk-Min-Length", n.to_string()),
            None => resp,
        }
    }

    fn upload(&self, req: &Request, name: &str, id: &str) -> Response {
        let fault = match req.method.as_str() {
            "PATCH" => self.take_fault(req, |f| *f == Fault::Patch416),
            "GET" => self.take_fault(req, |f| *f == Fault::StaleRange),
            "PUT" if !req.body.is_empty() => {
                self.take_fault(req, |f| matches!(f, Fault::RefuseMonolithic { .. }))
            }
            _ => None,
        };
        let mut st = lock(&self.store);
        let Some(len) = st
            .uploads
            .get(id)
            .filter(|u| u.repo == name)
            .map(|u| u.data.len())
        else {
            return Response::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
        };
        let status = |st: &mut Store, code: u16, reported: usize| {
            let loc = self.location(st, name, id);
            Response::new(code)
                .header("Location", loc)
                .header("Range", upload_range(reported))
                .header("Docker-Upload-UUID", id)
        };
        match req.method.as_str() {
            "GET" => {
                let reported = if fault.is_some() { len / 2 } else { len };
                status(&mut st, 204, reported)
            }
            "DELETE" => {
                st.uploads.remove(id);
                Response::new(204)
            }
            "PATCH" => {
                if fault.is_some() {
                    return status(&mut st, 416, len);
                }
                if let Some(cr) = req.header("content-range") {
                    let parsed = cr.split_once('-').and_then(|(a, b)| {
                        Some((
                            a.trim().parse::<usize>().ok()?,
                            b.trim().parse::<usize>().ok()?,
                        ))
                    });
                    match parsed {
                        Some((a, b)) if a == len && b >= a && b - a + 1 == req.body.len() => {}
                        _ => return status(&mut st, 416, len),
                    }
                }
                if let Some(u) = st.uploads.get_mut(id) {
                    u.data.extend_from_slice(&req.body);
                }
                status(&mut st, 202, len + req.body.len())
            }
            "PUT" => {
                if let Some(Fault::RefuseMonolithic { code }) = fault {
                    return Response::error(code, "UNSUPPORTED", "monolithic upload refused");
                }
                let Some(digest) = req.query("digest").map(str::to_string) else {
                    return Response::error(400, "DIGEST_INVALID", "digest parameter missing");
                };
                let mut up = st.uploads.remove(id).expect("checked above");
                up.data.extend_from_slice(&req.body);
                if digest_like(&digest, &up.data).as_deref() != Some(digest.as_str()) {
                    return Response::error(400, "DIGEST_INVALID", "digest mismatch");
                }
                st.repos
                    .entry(name.to_string())
                    .or_default()
                    .blobs
                    .insert(digest.clone(), Arc::new(up.data));
                Response::new(201)
                    .header("Location", format!("/v2/{name}/blobs/{digest}"))
                    .header("Docker-Content-Digest", digest)
            }
            _ => Response::error(405, "UNSUPPORTED", "method not allowed"),
        }
    }

    fn tags_list(&self, req: &Request, name: &str) -> Response {
        let quay = lock(&self.faults).quay_tags;
        let st = lock(&self.store);
        let Some(r) = st.repos.get(name) else {
            return Response::error(404, "NAME_UNKNOWN", "repository unknown");
        };
        let all: Vec<&String> = r.tags.keys().collect();
        let n = req.query("n").and_then(|n| n.parse::<usize>().ok());
        let (page, link) = if quay {
            // Quay: `last` is ignored; the page comes from the cursor in the Link URL.
            let size = n.unwrap_or(50).min(50);
            let cursor: usize = req
                .query("next_page")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let start = (cursor * size).min(all.len());
            let end = (start + size).min(all.len());
            let link = (end < all.len() && size > 0).then(|| {
                format!(
                    "</v2/{name}/tags/list?n={size}&next_page={}>; rel=\"next\"",
                    cursor + 1
                )
            });
            (all[start..end].to_vec(), link)
        } else {
            let after: Vec<&String> = match req.query("last") {
                Some(l) => all.into_iter().filter(|t| t.as_str() > l).collect(),
                None => all,
            };
            let size = n.unwrap_or(after.len());
            let page: Vec<&String> = after.iter().take(size).copied().collect();
            let link = (page.len() < after.len() && !page.is_empty()).then(|| {
                format!(
                    "</v2/{name}/tags/list?last={}&n={size}>; rel=\"next\"",
                    percent_encode(page[page.len() - 1])
                )
            });
            (page, link)
        };
        let mut resp = Response::json(200, &json!({"name": name, "tags": page}));
        if let Some(l) = link {
            resp = resp.header("Link", l);
        }
        resp
    }

    fn catalog(&self, req: &Request) -> Response {
        if req.method != "GET" {
            return Response::new(405);
        }
        let st = lock(&self.store);
        let all: Vec<&String> = st
            .repos
            .iter()
            .filter(|(_, r)| !r.manifests.is_empty() || !r.blobs.is_empty())
            .map(|(k, _)| k)
            .filter(|k| req.query("last").is_none_or(|l| k.as_str() > l))
            .collect();
        let size = req
            .query("n")
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(all.len());
        let page: Vec<&String> = all.iter().take(size).copied().collect();
        let mut resp = Response::json(200, &json!({"repositories": page}));
        if page.len() < all.len() && !page.is_empty() {
            resp = resp.header(
                "Link",
                format!(
                    "</v2/_catalog?last={}&n={size}>; rel=\"next\"",
                    percent_encode(page[page.len() - 1])
                ),
            );
        }
        resp
    }

    fn referrers(&self, req: &Request, name: &str, subject: &str) -> Response {
        if !lock(&self.faults).referrers {
            return Response::error(404, "NOT_FOUND", "referrers API not supported");
        }
        let filter = req.query("artifactType");
        let st = lock(&self.store);
        let mut list = Vec::new();
        if let Some(r) = st.repos.get(name) {
            let mut ms: Vec<(&String, &Manifest)> = r.manifests.iter().collect();
            ms.sort_by(|a, b| a.0.cmp(b.0));
            for (digest, m) in ms {
                let Ok(v) = serde_json::from_slice::<Value>(&m.body) else {
                    continue;
                };
                if v.pointer("/subject/digest").and_then(Value::as_str) != Some(subject) {
                    continue;
                }
                let at = v
                    .get("artifactType")
                    .and_then(Value::as_str)
                    .or_else(|| v.pointer("/config/mediaType").and_then(Value::as_str))
                    .unwrap_or("")
                    .to_string();
                if filter.is_some_and(|f| f != at) {
                    continue;
                }
                let mut d = json!({
                    "mediaType": m.media_type,
                    "digest": digest,
                    "size": m.body.len(),
                    "artifactType": at,
                });
                if let Some(a) = v.get("annotations") {
                    d["annotations"] = a.clone();
                }
                list.push(d);
            }
        }
        let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list});
        let mut resp = Response::new(200).body(OCI_INDEX, body.to_string().into_bytes());
        if filter.is_some() {
            resp = resp.header("OCI-Filters-Applied", "artifactType");
        }
        resp
    }
}

// ------------------------------------------------------------------------------------------------
// A tiny raw HTTP/1.1 client for the self-tests

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the connection ended before the announced body was complete.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

/// A keep-alive connection.
pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
    host: String,
}

impl Client {
    pub fn connect(host: &str) -> Client {
        let addr: SocketAddr = host.parse().expect("host is ip:port");
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        let w = s.try_clone().expect("clone");
        Client {
            r: BufReader::new(s),
            w,
            host: host.to_string(),
        }
    }

    /// Sends one request (with `Content-Length` for a non-empty body) and reads the response.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        let mut has_len = false;
        for (k, v) in headers {
            has_len |= k.eq_ignore_ascii_case("content-length")
                || k.eq_ignore_ascii_case("transfer-encoding");
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(body);
        self.w.write_all(&out).expect("write request");
        self.read_response(method == "HEAD")
    }

    fn read_response(&mut self, head: bool) -> Resp {
        // Interim 1xx responses are skipped (bounded).
        for _ in 0..5 {
            let mut line = String::new();
            self.r.read_line(&mut line).expect("read status line");
            let status: u16 = line
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("bad status line {line:?}"));
            let mut headers = Vec::new();
            for _ in 0..500 {
                let mut h = String::new();
                self.r.read_line(&mut h).expect("read header");
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            if status < 200 {
                continue;
            }
            let mut resp = Resp {
                status,
                headers,
                body: Vec::new(),
                complete: true,
            };
            if head || status == 204 || status == 304 {
                return resp;
            }
            if resp
                .header("transfer-encoding")
                .is_some_and(|t| t.contains("chunked"))
            {
                panic!("chunked responses are not expected from the test servers");
            }
            match resp
                .header("content-length")
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(n) => {
                    let got = (&mut self.r)
                        .take(n)
                        .read_to_end(&mut resp.body)
                        .unwrap_or(0);
                    resp.complete = got as u64 == n;
                }
                None => {
                    let _ = (&mut self.r)
                        .take(MAX_BODY as u64)
                        .read_to_end(&mut resp.body);
                }
            }
            return resp;
        }
        panic!("too many interim responses");
    }
}

/// One request on a fresh connection.
pub fn http(host: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    Client::connect(host).send(method, target, headers, body)
}
