//! regsync against OCI layouts: config processing, filters, modes, backup, reports and bad
//! input.

mod support;

use std::path::Path;
use std::process::Output;

use regclient::{Client, Reference};
use support::{regsync, run, testrepo, TempDir};

fn write_cfg(tmp: &TempDir, yaml: &str) -> String {
    let p = tmp.join("regsync.yaml");
    std::fs::write(&p, yaml).unwrap();
    p.display().to_string()
}

fn sync(tmp: &TempDir, args: &[&str], yaml: &str) -> Output {
    let cfg = write_cfg(tmp, yaml);
    let mut cmd = regsync(tmp);
    cmd.args(args).arg("-c").arg(cfg);
    run(&mut cmd)
}

fn sync_ok(tmp: &TempDir, args: &[&str], yaml: &str) -> String {
    let out = sync(tmp, args, yaml);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "regsync {args:?} failed: {stderr}");
    stderr
}

/// Tags of a layout, without the referrers fallback tags (`sha256-<hex>`) the layout writes
/// for manifests that carry a subject.
fn tags(dir: &Path) -> Vec<String> {
    let mut t = all_tags(dir);
    t.retain(|t| !(t.starts_with("sha256-") && t.len() == 71));
    t
}

fn all_tags(dir: &Path) -> Vec<String> {
    support::layout_tags(dir)
}

fn digest(r: &str) -> Option<String> {
    let c = Client::new(Default::default());
    let r = Reference::parse(r).unwrap();
    c.manifest_get(&r).ok().map(|m| m.digest().to_string())
}

fn repo_cfg(tmp: &TempDir, filter: &str) -> String {
    format!(
        "defaults:\n  skipDockerConfig: true\nsync:\n  - source: ocidir://{src}\n    target: ocidir://{tgt}\n    type: repository\n{filter}",
        src = tmp.join("testrepo").display(),
        tgt = tmp.join("out").display(),
    )
}

#[test]
fn repository_tag_filters() {
    let cases: &[(&str, &[&str])] = &[
        ("    tags:\n      allow: [v1, v3, latest]\n", &["v1", "v3"]),
        (
            "    tags:\n      allow: ['v.*']\n      deny: [v2]\n",
            &["v1", "v3"],
        ),
        ("    tags:\n      semverRange: ['>=v2']\n", &["v2", "v3"]),
        (
            "    tagSets:\n      - allow: ['a[0-9]']\n      - allow: [loop]\n",
            &["a1", "a2", "a3", "loop"],
        ),
    ];
    for (filter, want) in cases {
        let tmp = TempDir::new();
        testrepo(&tmp);
        sync_ok(&tmp, &["once"], &repo_cfg(&tmp, filter));
        assert_eq!(tags(&tmp.join("out")), *want, "filter {filter}");
    }
}

#[test]
fn check_mode_changes_nothing() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let stderr = sync_ok(
        &tmp,
        &["check"],
        &repo_cfg(&tmp, "    tags:\n      allow: [v1]\n"),
    );
    assert!(stderr.contains("Image sync needed"), "{stderr}");
    assert!(tags(&tmp.join("out")).is_empty());
    assert!(!tmp.join("out").join("index.json").exists());
}

fn image_cfg(tmp: &TempDir, src_tag: &str, tgt_tag: &str, extra: &str) -> String {
    format!(
        "defaults:\n  skipDockerConfig: true\nsync:\n  - source: ocidir://{src}:{src_tag}\n    target: ocidir://{tgt}:{tgt_tag}\n    type: image\n{extra}",
        src = tmp.join("testrepo").display(),
        tgt = tmp.join("out").display(),
    )
}

/// Puts testrepo:v2 at out:v1, so out:v1 differs from testrepo:v1.
fn stale_target(tmp: &TempDir) -> (String, String) {
    testrepo(tmp);
    sync_ok(tmp, &["once"], &image_cfg(tmp, "v2", "v1", ""));
    let src = tmp.join("testrepo").display().to_string();
    let v1 = digest(&format!("ocidir://{src}:v1")).unwrap();
    let v2 = digest(&format!("ocidir://{src}:v2")).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(
        digest(&format!("ocidir://{}:v1", tmp.join("out").display())).unwrap(),
        v2
    );
    (v1, v2)
}

