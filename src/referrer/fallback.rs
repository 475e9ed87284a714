//! Maintaining the referrers fallback tag index (`<alg>-<hex>` of the subject): pure helpers
//! that turn the current index (if any) into the next one. Backends do the reading, writing and
//! locking; keeping these pure lets the rules be tested without storage.

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{Body, Index, Manifest};
use crate::mediatype as mt;

/// The descriptor a referrer is listed with: media type, digest, size, artifact type (the
/// manifest's `artifactType`, else its config media type) and the manifest's annotations.
pub fn referrer_descriptor(m: &Manifest) -> Descriptor {
    Descriptor {
        media_type: m.media_type().to_string(),
        digest: m.digest().clone(),
        size: m.raw().len() as i64,
        artifact_type: m.referrer_artifact_type(),
        annotations: m.annotations(),
        ..Default::default()
    }
}

/// The index body of an existing fallback manifest (it must be an index).
fn index_body(m: &Manifest) -> Result<Index> {
    match m.body() {
        Body::Index(i) => Ok(i.clone()),
        _ => Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!(
                "referrers fallback {} is a {}, not an index",
                m.digest(),
                m.media_type()
            ),
        )),
    }
}

/// Adds `desc` to the fallback index (a new OCI index when there is none). An entry with the
/// same digest is replaced in place, so re-pushing a referrer never duplicates it.
pub fn add(index: Option<&Manifest>, desc: &Descriptor) -> Result<Manifest> {
    let (mut body, algo) = match index {
        Some(m) => (index_body(m)?, m.digest().algorithm()),
        None => (
            Index {
                schema_version: 2,
                media_type: mt::OCI1_INDEX.to_string(),
                ..Default::default()
            },
            Default::default(),
        ),
    };
    match body.manifests.iter_mut().find(|d| d.digest == desc.digest) {
        Some(existing) => *existing = desc.clone(),
        None => body.manifests.push(desc.clone()),
    }
    Manifest::from_body(Body::Index(body), algo)
}

/// Removes `digest` from the fallback index; `None` when no entry is left (callers then delete
/// the tag rather than keep an empty list).
pub fn remove(index: &Manifest, digest: &Digest) -> Result<Option<Manifest>> {
    let mut body = index_body(index)?;
    let before = body.manifests.len();
    body.manifests.retain(|d| &d.digest != digest);
    if body.manifests.is_empty() {
        return Ok(None);
    }
    if body.manifests.len() == before {
        // Nothing changed: keep the exact bytes (and digest) as they were.
        return Ok(Some(index.clone()));
    }
    Manifest::from_body(Body::Index(body), index.digest().algorithm()).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{ImageManifest, Source};

    fn referrer(n: u32, artifact_type: &str) -> Manifest {
        let mut annotations = std::collections::BTreeMap::new();
        annotations.insert("n".to_string(), n.to_string());
        let body = ImageManifest {
            schema_version: 2,
            media_type: mt::OCI1_MANIFEST.into(),
            artifact_type: artifact_type.into(),
            config: Some(Descriptor::for_bytes("application/x-config", b"{}")),
            subject: Some(Descriptor::for_bytes(mt::OCI1_MANIFEST, b"subject")),
            annotations,
            ..Default::default()
        };
        Manifest::from_body(Body::Image(body), Default::default()).unwrap()
    }

    #[test]
    fn descriptor_fields() {
        let d = referrer_descriptor(&referrer(1, ""));
        assert_eq!(d.media_type, mt::OCI1_MANIFEST);
        assert_eq!(d.artifact_type, "application/x-config");
        assert_eq!(d.annotations["n"], "1");
        let d = referrer_descriptor(&referrer(1, "application/x-sbom"));
        assert_eq!(d.artifact_type, "application/x-sbom");
    }

    #[test]
    fn add_creates_appends_and_replaces() {
        let a = referrer(1, "application/a");
        let b = referrer(2, "application/b");
        let idx = add(None, &referrer_descriptor(&a)).unwrap();
        assert_eq!(idx.media_type(), mt::OCI1_INDEX);
        assert_eq!(idx.manifests().len(), 1);
        let idx = add(Some(&idx), &referrer_descriptor(&b)).unwrap();
        assert_eq!(idx.manifests().len(), 2);
        let mut changed = referrer_descriptor(&a);
        changed.annotations.insert("x".into(), "y".into());
        let idx = add(Some(&idx), &changed).unwrap();
        assert_eq!(idx.manifests().len(), 2);
        assert_eq!(idx.manifests()[0].annotations["x"], "y");
        // The result parses back as an index with the same digest.
        let again = Manifest::from_bytes(idx.raw().to_vec(), Source::default()).unwrap();
        assert_eq!(again.digest(), idx.digest());
    }

    #[test]
    fn remove_until_empty() {
        let a = referrer(1, "");
        let b = referrer(2, "");
        let idx = add(None, &referrer_descriptor(&a)).unwrap();
        let idx = add(Some(&idx), &referrer_descriptor(&b)).unwrap();
        let same = remove(&idx, &Digest::sha256(b"other")).unwrap().unwrap();
        assert_eq!(same.digest(), idx.digest());
        let one = remove(&idx, a.digest()).unwrap().unwrap();
        assert_eq!(one.manifests().len(), 1);
        assert_eq!(&one.manifests()[0].digest, b.digest());
        assert!(remove(&one, b.digest()).unwrap().is_none());
    }

    #[test]
    fn non_index_rejected() {
        let a = referrer(1, "");
        let e = add(Some(&a), &referrer_descriptor(&a)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnsupportedMediaType);
    }
}
