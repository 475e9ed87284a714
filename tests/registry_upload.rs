//! Blob uploads against the fake registry's faults, and tag delete against a real
//! docker-registry: every fault ends with the right content stored or a clear error, and never
//! with a committed blob of the wrong content.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use regclient::config::{Host, Tls};
use regclient::scheme::{BlobExpect, Scheme};
use regclient::{Client, ClientConfig, Digest, ErrorKind, Reference};
use support::fakereg::{FakeRegistry, Fault, Rule, GHCR_BODY_CAP};
use support::{ok, regctl, run_input, TempDir};

const OCTET: &str = "application/octet-stream";

/// Deterministic, incompressible-looking bytes.
fn data(n: usize, seed: u8) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn client(host: &str, blob_chunk: i64, blob_max: i64) -> Client {
    let mut h = Host::new_name(host);
    h.tls = Tls::Disabled;
    h.blob_chunk = blob_chunk;
    h.blob_max = blob_max;
    let mut hosts = BTreeMap::new();
    hosts.insert(host.to_string(), h);
    Client::new(ClientConfig {
        hosts,
        ..Default::default()
    })
}

fn expect(blob: &[u8]) -> BlobExpect {
    BlobExpect {
        digest: Some(Digest::sha256(blob)),
        size: Some(blob.len() as u64),
        media_type: OCTET.to_string(),
    }
}

fn put(c: &Client, host: &str, repo: &str, blob: &[u8]) -> regclient::Result<Digest> {
    let r = Reference::parse(&format!("{host}/{repo}")).unwrap();
    let mut rdr: &[u8] = blob;
    c.registry()
        .blob_put(&r, &expect(blob), &mut rdr)
        .map(|d| d.digest)
}

/// PATCH bodies sent so far.
fn patches(reg: &FakeRegistry) -> Vec<usize> {
    reg.requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.body_len)
        .collect()
}

fn assert_stored(reg: &FakeRegistry, repo: &str, blob: &[u8]) {
    let d = Digest::sha256(blob).to_string();
    let got = reg.blob(repo, &d).expect("blob stored");
    assert!(got == blob, "stored content differs");
    assert_eq!(reg.upload_count(), 0, "no upload session left open");
}

#[test]
fn monolithic_by_default() {
    let reg = FakeRegistry::start();
    let c = client(&reg.host(), 0, 0);
    let blob = data(300_000, 1);
    put(&c, &reg.host(), "repo", &blob).unwrap();
    assert_stored(&reg, "repo", &blob);
    assert_eq!(reg.count("PATCH", ""), 0);
    assert_eq!(reg.count("PUT", ""), 1);
    // The anonymous mount attempt opened the session that the PUT used: no second POST.
    assert_eq!(reg.count("POST", ""), 1);
}

#[test]
fn refused_monolithic_falls_back_to_chunked() {
    let reg = FakeRegistry::start();
    reg.add_rule(Rule::first(1, Fault::RefuseMonolithic { code: 400 }));
    let c = client(&reg.host(), 256 << 10, 0);
    // Small enough to be kept in memory for the fallback (larger streams rely on the caller's
    // retry, see copy_retries_a_large_blob_after_a_body_cap).
    let blob = data((3 << 18) + 123, 2);
    put(&c, &reg.host(), "repo", &blob).unwrap();
    assert_stored(&reg, "repo", &blob);
    assert_eq!(patches(&reg), vec![256 << 10, 256 << 10, 256 << 10, 123]);
    // The refused session was cancelled, a fresh one POSTed.
    assert_eq!(reg.count("DELETE", ""), 1);
    assert_eq!(reg.count("POST", ""), 2);
}

#[test]
fn patch_416_is_recovered() {
    let reg = FakeRegistry::start();
    reg.add_rule(Rule::first(1, Fault::Patch416).method("PATCH"));
    let c = client(&reg.host(), 100_000, 1);
    let blob = data(450_000, 3);
    put(&c, &reg.host(), "repo", &blob).unwrap();
    assert_stored(&reg, "repo", &blob);
    assert_eq!(reg.count("GET", "/v2/repo/blobs/uploads/"), 1);
    assert_eq!(patches(&reg).len(), 6, "5 chunks plus the refused one");
}

#[test]
fn stale_range_is_recovered() {
    let reg = FakeRegistry::start();
    // The third PATCH (Location state 3: POST → 1, PATCH → 2, 3) is refused, and the status
    // that follows reports only half of what was received.
    reg.add_rule(
        Rule::first(1, Fault::Patch416)
            .method("PATCH")
            .path("_state=3"),
    );
    reg.add_rule(Rule::first(1, Fault::StaleRange).method("GET"));
    let c = client(&reg.host(), 100_000, 1);
    let blob = data(500_000, 4);
    put(&c, &reg.host(), "repo", &blob).unwrap();
    assert_stored(&reg, "repo", &blob);
    assert!(reg.count("GET", "/v2/repo/blobs/uploads/") >= 2);
}

