//! `index create|add|delete`: build and edit OCI indexes and Docker manifest lists.

use regclient::copy::{self, CopyOpts};
use regclient::format;
use regclient::image_config::{ImageConfig, MAX_CONFIG};
use regclient::manifest::{Body, Index};
use regclient::scheme::PutOpts;
use regclient::{
    mediatype, platform, Algorithm, Descriptor, Digest, Error, ErrorKind, Manifest, Platform,
    Reference, Result,
};

use super::artifact::{annotations, head_descriptor};
use super::{invalid, with_raw, Ctx};

fn platforms(ctx: &Ctx, flag: &str) -> Result<Vec<Platform>> {
    ctx.m
        .values(flag)
        .iter()
        .map(|p| Platform::parse(p))
        .collect()
}

/// The platform an image manifest describes, read from its config; `None` for artifacts,
/// indexes and configs without an OS.
fn config_platform(ctx: &Ctx, r: &Reference, m: &Manifest) -> Result<Option<Platform>> {
    let Some(cd) = m.config() else {
        return Ok(None);
    };
    if cd.media_type != mediatype::OCI1_IMAGE_CONFIG
        && cd.media_type != mediatype::DOCKER2_IMAGE_CONFIG
    {
        return Ok(None);
    }
    let raw = match cd.embedded_data() {
        Some(d) => d,
        None => ctx
            .client
            .scheme(r)?
            .blob_get(r, cd)?
            .read_all(MAX_CONFIG)?,
    };
    let p = ImageConfig::parse(&raw)?.platform();
    Ok((!p.os.is_empty() || !p.architecture.is_empty()).then_some(p))
}

/// Copies `src` into `tgt` (by digest) with the `--referrers`/`--digest-tags` choices.
fn copy_into(ctx: &Ctx, src: &Reference, tgt: &Reference) -> Result<()> {
    let opts = CopyOpts {
        referrers: ctx.m.on("referrers"),
        digest_tags: ctx.m.on("digest-tags"),
        ..Default::default()
    };
    copy::image_copy(
        ctx.client.scheme(src)?,
        src,
        ctx.client.scheme(tgt)?,
        tgt,
        &opts,
        ctx.client.pool(),
        &|_| {},
    )
    .map_err(|e| {
        e.context(format!(
            "copying {} to {}",
            src.common_name(),
            tgt.common_name()
        ))
    })?;
    Ok(())
}

/// Descriptors named by `--digest` (already in `target`'s repository) and `--ref` (copied in
/// by digest), with `--desc-platform` / `--desc-annotation` applied; duplicates removed.
fn descriptors(ctx: &Ctx, target: &Reference) -> Result<Vec<Descriptor>> {
    let desc_annotations = annotations(ctx, "desc-annotation")?;
    let desc_platform = match ctx.m.value("desc-platform") {
        "" => None,
        p => Some(Platform::parse(p)?),
    };
    let want = platforms(ctx, "platform")?;
    let finish = |mut d: Descriptor, m: Option<(&Reference, &Manifest)>| -> Result<Descriptor> {
        if let Some(p) = &desc_platform {
            d.platform = Some(p.clone());
        } else if d.platform.is_none() {
            if let Some((r, m)) = m {
                d.platform = config_platform(ctx, r, m)?;
            }
        }
        d.annotations.extend(desc_annotations.clone());
        Ok(d)
    };
    let mut out = Vec::new();
    for dg in ctx.m.values("digest") {
        let digest = Digest::parse(dg)?;
        let r = target.set_digest(&digest.to_string());
        let m = ctx
            .client
            .manifest_get(&r)
            .map_err(|e| e.context(format!("--digest {dg} must exist in the repository")))?;
        let d = Descriptor {
            media_type: m.media_type().to_string(),
            digest: m.digest().clone(),
            size: m.raw().len() as i64,
            ..Default::default()
        };
        out.push(finish(d, Some((&r, &m)))?);
    }
    for rs in ctx.m.values("ref") {
        let src = ctx.reference(rs)?;
        let m = ctx.client.manifest_get(&src)?;
        if m.is_index() && !want.is_empty() {
            let picked: Vec<Descriptor> = m
                .manifests()
                .iter()
                .filter(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| want.iter().any(|w| platform::matches(w, p)))
                })
                .cloned()
                .collect();
            if picked.is_empty() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "platform not found: none of {} in {}",
                        want.iter()
                            .map(|p| p.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        src.common_name()
                    ),
                ));
            }
            for d in picked {
                let child_src = src.set_digest(&d.digest.to_string());
                let child_tgt = target.set_digest(&d.digest.to_string());
                copy_into(ctx, &child_src, &child_tgt)?;
                let cm = ctx.client.manifest_get(&child_tgt)?;
                out.push(finish(d, Some((&child_tgt, &cm)))?);
            }
        } else {
            let tgt = target.set_digest(&m.digest().to_string());
            copy_into(ctx, &src.set_digest(&m.digest().to_string()), &tgt)?;
            let d = Descriptor {
                media_type: m.media_type().to_string(),
                digest: m.digest().clone(),
                size: m.raw().len() as i64,
                ..Default::default()
            };
            out.push(finish(d, Some((&tgt, &m)))?);
        }
    }
    Ok(out)
}

