//! Deterministic generator for the committed fixtures under `testdata/`.
//!
//! Everything is built in memory from constants (fixed timestamps, fixed tar headers, gzip with
//! mtime 0) so the same code always yields the same bytes and therefore the same digests. The
//! `testdata` integration test regenerates the tree and compares it with the committed copy; run it
//! with `REGEN_TESTDATA=1` after changing this file.
//!
//! The content is modelled on upstream regclient's `testrepo` (bases, versioned images sharing
//! their base layer, referrers through fallback tags, untagged referrers only a slow scan finds,
//! a referrer loop, a self digest tag, a Docker manifest list). Manifests and configs are written
//! as compact JSON, like registries serve them; `index.json` is pretty-printed so diffs are readable.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use regclient::mediatype as mt;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// Repository name used in annotations that name an image (`base.name`).
pub const REPO: &str = "registry.example.org/testrepo";

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const TITLE: &str = "org.opencontainers.image.title";
const BASE_NAME: &str = "org.opencontainers.image.base.name";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Build dates. Bases are older than the images built on them so that "which layers came from the
// base" questions (check-base, mod --time base-ref) have a clear answer.
const T_B1: &str = "2019-01-01T00:00:00Z";
const T_B2: &str = "2019-06-01T00:00:00Z";
const T_B3: &str = "2020-01-01T00:00:00Z";
const T_V1: &str = "2021-01-01T00:00:00Z";
const T_V2: &str = "2022-01-01T00:00:00Z";
const T_V3: &str = "2023-01-01T00:00:00Z";
const T_MISC: &str = "2020-01-01T00:00:00Z";

/// `YYYY-01-01T00:00:00Z` / `YYYY-06-01...` to Unix seconds, for tar mtimes. Only the dates above
/// are needed, so a table beats a calendar implementation.
fn unix(t: &str) -> u64 {
    match t {
        T_B1 => 1_546_300_800,
        T_B2 => 1_559_347_200,
        T_B3 => 1_577_836_800, // also T_MISC
        T_V1 => 1_609_459_200,
        T_V2 => 1_640_995_200,
        T_V3 => 1_672_531_200,
        _ => panic!("no unix time for {t}"),
    }
}

/// `(os, architecture, variant)`.
#[derive(Clone, Copy)]
struct Plat(&'static str, &'static str, Option<&'static str>);

const AMD64: Plat = Plat("linux", "amd64", None);
const ARM64: Plat = Plat("linux", "arm64", None);
const ARMV7: Plat = Plat("linux", "arm", Some("v7"));
const ARMV6: Plat = Plat("linux", "arm", Some("v6"));

impl Plat {
    fn name(self) -> String {
        match self.2 {
            Some(v) => format!("{}/{}/{}", self.0, self.1, v),
            None => format!("{}/{}", self.0, self.1),
        }
    }

    fn json(self) -> Value {
        let mut m = Map::new();
        m.insert("architecture".into(), self.1.into());
        m.insert("os".into(), self.0.into());
        if let Some(v) = self.2 {
            m.insert("variant".into(), v.into());
        }
        Value::Object(m)
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let mut s = String::with_capacity(64);
    for b in d {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One tar entry: a path ending in `/` is a directory.
type Entry<'a> = (&'a str, &'a [u8]);

/// A tar with fixed ownership, modes and mtime, so only the listed content decides the bytes.
pub fn tar(entries: &[Entry], mtime: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).expect("tar path");
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_cksum();
        b.append(&h, *data).expect("tar append");
    }
    b.into_inner().expect("tar finish")
}

/// gzip with a fixed header (mtime 0, no name) and level 0. Our tars are far below the ~31 KiB
/// stored-block size, so the deflate stream is one stored block: the only possible encoding, which
/// keeps the fixture digests independent of the compressor's version and heuristics.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    assert!(data.len() < 30_000, "fixture layers must stay tiny");
    let mut e = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::none());
    e.write_all(data).expect("gzip write");
    e.finish().expect("gzip finish")
}

/// A layer before compression: its tar and the history line that "built" it.
#[derive(Clone)]
struct Layer {
    tar: Vec<u8>,
    created: &'static str,
    created_by: String,
}

