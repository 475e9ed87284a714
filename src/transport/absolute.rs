//! Plain-HTTP requests through an HTTP proxy in absolute form (`GET http://host/path HTTP/1.1`),
//! as Go's client sends them.
//!
//! ureq 3 reaches every target through an HTTP proxy with a `CONNECT` tunnel. Proxies commonly
//! allow `CONNECT` only to port 443 (squid's default), so a `tls: disabled` registry behind such
//! a proxy was unreachable. For those connections the agent gets a resolver that dials the proxy
//! and a connector that rewrites each request line to absolute form on its way out. Finding the
//! request lines needs HTTP/1.1 framing of what ureq writes ([`Framer`], pure and tested with
//! byte fixtures): a request line follows the previous request's body, whose length the
//! `Content-Length` header or the chunked encoding gives.

use std::fmt;
use std::io;
use std::sync::Arc;

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport,
};

use crate::transport::proxy::{Proxy, ProxyConfig, ProxyScheme};
use crate::url::{Scheme, Url};

/// The HTTP proxy to send `uri` to in absolute form, if any: only plain-http targets whose
/// proxy is itself plain HTTP (TLS and SOCKS proxies keep ureq's own handling).
fn absolute_proxy<'a>(cfg: &'a ProxyConfig, uri: &Uri) -> Option<&'a Proxy> {
    let url = Url::parse(&uri.to_string()).ok()?;
    if url.scheme() != Scheme::Http {
        return None;
    }
    match cfg.proxy_for(&url) {
        Ok(Some(p)) if p.scheme == ProxyScheme::Http => Some(p),
        _ => None,
    }
}

/// Resolves plain-http targets to their proxy's address, everything else as usual.
#[derive(Debug)]
pub(crate) struct ProxyResolver {
    proxies: Arc<ProxyConfig>,
    inner: DefaultResolver,
}

impl ProxyResolver {
    pub(crate) fn new(proxies: Arc<ProxyConfig>) -> ProxyResolver {
        ProxyResolver {
            proxies,
            inner: DefaultResolver::default(),
        }
    }
}

impl Resolver for ProxyResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        match absolute_proxy(&self.proxies, uri) {
            Some(p) => {
                let host = if p.host.contains(':') {
                    format!("[{}]", p.host)
                } else {
                    p.host.clone()
                };
                let proxy_uri: Uri = format!("http://{host}:{}/", p.port)
                    .parse()
                    .map_err(|_| ureq::Error::BadUri(format!("proxy {host}:{}", p.port)))?;
                self.inner.resolve(&proxy_uri, config, timeout)
            }
            None => self.inner.resolve(uri, config, timeout),
        }
    }
}

/// Wraps connections to an HTTP proxy for plain-http targets in [`AbsoluteForm`].
#[derive(Debug)]
pub(crate) struct AbsoluteFormConnector {
    proxies: Arc<ProxyConfig>,
}

impl AbsoluteFormConnector {
    pub(crate) fn new(proxies: Arc<ProxyConfig>) -> AbsoluteFormConnector {
        AbsoluteFormConnector { proxies }
    }
}

impl<In: Transport> Connector<In> for AbsoluteFormConnector {
    type Out = Either<In, AbsoluteForm<In>>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(inner) = chained else {
            return Ok(None);
        };
        Ok(Some(match absolute_proxy(&self.proxies, details.uri) {
            Some(p) => Either::B(AbsoluteForm {
                inner,
                framer: Framer::new(proxy_authorization(p)),
            }),
            None => Either::A(inner),
        }))
    }
}

/// `Basic` credentials for the proxy from its `user:password@` part.
fn proxy_authorization(p: &Proxy) -> Option<String> {
    let userinfo = p.userinfo.as_deref()?;
    Some(format!(
        "Basic {}",
        crate::base64::encode(&percent_decode(userinfo))
    ))
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// A connection to an HTTP proxy whose request lines are rewritten to absolute form.
pub(crate) struct AbsoluteForm<T> {
    inner: T,
    framer: Framer,
}

impl<T> fmt::Debug for AbsoluteForm<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbsoluteForm").finish_non_exhaustive()
    }
}

impl<T: Transport> Transport for AbsoluteForm<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let out = self.inner.buffers().output();
        let amount = self
            .framer
            .rewrite(out, amount)
            .map_err(|e| ureq::Error::Io(io::Error::other(e)))?;
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Where the outgoing byte stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// The next byte starts a request line.
    Prelude,
    /// This many body bytes remain (`Content-Length`).
    Length(u64),
    /// Inside a chunk-size line (hex digits so far).
    ChunkSize(u64),
    /// After the `\r` of a chunk-size line.
    ChunkSizeLf(u64),
    /// This many bytes of chunk data remain.
    ChunkData(u64),
    /// After chunk data: `\r` then `\n`.
    ChunkDataCr,
    ChunkDataLf,
    /// After the last (zero) chunk: the closing `\r\n`.
    LastCr,
    LastLf,
}

