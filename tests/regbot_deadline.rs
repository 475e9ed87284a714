//! A script's `timeout` also stops an `image.copy` that is still transferring: the project's
//! fake registry serves the layer slowly (about 1.3 MB/s for 8 MiB), the script has one
//! second, and the target layout must end up without the tag.

mod support;

use support::fakereg::{FakeRegistry, Fault, Rule};
use support::{layout_tags, regbot, run_text, TempDir};

/// A registry whose `src:v1` has one 8 MiB layer served slowly (about 6 s); returns the
/// layer's digest.
fn slow_image(reg: &FakeRegistry) -> String {
    let layer: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let layer_digest = reg.put_blob("src", &layer);
    let config = reg.put_blob("src", b"{}");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    })
    .to_string();
    reg.put_manifest(
        "src",
        "v1",
        manifest.as_bytes(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    reg.add_rule(Rule::always(Fault::Slow).method("GET").path("/blobs/"));
    layer_digest
}

/// Runs `script` (one line of Lua, `{host}` and `{out}` filled in) with a one second timeout
/// and checks the run failed on it; returns regbot's log.
fn run_with_timeout(reg: &FakeRegistry, tmp: &TempDir, script: &str) -> String {
    let out = tmp.join("out");
    let script = script
        .replace("{host}", &reg.host())
        .replace("{out}", &out.display().to_string());
    let yaml = format!(
        "defaults:\n  skipDockerConfig: true\ncreds:\n  - registry: {host}\n    tls: disabled\nscripts:\n  - name: slow\n    timeout: 1s\n    script: |\n      {script}\n",
        host = reg.host(),
    );
    let cfg = tmp.join("regbot.yaml");
    std::fs::write(&cfg, yaml).unwrap();
    let (code, _, err) = run_text(regbot(tmp).arg("once").arg("-c").arg(&cfg));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("script=slow "), "{err}");
    assert!(err.contains("timeout after 1s"), "{err}");
    err
}

#[test]
fn export_tar_stops_at_the_script_deadline_without_leaving_a_tar() {
    let reg = FakeRegistry::start();
    slow_image(&reg);
    let tmp = TempDir::new();
    run_with_timeout(
        &reg,
        &tmp,
        r#"image.exportTar("{host}/src:v1", "{out}.tar")"#,
    );
    // Had the export run to its end (about 6 s) the tar would be there: it was stopped inside.
    assert!(!tmp.join("out.tar").exists());
}

#[test]
fn blob_put_stops_at_the_script_deadline() {
    let reg = FakeRegistry::start();
    let layer = slow_image(&reg);
    let tmp = TempDir::new();
    run_with_timeout(
        &reg,
        &tmp,
        &format!(
            r#"blob.put("ocidir://{{out}}", blob.get("{{host}}/src", "{layer}")) log("put finished")"#
        ),
    );
    // A finished put leaves the blob in the layout.
    let hex = layer.trim_start_matches("sha256:");
    assert!(!tmp.join("out/blobs/sha256").join(hex).exists());
}

#[test]
fn reading_a_blob_stops_at_the_script_deadline() {
    let reg = FakeRegistry::start();
    let layer = slow_image(&reg);
    let tmp = TempDir::new();
    // Without the deadline the read ends after about 6 s and the script succeeds.
    run_with_timeout(
        &reg,
        &tmp,
        &format!(r#"local s = tostring(blob.get("{{host}}/src", "{layer}"))"#),
    );
}

#[test]
fn copy_stops_at_the_script_deadline_without_tagging() {
    let reg = FakeRegistry::start();
    slow_image(&reg);
    let tmp = TempDir::new();
    let err = run_with_timeout(
        &reg,
        &tmp,
        r#"image.copy("{host}/src:v1", "ocidir://{out}:v1") log("copy finished")"#,
    );
    assert!(!err.contains("copy finished"), "{err}");
    // Had the copy run to its end (about 6 s) the tag would be there: it was stopped inside.
    let out = tmp.join("out");
    assert!(layout_tags(&out).is_empty(), "{:?}", layout_tags(&out));
}
