//! Whole-flow tests: a scripted registry and token server driven by the loop from the module docs.

use super::*;

const NOW: u64 = 1_700_000_000;
const HUB: &str = r#"Bearer realm="https://auth.example/token",service="reg.example""#;

struct Resp {
    status: u16,
    www: Vec<String>,
    body: Vec<u8>,
}

fn resp(status: u16, www: &[&str], body: &str) -> Resp {
    Resp {
        status,
        www: www.iter().map(|s| s.to_string()).collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// One request as the fake server saw it: `METHOD url | authorization | body`.
type Server<'a> = dyn FnMut(&str, &str, Option<&str>, Option<&str>) -> Resp + 'a;

/// The transport loop; returns the registry status and the request log.
fn drive(
    auth: &mut AuthState,
    repo: &str,
    method: &str,
    now: u64,
    server: &mut Server<'_>,
) -> (Result<u16>, Vec<String>) {
    let url = Url::parse(&format!("https://reg.example/v2/{repo}/manifests/v1")).unwrap();
    let mut log = Vec::new();
    let mut step = auth.prepare(repo, method, now);
    // The bound is the test's assertion that the machine terminates by itself.
    for _ in 0..20 {
        let next = match step {
            Step::Token(req) => {
                let m = if req.body().is_some() { "POST" } else { "GET" };
                let (a, b) = (req.authorization(), req.body());
                log.push(format!(
                    "{m} {} | {} | {}",
                    req.url(),
                    a.clone().unwrap_or_default(),
                    b.clone().unwrap_or_default()
                ));
                let r = server(m, &req.url().to_string(), a.as_deref(), b.as_deref());
                auth.token_response(&req, r.status, &r.body, now)
            }
            Step::Send(h) => {
                log.push(format!(
                    "{method} {url} | {}",
                    h.clone().unwrap_or_default()
                ));
                let r = server(method, &url.to_string(), h.as_deref(), None);
                if r.status != 401 {
                    return (Ok(r.status), log);
                }
                let www: Vec<&str> = r.www.iter().map(String::as_str).collect();
                auth.unauthorized(&www, &url, h.as_deref(), now)
            }
        };
        match next {
            Ok(s) => step = s,
            Err(e) => return (Err(e), log),
        }
    }
    panic!("auth flow did not terminate: {log:#?}");
}

fn cred(user: &str, pass: &str, token: &str) -> Credential {
    Credential {
        user: user.into(),
        pass: pass.into(),
        token: token.into(),
    }
}

/// A registry that wants `Bearer <good>` and a token server handing out tokens by rules.
fn bearer_registry<'a>(
    good: &'a str,
    token_server: impl FnMut(&str, &str, Option<&str>, Option<&str>) -> Resp + 'a,
) -> impl FnMut(&str, &str, Option<&str>, Option<&str>) -> Resp + 'a {
    let mut token_server = token_server;
    move |m, u, a, b| {
        if u.starts_with("https://auth.example/") {
            return token_server(m, u, a, b);
        }
        if a == Some(&format!("Bearer {good}")) {
            resp(200, &[], "")
        } else {
            resp(401, &[&format!("{HUB},scope=\"repository:app:pull\"")], "")
        }
    }
}

#[test]
fn no_auth_needed() {
    let mut auth = AuthState::new(Credential::default(), "ua");
    let (r, log) = drive(&mut auth, "app", "GET", NOW, &mut |_, _, a, _| {
        assert_eq!(a, None);
        resp(200, &[], "")
    });
    assert_eq!(r.unwrap(), 200);
    assert_eq!(log.len(), 1);
}

