//! regsync scenarios from upstream `regsync_test.go` not covered elsewhere: slow referrer
//! scan, self digest tag, referrer loop, fast check, missing image/repository and invalid
//! references or types. All run against private copies of the generated OCI layouts.

mod support;

use std::path::Path;
use std::process::Output;

use regclient::{Client, Reference};
use support::{regsync, run, testrepo, TempDir};

fn sync(tmp: &TempDir, args: &[&str], yaml: &str) -> Output {
    let p = tmp.join("regsync.yaml");
    std::fs::write(&p, yaml).unwrap();
    let mut cmd = regsync(tmp);
    cmd.args(args).arg("-c").arg(&p);
    run(&mut cmd)
}

fn sync_ok(tmp: &TempDir, yaml: &str) -> String {
    let out = sync(tmp, &["once"], yaml);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "regsync once failed: {stderr}");
    stderr
}

/// Runs `once`, expects exit 1 and returns stderr.
fn sync_fail(tmp: &TempDir, yaml: &str) -> String {
    let out = sync(tmp, &["once"], yaml);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

fn image_cfg(tmp: &TempDir, src_tag: &str, tgt_tag: &str, extra: &str) -> String {
    entry_cfg(
        &format!("ocidir://{}:{src_tag}", tmp.join("testrepo").display()),
        &format!("ocidir://{}:{tgt_tag}", tmp.join("out").display()),
        "image",
        extra,
    )
}

fn entry_cfg(src: &str, tgt: &str, kind: &str, extra: &str) -> String {
    format!(
        "defaults:\n  skipDockerConfig: true\nsync:\n  - source: {src}\n    target: {tgt}\n    type: {kind}\n{extra}"
    )
}

fn all_tags(dir: &Path) -> Vec<String> {
    support::layout_tags(dir)
}

fn digest(r: &str) -> Option<String> {
    let c = Client::new(Default::default());
    let r = Reference::parse(r).unwrap();
    c.manifest_get(&r).ok().map(|m| m.digest().to_string())
}

fn src_digest(tmp: &TempDir, tag: &str) -> String {
    digest(&format!(
        "ocidir://{}:{tag}",
        tmp.join("testrepo").display()
    ))
    .unwrap()
}

/// Digests listed in a layout's referrers fallback tag for `subject`.
fn fallback_referrers(layout: &Path, subject: &str) -> Vec<String> {
    let c = Client::new(Default::default());
    let tag = subject.replace(':', "-");
    let r = Reference::parse(&format!("ocidir://{}:{tag}", layout.display())).unwrap();
    match c.manifest_get(&r) {
        Ok(m) => {
            let v: serde_json::Value = serde_json::from_slice(m.raw()).unwrap();
            let mut d: Vec<String> = v["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["digest"].as_str().unwrap().to_string())
                .collect();
            d.sort();
            d
        }
        Err(_) => Vec::new(),
    }
}

/// Digests of the untagged `index.json` entries of a layout (v3's slow-search referrers in
/// the testrepo).
fn untagged(layout: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut d: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["annotations"]["org.opencontainers.image.ref.name"].is_null())
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect();
    d.sort();
    d
}

#[test]
fn referrer_slow_finds_untagged_referrers() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let v3 = src_digest(&tmp, "v3");
    let want = untagged(&tmp.join("testrepo"));
    assert_eq!(want.len(), 2, "the testrepo has two untagged v3 referrers");
    assert!(
        fallback_referrers(&tmp.join("testrepo"), &v3).is_empty(),
        "v3 has no fallback tag in the source"
    );
    // Without referrerSlow the referrers are not found.
    sync_ok(&tmp, &image_cfg(&tmp, "v3", "v3", "    referrers: true\n"));
    let out = tmp.join("out");
    assert_eq!(
        digest(&format!("ocidir://{}:v3", out.display())),
        Some(v3.clone())
    );
    assert!(fallback_referrers(&out, &v3).is_empty());
    for d in &want {
        assert_eq!(
            digest(&format!("ocidir://{}@{d}", out.display())),
            None,
            "{d}"
        );
    }
    // With it they reach the target (the digest matches, the referrers are refreshed).
    sync_ok(
        &tmp,
        &image_cfg(
            &tmp,
            "v3",
            "v3",
            "    referrers: true\n    referrerSlow: true\n",
        ),
    );
    assert_eq!(fallback_referrers(&out, &v3), want);
    for d in &want {
        assert_eq!(
            digest(&format!("ocidir://{}@{d}", out.display())).as_deref(),
            Some(d.as_str())
        );
    }
    // referrerSlow from the defaults applies too, on a fresh target.
    let tmp2 = TempDir::new();
    testrepo(&tmp2);
    let yaml = image_cfg(&tmp2, "v3", "v3", "").replace(
        "  skipDockerConfig: true\n",
        "  skipDockerConfig: true\n  referrers: true\n  referrerSlow: true\n",
    );
    sync_ok(&tmp2, &yaml);
    assert_eq!(fallback_referrers(&tmp2.join("out"), &v3), want);
}