#[test]
fn missing_mode_keeps_existing_tags() {
    let tmp = TempDir::new();
    let (_v1, v2) = stale_target(&tmp);
    let out = tmp.join("out").display().to_string();
    sync_ok(
        &tmp,
        &["once", "--missing"],
        &repo_cfg(&tmp, "    tags:\n      allow: [v1, v3]\n"),
    );
    assert_eq!(digest(&format!("ocidir://{out}:v1")).unwrap(), v2);
    let v3 = digest(&format!("ocidir://{}:v3", tmp.join("testrepo").display())).unwrap();
    assert_eq!(digest(&format!("ocidir://{out}:v3")).unwrap(), v3);
}

#[test]
fn overwrite_with_backup_template() {
    let tmp = TempDir::new();
    let (v1, v2) = stale_target(&tmp);
    let out = tmp.join("out").display().to_string();
    // check first: nothing changes.
    let stderr = sync_ok(
        &tmp,
        &["check"],
        &image_cfg(&tmp, "v1", "v1", "    backup: 'old-{{.Ref.Tag}}'\n"),
    );
    assert!(stderr.contains("Image refreshing"), "{stderr}");
    assert_eq!(digest(&format!("ocidir://{out}:v1")).unwrap(), v2);
    sync_ok(
        &tmp,
        &["once"],
        &image_cfg(&tmp, "v1", "v1", "    backup: 'old-{{.Ref.Tag}}'\n"),
    );
    assert_eq!(digest(&format!("ocidir://{out}:v1")).unwrap(), v1);
    assert_eq!(digest(&format!("ocidir://{out}:old-v1")).unwrap(), v2);
}

#[test]
fn digest_tags_copied() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    sync_ok(
        &tmp,
        &["once"],
        &image_cfg(&tmp, "v1", "v1", "    digestTags: true\n"),
    );
    let meta = "sha256-cd81be50da2ccc1ce73632d40e3c1430a6c6ec23de0d71843be0ed3f31ebfbdb";
    let t = all_tags(&tmp.join("out"));
    assert!(
        t.iter().any(|t| t.starts_with(
            "sha256-cd81be50da2ccc1ce73632d40e3c1430a6c6ec23de0d71843be0ed3f31ebfbdb"
        )),
        "{t:?}"
    );
    let tmp = TempDir::new();
    testrepo(&tmp);
    sync_ok(&tmp, &["once"], &image_cfg(&tmp, "v1", "v1", ""));
    assert_eq!(tags(&tmp.join("out")), ["v1"]);
    assert!(!all_tags(&tmp.join("out"))
        .iter()
        .any(|t| t.starts_with(meta)));
}

#[test]
fn report_json() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let yaml = image_cfg(&tmp, "v1", "v1", "")
        + &format!(
            "  - source: ocidir://{}:missing\n    target: ocidir://{}:missing\n    type: image\n",
            tmp.join("testrepo").display(),
            tmp.join("out").display()
        );
    let out = sync(&tmp, &["once", "--report", "report.json"], &yaml);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing source image fails the run"
    );
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("report.json")).unwrap()).unwrap();
    let img = &rep["entries"][0]["images"][0];
    assert_eq!(img["action"], "copied");
    assert_eq!(
        img["sourceDigest"],
        "sha256:cd81be50da2ccc1ce73632d40e3c1430a6c6ec23de0d71843be0ed3f31ebfbdb"
    );
    assert_eq!(img["targetDigestBefore"], "");
    assert_eq!(img["targetDigestAfter"], img["sourceDigest"]);
    assert!(img["bytes"].as_u64().unwrap() > 0);
    let bad = &rep["entries"][1]["images"][0];
    assert_eq!(bad["action"], "failed");
    assert!(
        bad["error"].as_str().unwrap().contains("not found"),
        "{bad}"
    );
    // The second run finds everything in place.
    sync_ok(
        &tmp,
        &["once", "--report", "report2.json"],
        &image_cfg(&tmp, "v1", "v1", ""),
    );
    let rep: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("report2.json")).unwrap()).unwrap();
    let img = &rep["entries"][0]["images"][0];
    assert_eq!(img["action"], "skipped");
    assert_eq!(img["targetDigestBefore"], img["sourceDigest"]);
}

