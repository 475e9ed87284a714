use std::collections::BTreeMap;
use std::sync::Mutex;

use super::*;
use crate::manifest::{ImageManifest, Index};
use crate::scheme::memory::MemScheme;

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

fn quiet(_: &Event) {}

fn image(cfg: &Descriptor, layers: Vec<Descriptor>, subject: Option<Descriptor>) -> Manifest {
    Manifest::from_body(
        Body::Image(ImageManifest {
            schema_version: 2,
            media_type: mt::OCI1_MANIFEST.into(),
            config: Some(cfg.clone()),
            layers,
            subject,
            ..Default::default()
        }),
        Default::default(),
    )
    .unwrap()
}

fn index(children: Vec<Descriptor>, subject: Option<Descriptor>) -> Manifest {
    Manifest::from_body(
        Body::Index(Index {
            schema_version: 2,
            media_type: mt::OCI1_INDEX.into(),
            manifests: children,
            subject,
            ..Default::default()
        }),
        Default::default(),
    )
    .unwrap()
}

/// An artifact referring to `subject`, with one layer.
fn artifact(s: &MemScheme, repo: &Reference, kind: &str, subject: &Manifest) -> Manifest {
    let cfg = s.add_blob(repo, mt::OCI1_EMPTY, b"{}");
    let layer = s.add_blob(
        repo,
        "text/plain",
        format!("{kind} of {}", subject.digest()).as_bytes(),
    );
    let m = Manifest::from_body(
        Body::Image(ImageManifest {
            schema_version: 2,
            media_type: mt::OCI1_MANIFEST.into(),
            artifact_type: kind.into(),
            config: Some(cfg),
            layers: vec![layer],
            subject: Some(subject.descriptor()),
            annotations: BTreeMap::from([("kind".to_string(), kind.to_string())]),
        }),
        Default::default(),
    )
    .unwrap();
    // Through the scheme so the fallback referrers tag is maintained.
    s.manifest_put(
        &repo.set_digest(&m.digest().to_string()),
        &m,
        PutOpts::default(),
    )
    .unwrap();
    m
}

fn with_platform(m: &Manifest, p: &str) -> Descriptor {
    let mut d = m.descriptor();
    d.platform = Some(Platform::parse(p).unwrap());
    d
}

/// A two-platform index tagged `v1` whose images share a base layer.
struct MultiArch {
    idx: Manifest,
    amd64: Manifest,
    arm64: Manifest,
    base: Descriptor,
}

fn multi_arch(s: &MemScheme, repo: &Reference) -> MultiArch {
    let base = s.add_blob(repo, mt::OCI1_LAYER_GZIP, b"shared base layer");
    let l1 = s.add_blob(repo, mt::OCI1_LAYER_GZIP, b"amd64 layer");
    let l2 = s.add_blob(repo, mt::OCI1_LAYER_GZIP, b"arm64 layer");
    let c1 = s.add_blob(
        repo,
        mt::OCI1_IMAGE_CONFIG,
        br#"{"architecture":"amd64","os":"linux"}"#,
    );
    let c2 = s.add_blob(
        repo,
        mt::OCI1_IMAGE_CONFIG,
        br#"{"architecture":"arm64","os":"linux"}"#,
    );
    let amd64 = image(&c1, vec![base.clone(), l1], None);
    let arm64 = image(&c2, vec![base.clone(), l2], None);
    s.add_manifest(repo, &amd64);
    s.add_manifest(repo, &arm64);
    let idx = index(
        vec![
            with_platform(&amd64, "linux/amd64"),
            with_platform(&arm64, "linux/arm64"),
        ],
        None,
    );
    s.add_manifest(&repo.set_tag("v1"), &idx);
    MultiArch {
        idx,
        amd64,
        arm64,
        base,
    }
}

fn copy(s: &MemScheme, src: &Reference, tgt: &Reference, opts: &CopyOpts) -> Result<CopyReport> {
    image_copy(s, src, s, tgt, opts, &pool(4), &quiet)
}