#[test]
fn image_self_digest_tag() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let mirror = src_digest(&tmp, "mirror");
    let self_tag = mirror.replace(':', "-");
    assert_eq!(
        src_digest(&tmp, &self_tag),
        mirror,
        "fixture: tag points at itself"
    );
    sync_ok(
        &tmp,
        &image_cfg(&tmp, "mirror", "mirror", "    digestTags: true\n"),
    );
    let out = tmp.join("out");
    // The bare `sha256-<hex>` tag is the referrers fallback tag, which the target maintains
    // itself: it is not copied as a digest tag (upstream copies it only when referrers are
    // off; here it never is), so following it cannot loop.
    assert_eq!(all_tags(&out), vec!["mirror".to_string()]);
    assert_eq!(
        digest(&format!("ocidir://{}:mirror", out.display())),
        Some(mirror.clone())
    );
    // With referrers too (mirror is then checked for referrers via that tag) it terminates
    // and the image stays in place.
    sync_ok(
        &tmp,
        &image_cfg(
            &tmp,
            "mirror",
            "mirror",
            "    digestTags: true\n    referrers: true\n    forceRecursive: true\n",
        ),
    );
    assert_eq!(
        digest(&format!("ocidir://{}:mirror", out.display())),
        Some(mirror)
    );
}

#[test]
fn image_loop_copies_child_and_terminates() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let child = src_digest(&tmp, "child");
    let lp = src_digest(&tmp, "loop");
    sync_ok(
        &tmp,
        &image_cfg(
            &tmp,
            "loop",
            "loop",
            "    referrers: true\n    digestTags: true\n",
        ),
    );
    let out = tmp.join("out");
    assert_eq!(
        digest(&format!("ocidir://{}:loop", out.display())),
        Some(lp.clone())
    );
    assert_eq!(
        digest(&format!("ocidir://{}@{child}", out.display())),
        Some(child.clone()),
        "the child is copied"
    );
    assert_eq!(
        fallback_referrers(&out, &child),
        vec![lp],
        "loop is recorded as a referrer of child"
    );
}

#[test]
fn fast_check_skips_referrers_when_digest_matches() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let v2 = src_digest(&tmp, "v2");
    let src_refs = fallback_referrers(&tmp.join("testrepo"), &v2);
    assert_eq!(src_refs.len(), 2);
    let out = tmp.join("out");
    sync_ok(&tmp, &image_cfg(&tmp, "v2", "v2", ""));
    assert_eq!(
        digest(&format!("ocidir://{}:v2", out.display())),
        Some(v2.clone())
    );
    assert!(fallback_referrers(&out, &v2).is_empty());
    sync_ok(
        &tmp,
        &image_cfg(
            &tmp,
            "v2",
            "v2",
            "    referrers: true\n    fastCheck: true\n",
        ),
    );
    assert!(
        fallback_referrers(&out, &v2).is_empty(),
        "fastCheck: digest equal, referrers still absent"
    );
    // Without fastCheck the same entry refreshes the referrers.
    sync_ok(&tmp, &image_cfg(&tmp, "v2", "v2", "    referrers: true\n"));
    assert_eq!(fallback_referrers(&out, &v2), src_refs);
}