/// An OCI layout being assembled in memory.
#[derive(Default)]
pub struct Layout {
    blobs: BTreeMap<String, Vec<u8>>,
    index: Vec<Value>,
    /// Referrers per subject digest, turned into fallback tags by [`Layout::finish`].
    referrers: BTreeMap<String, Vec<Value>>,
    /// `(tag, digest, note)` for README.md.
    pub tags: Vec<(String, String, String)>,
    /// Named digests worth listing in the README (child manifests etc.).
    pub named: Vec<(String, String)>,
}

/// Descriptor field access without repeating `as_str().unwrap()`.
pub fn digest_of(desc: &Value) -> &str {
    desc["digest"].as_str().expect("descriptor digest")
}

fn hex_of(desc: &Value) -> &str {
    digest_of(desc).trim_start_matches("sha256:")
}

impl Layout {
    /// Stores a blob and returns its descriptor.
    fn blob(&mut self, media_type: &str, data: Vec<u8>) -> Value {
        let hex = sha256_hex(&data);
        let desc = json!({
            "mediaType": media_type,
            "digest": format!("sha256:{hex}"),
            "size": data.len(),
        });
        self.blobs.insert(hex, data);
        desc
    }

    fn json_blob(&mut self, media_type: &str, v: &Value) -> Value {
        self.blob(media_type, serde_json::to_vec(v).expect("json"))
    }

    fn empty_config(&mut self) -> Value {
        self.blob(mt::OCI1_EMPTY, b"{}".to_vec())
    }

    fn tag(&mut self, name: &str, desc: &Value, note: &str) {
        let mut entry = bare(desc);
        entry["annotations"] = json!({ REF_NAME: name });
        self.index.push(entry);
        self.tags
            .push((name.into(), digest_of(desc).into(), note.into()));
    }

    fn untagged(&mut self, desc: &Value) {
        self.index.push(bare(desc));
    }

    /// Records `desc` (of `manifest`) as a referrer of `subject` for the fallback tag.
    fn refer(&mut self, subject: &Value, desc: &Value, manifest: &Value) {
        let mut e = bare(desc);
        let at = manifest
            .get("artifactType")
            .or_else(|| manifest.get("config").map(|c| &c["mediaType"]))
            .cloned()
            .expect("referrer needs an artifact type");
        e["artifactType"] = at;
        if let Some(a) = manifest.get("annotations") {
            e["annotations"] = a.clone();
        }
        self.referrers
            .entry(digest_of(subject).to_string())
            .or_default()
            .push(canonical(e));
    }

