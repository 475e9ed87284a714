//! `image import` refuses bad tars with a clear error naming the entry, exit code 1, and
//! without tagging anything at the target.

mod support;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use support::{ok, regctl, run_text, testrepo, TempDir};

fn loc(p: &Path, tag: &str) -> String {
    format!("ocidir://{}:{tag}", p.display())
}

/// A single-platform export of testrepo v1 and its entries (name, data).
fn export(tmp: &TempDir) -> Vec<(String, Vec<u8>)> {
    let repo = testrepo(tmp);
    let t = tmp.join("good.tar");
    ok(regctl()
        .args(["image", "export", "-p", "linux/amd64", &loc(&repo, "v1")])
        .arg(&t));
    let data = fs::read(&t).unwrap();
    let mut ar = tar::Archive::new(data.as_slice());
    ar.entries()
        .unwrap()
        .filter_map(|e| {
            let mut e = e.unwrap();
            if e.header().entry_type() != tar::EntryType::Regular {
                return None;
            }
            let mut buf = Vec::new();
            e.read_to_end(&mut buf).unwrap();
            Some((String::from_utf8(e.path_bytes().to_vec()).unwrap(), buf))
        })
        .collect()
}

/// A header with a raw name (and link name), bypassing the tar crate's path checks.
fn raw_header(name: &str, kind: tar::EntryType, link: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    h
}

/// Writes `entries` plus raw `extra` headers into a tar file.
fn write_tar(
    tmp: &TempDir,
    entries: &[(String, Vec<u8>)],
    extra: &[(&str, tar::EntryType, &str, &[u8])],
) -> PathBuf {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in extra {
        b.append(&raw_header(name, *kind, link, data.len() as u64), *data)
            .unwrap();
    }
    for (name, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    let p = tmp.join("bad.tar");
    fs::write(&p, b.into_inner().unwrap()).unwrap();
    p
}

/// Runs the import, expects exit 1 with every `needles` in the error, and no tag `t` at the
/// target.
fn refused(tmp: &TempDir, file: &Path, needles: &[&str]) {
    let out = tmp.join("out");
    let (code, stdout, err) = run_text(
        regctl()
            .args(["image", "import", &loc(&out, "t")])
            .arg(file),
    );
    assert_eq!(code, 1, "stdout {stdout} stderr {err}");
    for n in needles {
        assert!(err.contains(n), "error should mention {n:?}: {err}");
    }
    assert_not_tagged(&out);
}

fn assert_not_tagged(out: &Path) {
    let (code, tags, _) = run_text(regctl().args(["tag", "ls", &loc(out, "t")]));
    assert!(
        code != 0 || !tags.lines().any(|l| l == "t"),
        "tagged: {tags}"
    );
}

/// Replaces one entry's data.
fn with(
    entries: &[(String, Vec<u8>)],
    name: &str,
    f: impl Fn(&mut Vec<u8>),
) -> Vec<(String, Vec<u8>)> {
    let mut v = entries.to_vec();
    let e = v.iter_mut().find(|e| e.0 == name).expect("entry");
    f(&mut e.1);
    v
}

fn layer_name(entries: &[(String, Vec<u8>)]) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&entries.iter().find(|e| e.0 == "manifest.json").unwrap().1)
            .unwrap();
    m[0]["Layers"][0].as_str().unwrap().to_string()
}

#[test]
fn the_good_tar_imports() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let p = write_tar(&tmp, &e, &[]);
    ok(regctl()
        .args(["image", "import", &loc(&tmp.join("out"), "t")])
        .arg(&p));
}

#[test]
fn path_with_dotdot_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let p = write_tar(&tmp, &e, &[("../x", tar::EntryType::Regular, "", b"hi")]);
    refused(&tmp, &p, &["\"../x\"", "escapes"]);
}

#[test]
fn absolute_path_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let p = write_tar(&tmp, &e, &[("/abs", tar::EntryType::Regular, "", b"hi")]);
    refused(&tmp, &p, &["\"/abs\"", "escapes"]);
}

#[test]
fn symlink_outside_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let p = write_tar(
        &tmp,
        &e,
        &[(
            "blobs/evil",
            tar::EntryType::Symlink,
            "../../etc/passwd",
            b"",
        )],
    );
    refused(&tmp, &p, &["\"blobs/evil\"", "outside the archive"]);
    let p = write_tar(
        &tmp,
        &e,
        &[("evil", tar::EntryType::Symlink, "/etc/passwd", b"")],
    );
    refused(&tmp, &p, &["\"evil\"", "outside the archive"]);
}

#[test]
fn hardlink_outside_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let p = write_tar(&tmp, &e, &[("hl", tar::EntryType::Link, "../outside", b"")]);
    refused(&tmp, &p, &["\"hl\"", "outside the archive"]);
}