#[test]
fn missing_image_is_not_found() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let stderr = sync_fail(&tmp, &image_cfg(&tmp, "missing", "missing", ""));
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(all_tags(&tmp.join("out")).is_empty());
}

#[test]
fn missing_repository_is_an_error() {
    let tmp = TempDir::new();
    let yaml = entry_cfg(
        &format!("ocidir://{}", tmp.join("nonexistent").display()),
        &format!("ocidir://{}", tmp.join("out").display()),
        "repository",
        "",
    );
    let stderr = sync_fail(&tmp, &yaml);
    assert!(
        stderr.contains("nonexistent")
            && (stderr.contains("not found")
                || stderr.contains("not exist")
                || stderr.contains("No such file")),
        "{stderr}"
    );
    assert!(!tmp.join("out").join("index.json").exists());
}

#[test]
fn invalid_references_and_type() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let good_src = format!("ocidir://{}:v1", tmp.join("testrepo").display());
    let good_tgt = format!("ocidir://{}:v1", tmp.join("out").display());
    let good_src_repo = format!("ocidir://{}", tmp.join("testrepo").display());
    let good_tgt_repo = format!("ocidir://{}", tmp.join("out").display());
    let bad = "registry.example.org/Bad Repo:tag";
    let cases = [
        (
            "source image",
            bad,
            good_tgt.as_str(),
            "image",
            "field source",
        ),
        (
            "target image",
            good_src.as_str(),
            bad,
            "image",
            "field target",
        ),
        (
            "source repository",
            "registry.example.org/UPPER",
            good_tgt_repo.as_str(),
            "repository",
            "field source",
        ),
        (
            "target repository",
            good_src_repo.as_str(),
            "registry.example.org/UPPER",
            "repository",
            "field target",
        ),
    ];
    for (name, src, tgt, kind, field) in cases {
        let stderr = sync_fail(&tmp, &entry_cfg(src, tgt, kind, ""));
        assert!(stderr.contains("invalid reference"), "{name}: {stderr}");
        assert!(stderr.contains(field), "{name}: {stderr}");
        assert!(all_tags(&tmp.join("out")).is_empty(), "{name}");
    }
    let stderr = sync_fail(&tmp, &entry_cfg(&good_src, &good_tgt, "unknown", ""));
    assert!(stderr.contains("invalid input"), "{stderr}");
    assert!(stderr.contains("field type"), "{stderr}");
    assert!(all_tags(&tmp.join("out")).is_empty());
}

/// Upstream's "ReadOnly + abort": a target registry that refuses every write makes its entry
/// fail with the registry's status; `--abort-on-error` stops the entries after it, without it
/// the others still run.
#[test]
fn read_only_target_and_abort_on_error() {
    use support::fakereg::{FakeRegistry, Fault, Rule};
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let ro = FakeRegistry::start();
    for method in ["POST", "PUT", "PATCH"] {
        ro.add_rule(
            Rule::always(Fault::Status {
                code: 405,
                retry_after: None,
            })
            .method(method),
        );
    }
    let out = tmp.join("out");
    let yaml = format!(
        "creds:\n  - registry: {h}\n    tls: disabled\ndefaults:\n  skipDockerConfig: true\nsync:\n  - source: ocidir://{r}:v1\n    target: {h}/ro:v1\n    type: image\n  - source: ocidir://{r}:v2\n    target: ocidir://{o}:v2\n    type: image\n",
        h = ro.host(),
        r = repo.display(),
        o = out.display()
    );
    let o = sync(&tmp, &["once", "--abort-on-error"], &yaml);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("405"), "{err}");
    assert!(
        !out.join("index.json").exists(),
        "the entry after the failure ran: {err}"
    );
    assert!(ro.tags("ro").is_empty());
    // Without the flag the failure is reported and the next entry still copies.
    let o = sync(&tmp, &["once"], &yaml);
    assert_eq!(o.status.code(), Some(1));
    assert!(all_tags(&out).contains(&"v2".to_string()));
}