    /// Builds a single-platform image; returns the manifest descriptor with its platform.
    fn image(
        &mut self,
        plat: Plat,
        created: &str,
        labels: &[(&str, &str)],
        layers: &[Layer],
        docker: bool,
    ) -> Value {
        let (m_mt, c_mt, l_mt) = if docker {
            (
                mt::DOCKER2_MANIFEST,
                mt::DOCKER2_IMAGE_CONFIG,
                mt::DOCKER2_LAYER_GZIP,
            )
        } else {
            (
                mt::OCI1_MANIFEST,
                mt::OCI1_IMAGE_CONFIG,
                mt::OCI1_LAYER_GZIP,
            )
        };
        let mut layer_descs = Vec::new();
        let mut diff_ids = Vec::new();
        let mut history = Vec::new();
        for l in layers {
            diff_ids.push(format!("sha256:{}", sha256_hex(&l.tar)));
            layer_descs.push(self.blob(l_mt, gzip(&l.tar)));
            history.push(json!({
                "created": l.created,
                "created_by": l.created_by,
                "comment": "buildkit.dockerfile.v0",
            }));
        }
        let labels: Map<String, Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let mut config = json!({ "created": created, "architecture": plat.1, "os": plat.0 });
        if let Some(v) = plat.2 {
            config["variant"] = v.into();
        }
        config["config"] = json!({
            "Env": [PATH_ENV],
            "WorkingDir": "/",
            "Labels": labels,
        });
        config["rootfs"] = json!({ "type": "layers", "diff_ids": diff_ids });
        config["history"] = Value::Array(history);
        let config_desc = self.json_blob(c_mt, &config);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": m_mt,
            "config": config_desc,
            "layers": layer_descs,
        });
        let mut desc = self.json_blob(m_mt, &manifest);
        desc["platform"] = plat.json();
        desc
    }

    /// An OCI artifact manifest (image manifest with artifactType) with an empty config.
    fn artifact(
        &mut self,
        artifact_type: &str,
        layers: &[(&str, &[u8], Option<&str>)],
        subject: Option<&Value>,
        annotations: &[(&str, &str)],
    ) -> Value {
        let config = self.empty_config();
        let layers: Vec<Value> = layers
            .iter()
            .map(|(lmt, data, title)| {
                let mut d = self.blob(lmt, data.to_vec());
                if let Some(t) = title {
                    d["annotations"] = json!({ TITLE: t });
                }
                d
            })
            .collect();
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI1_MANIFEST,
            "artifactType": artifact_type,
            "config": config,
            "layers": layers,
        });
        if let Some(s) = subject {
            m["subject"] = bare(s);
        }
        if !annotations.is_empty() {
            m["annotations"] = annotations_json(annotations);
        }
        let desc = self.json_blob(mt::OCI1_MANIFEST, &m);
        if let Some(s) = subject {
            self.refer(s, &desc, &m);
        }
        desc
    }

    fn oci_index(
        &mut self,
        manifests: Vec<Value>,
        artifact_type: Option<&str>,
        subject: Option<&Value>,
        annotations: &[(&str, &str)],
    ) -> Value {
        let mut m = json!({ "schemaVersion": 2, "mediaType": mt::OCI1_INDEX });
        if let Some(at) = artifact_type {
            m["artifactType"] = at.into();
        }
        m["manifests"] = Value::Array(manifests);
        if let Some(s) = subject {
            m["subject"] = bare(s);
        }
        if !annotations.is_empty() {
            m["annotations"] = annotations_json(annotations);
        }
        let desc = self.json_blob(mt::OCI1_INDEX, &m);
        if let Some(s) = subject {
            self.refer(s, &desc, &m);
        }
        desc
    }

    /// Writes the fallback tags (`sha256-<hex>`) for every subject with tagged referrers.
    fn finish_referrers(&mut self) {
        let referrers = std::mem::take(&mut self.referrers);
        for (subject, list) in referrers {
            let idx = json!({
                "schemaVersion": 2,
                "mediaType": mt::OCI1_INDEX,
                "manifests": list,
            });
            let desc = self.json_blob(mt::OCI1_INDEX, &idx);
            let tag = subject.replace(':', "-");
            let note = format!("referrers fallback tag of {}", self.name_of(&subject));
            self.tag(&tag, &desc, &note);
        }
    }

    /// A readable name for a digest: its first tag or README name, else the digest.
    fn name_of(&self, digest: &str) -> String {
        self.tags
            .iter()
            .map(|(t, d, _)| (t, d))
            .chain(self.named.iter().map(|(n, d)| (n, d)))
            .find(|(_, d)| d.as_str() == digest)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| digest.to_string())
    }

    /// Writes `oci-layout`, `index.json` and `blobs/sha256/*` into `dir` (created if missing).
    pub fn write(&self, dir: &Path) {
        let blobs = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blobs).expect("create blobs dir");
        fs::write(
            dir.join("oci-layout"),
            b"{\"imageLayoutVersion\":\"1.0.0\"}",
        )
        .expect("write oci-layout");
        let index = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI1_INDEX,
            "manifests": self.index,
        });
        let mut body = serde_json::to_vec_pretty(&index).expect("json");
        body.push(b'\n');
        fs::write(dir.join("index.json"), body).expect("write index.json");
        for (hex, data) in &self.blobs {
            fs::write(blobs.join(hex), data).expect("write blob");
        }
    }

    pub fn blob_count(&self) -> usize {
        self.blobs.len()
    }

    pub fn index_len(&self) -> usize {
        self.index.len()
    }
}

/// Descriptor without platform or annotations: for `subject` fields and `index.json` entries.
fn bare(desc: &Value) -> Value {
    json!({
        "mediaType": desc["mediaType"],
        "digest": desc["digest"],
        "size": desc["size"],
    })
}

/// Annotation maps with sorted keys, as Go's `map[string]string` and our library's `BTreeMap`
/// serialize them.
fn annotations_json(a: &[(&str, &str)]) -> Value {
    let sorted: BTreeMap<&str, &str> = a.iter().copied().collect();
    Value::Object(
        sorted
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect(),
    )
}

/// Descriptor fields in the OCI (Go) struct order, which `regclient::Descriptor` also uses, so a
/// manifest re-serialized by either keeps its digest.
pub const DESCRIPTOR_ORDER: [&str; 8] = [
    "mediaType",
    "digest",
    "size",
    "urls",
    "annotations",
    "data",
    "platform",
    "artifactType",
];

