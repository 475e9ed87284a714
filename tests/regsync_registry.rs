//! regsync against real docker-registry instances: image, repository and registry copies,
//! referrers with filters, and a second run that only costs HEAD requests.

mod support;

use std::process::{Command, Output};

use support::registry::{Options, Registry};
use support::{run, testrepo, TempDir};

fn regsync(tmp: &TempDir) -> Command {
    let home = tmp.join("home");
    let _ = std::fs::create_dir_all(&home);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regsync"));
    cmd.current_dir(tmp.path())
        .env("HOME", &home)
        .env("DOCKER_CONFIG", tmp.join("docker"))
        .env_remove("DOCKER_AUTH_CONFIG");
    cmd
}

fn sync(tmp: &TempDir, args: &[&str], yaml: &str) -> Output {
    let p = tmp.join("regsync.yaml");
    std::fs::write(&p, yaml).unwrap();
    let mut cmd = regsync(tmp);
    cmd.args(args).arg("-c").arg(&p);
    run(&mut cmd)
}

fn sync_ok(tmp: &TempDir, args: &[&str], yaml: &str) -> String {
    let out = sync(tmp, args, yaml);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "regsync {args:?} failed: {stderr}");
    stderr
}

fn header(reg: &Registry) -> String {
    format!(
        "defaults:\n  skipDockerConfig: true\ncreds:\n  - registry: {}\n    tls: disabled\nsync:\n",
        reg.host
    )
}

fn regctl(tmp: &TempDir, reg: &Registry, args: &[&str]) -> String {
    let mut cmd = support::regctl_isolated(tmp);
    cmd.arg("--host")
        .arg(format!("reg={},tls=disabled", reg.host))
        .args(args);
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "regctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Tag listing without referrers fallback tags.
fn tag_ls(tmp: &TempDir, reg: &Registry, repo: &str) -> String {
    let all = regctl(tmp, reg, &["tag", "ls", repo]);
    all.lines()
        .filter(|l| !l.starts_with("sha256-"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn digest(tmp: &TempDir, reg: &Registry, r: &str) -> String {
    regctl(tmp, reg, &["image", "digest", r])
}

#[test]
fn image_copy_then_second_run_only_heads() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let tmp = TempDir::new();
    let src = testrepo(&tmp);
    let yaml = header(&reg)
        + &format!(
            "  - source: ocidir://{}:v1\n    target: {}/mirror/app:v1\n    type: image\n",
            src.display(),
            reg.host
        );
    sync_ok(&tmp, &["once"], &yaml);
    let want = "sha256:cd81be50da2ccc1ce73632d40e3c1430a6c6ec23de0d71843be0ed3f31ebfbdb";
    assert_eq!(
        digest(&tmp, &reg, &format!("{}/mirror/app:v1", reg.host)),
        want
    );
    let before = reg.settled_log();
    sync_ok(&tmp, &["once"], &yaml);
    let after = reg.settled_log();
    let new = &after[before.len()..];
    let reqs: Vec<&str> = new
        .lines()
        .filter(|l| support::registry::count_requests(l) == 1)
        .collect();
    assert!(!reqs.is_empty(), "the second run asked the target nothing");
    assert!(
        reqs.iter().all(|l| l.contains("\"HEAD /v2")),
        "second run made more than HEAD requests: {reqs:#?}"
    );
    assert!(reqs.len() <= 2, "too many requests: {reqs:#?}");
}

#[test]
fn repository_copy_between_registries_and_check() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let tmp = TempDir::new();
    let src = testrepo(&tmp);
    let h = &reg.host;
    // Seed the registry from the layout, then mirror registry -> registry.
    let seed = header(&reg)
        + &format!(
            "  - source: ocidir://{}\n    target: {h}/src/repo\n    type: repository\n    tags:\n      allow: ['v[0-9]']\n",
            src.display()
        );
    sync_ok(&tmp, &["once"], &seed);
    assert_eq!(tag_ls(&tmp, &reg, &format!("{h}/src/repo")), "v1\nv2\nv3");
    let mirror = header(&reg)
        + &format!(
            "  - source: {h}/src/repo\n    target: {h}/dst/repo\n    type: repository\n    tags:\n      semverRange: ['>=v2']\n"
        );
    let stderr = sync_ok(&tmp, &["check"], &mirror);
    assert!(stderr.contains("Image sync needed"), "{stderr}");
    let out = run(support::regctl_isolated(&tmp)
        .arg("--host")
        .arg(format!("reg={h},tls=disabled"))
        .args(["tag", "ls", &format!("{h}/dst/repo")]));
    assert!(
        !out.status.success() || out.stdout.is_empty(),
        "check copied something"
    );
    sync_ok(&tmp, &["once"], &mirror);
    assert_eq!(tag_ls(&tmp, &reg, &format!("{h}/dst/repo")), "v2\nv3");
    for t in ["v2", "v3"] {
        assert_eq!(
            digest(&tmp, &reg, &format!("{h}/src/repo:{t}")),
            digest(&tmp, &reg, &format!("{h}/dst/repo:{t}"))
        );
    }
}

#[test]
fn registry_type_with_repo_filter() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let tmp = TempDir::new();
    let src = testrepo(&tmp);
    let h = &reg.host;
    let mut seed = header(&reg);
    for repo in ["lib/one", "lib/two", "other/three"] {
        seed += &format!(
            "  - source: ocidir://{}:v1\n    target: {h}/{repo}:v1\n    type: image\n",
            src.display()
        );
    }
    sync_ok(&tmp, &["once"], &seed);
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\ncreds:\n  - registry: {h}\n    tls: disabled\n  - registry: localhost:{port}\n    tls: disabled\nsync:\n  - source: {h}\n    target: localhost:{port}/copy\n    type: registry\n    repos:\n      allow: ['lib/.*']\n      deny: ['lib/two']\n",
        port = h.rsplit(':').next().unwrap()
    );
    sync_ok(&tmp, &["once"], &yaml);
    let cat = regctl(&tmp, &reg, &["repo", "ls", h]);
    assert!(cat.lines().any(|l| l == "copy/lib/one"), "{cat}");
    assert!(!cat.contains("copy/lib/two"), "{cat}");
    assert!(!cat.contains("copy/other"), "{cat}");
}