#[test]
fn multi_platform_copy() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:v1");
    let f = multi_arch(&s, &src);
    let events = Mutex::new(Vec::new());
    let rep = image_copy(&s, &src, &s, &tgt, &CopyOpts::default(), &pool(4), &|e| {
        events.lock().unwrap().push(e.clone())
    })
    .unwrap();
    // 2 configs + 3 distinct layers: the shared base goes once.
    assert_eq!(s.calls("blob_put"), 5);
    assert_eq!(s.calls("blob_mount"), 0, "different registries never mount");
    assert_eq!(rep.blobs_copied, 5);
    assert!(!rep.skipped);
    assert_eq!(rep.digest, *f.idx.digest());
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(f.idx.digest()));
    assert!(s.has_blob(&tgt, &f.base.digest));
    let puts = s.puts();
    assert_eq!(puts.len(), 3);
    assert_eq!(&puts[2].digest, f.idx.digest(), "index pushed last");
    assert_eq!(puts[2].tag, "v1");
    assert!(!puts[2].child);
    for p in &puts[..2] {
        assert!(p.child && p.tag.is_empty());
        assert!(&p.digest == f.amd64.digest() || &p.digest == f.arm64.digest());
    }
    // Copied manifests are byte-identical.
    let got = s.manifest_get(&tgt).unwrap();
    assert_eq!(got.raw(), f.idx.raw());
    let events = events.into_inner().unwrap();
    let finished = events
        .iter()
        .filter(|e| matches!(e, Event::Finished { mounted: false, .. }))
        .count();
    assert_eq!(finished, 5);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Plan {
            manifests: 3,
            blobs: 5
        }
    )));
    let pushed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::ManifestPushed { digest, .. } => Some(digest.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(pushed.last(), Some(f.idx.digest()));
}

#[test]
fn noop_copy_is_two_calls() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:v1");
    let f = multi_arch(&s, &src);
    copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    s.reset_calls();
    let rep = copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert!(rep.skipped);
    assert_eq!(rep.digest, *f.idx.digest());
    assert_eq!(s.total_calls(), 2);
    assert_eq!(s.calls("manifest_head"), 2);
}

/// A second tag of the same image, copied with the run's `Seen` and the caller's target HEAD:
/// one GET of the source and one put of the tag, no HEAD of children already pushed.
#[test]
fn seen_and_target_head_skip_repeated_checks() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let f = multi_arch(&s, &src);
    s.add_manifest(&src.set_tag("v2"), &f.idx);
    let seen: Arc<Seen> = Default::default();
    let opts = CopyOpts {
        seen: Some(seen.clone()),
        ..Default::default()
    };
    copy(&s, &src, &r("other.example/dst:v1"), &opts).unwrap();
    assert!(seen.has(&r("other.example/dst").set_digest(&f.amd64.digest().to_string())));
    s.reset_calls();
    let opts = CopyOpts {
        target_head: Some(None),
        ..opts
    };
    let rep = copy(&s, &src.set_tag("v2"), &r("other.example/dst:v2"), &opts).unwrap();
    assert_eq!(rep.digest, *f.idx.digest());
    assert_eq!(
        s.calls("manifest_head"),
        0,
        "children known, target known absent"
    );
    assert_eq!(s.calls("manifest_get"), 1);
    assert_eq!(s.calls("manifest_put"), 1);
    assert_eq!(s.tags(&r("other.example/dst")), ["v1", "v2"]);
    // Without the memo each child is checked again.
    s.reset_calls();
    copy(
        &s,
        &src.set_tag("v2"),
        &r("other.example/dst:v3"),
        &CopyOpts::default(),
    )
    .unwrap();
    assert_eq!(s.calls("manifest_head"), 3, "the tag and both children");
}

/// Two images sharing a base layer, copied one after the other with one `Seen`: the second
/// copy neither checks nor sends the shared layer.
#[test]
fn seen_covers_blobs_shared_between_images() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let f = multi_arch(&s, &src);
    s.add_manifest(&src.set_tag("a"), &f.amd64);
    s.add_manifest(&src.set_tag("b"), &f.arm64);
    let opts = CopyOpts {
        seen: Some(Default::default()),
        ..Default::default()
    };
    copy(&s, &src.set_tag("a"), &r("other.example/dst:a"), &opts).unwrap();
    s.reset_calls();
    let rep = copy(&s, &src.set_tag("b"), &r("other.example/dst:b"), &opts).unwrap();
    // Config and own layer are new; the base layer is known from the first copy.
    assert_eq!(s.calls("blob_head"), 2);
    assert_eq!(rep.blobs_copied, 2);
    assert_eq!(rep.blobs_skipped, 1);
    let dst = r("other.example/dst");
    assert!(s
        .blob_head(&dst, &f.base)
        .is_ok_and(|d| d.digest == f.base.digest));
}

