//! regctl authenticating to real `docker-registry` processes: htpasswd Basic auth with credentials
//! from every source regctl reads (`--host`, its config file, docker's `config.json`,
//! `DOCKER_AUTH_CONFIG`, credential helpers), wrong credentials, and Docker token auth with an
//! ACL (authorised pull, anonymous pull of public repositories, refused scopes).

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fakereg::base64;
use support::registry::{Options, Registry};
use support::token::{AclRule, TokenOptions, TokenServer};
use support::{
    ok, regctl_isolated, run_text, testrepo, write_docker_config, write_regctl_config, TempDir,
};

const USER: &str = "regtester";
const PASS: &str = "Hunter2-Pa55";

/// An htpasswd registry holding `repo:v2`; the temp dir has the layout copy.
fn basic_registry(tmp: &TempDir) -> Option<Registry> {
    let reg = Registry::start(Options {
        htpasswd: vec![(USER.to_string(), PASS.to_string())],
        ..Options::default()
    })?;
    let layout = testrepo(tmp);
    ok(regctl_isolated(tmp).args([
        "--host",
        &format!("reg={},user={USER},pass={PASS},tls=disabled", reg.host),
        "image",
        "copy",
        &format!("ocidir://{}:v2", layout.display()),
        &format!("{}/repo:v2", reg.host),
    ]));
    Some(reg)
}

/// regctl's config file with only `tls: disabled` for the host (credentials come from elsewhere).
fn plain_http_config(tmp: &TempDir, host: &str) {
    write_regctl_config(tmp, &json!({"hosts": {host: {"tls": "disabled"}}}));
}

/// Asserts `tag ls <host>/repo` prints `v2`.
#[track_caller]
fn assert_lists(cmd: &mut Command, host: &str) {
    let (code, out, err) = run_text(cmd.args(["tag", "ls", &format!("{host}/repo")]));
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert_eq!(out.trim(), "v2", "{err}");
}

#[test]
fn no_credentials_is_unauthorized() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    plain_http_config(&tmp, &reg.host);
    let (code, _, err) =
        run_text(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    assert_eq!(code, 1, "{err}");
    assert!(err.to_ascii_lowercase().contains("unauthorized"), "{err}");
}

#[test]
fn credentials_from_the_host_flag() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    assert_lists(
        regctl_isolated(&tmp).args([
            "--host",
            &format!("reg={},user={USER},pass={PASS},tls=disabled", reg.host),
        ]),
        &reg.host,
    );
}

#[test]
fn credentials_from_the_regctl_config_file() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    write_regctl_config(
        &tmp,
        &json!({"hosts": {reg.host.clone(): {"tls": "disabled", "user": USER, "pass": PASS}}}),
    );
    assert_lists(&mut regctl_isolated(&tmp), &reg.host);
    let digest =
        ok(regctl_isolated(&tmp).args(["image", "digest", &format!("{}/repo:v2", reg.host)]));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
}

#[test]
fn credentials_from_docker_config_auths() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    plain_http_config(&tmp, &reg.host);
    let auth = base64(format!("{USER}:{PASS}").as_bytes());
    write_docker_config(&tmp, &json!({"auths": {reg.host.clone(): {"auth": auth}}}));
    assert_lists(&mut regctl_isolated(&tmp), &reg.host);
    // The file is found through HOME when DOCKER_CONFIG is not set.
    let home_docker = tmp.join("home/.docker");
    fs::create_dir_all(&home_docker).expect("mkdir");
    fs::rename(
        tmp.join("docker/config.json"),
        home_docker.join("config.json"),
    )
    .expect("move");
    assert_lists(regctl_isolated(&tmp).env_remove("DOCKER_CONFIG"), &reg.host);
}

#[test]
fn credentials_from_docker_auth_config_env() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    plain_http_config(&tmp, &reg.host);
    let cfg = json!({"auths": {reg.host.clone(): {"username": USER, "password": PASS}}});
    assert_lists(
        regctl_isolated(&tmp).env("DOCKER_AUTH_CONFIG", cfg.to_string()),
        &reg.host,
    );
    let cfg =
        json!({"auths": {reg.host.clone(): {"auth": base64(format!("{USER}:{PASS}").as_bytes())}}});
    assert_lists(
        regctl_isolated(&tmp).env("DOCKER_AUTH_CONFIG", cfg.to_string()),
        &reg.host,
    );
}

