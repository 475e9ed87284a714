//! The committed fixtures under `testdata/` are exactly what `support::gen` produces, and they are
//! internally consistent OCI layouts.
//!
//! `REGEN_TESTDATA=1 cargo test --test testdata` rewrites `testdata/` from the generator.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use regclient::mediatype as mt;
use serde_json::Value;
use support::gen;

/// Relative path → bytes for every file under `root`.
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    // Bounded by the (finite) tree: each directory is pushed once.
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_path_buf();
                out.insert(rel, fs::read(&path).expect("read file"));
            }
        }
    }
    out
}

#[test]
fn testdata_matches_generator() {
    let committed = support::testdata();
    if std::env::var_os("REGEN_TESTDATA").is_some_and(|v| v == "1") {
        // The whole tree is generated, so clearing it removes files the generator dropped.
        if committed.exists() {
            fs::remove_dir_all(&committed).expect("clear testdata");
        }
        gen::write_all(&committed);
        eprintln!("regenerated {}", committed.display());
        return;
    }
    let tmp = support::TempDir::new();
    gen::write_all(tmp.path());
    let want = tree(tmp.path());
    let have = tree(&committed);
    let want_names: BTreeSet<_> = want.keys().collect();
    let have_names: BTreeSet<_> = have.keys().collect();
    let missing: Vec<_> = want_names.difference(&have_names).collect();
    let extra: Vec<_> = have_names.difference(&want_names).collect();
    let hint = "run `REGEN_TESTDATA=1 cargo test --test testdata` and commit testdata/";
    assert!(
        missing.is_empty(),
        "missing from testdata/: {missing:?}; {hint}"
    );
    assert!(extra.is_empty(), "not generated: {extra:?}; {hint}");
    for (name, data) in &want {
        assert!(have[name] == *data, "{} differs; {hint}", name.display());
    }
}

#[test]
fn generator_is_deterministic() {
    let (a, b) = (support::TempDir::new(), support::TempDir::new());
    gen::write_all(a.path());
    gen::write_all(b.path());
    assert!(tree(a.path()) == tree(b.path()));
}

/// A parsed layout: tag → index entry, plus blob access.
struct Layout {
    root: PathBuf,
    entries: Vec<Value>,
}

impl Layout {
    fn open(root: PathBuf) -> Layout {
        let layout: Value =
            serde_json::from_slice(&fs::read(root.join("oci-layout")).expect("oci-layout"))
                .expect("oci-layout json");
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index: Value =
            serde_json::from_slice(&fs::read(root.join("index.json")).expect("index.json"))
                .expect("index json");
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["mediaType"], mt::OCI1_INDEX);
        let entries = index["manifests"].as_array().expect("manifests").clone();
        Layout { root, entries }
    }

    fn tags(&self) -> BTreeMap<String, Value> {
        self.entries
            .iter()
            .filter_map(|e| {
                let name = e["annotations"]["org.opencontainers.image.ref.name"].as_str()?;
                Some((name.to_string(), e.clone()))
            })
            .collect()
    }

    fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        fs::read(self.root.join("blobs/sha256").join(hex))
            .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
    }

    fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).expect("manifest json")
    }

    /// Checks a descriptor and everything below it; records reachable digests. Subjects are not
    /// followed: external referrers point outside their layout.
    fn walk(&self, desc: &Value, seen: &mut BTreeSet<String>) {
        let digest = desc["digest"].as_str().expect("digest").to_string();
        let data = self.blob(&digest);
        assert_eq!(
            data.len() as u64,
            desc["size"].as_u64().expect("size"),
            "{digest} size"
        );
        if !seen.insert(digest.clone()) {
            return;
        }
        let media_type = desc["mediaType"].as_str().expect("mediaType");
        if mt::is_index(media_type) {
            let m = self.json(&digest);
            assert_eq!(m["mediaType"], media_type, "{digest} media type");
            for child in m["manifests"].as_array().expect("manifests") {
                self.walk(child, seen);
            }
        } else if media_type == mt::OCI1_MANIFEST || media_type == mt::DOCKER2_MANIFEST {
            let m = self.json(&digest);
            assert_eq!(m["mediaType"], media_type, "{digest} media type");
            self.walk(&m["config"], seen);
            let layers = m["layers"].as_array().expect("layers");
            for l in layers {
                self.walk(l, seen);
            }
            let cmt = m["config"]["mediaType"].as_str().expect("config type");
            if cmt == mt::OCI1_IMAGE_CONFIG || cmt == mt::DOCKER2_IMAGE_CONFIG {
                self.check_diff_ids(&m, layers);
            }
        }
    }

    fn check_diff_ids(&self, m: &Value, layers: &[Value]) {
        let config = self.json(m["config"]["digest"].as_str().expect("config digest"));
        let diff_ids = config["rootfs"]["diff_ids"].as_array().expect("diff_ids");
        assert_eq!(diff_ids.len(), layers.len(), "one diff_id per layer");
        for (l, want) in layers.iter().zip(diff_ids) {
            let data = self.blob(l["digest"].as_str().expect("layer digest"));
            let lmt = l["mediaType"].as_str().expect("layer type");
            let plain = if lmt.ends_with("gzip") {
                // One final stored block (see gen::gzip): header 10, block header 5, trailer 8.
                assert_eq!(data[10], 0x01, "single stored deflate block");
                let len = u16::from_le_bytes([data[11], data[12]]) as usize;
                assert_eq!(len + 23, data.len(), "stored block covers the layer");
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&data[..])
                    .read_to_end(&mut out)
                    .expect("gunzip layer");
                out
            } else {
                data
            };
            assert_eq!(format!("sha256:{}", gen::sha256_hex(&plain)), *want);
        }
        if let Some(h) = config.get("history") {
            let h = h.as_array().expect("history");
            let non_empty = h.iter().filter(|e| e["empty_layer"] != true).count();
            assert_eq!(non_empty, layers.len(), "history entries per layer");
        }
    }

    /// Every blob is named by its digest and reachable from `index.json` (nothing for GC).
    fn check(&self) {
        let mut seen = BTreeSet::new();
        for e in &self.entries {
            self.walk(e, &mut seen);
        }
        for entry in fs::read_dir(self.root.join("blobs/sha256")).expect("blobs dir") {
            let path = entry.expect("entry").path();
            let hex = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .to_string();
            assert_eq!(gen::sha256_hex(&fs::read(&path).expect("blob")), hex);
            assert!(
                seen.contains(&format!("sha256:{hex}")),
                "unreferenced blob {hex}"
            );
        }
    }
}