/// A copy whose deadline has passed stops with `Canceled` before writing anything.
#[test]
fn deadline_stops_the_copy_before_any_write() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    multi_arch(&s, &src);
    let opts = CopyOpts {
        deadline: Some(std::time::Instant::now()),
        ..Default::default()
    };
    s.reset_calls();
    let err = copy(&s, &src, &r("other.example/dst:v1"), &opts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Canceled, "{err}");
    assert!(err.to_string().contains("deadline"), "{err}");
    assert_eq!(s.calls("blob_put") + s.calls("manifest_put"), 0);
    assert!(s.tags(&r("other.example/dst")).is_empty());
}

#[test]
fn head_without_digest_falls_back_to_get() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:v1");
    let f = multi_arch(&s, &src);
    s.set_head_without_digest(true);
    let rep = copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert_eq!(rep.digest, *f.idx.digest());
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(f.idx.digest()));
}

#[test]
fn fast_and_force_recursive() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:v1");
    multi_arch(&s, &src);
    copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();

    // Referrers would force a look; fast skips it.
    s.reset_calls();
    let fast = CopyOpts {
        referrers: true,
        fast: true,
        ..Default::default()
    };
    assert!(copy(&s, &src, &tgt, &fast).unwrap().skipped);
    assert_eq!(s.total_calls(), 2);

    // Without fast the referrers are checked, but nothing is written.
    s.reset_calls();
    let slow = CopyOpts {
        referrers: true,
        ..Default::default()
    };
    let rep = copy(&s, &src, &tgt, &slow).unwrap();
    assert!(rep.skipped);
    assert!(s.total_calls() > 2);
    assert_eq!(s.calls("manifest_put"), 0);
    assert_eq!(
        s.calls("blob_head"),
        0,
        "blobs of present manifests are trusted"
    );

    // Forced: every manifest is pushed again; blobs are checked but not re-sent.
    s.reset_calls();
    let force = CopyOpts {
        force_recursive: true,
        ..Default::default()
    };
    let rep = copy(&s, &src, &tgt, &force).unwrap();
    assert!(!rep.skipped);
    assert_eq!(rep.manifests_copied, 3);
    assert_eq!(s.calls("manifest_put"), 3);
    assert_eq!(s.calls("blob_head"), 5);
    assert_eq!(s.calls("blob_put"), 0);
    assert_eq!(rep.blobs_skipped, 5);
}

#[test]
fn single_platform() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:arm");
    let f = multi_arch(&s, &src);
    let opts = CopyOpts {
        platform: Some(Platform::parse("linux/arm64").unwrap()),
        ..Default::default()
    };
    let rep = copy(&s, &src, &tgt, &opts).unwrap();
    assert_eq!(rep.digest, *f.arm64.digest());
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(f.arm64.digest()));
    assert!(!s.has_manifest(&tgt, f.idx.digest()));
    assert!(!s.has_manifest(&tgt, f.amd64.digest()));
    assert_eq!(s.calls("blob_put"), 3);
    let puts = s.puts();
    assert_eq!(puts.len(), 1);
    assert!(!puts[0].child, "the platform image is a top-level manifest");

    // Copying again is a no-op: target HEAD plus the source index.
    s.reset_calls();
    assert!(copy(&s, &src, &tgt, &opts).unwrap().skipped);
    assert_eq!(s.total_calls(), 2);

    let missing = CopyOpts {
        platform: Some(Platform::parse("linux/s390x").unwrap()),
        ..Default::default()
    };
    let e = copy(&s, &src, &r("other.example/dst:s390x"), &missing).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("linux/amd64"), "{e}");

    // A plain image is copied as is when its config matches, refused otherwise.
    let plain = r("other.example/dst:arm");
    let e = copy(
        &s,
        &plain,
        &r("third.example/x:v1"),
        &CopyOpts {
            platform: Some(Platform::parse("linux/amd64").unwrap()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let rep = copy(&s, &plain, &r("third.example/x:v1"), &opts).unwrap();
    assert_eq!(rep.digest, *f.arm64.digest());
}

#[test]
fn platforms_filter_keeps_index() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:v1");
    let f = multi_arch(&s, &src);
    let opts = CopyOpts {
        platforms: vec![Platform::parse("linux/amd64").unwrap()],
        ..Default::default()
    };
    copy(&s, &src, &tgt, &opts).unwrap();
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(f.idx.digest()));
    assert!(s.has_manifest(&tgt, f.amd64.digest()));
    assert!(!s.has_manifest(&tgt, f.arm64.digest()));
    assert_eq!(s.calls("blob_put"), 3);
}