#[test]
fn anonymous_bearer_then_cached() {
    let mut auth = AuthState::new(Credential::default(), "ua");
    let mut server = bearer_registry("anon", |m, u, a, _| {
        assert_eq!(m, "GET");
        assert_eq!(a, None);
        assert_eq!(
            u,
            "https://auth.example/token?client_id=ua&service=reg.example&scope=repository%3Aapp%3Apull"
        );
        resp(200, &[], r#"{"token":"anon","expires_in":300}"#)
    });
    let (r, log) = drive(&mut auth, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap(), 200, "{log:#?}");
    assert_eq!(log.len(), 3);
    // Second request: token reused, no fetch.
    let (r, log) = drive(&mut auth, "app", "HEAD", NOW + 10, &mut server);
    assert_eq!(r.unwrap(), 200);
    assert_eq!(
        log,
        ["HEAD https://reg.example/v2/app/manifests/v1 | Bearer anon"]
    );
}

#[test]
fn basic_flow() {
    let want = basic::header("u", "p");
    let mut server = |_: &str, _: &str, a: Option<&str>, _: Option<&str>| {
        if a == Some(want.as_str()) {
            resp(200, &[], "")
        } else {
            resp(401, &[r#"Basic realm="r""#], "")
        }
    };
    let mut auth = AuthState::new(cred("u", "p", ""), "ua");
    let (r, log) = drive(&mut auth, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap(), 200);
    assert_eq!(log.len(), 2);
    // Known handler: first request already carries the header.
    let (_, log) = drive(&mut auth, "app", "GET", NOW, &mut server);
    assert_eq!(log.len(), 1);

    let mut anon = AuthState::new(Credential::default(), "ua");
    let (r, _) = drive(&mut anon, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Unauthorized);

    let mut wrong = AuthState::new(cred("u", "bad", ""), "ua");
    let (r, log) = drive(&mut wrong, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Unauthorized);
    assert_eq!(log.len(), 2);
}

#[test]
fn bearer_with_basic_creds() {
    let mut auth = AuthState::new(cred("bob", "pw", ""), "ua");
    let want = basic::header("bob", "pw");
    let mut server = bearer_registry("bobs", |m, u, a, _| {
        assert_eq!(m, "GET");
        assert!(u.ends_with("&account=bob"), "{u}");
        if a == Some(want.as_str()) {
            resp(200, &[], r#"{"access_token":"bobs"}"#)
        } else {
            resp(401, &[], "")
        }
    });
    let (r, log) = drive(&mut auth, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap(), 200, "{log:#?}");
    assert!(!format!("{auth:?}").contains("bobs"));
    assert!(!format!("{auth:?}").contains("\"pw\""));
}

#[test]
fn identity_token_post_then_fallback_to_get() {
    // Accepted identity token: one POST.
    let mut auth = AuthState::new(cred("", "", "idtok"), "ua");
    let mut server = bearer_registry("fromid", |m, u, _, b| {
        assert_eq!((m, u), ("POST", "https://auth.example/token"));
        assert_eq!(
            b.unwrap(),
            "grant_type=refresh_token&refresh_token=idtok&service=reg.example&scope=repository%3Aapp%3Apull&client_id=ua"
        );
        resp(200, &[], r#"{"token":"fromid","refresh_token":"next"}"#)
    });
    let (r, _) = drive(&mut auth, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap(), 200);
    // Expired: the refresh token from the response is used next.
    let mut server = bearer_registry("again", |m, _, _, b| {
        assert_eq!(m, "POST");
        assert!(b.unwrap().contains("refresh_token=next&"));
        resp(200, &[], r#"{"token":"again"}"#)
    });
    let (r, _) = drive(&mut auth, "app", "GET", NOW + 3600, &mut server);
    assert_eq!(r.unwrap(), 200);

    // Refused identity token: falls back to GET with basic creds, and is not offered again.
    let mut auth = AuthState::new(cred("u", "p", "stale"), "ua");
    let mut posts = 0;
    let mut server = bearer_registry("viaget", |m, _, a, _| {
        if m == "POST" {
            posts += 1;
            return resp(401, &[], "");
        }
        assert_eq!(a.unwrap(), basic::header("u", "p"));
        resp(200, &[], r#"{"token":"viaget"}"#)
    });
    let (r, log) = drive(&mut auth, "app", "GET", NOW, &mut server);
    assert_eq!(r.unwrap(), 200, "{log:#?}");
    assert_eq!(log.len(), 4, "{log:#?}");
    let (r, _) = drive(&mut auth, "app", "GET", NOW + 3600, &mut server);
    assert_eq!(r.unwrap(), 200);
    drop(server);
    assert_eq!(posts, 1);
}

#[test]
fn expiry_refetches() {
    let mut auth = AuthState::new(Credential::default(), "ua");
    let mut fetches = 0;
    let mut server = bearer_registry("t", |_, _, _, _| {
        fetches += 1;
        resp(200, &[], r#"{"token":"t","expires_in":60}"#)
    });
    drive(&mut auth, "app", "GET", NOW, &mut server).0.unwrap();
    drive(&mut auth, "app", "GET", NOW + 50, &mut server)
        .0
        .unwrap();
    let (_, log) = drive(&mut auth, "app", "GET", NOW + 56, &mut server);
    assert!(
        log[0].starts_with("GET https://auth.example/token?"),
        "{log:#?}"
    );
    drop(server);
    assert_eq!(fetches, 2);
}

#[test]
fn refused_scope_is_bounded() {
    // The token server always grants a pull-only token; the registry refuses it for PUT.
    let mut auth = AuthState::new(Credential::default(), "ua");
    let mut server = |_: &str, u: &str, _: Option<&str>, _: Option<&str>| {
        if u.starts_with("https://auth.example/") {
            resp(200, &[], r#"{"token":"pullonly"}"#)
        } else {
            resp(
                401,
                &[&format!("{HUB},scope=\"repository:app:pull,push\"")],
                "",
            )
        }
    };
    let (r, log) = drive(&mut auth, "app", "PUT", NOW, &mut server);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Unauthorized);
    assert!(log.len() <= 4, "{log:#?}");
}

#[test]
fn new_scope_invalidates_token() {
    let mut auth = AuthState::new(Credential::default(), "ua");
    let mut server = bearer_registry("t", |_, _, _, _| resp(200, &[], r#"{"token":"t"}"#));
    drive(&mut auth, "app", "GET", NOW, &mut server).0.unwrap();
    match auth.prepare("app", "PUT", NOW) {
        Step::Token(req) => assert!(
            req.url()
                .to_string()
                .ends_with("&scope=repository%3Aapp%3Apull%2Cpush"),
            "{req:?}"
        ),
        s => panic!("{s:?}"),
    }
    match auth.prepare_scope(Scope::catalog(), NOW) {
        Step::Token(req) => assert!(req
            .url()
            .to_string()
            .ends_with("&scope=registry%3Acatalog%3A%2A")),
        s => panic!("{s:?}"),
    }
}

#[test]
fn concurrent_refresh_detected() {
    let mut auth = AuthState::new(Credential::default(), "ua");
    let url = Url::parse("https://reg.example/v2/app/manifests/v1").unwrap();
    auth.prepare("app", "GET", NOW);
    let req = match auth.unauthorized(&[HUB], &url, None, NOW).unwrap() {
        Step::Token(r) => r,
        s => panic!("{s:?}"),
    };
    auth.token_response(&req, 200, br#"{"token":"new"}"#, NOW)
        .unwrap();
    // A request that went out with an older token gets the new one, not a new fetch.
    assert_eq!(
        auth.unauthorized(&[HUB], &url, Some("Bearer old"), NOW)
            .unwrap(),
        Step::Send(Some("Bearer new".into()))
    );
    let e = auth
        .unauthorized(&[HUB], &url, Some("Bearer new"), NOW)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[test]
fn challenge_errors() {
    let url = Url::parse("https://reg.example/v2/app/manifests/v1").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&[], "no challenge"),
        (&["Negotiate abc"], "unsupported scheme"),
        (&["Bearer service=\"x\""], "no realm"),
        (
            &["Bearer realm=\"http://auth.example/token\""],
            "https to http downgrade",
        ),
        (
            &["Bearer realm=\"https://127.0.0.1/token\""],
            "loopback realm",
        ),
        (&["Bearer realm=\"x"], "malformed"),
        (&["Basic charset=\"UTF-8\""], "basic without realm"),
    ];
    for (www, name) in cases {
        let mut auth = AuthState::new(Credential::default(), "ua");
        let e = auth.unauthorized(www, &url, None, NOW).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{name}");
    }
    // Credentials do not make a realm-less basic challenge acceptable.
    let mut auth = AuthState::new(cred("u", "p", ""), "ua");
    let e = auth
        .unauthorized(&["Basic charset=\"UTF-8\""], &url, None, NOW)
        .unwrap_err();
    assert!(e.to_string().contains("realm"), "{e}");
}

#[test]
fn realm_changes_and_relative_realm() {
    let url = Url::parse("https://reg.example/v2/app/manifests/v1").unwrap();
    let mut auth = AuthState::new(Credential::default(), "ua");
    match auth
        .unauthorized(&[r#"Bearer realm="/token",service="s""#], &url, None, NOW)
        .unwrap()
    {
        Step::Token(r) => assert!(r
            .url()
            .to_string()
            .starts_with("https://reg.example/token?")),
        s => panic!("{s:?}"),
    }
    let e = auth
        .unauthorized(
            &[r#"Bearer realm="https://evil.example/token",service="s""#],
            &url,
            None,
            NOW,
        )
        .unwrap_err();
    assert!(e.to_string().contains("realm"), "{e}");
    let e = auth
        .unauthorized(&[r#"Basic realm="r""#], &url, None, NOW)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[test]
fn realm_rules() {
    let cases = [
        ("https://reg.example/v2/", "https://auth.example/t", true),
        ("http://reg.example/v2/", "http://auth.example/t", true),
        ("http://reg.example/v2/", "https://auth.example/t", true),
        ("https://reg.example/v2/", "http://auth.example/t", false),
        ("https://reg.example/v2/", "https://localhost/t", false),
        ("https://reg.example/v2/", "https://[::1]:5000/t", false),
        (
            "https://reg.example/v2/",
            "https://169.254.169.254/t",
            false,
        ),
        ("https://reg.example/v2/", "https://0.0.0.0/t", false),
        ("http://localhost:5000/v2/", "http://127.0.0.1:5001/t", true),
    ];
    for (req, realm, want) in cases {
        let (a, b) = (Url::parse(req).unwrap(), Url::parse(realm).unwrap());
        assert_eq!(realm_allowed(&a, &b), want, "{req} -> {realm}");
    }
    // The caller's hook can refuse more.
    let url = Url::parse("https://reg.example/v2/").unwrap();
    let mut auth = AuthState::new(Credential::default(), "ua")
        .with_realm_check(Box::new(|_, realm| realm.host() != "blocked.example"));
    let e = auth
        .unauthorized(
            &[r#"Bearer realm="https://blocked.example/t""#],
            &url,
            None,
            NOW,
        )
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

#[test]
fn keys_and_credential_swap() {
    assert_eq!(state_key("gcr.io", "p/app", true), "gcr.io/p/app");
    assert_eq!(state_key("gcr.io", "p/app", false), "gcr.io");
    assert_eq!(state_key("gcr.io", "", true), "gcr.io");
    let mut auth = AuthState::new(Credential::default(), "ua");
    let mut server = bearer_registry("t", |_, _, _, _| resp(200, &[], r#"{"token":"t"}"#));
    drive(&mut auth, "app", "GET", NOW, &mut server).0.unwrap();
    assert!(auth.current_header(NOW).is_some());
    auth.set_credential(cred("u", "p", ""));
    assert_eq!(auth.current_header(NOW), None);
}
