//! Deleting a tag on registries that cannot delete tags (regclient's throw-away image).
//!
//! The distribution API only deletes manifests by digest, and deleting the digest a tag points
//! at would delete every other tag of that manifest too. So when `DELETE /manifests/<tag>` is
//! refused (docker-registry answers 400), the tag is first moved to a unique, throw-away image
//! and that image is deleted by digest. Building the image is pure ([`throwaway`]); the
//! registry calls are in [`tag_delete`].

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, ImageManifest, Manifest};
use crate::mediatype as mt;
use crate::reference::Reference;
use crate::scheme::{BlobExpect, DeleteOpts, PutOpts, Scheme};
use crate::transport::client::Method;

use super::Registry;

/// The one layer of the throw-away image (and the content its `diff_id` names).
pub const EMPTY_JSON: &[u8] = b"{}";

/// A throw-away image: config and layer blobs plus the manifest naming them.
#[derive(Debug, Clone)]
pub struct Throwaway {
    /// The config blob.
    pub config: Vec<u8>,
    /// Its descriptor.
    pub config_desc: Descriptor,
    /// The layer blob (`{}`).
    pub layer: Vec<u8>,
    /// Its descriptor.
    pub layer_desc: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
}

/// RFC 3339 UTC with nanoseconds, so two deletes of one tag in the same second still build
/// different images.
fn rfc3339_nanos(unix_secs: i64, nanos: u32) -> String {
    let base = crate::scheme::ocidir::rfc3339(unix_secs);
    match base.strip_suffix('Z') {
        Some(s) => format!("{s}.{nanos:09}Z"),
        None => base,
    }
}

/// Builds the unique image that replaces `tag` before it is deleted: an image config labelled
/// `delete-tag=<tag>` and `delete-date=<now>` (linux/amd64, one history entry, rootfs diff_id
/// = digest of `{}`), and a manifest with that config and one `{}` layer; OCI media types when
/// `oci`, else Docker v2.
pub fn throwaway(tag: &str, unix_secs: i64, nanos: u32, oci: bool) -> Result<Throwaway> {
    let now = rfc3339_nanos(unix_secs, nanos);
    let layer = EMPTY_JSON.to_vec();
    let layer_digest = Digest::sha256(&layer);
    let config = serde_json::json!({
        "created": now,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Labels": {
                "delete-tag": tag,
                "delete-date": now,
            }
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [layer_digest.to_string()],
        },
        "history": [{
            "created": now,
            "created_by": "regclient tag delete",
            "comment": format!("placeholder replacing tag {tag} so it can be deleted"),
        }],
    });
    let config = serde_json::to_vec(&config)
        .map_err(|e| Error::new(ErrorKind::Other, format!("encoding config: {e}")))?;
    let (m_type, c_type, l_type) = if oci {
        (mt::OCI1_MANIFEST, mt::OCI1_IMAGE_CONFIG, mt::OCI1_LAYER)
    } else {
        (
            mt::DOCKER2_MANIFEST,
            mt::DOCKER2_IMAGE_CONFIG,
            mt::DOCKER2_LAYER,
        )
    };
    let config_desc = Descriptor {
        media_type: c_type.to_string(),
        digest: Digest::sha256(&config),
        size: config.len() as i64,
        ..Default::default()
    };
    let layer_desc = Descriptor {
        media_type: l_type.to_string(),
        digest: layer_digest,
        size: layer.len() as i64,
        ..Default::default()
    };
    let manifest = Manifest::from_body(
        manifest::Body::Image(ImageManifest {
            schema_version: 2,
            media_type: m_type.to_string(),
            config: Some(config_desc.clone()),
            layers: vec![layer_desc.clone()],
            annotations: BTreeMap::new(),
            ..Default::default()
        }),
        Algorithm::Sha256,
    )?;
    Ok(Throwaway {
        config,
        config_desc,
        layer,
        layer_desc,
        manifest,
    })
}