#[test]
fn body_cap_413_goes_chunked_within_the_cap() {
    let reg = FakeRegistry::start();
    reg.faults().body_cap = Some(GHCR_BODY_CAP);
    let c = client(&reg.host(), 8 << 20, 0);
    let blob = data(10 << 20, 5);
    // A streamed blob larger than the replay window cannot go back after the refused
    // monolithic PUT: the first attempt fails cleanly (nothing stored), and the retry that a
    // caller makes (the copy engine does it itself) goes chunked within the learned cap.
    let first = put(&c, &reg.host(), "repo", &blob).unwrap_err();
    assert!(first.to_string().contains("413"), "{first}");
    assert!(reg
        .blob("repo", &Digest::sha256(&blob).to_string())
        .is_none());
    reg.clear_requests();
    put(&c, &reg.host(), "repo", &blob).unwrap();
    assert_stored(&reg, "repo", &blob);
    let p = patches(&reg);
    assert!(!p.is_empty());
    assert!(p.iter().all(|&n| n <= GHCR_BODY_CAP), "{p:?}");
    assert_eq!(p.iter().sum::<usize>(), blob.len());
    // The cap is remembered: the next large blob skips the doomed monolithic PUT.
    reg.clear_requests();
    let blob2 = data(6 << 20, 6);
    put(&c, &reg.host(), "repo", &blob2).unwrap();
    assert_stored(&reg, "repo", &blob2);
    assert!(reg
        .requests()
        .iter()
        .all(|r| !(r.method == "PUT" && r.body_len > 0)));
}

#[test]
fn recovery_limit_gives_a_clear_error() {
    let reg = FakeRegistry::start();
    reg.add_rule(Rule::always(Fault::Patch416).method("PATCH"));
    let c = client(&reg.host(), 100_000, 1);
    let blob = data(250_000, 7);
    let e = put(&c, &reg.host(), "repo", &blob).unwrap_err();
    assert!(e.to_string().contains("recoveries"), "{e}");
    assert!(reg
        .blob("repo", &Digest::sha256(&blob).to_string())
        .is_none());
    assert_eq!(reg.upload_count(), 0, "the session was cancelled");
}

#[test]
fn wrong_input_is_never_committed() {
    let reg = FakeRegistry::start();
    for (i, (chunk, max)) in [(0, 0), (50_000, 1)].into_iter().enumerate() {
        // A blob of its own per round: an anonymous mount would find the previous one.
        let blob = data(200_000, 8 + i as u8);
        let mut wrong = blob.clone();
        wrong[1000] ^= 1;
        let c = client(&reg.host(), chunk, max);
        let repo = format!("repo{i}");
        let r = Reference::parse(&format!("{}/{repo}", reg.host())).unwrap();
        let put = |input: &[u8]| {
            let mut rdr: &[u8] = input;
            let res = c.registry().blob_put(&r, &expect(&blob), &mut rdr);
            res.expect_err(&format!("iteration {i}, input of {} bytes", input.len()))
        };
        let e = put(&wrong);
        assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
        let e = put(&blob[..1000]);
        assert_eq!(e.kind(), ErrorKind::ShortRead, "{e}");
        assert!(reg
            .blob(&repo, &Digest::sha256(&blob).to_string())
            .is_none());
        assert!(reg
            .blob(&repo, &Digest::sha256(&wrong).to_string())
            .is_none());
        assert_eq!(reg.upload_count(), 0);
        // Input longer than its size is an error too (the registry may have stored the first
        // `size` bytes, which are the right content for the digest).
        let mut long = blob.clone();
        long.extend_from_slice(b"extra");
        let e = put(&long);
        assert_eq!(e.kind(), ErrorKind::SizeLimit, "{e}");
        assert_eq!(reg.upload_count(), 0);
    }
}