#[test]
fn manifest_json_naming_a_missing_file_is_refused() {
    let tmp = TempDir::new();
    let e: Vec<_> = export(&tmp)
        .into_iter()
        .filter(|e| e.0 != "oci-layout" && e.0 != "index.json")
        .collect();
    let layer = layer_name(&e);
    let e: Vec<_> = e.into_iter().filter(|x| x.0 != layer).collect();
    let p = write_tar(&tmp, &e, &[]);
    refused(&tmp, &p, &[&format!("{layer:?}"), "not in the tar"]);
}

#[test]
fn index_json_naming_a_missing_blob_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let layer = layer_name(&e);
    let e: Vec<_> = e.into_iter().filter(|x| x.0 != layer).collect();
    let p = write_tar(&tmp, &e, &[]);
    refused(&tmp, &p, &[&format!("{layer:?}"), "not found"]);
}

#[test]
fn oci_blob_not_matching_its_name_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let layer = layer_name(&e);
    let e = with(&e, &layer, |d| {
        let n = d.len() / 2;
        d[n] ^= 0xff;
    });
    let p = write_tar(&tmp, &e, &[]);
    refused(&tmp, &p, &[&format!("{layer:?}"), "digest"]);
}

#[test]
fn docker_blob_not_matching_its_name_is_refused() {
    let tmp = TempDir::new();
    let e: Vec<_> = export(&tmp)
        .into_iter()
        .filter(|e| e.0 != "oci-layout" && e.0 != "index.json")
        .collect();
    let layer = layer_name(&e);
    let e = with(&e, &layer, |d| {
        let n = d.len() / 2;
        d[n] ^= 0xff;
    });
    let p = write_tar(&tmp, &e, &[]);
    refused(&tmp, &p, &[&format!("{layer:?}"), "digest"]);
    // The config too (named by digest).
    let e: Vec<_> = export(&tmp)
        .into_iter()
        .filter(|e| e.0 != "oci-layout" && e.0 != "index.json")
        .collect();
    let m: serde_json::Value =
        serde_json::from_slice(&e.iter().find(|e| e.0 == "manifest.json").unwrap().1).unwrap();
    let config = m[0]["Config"].as_str().unwrap().to_string();
    let e = with(&e, &config, |d| d.push(b' '));
    let p = write_tar(&tmp, &e, &[]);
    refused(&tmp, &p, &[&format!("{config:?}"), "digest"]);
}

#[test]
fn truncated_tar_is_refused() {
    let tmp = TempDir::new();
    let e = export(&tmp);
    let p = write_tar(&tmp, &e, &[]);
    let data = fs::read(&p).unwrap();
    // Cut inside the data of an early entry, and on a header boundary.
    for cut in [data.len() / 3 + 7, 1024 + 512] {
        fs::write(&p, &data[..cut]).unwrap();
        refused(&tmp, &p, &["tar"]);
    }
}

#[test]
fn non_tar_file_is_refused() {
    let tmp = TempDir::new();
    let p = tmp.join("notes.txt");
    fs::write(&p, "this is not a tar file\n".repeat(100)).unwrap();
    refused(&tmp, &p, &["not a tar file"]);
    fs::write(&p, "").unwrap();
    refused(&tmp, &p, &["not a tar file"]);
    let missing = tmp.join("missing.tar");
    refused(&tmp, &missing, &["missing.tar"]);
}

#[test]
fn truncated_gzip_is_refused() {
    let tmp = TempDir::new();
    let repo = testrepo(&tmp);
    let t = tmp.join("v1.tar.gz");
    ok(regctl()
        .args(["image", "export", "--compress", &loc(&repo, "v1")])
        .arg(&t));
    let data = fs::read(&t).unwrap();
    fs::write(&t, &data[..data.len() / 2]).unwrap();
    refused(&tmp, &t, &["decompressing"]);
}

#[test]
fn registry_target_is_not_tagged_on_a_bad_blob() {
    let Some(reg) = support::registry::Registry::start(Default::default()) else {
        return;
    };
    let tmp = TempDir::new();
    support::write_regctl_config(
        &tmp,
        &serde_json::json!({"hosts": {reg.host.clone(): {"tls": "disabled"}}}),
    );
    let e = export(&tmp);
    let layer = layer_name(&e);
    let e = with(&e, &layer, |d| {
        let n = d.len() / 2;
        d[n] ^= 0xff;
    });
    let p = write_tar(&tmp, &e, &[]);
    let target = format!("{}/bad/app:t", reg.host);
    let (code, _, err) = run_text(
        support::regctl_isolated(&tmp)
            .args(["image", "import", &target])
            .arg(&p),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&layer), "{err}");
    let (code, _, _) = run_text(support::regctl_isolated(&tmp).args(["image", "digest", &target]));
    assert_ne!(code, 0, "the tag must not exist");
}