/// Deletes only the tag of `r`: `DELETE /manifests/<tag>` when the registry allows it,
/// otherwise the throw-away image swap. Never reports success while the tag still resolves
/// to its old content; if the final delete is refused, the error says the tag now points at
/// the throw-away image.
pub(super) fn tag_delete(reg: &Registry, r: &Reference) -> Result<()> {
    if r.tag.is_empty() {
        return Err(Error::new(
            ErrorKind::MissingTagOrDigest,
            format!("tag delete of {} needs a tag", r.common_name()),
        ));
    }
    let tag_ref = Reference {
        digest: String::new(),
        ..r.clone()
    };
    let mut req = reg.req(Method::Delete, &tag_ref, format!("manifests/{}", r.tag));
    req.expect_failure = true;
    match reg.transport.send(req) {
        Ok(_) => return Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unauthorized) => {
            return Err(e.context(format!("deleting tag {}", tag_ref.common_name())))
        }
        // Refused (docker-registry: 400 DIGEST_INVALID; others 405 UNSUPPORTED).
        Err(_) => {}
    }
    let head = reg
        .manifest_head(&tag_ref)
        .map_err(|e| e.context(format!("deleting tag {}", tag_ref.common_name())))?;
    let oci = matches!(
        mt::base(&head.media_type).as_str(),
        mt::OCI1_MANIFEST | mt::OCI1_INDEX
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let t = throwaway(&r.tag, now.as_secs() as i64, now.subsec_nanos(), oci)?;
    let ctx = |what: &str| format!("deleting tag {}: {what}", tag_ref.common_name());
    for (desc, bytes) in [(&t.layer_desc, &t.layer), (&t.config_desc, &t.config)] {
        let mut rdr: &[u8] = bytes;
        reg.blob_put(&tag_ref, &BlobExpect::from_descriptor(desc), &mut rdr)
            .map_err(|e| e.context(ctx("pushing the throw-away image")))?;
    }
    reg.manifest_put(&tag_ref, &t.manifest, PutOpts::default())
        .map_err(|e| e.context(ctx("pushing the throw-away image")))?;
    let by_digest = Reference {
        tag: String::new(),
        digest: t.manifest.digest().to_string(),
        ..r.clone()
    };
    reg.manifest_delete(&by_digest, DeleteOpts::default())
        .map_err(|e| {
            Error::new(
                e.kind(),
                format!(
                    "tag {} now points at the throw-away image {} because the registry refused to delete it: {}",
                    tag_ref.common_name(),
                    t.manifest.digest(),
                    e
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throwaway_oci_and_docker() {
        let t = throwaway("t1", 1_700_000_000, 5, true).unwrap();
        assert_eq!(t.manifest.media_type(), mt::OCI1_MANIFEST);
        assert_eq!(t.layer, b"{}");
        assert_eq!(t.layer_desc.digest, Digest::sha256(b"{}"));
        assert_eq!(t.config_desc.media_type, mt::OCI1_IMAGE_CONFIG);
        assert_eq!(t.config_desc.digest, Digest::sha256(&t.config));
        let c: serde_json::Value = serde_json::from_slice(&t.config).unwrap();
        assert_eq!(c["config"]["Labels"]["delete-tag"], "t1");
        assert_eq!(
            c["config"]["Labels"]["delete-date"],
            "2023-11-14T22:13:20.000000005Z"
        );
        assert_eq!(c["created"], "2023-11-14T22:13:20.000000005Z");
        assert_eq!(c["os"], "linux");
        assert_eq!(c["architecture"], "amd64");
        assert_eq!(c["history"].as_array().unwrap().len(), 1);
        assert_eq!(
            c["rootfs"]["diff_ids"][0],
            Digest::sha256(b"{}").to_string()
        );
        let raw: serde_json::Value = serde_json::from_slice(t.manifest.raw()).unwrap();
        assert_eq!(raw["config"]["digest"], t.config_desc.digest.to_string());
        assert_eq!(raw["layers"].as_array().unwrap().len(), 1);

        let d = throwaway("t1", 1_700_000_000, 5, false).unwrap();
        assert_eq!(d.manifest.media_type(), mt::DOCKER2_MANIFEST);
        assert_eq!(d.config_desc.media_type, mt::DOCKER2_IMAGE_CONFIG);
        assert_eq!(d.layer_desc.media_type, mt::DOCKER2_LAYER);
        // Unique per moment and per tag.
        let later = throwaway("t1", 1_700_000_000, 6, true).unwrap();
        assert_ne!(later.manifest.digest(), t.manifest.digest());
        let other = throwaway("t2", 1_700_000_000, 5, true).unwrap();
        assert_ne!(other.manifest.digest(), t.manifest.digest());
    }
}
