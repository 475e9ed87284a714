//! Self-test of the fake registry: every endpoint and every fault, through a raw HTTP client.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::fakereg::{
    base64, base64_decode, base64url, http, percent_decode, percent_encode, rfc3339, sha256_digest,
    Auth, BearerAuth, Client, FakeRegistry, Fault, Resp, Rule, GHCR_BODY_CAP,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn get(reg: &FakeRegistry, path: &str) -> Resp {
    http(&reg.host(), "GET", path, &[], b"")
}

fn req(reg: &FakeRegistry, method: &str, path: &str, body: &[u8]) -> Resp {
    http(&reg.host(), method, path, &[], body)
}

fn error_code(r: &Resp) -> String {
    r.json()["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A small OCI manifest, optionally with a subject and an artifactType.
fn manifest(subject: Option<&str>, artifact_type: Option<&str>, n: u32) -> Vec<u8> {
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256_digest(b"{}"), "size": 2},
        "layers": [],
        "annotations": {"n": n.to_string()},
    });
    if let Some(s) = subject {
        m["subject"] = json!({"mediaType": OCI_MANIFEST, "digest": s, "size": 1});
    }
    if let Some(a) = artifact_type {
        m["artifactType"] = json!(a);
    }
    m.to_string().into_bytes()
}