#[test]
fn referrers_with_filter() {
    let Some(reg) = Registry::start(Options::default()) else {
        return;
    };
    let tmp = TempDir::new();
    let src = testrepo(&tmp);
    let h = &reg.host;
    let list = |tmp: &TempDir, r: &str| {
        regctl(
            tmp,
            &reg,
            &[
                "artifact",
                "list",
                r,
                "--format",
                "{{range .Descriptors}}{{.ArtifactType}}\n{{end}}",
            ],
        )
    };
    let src_types = {
        let mut c = support::regctl_isolated(&tmp);
        c.args([
            "artifact",
            "list",
            &format!("ocidir://{}:v2", src.display()),
            "--format",
            "{{range .Descriptors}}{{.ArtifactType}}\n{{end}}",
        ]);
        String::from_utf8_lossy(&run(&mut c).stdout).to_string()
    };
    let types: Vec<&str> = src_types.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        types.len() >= 2,
        "testrepo:v2 should have several referrers: {types:?}"
    );
    let keep = types[0];
    let yaml = header(&reg)
        + &format!(
            "  - source: ocidir://{}:v2\n    target: {h}/ref/app:v2\n    type: image\n    referrers: true\n    referrerFilters:\n      - artifactType: {keep}\n",
            src.display()
        );
    sync_ok(&tmp, &["once"], &yaml);
    let got = list(&tmp, &format!("{h}/ref/app:v2"));
    let got: Vec<&str> = got.lines().filter(|l| !l.is_empty()).collect();
    assert!(!got.is_empty(), "no referrers copied");
    assert!(
        got.iter().all(|t| *t == keep),
        "filter not applied: {got:?}"
    );
    // Without referrers, none are copied.
    let yaml = header(&reg)
        + &format!(
            "  - source: ocidir://{}:v2\n    target: {h}/ref/plain:v2\n    type: image\n",
            src.display()
        );
    sync_ok(&tmp, &["once"], &yaml);
    assert_eq!(list(&tmp, &format!("{h}/ref/plain:v2")), "");
}

#[test]
fn templated_creds_from_env() {
    let Some(reg) = Registry::start(Options {
        htpasswd: vec![("syncer".into(), "hunter22".into())],
        ..Default::default()
    }) else {
        return;
    };
    let tmp = TempDir::new();
    let src = testrepo(&tmp);
    let h = &reg.host;
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\ncreds:\n  - registry: {h}\n    tls: disabled\n    user: '{{{{ env \"SYNC_USER\" }}}}'\n    pass: '{{{{ env \"SYNC_PASS\" }}}}'\nsync:\n  - source: ocidir://{}:v1\n    target: {h}/auth/app:v1\n    type: image\n",
        src.display()
    );
    let p = tmp.join("regsync.yaml");
    std::fs::write(&p, &yaml).unwrap();
    // Wrong password: the entry fails and the run exits 1.
    let out = run(regsync(&tmp)
        .args(["once", "-c"])
        .arg(&p)
        .env("SYNC_USER", "syncer")
        .env("SYNC_PASS", "wrong"));
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(regsync(&tmp)
        .args(["once", "-c"])
        .arg(&p)
        .env("SYNC_USER", "syncer")
        .env("SYNC_PASS", "hunter22"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cmd = support::regctl_isolated(&tmp);
    cmd.arg("--host")
        .arg(format!("reg={h},tls=disabled,user=syncer,pass=hunter22"))
        .args(["image", "digest", &format!("{h}/auth/app:v1")]);
    let out = run(&mut cmd);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "sha256:cd81be50da2ccc1ce73632d40e3c1430a6c6ec23de0d71843be0ed3f31ebfbdb"
    );
}