fn canonical(desc: Value) -> Value {
    let Value::Object(mut m) = desc else {
        panic!("descriptor is not an object")
    };
    let mut out = Map::new();
    for k in DESCRIPTOR_ORDER {
        if let Some(v) = m.remove(k) {
            out.insert(k.into(), v);
        }
    }
    assert!(m.is_empty(), "unexpected descriptor fields {m:?}");
    Value::Object(out)
}

fn base_layer(plat: Plat, content: &[u8], created: &'static str, src: &str) -> Layer {
    let arch = format!("{}\n", plat.name());
    Layer {
        tar: tar(
            &[("arch.txt", arch.as_bytes()), ("base.txt", content)],
            unix(created),
        ),
        created,
        created_by: format!("COPY {src} /base.txt # buildkit"),
    }
}

fn file_layer(n: u32, created: &'static str) -> Layer {
    let name = format!("layer{n}.txt");
    let body = format!("{n}\n");
    Layer {
        tar: tar(&[(&name, body.as_bytes())], unix(created)),
        created,
        created_by: format!("COPY {name} / # buildkit"),
    }
}

/// `layer.tar` from the loose files: layer1.txt..layer3.txt.
fn layers_tar() -> Vec<u8> {
    tar(
        &[
            ("layer1.txt", b"1\n"),
            ("layer2.txt", b"2\n"),
            ("layer3.txt", b"3\n"),
        ],
        unix(T_MISC),
    )
}

/// `layer-wh.tar`: a whiteout of layer2.txt and an opaque directory marker.
fn whiteout_tar() -> Vec<u8> {
    tar(
        &[
            (".wh.layer2.txt", b""),
            ("exdir/", b""),
            ("exdir/.wh..wh..opq", b""),
            ("exdir/new.txt", b"new\n"),
        ],
        unix(T_MISC),
    )
}

/// Digests the tests and the README refer to.
pub struct Refs {
    pub v2: Value,
}