#[test]
fn corrupted_blob_fails_without_tag() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let tgt = r("other.example/dst:v1");
    let f = multi_arch(&s, &src);
    let bad = f.amd64.layers()[1].digest.clone();
    s.corrupt_blob(&bad);
    let e = copy(&s, &src, &tgt, &CopyOpts::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch);
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "copying layer {bad} of reg.example/src@{}: reading from reg.example/src: ",
            f.amd64.digest()
        )),
        "{msg}"
    );
    assert!(s.tag_digest(&tgt).is_none());
    assert!(!s.has_manifest(&tgt, f.idx.digest()));
    assert!(!s.has_blob(&tgt, &bad));
    assert_eq!(s.calls("manifest_put"), 0);
}

#[test]
fn external_layers() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let cfg = s.add_blob(&src, mt::OCI1_IMAGE_CONFIG, b"{}");
    let mut ext = s.add_blob(&src, mt::OCI1_FOREIGN_LAYER_GZIP, b"foreign");
    ext.urls = vec!["https://example.com/layer".into()];
    let local = s.add_blob(&src, mt::OCI1_LAYER_GZIP, b"local");
    let m = image(&cfg, vec![ext.clone(), local.clone()], None);
    s.add_manifest(&src, &m);

    let tgt = r("other.example/skip:v1");
    copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert!(s.has_blob(&tgt, &local.digest));
    assert!(!s.has_blob(&tgt, &ext.digest));
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(m.digest()));

    let tgt = r("other.example/all:v1");
    let opts = CopyOpts {
        include_external: true,
        ..Default::default()
    };
    copy(&s, &src, &tgt, &opts).unwrap();
    assert!(s.has_blob(&tgt, &ext.digest));
}

