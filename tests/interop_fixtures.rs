//! The committed fixtures are readable by other OCI tools (skopeo, umoci), so they are valid
//! layouts and not just something our own code agrees with.
//!
//! Missing tools skip these tests locally and fail them in CI (see `support::tool`).

mod support;

use std::fs;
use std::path::Path;

use serde_json::Value;
use support::{gen::sha256_hex, ok, TempDir};

/// Digest of a tag in a layout's `index.json`.
fn tag_digest(layout: &Path, tag: &str) -> String {
    let index: Value = serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
        .expect("index json");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .and_then(|e| e["digest"].as_str())
        .unwrap_or_else(|| panic!("tag {tag} not in {}", layout.display()))
        .to_string()
}

fn oci(layout: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", layout.display())
}

#[test]
fn skopeo_reads_testrepo() {
    let Some(skopeo) = support::tool("skopeo") else {
        return;
    };
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    // --insecure-policy: no dependency on /etc/containers/policy.json being installed.
    let skopeo = || {
        let mut c = std::process::Command::new(&skopeo);
        c.arg("--insecure-policy");
        c
    };

    // Raw manifests come back byte for byte.
    let out = support::run(skopeo().args(["inspect", "--raw", &oci(&repo, "v1")]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        format!("sha256:{}", sha256_hex(&out.stdout)),
        tag_digest(&repo, "v1")
    );

    // A single image copies to the dir: transport with its digest intact (skopeo verifies blobs).
    let dir = tmp.join("child");
    ok(skopeo()
        .args(["copy", &oci(&repo, "child")])
        .arg(format!("dir:{}", dir.display())));
    let manifest = fs::read(dir.join("manifest.json")).expect("copied manifest");
    assert_eq!(
        format!("sha256:{}", sha256_hex(&manifest)),
        tag_digest(&repo, "child")
    );

    // A whole multi-platform index copies to another layout unchanged.
    let out_layout = tmp.join("out");
    let dst = format!("oci:{}:v3", out_layout.display());
    ok(skopeo().args(["copy", "--all", &oci(&repo, "v3"), &dst]));
    assert_eq!(tag_digest(&out_layout, "v3"), tag_digest(&repo, "v3"));
}

/// skopeo's OCI transport only resolves tags of OCI media types, so the Docker manifest list is
/// checked through a `dir:` copy assembled from the layout's blobs.
#[test]
fn skopeo_reads_docker_list() {
    let Some(skopeo) = support::tool("skopeo") else {
        return;
    };
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    let blobs = repo.join("blobs/sha256");
    let blob = |d: &str| fs::read(blobs.join(d.trim_start_matches("sha256:"))).expect("blob");
    let list_digest = tag_digest(&repo, "docker");
    let dir = tmp.join("docker-dir");
    fs::create_dir(&dir).expect("mkdir");
    fs::write(dir.join("version"), "Directory Transport Version: 1.1\n").expect("version");
    fs::write(dir.join("manifest.json"), blob(&list_digest)).expect("list");
    let list: Value = serde_json::from_slice(&blob(&list_digest)).expect("list json");
    for m in list["manifests"].as_array().expect("manifests") {
        let md = m["digest"].as_str().expect("digest");
        let hex = md.trim_start_matches("sha256:");
        fs::write(dir.join(format!("{hex}.manifest.json")), blob(md)).expect("manifest");
        let image: Value = serde_json::from_slice(&blob(md)).expect("manifest json");
        let layers = image["layers"].as_array().expect("layers");
        for d in std::iter::once(&image["config"]).chain(layers) {
            let bd = d["digest"].as_str().expect("digest");
            fs::write(dir.join(bd.trim_start_matches("sha256:")), blob(bd)).expect("blob");
        }
    }
    let src = format!("dir:{}", dir.display());
    let out = support::run(std::process::Command::new(&skopeo).args([
        "--insecure-policy",
        "inspect",
        "--raw",
        &src,
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(format!("sha256:{}", sha256_hex(&out.stdout)), list_digest);
    let dst = format!("oci:{}:docker", tmp.join("out").display());
    ok(std::process::Command::new(&skopeo).args([
        "--insecure-policy",
        "copy",
        "--all",
        &src,
        &dst,
    ]));
}

/// umoci 0.4 refuses index tags as ambiguous, so it gets the single-image `child` tag.
#[test]
fn umoci_unpacks_child() {
    let Some(umoci) = support::tool("umoci") else {
        return;
    };
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    let image = format!("{}:child", repo.display());
    let stat = ok(std::process::Command::new(&umoci).args(["stat", "--image", &image]));
    assert!(stat.contains("COPY child.txt"), "umoci stat: {stat}");
    let bundle = tmp.join("bundle");
    ok(std::process::Command::new(&umoci)
        .args(["unpack", "--rootless", "--image", &image])
        .arg(&bundle));
    let content = fs::read(bundle.join("rootfs/child.txt")).expect("unpacked child.txt");
    assert_eq!(content, b"child\n");
    // stat lists the layer by the digest in our manifest.
    let manifest = fs::read(
        repo.join("blobs/sha256")
            .join(tag_digest(&repo, "child").trim_start_matches("sha256:")),
    )
    .expect("child manifest");
    let manifest: Value = serde_json::from_slice(&manifest).expect("manifest json");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest");
    assert!(stat.contains(layer), "umoci stat lacks {layer}: {stat}");
}