/// Builds `testdata/testrepo` in memory.
pub fn build_testrepo() -> (Layout, Refs) {
    let mut l = Layout::default();
    let bases = [AMD64, ARM64, ARMV7, ARMV6];

    // b1..b3: the same Dockerfile built at different times; b3 copies a different file.
    let mut b1_layers = BTreeMap::new();
    let mut b_desc = Vec::new();
    let notes = [
        "base index, 4 platforms, base.txt \"A\", labels base=a",
        "b1's content rebuilt later: same files, different layers (check-base mismatch)",
        "base index, 4 platforms, base.txt \"B\", labels base=b",
    ];
    for (i, (tag, created, content, label, src)) in [
        ("b1", T_B1, &b"A\n"[..], "a", "base-a.txt"),
        ("b2", T_B2, b"A\n", "a", "base-a.txt"),
        ("b3", T_B3, b"B\n", "b", "base-b.txt"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut ms = Vec::new();
        for p in bases {
            let layer = base_layer(p, content, created, src);
            if tag == "b1" {
                b1_layers.insert(p.name(), layer.clone());
            }
            ms.push(l.image(p, created, &[("base", label)], &[layer], false));
        }
        let d = l.oci_index(ms, None, None, &[("org.example.version", tag)]);
        l.tag(tag, &d, notes[i]);
        b_desc.push(d);
    }
    let b1 = b_desc[0].clone();
    let b1_digest = digest_of(&b1).to_string();
    let b1_layer = |p: Plat| b1_layers[&p.name()].clone();

    // v1: amd64 + arm64 on b1, plus Docker (buildx) style attestation entries.
    let v1_l1 = file_layer(1, T_V1);
    let v1_labels = [
        ("arg_label", "arg_for_label"),
        ("base", "a"),
        ("version", "1"),
    ];
    let v1_amd = l.image(
        AMD64,
        T_V1,
        &v1_labels,
        &[b1_layer(AMD64), v1_l1.clone()],
        false,
    );
    let v1_arm = l.image(ARM64, T_V1, &v1_labels, &[b1_layer(ARM64), v1_l1], false);
    let mut attest = Vec::new();
    for (tag, plat_desc, with_subject) in [
        ("a-docker", &v1_amd, false),
        ("a-docker-oci", &v1_arm, true),
    ] {
        // buildx stores attestations as images for "unknown/unknown" whose config lists the
        // uncompressed layer as its own diff_id.
        let body = format!(
            "{{\"builder\":\"example\",\"for\":\"{}\"}}",
            digest_of(plat_desc)
        );
        let layer = l.blob("application/vnd.example.build-type+json", body.into_bytes());
        let config = json!({
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [layer["digest"]] },
        });
        let config = l.json_blob(mt::OCI1_IMAGE_CONFIG, &config);
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI1_MANIFEST,
            "config": config,
            "layers": [layer],
        });
        if with_subject {
            m["subject"] = bare(plat_desc);
        }
        let mut d = l.json_blob(mt::OCI1_MANIFEST, &m);
        if with_subject {
            l.refer(plat_desc, &d, &m);
        }
        l.tag(tag, &d, "v1 attestation manifest");
        d["annotations"] = json!({
            "vnd.docker.reference.digest": digest_of(plat_desc),
            "vnd.docker.reference.type": "attestation-manifest",
        });
        d["platform"] = json!({ "architecture": "unknown", "os": "unknown" });
        attest.push(d);
    }
    l.named
        .push(("v1 linux/amd64".into(), digest_of(&v1_amd).into()));
    l.named
        .push(("v1 linux/arm64".into(), digest_of(&v1_arm).into()));
    let mut v1_ms = vec![v1_amd, v1_arm];
    v1_ms.extend(attest);
    let v1 = l.oci_index(v1_ms, None, None, &[]);
    l.tag(
        "v1",
        &v1,
        "index linux/amd64 + linux/arm64 (label version=1) + 2 attestation entries",
    );

    // v2: three platforms, base layer shared with b1 on purpose.
    let (l1, l2) = (file_layer(1, T_V2), file_layer(2, T_V2));
    let v2_labels = [("base", "a"), ("version", "2")];
    let mut v2_ms = Vec::new();
    for p in [AMD64, ARM64, ARMV7] {
        let layers = [b1_layer(p), l1.clone(), l2.clone()];
        v2_ms.push(l.image(p, T_V2, &v2_labels, &layers, false));
    }
    let v2_children = v2_ms.clone();
    let v2 = l.oci_index(
        v2_ms,
        None,
        None,
        &[
            ("org.example.version", "v2"),
            (BASE_NAME, &format!("{REPO}:b2")),
            (BASE_DIGEST, &b1_digest),
        ],
    );
    l.tag(
        "v2",
        &v2,
        "index amd64/arm64/arm/v7, layers: b1 base + layer1 + layer2; base annotations",
    );
    let a1 = l.artifact(
        "application/example.sbom",
        &[("application/example.sbom.breakfast", b"eggs", None)],
        Some(&v2),
        &[("type", "sbom")],
    );
    l.tag("a1", &a1, "sbom referrer of v2 (\"eggs\")");
    let a2 = l.artifact(
        "application/example.signature",
        &[("application/example.signature.data", b"signed", None)],
        Some(&v2),
        &[("type", "sig")],
    );
    l.tag("a2", &a2, "signature referrer of v2 (\"signed\")");
    for (child, arms) in v2_children.iter().zip(["no arms", "64 arms", "7 arms"]) {
        l.artifact(
            "application/example.arms",
            &[("application/example.arms", arms.as_bytes(), None)],
            Some(child),
            &[],
        );
        let p = &child["platform"];
        let name = match p["variant"].as_str() {
            Some(v) => format!("v2 linux/{}/{v}", p["architecture"].as_str().unwrap_or("")),
            None => format!("v2 linux/{}", p["architecture"].as_str().unwrap_or("")),
        };
        l.named.push((name, digest_of(child).into()));
    }

    // v3: four platforms, two more layers; its referrers are untagged (slow search only).
    let (l3, dir) = (
        file_layer(3, T_V3),
        Layer {
            tar: tar(
                &[("dir/", b""), ("dir/layer.tar", &layers_tar())],
                unix(T_V3),
            ),
            created: T_V3,
            created_by: "COPY layer.tar /dir/ # buildkit".into(),
        },
    );
    let v3_labels = [("base", "a"), ("version", "3")];
    let mut v3_ms = Vec::new();
    for p in bases {
        let layers = [b1_layer(p), l1.clone(), l2.clone(), l3.clone(), dir.clone()];
        v3_ms.push(l.image(p, T_V3, &v3_labels, &layers, false));
    }
    let v3 = l.oci_index(
        v3_ms,
        None,
        None,
        &[
            ("org.example.version", "v3"),
            (BASE_NAME, &format!("{REPO}:b3")),
            (BASE_DIGEST, &b1_digest),
        ],
    );
    l.tag(
        "v3",
        &v3,
        "index amd64/arm64/arm/v7/arm/v6, v2 layers + layer3 + dir/layer.tar; untagged referrers",
    );
    for (food, kind) in [("oatmeal", "eat"), ("orange juice", "drink")] {
        let d = l.artifact(
            "application/example.sbom",
            &[("application/example.sbom.breakfast", food.as_bytes(), None)],
            Some(&v3),
            &[("type", kind)],
        );
        l.untagged(&d);
        l.named.push((
            format!("v3 referrer {food:?} (untagged)"),
            digest_of(&d).into(),
        ));
    }
    // Pushed by digest with the fallback tag removed afterwards: no `sha256-<v3>` tag.
    l.referrers.remove(digest_of(&v3));

    // Plain artifacts and an index of artifacts.
    let a3 = l.artifact(
        "application/example.layers",
        &[
            ("application/example.layer.1", b"1\n", Some("layer1.txt")),
            ("application/example.layer.2", b"2\n", Some("layer2.txt")),
            ("application/example.layer.3", b"3\n", Some("layer3.txt")),
        ],
        None,
        &[],
    );
    l.tag("a3", &a3, "artifact with 3 titled layers");
    let mut a1e = a1.clone();
    a1e["artifactType"] = "application/example.sbom".into();
    a1e["annotations"] = json!({ "type": "sbom" });
    let mut a2e = a2.clone();
    a2e["artifactType"] = "application/example.signature".into();
    a2e["annotations"] = json!({ "type": "sig" });
    let ai = l.oci_index(
        vec![canonical(a1e), canonical(a2e)],
        Some("application/example.artifacts"),
        None,
        &[],
    );
    l.tag("ai", &ai, "index of artifacts a1 and a2");

    let mut empty = l.empty_config();
    empty["data"] = "e30=".into();
    let ex_layer = l.blob("application/example.text", b"example\n".to_vec());
    let a_example = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI1_MANIFEST,
        "artifactType": "application/example",
        "config": empty,
        "layers": [ex_layer],
    });
    let a_example = l.json_blob(mt::OCI1_MANIFEST, &a_example);
    l.tag(
        "a-example",
        &a_example,
        "artifact, config carries data e30=",
    );

    let meta = format!("sha256-{}.{}.meta", hex_of(&v1), &hex_of(&v3)[..16]);
    l.tag(&meta, &v3, "digest tag of v1 pointing at v3");

    // child + loop: loop lists child and is also a referrer of it.
    let child_layer = Layer {
        tar: tar(&[("child.txt", b"child\n")], unix(T_MISC)),
        created: T_MISC,
        created_by: "COPY child.txt / # buildkit".into(),
    };
    let child = l.image(AMD64, T_MISC, &[("child", "yes")], &[child_layer], false);
    l.tag("child", &child, "image, subject of loop");
    let lp = l.oci_index(
        vec![child.clone()],
        Some("application/example.loop"),
        Some(&child),
        &[],
    );
    l.tag("loop", &lp, "index listing child and referring to it");

    let mirror = l.artifact(
        "application/example.mirror",
        &[("application/example.mirror", b"mirror\n", None)],
        None,
        &[],
    );
    l.tag("mirror", &mirror, "artifact");
    let self_tag = format!("sha256-{}", hex_of(&mirror));
    l.tag(
        &self_tag,
        &mirror,
        "digest tag of mirror pointing at itself",
    );

    // docker: schema2 manifest list, built separately so no blob is shared with the OCI images.
    let mut dms = Vec::new();
    for p in [AMD64, ARM64] {
        let layer = base_layer(p, b"A\n", T_MISC, "base-a.txt");
        dms.push(l.image(p, T_MISC, &[("base", "docker")], &[layer], true));
    }
    let list = json!({
        "schemaVersion": 2,
        "mediaType": mt::DOCKER2_MANIFEST_LIST,
        "manifests": dms,
    });
    let docker = l.json_blob(mt::DOCKER2_MANIFEST_LIST, &list);
    l.tag("docker", &docker, "Docker manifest list amd64/arm64");

    l.finish_referrers();
    (l, Refs { v2 })
}