#[test]
fn referrers_filtered_and_external_target() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let f = multi_arch(&s, &src);
    let sig = artifact(&s, &src, "application/vnd.example.sig", &f.idx);
    let sbom = artifact(&s, &src, "application/vnd.example.sbom", &f.idx);
    // A referrer of a child and a referrer of a referrer.
    let child_sig = artifact(&s, &src, "application/vnd.example.sig", &f.amd64);
    let sig_sig = artifact(&s, &src, "application/vnd.example.sig", &sig);

    let tgt = r("other.example/dst:v1");
    let opts = CopyOpts {
        referrers: true,
        referrer_filters: vec![MatchOpts {
            artifact_type: "application/vnd.example.sig".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    copy(&s, &src, &tgt, &opts).unwrap();
    for m in [&sig, &child_sig, &sig_sig] {
        assert!(s.has_manifest(&tgt, m.digest()), "{}", m.digest());
    }
    assert!(!s.has_manifest(&tgt, sbom.digest()));
    // Pushed as referrers, so the target maintains its fallback tag.
    let fb = s
        .manifest_get(&tgt.set_tag(&f.idx.digest().fallback_tag()))
        .unwrap();
    assert_eq!(fb.manifests().len(), 1);
    assert_eq!(&fb.manifests()[0].digest, sig.digest());
    let puts = s.puts();
    assert_eq!(
        puts.last().unwrap().digest,
        *f.idx.digest(),
        "top goes last"
    );
    assert!(puts
        .iter()
        .filter(|p| p.digest != *f.idx.digest())
        .all(|p| {
            let is_ref = [&sig, &child_sig, &sig_sig]
                .iter()
                .any(|m| m.digest() == &p.digest);
            !is_ref || !p.child
        }));

    // No filter: everything; written to an external repository.
    let tgt = r("other.example/dst2:v1");
    let refs = r("other.example/refs");
    let opts = CopyOpts {
        referrers: true,
        referrer_tgt: Some(refs.clone()),
        ..Default::default()
    };
    copy(&s, &src, &tgt, &opts).unwrap();
    for m in [&sig, &sbom, &child_sig, &sig_sig] {
        assert!(s.has_manifest(&refs, m.digest()));
        assert!(!s.has_manifest(&tgt, m.digest()));
    }
    assert!(s.has_manifest(&tgt, f.idx.digest()));

    // Read from an external repository.
    let ext = r("reg.example/extrefs");
    let ext_sig = artifact(&s, &ext, "application/vnd.example.ext", &f.idx);
    let tgt = r("other.example/dst3:v1");
    let opts = CopyOpts {
        referrers: true,
        referrer_src: Some(ext),
        ..Default::default()
    };
    copy(&s, &src, &tgt, &opts).unwrap();
    assert!(s.has_manifest(&tgt, ext_sig.digest()));
    assert!(!s.has_manifest(&tgt, sig.digest()));
}

#[test]
fn referrer_loop_terminates() {
    let s = MemScheme::new();
    let src = r("reg.example/src:child");
    let cfg = s.add_blob(&src, mt::OCI1_IMAGE_CONFIG, b"{}");
    let child = image(&cfg, vec![], None);
    s.add_manifest(&src, &child);
    // An index listing `child` whose subject is `child`.
    let lp = index(vec![child.descriptor()], Some(child.descriptor()));
    s.manifest_put(&src.set_tag("loop"), &lp, PutOpts::default())
        .unwrap();
    let opts = CopyOpts {
        referrers: true,
        ..Default::default()
    };
    for (from, to) in [("child", "c1"), ("loop", "l1")] {
        s.reset_calls();
        let tgt = r(&format!("other.example/{to}:{from}"));
        copy(&s, &src.set_tag(from), &tgt, &opts).unwrap();
        assert!(s.has_manifest(&tgt, child.digest()));
        assert!(s.has_manifest(&tgt, lp.digest()));
        let puts = s.puts();
        let pos = |d: &Digest| puts.iter().position(|p| &p.digest == d).unwrap();
        assert!(pos(child.digest()) < pos(lp.digest()), "{puts:?}");
        assert_eq!(puts.len(), 2, "{puts:?}");
    }
    // The loop index became a referrer at the target.
    let fb = s
        .manifest_get(&r("other.example/c1").set_tag(&child.digest().fallback_tag()))
        .unwrap();
    assert_eq!(&fb.manifests()[0].digest, lp.digest());
}

#[test]
fn digest_tags() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let cfg = s.add_blob(&src, mt::OCI1_IMAGE_CONFIG, b"{}");
    let layer = s.add_blob(&src, mt::OCI1_LAYER_GZIP, b"layer");
    let img = image(&cfg, vec![layer], None);
    s.add_manifest(&src, &img);
    let sig_layer = s.add_blob(&src, "application/vnd.example.sig", b"signature");
    let sig = image(&cfg, vec![sig_layer.clone()], None);
    let sig_tag = format!("{}.sig", img.digest().fallback_tag());
    s.add_manifest(&src.set_tag(&sig_tag), &sig);
    // A digest tag of the signature pointing at the signature itself.
    let self_tag = format!("{}.x.meta", sig.digest().fallback_tag());
    s.add_manifest(&src.set_tag(&self_tag), &sig);
    // The bare fallback tag is no digest tag.
    let fb = index(vec![], None);
    s.add_manifest(&src.set_tag(&img.digest().fallback_tag()), &fb);
    // Not a digest tag of anything copied.
    s.add_manifest(&src.set_tag("sha256-0000.sig"), &sig);

    let tgt = r("other.example/dst:v1");
    let opts = CopyOpts {
        digest_tags: true,
        ..Default::default()
    };
    copy(&s, &src, &tgt, &opts).unwrap();
    assert_eq!(s.calls("tag_list"), 1);
    assert_eq!(s.tags(&tgt), {
        let mut t = vec!["v1".to_string(), sig_tag.clone(), self_tag.clone()];
        t.sort();
        t
    });
    assert_eq!(
        s.tag_digest(&tgt.set_tag(&self_tag)).as_ref(),
        Some(sig.digest())
    );
    assert!(s.has_blob(&tgt, &sig_layer.digest));
    assert_eq!(s.puts().last().unwrap().tag, "v1");

    // Nothing new: only reads.
    s.reset_calls();
    copy(&s, &src, &tgt, &opts).unwrap();
    assert_eq!(s.calls("manifest_put"), 0);
}

#[test]
fn same_repo_retag() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let f = multi_arch(&s, &src);
    s.reset_calls();
    let tgt = r("reg.example/src:v2");
    copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert_eq!(s.calls("manifest_put"), 1);
    for m in ["blob_get", "blob_head", "blob_put", "blob_mount"] {
        assert_eq!(s.calls(m), 0, "{m}");
    }
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(f.idx.digest()));
}