/// Rewrites request lines of an HTTP/1.1 byte stream to absolute form.
#[derive(Debug)]
pub(crate) struct Framer {
    frame: Frame,
    proxy_auth: Option<String>,
}

impl Framer {
    pub(crate) fn new(proxy_auth: Option<String>) -> Framer {
        Framer {
            frame: Frame::Prelude,
            proxy_auth,
        }
    }

    /// Rewrites the first `amount` bytes of `buf` in place; returns the new length. Fails
    /// (rather than send a malformed request) when a request head is split across writes, is
    /// not HTTP/1.x, or the rewritten head does not fit in `buf`.
    pub(crate) fn rewrite(&mut self, buf: &mut [u8], amount: usize) -> Result<usize, String> {
        let mut amount = amount;
        let mut pos = 0;
        while pos < amount {
            match self.frame {
                Frame::Prelude => {
                    let end = find(&buf[pos..amount], b"\r\n\r\n")
                        .ok_or("proxy request head split across writes")?
                        + 4;
                    let (head, next) = self.rewrite_head(&buf[pos..pos + end])?;
                    let grow = head.len() - end;
                    if amount + grow > buf.len() {
                        return Err("proxy request head larger than the output buffer".into());
                    }
                    buf.copy_within(pos + end..amount, pos + end + grow);
                    buf[pos..pos + head.len()].copy_from_slice(&head);
                    amount += grow;
                    pos += head.len();
                    self.frame = next;
                }
                Frame::Length(n) | Frame::ChunkData(n) => {
                    let take = n.min((amount - pos) as u64);
                    pos += take as usize;
                    self.frame = match (self.frame, n - take) {
                        (Frame::Length(_), 0) => Frame::Prelude,
                        (Frame::Length(_), left) => Frame::Length(left),
                        (_, 0) => Frame::ChunkDataCr,
                        (_, left) => Frame::ChunkData(left),
                    };
                }
                f => {
                    self.frame = chunk_step(f, buf[pos])?;
                    pos += 1;
                }
            }
        }
        Ok(amount)
    }

    /// The rewritten head and the framing of the body that follows it.
    fn rewrite_head(&self, head: &[u8]) -> Result<(Vec<u8>, Frame), String> {
        let text = std::str::from_utf8(head).map_err(|_| "non-UTF-8 request head")?;
        let (line, rest) = text
            .split_once("\r\n")
            .ok_or("request head without a line")?;
        let mut parts = line.splitn(3, ' ');
        let (method, target, version) = match (parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v)) if v.starts_with("HTTP/1.") => (m, t, v),
            _ => return Err(format!("unexpected request line {line:?}")),
        };
        let mut host = None;
        let mut next = Frame::Prelude;
        for h in rest.split("\r\n").take_while(|h| !h.is_empty()) {
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            let v = v.trim();
            if k.eq_ignore_ascii_case("host") {
                host = Some(v);
            } else if k.eq_ignore_ascii_case("content-length") {
                let n = v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?;
                if next == Frame::Prelude && n > 0 {
                    next = Frame::Length(n);
                }
            } else if k.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
            {
                next = Frame::ChunkSize(0);
            }
        }
        let mut out = String::with_capacity(head.len() + 64);
        if target.starts_with('/') && method != "CONNECT" {
            let host = host.ok_or("request without a Host header")?;
            out.push_str(&format!("{method} http://{host}{target} {version}\r\n"));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
        if let Some(auth) = &self.proxy_auth {
            out.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
        }
        out.push_str(rest);
        Ok((out.into_bytes(), next))
    }
}