#[test]
fn abort_on_error_stops_later_entries() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\nsync:\n  - source: ocidir://{src}:missing\n    target: ocidir://{tgt}:missing\n    type: image\n  - source: ocidir://{src}:v1\n    target: ocidir://{tgt}:v1\n    type: image\n",
        src = tmp.join("testrepo").display(),
        tgt = tmp.join("out").display()
    );
    let out = sync(&tmp, &["once", "--abort-on-error"], &yaml);
    assert_eq!(out.status.code(), Some(1));
    assert!(tags(&tmp.join("out")).is_empty());
    let out = sync(&tmp, &["once"], &yaml);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(tags(&tmp.join("out")), ["v1"]);
}

#[test]
fn invalid_inputs_fail_before_copying() {
    let cases = [
        ("    type: bogus\n", "type"),
        (
            "    type: repository\n    tags:\n      allow: ['(']\n",
            "tags",
        ),
        (
            "    type: repository\n    tags:\n      semverRange: ['>=x']\n",
            "tags",
        ),
        ("    type: image\n    source: '{{ .Nope.Bad }'\n", "source"),
        ("    type: image\n    repos:\n      deny: ['[a']\n", "repos"),
        (
            "    type: image\n    platform: 'linux/amd64/v9/extra/junk'\n",
            "platform",
        ),
    ];
    for (entry, field) in cases {
        let tmp = TempDir::new();
        testrepo(&tmp);
        let mut yaml = image_cfg(&tmp, "v1", "v1", "");
        let src = tmp.join("testrepo").display().to_string();
        let bad_src = if entry.contains("source:") {
            String::new()
        } else {
            format!("    source: ocidir://{src}:v2\n")
        };
        yaml += &format!(
            "  - target: ocidir://{}:v2\n{bad_src}{entry}",
            tmp.join("out").display()
        );
        let out = sync(&tmp, &["once"], &yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{entry}: {stderr}");
        assert!(
            stderr.contains("regsync.yaml"),
            "{entry}: file not named: {stderr}"
        );
        assert!(
            stderr.contains("sync[1]"),
            "{entry}: entry not named: {stderr}"
        );
        assert!(
            stderr.contains(&format!("field {field}")),
            "{entry}: field not named: {stderr}"
        );
        assert!(
            tags(&tmp.join("out")).is_empty(),
            "{entry}: copied before validating"
        );
    }
    let tmp = TempDir::new();
    for bad in ["sync: [", "version: 2\n", "sync: 5\n"] {
        let out = sync(&tmp, &["once"], bad);
        assert_eq!(out.status.code(), Some(1), "{bad}");
    }
}

#[test]
fn config_command_applies_defaults_and_templates() {
    let tmp = TempDir::new();
    let yaml =
        std::fs::read_to_string(support::repo_root().join("tests/regsync-example.yaml")).unwrap();
    let cfg = write_cfg(&tmp, &yaml);
    let mut cmd = regsync(&tmp);
    cmd.args(["config", "-c", &cfg])
        .env("REGSYNC_TEST_USER", "alice")
        .env("REGSYNC_TEST_PASS", "s3cret");
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
    assert_eq!(v["creds"][0]["user"].as_str(), Some("alice"));
    assert_eq!(
        v["creds"][0]["registry"].as_str(),
        Some("registry.example.org")
    );
    let s0 = &v["sync"][0];
    assert_eq!(s0["target"].as_str(), Some("ocidir://out/image:v1"));
    assert_eq!(s0["referrers"].as_bool(), Some(true));
    assert_eq!(
        s0["fastCheck"].as_bool(),
        Some(false),
        "explicit key overrides the merge"
    );
    assert_eq!(s0["interval"].as_str(), Some("1h0m0s"));
    assert_eq!(s0["ratelimit"]["min"].as_i64(), Some(100));
    assert_eq!(s0["ratelimit"]["retry"].as_str(), Some("5m0s"));
    assert_eq!(s0["mediaTypes"].as_sequence().map(|s| s.len()), Some(4));
    let s1 = &v["sync"][1];
    assert_eq!(s1["schedule"].as_str(), Some("15 3 * * *"));
    assert_eq!(
        s1["interval"].as_str(),
        Some("0s"),
        "schedule keeps the default interval out"
    );
    assert_eq!(s1["backup"].as_str(), Some("backup-{{ .Ref.Tag }}"));
    assert_eq!(s1["referrers"].as_bool(), Some(false));
    // stdin works too.
    let mut cmd = regsync(&tmp);
    cmd.args(["config", "-c", "-"]);
    let out = support::run_input(
        &mut cmd,
        b"sync:\n  - source: a/b:1\n    target: c/d:1\n    type: image\n",
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("target: c/d:1"));
}

#[test]
fn version_and_usage() {
    let tmp = TempDir::new();
    let out = run(regsync(&tmp).arg("version"));
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = run(regsync(&tmp).args(["frobnicate"]));
    assert_eq!(out.status.code(), Some(1));
    let out = run(regsync(&tmp).args(["once"]));
    assert_eq!(out.status.code(), Some(1), "--config is required");
    let out = run(regsync(&tmp).args(["server", "-c", "x"]));
    assert_eq!(out.status.code(), Some(1));
}

fn report(tmp: &TempDir, name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(tmp.join(name)).unwrap()).unwrap()
}