#[test]
fn mount_within_registry() {
    let s = MemScheme::new();
    s.set_mount(true);
    let src = r("reg.example/src:v1");
    let f = multi_arch(&s, &src);
    let tgt = r("reg.example/dst:v1");
    let events = Mutex::new(0);
    let rep = image_copy(&s, &src, &s, &tgt, &CopyOpts::default(), &pool(2), &|e| {
        if matches!(e, Event::Finished { mounted: true, .. }) {
            *events.lock().unwrap() += 1;
        }
    })
    .unwrap();
    assert_eq!(s.calls("blob_mount"), 5);
    assert_eq!(s.calls("blob_get"), 0);
    assert_eq!(s.calls("blob_put"), 0);
    assert_eq!(rep.blobs_copied, 5);
    assert_eq!(rep.bytes_copied, 0);
    assert_eq!(*events.lock().unwrap(), 5);
    assert!(s.has_blob(&tgt, &f.base.digest));

    // Declined mounts fall back to streaming.
    s.set_mount(false);
    s.reset_calls();
    let tgt = r("reg.example/dst2:v1");
    let rep = copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert_eq!(s.calls("blob_mount"), 5);
    assert_eq!(s.calls("blob_put"), 5);
    assert!(rep.bytes_copied > 0);
}

#[test]
fn one_thread_pool_does_not_deadlock() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let f = multi_arch(&s, &src);
    artifact(&s, &src, "application/vnd.example.sig", &f.idx);
    artifact(&s, &src, "application/vnd.example.sig", &f.arm64);
    let lp = index(vec![f.amd64.descriptor()], Some(f.amd64.descriptor()));
    s.manifest_put(&src.set_tag("loop"), &lp, PutOpts::default())
        .unwrap();
    let tgt = r("other.example/dst:v1");
    let opts = CopyOpts {
        referrers: true,
        digest_tags: true,
        ..Default::default()
    };
    let one = pool(1);
    // Run from inside the pool too: nested installs must not block the only worker.
    let rep = one
        .install(|| image_copy(&s, &src, &s, &tgt, &opts, &one, &quiet))
        .unwrap();
    assert_eq!(rep.digest, *f.idx.digest());
    assert!(s.has_manifest(&tgt, lp.digest()));
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(f.idx.digest()));
}

#[test]
fn progress_for_large_blob_and_embedded_data() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let big = vec![7u8; 9 * 1024 * 1024];
    let layer = s.add_blob(&src, mt::OCI1_LAYER, &big);
    // The config exists only as embedded data, never in the source.
    let mut cfg = Descriptor::for_bytes(mt::OCI1_IMAGE_CONFIG, b"{}");
    cfg.data = Some(crate::base64::encode(b"{}"));
    let m = image(&cfg, vec![layer.clone()], None);
    s.add_manifest(&src, &m);
    let tgt = r("other.example/dst:v1");
    let progress = Mutex::new(Vec::new());
    let rep = image_copy(&s, &src, &s, &tgt, &CopyOpts::default(), &pool(2), &|e| {
        if let Event::Progress { bytes_done, .. } = e {
            progress.lock().unwrap().push(*bytes_done);
        }
    })
    .unwrap();
    let progress = progress.into_inner().unwrap();
    assert!(!progress.is_empty());
    assert!(progress.iter().all(|&b| b <= big.len() as u64));
    assert_eq!(rep.bytes_copied, big.len() as u64 + 2);
    assert_eq!(s.calls("blob_get"), 1, "embedded config not fetched");
    assert!(s.has_blob(&tgt, &cfg.digest));
}

#[test]
fn blob_copy_reports_transfer() {
    let s = MemScheme::new();
    let src = r("reg.example/src");
    let tgt = r("other.example/dst");
    let d = s.add_blob(&src, mt::OCI1_LAYER, b"data");
    assert!(blob_copy(&s, &src, &s, &tgt, &d, &quiet).unwrap());
    assert!(s.has_blob(&tgt, &d.digest));
    assert!(!blob_copy(&s, &src, &s, &tgt, &d, &quiet).unwrap());
    let missing = Descriptor::for_bytes(mt::OCI1_LAYER, b"missing");
    let e = blob_copy(&s, &src, &s, &tgt, &missing, &quiet).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn index_with_blob_entry_and_target_digest() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let cfg = s.add_blob(&src, mt::OCI1_IMAGE_CONFIG, b"{}");
    let img = image(&cfg, vec![], None);
    s.add_manifest(&src, &img);
    // Index entries that are not manifests are copied as blobs.
    let extra = s.add_blob(&src, "application/vnd.example.data", b"extra");
    let idx = index(vec![img.descriptor(), extra.clone()], None);
    s.add_manifest(&src.set_tag("v2"), &idx);
    let src = src.set_tag("v2");
    let tgt = r("other.example/dst").set_digest(&idx.digest().to_string());
    copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert!(s.has_blob(&tgt, &extra.digest));
    assert!(s.has_manifest(&tgt, idx.digest()));
    assert!(s.tags(&tgt).is_empty());
    // A target digest that differs from the source is refused.
    let wrong = r("other.example/dst").set_digest(&img.digest().to_string());
    let e = copy(&s, &src, &wrong, &CopyOpts::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Mismatch);
}