fn oci_image(reg: &FakeRegistry, repo: &str, tag: &str) -> (Vec<u8>, Vec<u8>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let layer = data(70_000, 9);
    let cd = reg.put_blob(repo, &config);
    let ld = reg.put_blob(repo, &layer);
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{cd}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{ld}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    reg.put_manifest(
        repo,
        tag,
        m.as_bytes(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    (config, layer)
}

fn regctl_for(host: &str, home: &TempDir) -> Command {
    let mut c = regctl();
    c.env("HOME", home.path())
        .env_remove("DOCKER_CONFIG")
        .args(["--host", &format!("reg={host},tls=disabled")]);
    c
}

#[test]
fn mount_never_falls_back_to_streaming_and_cancels_the_spare_session() {
    let reg = FakeRegistry::start();
    let home = TempDir::new();
    let (config, layer) = oci_image(&reg, "src", "v1");
    reg.add_rule(Rule::always(Fault::MountNever));
    reg.clear_requests();
    let h = reg.host();
    ok(regctl_for(&h, &home).args([
        "image",
        "copy",
        &format!("{h}/src:v1"),
        &format!("{h}/dst:v1"),
    ]));
    assert_stored(&reg, "dst", &config);
    assert_stored(&reg, "dst", &layer);
    let from_mounts = reg
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("from=src"))
        .count();
    assert_eq!(from_mounts, 2, "one mount attempt per blob");
    // Each declined mount's session was cancelled; the uploads used their own sessions.
    assert_eq!(reg.count("DELETE", "/v2/dst/blobs/uploads/"), 2);
    assert_eq!(reg.count("PUT", "/v2/dst/blobs/uploads/"), 2);
}

#[test]
fn mount_works_without_faults() {
    let reg = FakeRegistry::start();
    let home = TempDir::new();
    let (config, layer) = oci_image(&reg, "src", "v1");
    reg.clear_requests();
    let h = reg.host();
    ok(regctl_for(&h, &home).args([
        "image",
        "copy",
        &format!("{h}/src:v1"),
        &format!("{h}/dst:v1"),
    ]));
    assert_stored(&reg, "dst", &config);
    assert_stored(&reg, "dst", &layer);
    assert_eq!(reg.count("PUT", "/v2/dst/blobs/uploads/"), 0);
    assert_eq!(reg.count("DELETE", ""), 0);
}

#[test]
fn stdin_blob_put_spools_then_one_put() {
    let reg = FakeRegistry::start();
    let home = TempDir::new();
    let h = reg.host();
    let blob = data(1_500_000, 10);
    reg.clear_requests();
    let out = run_input(
        regctl_for(&h, &home).args(["blob", "put", &format!("{h}/repo")]),
        &blob,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = Digest::sha256(&blob).to_string();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), d);
    assert_stored(&reg, "repo", &blob);
    let uploads: Vec<String> = reg
        .requests()
        .iter()
        .filter(|r| r.path.contains("/blobs/uploads"))
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(uploads, vec!["POST", "PUT"]);
    let got = support::run(regctl_for(&h, &home).args(["blob", "get", &format!("{h}/repo"), &d]));
    assert!(got.status.success());
    assert!(got.stdout == blob);
}

#[test]
fn tag_delete_on_docker_registry() {
    let Some(reg) = support::registry::Registry::start(Default::default()) else {
        return;
    };
    let home = TempDir::new();
    let h = reg.host.clone();
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    let src = format!("ocidir://{}:v1", repo.display());
    ok(regctl_for(&h, &home).args(["image", "copy", &src, &format!("{h}/repo:t1")]));
    ok(regctl_for(&h, &home).args(["image", "copy", &src, &format!("{h}/repo:t2")]));
    let before = ok(regctl_for(&h, &home).args(["image", "digest", &format!("{h}/repo:t2")]));
    ok(regctl_for(&h, &home).args(["tag", "rm", &format!("{h}/repo:t1")]));
    let tags = ok(regctl_for(&h, &home).args(["tag", "ls", &format!("{h}/repo")]));
    let tags: Vec<&str> = tags.lines().map(str::trim).collect();
    assert!(!tags.contains(&"t1"), "{tags:?}");
    assert!(tags.contains(&"t2"), "{tags:?}");
    let after = ok(regctl_for(&h, &home).args(["image", "digest", &format!("{h}/repo:t2")]));
    assert_eq!(before.trim(), after.trim());
    // A missing tag is an error.
    let out = support::run(regctl_for(&h, &home).args(["tag", "rm", &format!("{h}/repo:nope")]));
    assert!(!out.status.success());
}

#[test]
fn tag_delete_native_is_one_request() {
    let reg = FakeRegistry::start();
    let home = TempDir::new();
    let h = reg.host();
    oci_image(&reg, "repo", "t1");
    oci_image(&reg, "repo", "t2");
    reg.clear_requests();
    ok(regctl_for(&h, &home).args(["tag", "rm", &format!("{h}/repo:t1")]));
    assert_eq!(reg.tags("repo"), vec!["t2".to_string()]);
    assert_eq!(reg.count("", "/v2/repo/"), 1);
    assert_eq!(reg.count("DELETE", "/v2/repo/manifests/t1"), 1);
}