/// Starts an upload session; returns its Location.
fn start_upload(reg: &FakeRegistry, repo: &str) -> String {
    let r = req(reg, "POST", &format!("/v2/{repo}/blobs/uploads/"), b"");
    assert_eq!(r.status, 202);
    r.header("location").expect("Location").to_string()
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[test]
fn ping_keepalive_and_recording() {
    let reg = FakeRegistry::start();
    let mut c = Client::connect(&reg.host());
    let r = c.send("GET", "/v2/", &[("Authorization", "Bearer x")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    // A second request on the same connection: keep-alive works.
    let r = c.send("HEAD", "/v2/", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = c.send("GET", "/v2/nope/manifests/latest", &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(error_code(&r), "MANIFEST_UNKNOWN");

    let log = reg.requests();
    assert_eq!(log.len(), 3);
    assert!(log[0].has_auth());
    assert!(!log[1].has_auth());
    assert_eq!(log[1].method, "HEAD");
    assert_eq!(log[2].status, 404);
    assert_eq!(reg.count("GET", "/v2/"), 2);
    assert_eq!(reg.count("", "/v2/nope/"), 1);
    reg.clear_requests();
    assert!(reg.requests().is_empty());
}

#[test]
fn manifests_put_get_head_delete() {
    let reg = FakeRegistry::start();
    let body = manifest(None, None, 1);
    let digest = sha256_digest(&body);
    let r = http(
        &reg.host(),
        "PUT",
        "/v2/a/b/manifests/v1",
        &[("Content-Type", OCI_MANIFEST)],
        &body,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/a/b/manifests/{digest}").as_str())
    );
    assert!(r.header("oci-subject").is_none());

    for reference in ["v1", digest.as_str()] {
        let r = get(&reg, &format!("/v2/a/b/manifests/{reference}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        let r = req(&reg, "HEAD", &format!("/v2/a/b/manifests/{reference}"), b"");
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(
            r.header("content-length"),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    }

    // PUT by a digest that does not match the body.
    let wrong = sha256_digest(b"other");
    let r = http(
        &reg.host(),
        "PUT",
        &format!("/v2/a/b/manifests/{wrong}"),
        &[("Content-Type", OCI_MANIFEST)],
        &body,
    );
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "DIGEST_INVALID");
    // PUT by the right digest: untagged.
    let other = manifest(None, None, 2);
    let od = sha256_digest(&other);
    let r = req(&reg, "PUT", &format!("/v2/a/b/manifests/{od}"), &other);
    assert_eq!(r.status, 201);
    assert_eq!(reg.tags("a/b"), vec!["v1".to_string()]);

    // Tag delete keeps the manifest; digest delete removes it and its tags.
    reg.put_manifest("a/b", "v2", &body, OCI_MANIFEST);
    assert_eq!(req(&reg, "DELETE", "/v2/a/b/manifests/v2", b"").status, 202);
    assert_eq!(get(&reg, "/v2/a/b/manifests/v2").status, 404);
    assert_eq!(get(&reg, "/v2/a/b/manifests/v1").status, 200);
    let r = req(&reg, "DELETE", &format!("/v2/a/b/manifests/{digest}"), b"");
    assert_eq!(r.status, 202);
    assert_eq!(get(&reg, "/v2/a/b/manifests/v1").status, 404);
    assert_eq!(
        req(&reg, "DELETE", &format!("/v2/a/b/manifests/{digest}"), b"").status,
        404
    );
}

#[test]
fn blobs_get_head_range_delete() {
    let reg = FakeRegistry::start();
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let d = reg.put_blob("r", &data);
    let path = format!("/v2/r/blobs/{d}");
    let r = get(&reg, &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    let r = req(&reg, "HEAD", &path, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));

    let r = http(
        &reg.host(),
        "GET",
        &path,
        &[("Range", "bytes=100-199")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[100..200]);
    assert_eq!(r.header("content-range"), Some("bytes 100-199/1000"));
    let r = http(&reg.host(), "GET", &path, &[("Range", "bytes=900-")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[900..]);
    let r = http(&reg.host(), "GET", &path, &[("Range", "bytes=1000-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));

    assert_eq!(
        get(&reg, &format!("/v2/other/blobs/{d}")).status,
        404,
        "blobs are per repository"
    );
    assert_eq!(req(&reg, "DELETE", &path, b"").status, 202);
    assert_eq!(get(&reg, &path).status, 404);
    assert!(reg.blob("r", &d).is_none());
}

#[test]
fn chunked_upload_state_machine() {
    let reg = FakeRegistry::start();
    let data = b"0123456789abcdefghij".to_vec();
    let d = sha256_digest(&data);
    let loc = start_upload(&reg, "up");
    assert!(loc.contains("?_state="), "opaque query in {loc}");
    assert_eq!(reg.upload_count(), 1);

    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[
            ("Content-Range", "0-9"),
            ("Content-Type", "application/octet-stream"),
        ],
        &data[..10],
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-9"));
    let loc2 = r.header("location").expect("Location").to_string();
    assert_ne!(loc2, loc, "Location changes");

    // Out of order: 416 with the true Range.
    let r = http(
        &reg.host(),
        "PATCH",
        &loc2,
        &[("Content-Range", "12-19")],
        &data[12..],
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.header("range"), Some("0-9"));

    // Status.
    let r = get(&reg, &loc2);
    assert_eq!(r.status, 204);
    assert_eq!(r.header("range"), Some("0-9"));
    assert!(r.header("location").is_some());

    // Second chunk as a chunked transfer-encoded request body.
    let mut te = format!("{:x}\r\n", 4).into_bytes();
    te.extend_from_slice(&data[10..14]);
    te.extend_from_slice(b"\r\n6\r\n");
    te.extend_from_slice(&data[14..20]);
    te.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = http(
        &reg.host(),
        "PATCH",
        &loc2,
        &[("Content-Range", "10-19"), ("Transfer-Encoding", "chunked")],
        &te,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-19"));
    let loc3 = r.header("location").expect("Location").to_string();

    // Wrong digest: 400 DIGEST_INVALID with an OCI error body.
    let r = req(&reg, "PUT", &with_digest(&loc3, &sha256_digest(b"x")), b"");
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "DIGEST_INVALID");

    // Start again and finish with the final chunk in the PUT.
    let loc = start_upload(&reg, "up");
    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[("Content-Range", "0-9")],
        &data[..10],
    );
    let loc = r.header("location").expect("Location").to_string();
    let r = req(&reg, "PUT", &with_digest(&loc, &d), &data[10..]);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/up/blobs/{d}").as_str())
    );
    assert_eq!(reg.blob("up", &d), Some(data.clone()));

    // Cancel.
    let loc = start_upload(&reg, "up");
    assert_eq!(req(&reg, "DELETE", &loc, b"").status, 204);
    assert_eq!(get(&reg, &loc).status, 404);
    assert_eq!(reg.upload_count(), 0);
}

#[test]
fn monolithic_and_single_post_uploads() {
    let reg = FakeRegistry::start();
    let data = b"monolithic".to_vec();
    let d = sha256_digest(&data);
    let loc = start_upload(&reg, "m");
    let r = req(&reg, "PUT", &with_digest(&loc, &d), &data);
    assert_eq!(r.status, 201);
    assert_eq!(reg.blob("m", &d), Some(data.clone()));

    let r = req(
        &reg,
        "POST",
        &format!("/v2/m2/blobs/uploads/?digest={d}"),
        &data,
    );
    assert_eq!(r.status, 201);
    assert_eq!(reg.blob("m2", &d), Some(data.clone()));
    let r = req(
        &reg,
        "POST",
        &format!("/v2/m2/blobs/uploads/?digest={}", sha256_digest(b"no")),
        &data,
    );
    assert_eq!(r.status, 400);
    assert_eq!(error_code(&r), "DIGEST_INVALID");
}

#[test]
fn mounts() {
    let reg = FakeRegistry::start();
    let d = reg.put_blob("src", b"layer");
    let r = req(
        &reg,
        "POST",
        &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
        b"",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert!(reg.blob("dst", &d).is_some());

    // Not in `from`: 202 with a fresh session.
    let r = req(
        &reg,
        "POST",
        &format!("/v2/dst2/blobs/uploads/?mount={d}&from=elsewhere"),
        b"",
    );
    assert_eq!(r.status, 202);
    assert!(r.header("location").is_some());
    assert_eq!(reg.upload_count(), 1);

    // Anonymous mount finds the blob in any repository.
    let r = req(
        &reg,
        "POST",
        &format!("/v2/dst3/blobs/uploads/?mount={d}"),
        b"",
    );
    assert_eq!(r.status, 201);

    // MountNever: 202 even though the blob exists.
    reg.add_rule(Rule::always(Fault::MountNever));
    let r = req(
        &reg,
        "POST",
        &format!("/v2/dst4/blobs/uploads/?mount={d}&from=src"),
        b"",
    );
    assert_eq!(r.status, 202);
    assert!(reg.blob("dst4", &d).is_none());
}

#[test]
fn tag_and_catalog_pagination() {
    let reg = FakeRegistry::start();
    let tags = reg.seed_tags("many", 120);
    assert_eq!(tags.len(), 120);
    let r = get(&reg, "/v2/many/manifests/t0119");
    assert_eq!(r.status, 200);

    let r = get(&reg, "/v2/many/tags/list?n=50");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["name"], "many");
    assert_eq!(v["tags"].as_array().expect("tags").len(), 50);
    assert_eq!(
        r.header("link"),
        Some("</v2/many/tags/list?last=t0049&n=50>; rel=\"next\"")
    );
    let r = get(&reg, "/v2/many/tags/list?last=t0099&n=50");
    assert_eq!(r.json()["tags"].as_array().expect("tags").len(), 20);
    assert!(r.header("link").is_none(), "last page has no Link");
    let r = get(&reg, "/v2/many/tags/list?n=0");
    assert_eq!(r.json()["tags"], json!([]));
    let r = get(&reg, "/v2/many/tags/list");
    assert_eq!(r.json()["tags"].as_array().expect("tags").len(), 120);
    assert_eq!(get(&reg, "/v2/none/tags/list").status, 404);

    // Quay: `last` ignored, pages only by the cursor in Link.
    reg.faults().quay_tags = true;
    let r = get(&reg, "/v2/many/tags/list?last=t0099&n=100");
    let v = r.json();
    assert_eq!(v["tags"].as_array().expect("tags").len(), 50);
    assert_eq!(v["tags"][0], "t0000", "last is ignored");
    let mut seen = Vec::new();
    let mut next = Some("/v2/many/tags/list".to_string());
    for _ in 0..10 {
        let Some(url) = next.take() else { break };
        let r = get(&reg, &url);
        for t in r.json()["tags"].as_array().expect("tags") {
            seen.push(t.as_str().expect("tag").to_string());
        }
        next = r.header("link").map(|l| {
            l.trim_start_matches('<')
                .split('>')
                .next()
                .expect("link url")
                .to_string()
        });
    }
    assert_eq!(seen, tags, "following Link yields every tag once");

    reg.put_blob("cat/a", b"1");
    reg.put_blob("cat/b", b"2");
    let r = get(&reg, "/v2/_catalog?n=2");
    assert_eq!(r.json()["repositories"], json!(["cat/a", "cat/b"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/_catalog?last=cat%2Fb&n=2>; rel=\"next\"")
    );
    let r = get(&reg, "/v2/_catalog?n=2&last=cat%2Fb");
    assert_eq!(r.json()["repositories"], json!(["many"]));
    assert!(r.header("link").is_none());
}

#[test]
fn referrers_api_on_and_off() {
    let reg = FakeRegistry::start();
    let subject = reg.put_manifest("ref", "base", &manifest(None, None, 0), OCI_MANIFEST);
    let sig = manifest(Some(&subject), Some("application/x-sig"), 1);
    let r = http(
        &reg.host(),
        "PUT",
        "/v2/ref/manifests/sig",
        &[("Content-Type", OCI_MANIFEST)],
        &sig,
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
    let sbom = manifest(Some(&subject), None, 2);
    assert_eq!(
        req(
            &reg,
            "PUT",
            &format!("/v2/ref/manifests/{}", sha256_digest(&sbom)),
            &sbom
        )
        .status,
        201
    );

    let r = get(&reg, &format!("/v2/ref/referrers/{subject}"));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    assert!(r.header("oci-filters-applied").is_none());
    let v = r.json();
    let list = v["manifests"].as_array().expect("manifests");
    assert_eq!(list.len(), 2);
    let types: Vec<&str> = list
        .iter()
        .map(|d| d["artifactType"].as_str().expect("artifactType"))
        .collect();
    assert!(types.contains(&"application/x-sig"));
    // Without artifactType the config media type stands in.
    assert!(types.contains(&"application/vnd.oci.empty.v1+json"));

    let r = get(
        &reg,
        &format!("/v2/ref/referrers/{subject}?artifactType=application%2Fx-sig"),
    );
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let v = r.json();
    assert_eq!(v["manifests"].as_array().expect("manifests").len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sha256_digest(&sig));
    assert_eq!(v["manifests"][0]["annotations"]["n"], "1");

    reg.faults().referrers = false;
    assert_eq!(
        get(&reg, &format!("/v2/ref/referrers/{subject}")).status,
        404
    );
    let r = req(
        &reg,
        "PUT",
        "/v2/ref/manifests/sig2",
        &manifest(Some(&subject), None, 3),
    );
    assert_eq!(r.status, 201);
    assert!(r.header("oci-subject").is_none());
}

#[test]
fn fault_reset_and_truncate() {
    let reg = FakeRegistry::start();
    let data = vec![7u8; 4000];
    let d = reg.put_blob("f", &data);
    let path = format!("/v2/f/blobs/{d}");
    reg.add_rule(Rule::first(1, Fault::Reset).method("GET").path("/blobs/"));
    let r = get(&reg, &path);
    assert_eq!(r.status, 200);
    assert!(!r.complete);
    assert_eq!(r.body.len(), 2000);
    // First N only: the next GET is whole.
    let r = get(&reg, &path);
    assert!(r.complete);
    assert_eq!(r.body, data);

    reg.add_rule(Rule::first(1, Fault::Truncate).path("/blobs/"));
    let r = get(&reg, &path);
    assert_eq!(r.header("content-length"), Some("4000"));
    assert!(!r.complete);
    assert_eq!(r.body.len(), 3000);
    // A resume with Range works afterwards.
    let r = http(&reg.host(), "GET", &path, &[("Range", "bytes=3000-")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), 1000);
    assert_eq!(reg.faults().rules[1].hits, 1);
}

#[test]
fn fault_status_codes_with_retry_after() {
    let reg = FakeRegistry::start();
    reg.add_rule(
        Rule::first(
            2,
            Fault::Status {
                code: 429,
                retry_after: Some(3),
            },
        )
        .path("/v2/"),
    );
    for _ in 0..2 {
        let r = get(&reg, "/v2/");
        assert_eq!(r.status, 429);
        assert_eq!(r.header("retry-after"), Some("3"));
        assert_eq!(error_code(&r), "TOOMANYREQUESTS");
    }
    assert_eq!(get(&reg, "/v2/").status, 200);

    for code in [500, 502, 503] {
        reg.clear_faults();
        reg.add_rule(
            Rule::always(Fault::Status {
                code,
                retry_after: None,
            })
            .method("HEAD"),
        );
        assert_eq!(req(&reg, "HEAD", "/v2/", b"").status, code);
        assert_eq!(get(&reg, "/v2/").status, 200, "method filter");
    }
    assert_eq!(req(&reg, "HEAD", "/v2/", b"").status, 503, "always");
}

#[test]
fn fault_upload_quirks() {
    let reg = FakeRegistry::start();
    let data = b"abcdefghijklmnopqrst".to_vec();
    let d = sha256_digest(&data);

    // Refused monolithic PUT; the session survives for chunked PATCHes.
    reg.add_rule(Rule::always(Fault::RefuseMonolithic { code: 405 }));
    let loc = start_upload(&reg, "q");
    let r = req(&reg, "PUT", &with_digest(&loc, &d), &data);
    assert_eq!(r.status, 405);
    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[("Content-Range", "0-19")],
        &data,
    );
    assert_eq!(r.status, 202);
    let loc = r.header("location").expect("Location").to_string();

    // Stale Range on status: half of what was received.
    reg.add_rule(Rule::first(1, Fault::StaleRange));
    assert_eq!(get(&reg, &loc).header("range"), Some("0-9"));
    assert_eq!(get(&reg, &loc).header("range"), Some("0-19"));
    let r = req(&reg, "PUT", &with_digest(&loc, &d), b"");
    assert_eq!(r.status, 201, "an empty closing PUT is not monolithic");

    // 416 on a PATCH, nothing stored.
    reg.add_rule(Rule::first(1, Fault::Patch416).method("PATCH"));
    let loc = start_upload(&reg, "q");
    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[("Content-Range", "0-19")],
        &data,
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.header("range"), Some("0-0"));
    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[("Content-Range", "0-19")],
        &data,
    );
    assert_eq!(r.status, 202);
}

#[test]
fn fault_body_cap_and_limits() {
    let reg = FakeRegistry::start();
    reg.faults().body_cap = Some(GHCR_BODY_CAP);
    let loc = start_upload(&reg, "big");
    let big = vec![1u8; GHCR_BODY_CAP + 1];
    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[("Content-Range", &format!("0-{}", big.len() - 1))],
        &big,
    );
    assert_eq!(r.status, 413);
    let r = http(
        &reg.host(),
        "PATCH",
        &loc,
        &[("Content-Range", &format!("0-{}", GHCR_BODY_CAP - 1))],
        &big[..GHCR_BODY_CAP],
    );
    assert_eq!(r.status, 202);

    // Above the absolute limit the body is not even read.
    let r = http(
        &reg.host(),
        "PUT",
        "/v2/big/manifests/x",
        &[("Content-Length", "70000000")],
        b"",
    );
    assert_eq!(r.status, 413);
}

#[test]
fn fault_no_digest_head_disabled_warning() {
    let reg = FakeRegistry::start();
    let d = reg.put_manifest("h", "v", &manifest(None, None, 0), OCI_MANIFEST);
    reg.add_rule(Rule::always(Fault::NoDigest).method("HEAD"));
    let r = req(&reg, "HEAD", "/v2/h/manifests/v", b"");
    assert_eq!(r.status, 200);
    assert!(r.header("docker-content-digest").is_none());
    let r = get(&reg, "/v2/h/manifests/v");
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    reg.add_rule(Rule::always(Fault::HeadDisabled));
    assert_eq!(req(&reg, "HEAD", "/v2/h/manifests/v", b"").status, 405);
    assert_eq!(get(&reg, "/v2/h/manifests/v").status, 200);

    reg.faults().warning = Some("deprecated".into());
    let r = get(&reg, "/v2/h/manifests/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("warning"), Some("299 - \"deprecated\""));
}

#[test]
fn basic_auth() {
    let reg = FakeRegistry::start();
    reg.faults().auth = Auth::Basic {
        user: "u".into(),
        pass: "p".into(),
    };
    let r = get(&reg, "/v2/");
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"fakereg\"")
    );
    let good = format!("Basic {}", base64(b"u:p"));
    let bad = format!("Basic {}", base64(b"u:x"));
    assert_eq!(
        http(&reg.host(), "GET", "/v2/", &[("Authorization", &good)], b"").status,
        200
    );
    assert_eq!(
        http(&reg.host(), "GET", "/v2/", &[("Authorization", &bad)], b"").status,
        401
    );
    assert_eq!(reg.requests().iter().filter(|r| r.has_auth()).count(), 2);
}

fn token(reg: &FakeRegistry, auth: Option<&str>, scope: &str) -> Resp {
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
    http(
        &reg.host(),
        "GET",
        &format!("/token?service=fakereg&scope={scope}"),
        &headers,
        b"",
    )
}

#[test]
fn bearer_auth_with_token_endpoint() {
    let reg = FakeRegistry::start();
    reg.faults().auth = Auth::Bearer(BearerAuth {
        user: "u".into(),
        pass: "p".into(),
        anonymous_pull: true,
        ..BearerAuth::default()
    });
    reg.put_blob("priv", b"x");
    let r = get(&reg, "/v2/priv/tags/list");
    assert_eq!(r.status, 401);
    let chal = r.header("www-authenticate").expect("challenge");
    assert_eq!(
        chal,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"fakereg\",scope=\"repository:priv:pull\"",
            reg.host()
        )
    );
    let r = req(&reg, "POST", "/v2/priv/blobs/uploads/", b"");
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains("scope=\"repository:priv:pull,push\"")));

    let cred = format!("Basic {}", base64(b"u:p"));
    let r = token(&reg, Some(&cred), "repository%3Apriv%3Apull%2Cpush");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["refresh_token"].is_string());
    assert_eq!(v["token"], v["access_token"]);
    let bearer = format!("Bearer {}", v["token"].as_str().expect("token"));
    let r = http(
        &reg.host(),
        "POST",
        "/v2/priv/blobs/uploads/",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 202);
    // The token is scoped: another repository is refused as insufficient.
    let r = http(
        &reg.host(),
        "GET",
        "/v2/other/tags/list",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .is_some_and(|c| c.contains("error=\"insufficient_scope\"")));
    let r = http(
        &reg.host(),
        "GET",
        "/v2/",
        &[("Authorization", "Bearer forged")],
        b"",
    );
    assert_eq!(r.status, 401);

    // Anonymous: pull only.
    let anon = token(&reg, None, "repository%3Apriv%3Apull%2Cpush").json();
    assert!(anon.get("refresh_token").is_none());
    let bearer = format!("Bearer {}", anon["token"].as_str().expect("token"));
    let h = [("Authorization", bearer.as_str())];
    assert_eq!(
        http(&reg.host(), "GET", "/v2/priv/tags/list", &h, b"").status,
        200
    );
    assert_eq!(
        http(&reg.host(), "POST", "/v2/priv/blobs/uploads/", &h, b"").status,
        401
    );

    // Wrong password.
    let bad = format!("Basic {}", base64(b"u:nope"));
    assert_eq!(
        token(&reg, Some(&bad), "repository%3Apriv%3Apull").status,
        401
    );

    // POST refresh grant.
    let rt = v["refresh_token"].as_str().expect("refresh");
    let r = req(
        &reg,
        "POST",
        "/token",
        format!("grant_type=refresh_token&refresh_token={rt}&service=fakereg&scope=repository%3Apriv%3Apull")
            .as_bytes(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(reg.count("POST", "/token"), 1);

    // deny_push: authenticated users get no push.
    if let Auth::Bearer(b) = &mut reg.faults().auth {
        b.deny_push = true;
    }
    let v = token(&reg, Some(&cred), "repository%3Apriv%3Apull%2Cpush").json();
    let bearer = format!("Bearer {}", v["token"].as_str().expect("token"));
    let h = [("Authorization", bearer.as_str())];
    assert_eq!(
        http(&reg.host(), "POST", "/v2/priv/blobs/uploads/", &h, b"").status,
        401
    );
    assert_eq!(
        http(&reg.host(), "GET", "/v2/priv/tags/list", &h, b"").status,
        200
    );
}

#[test]
fn redirected_blob_gets() {
    let reg = FakeRegistry::start();
    let d = reg.put_blob("rd", b"redirected content");
    reg.faults().redirect_blobs = true;
    let r = http(
        &reg.host(),
        "GET",
        &format!("/v2/rd/blobs/{d}"),
        &[("Authorization", "Bearer abc")],
        b"",
    );
    assert_eq!(r.status, 307);
    let loc = r.header("location").expect("Location").to_string();
    let prefix = format!("http://{}", reg.redirect_host());
    assert!(loc.starts_with(&prefix), "{loc}");
    // HEAD is not redirected.
    let r = req(&reg, "HEAD", &format!("/v2/rd/blobs/{d}"), b"");
    assert_eq!(r.status, 200);

    let path = &loc[prefix.len()..];
    let r = http(&reg.redirect_host(), "GET", path, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"redirected content");
    let r = http(
        &reg.redirect_host(),
        "GET",
        path,
        &[("Authorization", "Bearer leaked"), ("Range", "bytes=0-9")],
        b"",
    );
    assert_eq!(r.status, 206);
    let log = reg.redirect_requests();
    assert_eq!(log.len(), 2);
    assert!(!log[0].has_auth());
    assert!(log[1].has_auth());
}

#[test]
fn drop_stops_promptly_with_idle_connections() {
    let reg = FakeRegistry::start();
    let host = reg.host();
    // An idle keep-alive connection must not hold the server up.
    let mut c = Client::connect(&host);
    assert_eq!(c.send("GET", "/v2/", &[], b"").status, 200);
    let t = Instant::now();
    drop(reg);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let refused =
        std::net::TcpStream::connect_timeout(&host.parse().expect("addr"), Duration::from_secs(1))
            .is_err();
    assert!(refused, "listener closed");
}

#[test]
fn encoders() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(base64(b"u:p"), "dTpw");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    for data in [&b""[..], b"a", b"ab", b"abc", b"\xff\x00\x10hello"] {
        assert_eq!(base64_decode(&base64(data)).as_deref(), Some(data));
        assert_eq!(base64_decode(&base64url(data)).as_deref(), Some(data));
    }
    assert_eq!(
        percent_decode(&percent_encode("repository:a/b:pull,push")),
        "repository:a/b:pull,push"
    );
    assert_eq!(percent_decode("a+b%2Fc%zz%"), "a b/c%zz%");
}