/// Writes `<tmp>/bin/docker-credential-test`, which logs each call to `<tmp>/helper.log` and
/// answers `get` for any server with the test credentials. Returns a `PATH` with that dir first.
fn write_helper(tmp: &TempDir) -> std::ffi::OsString {
    let bin = tmp.join("bin");
    fs::create_dir_all(&bin).expect("bin dir");
    let log = tmp.join("helper.log");
    let script = format!(
        r#"#!/bin/sh
server=$(cat)
echo "$1 $server" >> '{log}'
case "$1" in
get) printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASS}"}}' "$server" ;;
list) if [ -f '{list}' ]; then cat '{list}'; else printf '{{}}'; fi ;;
*) echo "unsupported $1" >&2; exit 1 ;;
esac
"#,
        log = log.display(),
        list = tmp.join("helper-list.json").display()
    );
    let path = bin.join("docker-credential-test");
    fs::write(&path, script).expect("write helper");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod helper");
    let mut paths = vec![bin];
    if let Some(p) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(paths).expect("PATH")
}

fn helper_calls(tmp: &TempDir) -> Vec<String> {
    fs::read_to_string(tmp.join("helper.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn credentials_from_a_helper_named_in_docker_cred_helpers() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    plain_http_config(&tmp, &reg.host);
    let path = write_helper(&tmp);
    write_docker_config(&tmp, &json!({"credHelpers": {reg.host.clone(): "test"}}));
    assert_lists(regctl_isolated(&tmp).env("PATH", &path), &reg.host);
    let calls = helper_calls(&tmp);
    assert!(
        calls.iter().any(|c| c == &format!("get {}", reg.host)),
        "helper was not asked for {}: {calls:?}",
        reg.host
    );
}

#[test]
fn credentials_from_a_helper_named_in_the_regctl_config() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    let path = write_helper(&tmp);
    write_regctl_config(
        &tmp,
        &json!({"hosts": {reg.host.clone(): {"tls": "disabled", "credHelper": "docker-credential-test"}}}),
    );
    assert_lists(regctl_isolated(&tmp).env("PATH", &path), &reg.host);
    let calls = helper_calls(&tmp);
    assert!(
        calls.iter().any(|c| c.starts_with("get ")),
        "helper was not used: {calls:?}"
    );
    // Without the helper on PATH the command fails instead of going anonymous silently.
    let (code, _, err) =
        run_text(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    assert_eq!(code, 1, "{err}");
}

#[test]
fn credentials_from_a_docker_creds_store() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    plain_http_config(&tmp, &reg.host);
    let path = write_helper(&tmp);
    fs::write(
        tmp.join("helper-list.json"),
        json!({reg.host.clone(): USER}).to_string(),
    )
    .expect("list fixture");
    write_docker_config(&tmp, &json!({"credsStore": "test"}));
    assert_lists(regctl_isolated(&tmp).env("PATH", &path), &reg.host);
    let calls = helper_calls(&tmp);
    assert!(calls.iter().any(|c| c.starts_with("list")), "{calls:?}");
    assert!(
        calls.iter().any(|c| c == &format!("get {}", reg.host)),
        "{calls:?}"
    );
}

#[test]
fn docker_auth_for_an_http_url_disables_tls() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    // No regctl config at all: `http://` in docker's key is what says "plain HTTP".
    write_regctl_config(&tmp, &json!({}));
    let auth = base64(format!("{USER}:{PASS}").as_bytes());
    write_docker_config(
        &tmp,
        &json!({"auths": {format!("http://{}", reg.host): {"auth": auth}}}),
    );
    assert_lists(&mut regctl_isolated(&tmp), &reg.host);
}

