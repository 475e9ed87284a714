//! `image export` / `image import`: tar layout, determinism, and round trips through layouts
//! and a real registry.

mod support;

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::Value;
use support::{ok, regctl, run_text, testrepo, TempDir};

fn loc(p: &Path, tag: &str) -> String {
    format!("ocidir://{}:{tag}", p.display())
}

/// Entries of a tar: (path, type, mode, mtime, uid, gid, data).
/// (path, type, mode, mtime, uid, gid, data).
type Ent = (String, tar::EntryType, u32, u64, u64, u64, Vec<u8>);

fn entries(data: &[u8]) -> Vec<Ent> {
    let mut ar = tar::Archive::new(data);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            (
                String::from_utf8(e.path_bytes().to_vec()).unwrap(),
                h.entry_type(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                buf,
            )
        })
        .collect()
}

fn file<'a>(ents: &'a [Ent], name: &str) -> Option<&'a [u8]> {
    ents.iter().find(|e| e.0 == name).map(|e| e.6.as_slice())
}

fn digest(r: &str) -> String {
    ok(regctl().args(["image", "digest", r])).trim().to_string()
}

#[test]
fn export_is_a_deterministic_oci_layout() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let a = tmp.join("a.tar");
    let b = tmp.join("b.tar");
    ok(regctl()
        .args(["image", "export", &loc(&repo, "v1")])
        .arg(&a));
    ok(regctl()
        .args(["image", "export", &loc(&repo, "v1")])
        .arg(&b));
    let bytes = fs::read(&a).unwrap();
    assert_eq!(bytes, fs::read(&b).unwrap(), "same image, same bytes");
    // Stdout gives the same bytes.
    let out = support::run(regctl().args(["image", "export", &loc(&repo, "v1")]));
    assert!(out.status.success());
    assert_eq!(out.stdout, bytes);

    let ents = entries(&bytes);
    let names: Vec<&str> = ents.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries in sorted order");
    assert_eq!(&names[..2], &["blobs/", "blobs/sha256/"]);
    for e in &ents {
        assert_eq!((e.3, e.4, e.5), (0, 0, 0), "{}: mtime/uid/gid", e.0);
        let want = if e.1 == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        };
        assert_eq!(e.2, want, "{} mode", e.0);
        assert!(
            matches!(e.1, tar::EntryType::Directory | tar::EntryType::Regular),
            "{}: no PAX or other headers",
            e.0
        );
    }
    // An index is exported: no manifest.json (docker load takes single images).
    assert!(file(&ents, "manifest.json").is_none());
    let layout: Value = serde_json::from_slice(file(&ents, "oci-layout").unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let index: Value = serde_json::from_slice(file(&ents, "index.json").unwrap()).unwrap();
    let descs = index["manifests"].as_array().unwrap();
    assert_eq!(descs.len(), 1);
    let top = &descs[0];
    assert_eq!(top["digest"], digest(&loc(&repo, "v1")).as_str());
    let name = top["annotations"]["io.containerd.image.name"]
        .as_str()
        .unwrap();
    assert!(
        name.starts_with("localhost/") && name.ends_with("/testrepo:v1"),
        "{name}"
    );
    assert_eq!(
        top["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    // Every blob is stored under its digest.
    for e in ents.iter().filter(|e| e.1 == tar::EntryType::Regular) {
        if let Some(hex) = e.0.strip_prefix("blobs/sha256/") {
            assert_eq!(support::gen::sha256_hex(&e.6), hex);
        }
    }
    // 1 index + 4 platform manifests + their configs and layers.
    let blobs = ents
        .iter()
        .filter(|e| e.0.starts_with("blobs/sha256/") && e.0.len() > 14)
        .count();
    assert!(blobs >= 9, "{blobs} blobs");
}

#[test]
fn multi_platform_round_trip_keeps_the_digest() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let want = digest(&loc(&repo, "v1"));
    for compress in [false, true] {
        let t = tmp.join(format!("v1-{compress}.tar"));
        let mut cmd = regctl();
        cmd.args(["image", "export", &loc(&repo, "v1")]).arg(&t);
        if compress {
            cmd.arg("--compress");
        }
        ok(&mut cmd);
        let head = fs::read(&t).unwrap()[..3].to_vec();
        assert_eq!(head == [0x1f, 0x8b, 0x08], compress);
        let out = tmp.join(format!("out-{compress}"));
        ok(regctl().args(["image", "import", &loc(&out, "x")]).arg(&t));
        assert_eq!(digest(&loc(&out, "x")), want);
        // Every platform came along.
        for p in ["linux/amd64", "linux/arm64"] {
            ok(regctl().args(["image", "inspect", "-p", p, &loc(&out, "x")]));
        }
        // Importing again changes nothing.
        ok(regctl().args(["image", "import", &loc(&out, "x")]).arg(&t));
        assert_eq!(digest(&loc(&out, "x")), want);
    }
}

#[test]
fn platform_export_is_a_docker_load_tar() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let t = tmp.join("amd.tar");
    ok(regctl()
        .args([
            "image",
            "export",
            "-p",
            "linux/amd64",
            "--name",
            "registry.example/app/x:2",
        ])
        .arg(loc(&repo, "v1"))
        .arg(&t));
    let want = ok(regctl().args(["image", "digest", "-p", "linux/amd64", &loc(&repo, "v1")]))
        .trim()
        .to_string();
    let bytes = fs::read(&t).unwrap();
    let ents = entries(&bytes);
    let m: Value = serde_json::from_slice(file(&ents, "manifest.json").unwrap()).unwrap();
    let m = &m.as_array().unwrap()[0];
    assert_eq!(
        m["RepoTags"],
        serde_json::json!(["registry.example/app/x:2"])
    );
    let manifest: Value =
        serde_json::from_slice(file(&ents, &format!("blobs/sha256/{}", &want[7..])).unwrap())
            .unwrap();
    assert_eq!(
        m["Config"],
        format!(
            "blobs/sha256/{}",
            &manifest["config"]["digest"].as_str().unwrap()[7..]
        )
    );
    let layers: Vec<String> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("blobs/sha256/{}", &l["digest"].as_str().unwrap()[7..]))
        .collect();
    assert_eq!(m["Layers"], serde_json::json!(layers));
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(m["LayerSources"][l["digest"].as_str().unwrap()], *l);
    }
    for f in std::iter::once(m["Config"].as_str().unwrap()).chain(layers.iter().map(String::as_str))
    {
        assert!(file(&ents, f).is_some(), "{f} in the tar");
    }
    let index: Value = serde_json::from_slice(file(&ents, "index.json").unwrap()).unwrap();
    let top = &index["manifests"][0];
    assert_eq!(top["digest"], want.as_str());
    assert_eq!(
        top["annotations"]["io.containerd.image.name"],
        "registry.example/app/x:2"
    );
    assert_eq!(top["annotations"]["org.opencontainers.image.ref.name"], "2");

    // Import: a single image with the platform's digest.
    let out = tmp.join("out");
    ok(regctl()
        .args(["image", "import", &loc(&out, "amd")])
        .arg(&t));
    assert_eq!(digest(&loc(&out, "amd")), want);
    let mt = ok(regctl().args([
        "manifest",
        "get",
        "--format",
        "{{.MediaType}}",
        &loc(&out, "amd"),
    ]));
    assert_eq!(mt.trim(), "application/vnd.oci.image.manifest.v1+json");
    ok(regctl().args(["image", "inspect", &loc(&out, "amd")]));
}