/// A fresh generator output: the same bytes as the committed tree (see above), but not racing
/// with a concurrent `REGEN_TESTDATA=1` rewrite.
fn generated() -> support::TempDir {
    let tmp = support::TempDir::new();
    gen::write_all(tmp.path());
    tmp
}

fn digest(e: &Value) -> &str {
    e["digest"].as_str().expect("digest")
}

#[test]
fn testrepo_is_consistent() {
    let tmp = generated();
    let l = Layout::open(tmp.join("testrepo"));
    l.check();
    let tags = l.tags();
    let hex = |t: &str| digest(&tags[t]).trim_start_matches("sha256:").to_string();
    let fixed = [
        "a-docker",
        "a-docker-oci",
        "a-example",
        "a1",
        "a2",
        "a3",
        "ai",
        "b1",
        "b2",
        "b3",
        "child",
        "docker",
        "loop",
        "mirror",
        "v1",
        "v2",
        "v3",
    ];
    let mut want: BTreeSet<String> = fixed.iter().map(|s| s.to_string()).collect();
    let v1 = l.json(digest(&tags["v1"]));
    let v2 = l.json(digest(&tags["v2"]));
    let v1_arm64 = &v1["manifests"][1];
    assert_eq!(v1_arm64["platform"]["architecture"], "arm64");
    want.insert(format!(
        "sha256-{}",
        digest(v1_arm64).trim_start_matches("sha256:")
    ));
    want.insert(format!("sha256-{}", hex("v2")));
    for c in v2["manifests"].as_array().expect("manifests") {
        want.insert(format!(
            "sha256-{}",
            digest(c).trim_start_matches("sha256:")
        ));
    }
    want.insert(format!("sha256-{}", hex("child")));
    want.insert(format!("sha256-{}", hex("mirror")));
    want.insert(format!("sha256-{}.{}.meta", hex("v1"), &hex("v3")[..16]));
    let have: BTreeSet<String> = tags.keys().cloned().collect();
    assert_eq!(have, want);
    assert_eq!(tags.len(), 25); // upstream's 24 plus `docker`

    // Fallback tags list exactly the expected referrers.
    let referrers = |subject: &str| -> Vec<String> {
        let idx = l.json(digest(&tags[&format!("sha256-{subject}")]));
        idx["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|d| {
                d["artifactType"]
                    .as_str()
                    .expect("artifactType")
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        referrers(&hex("v2")),
        ["application/example.sbom", "application/example.signature"]
    );
    assert_eq!(referrers(&hex("child")), ["application/example.loop"]);
    assert_eq!(
        tags[&format!("sha256-{}", hex("mirror"))]["digest"],
        tags["mirror"]["digest"]
    );

    // The v3 referrers are only untagged index entries, with no fallback tag.
    let untagged: Vec<&Value> = l
        .entries
        .iter()
        .filter(|e| e.get("annotations").is_none())
        .collect();
    assert_eq!(untagged.len(), 2);
    for e in untagged {
        assert_eq!(l.json(digest(e))["subject"]["digest"], tags["v3"]["digest"]);
    }
    assert!(!tags.contains_key(&format!("sha256-{}", hex("v3"))));

    // Platform manifests of the image indexes are not index.json entries (the v1 attestations
    // are, as the a-docker* tags).
    let listed: BTreeSet<&str> = l.entries.iter().map(digest).collect();
    for t in ["b1", "b2", "b3", "v1", "v2", "v3", "docker"] {
        for c in l.json(digest(&tags[t]))["manifests"]
            .as_array()
            .expect("manifests")
        {
            if c["platform"]["os"] == "unknown" {
                continue;
            }
            assert!(
                !listed.contains(digest(c)),
                "{t} child {} listed",
                digest(c)
            );
        }
    }

    // v2 and v3 share the b1 base layer per platform.
    let first_layer = |idx: &str, i: usize| -> Value {
        let m = l.json(digest(&l.json(digest(&tags[idx]))["manifests"][i]));
        m["layers"][0]["digest"].clone()
    };
    for i in 0..3 {
        assert_eq!(first_layer("v2", i), first_layer("b1", i));
        assert_eq!(first_layer("v3", i), first_layer("b1", i));
        assert_ne!(first_layer("b2", i), first_layer("b1", i));
    }
}

#[test]
fn external_is_consistent() {
    let tmp = generated();
    let l = Layout::open(tmp.join("external"));
    l.check();
    let repo = Layout::open(tmp.join("testrepo"));
    let v2 = digest(&repo.tags()["v2"]).to_string();
    let tags = l.tags();
    let fallback = format!("sha256-{}", v2.trim_start_matches("sha256:"));
    let idx = l.json(digest(&tags[&fallback]));
    let prefs: Vec<&str> = idx["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|d| d["annotations"]["preference"].as_str().expect("preference"))
        .collect();
    assert_eq!(prefs, ["1", "2"]);
    for t in ["a3", "a4"] {
        assert_eq!(l.json(digest(&tags[t]))["subject"]["digest"], v2.as_str());
    }
}

// The helpers in tests/support are used by every integration test; check the subtle ones here.

#[test]
fn run_collects_output_and_status() {
    let out = support::run(
        std::process::Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
    );
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(3));
    let out = support::run_input(&mut std::process::Command::new("cat"), b"hello");
    assert_eq!(out.stdout, b"hello");
}

#[test]
#[should_panic(expected = "timed out")]
fn run_kills_at_deadline() {
    let mut cmd = std::process::Command::new("sleep");
    cmd.arg("30");
    support::run_with(&mut cmd, None, std::time::Duration::from_millis(200));
}

#[test]
fn temp_dir_is_removed_and_copy_is_private() {
    let path;
    {
        let tmp = support::TempDir::new();
        path = tmp.path().to_path_buf();
        let repo = support::testrepo(&tmp);
        fs::write(repo.join("index.json"), b"{}").expect("write copy");
        assert!(
            support::testdata()
                .join("testrepo/index.json")
                .metadata()
                .expect("committed")
                .len()
                > 2
        );
    }
    assert!(!path.exists(), "{} not removed", path.display());
}

/// Descriptors use the OCI field order and maps have sorted keys, so re-serializing a manifest
/// with `regclient`'s types (or Go's) reproduces the committed bytes and digests.
#[test]
fn json_is_in_canonical_order() {
    fn check(v: &Value, at: &str) {
        match v {
            Value::Object(m) => {
                if m.contains_key("digest") && m.contains_key("mediaType") {
                    let pos: Vec<usize> = m
                        .keys()
                        .map(|k| {
                            gen::DESCRIPTOR_ORDER
                                .iter()
                                .position(|o| o == k)
                                .unwrap_or_else(|| panic!("{at}: unknown descriptor field {k}"))
                        })
                        .collect();
                    assert!(
                        pos.windows(2).all(|w| w[0] < w[1]),
                        "{at}: descriptor order {m:?}"
                    );
                }
                for (k, child) in m {
                    if k == "annotations" || k == "Labels" {
                        let keys: Vec<&String> = child.as_object().expect("map").keys().collect();
                        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{at}: unsorted {k}");
                    }
                    check(child, at);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| check(c, at)),
            _ => {}
        }
    }
    let tmp = generated();
    for layout in ["testrepo", "external"] {
        let root = tmp.join(layout);
        let index: Value =
            serde_json::from_slice(&fs::read(root.join("index.json")).expect("index"))
                .expect("json");
        check(&index, "index.json");
        for entry in fs::read_dir(root.join("blobs/sha256")).expect("blobs") {
            let path = entry.expect("entry").path();
            if let Ok(v) = serde_json::from_slice::<Value>(&fs::read(&path).expect("blob")) {
                check(&v, &path.display().to_string());
            }
        }
    }
}