/// A reference to write to: `latest` when it names neither a tag nor a digest.
pub fn write_ref(r: Reference) -> Reference {
    if r.tag.is_empty() && r.digest.is_empty() {
        r.set_tag("latest")
    } else {
        r
    }
}

/// Where a manifest with digest `d` goes: by digest when asked or when `r` has no tag, else
/// to `r`'s tag.
pub fn put_ref(r: &Reference, d: &Digest, by_digest: bool) -> Reference {
    if by_digest || r.tag.is_empty() {
        r.set_digest(&d.to_string())
    } else {
        r.set_tag(&r.tag)
    }
}

/// Removes repeated descriptors (full equality), keeping the first.
fn dedupe(v: &mut Vec<Descriptor>) {
    let mut seen: Vec<Descriptor> = Vec::new();
    v.retain(|d| {
        if seen.contains(d) {
            false
        } else {
            seen.push(d.clone());
            true
        }
    });
}

/// Pushes `idx` to `r` (by its new digest when `by_digest` or `r` has no tag) and prints the
/// result as asked.
fn push(ctx: &Ctx, r: &Reference, idx: Index, by_digest: bool) -> Result<()> {
    let m = Manifest::from_body(Body::Index(idx), Algorithm::Sha256)?;
    let by_digest = by_digest || r.tag.is_empty();
    let target = put_ref(r, m.digest(), by_digest);
    ctx.client
        .scheme(&target)?
        .manifest_put(&target, &m, PutOpts::default())
        .map_err(|e| e.context(format!("pushing index {}", target.common_name())))?;
    match ctx.m.given("format") {
        None | Some("") if by_digest => ctx.out(format!("{}\n", m.digest()).as_bytes()),
        None | Some("") => Ok(()),
        Some(fmt) => ctx.render(fmt, &with_raw(format::manifest(&m, &target), m.raw(), &[])),
    }
}

/// The index at `r`, for editing.
fn existing(ctx: &Ctx, r: &Reference) -> Result<Index> {
    let m = ctx.client.manifest_get(r)?;
    match m.body() {
        Body::Index(i) => {
            let mut i = i.clone();
            if i.media_type.is_empty() {
                i.media_type = m.media_type().to_string();
            }
            Ok(i)
        }
        _ => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("{} is not an index ({})", r.common_name(), m.media_type()),
        )),
    }
}

