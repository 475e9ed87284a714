//! regctl's read commands against a real `docker-registry` over plain HTTP: tags, manifests,
//! platforms, image config, blobs, referrers (fallback tag), a 500-tag repository, errors, and
//! trace logging that never leaks credentials.
//!
//! Every test runs regctl with `HOME`, `REGCTL_CONFIG` and `DOCKER_CONFIG` inside its own temp dir.

mod support;

use std::fs;
use std::process::Command;

use serde_json::{json, Value};
use support::fakereg::base64;
use support::fakereg::FakeRegistry;
use support::registry::{Options, Registry};
use support::{ok, regctl_isolated, run_text, testrepo, write_regctl_config, TempDir};

/// A registry holding `repo:v2` (with its referrers) copied from the test layout.
struct Fixture {
    tmp: TempDir,
    reg: Registry,
    layout: String,
}

impl Fixture {
    /// `None` when docker-registry is unavailable outside CI.
    fn start() -> Option<Fixture> {
        Fixture::start_with(Options::default(), None)
    }

    fn start_with(opts: Options, creds: Option<(&str, &str)>) -> Option<Fixture> {
        let reg = Registry::start(opts)?;
        let tmp = TempDir::new();
        let layout = testrepo(&tmp).display().to_string();
        let mut host = json!({"tls": "disabled"});
        if let Some((u, p)) = creds {
            host["user"] = json!(u);
            host["pass"] = json!(p);
        }
        write_regctl_config(&tmp, &json!({"hosts": {reg.host.clone(): host}}));
        let fx = Fixture { tmp, reg, layout };
        ok(fx.rc().args([
            "image",
            "copy",
            "--referrers",
            &format!("ocidir://{}:v2", fx.layout),
            &fx.r("repo:v2"),
        ]));
        Some(fx)
    }

    /// regctl with this test's isolated config.
    fn rc(&self) -> Command {
        regctl_isolated(&self.tmp)
    }

    /// `<host>/<rest>`.
    fn r(&self, rest: &str) -> String {
        format!("{}/{rest}", self.reg.host)
    }

    /// `ocidir://<layout copy>:<tag>`.
    fn local(&self, tag: &str) -> String {
        format!("ocidir://{}:{tag}", self.layout)
    }

    fn out(&self, args: &[&str]) -> String {
        ok(self.rc().args(args))
    }
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().filter(|l| !l.is_empty()).collect()
}

#[test]
fn tag_ls_lists_the_copied_tag_and_the_referrers_fallback_tag() {
    let Some(fx) = Fixture::start() else { return };
    let digest = fx.out(&["manifest", "head", &fx.local("v2")]);
    let digest = digest.trim();
    let tags = fx.out(&["tag", "ls", &fx.r("repo")]);
    let tags = lines(&tags);
    assert!(tags.contains(&"v2"), "{tags:?}");
    let fallback = digest.replace(':', "-");
    assert!(
        tags.contains(&fallback.as_str()),
        "{tags:?} lacks {fallback}"
    );
    let mut sorted = tags.clone();
    sorted.sort();
    assert_eq!(tags, sorted, "tag ls output is sorted");
}

#[test]
fn manifest_head_prints_the_digest_with_exactly_one_request() {
    let Some(fx) = Fixture::start() else { return };
    let want = fx.out(&["manifest", "head", &fx.local("v2")]);
    let before = fx.reg.settled_request_count();
    let got = fx.out(&["manifest", "head", &fx.r("repo:v2")]);
    let log = fx.reg.settled_log();
    let after = support::registry::count_requests(&log);
    assert_eq!(got.trim(), want.trim());
    assert!(got.trim().starts_with("sha256:"), "{got}");
    assert_eq!(
        after - before,
        1,
        "manifest head on an open registry must be a single HEAD; log tail:\n{}",
        log.lines()
            .filter(|l| l.contains("\"HEAD /v2") || l.contains("\"GET /v2"))
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let last = log
        .lines()
        .rfind(|l| l.contains(" /v2/"))
        .expect("a request line");
    assert!(last.contains("\"HEAD /v2/repo/manifests/v2 "), "{last}");
}

#[test]
fn manifest_get_pretty_raw_and_body() {
    let Some(fx) = Fixture::start() else { return };
    let head = fx.out(&["manifest", "head", &fx.r("repo:v2")]);
    let head = head.trim();

    let pretty = fx.out(&["manifest", "get", &fx.r("repo:v2")]);
    assert!(pretty.contains("Manifests:"), "{pretty}");
    assert!(pretty.contains(head), "{pretty}");
    assert!(pretty.contains("linux/arm64"), "{pretty}");

    let raw = fx.out(&["manifest", "get", "--format", "raw", &fx.r("repo:v2")]);
    let (headers, body) = raw
        .split_once("\n\n")
        .or_else(|| raw.split_once("\r\n\r\n"))
        .unwrap_or_else(|| panic!("raw output has no blank line between headers and body:\n{raw}"));
    let lower = headers.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/vnd.oci.image.index.v1+json"),
        "{headers}"
    );
    assert!(
        lower.contains(&format!("docker-content-digest: {head}")),
        "{headers}"
    );
    let parsed: Value = serde_json::from_str(body.trim_end()).expect("raw body is the JSON");
    assert_eq!(parsed["schemaVersion"], 2);

    let body =
        support::run(
            fx.rc()
                .args(["manifest", "get", "--format", "body", &fx.r("repo:v2")]),
        );
    assert!(body.status.success());
    let digest = support::run_input(fx.rc().arg("digest"), &body.stdout);
    assert!(digest.status.success());
    assert_eq!(String::from_utf8_lossy(&digest.stdout).trim(), head);
}

