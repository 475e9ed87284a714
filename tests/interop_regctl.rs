//! Layouts regctl writes are read by skopeo and umoci, and layouts skopeo writes are read by
//! regctl: the cross-check that our OCI layout code agrees with other implementations.
//!
//! Missing tools skip these tests locally and fail them in CI (see `support::tool`).

mod support;

use std::path::Path;
use std::process::Command;

use support::{gen::sha256_hex, ok, regctl, TempDir};

fn skopeo(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    // No dependency on /etc/containers/policy.json being installed.
    c.arg("--insecure-policy");
    c
}

fn ocidir(p: &Path, tag: &str) -> String {
    format!("ocidir://{}:{tag}", p.display())
}

#[test]
fn skopeo_and_umoci_read_what_regctl_writes() {
    let Some(sk) = support::tool("skopeo") else {
        return;
    };
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    let out = tmp.join("out");

    // A multi-platform index with shared layers, copied into a fresh layout.
    let src_digest = ok(regctl().args(["image", "digest", &ocidir(&repo, "v2")]));
    ok(regctl().args(["image", "copy", &ocidir(&repo, "v2"), &ocidir(&out, "v2")]));
    let raw =
        support::run(skopeo(&sk).args(["inspect", "--raw", &format!("oci:{}:v2", out.display())]));
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(
        format!("sha256:{}", sha256_hex(&raw.stdout)),
        src_digest.trim()
    );
    // skopeo verifies every blob digest while copying all platforms out of our layout.
    ok(skopeo(&sk).args([
        "copy",
        "--all",
        &format!("oci:{}:v2", out.display()),
        &format!("dir:{}", tmp.join("dir-v2").display()),
    ]));

    // A single image: umoci checks the layout, the config and unpacks the layer.
    ok(regctl().args([
        "image",
        "copy",
        &ocidir(&repo, "child"),
        &ocidir(&out, "child"),
    ]));
    if let Some(umoci) = support::tool("umoci") {
        let stat =
            ok(Command::new(&umoci).args(["stat", "--image", &format!("{}:child", out.display())]));
        assert!(stat.contains("LAYER"), "{stat}");
        let bundle = tmp.join("bundle");
        ok(Command::new(&umoci).args([
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:child", out.display()),
            &bundle.display().to_string(),
        ]));
        assert!(bundle.join("rootfs").is_dir());
    }
}

#[test]
fn regctl_reads_what_skopeo_writes() {
    let Some(sk) = support::tool("skopeo") else {
        return;
    };
    let tmp = TempDir::new();
    let repo = support::testrepo(&tmp);
    let sko = tmp.join("skopeo-layout");
    ok(skopeo(&sk).args([
        "copy",
        "--all",
        &format!("oci:{}:v1", repo.display()),
        &format!("oci:{}:fromskopeo", sko.display()),
    ]));
    let tags = ok(regctl().args(["tag", "ls", &format!("ocidir://{}", sko.display())]));
    assert_eq!(tags.trim(), "fromskopeo");
    let want = ok(regctl().args(["image", "digest", &ocidir(&repo, "v1")]));
    let got = ok(regctl().args(["image", "digest", &ocidir(&sko, "fromskopeo")]));
    assert_eq!(got, want);
    let label = ok(regctl().args([
        "image",
        "inspect",
        "--platform",
        "linux/arm64",
        "--format",
        "{{ index .Config.Labels \"version\" }}",
        &ocidir(&sko, "fromskopeo"),
    ]));
    assert_eq!(label.trim(), "1");
    // And regctl copies it on, verifying every blob skopeo wrote.
    let again = tmp.join("again");
    ok(regctl().args([
        "image",
        "copy",
        &ocidir(&sko, "fromskopeo"),
        &ocidir(&again, "v1"),
    ]));
    let got = ok(regctl().args(["image", "digest", &ocidir(&again, "v1")]));
    assert_eq!(got, want);
}