#[test]
fn platform_resolution() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let yaml = image_cfg(&tmp, "v1", "v1", "    platform: linux/amd64\n");
    sync_ok(&tmp, &["once"], &yaml);
    let c = Client::new(Default::default());
    let out = Reference::parse(&format!("ocidir://{}:v1", tmp.join("out").display())).unwrap();
    let m = c.manifest_get(&out).unwrap();
    assert!(!m.is_index(), "a single platform was copied");
    let src = Reference::parse(&format!("ocidir://{}:v1", tmp.join("testrepo").display())).unwrap();
    let want = c
        .manifest_get_platform(&src, &regclient::Platform::parse("linux/amd64").unwrap())
        .unwrap();
    assert_eq!(m.digest(), want.digest());
    // Again: the platform digest matches, nothing is copied.
    let stderr = sync_ok(&tmp, &["once", "-v", "debug", "--report", "r.json"], &yaml);
    assert!(stderr.contains("Image matches for platform"), "{stderr}");
    let r = report(&tmp, "r.json");
    assert_eq!(r["entries"][0]["images"][0]["action"], "skipped");
}

#[test]
fn media_types_filter() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let yaml = image_cfg(
        &tmp,
        "v1",
        "v1",
        "    mediaTypes: [application/vnd.oci.image.manifest.v1+json]\n",
    );
    sync_ok(&tmp, &["once", "--report", "r.json"], &yaml);
    assert!(
        tags(&tmp.join("out")).is_empty(),
        "an index is not an allowed media type"
    );
    let r = report(&tmp, "r.json");
    let img = &r["entries"][0]["images"][0];
    assert_eq!(img["action"], "skipped");
    assert!(
        img["reason"].as_str().unwrap().contains("media type"),
        "{img}"
    );
    // A plain manifest passes the same filter.
    let yaml = image_cfg(
        &tmp,
        "a1",
        "a1",
        "    mediaTypes: [application/vnd.oci.image.manifest.v1+json]\n",
    );
    sync_ok(&tmp, &["once"], &yaml);
    assert_eq!(tags(&tmp.join("out")), ["a1"]);
}

#[test]
fn backup_to_full_reference() {
    let tmp = TempDir::new();
    let (v1, v2) = stale_target(&tmp);
    let backups = tmp.join("backups").display().to_string();
    let extra = format!("    backup: 'ocidir://{backups}:{{{{.Ref.Tag}}}}'\n");
    sync_ok(&tmp, &["once"], &image_cfg(&tmp, "v1", "v1", &extra));
    assert_eq!(digest(&format!("ocidir://{backups}:v1")).unwrap(), v2);
    let out = tmp.join("out").display().to_string();
    assert_eq!(digest(&format!("ocidir://{out}:v1")).unwrap(), v1);
    // No backup when the target already matches.
    std::fs::remove_dir_all(tmp.join("backups")).unwrap();
    sync_ok(&tmp, &["once"], &image_cfg(&tmp, "v1", "v1", &extra));
    assert!(!tmp.join("backups").exists());
}

