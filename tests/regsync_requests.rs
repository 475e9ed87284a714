//! What a regsync pass costs at the target when many tags share one multi-platform image:
//! after the first tag, one HEAD and one PUT per tag. The children and layers shared by the
//! tags are checked once per run, not once per tag (the copy engine's run-wide `Seen`), and the
//! target tag is HEADed once, not again by the copy; the source tag is read with one GET.

mod support;

use support::fakereg::FakeRegistry;
use support::{ok, regctl_isolated, regsync, testrepo, write_regctl_config, TempDir};

#[test]
fn shared_children_are_checked_once_per_run() {
    let a = FakeRegistry::start();
    let b = FakeRegistry::start();
    let tmp = TempDir::new();
    let layout = testrepo(&tmp);
    write_regctl_config(
        &tmp,
        &serde_json::json!({"hosts": {a.host(): {"tls": "disabled"}, b.host(): {"tls": "disabled"}}}),
    );
    let src = format!("{}/bench", a.host());
    ok(regctl_isolated(&tmp).args([
        "image",
        "copy",
        &format!("ocidir://{}:v2", layout.display()),
        &format!("{src}:v2"),
    ]));
    const TAGS: usize = 6;
    for i in 1..TAGS {
        ok(regctl_isolated(&tmp).args([
            "image",
            "copy",
            &format!("{src}:v2"),
            &format!("{src}:t{i}"),
        ]));
    }
    let cfg = tmp.join("regsync.yaml");
    std::fs::write(
        &cfg,
        format!(
            "defaults:\n  skipDockerConfig: true\ncreds:\n  - registry: {a}\n    tls: disabled\n  - registry: {b}\n    tls: disabled\nsync:\n  - source: {src}\n    target: {b}/mirror\n    type: repository\n    tags:\n      allow: [\"v2\", \"t.*\"]\n",
            a = a.host(),
            b = b.host(),
        ),
    )
    .unwrap();
    a.clear_requests();
    b.clear_requests();
    ok(regsync(&tmp).args(["once", "-c"]).arg(&cfg));
    // Source side: with nothing at the target, one GET per tag serves both the comparison and
    // the copy (no HEAD first).
    let src_reqs = a.requests();
    for t in (1..TAGS).map(|i| format!("t{i}")).chain(["v2".to_string()]) {
        let n = |m: &str| {
            src_reqs
                .iter()
                .filter(|r| r.method == m && r.path.ends_with(&format!("/manifests/{t}")))
                .count()
        };
        assert_eq!((n("HEAD"), n("GET")), (0, 1), "source requests for {t}");
    }
    let reqs = b.requests();
    let count = |method: &str, what: &str| {
        reqs.iter()
            .filter(|r| r.method == method && r.path.contains(what))
            .count()
    };
    // v2 is an index of three platform images; every tag points at it.
    let tag_heads = (1..TAGS)
        .map(|i| format!("/manifests/t{i}"))
        .chain(["/manifests/v2".to_string()])
        .map(|t| count("HEAD", &t))
        .collect::<Vec<_>>();
    assert_eq!(
        tag_heads,
        vec![1; TAGS],
        "one HEAD per target tag: {reqs:#?}"
    );
    let child_heads = count("HEAD", "/manifests/sha256:");
    assert!(
        child_heads <= 3,
        "{child_heads} HEADs of child manifests for {TAGS} tags of one index"
    );
    assert_eq!(count("PUT", "/manifests/t"), TAGS - 1);
    let blob_heads = count("HEAD", "/blobs/");
    // Each blob of the image is checked at most once in the whole run.
    let mut blobs: Vec<&str> = reqs
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.contains("/blobs/"))
        .map(|r| r.path.as_str())
        .collect();
    blobs.sort();
    blobs.dedup();
    assert_eq!(blob_heads, blobs.len(), "a blob HEADed twice: {reqs:#?}");
    // Every tag arrived with the source's digest.
    let want = ok(regctl_isolated(&tmp).args(["image", "digest", &format!("{src}:v2")]));
    for t in ["v2", "t1", "t5"] {
        let got = ok(regctl_isolated(&tmp).args([
            "image",
            "digest",
            &format!("{}/mirror:{t}", b.host()),
        ]));
        assert_eq!(got, want, "{t}");
    }
}