#[test]
fn first_error_stops_remaining_blobs() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let cfg = s.add_blob(&src, mt::OCI1_IMAGE_CONFIG, b"{}");
    let mut layers = Vec::new();
    for i in 0..6 {
        let l = s.add_blob(&src, mt::OCI1_LAYER, format!("layer {i}").as_bytes());
        s.corrupt_blob(&l.digest);
        layers.push(l);
    }
    s.corrupt_blob(&cfg.digest);
    let m = image(&cfg, layers, None);
    s.add_manifest(&src, &m);
    // One worker runs the blobs one after the other: whichever fails first, the abort flag
    // keeps the others from starting.
    let e = image_copy(
        &s,
        &src,
        &s,
        &r("other.example/dst:v1"),
        &CopyOpts::default(),
        &pool(1),
        &quiet,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch);
    assert_eq!(s.calls("blob_get"), 1);
    assert_eq!(s.calls("blob_head"), 1);
}

#[test]
fn docker_schema1() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let l1 = s.add_blob(&src, mt::DOCKER2_LAYER_GZIP, b"one");
    let l2 = s.add_blob(&src, mt::DOCKER2_LAYER_GZIP, b"two");
    let raw = format!(
        r#"{{"schemaVersion":1,"name":"src","tag":"v1","architecture":"amd64","fsLayers":[{{"blobSum":"{}"}},{{"blobSum":"{}"}}],"history":[{{"v1Compatibility":"{{}}"}},{{"v1Compatibility":"{{}}"}}]}}"#,
        l2.digest, l1.digest
    );
    let m = Manifest::from_bytes(
        raw.into_bytes(),
        crate::manifest::Source {
            descriptor_type: Some(mt::DOCKER1_MANIFEST),
            ..Default::default()
        },
    )
    .unwrap();
    s.add_manifest(&src, &m);
    let tgt = r("other.example/dst:v1");
    copy(&s, &src, &tgt, &CopyOpts::default()).unwrap();
    assert!(s.has_blob(&tgt, &l1.digest) && s.has_blob(&tgt, &l2.digest));
    assert_eq!(s.tag_digest(&tgt).as_ref(), Some(m.digest()));
    assert_eq!(s.calls("blob_put"), 2);
}

#[test]
fn untyped_index_entry_probed_and_depth_capped() {
    let s = MemScheme::new();
    let src = r("reg.example/src:v1");
    let cfg = s.add_blob(&src, mt::OCI1_IMAGE_CONFIG, b"{}");
    let img = image(&cfg, vec![], None);
    s.add_manifest(&src, &img);
    let mut entry = img.descriptor();
    entry.media_type.clear();
    let idx = index(vec![entry], None);
    s.add_manifest(&src.set_tag("untyped"), &idx);
    let tgt = r("other.example/dst:untyped");
    copy(&s, &src.set_tag("untyped"), &tgt, &CopyOpts::default()).unwrap();
    assert!(s.has_manifest(&tgt, img.digest()), "probed as a manifest");
    assert!(s.has_blob(&tgt, &cfg.digest));

    // Indexes nested beyond the cap fail instead of recursing on.
    let mut m = img;
    for _ in 0..=MAX_DEPTH {
        m = index(vec![m.descriptor()], None);
        s.add_manifest(&src, &m);
    }
    s.add_manifest(&src.set_tag("deep"), &m);
    let tgt = r("other.example/dst:deep");
    let e = copy(&s, &src.set_tag("deep"), &tgt, &CopyOpts::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Loop);
    assert!(s.tag_digest(&tgt).is_none());
}