/// Builds `testdata/external`: referrers of the testrepo v2 index kept in another repository.
pub fn build_external(v2: &Value) -> Layout {
    let mut l = Layout::default();
    // Only names the subject in the README; the manifest itself lives in testrepo.
    l.named.push(("testrepo v2".into(), digest_of(v2).into()));
    for (tag, food, pref) in [("a3", "bacon", "1"), ("a4", "ham", "2")] {
        let d = l.artifact(
            "application/example.sbom",
            &[("application/example.sbom.breakfast", food.as_bytes(), None)],
            Some(v2),
            &[("preference", pref)],
        );
        l.tag(tag, &d, &format!("sbom referrer of testrepo v2 ({food:?})"));
    }
    l.finish_referrers();
    l
}

pub fn write_testrepo(dir: &Path) {
    build_testrepo().0.write(dir);
}

pub fn write_external(dir: &Path) {
    let (_, refs) = build_testrepo();
    build_external(&refs.v2).write(dir);
}

/// Loose files for layer and artifact tests.
pub fn write_loose(dir: &Path) {
    fs::create_dir_all(dir).expect("create testdata dir");
    let files: [(&str, Vec<u8>); 7] = [
        ("base-a.txt", b"A\n".to_vec()),
        ("base-b.txt", b"B\n".to_vec()),
        ("layer1.txt", b"1\n".to_vec()),
        ("layer2.txt", b"2\n".to_vec()),
        ("layer3.txt", b"3\n".to_vec()),
        ("layer.tar", layers_tar()),
        ("layer-wh.tar", whiteout_tar()),
    ];
    for (name, data) in files {
        fs::write(dir.join(name), data).expect("write loose file");
    }
}