#[test]
fn wrong_password_is_unauthorized_after_few_requests() {
    let tmp = TempDir::new();
    let Some(reg) = basic_registry(&tmp) else {
        return;
    };
    write_regctl_config(
        &tmp,
        &json!({"hosts": {reg.host.clone(): {"tls": "disabled", "user": USER, "pass": "wrong"}}}),
    );
    let before = reg.settled_request_count();
    let started = Instant::now();
    let (code, out, err) =
        run_text(regctl_isolated(&tmp).args(["manifest", "get", &format!("{}/repo:v2", reg.host)]));
    let took = started.elapsed();
    let requests = reg.settled_request_count() - before;
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");
    assert!(
        err.to_ascii_lowercase().contains("unauthorized"),
        "stderr should say unauthorized: {err}"
    );
    assert!(
        err.contains(&reg.host),
        "stderr should name the registry: {err}"
    );
    assert!(
        !err.contains("wrong"),
        "the password must not be printed: {err}"
    );
    assert!(
        requests <= 4,
        "{requests} requests for one refused login: no retry storm"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

// ------------------------------------------------------------------------------------------------
// Token auth

/// A token-auth registry: `alice` may do anything, `bob` may only pull `shared/*`, everybody may
/// pull `public/*`. Holds `public/repo:v2` and `private/repo:v2`.
struct TokenFixture {
    tmp: TempDir,
    tokens: TokenServer,
    reg: Registry,
}

fn token_fixture() -> Option<TokenFixture> {
    let tokens = TokenServer::start(TokenOptions {
        users: vec![
            ("alice".to_string(), "alice-pw".to_string()),
            ("bob".to_string(), "bob-pw".to_string()),
        ],
        acl: vec![
            AclRule::new("alice", "*", &["*"]),
            AclRule::new("bob", "shared/*", &["pull"]),
            AclRule::new("anonymous", "public/*", &["pull"]),
        ],
        ..TokenOptions::default()
    })?;
    let reg = Registry::start(Options {
        token: Some(tokens.registry_auth_yaml()),
        ..Options::default()
    })?;
    let tmp = TempDir::new();
    let layout = testrepo(&tmp);
    for repo in ["public/repo", "private/repo"] {
        ok(regctl_isolated(&tmp).args([
            "--host",
            &format!("reg={},user=alice,pass=alice-pw,tls=disabled", reg.host),
            "image",
            "copy",
            &format!("ocidir://{}:v2", layout.display()),
            &format!("{}/{repo}:v2", reg.host),
        ]));
    }
    Some(TokenFixture { tmp, tokens, reg })
}

impl TokenFixture {
    /// regctl as `user` (anonymous when `None`).
    fn rc(&self, user: Option<(&str, &str)>) -> Command {
        let mut host = json!({"tls": "disabled"});
        if let Some((u, p)) = user {
            host["user"] = Value::from(u);
            host["pass"] = Value::from(p);
        }
        write_regctl_config(&self.tmp, &json!({"hosts": {self.reg.host.clone(): host}}));
        regctl_isolated(&self.tmp)
    }
}

#[test]
fn token_auth_authorised_user_pulls() {
    let Some(fx) = token_fixture() else { return };
    let start = fx.tokens.requests().len();
    let tags = ok(fx.rc(Some(("alice", "alice-pw"))).args([
        "tag",
        "ls",
        &format!("{}/private/repo", fx.reg.host),
    ]));
    assert_eq!(tags.trim(), "v2");
    let digest = ok(fx.rc(Some(("alice", "alice-pw"))).args([
        "image",
        "digest",
        "--platform",
        "linux/arm64",
        &format!("{}/private/repo:v2", fx.reg.host),
    ]));
    assert!(digest.trim().starts_with("sha256:"), "{digest}");
    let reqs = &fx.tokens.requests()[start..];
    assert!(
        reqs.iter().any(|r| r.account == "alice"
            && r.status == 200
            && r.scopes
                .iter()
                .any(|s| s.contains("private/repo") && s.contains("pull"))),
        "no authenticated pull token was issued: {reqs:?}"
    );
}

#[test]
fn token_auth_reuses_one_token_per_command() {
    let Some(fx) = token_fixture() else { return };
    let start = fx.tokens.requests().len();
    let reg_before = fx.reg.settled_request_count();
    // Several registry requests: the index, the platform manifest, the config blob.
    ok(fx.rc(Some(("alice", "alice-pw"))).args([
        "image",
        "inspect",
        "--platform",
        "linux/arm64",
        &format!("{}/private/repo:v2", fx.reg.host),
    ]));
    let token_reqs = fx.tokens.requests().len() - start;
    let reg_reqs = fx.reg.settled_request_count() - reg_before;
    assert!(reg_reqs >= 3, "{reg_reqs} registry requests");
    assert_eq!(
        token_reqs,
        1,
        "one pull token serves every request of the command: {:?}",
        &fx.tokens.requests()[start..]
    );
}

#[test]
fn token_auth_with_an_identity_token_uses_the_refresh_grant() {
    let Some(fx) = token_fixture() else { return };
    // Log in the OAuth2 way once to get a refresh token, as `docker login` would.
    let resp = support::fakereg::http(
        &fx.tokens.host(),
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        format!(
            "grant_type=password&username=alice&password=alice-pw&service={}&client_id=test&access_type=offline",
            fx.tokens.service()
        )
        .as_bytes(),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let refresh = resp.json()["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string();
    write_regctl_config(
        &fx.tmp,
        &json!({"hosts": {fx.reg.host.clone(): {"tls": "disabled"}}}),
    );
    write_docker_config(
        &fx.tmp,
        &json!({"auths": {fx.reg.host.clone(): {"identitytoken": refresh}}}),
    );
    let start = fx.tokens.requests().len();
    let tags =
        ok(regctl_isolated(&fx.tmp).args(["tag", "ls", &format!("{}/private/repo", fx.reg.host)]));
    assert_eq!(tags.trim(), "v2");
    let reqs = &fx.tokens.requests()[start..];
    assert!(
        reqs.iter()
            .any(|r| r.method == "POST" && r.status == 200 && r.account == "alice"),
        "identity token not used through POST /token: {reqs:?}"
    );
}

#[test]
fn token_auth_anonymous_pull_of_public_repositories() {
    let Some(fx) = token_fixture() else { return };
    let start = fx.tokens.requests().len();
    let tags = ok(fx
        .rc(None)
        .args(["tag", "ls", &format!("{}/public/repo", fx.reg.host)]));
    assert_eq!(tags.trim(), "v2");
    let label = ok(fx.rc(None).args([
        "image",
        "inspect",
        "--platform",
        "linux/amd64",
        "--format",
        "{{ index .Config.Labels \"version\" }}",
        &format!("{}/public/repo:v2", fx.reg.host),
    ]));
    assert_eq!(label.trim(), "2");
    let reqs = &fx.tokens.requests()[start..];
    assert!(!reqs.is_empty());
    assert!(
        reqs.iter().all(|r| r.account.is_empty()),
        "anonymous pulls must not send credentials: {reqs:?}"
    );
}

/// Runs `manifest get private/repo:v2` as `user` and checks it is refused quickly, saying
/// "unauthorized" and naming the registry, with few token and registry requests.
fn assert_refused(fx: &TokenFixture, who: &str, user: Option<(&str, &str)>) {
    let start = fx.tokens.requests().len();
    let reg_before = fx.reg.settled_request_count();
    let started = Instant::now();
    let (code, out, err) = run_text(fx.rc(user).args([
        "manifest",
        "get",
        &format!("{}/private/repo:v2", fx.reg.host),
    ]));
    let took = started.elapsed();
    let token_reqs = fx.tokens.requests().len() - start;
    let reg_reqs = fx.reg.settled_request_count() - reg_before;
    assert_eq!(code, 1, "{who}: stdout {out}\nstderr {err}");
    assert!(
        (1..=4).contains(&token_reqs),
        "{who}: {token_reqs} token requests: {:?}",
        &fx.tokens.requests()[start..]
    );
    assert!(reg_reqs <= 4, "{who}: {reg_reqs} registry requests");
    assert!(took < Duration::from_secs(10), "{who}: took {took:?}");
    assert!(err.contains(&fx.reg.host), "{who}: {err}");
    if let Some((_, pass)) = user {
        assert!(!err.contains(pass), "{who}: password printed: {err}");
    }
    assert!(
        err.to_ascii_lowercase().contains("unauthorized"),
        "{who}: {err}"
    );
}

#[test]
fn token_auth_refused_scope_is_unauthorized_without_a_retry_storm() {
    let Some(fx) = token_fixture() else { return };
    // The token server issues a token without the scope; the registry answers 401 again.
    assert_refused(&fx, "anonymous", None);
    assert_refused(&fx, "bob", Some(("bob", "bob-pw")));
}

#[test]
fn token_auth_wrong_password_is_unauthorized() {
    let Some(fx) = token_fixture() else { return };
    // The token server itself refuses the credentials.
    assert_refused(&fx, "wrong password", Some(("alice", "not-her-password")));
}

#[test]
fn trace_with_token_auth_never_shows_secrets() {
    let Some(fx) = token_fixture() else { return };
    let (code, out, err) = run_text(fx.rc(Some(("alice", "alice-pw"))).args([
        "-v",
        "trace",
        "manifest",
        "get",
        &format!("{}/private/repo:v2", fx.reg.host),
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("/token"), "the token request is traced: {err}");
    assert!(err.contains("/v2/private/repo/manifests/v2"), "{err}");
    let basic = base64(b"alice:alice-pw");
    for (name, text) in [("stdout", &out), ("stderr", &err)] {
        assert!(!text.contains("alice-pw"), "{name} leaks the password");
        assert!(!text.contains(&basic), "{name} leaks Basic credentials");
        // Every JWT starts with the base64url of `{"`.
        assert!(!text.contains("eyJ"), "{name} leaks a bearer token: {text}");
    }
}

#[test]
fn token_auth_refused_push_names_registry_repository_and_permission() {
    let Some(fx) = token_fixture() else { return };
    // bob may pull shared/* but not push: the copy's first write is refused.
    let (code, out, err) = run_text(fx.rc(Some(("bob", "bob-pw"))).args([
        "image",
        "copy",
        &format!("{}/public/repo:v2", fx.reg.host),
        &format!("{}/shared/new:v2", fx.reg.host),
    ]));
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");
    assert!(err.contains(&fx.reg.host), "{err}");
    assert!(err.contains("shared/new"), "{err}");
    assert!(err.contains("push"), "{err}");
    assert!(!err.contains("bob-pw"), "{err}");
    // Nothing was tagged at the target.
    let (code, _, _) = run_text(fx.rc(Some(("alice", "alice-pw"))).args([
        "manifest",
        "head",
        &format!("{}/shared/new:v2", fx.reg.host),
    ]));
    assert_eq!(code, 1);
}
