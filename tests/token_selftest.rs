//! Self-test of the token server: a real `docker-registry` configured with its
//! `registry_auth_yaml()` must accept the tokens it signs and enforce the scopes it grants.
//! Missing tools skip the test locally and fail it in CI (see `support::tool`).

mod support;

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::fakereg::{base64, http, percent_encode, Resp};
use support::token::{AclRule, TokenOptions, TokenServer};
use support::{tool, TempDir};

/// A docker-registry child, killed on drop.
struct Registry {
    host: String,
    child: Child,
    log: std::path::PathBuf,
    _dir: TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry(auth_yaml: &str) -> Option<Registry> {
    let bin = tool("docker-registry")?;
    let dir = TempDir::with_prefix("regclient-token-registry");
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let host = format!("127.0.0.1:{port}");
    let cfg = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: regclient-token-test\n{auth_yaml}",
        dir.join("data").display()
    );
    fs::write(dir.join("config.yml"), cfg).expect("config.yml");
    let log = dir.join("registry.log");
    let out = fs::File::create(&log).expect("log");
    let child = Command::new(bin)
        .arg("serve")
        .arg(dir.join("config.yml"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log clone"))
        .stderr(out)
        .spawn()
        .expect("spawn docker-registry");
    let mut reg = Registry {
        host,
        child,
        log,
        _dir: dir,
    };
    let addr: SocketAddr = reg.host.parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(st)) = reg.child.try_wait() {
            panic!(
                "docker-registry exited ({st}): {}",
                fs::read_to_string(&reg.log).unwrap_or_default()
            );
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Some(reg);
        }
        assert!(
            Instant::now() < deadline,
            "docker-registry did not listen within 30 s: {}",
            fs::read_to_string(&reg.log).unwrap_or_default()
        );
        // Refused connects return at once; pause briefly between attempts (bounded above).
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{pass}").as_bytes()))
}

/// GET a token from the server for `scope`, optionally with Basic credentials.
fn get_token(ts: &TokenServer, cred: Option<(&str, &str)>, scope: &str) -> Resp {
    let target = format!(
        "/token?service={}&scope={}",
        percent_encode(ts.service()),
        percent_encode(scope)
    );
    let auth = cred.map(|(u, p)| basic(u, p));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    http(&ts.host(), "GET", &target, &headers, b"")
}

fn token_of(r: &Resp) -> String {
    assert_eq!(r.status, 200, "token request failed: {}", r.text());
    r.json()["token"].as_str().expect("token field").to_string()
}

fn options() -> TokenOptions {
    TokenOptions {
        users: vec![
            ("alice".into(), "secret".into()),
            ("bob".into(), "hunter2".into()),
        ],
        acl: vec![
            AclRule::new("alice", "*", &["*"]),
            AclRule::new("bob", "x", &["pull"]),
            AclRule::new("anonymous", "public/*", &["pull"]),
        ],
        ..TokenOptions::default()
    }
}

#[test]
fn real_registry_accepts_tokens_and_enforces_scopes() {
    let Some(ts) = TokenServer::start(options()) else {
        return;
    };
    let Some(reg) = start_registry(&ts.registry_auth_yaml()) else {
        return;
    };

    // Unauthenticated ping: 401 with a Bearer challenge naming our realm and service.
    let r = http(&reg.host, "GET", "/v2/", &[], b"");
    assert_eq!(r.status, 401);
    let chal = r.header("www-authenticate").expect("challenge");
    assert!(chal.starts_with("Bearer "), "{chal}");
    assert!(chal.contains(&ts.realm()), "{chal}");
    assert!(chal.contains(ts.service()), "{chal}");

    // alice may push to x: the registry accepts the token and opens an upload session.
    let tok = token_of(&get_token(
        &ts,
        Some(("alice", "secret")),
        "repository:x:pull,push",
    ));
    let bearer = format!("Bearer {tok}");
    let r = http(
        &reg.host,
        "POST",
        "/v2/x/blobs/uploads/",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(
        r.status,
        202,
        "{} {}",
        r.text(),
        fs::read_to_string(&reg.log).unwrap_or_default()
    );
    assert!(r.header("location").is_some());
    let last = ts.requests().pop().expect("logged");
    assert_eq!(last.account, "alice");
    assert_eq!(
        last.granted,
        vec![(
            "repository".to_string(),
            "x".to_string(),
            vec!["pull".to_string(), "push".to_string()]
        )]
    );

    // bob may only pull x: his token carries no push, and the registry refuses the upload.
    let tok = token_of(&get_token(
        &ts,
        Some(("bob", "hunter2")),
        "repository:x:pull,push",
    ));
    assert_eq!(
        ts.requests().pop().expect("logged").granted[0].2,
        vec!["pull".to_string()]
    );
    let bearer = format!("Bearer {tok}");
    let r = http(
        &reg.host,
        "POST",
        "/v2/x/blobs/uploads/",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    // ... but the same token is good for reading (404: no such manifest, not 401).
    let r = http(
        &reg.host,
        "GET",
        "/v2/x/manifests/latest",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());

    // Anonymous: pull on public/* only.
    let tok = token_of(&get_token(&ts, None, "repository:public/a:pull,push"));
    let last = ts.requests().pop().expect("logged");
    assert_eq!(last.account, "");
    assert_eq!(last.granted[0].2, vec!["pull".to_string()]);
    let bearer = format!("Bearer {tok}");
    let r = http(
        &reg.host,
        "GET",
        "/v2/public/a/tags/list",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_ne!(r.status, 401, "{}", r.text());

    // Wrong password: 401 from the token server itself.
    let r = get_token(&ts, Some(("alice", "wrong")), "repository:x:pull");
    assert_eq!(r.status, 401);
    assert_eq!(ts.requests().pop().expect("logged").status, 401);
}

#[test]
fn post_password_and_refresh_grants() {
    let Some(ts) = TokenServer::start(options()) else {
        return;
    };
    let form = |body: &str| {
        http(
            &ts.host(),
            "POST",
            "/token",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        )
    };
    let r = form(&format!(
        "grant_type=password&username=alice&password=secret&service={}&client_id=test&scope={}",
        percent_encode(ts.service()),
        percent_encode("repository:x:pull repository:y:push")
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    for k in [
        "token",
        "access_token",
        "expires_in",
        "issued_at",
        "refresh_token",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    assert_eq!(v["token"], v["access_token"]);
    assert_eq!(ts.requests().pop().expect("logged").granted.len(), 2);

    // The JWT: three parts, RS256 header with the signing cert, claims as the registry wants.
    let tok = v["token"].as_str().expect("token");
    let parts: Vec<&str> = tok.split('.').collect();
    assert_eq!(parts.len(), 3);
    let dec = |s: &str| -> serde_json::Value {
        serde_json::from_slice(&support::fakereg::base64_decode(s).expect("b64url")).expect("json")
    };
    let (h, c) = (dec(parts[0]), dec(parts[1]));
    assert_eq!(h["alg"], "RS256");
    assert_eq!(h["typ"], "JWT");
    assert!(h["x5c"][0].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(c["iss"], ts.issuer());
    assert_eq!(c["aud"], ts.service());
    assert_eq!(c["sub"], "alice");
    assert!(c["exp"].as_u64() > c["iat"].as_u64());
    assert_eq!(c["access"][1]["name"], "y");
    assert_eq!(c["access"][1]["actions"][0], "push");

    // Refresh grant: same account, new token.
    let rt = v["refresh_token"].as_str().expect("refresh token");
    let r = form(&format!(
        "grant_type=refresh_token&refresh_token={rt}&service={}&scope={}",
        percent_encode(ts.service()),
        percent_encode("repository:x:pull")
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(r.json()["token"], v["token"]);
    assert_eq!(ts.requests().pop().expect("logged").account, "alice");

    // Bad password and unknown refresh token: 401.
    assert_eq!(
        form("grant_type=password&username=alice&password=nope").status,
        401
    );
    assert_eq!(
        form("grant_type=refresh_token&refresh_token=bogus").status,
        401
    );
    assert_eq!(form("grant_type=implicit").status, 400);

    let yaml = ts.registry_auth_yaml();
    assert!(yaml.starts_with("auth:\n  token:\n    realm: http://127.0.0.1:"));
    assert!(yaml.contains(&format!("rootcertbundle: {}", ts.cert_path().display())));
}