/// README.md describing every tag; generated so its digests cannot drift from the layouts.
pub fn readme() -> String {
    let (repo, refs) = build_testrepo();
    let ext = build_external(&refs.v2);
    let mut s = String::new();
    s.push_str(
        "# testdata\n\n\
         Generated by `tests/support/gen.rs`; do not edit by hand. `cargo test --test testdata` checks\n\
         that this tree matches the generator byte for byte; `REGEN_TESTDATA=1 cargo test --test testdata`\n\
         rewrites it. Tests must copy a layout before writing to it (`support::testrepo`).\n\n\
         All images are OCI unless noted, with fixed timestamps, tar entries owned by 0:0 with fixed\n\
         modes/mtimes, and gzip headers with mtime 0. Child manifests of indexes are not listed in\n\
         `index.json`; they are reachable only through their index.\n\n",
    );
    let _ = writeln!(
        s,
        "## testrepo ({} blobs, {} index.json entries)\n",
        repo.blob_count(),
        repo.index_len()
    );
    table(&mut s, &repo.tags);
    s.push_str("\nUntagged and child manifests:\n\n");
    for (name, digest) in &repo.named {
        let _ = writeln!(s, "- {name}: `{digest}`");
    }
    let _ = writeln!(
        s,
        "\n## external ({} blobs, {} index.json entries)\n\n\
         Referrers of testrepo `v2` stored in a separate repository (external referrers).\n",
        ext.blob_count(),
        ext.index_len()
    );
    table(&mut s, &ext.tags);
    s.push_str(
        "\n## Loose files\n\n\
         - `base-a.txt`, `base-b.txt`, `layer1.txt`..`layer3.txt`: file contents used in the layers\n\
         - `layer.tar`: `layer1.txt`..`layer3.txt`\n\
         - `layer-wh.tar`: whiteout `.wh.layer2.txt`, opaque `exdir/.wh..wh..opq`, `exdir/new.txt`\n",
    );
    s
}

fn table(s: &mut String, tags: &[(String, String, String)]) {
    s.push_str("| tag | digest | content |\n|---|---|---|\n");
    for (tag, digest, note) in tags {
        let _ = writeln!(s, "| `{tag}` | `{digest}` | {note} |");
    }
}

/// Writes the whole `testdata/` tree into `dir`.
pub fn write_all(dir: &Path) {
    write_testrepo(&dir.join("testrepo"));
    write_external(&dir.join("external"));
    write_loose(dir);
    fs::write(dir.join("README.md"), readme()).expect("write README.md");
    // Blobs are named by their digest: no end-of-line conversion may ever touch them.
    fs::write(dir.join(".gitattributes"), "* -text\n").expect("write .gitattributes");
}