/// Rewrites a tar keeping only the entries `keep` accepts, renamed by `rename`.
fn retar(src: &[u8], keep: impl Fn(&str) -> bool, rename: impl Fn(&str) -> String) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries(src) {
        if !keep(&e.0) || e.1 != tar::EntryType::Regular {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_size(e.6.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, rename(&e.0), e.6.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn docker_part_of_an_export_imports_with_the_same_blobs() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let t = tmp.join("amd.tar");
    ok(regctl()
        .args(["image", "export", "-p", "linux/amd64", &loc(&repo, "v1")])
        .arg(&t));
    // Without the OCI part, with ./ prefixes: the docker fallback reads manifest.json.
    let docker = retar(
        &fs::read(&t).unwrap(),
        |n| n != "oci-layout" && n != "index.json",
        |n| format!("./{n}"),
    );
    let d = tmp.join("docker.tar");
    fs::write(&d, &docker).unwrap();
    let out = tmp.join("out");
    ok(regctl().args(["image", "import", &loc(&out, "d")]).arg(&d));
    let src = ok(regctl().args([
        "manifest",
        "get",
        "-p",
        "linux/amd64",
        "--format",
        "{{.Config.Digest}} {{range .Layers}}{{.Digest}} {{end}}",
        &loc(&repo, "v1"),
    ]));
    let got = ok(regctl().args([
        "manifest", "get", "--format",
        "{{.MediaType}} {{.Config.MediaType}} {{.Config.Digest}} {{range .Layers}}{{.Digest}} {{.MediaType}} {{end}}",
        &loc(&out, "d"),
    ]));
    let src: Vec<&str> = src.split_whitespace().collect();
    assert!(got.starts_with(
        "application/vnd.docker.distribution.manifest.v2+json application/vnd.docker.container.image.v1+json"
    ), "{got}");
    assert!(got.contains(src[0]), "config digest kept: {got}");
    for l in &src[1..] {
        assert!(
            got.contains(&format!(
                "{l} application/vnd.docker.image.rootfs.diff.tar.gzip"
            )),
            "layer {l} kept as is: {got}"
        );
    }
    ok(regctl().args(["image", "inspect", &loc(&out, "d")]));
}

/// A `docker save` tar of the old layout: `<id>/layer.tar` (plain tar, one a symlink to
/// another, one a hard link), `<config hex>.json`, `repositories`, two images.
fn docker_save(tmp: &TempDir) -> (std::path::PathBuf, String, String) {
    let layer1 = support::gen::tar(&[("a.txt", b"one\n")], 0);
    let layer2 = support::gen::tar(&[("b.txt", b"two\n")], 0);
    let diff = |l: &[u8]| format!("sha256:{}", support::gen::sha256_hex(l));
    let config = |name: &str, ls: &[&[u8]]| {
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux", "config": {"Labels": {"name": name}},
            "rootfs": {"type": "layers", "diff_ids": ls.iter().map(|l| diff(l)).collect::<Vec<_>>()},
        }))
        .unwrap()
    };
    let c1 = config("first", &[&layer1]);
    let c2 = config("second", &[&layer1, &layer2]);
    let (h1, h2) = (support::gen::sha256_hex(&c1), support::gen::sha256_hex(&c2));
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": format!("{h1}.json"), "RepoTags": ["example.com/first:1"], "Layers": ["l1/layer.tar"]},
        {"Config": format!("{h2}.json"), "RepoTags": ["example.com/second:2"], "Layers": ["l1b/layer.tar", "l2h/layer.tar"]},
    ]))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("l1/layer.tar", &layer1);
    add("l2/layer.tar", &layer2);
    add(&format!("{h1}.json"), &c1);
    add(&format!("./{h2}.json"), &c2);
    add("manifest.json", &manifest);
    add("repositories", b"{}");
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "l1b/layer.tar", "../l1/layer.tar")
        .unwrap();
    // A hard link names its target from the archive root.
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Link);
    h.set_size(0);
    b.append_link(&mut h, "l2h/layer.tar", "./l2/layer.tar")
        .unwrap();
    let p = tmp.join("save.tar");
    fs::write(&p, b.into_inner().unwrap()).unwrap();
    (p, format!("sha256:{h1}"), format!("sha256:{h2}"))
}

