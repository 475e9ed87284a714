//! regctl's read commands against the project's fake registry misbehaving the way real registries
//! do: Quay-style tag paging, blob redirects to another host, `Warning` headers, HEAD refused,
//! missing `Docker-Content-Digest`, bodies cut short, 503 with `Retry-After`, and proxy selection.

mod support;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fakereg::{
    sha256_digest, Auth, BearerAuth, FakeRegistry, Fault, HttpServer, Response, Rule,
};
use support::{ok, regctl_isolated, run_input, run_text, testrepo, write_regctl_config, TempDir};

/// A fake registry holding `repo:v2` copied from the test layout, and a config for it.
struct Fixture {
    tmp: TempDir,
    reg: FakeRegistry,
    layout: String,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::with_host_config(json!({"tls": "disabled"}), None)
    }

    /// `host` is the regctl config entry for the registry; `auth` is set before seeding.
    fn with_host_config(host: Value, auth: Option<Auth>) -> Fixture {
        let reg = FakeRegistry::start();
        if let Some(a) = auth {
            reg.faults().auth = a;
        }
        let tmp = TempDir::new();
        let layout = testrepo(&tmp).display().to_string();
        write_regctl_config(&tmp, &json!({"hosts": {reg.host(): host}}));
        let fx = Fixture { tmp, reg, layout };
        ok(fx.rc().args([
            "image",
            "copy",
            &format!("ocidir://{}:v2", fx.layout),
            &fx.r("repo:v2"),
        ]));
        fx.reg.clear_requests();
        fx
    }

    fn rc(&self) -> Command {
        regctl_isolated(&self.tmp)
    }

    fn r(&self, rest: &str) -> String {
        format!("{}/{rest}", self.reg.host())
    }

    fn local(&self, tag: &str) -> String {
        format!("ocidir://{}:{tag}", self.layout)
    }

    fn out(&self, args: &[&str]) -> String {
        ok(self.rc().args(args))
    }

    /// Digest of the largest layer of the amd64 image, with its bytes from the layout.
    fn big_layer(&self) -> (String, Vec<u8>) {
        let body = self.out(&[
            "manifest",
            "get",
            "--platform",
            "linux/amd64",
            "--format",
            "body",
            &self.local("v2"),
        ]);
        let m: Value = serde_json::from_str(&body).expect("manifest JSON");
        let layer = m["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .max_by_key(|l| l["size"].as_u64().unwrap_or(0))
            .expect("a layer")["digest"]
            .as_str()
            .expect("digest")
            .to_string();
        let bytes = self
            .reg
            .blob("repo", &layer)
            .expect("layer stored in the fake registry");
        assert_eq!(sha256_digest(&bytes), layer);
        (layer, bytes)
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn quay_style_tag_pages_give_a_complete_deduplicated_list() {
    let reg = FakeRegistry::start();
    let want = reg.seed_tags("many", 120);
    reg.faults().quay_tags = true;
    let tmp = TempDir::new();
    write_regctl_config(&tmp, &json!({"hosts": {reg.host(): {"tls": "disabled"}}}));
    let started = Instant::now();
    let out = ok(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/many", reg.host())]));
    assert!(started.elapsed() < Duration::from_secs(20));
    let got = lines(&out);
    assert_eq!(got.len(), 120, "{} tags listed", got.len());
    assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>());
    let pages = reg.count("GET", "/v2/many/tags/list");
    assert!(
        (3..=4).contains(&pages),
        "120 tags in pages of 50 take 3 requests, got {pages}"
    );
}

#[test]
fn redirected_blob_is_fetched_without_forwarding_credentials() {
    let (user, pass) = ("quirky", "redirect-secret");
    let fx = Fixture::with_host_config(
        json!({"tls": "disabled", "user": user, "pass": pass}),
        Some(Auth::Basic {
            user: user.to_string(),
            pass: pass.to_string(),
        }),
    );
    let (layer, bytes) = fx.big_layer();
    fx.reg.faults().redirect_blobs = true;
    let out = support::run(fx.rc().args(["blob", "get", &fx.r("repo"), &layer]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), bytes.len());
    assert!(out.stdout == bytes, "redirected blob content differs");
    let redirected = fx.reg.redirect_requests();
    assert!(
        !redirected.is_empty(),
        "the blob was not fetched from the redirect target"
    );
    assert!(
        redirected.iter().all(|r| !r.has_auth()),
        "Authorization reached the redirect target: {:?}",
        redirected
            .iter()
            .map(|r| r.header("authorization"))
            .collect::<Vec<_>>()
    );
    // The main listener did see authenticated requests (so the check above means something).
    assert!(fx.reg.requests().iter().any(|r| r.has_auth()));
}

#[test]
fn redirected_blob_does_not_receive_the_bearer_token() {
    let (user, pass) = ("bearer-user", "bearer-secret");
    let fx = Fixture::with_host_config(
        json!({"tls": "disabled", "user": user, "pass": pass}),
        Some(Auth::Bearer(BearerAuth {
            user: user.to_string(),
            pass: pass.to_string(),
            ..BearerAuth::default()
        })),
    );
    let (layer, bytes) = fx.big_layer();
    fx.reg.faults().redirect_blobs = true;
    let out = support::run(fx.rc().args(["blob", "get", &fx.r("repo"), &layer]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == bytes, "redirected blob content differs");
    let redirected = fx.reg.redirect_requests();
    assert!(!redirected.is_empty());
    assert!(
        redirected.iter().all(|r| !r.has_auth()),
        "the bearer token reached the redirect target"
    );
    assert!(fx.reg.requests().iter().any(|r| r
        .header("authorization")
        .is_some_and(|a| a.starts_with("Bearer "))));
}

#[test]
fn warning_header_is_shown_once() {
    let fx = Fixture::start();
    let text = "this registry is deprecated, move along";
    fx.reg.faults().warning = Some(text.to_string());
    let (code, out, err) = run_text(fx.rc().args([
        "manifest",
        "get",
        "--platform",
        "linux/amd64",
        &fx.r("repo:v2"),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Layers:"), "{out}");
    let carrying = fx.reg.requests().len();
    assert!(
        carrying >= 2,
        "the test needs several responses with the header, got {carrying}"
    );
    assert_eq!(
        err.matches(text).count(),
        1,
        "warning should be printed exactly once:\n{err}"
    );
    assert!(!out.contains(text), "warnings go to stderr: {out}");
}

#[test]
fn disable_head_api_option_uses_get_for_manifest_head() {
    let fx = Fixture::start();
    fx.reg.add_rule(Rule::always(Fault::HeadDisabled));
    write_regctl_config(
        &fx.tmp,
        &json!({"hosts": {fx.reg.host(): {"tls": "disabled", "apiOpts": {"disableHead": "true"}}}}),
    );
    let want = fx.out(&["manifest", "head", &fx.local("v2")]);
    let got = fx.out(&["manifest", "head", &fx.r("repo:v2")]);
    assert_eq!(got.trim(), want.trim());
    assert_eq!(
        fx.reg.count("HEAD", "/v2/"),
        0,
        "disableHead must not send HEAD requests"
    );
    assert!(fx.reg.count("GET", "/v2/repo/manifests/v2") >= 1);
    let got = fx.out(&["image", "digest", &fx.r("repo:v2")]);
    assert_eq!(got.trim(), want.trim());
}

/// Without `disableHead` a 405 on HEAD is an error (as upstream: the GET fallback is opt-in);
/// it must be a clear one, and commands that need no HEAD keep working.
#[test]
fn head_refused_by_the_registry_without_the_api_option() {
    let fx = Fixture::start();
    fx.reg.add_rule(Rule::always(Fault::HeadDisabled));
    let (code, out, err) = run_text(fx.rc().args(["image", "digest", &fx.r("repo:v2")]));
    if code == 0 {
        // A client that falls back to GET on its own is fine too, if it is right.
        let want = fx.out(&["manifest", "head", &fx.local("v2")]);
        assert_eq!(out.trim(), want.trim());
    } else {
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("405"), "{err}");
        assert!(err.contains(&fx.reg.host()), "{err}");
        assert!(
            fx.reg.count("HEAD", "/v2/repo/manifests/v2") <= 2,
            "a 405 is not worth retrying: {:?}",
            fx.reg.requests()
        );
    }
    let pretty = fx.out(&["manifest", "get", &fx.r("repo:v2")]);
    assert!(pretty.contains("Manifests:"), "{pretty}");
}

#[test]
fn missing_digest_header_on_head_falls_back_to_get() {
    let fx = Fixture::start();
    fx.reg
        .add_rule(Rule::always(Fault::NoDigest).method("HEAD"));
    let want = fx.out(&["manifest", "head", &fx.local("v2")]);
    let got = fx.out(&["image", "digest", &fx.r("repo:v2")]);
    assert_eq!(got.trim(), want.trim());
    assert!(
        fx.reg.count("GET", "/v2/repo/manifests/v2") >= 1,
        "no GET fallback: {:?}",
        fx.reg.requests()
    );
    // manifest head without --format implies --require-digest too.
    let got = fx.out(&["manifest", "head", &fx.r("repo:v2")]);
    assert_eq!(got.trim(), want.trim());
}

fn blob_survives(fault: Fault) {
    let fx = Fixture::start();
    let (layer, bytes) = fx.big_layer();
    fx.reg
        .add_rule(Rule::first(1, fault.clone()).method("GET").path("/blobs/"));
    let out = support::run(fx.rc().args(["blob", "get", &fx.r("repo"), &layer]));
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        assert!(
            out.stdout == bytes,
            "{fault:?}: blob get succeeded with wrong content ({} of {} bytes)",
            out.stdout.len(),
            bytes.len()
        );
        let digest = run_input(fx.rc().arg("digest"), &out.stdout);
        assert_eq!(String::from_utf8_lossy(&digest.stdout).trim(), layer);
    } else {
        // Failing is acceptable only with a clear error, never with partial output passed off
        // as the blob.
        let lower = err.to_ascii_lowercase();
        assert!(
            lower.contains("short")
                || lower.contains("unexpected eof")
                || lower.contains("incomplete")
                || lower.contains("reset"),
            "{fault:?}: unclear error: {err}"
        );
        panic!("{fault:?}: blob get failed instead of resuming: {err}");
    }
    let gets = fx.reg.count("GET", &format!("/v2/repo/blobs/{layer}"));
    assert!(
        (2..=4).contains(&gets),
        "{fault:?}: expected a resumed request, saw {gets} GETs"
    );
    let resumed = fx
        .reg
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/"))
        .any(|r| r.header("range").is_some());
    assert!(resumed, "{fault:?}: the retry did not use Range");
}

#[test]
fn truncated_blob_body_is_resumed() {
    blob_survives(Fault::Truncate);
}

#[test]
fn connection_reset_mid_blob_is_resumed() {
    blob_survives(Fault::Reset);
}

#[test]
fn service_unavailable_with_retry_after_is_retried() {
    let fx = Fixture::start();
    fx.reg.add_rule(
        Rule::first(
            1,
            Fault::Status {
                code: 503,
                retry_after: Some(1),
            },
        )
        .path("/manifests/"),
    );
    let started = Instant::now();
    let (code, out, err) = run_text(fx.rc().args(["manifest", "get", &fx.r("repo:v2")]));
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Manifests:"), "{out}");
    let tries = fx.reg.count("", "/v2/repo/manifests/v2");
    assert_eq!(
        tries,
        2,
        "one 503 then one success: {:?}",
        fx.reg.requests()
    );
    assert!(
        took >= Duration::from_millis(900),
        "Retry-After: 1 was not honoured (retried after {took:?})"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn persistent_server_errors_give_up_after_a_bounded_number_of_tries() {
    let fx = Fixture::start();
    fx.reg.add_rule(
        Rule::always(Fault::Status {
            code: 500,
            retry_after: None,
        })
        .path("/manifests/"),
    );
    let started = Instant::now();
    let (code, out, err) = run_text(fx.rc().args(["manifest", "get", &fx.r("repo:v2")]));
    let took = started.elapsed();
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");
    assert!(err.contains("500"), "{err}");
    assert!(err.contains(&fx.reg.host()), "{err}");
    let tries = fx.reg.count("", "/v2/repo/manifests/v2");
    assert!(
        (2..=7).contains(&tries),
        "500s are retried, but boundedly: {tries} tries"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

fn manifest_survives(fault: Fault) {
    let fx = Fixture::start();
    fx.reg.add_rule(
        Rule::first(1, fault.clone())
            .method("GET")
            .path("/manifests/"),
    );
    let want = fx.out(&["manifest", "get", "--format", "body", &fx.local("v2")]);
    let (code, got, err) =
        run_text(
            fx.rc()
                .args(["manifest", "get", "--format", "body", &fx.r("repo:v2")]),
        );
    assert_eq!(code, 0, "{fault:?}: {err}");
    assert_eq!(got, want, "{fault:?}");
    assert!(fx.reg.count("GET", "/v2/repo/manifests/v2") >= 2);
}

#[test]
fn manifest_body_truncated_is_retried() {
    manifest_survives(Fault::Truncate);
}

#[test]
fn manifest_connection_reset_is_retried() {
    manifest_survives(Fault::Reset);
}

/// A listener that records every request target and answers 502, standing in for a proxy.
fn recording_proxy() -> (HttpServer, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let server = HttpServer::start(Arc::new(move |req| {
        s.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {}", req.method, req.target));
        Response::error(502, "PROXY", "test proxy does not forward")
    }));
    (server, seen)
}

/// Go's proxy rules (which regctl follows) never proxy loopback addresses or `localhost`, so a
/// loopback registry cannot show a proxied request succeeding. What can be checked end to end:
/// loopback bypasses `HTTP_PROXY`, a non-loopback name goes through it, and `NO_PROXY` exempts it.
/// The finer matching rules are unit tests in `src/transport/proxy.rs`.
#[test]
fn proxy_selection_follows_the_environment() {
    let fx = Fixture::start();
    let (proxy, seen) = recording_proxy();
    let proxy_url = format!("http://{}", proxy.host());
    let seen_now = || seen.lock().unwrap_or_else(|e| e.into_inner()).clone();

    // 1. Loopback registry with HTTP_PROXY set: direct.
    let tags = ok(fx
        .rc()
        .env("HTTP_PROXY", &proxy_url)
        .args(["tag", "ls", &fx.r("repo")]));
    assert_eq!(tags.trim(), "v2");
    assert!(
        seen_now().is_empty(),
        "loopback was proxied: {:?}",
        seen_now()
    );

    // 2. A non-loopback name: sent to the proxy (in absolute form, see
    // `plain_http_through_a_proxy_uses_absolute_form`).
    let name = "registry.regclient-test.invalid:5000";
    write_regctl_config(&fx.tmp, &json!({"hosts": {name: {"tls": "disabled"}}}));
    let (code, _, err) = run_text(fx.rc().env("HTTP_PROXY", &proxy_url).args([
        "tag",
        "ls",
        &format!("{name}/repo"),
    ]));
    assert_eq!(code, 1, "the test proxy answers 502: {err}");
    let through = seen_now();
    assert!(
        through
            .iter()
            .any(|r| r.contains(&format!("http://{name}/v2/")) || r == &format!("CONNECT {name}")),
        "request not sent through the proxy: {through:?}\n{err}"
    );
    let n = through.len();
    assert!(n <= 12, "{n} proxied requests for one failing command");

    // 2b. HTTPS goes through HTTPS_PROXY as a CONNECT tunnel.
    let tls_name = "secure.regclient-test.invalid:5443";
    let (code, _, err) = run_text(fx.rc().env("HTTPS_PROXY", &proxy_url).args([
        "tag",
        "ls",
        &format!("{tls_name}/repo"),
    ]));
    assert_eq!(code, 1, "{err}");
    let through = seen_now();
    assert!(
        through[n..]
            .iter()
            .any(|r| r == &format!("CONNECT {tls_name}")),
        "https request not tunnelled through HTTPS_PROXY: {:?}",
        &through[n..]
    );
    let n = through.len();

    // 3. The same name listed in NO_PROXY: not proxied (so it fails to resolve instead).
    let (code, _, err) = run_text(
        fx.rc()
            .env("HTTP_PROXY", &proxy_url)
            .env("NO_PROXY", "regclient-test.invalid")
            .args(["tag", "ls", &format!("{name}/repo")]),
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        seen_now().len(),
        n,
        "NO_PROXY was ignored: {:?}",
        seen_now()
    );
}

/// Go sends plain-HTTP requests to an HTTP proxy in absolute form (`GET http://host/v2/...`) and
/// tunnels only HTTPS with CONNECT. Proxies commonly refuse CONNECT to ports other than 443
/// (squid's default `http_access deny CONNECT !SSL_ports`), so tunnelling plain HTTP breaks
/// `tls: disabled` registries behind such proxies.
#[test]
fn plain_http_through_a_proxy_uses_absolute_form() {
    let tmp = TempDir::new();
    let (proxy, seen) = recording_proxy();
    let name = "registry.regclient-test.invalid:5000";
    write_regctl_config(&tmp, &json!({"hosts": {name: {"tls": "disabled"}}}));
    let (code, _, err) = run_text(
        regctl_isolated(&tmp)
            .env("HTTP_PROXY", format!("http://{}", proxy.host()))
            .args(["tag", "ls", &format!("{name}/repo")]),
    );
    assert_eq!(code, 1, "{err}");
    let through = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        through
            .iter()
            .any(|r| r == &format!("GET http://{name}/v2/repo/tags/list")),
        "{through:?}"
    );
    assert!(
        !through.iter().any(|r| r.starts_with("CONNECT")),
        "{through:?}"
    );
}

/// A forwarding HTTP proxy that serves only absolute-form requests, as a proxy that refuses
/// `CONNECT` to ports other than 443 does: a whole push and pull of a `tls: disabled` registry
/// through `HTTP_PROXY` works, with every request (bodies of uploads included) going through it.
#[test]
fn plain_http_registry_pushed_and_pulled_through_a_forwarding_proxy() {
    let fx = Fixture::start();
    let upstream = fx.reg.host();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let up = upstream.clone();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let proxy = HttpServer::start(Arc::new(move |req| {
        s.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {}", req.method, req.target));
        let Some(rest) = req.target.strip_prefix("http://") else {
            return Response::error(405, "PROXY", "this proxy refuses CONNECT");
        };
        let path = &rest[rest.find('/').unwrap_or(rest.len())..];
        let mut r = ureq::http::Request::builder()
            .method(req.method.as_str())
            .uri(format!("http://{up}{path}"));
        for (k, v) in &req.headers {
            if !matches!(
                k.as_str(),
                "host" | "proxy-authorization" | "content-length" | "transfer-encoding"
            ) {
                r = r.header(k.as_str(), v.as_str());
            }
        }
        let resp = agent
            .run(r.body(req.body.clone()).unwrap())
            .expect("forwarding to the registry");
        let mut out = Response::new(resp.status().as_u16());
        let mut len = 0usize;
        for (k, v) in resp.headers() {
            let v = v.to_str().unwrap_or_default().to_string();
            if k == "content-length" {
                len = v.parse().unwrap_or(0);
            } else if k != "transfer-encoding" && k != "connection" {
                out = out.header(k.as_str(), v);
            }
        }
        if req.method == "HEAD" {
            out.head = true;
            out.body = vec![0; len];
        } else {
            out.body = resp.into_body().read_to_vec().unwrap_or_default();
        }
        out
    }));
    let name = "registry.regclient-test.invalid:5000";
    write_regctl_config(
        &fx.tmp,
        &json!({"hosts": {name: {"tls": "disabled"}, upstream: {"tls": "disabled"}}}),
    );
    let via = |args: &[&str]| {
        ok(fx
            .rc()
            .env("HTTP_PROXY", format!("http://{}", proxy.host()))
            .args(args))
    };
    let target = format!("{name}/pushed:v2");
    via(&["image", "copy", &fx.local("v2"), &target]);
    assert_eq!(via(&["tag", "ls", &format!("{name}/pushed")]).trim(), "v2");
    let want = ok(fx.rc().args(["image", "digest", &fx.local("v2")]));
    assert_eq!(via(&["image", "digest", &target]), want);
    // The bytes landed in the real registry behind the proxy.
    assert_eq!(
        ok(fx.rc().args(["image", "digest", &fx.r("pushed:v2")])),
        want
    );
    let through = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        through.iter().any(|r| r.starts_with("PUT http://")),
        "{through:?}"
    );
    assert!(
        through.iter().all(|r| r
            .split(' ')
            .nth(1)
            .is_some_and(|t| t.starts_with("http://"))),
        "a request was not in absolute form: {through:?}"
    );
}

/// A registry blob reader seeks by re-requesting with `Range`: reading from the middle, from
/// the end, and back from the start (which verifies the digest again).
#[test]
fn registry_blob_reader_seeks_with_ranged_requests() {
    use regclient::config::{Host, Tls};
    use regclient::{Client, ClientConfig, Descriptor, Digest, Reference};
    use std::io::{Read, Seek, SeekFrom};

    let fx = Fixture::start();
    let content: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let digest = fx.reg.put_blob("repo", &content);
    let mut host = Host::new_name(&fx.reg.host());
    host.tls = Tls::Disabled;
    let client = Client::new(ClientConfig {
        hosts: [(fx.reg.host(), host)].into_iter().collect(),
        ..Default::default()
    });
    let r = Reference::parse(&fx.r("repo")).unwrap();
    let desc = Descriptor {
        media_type: "application/octet-stream".into(),
        digest: Digest::parse(&digest).unwrap(),
        size: content.len() as i64,
        ..Default::default()
    };
    let mut b = client.scheme(&r).unwrap().blob_get(&r, &desc).unwrap();
    let mut buf = [0u8; 10];
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &content[..10]);

    assert_eq!(b.seek(SeekFrom::Start(50_000)).unwrap(), 50_000);
    b.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, &content[50_000..50_010]);
    assert!(
        !b.verifies_digest(),
        "a mid-blob seek cannot verify the digest"
    );

    assert_eq!(b.seek(SeekFrom::End(-3)).unwrap(), 99_997);
    let mut tail = Vec::new();
    b.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, &content[99_997..]);

    assert_eq!(b.seek(SeekFrom::Start(0)).unwrap(), 0);
    assert!(b.verifies_digest());
    let mut all = Vec::new();
    b.read_to_end(&mut all).unwrap();
    assert_eq!(all, content);
    assert!(b.seek(SeekFrom::Start(100_001)).is_err(), "beyond the end");

    let ranges: Vec<String> = fx
        .reg
        .requests()
        .iter()
        .filter_map(|q| q.header("range").map(str::to_string))
        .collect();
    assert_eq!(ranges, ["bytes=50000-", "bytes=99997-", "bytes=0-"]);
}
