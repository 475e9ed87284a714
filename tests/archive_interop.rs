//! Our tars against skopeo: skopeo reads what `image export` writes (as docker-archive and as
//! oci-archive), and `image import` reads what skopeo writes. Skipped locally without skopeo,
//! required in CI.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{ok, regctl, testrepo, TempDir};

fn loc(p: &Path, tag: &str) -> String {
    format!("ocidir://{}:{tag}", p.display())
}

fn oci(p: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", p.display())
}

fn skopeo() -> Option<impl Fn() -> Command> {
    let bin: PathBuf = support::tool("skopeo")?;
    Some(move || {
        let mut c = Command::new(&bin);
        // No dependency on /etc/containers/policy.json being installed.
        c.arg("--insecure-policy");
        c
    })
}

fn digest(r: &str) -> String {
    ok(regctl().args(["image", "digest", r])).trim().to_string()
}

fn config_digest(r: &str) -> String {
    ok(regctl().args(["manifest", "get", "--format", "{{.Config.Digest}}", r]))
        .trim()
        .to_string()
}

#[test]
fn skopeo_reads_our_export() {
    let Some(skopeo) = skopeo() else {
        return;
    };
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let amd = tmp.join("amd.tar");
    ok(regctl()
        .args(["image", "export", "-p", "linux/amd64", &loc(&repo, "v1")])
        .arg(&amd));
    let want = ok(regctl().args(["image", "digest", "-p", "linux/amd64", &loc(&repo, "v1")]))
        .trim()
        .to_string();
    let want_config = ok(regctl().args([
        "manifest",
        "get",
        "-p",
        "linux/amd64",
        "--format",
        "{{.Config.Digest}}",
        &loc(&repo, "v1"),
    ]))
    .trim()
    .to_string();

    // docker-archive: skopeo converts the manifest, the config stays byte for byte.
    let d1 = tmp.join("from-docker");
    ok(skopeo()
        .arg("copy")
        .arg(format!("docker-archive:{}", amd.display()))
        .arg(oci(&d1, "t")));
    assert_eq!(config_digest(&loc(&d1, "t")), want_config);
    ok(regctl().args(["image", "inspect", &loc(&d1, "t")]));

    // oci-archive: the very same image.
    let d2 = tmp.join("from-oci");
    ok(skopeo()
        .arg("copy")
        .arg(format!("oci-archive:{}", amd.display()))
        .arg(oci(&d2, "t")));
    assert_eq!(digest(&loc(&d2, "t")), want);

    // A multi-platform export, as oci-archive with every platform: same index digest.
    let v1 = tmp.join("v1.tar");
    ok(regctl()
        .args(["image", "export", &loc(&repo, "v1")])
        .arg(&v1));
    let d3 = tmp.join("from-oci-all");
    ok(skopeo()
        .args(["copy", "--all"])
        .arg(format!("oci-archive:{}", v1.display()))
        .arg(oci(&d3, "t")));
    assert_eq!(digest(&loc(&d3, "t")), digest(&loc(&repo, "v1")));
}

#[test]
fn we_import_what_skopeo_writes() {
    let Some(skopeo) = skopeo() else {
        return;
    };
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let src = oci(&repo, "child");
    let want = digest(&loc(&repo, "child"));
    let want_config = config_digest(&loc(&repo, "child"));
    let out = tmp.join("out");

    // docker-archive: docker save format (plain layers, symlinked layer dirs, repositories).
    let d = tmp.join("d.tar");
    ok(skopeo().args(["copy", &src]).arg(format!(
        "docker-archive:{}:example.com/foo/bar:1",
        d.display()
    )));
    ok(regctl().args(["image", "import", &loc(&out, "d")]).arg(&d));
    assert!(digest(&loc(&out, "d")).starts_with("sha256:"));
    assert_eq!(config_digest(&loc(&out, "d")), want_config);
    let inspect = ok(regctl().args(["image", "inspect", &loc(&out, "d")]));
    assert!(inspect.contains("\"architecture\""), "{inspect}");
    // --name selects by RepoTags, in the short and in the full form.
    ok(regctl()
        .args([
            "image",
            "import",
            "--name",
            "example.com/foo/bar:1",
            &loc(&out, "d2"),
        ])
        .arg(&d));
    assert_eq!(digest(&loc(&out, "d2")), digest(&loc(&out, "d")));

    // oci-archive: the image comes back with its digest.
    let o = tmp.join("o.tar");
    ok(skopeo()
        .args(["copy", &src])
        .arg(format!("oci-archive:{}:t", o.display())));
    ok(regctl().args(["image", "import", &loc(&out, "o")]).arg(&o));
    assert_eq!(digest(&loc(&out, "o")), want);
    ok(regctl().args(["image", "inspect", &loc(&out, "o")]));

    // A multi-platform index through oci-archive.
    let all = tmp.join("all.tar");
    ok(skopeo()
        .args(["copy", "--all", &oci(&repo, "v3")])
        .arg(format!("oci-archive:{}:v3", all.display())));
    ok(regctl()
        .args(["image", "import", &loc(&out, "v3")])
        .arg(&all));
    assert_eq!(digest(&loc(&out, "v3")), digest(&loc(&repo, "v3")));
}