pub fn create(ctx: &Ctx) -> Result<()> {
    let r = write_ref(ctx.reference(ctx.m.arg(0))?);
    let media_type = match ctx.m.value("media-type") {
        "" | mediatype::OCI1_INDEX => mediatype::OCI1_INDEX,
        mediatype::DOCKER2_MANIFEST_LIST => mediatype::DOCKER2_MANIFEST_LIST,
        mt => {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "unsupported media type: {mt:?} (use {} or {})",
                    mediatype::OCI1_INDEX,
                    mediatype::DOCKER2_MANIFEST_LIST
                ),
            ))
        }
    };
    let artifact_type = ctx.m.value("artifact-type").to_string();
    let subject = ctx.m.value("subject");
    let annotations = annotations(ctx, "annotation")?;
    if media_type != mediatype::OCI1_INDEX
        && (!artifact_type.is_empty() || !subject.is_empty() || !annotations.is_empty())
    {
        return Err(invalid(
            "--artifact-type, --annotation and --subject need an OCI index".to_string(),
        ));
    }
    if !artifact_type.is_empty() && !mediatype::valid(&artifact_type) {
        return Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("unsupported media type: {artifact_type:?}"),
        ));
    }
    let subject = match subject {
        "" => None,
        s => {
            let sr = if s.contains(':') {
                r.set_digest(&Digest::parse(s)?.to_string())
            } else {
                r.set_tag(s)
            };
            Some(head_descriptor(ctx, &sr, None).map_err(|e| e.context("reading the subject"))?)
        }
    };
    let mut manifests = descriptors(ctx, &r)?;
    dedupe(&mut manifests);
    let idx = Index {
        schema_version: 2,
        media_type: media_type.to_string(),
        artifact_type,
        manifests,
        subject,
        annotations,
    };
    push(ctx, &r, idx, ctx.m.on("by-digest"))
}

pub fn add(ctx: &Ctx) -> Result<()> {
    let r = write_ref(ctx.reference(ctx.m.arg(0))?);
    let mut idx = existing(ctx, &r)?;
    let added = descriptors(ctx, &r)?;
    if added.is_empty() {
        return Err(invalid(
            "nothing to add: give --ref or --digest".to_string(),
        ));
    }
    idx.manifests.extend(added);
    dedupe(&mut idx.manifests);
    push(ctx, &r, idx, false)
}

pub fn delete(ctx: &Ctx) -> Result<()> {
    let r = write_ref(ctx.reference(ctx.m.arg(0))?);
    let digests = ctx
        .m
        .values("digest")
        .iter()
        .map(|d| Digest::parse(d))
        .collect::<Result<Vec<_>>>()?;
    let plats = platforms(ctx, "platform")?;
    if digests.is_empty() && plats.is_empty() {
        return Err(invalid(
            "nothing to delete: give --digest or --platform".to_string(),
        ));
    }
    let mut idx = existing(ctx, &r)?;
    let before = idx.manifests.len();
    idx.manifests.retain(|d| {
        !(digests.contains(&d.digest)
            || d.platform
                .as_ref()
                .is_some_and(|p| plats.iter().any(|w| platform::matches(w, p))))
    });
    if idx.manifests.len() == before {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no matching entries found in {}", r.common_name()),
        ));
    }
    push(ctx, &r, idx, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_and_put_refs() {
        let r = write_ref(Reference::parse("ocidir://x").unwrap());
        assert_eq!(r.tag, "latest");
        let d = Digest::sha256(b"m");
        assert_eq!(put_ref(&r, &d, false).common_name(), "ocidir://x:latest");
        assert_eq!(put_ref(&r, &d, true).digest, d.to_string());
        let by = Reference::parse(&format!("ocidir://x@{}", Digest::sha256(b"old"))).unwrap();
        let by = write_ref(by);
        assert!(by.tag.is_empty());
        assert_eq!(put_ref(&by, &d, false).digest, d.to_string());
        // A tag plus digest: the tag wins (the digest changes with the edit).
        let both = Reference::parse(&format!("ocidir://x:t@{}", Digest::sha256(b"old"))).unwrap();
        let p = put_ref(&both, &d, false);
        assert_eq!((p.tag.as_str(), p.digest.as_str()), ("t", ""));
    }

    #[test]
    fn dedupe_keeps_first_of_equal_descriptors() {
        let a = Descriptor::for_bytes(mediatype::OCI1_MANIFEST, b"a");
        let b = Descriptor::for_bytes(mediatype::OCI1_MANIFEST, b"b");
        let mut a2 = a.clone();
        a2.platform = Some(Platform::new("linux", "amd64", ""));
        let mut v = vec![a.clone(), b.clone(), a.clone(), a2.clone(), b.clone()];
        dedupe(&mut v);
        // Same digest but a different platform is a different entry.
        assert_eq!(v, vec![a, b, a2]);
    }
}