/// Digests listed in a layout's referrers fallback tag for `subject`.
fn fallback_referrers(layout: &Path, subject: &str) -> Vec<String> {
    let c = Client::new(Default::default());
    let tag = subject.replace(':', "-");
    let r = Reference::parse(&format!("ocidir://{}:{tag}", layout.display())).unwrap();
    match c.manifest_get(&r) {
        Ok(m) => {
            let v: serde_json::Value = serde_json::from_slice(m.raw()).unwrap();
            v["manifests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["digest"].as_str().unwrap().to_string())
                .collect()
        }
        Err(_) => Vec::new(),
    }
}

#[test]
fn external_referrers_source_and_target() {
    let v2 = "sha256:c7e3ddfacbecbbb854b2a6432f9ff47ada729618e838cad31431fc8a0bbde956";
    let tmp = TempDir::new();
    testrepo(&tmp);
    let ext = support::external(&tmp);
    let mut want = fallback_referrers(&ext, v2);
    want.sort();
    assert_eq!(want.len(), 2);
    let local = fallback_referrers(&tmp.join("testrepo"), v2);
    assert!(!local.is_empty());
    let extra = format!(
        "    referrers: true\n    referrerSource: ocidir://{}\n",
        ext.display()
    );
    sync_ok(&tmp, &["once"], &image_cfg(&tmp, "v2", "v2", &extra));
    let mut got = fallback_referrers(&tmp.join("out"), v2);
    got.sort();
    assert_eq!(got, want, "external referrers copied, local ones not");
    // Referrers written to a separate target repository.
    let tmp = TempDir::new();
    testrepo(&tmp);
    let ext = support::external(&tmp);
    let extra = format!(
        "    referrers: true\n    referrerSource: ocidir://{}\n    referrerTarget: ocidir://{}\n",
        ext.display(),
        tmp.join("refs").display()
    );
    sync_ok(&tmp, &["once"], &image_cfg(&tmp, "v2", "v2", &extra));
    let mut got = fallback_referrers(&tmp.join("refs"), v2);
    got.sort();
    assert_eq!(got, want);
    assert!(fallback_referrers(&tmp.join("out"), v2).is_empty());
}

#[test]
fn parallel_entries_json_logs_and_loops() {
    let tmp = TempDir::new();
    testrepo(&tmp);
    let src = tmp.join("testrepo").display().to_string();
    let out = tmp.join("out").display().to_string();
    let mut yaml = "defaults:\n  skipDockerConfig: true\n  parallel: 3\nsync:\n".to_string();
    for t in ["v1", "v2", "v3", "loop", "a1"] {
        yaml += &format!(
            "  - source: ocidir://{src}:{t}\n    target: ocidir://{out}:{t}\n    type: image\n"
        );
    }
    let stderr = sync_ok(
        &tmp,
        &["once", "--logopt", "json", "--report", "r.json"],
        &yaml,
    );
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["msg"].is_string(), "{line}");
    }
    assert!(stderr.contains("Image sync running"), "{stderr}");
    assert_eq!(tags(&tmp.join("out")), ["a1", "loop", "v1", "v2", "v3"]);
    let r = report(&tmp, "r.json");
    let entries = r["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["index"], i, "report keeps config order");
        assert_eq!(e["images"][0]["action"], "copied");
    }
    for t in ["v1", "v2", "v3", "loop", "a1"] {
        assert_eq!(
            digest(&format!("ocidir://{src}:{t}")),
            digest(&format!("ocidir://{out}:{t}")),
            "{t}"
        );
    }
}

#[test]
fn missing_mode_image_exists_and_check_matches() {
    let tmp = TempDir::new();
    let (_v1, v2) = stale_target(&tmp);
    let out = tmp.join("out").display().to_string();
    let yaml = image_cfg(&tmp, "v1", "v1", "");
    sync_ok(&tmp, &["once", "--missing", "--report", "r.json"], &yaml);
    assert_eq!(digest(&format!("ocidir://{out}:v1")).unwrap(), v2);
    assert_eq!(
        report(&tmp, "r.json")["entries"][0]["images"][0]["reason"],
        "exists"
    );
    sync_ok(&tmp, &["once"], &yaml);
    let stderr = sync_ok(&tmp, &["check", "-v", "debug", "--report", "c.json"], &yaml);
    assert!(stderr.contains("Image matches"), "{stderr}");
    assert!(!stderr.contains("Image sync running"), "{stderr}");
    assert_eq!(report(&tmp, "c.json")["mode"], "check");
}