#[test]
fn docker_save_tar_imports_by_name() {
    let tmp = TempDir::new();
    let (t, c1, c2) = docker_save(&tmp);
    let out = tmp.join("out");
    // No --name: the first image.
    ok(regctl().args(["image", "import", &loc(&out, "a")]).arg(&t));
    let cfg = |tag: &str| {
        ok(regctl().args([
            "manifest",
            "get",
            "--format",
            "{{.Config.Digest}} {{len .Layers}}",
            &loc(&out, tag),
        ]))
        .trim()
        .to_string()
    };
    assert_eq!(cfg("a"), format!("{c1} 1"));
    ok(regctl()
        .args([
            "image",
            "import",
            "--name",
            "example.com/second:2",
            &loc(&out, "b"),
        ])
        .arg(&t));
    assert_eq!(cfg("b"), format!("{c2} 2"));
    let label = ok(regctl().args([
        "image",
        "inspect",
        "--format",
        "{{.Config.Labels.name}}",
        &loc(&out, "b"),
    ]));
    assert_eq!(label.trim(), "second");
    // Layers are gzipped deterministically: the same tar gives the same digest again, and the
    // shared (symlinked) layer is the same blob in both images.
    ok(regctl()
        .args([
            "image",
            "import",
            "--name",
            "example.com/second:2",
            &loc(&out, "c"),
        ])
        .arg(&t));
    assert_eq!(digest(&loc(&out, "b")), digest(&loc(&out, "c")));
    let l = |tag: &str| {
        ok(regctl().args([
            "manifest",
            "get",
            "--format",
            "{{(index .Layers 0).Digest}}",
            &loc(&out, tag),
        ]))
    };
    assert_eq!(l("a"), l("b"));
    // An unknown name is an error and tags nothing.
    let (code, _, err) = run_text(
        regctl()
            .args(["image", "import", "--name", "nope:1", &loc(&out, "d")])
            .arg(&t),
    );
    assert_eq!(code, 1);
    assert!(err.contains("nope:1"), "{err}");
    let tags = ok(regctl().args(["tag", "ls", &loc(&out, "a")]));
    assert!(!tags.lines().any(|t| t == "d"), "{tags}");
}