#[test]
fn tag_delete_refused_says_the_tag_moved() {
    let reg = FakeRegistry::start();
    let home = TempDir::new();
    let h = reg.host();
    oci_image(&reg, "repo", "t1");
    let old = reg.manifest("repo", "t1").unwrap();
    reg.add_rule(
        Rule::always(Fault::Status {
            code: 405,
            retry_after: None,
        })
        .method("DELETE")
        .path("/manifests/"),
    );
    let out = support::run(regctl_for(&h, &home).args(["tag", "rm", &format!("{h}/repo:t1")]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("throw-away"), "{err}");
    // The tag no longer names the old image: it names the labelled placeholder.
    let (body, mt) = reg.manifest("repo", "t1").unwrap();
    assert_ne!(body, old.0);
    assert_eq!(mt, "application/vnd.oci.image.manifest.v1+json");
    let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let cfg = reg
        .blob("repo", m["config"]["digest"].as_str().unwrap())
        .unwrap();
    let cfg: serde_json::Value = serde_json::from_slice(&cfg).unwrap();
    assert_eq!(cfg["config"]["Labels"]["delete-tag"], "t1");
}

#[test]
fn tag_delete_fallback_on_docker_media_types() {
    let reg = FakeRegistry::start();
    let home = TempDir::new();
    let h = reg.host();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let cd = reg.put_blob("repo", config);
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{cd}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let dm = "application/vnd.docker.distribution.manifest.v2+json";
    reg.put_manifest("repo", "t1", m.as_bytes(), dm);
    reg.put_manifest("repo", "t2", m.as_bytes(), dm);
    // Only the by-tag delete is refused.
    reg.add_rule(
        Rule::always(Fault::Status {
            code: 400,
            retry_after: None,
        })
        .method("DELETE")
        .path("/manifests/t1"),
    );
    ok(regctl_for(&h, &home).args(["tag", "rm", &format!("{h}/repo:t1")]));
    assert_eq!(reg.tags("repo"), vec!["t2".to_string()]);
    assert_eq!(reg.manifest("repo", "t2").unwrap().0, m.as_bytes());
    // The placeholder was pushed with Docker media types, then deleted by digest.
    let put = reg
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path == "/v2/repo/manifests/t1")
        .expect("placeholder pushed");
    assert_eq!(put.header("content-type"), Some(dm));
    assert_eq!(reg.count("DELETE", "/v2/repo/manifests/sha256:"), 1);
}

#[test]
fn copy_retries_a_large_blob_after_a_body_cap() {
    // A layout blob larger than the upload's replay window, copied to a registry that caps
    // request bodies: the copy engine re-reads the source once and the retry goes chunked.
    let reg = FakeRegistry::start();
    reg.faults().body_cap = Some(GHCR_BODY_CAP);
    let c = client(&reg.host(), 0, 0);
    let tmp = TempDir::new();
    let layout = Reference::parse(&format!("ocidir://{}/l", tmp.path().display())).unwrap();
    let blob = data(12 << 20, 9);
    let mut rdr: &[u8] = &blob;
    let desc = c
        .scheme(&layout)
        .unwrap()
        .blob_put(&layout, &expect(&blob), &mut rdr)
        .unwrap();
    let tgt = Reference::parse(&format!("{}/copied", reg.host())).unwrap();
    let moved = regclient::copy::blob_copy(
        c.scheme(&layout).unwrap(),
        &layout,
        c.scheme(&tgt).unwrap(),
        &tgt,
        &desc,
        &|_| {},
    )
    .unwrap();
    assert!(moved);
    assert_stored(&reg, "copied", &blob);
    assert!(patches(&reg).iter().all(|&n| n <= GHCR_BODY_CAP));
}

/// A registry asking for large chunks (`OCI-Chunk-Min-Length`) gets them, up to regctl's
/// `blobLimit` when one is configured: the memory held per chunk stays bounded.
#[test]
fn chunk_min_length_is_capped_by_blob_limit() {
    let reg = FakeRegistry::start();
    reg.faults().chunk_min = Some(400_000);
    let blob = data(1_000_000, 9);
    let tmp = TempDir::new();
    let push = |limit: Option<i64>, repo: &str| {
        reg.add_rule(Rule::first(1, Fault::RefuseMonolithic { code: 400 }));
        let mut cfg =
            serde_json::json!({"hosts": {reg.host(): {"tls": "disabled", "blobChunk": 100000}}});
        if let Some(l) = limit {
            cfg["blobLimit"] = l.into();
        }
        support::write_regctl_config(&tmp, &cfg);
        let before = patches(&reg).len();
        let out = run_input(
            support::regctl_isolated(&tmp).args(["blob", "put", &format!("{}/{repo}", reg.host())]),
            &blob,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_stored(&reg, repo, &blob);
        patches(&reg)[before..].to_vec()
    };
    // stdin is spooled, so the refused monolithic PUT can fall back to chunks.
    assert_eq!(push(None, "big"), vec![400_000, 400_000, 200_000]);
    assert_eq!(
        push(Some(300_000), "capped"),
        vec![300_000, 300_000, 300_000, 100_000]
    );
}
