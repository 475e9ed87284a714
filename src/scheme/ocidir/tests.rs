//! Tests of the layout scheme, each in its own temp directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::index::{CREATED, REF_NAME};
use super::*;
use crate::manifest::{Body, ImageManifest};
use crate::referrer::{self, ListOpts};

const CREATED_AT: &str = "2020-01-02T03:04:05Z";

/// A unique temp directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "regclient-ocidir-{name}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        TempDir(dir)
    }

    /// A reference into the layout, `suffix` being `:tag`, `@digest` or empty.
    fn r(&self, suffix: &str) -> Reference {
        Reference::parse(&format!("ocidir://{}{suffix}", self.0.display())).unwrap()
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scheme() -> OciDir {
    OciDir::new(OciDirOpts {
        gc: true,
        created: Some(CREATED_AT.to_string()),
    })
}

fn put_blob(s: &OciDir, r: &Reference, data: &[u8], media_type: &str) -> Descriptor {
    let expect = BlobExpect::from_descriptor(&Descriptor::for_bytes(media_type, data));
    s.blob_put(r, &expect, &mut &data[..]).unwrap()
}

/// Pushes the blobs of a small image and returns its (unpushed) manifest; `n` makes the layer
/// unique.
fn image(s: &OciDir, r: &Reference, n: &str, subject: Option<&Manifest>) -> Manifest {
    let config = put_blob(s, r, b"{}", mt::OCI1_EMPTY);
    let layer = put_blob(s, r, format!("layer {n}").as_bytes(), mt::OCI1_LAYER);
    let mut annotations = BTreeMap::new();
    annotations.insert("n".to_string(), n.to_string());
    let body = ImageManifest {
        schema_version: 2,
        media_type: mt::OCI1_MANIFEST.into(),
        artifact_type: if subject.is_some() {
            format!("application/x-{n}")
        } else {
            String::new()
        },
        config: Some(config),
        layers: vec![layer],
        subject: subject.map(|m| m.descriptor()),
        annotations,
    };
    Manifest::from_body(Body::Image(body), Default::default()).unwrap()
}

fn read_index_file(dir: &TempDir) -> Index {
    serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap()
}

fn blob_files(dir: &TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("blobs/sha256"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(-86_401), "1969-12-30T23:59:59Z");
}

#[test]
fn put_get_head_by_tag_and_digest() {
    let dir = TempDir::new("putget");
    let s = scheme();
    let r = dir.r(":v1");
    let m = image(&s, &r, "a", None);
    s.manifest_put(&r, &m, PutOpts::default()).unwrap();

    let layout = std::fs::read_to_string(dir.path().join("oci-layout")).unwrap();
    assert_eq!(layout, r#"{"imageLayoutVersion":"1.0.0"}"#);
    let idx = read_index_file(&dir);
    assert_eq!(idx.schema_version, 2);
    assert_eq!(idx.media_type, mt::OCI1_INDEX);
    assert_eq!(idx.manifests.len(), 1);
    assert_eq!(idx.manifests[0].annotations[REF_NAME], "v1");
    assert_eq!(idx.manifests[0].annotations[CREATED], CREATED_AT);
    assert!(idx.manifests[0].platform.is_none());

    let got = s.manifest_get(&r).unwrap();
    assert_eq!(got.digest(), m.digest());
    assert_eq!(got.raw(), m.raw());
    let by_digest = s.manifest_get(&dir.r(&format!("@{}", m.digest()))).unwrap();
    assert_eq!(by_digest.media_type(), mt::OCI1_MANIFEST);
    let head = s.manifest_head(&r).unwrap();
    assert_eq!(head.media_type, mt::OCI1_MANIFEST);
    assert_eq!(head.digest.as_ref(), Some(m.digest()));
    assert_eq!(head.size, Some(m.raw().len() as i64));

    let e = s.manifest_get(&dir.r(":v9")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string().contains("tag v9 not found in ocidir://"),
        "{e}"
    );
    let e = s
        .manifest_head(&dir.r(&format!("@{}", Digest::sha256(b"nope"))))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn no_tag_means_latest() {
    let dir = TempDir::new("latest");
    let s = scheme();
    let r = dir.r("");
    let m = image(&s, &r, "a", None);
    s.manifest_put(&r, &m, PutOpts::default()).unwrap();
    assert_eq!(
        s.tag_list(&r, &TagOpts::default()).unwrap().tags,
        ["latest"]
    );
    assert_eq!(s.manifest_get(&r).unwrap().digest(), m.digest());
    assert_eq!(
        s.manifest_get(&dir.r(":latest")).unwrap().digest(),
        m.digest()
    );
}

#[test]
fn index_rules_via_put() {
    let dir = TempDir::new("rules");
    let s = scheme();
    let r = dir.r(":v1");
    let a = image(&s, &r, "a", None);
    let b = image(&s, &r, "b", None);
    let c = image(&s, &r, "c", None);
    s.manifest_put(&r, &a, PutOpts::default()).unwrap();
    s.manifest_put(&r, &b, PutOpts::default()).unwrap();
    let idx = read_index_file(&dir);
    assert_eq!(idx.manifests.len(), 1, "tag v1 replaced, not duplicated");
    assert_eq!(&idx.manifests[0].digest, b.digest());

    // By digest only: one untagged entry per digest, however often it is pushed.
    let by_a = dir.r(&format!("@{}", a.digest()));
    s.manifest_put(&by_a, &a, PutOpts::default()).unwrap();
    s.manifest_put(&by_a, &a, PutOpts::default()).unwrap();
    let idx = read_index_file(&dir);
    assert_eq!(idx.manifests.len(), 2);
    let untagged: Vec<_> = idx
        .manifests
        .iter()
        .filter(|d| !d.annotations.contains_key(REF_NAME))
        .collect();
    assert_eq!(untagged.len(), 1);
    assert_eq!(&untagged[0].digest, a.digest());

    // A child is stored but not indexed.
    let by_c = dir.r(&format!("@{}", c.digest()));
    s.manifest_put(&by_c, &c, PutOpts { child: true }).unwrap();
    assert_eq!(read_index_file(&dir).manifests.len(), 2);
    assert_eq!(s.manifest_get(&by_c).unwrap().digest(), c.digest());

    // A reference digest that does not match the manifest is refused.
    let e = s.manifest_put(&by_c, &a, PutOpts::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch);
}

#[test]
fn full_ref_name_lookup() {
    let dir = TempDir::new("fullname");
    let s = scheme();
    let r = dir.r(":tmp");
    let m = image(&s, &r, "a", None);
    s.manifest_put(&r, &m, PutOpts::default()).unwrap();
    // Rewrite the entry as another tool would name it.
    let mut idx = read_index_file(&dir);
    idx.manifests[0]
        .annotations
        .insert(REF_NAME.into(), "example.com/repo:v3".into());
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&idx).unwrap(),
    )
    .unwrap();
    assert_eq!(s.manifest_get(&dir.r(":v3")).unwrap().digest(), m.digest());
    assert_eq!(s.tag_list(&r, &TagOpts::default()).unwrap().tags, ["v3"]);
    assert_eq!(
        s.manifest_get(&dir.r(":tmp")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn blob_put_verify_failure_leaves_nothing() {
    let dir = TempDir::new("blobbad");
    let s = scheme();
    let r = dir.r("");
    let expect = BlobExpect {
        digest: Some(Digest::sha256(b"good")),
        size: Some(4),
        media_type: mt::OCI1_LAYER.into(),
    };
    let e = s.blob_put(&r, &expect, &mut &b"evil"[..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch);
    let e = s.blob_put(&r, &expect, &mut &b"goo"[..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ShortRead);
    let e = s.blob_put(&r, &expect, &mut &b"goodbye"[..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SizeLimit);
    // Not even a temp file is left behind.
    assert!(blob_files(&dir).is_empty(), "{:?}", blob_files(&dir));
    assert_eq!(
        s.blob_head(&r, &Descriptor::for_bytes("", b"good"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn blob_put_unknown_digest_get_head_delete() {
    let dir = TempDir::new("blob");
    let s = scheme();
    let r = dir.r("");
    let expect = BlobExpect::default();
    let d = s.blob_put(&r, &expect, &mut &b"hello"[..]).unwrap();
    assert_eq!(d.digest, Digest::sha256(b"hello"));
    assert_eq!(d.size, 5);
    assert!(dir.path().join("index.json").is_file());
    assert_eq!(blob_files(&dir), [Digest::sha256(b"hello").hex()]);

    // Size unknown to the caller: the stored size is used, the digest still checked.
    let mut unknown = d.clone();
    unknown.size = 0;
    let data = s.blob_get(&r, &unknown).unwrap().read_all(100).unwrap();
    assert_eq!(data, b"hello");
    assert_eq!(s.blob_head(&r, &unknown).unwrap().size, 5);

    // Known digest already stored: the stream is not read at all.
    struct Refuse;
    impl Read for Refuse {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("must not be read"))
        }
    }
    let again = s
        .blob_put(&r, &BlobExpect::from_descriptor(&d), &mut Refuse)
        .unwrap();
    assert_eq!(again.digest, d.digest);

    s.blob_delete(&r, &d).unwrap();
    assert_eq!(s.blob_head(&r, &d).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        s.blob_delete(&r, &d).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn corrupt_manifest_blob_detected() {
    let dir = TempDir::new("corrupt");
    let s = scheme();
    let r = dir.r(":v1");
    let m = image(&s, &r, "a", None);
    s.manifest_put(&r, &m, PutOpts::default()).unwrap();
    let path = dir.path().join("blobs/sha256").join(m.digest().hex());
    let mut raw = std::fs::read(&path).unwrap();
    raw.extend_from_slice(b"  ");
    std::fs::write(&path, raw).unwrap();
    assert_eq!(
        s.manifest_get(&r).unwrap_err().kind(),
        ErrorKind::DigestMismatch
    );
    // A corrupted blob read through blob_get fails at EOF too.
    let mut rdr = s.blob_get(&r, &m.descriptor()).unwrap();
    let mut sink = Vec::new();
    assert!(rdr.read_to_end(&mut sink).is_err());
}

#[test]
fn missing_layout_is_not_found() {
    let dir = TempDir::new("missing");
    let s = scheme();
    let r = dir.r(":v1");
    for e in [
        s.manifest_get(&r).unwrap_err(),
        s.ping(&r).unwrap_err(),
        s.tag_list(&r, &TagOpts::default()).unwrap_err(),
        s.tag_delete(&r).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
    // Reads and failed deletes never create the layout.
    assert!(!dir.path().exists());
}

#[test]
fn malformed_index_and_bad_version() {
    let dir = TempDir::new("malformed");
    let s = scheme();
    let r = dir.r(":v1");
    let m = image(&s, &r, "a", None);
    s.manifest_put(&r, &m, PutOpts::default()).unwrap();
    let full = std::fs::read(dir.path().join("index.json")).unwrap();
    std::fs::write(dir.path().join("index.json"), &full[..full.len() / 2]).unwrap();
    let e = s.manifest_get(&r).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert!(e.to_string().contains("index.json"), "{e}");
    // A write must not replace an index it could not read.
    let e = s.manifest_put(&r, &m, PutOpts::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Parse);
    assert_eq!(
        std::fs::read(dir.path().join("index.json")).unwrap(),
        &full[..full.len() / 2]
    );

    std::fs::write(dir.path().join("index.json"), &full).unwrap();
    std::fs::write(
        dir.path().join("oci-layout"),
        r#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    assert_eq!(s.ping(&r).unwrap_err().kind(), ErrorKind::Unsupported);
    assert_eq!(
        s.manifest_put(&r, &m, PutOpts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
}

#[test]
fn tag_list_and_delete() {
    let dir = TempDir::new("tags");
    let s = scheme();
    let a = image(&s, &dir.r(""), "a", None);
    for tag in ["v2", "v1", "v10"] {
        s.manifest_put(&dir.r(&format!(":{tag}")), &a, PutOpts::default())
            .unwrap();
    }
    let list = s.tag_list(&dir.r(""), &TagOpts::default()).unwrap();
    assert_eq!(list.tags, ["v1", "v10", "v2"]);
    assert_eq!(list.media_type, mt::OCI1_INDEX);
    assert_eq!(
        list.raw,
        std::fs::read(dir.path().join("index.json")).unwrap()
    );
    assert_eq!(list.name, dir.path().display().to_string());

    s.tag_delete(&dir.r(":v1")).unwrap();
    let list = s.tag_list(&dir.r(""), &TagOpts::default()).unwrap();
    assert_eq!(list.tags, ["v10", "v2"]);
    assert_eq!(
        s.tag_delete(&dir.r(":v1")).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Deleting a tag keeps the manifest reachable through its other tags.
    assert_eq!(s.manifest_get(&dir.r(":v2")).unwrap().digest(), a.digest());
    assert_eq!(
        s.manifest_delete(&dir.r(":v2"), DeleteOpts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::MissingTagOrDigest
    );
}

#[test]
fn manifest_delete_removes_entries_and_blob() {
    let dir = TempDir::new("mdelete");
    let s = scheme();
    let a = image(&s, &dir.r(""), "a", None);
    let b = image(&s, &dir.r(""), "b", None);
    s.manifest_put(&dir.r(":v1"), &a, PutOpts::default())
        .unwrap();
    s.manifest_put(&dir.r(":v2"), &a, PutOpts::default())
        .unwrap();
    s.manifest_put(&dir.r(":v3"), &b, PutOpts::default())
        .unwrap();
    let by_a = dir.r(&format!("@{}", a.digest()));
    s.manifest_delete(&by_a, DeleteOpts::default()).unwrap();
    let list = s.tag_list(&dir.r(""), &TagOpts::default()).unwrap();
    assert_eq!(list.tags, ["v3"]);
    assert!(!dir
        .path()
        .join("blobs/sha256")
        .join(a.digest().hex())
        .exists());
    assert_eq!(
        s.manifest_delete(&by_a, DeleteOpts::default())
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

fn referrers(s: &OciDir, dir: &TempDir, subject: &Manifest, slow: bool) -> Vec<Descriptor> {
    let r = dir.r("");
    referrer::list(
        s,
        &r,
        &r,
        subject.digest(),
        &ListOpts {
            slow_search: slow,
            ..Default::default()
        },
    )
    .unwrap()
    .descriptors
}

#[test]
fn referrers_fallback_on_put_and_delete() {
    let dir = TempDir::new("referrers");
    let s = scheme();
    let subject = image(&s, &dir.r(""), "subject", None);
    s.manifest_put(&dir.r(":v1"), &subject, PutOpts::default())
        .unwrap();
    let sig = image(&s, &dir.r(""), "sig", Some(&subject));
    let sbom = image(&s, &dir.r(""), "sbom", Some(&subject));
    for m in [&sig, &sbom] {
        s.manifest_put(&dir.r(&format!("@{}", m.digest())), m, PutOpts::default())
            .unwrap();
    }
    // Pushing again does not duplicate the fallback entry.
    s.manifest_put(
        &dir.r(&format!("@{}", sig.digest())),
        &sig,
        PutOpts::default(),
    )
    .unwrap();
    let found = referrers(&s, &dir, &subject, false);
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].artifact_type, "application/x-sig");
    assert_eq!(found[0].annotations["n"], "sig");
    assert_eq!(found[1].artifact_type, "application/x-sbom");
    let fallback_tag = subject.digest().fallback_tag();
    assert!(s
        .tag_list(&dir.r(""), &TagOpts::default())
        .unwrap()
        .tags
        .contains(&fallback_tag));

    s.manifest_delete(
        &dir.r(&format!("@{}", sig.digest())),
        DeleteOpts {
            check_referrers: true,
        },
    )
    .unwrap();
    let found = referrers(&s, &dir, &subject, false);
    assert_eq!(found.len(), 1);
    assert_eq!(&found[0].digest, sbom.digest());

    s.manifest_delete(
        &dir.r(&format!("@{}", sbom.digest())),
        DeleteOpts::default(),
    )
    .unwrap();
    assert!(referrers(&s, &dir, &subject, false).is_empty());
    assert_eq!(
        s.tag_list(&dir.r(""), &TagOpts::default()).unwrap().tags,
        ["v1"]
    );
}

#[test]
fn slow_scan_finds_unlisted_referrers() {
    let dir = TempDir::new("slowscan");
    let s = scheme();
    let subject = image(&s, &dir.r(""), "subject", None);
    s.manifest_put(&dir.r(":v1"), &subject, PutOpts::default())
        .unwrap();
    let sig = image(&s, &dir.r(""), "sig", Some(&subject));
    s.manifest_put(
        &dir.r(&format!("@{}", sig.digest())),
        &sig,
        PutOpts::default(),
    )
    .unwrap();
    // Drop the fallback tag, as if another tool had pushed the referrer without one.
    s.tag_delete(&dir.r(&format!(":{}", subject.digest().fallback_tag())))
        .unwrap();
    let scan = s.manifest_scan(&dir.r("")).unwrap().unwrap();
    assert_eq!(scan.len(), 2);
    assert!(referrers(&s, &dir, &subject, false).is_empty());
    let found = referrers(&s, &dir, &subject, true);
    assert_eq!(found.len(), 1);
    assert_eq!(&found[0].digest, sig.digest());
    assert_eq!(found[0].artifact_type, "application/x-sig");
}

#[test]
fn gc_only_when_modified() {
    let dir = TempDir::new("gc");
    let s = scheme();
    let r = dir.r(":v1");
    let m = image(&s, &r, "a", None);
    s.manifest_put(&r, &m, PutOpts::default()).unwrap();
    let sig = image(&s, &r, "sig", Some(&m));
    s.manifest_put(
        &dir.r(&format!("@{}", sig.digest())),
        &sig,
        PutOpts::default(),
    )
    .unwrap();
    // The sig was pushed by digest, so drop its untagged entry: only the fallback tag keeps it.
    let mut idx = read_index_file(&dir);
    idx.manifests.retain(|d| &d.digest != sig.digest());
    std::fs::write(
        dir.path().join("index.json"),
        serde_json::to_vec(&idx).unwrap(),
    )
    .unwrap();
    let orphan = put_blob(&s, &r, b"orphan", mt::OCI1_LAYER);
    let alg_dir = dir.path().join("blobs/sha256");
    let stale = alg_dir.join(format!(".x{}1-old", fs::TEMP_MARKER));
    let fresh = alg_dir.join(format!(".x{}1-new", fs::TEMP_MARKER));
    std::fs::write(&stale, b"x").unwrap();
    std::fs::write(&fresh, b"x").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(SystemTime::now() - gc::STALE_TEMP * 2)
        .unwrap();
    let before = blob_files(&dir);

    // Another instance that changed nothing leaves the layout alone.
    let other = scheme();
    other.close(&r).unwrap();
    assert_eq!(blob_files(&dir), before);
    // So does an instance with GC disabled.
    let no_gc = OciDir::new(OciDirOpts {
        gc: false,
        created: None,
    });
    no_gc
        .blob_put(&r, &BlobExpect::default(), &mut &b"x"[..])
        .unwrap();
    no_gc.close(&r).unwrap();
    assert!(alg_dir.join(Digest::sha256(b"x").hex()).exists());

    s.close(&r).unwrap();
    assert!(!alg_dir.join(orphan.digest.hex()).exists());
    assert!(!alg_dir.join(Digest::sha256(b"x").hex()).exists());
    assert!(!stale.exists());
    assert!(fresh.exists());
    // Everything reachable survived, referrers included.
    assert_eq!(s.manifest_get(&r).unwrap().digest(), m.digest());
    for d in m.references().iter().chain(sig.references().iter()) {
        assert!(alg_dir.join(d.digest.hex()).exists(), "{}", d.digest);
    }
    assert_eq!(referrers(&s, &dir, &m, false).len(), 1);
    assert!(s
        .manifest_get(&dir.r(&format!("@{}", sig.digest())))
        .is_ok());

    // Untagging and closing again collects the image.
    s.tag_delete(&r).unwrap();
    s.tag_delete(&dir.r(&format!(":{}", m.digest().fallback_tag())))
        .unwrap();
    s.close(&r).unwrap();
    assert_eq!(
        blob_files(&dir),
        [fresh.file_name().unwrap().to_str().unwrap()]
    );
}

#[test]
fn concurrent_writers_keep_every_tag() {
    let dir = TempDir::new("concurrent");
    let a = scheme();
    let b = scheme();
    let per = 20;
    std::thread::scope(|scope| {
        for (who, s) in [("a", &a), ("b", &b)] {
            let dir = &dir;
            scope.spawn(move || {
                for i in 0..per {
                    let r = dir.r(&format!(":{who}{i}"));
                    let m = image(s, &r, &format!("{who}{i}"), None);
                    s.manifest_put(&r, &m, PutOpts::default()).unwrap();
                }
            });
        }
    });
    let tags = a.tag_list(&dir.r(""), &TagOpts::default()).unwrap().tags;
    assert_eq!(tags.len(), 2 * per, "{tags:?}");
    a.close(&dir.r("")).unwrap();
    b.close(&dir.r("")).unwrap();
    for t in &tags {
        let m = b.manifest_get(&dir.r(&format!(":{t}"))).unwrap();
        for d in m.references() {
            b.blob_head(&dir.r(""), &d).unwrap();
        }
    }
}

#[test]
fn gc_spares_blobs_of_another_active_writer() {
    // Two instances stand for two processes: each holds its own file locks.
    let dir = TempDir::new("gc-writers");
    let a = scheme();
    let b = scheme();
    let r = dir.r(":v1");
    // Writer A has pushed a layer whose manifest is not written yet.
    let pending = put_blob(&a, &r, b"pending layer", mt::OCI1_LAYER);
    // Writer B finishes a whole image and closes: its GC must leave A's blob alone.
    let m = image(&b, &r, "b", None);
    b.manifest_put(&r, &m, PutOpts::default()).unwrap();
    b.close(&r).unwrap();
    assert!(blob_files(&dir).contains(&pending.digest.hex().to_string()));
    // Once A is done without referencing it, the next GC by anyone may collect it.
    a.close(&r).unwrap();
    b.manifest_put(&r, &m, PutOpts::default()).unwrap();
    b.close(&r).unwrap();
    assert!(!blob_files(&dir).contains(&pending.digest.hex().to_string()));
}