/// One byte of chunk framing (sizes and CRLFs; data is skipped in bulk by the caller).
fn chunk_step(f: Frame, b: u8) -> Result<Frame, String> {
    let bad = || format!("malformed chunked body at byte {b:#04x}");
    Ok(match f {
        Frame::ChunkSize(n) => match b {
            b'\r' => Frame::ChunkSizeLf(n),
            _ => {
                let d = (b as char).to_digit(16).ok_or_else(bad)?;
                Frame::ChunkSize(n.checked_mul(16).ok_or_else(bad)? + d as u64)
            }
        },
        Frame::ChunkSizeLf(n) if b == b'\n' => {
            if n == 0 {
                Frame::LastCr
            } else {
                Frame::ChunkData(n)
            }
        }
        Frame::ChunkDataCr if b == b'\r' => Frame::ChunkDataLf,
        Frame::ChunkDataLf if b == b'\n' => Frame::ChunkSize(0),
        Frame::LastCr if b == b'\r' => Frame::LastLf,
        Frame::LastLf if b == b'\n' => Frame::Prelude,
        _ => return Err(bad()),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `writes` through a framer, each in a buffer of `cap` bytes, and returns what went
    /// out.
    fn run(auth: Option<&str>, writes: &[&[u8]], cap: usize) -> Result<Vec<u8>, String> {
        let mut f = Framer::new(auth.map(str::to_string));
        let mut out = Vec::new();
        for w in writes {
            let mut buf = vec![0u8; cap];
            buf[..w.len()].copy_from_slice(w);
            let n = f.rewrite(&mut buf, w.len())?;
            out.extend_from_slice(&buf[..n]);
        }
        Ok(out)
    }

    #[test]
    fn request_lines_become_absolute() {
        let out = run(
            None,
            &[b"GET /v2/repo/tags/list?n=5 HTTP/1.1\r\nHost: reg.example:5000\r\nAccept: */*\r\n\r\n"],
            1024,
        )
        .unwrap();
        assert_eq!(
            out,
            b"GET http://reg.example:5000/v2/repo/tags/list?n=5 HTTP/1.1\r\nHost: reg.example:5000\r\nAccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn bodies_are_skipped_by_length_and_next_request_rewritten() {
        // A body that looks like a request line must stay untouched.
        let body = b"GET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = format!(
            "PUT /v2/r/blobs/uploads/1?digest=d HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let out = run(
            None,
            &[
                head.as_bytes(),
                &body[..10],
                &body[10..],
                b"HEAD /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
            ],
            1024,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("PUT http://h/v2/r/blobs/uploads/1?digest=d HTTP/1.1\r\n"));
        assert!(text.contains("\r\n\r\nGET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(text.ends_with("HEAD http://h/v2/ HTTP/1.1\r\nHost: h\r\n\r\n"));
    }

    #[test]
    fn chunked_bodies_are_framed() {
        let out = run(
            None,
            &[
                b"PATCH /v2/r/blobs/uploads/1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /",
                b"\r\n",
                b"a\r\n0123456789\r\n0\r\n\r\n",
                b"GET /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
            ],
            1024,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("5\r\nGET /\r\n"), "{text}");
        assert!(
            text.ends_with("GET http://h/v2/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            "{text}"
        );
        assert!(run(
            None,
            &[b"PUT / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
            1024
        )
        .is_err());
    }

    #[test]
    fn proxy_credentials_are_added_and_decoded() {
        let p = Proxy::parse("http://us%40er:p%3Ass@proxy:3128").unwrap();
        let auth = proxy_authorization(&p).unwrap();
        assert_eq!(
            auth,
            format!("Basic {}", crate::base64::encode(b"us@er:p:ss"))
        );
        let out = run(
            Some(&auth),
            &[b"GET /v2/ HTTP/1.1\r\nHost: h\r\n\r\n"],
            1024,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!(
            "GET http://h/v2/ HTTP/1.1\r\nProxy-Authorization: {auth}\r\nHost: h\r\n"
        )));
    }

    #[test]
    fn refuses_what_it_cannot_frame() {
        // Head split across two writes.
        assert!(run(None, &[b"GET / HTTP/1.1\r\nHost: h\r\n", b"\r\n"], 1024).is_err());
        // No room to grow the line.
        let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(run(None, &[req], req.len()).is_err());
        // Not HTTP/1.x.
        assert!(run(None, &[b"GET / SPDY\r\nHost: h\r\n\r\n"], 1024).is_err());
    }

    #[test]
    fn only_plain_http_targets_of_http_proxies() {
        let env = |h: &str, s: &str| crate::transport::proxy::ProxyEnv {
            http_proxy: h.into(),
            https_proxy: s.into(),
            no_proxy: "skip.example".into(),
            cgi: false,
        };
        let cfg = ProxyConfig::new(&env("http://proxy:3128", "http://proxy:3128")).unwrap();
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(absolute_proxy(&cfg, &uri("http://reg.example:5000/v2/")).is_some());
        assert!(absolute_proxy(&cfg, &uri("https://reg.example/v2/")).is_none());
        assert!(absolute_proxy(&cfg, &uri("http://skip.example/v2/")).is_none());
        assert!(absolute_proxy(&cfg, &uri("http://127.0.0.1:5000/v2/")).is_none());
        let socks = ProxyConfig::new(&env("socks5://proxy:1080", "")).unwrap();
        assert!(absolute_proxy(&socks, &uri("http://reg.example/v2/")).is_none());
    }
}
