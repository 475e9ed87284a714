//! regctl against a real `docker-registry` serving HTTPS with a throw-away CA: trust through
//! `regcert`, through `/etc/docker/certs.d` (root only), `tls: insecure`, an untrusted
//! certificate, and a plain-HTTP registry addressed as HTTPS.

mod support;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use support::registry::{Options, Registry};
use support::{ok, regctl_isolated, run_text, testrepo, write_regctl_config, TempDir};

/// A TLS registry holding `repo:v2`, copied with the CA trusted through `regcert`.
fn tls_registry(tmp: &TempDir) -> Option<Registry> {
    let reg = Registry::start(Options {
        tls: true,
        ..Options::default()
    })?;
    let layout = testrepo(tmp);
    let ca = reg.ca_pem.clone().expect("CA PEM");
    write_regctl_config(tmp, &json!({"hosts": {reg.host.clone(): {"regcert": ca}}}));
    ok(regctl_isolated(tmp).args([
        "image",
        "copy",
        &format!("ocidir://{}:v2", layout.display()),
        &format!("{}/repo:v2", reg.host),
    ]));
    Some(reg)
}

fn local_digest(tmp: &TempDir) -> String {
    let layout = tmp.join("testrepo");
    ok(regctl_isolated(tmp).args([
        "manifest",
        "head",
        &format!("ocidir://{}:v2", layout.display()),
    ]))
    .trim()
    .to_string()
}

#[test]
fn regcert_in_the_config_file_is_trusted() {
    let tmp = TempDir::new();
    let Some(reg) = tls_registry(&tmp) else {
        return;
    };
    let tags = ok(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    assert_eq!(tags.trim(), "v2");
    let digest =
        ok(regctl_isolated(&tmp).args(["manifest", "head", &format!("{}/repo:v2", reg.host)]));
    assert_eq!(digest.trim(), local_digest(&tmp));
    // The registry saw HTTPS requests (a plain-HTTP request would not be in the access log).
    assert!(reg.settled_request_count() > 0);
}

#[test]
fn untrusted_certificate_fails_fast_with_a_tls_error() {
    let tmp = TempDir::new();
    let Some(reg) = tls_registry(&tmp) else {
        return;
    };
    // Same registry, but nothing trusts its CA now.
    write_regctl_config(&tmp, &json!({}));
    let before = reg.settled_log();
    let handshakes_before = before.matches("TLS handshake error").count();
    let started = Instant::now();
    let (code, out, err) = run_text(regctl_isolated(&tmp).args([
        "manifest",
        "head",
        &format!("{}/repo:v2", reg.host),
    ]));
    let took = started.elapsed();
    assert_eq!(code, 1, "stdout {out} stderr {err}");
    let lower = err.to_ascii_lowercase();
    assert!(
        lower.contains("certificate") || lower.contains("tls"),
        "error should name the TLS/certificate problem: {err}"
    );
    assert!(
        err.contains(&reg.host),
        "error should name the registry: {err}"
    );
    assert!(
        took < Duration::from_secs(10),
        "a certificate error must not be retried with backoff (took {took:?})"
    );
    let after = reg.settled_log();
    let handshakes = after.matches("TLS handshake error").count() - handshakes_before;
    assert!(
        handshakes <= 2,
        "{handshakes} failed handshakes for one command: a certificate error is not transient"
    );
    assert_eq!(
        support::registry::count_requests(&after),
        support::registry::count_requests(&before),
        "no HTTP request may get through an unverified connection"
    );
}

#[test]
fn tls_insecure_skips_verification() {
    let tmp = TempDir::new();
    let Some(reg) = tls_registry(&tmp) else {
        return;
    };
    write_regctl_config(
        &tmp,
        &json!({"hosts": {reg.host.clone(): {"tls": "insecure"}}}),
    );
    let digest =
        ok(regctl_isolated(&tmp).args(["manifest", "head", &format!("{}/repo:v2", reg.host)]));
    assert_eq!(digest.trim(), local_digest(&tmp));
    // And through --host instead of the file.
    write_regctl_config(&tmp, &json!({}));
    let tags = ok(regctl_isolated(&tmp).args([
        "--host",
        &format!("reg={},tls=insecure", reg.host),
        "tag",
        "ls",
        &format!("{}/repo", reg.host),
    ]));
    assert_eq!(tags.trim(), "v2");
}

#[test]
fn plain_http_registry_addressed_over_https_suggests_tls_disabled() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let tmp = TempDir::new();
    write_regctl_config(
        &tmp,
        &json!({"hosts": {reg.host.clone(): {"tls": "enabled"}}}),
    );
    let started = Instant::now();
    let (code, out, err) =
        run_text(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    let took = started.elapsed();
    assert_eq!(code, 1, "stdout {out} stderr {err}");
    assert!(
        err.contains("tls disabled") || err.contains("tls=disabled"),
        "the error should suggest disabling TLS: {err}"
    );
    assert!(err.contains(&reg.host), "{err}");
    assert_eq!(
        err.matches("tls disabled").count() + err.matches("tls=disabled").count(),
        1,
        "one hint, not one per retry: {err}"
    );
    assert!(
        took < Duration::from_secs(10),
        "a protocol mismatch must not be retried with long backoff (took {took:?})"
    );
    // The same registry works once TLS is disabled.
    write_regctl_config(
        &tmp,
        &json!({"hosts": {reg.host.clone(): {"tls": "disabled"}}}),
    );
    let (code, _, err) =
        run_text(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    // Empty registry: the repository is unknown, but the transport works.
    assert_eq!(code, 1);
    assert!(err.contains("not found"), "{err}");
}

/// Removes a directory on drop.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn docker_certs_d_is_trusted_when_running_as_root() {
    // Writing /etc/docker/certs.d needs root; elsewhere this is skipped.
    let is_root = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    if !is_root {
        eprintln!("note: not root; skipping the /etc/docker/certs.d test");
        return;
    }
    let tmp = TempDir::new();
    let Some(reg) = tls_registry(&tmp) else {
        return;
    };
    let dir = PathBuf::from("/etc/docker/certs.d").join(&reg.host);
    if dir.exists() {
        panic!("{} already exists; refusing to touch it", dir.display());
    }
    if fs::create_dir_all(&dir).is_err() {
        eprintln!("note: cannot create {}; skipping", dir.display());
        return;
    }
    let _cleanup = RemoveOnDrop(dir.clone());
    fs::copy(reg.ca_file.as_ref().expect("CA file"), dir.join("ca.crt")).expect("copy CA");
    write_regctl_config(&tmp, &json!({}));
    let tags = ok(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    assert_eq!(tags.trim(), "v2");
    // incDockerCert=false turns it off again.
    write_regctl_config(&tmp, &json!({"incDockerCert": false}));
    let (code, _, err) =
        run_text(regctl_isolated(&tmp).args(["tag", "ls", &format!("{}/repo", reg.host)]));
    assert_eq!(code, 1, "{err}");
    assert!(err.to_ascii_lowercase().contains("certificate"), "{err}");
}