#[test]
fn platform_selection_image_digest_and_inspect() {
    let Some(fx) = Fixture::start() else { return };
    let body = fx.out(&["manifest", "get", "--format", "body", &fx.r("repo:v2")]);
    let index: Value = serde_json::from_str(&body).expect("index JSON");
    let arm64 = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["platform"]["architecture"] == "arm64")
        .expect("arm64 entry")["digest"]
        .as_str()
        .expect("digest")
        .to_string();

    let got = fx.out(&[
        "image",
        "digest",
        "--platform",
        "linux/arm64",
        &fx.r("repo:v2"),
    ]);
    assert_eq!(got.trim(), arm64);
    let got = fx.out(&[
        "manifest",
        "get",
        "--platform",
        "linux/arm64",
        "--format",
        "{{.GetDescriptor.Digest}}",
        &fx.r("repo:v2"),
    ]);
    assert_eq!(got.trim(), arm64);
    let pretty = fx.out(&[
        "manifest",
        "get",
        "--platform",
        "linux/arm64",
        &fx.r("repo:v2"),
    ]);
    assert!(pretty.contains("Layers:"), "{pretty}");

    let top = fx.out(&["image", "digest", &fx.r("repo:v2")]);
    let want = fx.out(&["image", "digest", &fx.local("v2")]);
    assert_eq!(top.trim(), want.trim());

    let label = fx.out(&[
        "image",
        "inspect",
        "--platform",
        "linux/amd64",
        "--format",
        "{{ index .Config.Labels \"version\" }}",
        &fx.r("repo:v2"),
    ]);
    assert_eq!(label.trim(), "2");

    let (code, _, err) = run_text(fx.rc().args([
        "manifest",
        "get",
        "--platform",
        "linux/s390x",
        &fx.r("repo:v2"),
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn blob_get_and_head_of_a_layer() {
    let Some(fx) = Fixture::start() else { return };
    let layer = fx.out(&[
        "manifest",
        "get",
        "--platform",
        "linux/amd64",
        "--format",
        "{{(index .Layers 0).Digest}}",
        &fx.r("repo:v2"),
    ]);
    let layer = layer.trim();
    assert!(layer.starts_with("sha256:"), "{layer}");
    let blob = support::run(fx.rc().args(["blob", "get", &fx.r("repo"), layer]));
    assert!(
        blob.status.success(),
        "{}",
        String::from_utf8_lossy(&blob.stderr)
    );
    assert!(!blob.stdout.is_empty());
    let local = support::run(fx.rc().args(["blob", "get", &fx.local("v2"), layer]));
    assert_eq!(
        blob.stdout, local.stdout,
        "registry and layout bytes differ"
    );
    let digest = support::run_input(fx.rc().arg("digest"), &blob.stdout);
    assert_eq!(String::from_utf8_lossy(&digest.stdout).trim(), layer);

    let head = fx.out(&["blob", "head", &fx.r("repo"), layer]);
    assert!(head.contains(layer), "{head}");
    assert!(
        head.contains(&blob.stdout.len().to_string()),
        "blob head shows the size {}: {head}",
        blob.stdout.len()
    );

    let missing = format!("sha256:{}", "0".repeat(64));
    let (code, _, err) = run_text(fx.rc().args(["blob", "get", &fx.r("repo"), &missing]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn artifact_list_and_get_use_the_fallback_tag() {
    let Some(fx) = Fixture::start() else { return };
    let list = fx.out(&["artifact", "list", &fx.r("repo:v2")]);
    assert!(list.contains("Referrers:"), "{list}");
    assert!(list.contains("application/example.sbom"), "{list}");
    assert!(list.contains("application/example.signature"), "{list}");
    let local = fx.out(&[
        "artifact",
        "list",
        "--format",
        "{{len .Descriptors}}",
        &fx.local("v2"),
    ]);
    let remote = fx.out(&[
        "artifact",
        "list",
        "--format",
        "{{len .Descriptors}}",
        &fx.r("repo:v2"),
    ]);
    assert_eq!(remote.trim(), local.trim());
    assert_ne!(remote.trim(), "0");

    let filtered = fx.out(&[
        "artifact",
        "list",
        "--filter-artifact-type",
        "application/example.sbom",
        "--format",
        "{{ (index .Descriptors 0).ArtifactType }}",
        &fx.r("repo:v2"),
    ]);
    assert_eq!(filtered.trim(), "application/example.sbom");

    let eggs = fx.out(&[
        "artifact",
        "get",
        "--subject",
        &fx.r("repo:v2"),
        "--filter-artifact-type",
        "application/example.sbom",
    ]);
    assert_eq!(eggs.trim(), "eggs");

    // The same through the artifact's own digest.
    let digest = fx.out(&[
        "artifact",
        "list",
        "--filter-artifact-type",
        "application/example.signature",
        "--format",
        "{{ (index .Descriptors 0).Digest }}",
        &fx.r("repo:v2"),
    ]);
    let signed = fx.out(&["artifact", "get", &fx.r(&format!("repo@{}", digest.trim()))]);
    assert_eq!(signed.trim(), "signed");

    // Per-platform referrers: the arm64 manifest has its own.
    let arms = fx.out(&[
        "artifact",
        "get",
        "--subject",
        &fx.r("repo:v2"),
        "--platform",
        "linux/arm64",
        "--filter-artifact-type",
        "application/example.arms",
    ]);
    assert_eq!(arms.trim(), "64 arms");
}

/// Adds tags to a repository directly in docker-registry's filesystem storage, all pointing at
/// `digest` (which must already be in the repository).
fn add_tags_on_disk(reg: &Registry, repo: &str, digest: &str, tags: &[String]) {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let base = reg
        .data_dir()
        .join("docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/tags");
    assert!(base.is_dir(), "{} missing", base.display());
    for t in tags {
        let dir = base.join(t);
        fs::create_dir_all(dir.join("current")).expect("tag dir");
        fs::write(dir.join("current/link"), digest).expect("current link");
        let idx = dir.join("index/sha256").join(hex);
        fs::create_dir_all(&idx).expect("tag index dir");
        fs::write(idx.join("link"), digest).expect("index link");
    }
}

#[test]
fn a_500_tag_repository_is_listed_completely_and_filters_apply() {
    let Some(fx) = Fixture::start() else { return };
    // b1: a plain multi-platform index, nothing with a subject (that would add a fallback tag).
    ok(fx
        .rc()
        .args(["image", "copy", &fx.local("b1"), &fx.r("many:t0000")]));
    let digest = fx.out(&["manifest", "head", &fx.r("many:t0000")]);
    let tags: Vec<String> = (1..500).map(|i| format!("t{i:04}")).collect();
    add_tags_on_disk(&fx.reg, "many", digest.trim(), &tags);

    let all = fx.out(&["tag", "ls", &fx.r("many")]);
    let all = lines(&all);
    let want: Vec<String> = (0..500).map(|i| format!("t{i:04}")).collect();
    assert_eq!(all.len(), 500, "tag ls returned {} lines", all.len());
    assert_eq!(all, want);

    // A tag added on disk resolves like a pushed one.
    let d = fx.out(&["manifest", "head", &fx.r("many:t0499")]);
    assert_eq!(d.trim(), digest.trim());

    let inc = fx.out(&["tag", "ls", "--include", "t01[0-9]{2}", &fx.r("many")]);
    let inc = lines(&inc);
    assert_eq!(inc.len(), 100, "{inc:?}");
    assert_eq!(inc.first(), Some(&"t0100"));
    assert_eq!(inc.last(), Some(&"t0199"));

    // --include is anchored: "t01" alone matches nothing.
    let anchored = fx.out(&["tag", "ls", "--include", "t01", &fx.r("many")]);
    assert!(lines(&anchored).is_empty(), "{anchored}");

    let exc = fx.out(&["tag", "ls", "--exclude", "t0[0-3].*", &fx.r("many")]);
    let exc = lines(&exc);
    assert_eq!(exc.len(), 100, "{exc:?}");
    assert_eq!(exc.first(), Some(&"t0400"));

    let both = fx.out(&[
        "tag",
        "ls",
        "--include",
        "t04.*",
        "--exclude",
        "t04[5-9].",
        &fx.r("many"),
    ]);
    assert_eq!(lines(&both).len(), 50, "{both}");

    // docker-registry 2.8 ignores `n` and `last` and answers in storage order, so all `--limit`
    // can promise here is that many real tags, printed sorted.
    let limited = fx.out(&["tag", "ls", "--limit", "10", &fx.r("many")]);
    let limited = lines(&limited);
    assert_eq!(limited.len(), 10, "{limited:?}");
    assert!(
        limited.iter().all(|t| want.iter().any(|w| w == t)),
        "{limited:?}"
    );
    assert!(limited.windows(2).all(|w| w[0] < w[1]), "{limited:?}");
}

/// `--limit` and `--last` against a registry that implements `n`/`last` paging (the fake one):
/// 500 tags, pages followed through `Link`.
#[test]
fn limit_and_last_on_a_paging_registry() {
    let reg = FakeRegistry::start();
    let want = reg.seed_tags("many", 500);
    let tmp = TempDir::new();
    write_regctl_config(&tmp, &json!({"hosts": {reg.host(): {"tls": "disabled"}}}));
    let repo = format!("{}/many", reg.host());
    let all = ok(regctl_isolated(&tmp).args(["tag", "ls", &repo]));
    assert_eq!(
        lines(&all),
        want.iter().map(String::as_str).collect::<Vec<_>>()
    );

    let limited = ok(regctl_isolated(&tmp).args(["tag", "ls", "--limit", "10", &repo]));
    assert_eq!(
        lines(&limited),
        want[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let tail =
        ok(regctl_isolated(&tmp).args(["tag", "ls", "--last", "t0489", "--limit", "100", &repo]));
    assert_eq!(
        lines(&tail),
        want[490..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let inc = ok(regctl_isolated(&tmp).args(["tag", "ls", "--include", "t03.*", &repo]));
    assert_eq!(lines(&inc).len(), 100, "{inc}");
}

#[test]
fn missing_tag_and_repository_fail_with_not_found() {
    let Some(fx) = Fixture::start() else { return };
    for args in [
        vec!["manifest", "get"],
        vec!["manifest", "head"],
        vec!["image", "digest"],
        vec!["image", "inspect"],
    ] {
        let target = fx.r("repo:no-such-tag");
        let (code, out, err) = run_text(fx.rc().args(&args).arg(&target));
        assert_eq!(code, 1, "{args:?}: stdout {out} stderr {err}");
        assert!(
            err.to_ascii_lowercase().contains("not found"),
            "{args:?}: {err}"
        );
        assert!(out.trim().is_empty(), "{args:?}: {out}");
    }
    let (code, _, err) = run_text(fx.rc().args(["tag", "ls", &fx.r("no-such-repo")]));
    assert_eq!(code, 1, "{err}");
    assert!(err.to_ascii_lowercase().contains("not found"), "{err}");
}

#[test]
fn trace_logs_requests_but_never_credentials() {
    let (user, pass) = ("tracer", "s3cret-Pa55word");
    let opts = Options {
        htpasswd: vec![(user.to_string(), pass.to_string())],
        ..Options::default()
    };
    let Some(fx) = Fixture::start_with(opts, Some((user, pass))) else {
        return;
    };
    let b64 = base64(format!("{user}:{pass}").as_bytes());
    for args in [
        vec!["manifest", "head"],
        vec!["manifest", "get", "--platform", "linux/amd64"],
    ] {
        let (code, out, err) = run_text(
            fx.rc()
                .args(["-v", "trace"])
                .args(&args)
                .arg(fx.r("repo:v2")),
        );
        assert_eq!(code, 0, "{args:?}: {err}");
        assert!(
            err.contains(&format!("http://{}/v2/repo/manifests/v2", fx.reg.host)),
            "trace lacks the request URL: {err}"
        );
        assert!(err.contains("HEAD") || err.contains("GET"), "{err}");
        assert!(err.contains("status=200"), "{err}");
        for (name, text) in [("stdout", &out), ("stderr", &err)] {
            assert!(!text.contains(pass), "{name} leaks the password: {text}");
            assert!(
                !text.contains(&b64),
                "{name} leaks Basic credentials: {text}"
            );
        }
    }
    // The unauthenticated first try and the authenticated retry are both logged.
    let (_, _, err) = run_text(fx.rc().args(["-v", "trace", "tag", "ls"]).arg(fx.r("repo")));
    assert!(err.contains("status=401"), "{err}");
    assert!(!err.contains(pass) && !err.contains(&b64), "{err}");
}

#[test]
fn repo_ls_lists_the_catalog() {
    let Some(fx) = Fixture::start() else { return };
    ok(fx
        .rc()
        .args(["image", "copy", &fx.local("b1"), &fx.r("other/base:b1")]));
    let repos = fx.out(&["repo", "ls", &fx.reg.host]);
    assert_eq!(lines(&repos), vec!["other/base", "repo"]);
    let limited = fx.out(&["repo", "ls", "--limit", "1", &fx.reg.host]);
    assert_eq!(lines(&limited), vec!["other/base"]);
}

#[test]
fn artifact_tree_shows_referrers() {
    let Some(fx) = Fixture::start() else { return };
    let tree = fx.out(&["artifact", "tree", &fx.r("repo:v2")]);
    assert!(tree.contains("Referrers"), "{tree}");
    assert!(tree.contains("application/example.sbom"), "{tree}");
    assert!(tree.contains("application/example.arms"), "{tree}");
}

#[test]
fn image_get_file_from_the_registry() {
    let Some(fx) = Fixture::start() else { return };
    let args = |r: String| {
        vec![
            "image".to_string(),
            "get-file".to_string(),
            "--platform".to_string(),
            "linux/amd64".to_string(),
            r,
            "base.txt".to_string(),
        ]
    };
    let base = ok(fx.rc().args(args(fx.r("repo:v2"))));
    let want = ok(fx.rc().args(args(fx.local("v2"))));
    assert_eq!(base, want);
    assert!(!base.trim().is_empty());
}

#[test]
fn image_export_from_the_registry() {
    let Some(fx) = Fixture::start() else { return };
    let tar_path = fx.tmp.join("v2.tar");
    ok(fx.rc().args([
        "image",
        "export",
        "--platform",
        "linux/amd64",
        &fx.r("repo:v2"),
        &tar_path.display().to_string(),
    ]));
    let mut archive = tar::Archive::new(fs::File::open(&tar_path).expect("open export"));
    let names: Vec<String> = archive
        .entries()
        .expect("tar entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    for want in ["index.json", "oci-layout", "manifest.json"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("blobs/sha256/")));
}

#[test]
fn host_settings_path_prefix_and_hostname() {
    let Some(fx) = Fixture::start() else { return };
    ok(fx
        .rc()
        .args(["image", "copy", &fx.local("v2"), &fx.r("mirror/ns/repo:v2")]));
    // pathPrefix: `<host>/repo` is served from `/v2/mirror/ns/repo`.
    write_regctl_config(
        &fx.tmp,
        &json!({"hosts": {fx.reg.host.clone(): {"tls": "disabled", "pathPrefix": "/mirror/ns/"}}}),
    );
    let tags = fx.out(&["tag", "ls", &fx.r("repo")]);
    assert_eq!(lines(&tags), vec!["v2"]);
    let log = fx.reg.settled_log();
    assert!(
        log.contains("\"GET /v2/mirror/ns/repo/tags/list"),
        "pathPrefix not applied"
    );
    let digest = fx.out(&["image", "digest", &fx.r("repo:v2")]);
    let want = fx.out(&["image", "digest", &fx.local("v2")]);
    assert_eq!(digest.trim(), want.trim());

    // hostname: a name that only exists in the config, connecting to the registry.
    let alias = "registry.regclient-test.invalid:5000";
    write_regctl_config(
        &fx.tmp,
        &json!({"hosts": {alias: {"tls": "disabled", "hostname": fx.reg.host.clone()}}}),
    );
    let digest = fx.out(&["image", "digest", &format!("{alias}/repo:v2")]);
    assert_eq!(digest.trim(), want.trim());
    let pretty = fx.out(&["manifest", "get", &format!("{alias}/repo:v2")]);
    assert!(
        pretty.contains(&format!("{alias}/repo")),
        "refs keep the configured name: {pretty}"
    );
}