#[test]
fn oci_tar_with_several_images_picks_by_name_or_tag() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let t = tmp.join("layout.tar");
    // The whole test layout as a tar (many index entries).
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", &repo).unwrap();
    fs::write(&t, b.into_inner().unwrap()).unwrap();
    let out = tmp.join("out");
    ok(regctl().args(["image", "import", &loc(&out, "v2")]).arg(&t));
    assert_eq!(digest(&loc(&out, "v2")), digest(&loc(&repo, "v2")));
    ok(regctl()
        .args(["image", "import", "--name", "v3", &loc(&out, "other")])
        .arg(&t));
    assert_eq!(digest(&loc(&out, "other")), digest(&loc(&repo, "v3")));
    let v1 = digest(&loc(&repo, "v1"));
    ok(regctl()
        .args([
            "image",
            "import",
            &format!("ocidir://{}@{v1}", out.display()),
        ])
        .arg(&t));
    let (code, _, err) = run_text(
        regctl()
            .args(["image", "import", &loc(&out, "nosuchtag")])
            .arg(&t),
    );
    assert_eq!(code, 1);
    assert!(err.contains("nosuchtag") && err.contains("--name"), "{err}");
}

#[test]
fn compressed_inputs_other_than_gzip_are_refused_clearly() {
    let tmp = TempDir::new();
    let t = tmp.join("x.tar.zst");
    fs::write(&t, [0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]).unwrap();
    let (code, _, err) = run_text(
        regctl()
            .args(["image", "import", &loc(&tmp.join("out"), "x")])
            .arg(&t),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("unsupported compression (zstd): decompress the file first"),
        "{err}"
    );
}

#[test]
fn registry_round_trip() {
    let Some(reg) = support::registry::Registry::start(Default::default()) else {
        return;
    };
    let tmp = TempDir::new();
    support::write_regctl_config(
        &tmp,
        &serde_json::json!({"hosts": {reg.host.clone(): {"tls": "disabled"}}}),
    );
    let rc = || support::regctl_isolated(&tmp);
    let repo = testrepo(&tmp);
    let t = tmp.join("v1.tar");
    ok(rc().args(["image", "export", &loc(&repo, "v1")]).arg(&t));
    let target = format!("{}/archive/app:v1", reg.host);
    ok(rc().args(["image", "import", &target]).arg(&t));
    let want = digest(&loc(&repo, "v1"));
    assert_eq!(ok(rc().args(["image", "digest", &target])).trim(), want);
    ok(rc().args(["image", "inspect", "-p", "linux/arm64", &target]));
    // Export from the registry, one platform, gzip; import into a layout and into another repo.
    let t2 = tmp.join("amd.tar.gz");
    ok(rc()
        .args([
            "image",
            "export",
            "--compress",
            "-p",
            "linux/amd64",
            &target,
        ])
        .arg(&t2));
    let amd = ok(rc().args(["image", "digest", "-p", "linux/amd64", &target]))
        .trim()
        .to_string();
    let out = tmp.join("out");
    ok(rc().args(["image", "import", &loc(&out, "amd")]).arg(&t2));
    assert_eq!(digest(&loc(&out, "amd")), amd);
    let target2 = format!("{}/archive/other:amd", reg.host);
    ok(rc().args(["image", "import", &target2]).arg(&t2));
    assert_eq!(ok(rc().args(["image", "digest", &target2])).trim(), amd);
    // Exports of the same image from the layout and from the registry hold the same content.
    let name = "--name=example.com/app:1";
    let (a, b) = (tmp.join("a.tar"), tmp.join("b.tar"));
    ok(rc()
        .args(["image", "export", name, &loc(&repo, "v1")])
        .arg(&a));
    ok(rc().args(["image", "export", name, &target]).arg(&b));
    assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

#[test]
fn failed_export_leaves_no_file() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let layer = ok(regctl().args([
        "manifest",
        "get",
        "-p",
        "linux/arm64",
        "--format",
        "{{(index .Layers 0).Digest}}",
        &loc(&repo, "v1"),
    ]));
    let hex = layer.trim().trim_start_matches("sha256:").to_string();
    fs::remove_file(repo.join("blobs/sha256").join(&hex)).unwrap();
    let t = tmp.join("v1.tar");
    let (code, _, err) = run_text(
        regctl()
            .args(["image", "export", &loc(&repo, "v1")])
            .arg(&t),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&hex), "{err}");
    assert!(!t.exists(), "a partial tar was left behind");
    // Another platform that does not need the blob still exports.
    ok(regctl()
        .args(["image", "export", "-p", "linux/amd64", &loc(&repo, "v1")])
        .arg(&t));
}
