//! Manifests: OCI image manifest and index, Docker schema2 manifest and manifest list, Docker
//! schema1 (read only) and the withdrawn OCI artifact manifest.
//!
//! A [`Manifest`] always keeps the exact bytes it was read from (digests are over bytes, and
//! re-serialising would change them) beside a parsed view used for walking the graph.

mod schema1;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::mediatype as mt;
use crate::platform::{self, Platform};

pub use schema1::Schema1;

/// Largest manifest we read (regclient's pull limit).
pub const MAX_PULL: usize = 8 * 1024 * 1024;
/// Largest manifest we push.
pub const MAX_PUSH: usize = 4 * 1024 * 1024;

/// The parsed body of an image manifest (OCI, Docker v2, OCI artifact).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2 (absent for OCI artifact manifests).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub schema_version: i64,
    /// The media type field, when the body carries one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_type: String,
    /// The config blob (absent for OCI artifact manifests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Descriptor>,
    /// Layers (`blobs` in the artifact manifest).
    #[serde(default, alias = "blobs")]
    pub layers: Vec<Descriptor>,
    /// Subject, for referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The parsed body of an index (OCI index, Docker manifest list).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    #[serde(default)]
    pub schema_version: i64,
    /// The media type field, when the body carries one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_type: String,
    /// Child manifests.
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    /// Subject, for referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The parsed view of a manifest.
#[derive(Debug, Clone, PartialEq)]
// Few manifests live at once; boxing would only add indirection to every match.
#[allow(clippy::large_enum_variant)]
pub enum Body {
    /// OCI manifest, Docker v2 manifest or OCI artifact manifest.
    Image(ImageManifest),
    /// OCI index or Docker manifest list.
    Index(Index),
    /// Docker schema1.
    Schema1(Schema1),
}

/// A manifest: raw bytes, media type, digest and parsed body.
#[derive(Debug, Clone)]
pub struct Manifest {
    media_type: String,
    raw: Vec<u8>,
    digest: Digest,
    body: Body,
    /// Response headers when read from a registry (for the `raw`/`headers` formats).
    headers: Vec<(String, String)>,
}

/// Where a manifest came from, to detect and verify it.
#[derive(Debug, Clone, Default)]
pub struct Source<'a> {
    /// Media type of the descriptor that pointed here, if any.
    pub descriptor_type: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The digest the bytes must have (descriptor, reference or verified header).
    pub digest: Option<&'a Digest>,
}

impl Manifest {
    /// Parses and verifies `raw`.
    pub fn from_bytes(raw: Vec<u8>, src: Source<'_>) -> Result<Manifest> {
        if raw.len() > MAX_PULL {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                format!(
                    "manifest of {} bytes exceeds the {MAX_PULL} byte limit",
                    raw.len()
                ),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&raw).map_err(|e| {
            Error::new(ErrorKind::Parse, format!("manifest is not valid JSON: {e}"))
        })?;
        let body_type = value
            .get("mediaType")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let mut media_type = src
            .descriptor_type
            .filter(|t| !t.is_empty())
            .map(mt::base)
            .or_else(|| {
                src.content_type
                    .map(mt::base)
                    .filter(|t| mt::is_manifest(t))
            })
            .unwrap_or_default();
        if media_type.is_empty() {
            media_type = if !body_type.is_empty() {
                body_type.clone()
            } else {
                sniff(&value)
            };
        }
        if !body_type.is_empty() && body_type != media_type {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!("manifest media type {body_type:?} does not match {media_type:?}"),
            ));
        }
        if !mt::is_manifest(&media_type) {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!("unsupported manifest media type {media_type:?}"),
            ));
        }
        let parse_err = |e: serde_json::Error| {
            Error::new(ErrorKind::Parse, format!("parsing {media_type}: {e}"))
        };
        let body = match media_type.as_str() {
            mt::OCI1_INDEX | mt::DOCKER2_MANIFEST_LIST => {
                Body::Index(serde_json::from_value(value).map_err(parse_err)?)
            }
            mt::DOCKER1_MANIFEST | mt::DOCKER1_MANIFEST_SIGNED => {
                Body::Schema1(serde_json::from_value(value).map_err(parse_err)?)
            }
            _ => Body::Image(serde_json::from_value(value).map_err(parse_err)?),
        };
        let algo = src.digest.map(|d| d.algorithm()).unwrap_or_default();
        let digest = if media_type == mt::DOCKER1_MANIFEST_SIGNED {
            algo.digest(&schema1::signed_payload(&raw)?)
        } else {
            algo.digest(&raw)
        };
        if let Some(want) = src.digest {
            if want != &digest {
                return Err(Error::new(
                    ErrorKind::DigestMismatch,
                    format!("manifest digest mismatch: expected {want}, computed {digest}"),
                ));
            }
        }
        Ok(Manifest {
            media_type,
            raw,
            digest,
            body,
            headers: Vec::new(),
        })
    }

    /// Serialises `body` (2-space indented, as regctl writes) and wraps it.
    pub fn from_body(body: Body, algo: Algorithm) -> Result<Manifest> {
        let (media_type, raw) = match &body {
            Body::Image(m) => (
                if m.media_type.is_empty() {
                    mt::OCI1_MANIFEST.to_string()
                } else {
                    m.media_type.clone()
                },
                serde_json::to_vec_pretty(m),
            ),
            Body::Index(i) => (
                if i.media_type.is_empty() {
                    mt::OCI1_INDEX.to_string()
                } else {
                    i.media_type.clone()
                },
                serde_json::to_vec_pretty(i),
            ),
            Body::Schema1(_) => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "creating Docker schema1 manifests is not supported",
                ))
            }
        };
        let raw = raw.map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
        let digest = algo.digest(&raw);
        Ok(Manifest {
            media_type,
            raw,
            digest,
            body,
            headers: Vec::new(),
        })
    }

    /// Refuses a manifest larger than [`MAX_PUSH`] (registries reject them; layouts follow suit).
    pub fn check_push_size(&self) -> Result<()> {
        if self.raw.len() > MAX_PUSH {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                format!(
                    "manifest of {} bytes exceeds the {MAX_PUSH} byte push limit",
                    self.raw.len()
                ),
            ));
        }
        Ok(())
    }

    /// Media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// The exact bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Digest of the bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Parsed body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// Response headers, when read from a registry.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// Attaches response headers.
    pub fn set_headers(&mut self, headers: Vec<(String, String)>) {
        self.headers = headers;
    }

    /// Descriptor of this manifest (media type, digest, size, artifact type).
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.raw.len() as i64,
            artifact_type: self.artifact_type().to_string(),
            ..Default::default()
        }
    }

    /// Is this an index or manifest list?
    pub fn is_index(&self) -> bool {
        matches!(self.body, Body::Index(_))
    }

    /// Child manifests of an index (empty otherwise).
    pub fn manifests(&self) -> &[Descriptor] {
        match &self.body {
            Body::Index(i) => &i.manifests,
            _ => &[],
        }
    }

    /// Config descriptor of an image manifest.
    pub fn config(&self) -> Option<&Descriptor> {
        match &self.body {
            Body::Image(m) => m.config.as_ref(),
            _ => None,
        }
    }

    /// Layers of an image manifest (schema1 layers as descriptors).
    pub fn layers(&self) -> Vec<Descriptor> {
        match &self.body {
            Body::Image(m) => m.layers.clone(),
            Body::Schema1(s) => s.layers(),
            Body::Index(_) => Vec::new(),
        }
    }

    /// Subject, for referrers.
    pub fn subject(&self) -> Option<&Descriptor> {
        match &self.body {
            Body::Image(m) => m.subject.as_ref(),
            Body::Index(i) => i.subject.as_ref(),
            Body::Schema1(_) => None,
        }
    }

    /// Annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        match &self.body {
            Body::Image(m) => m.annotations.clone(),
            Body::Index(i) => i.annotations.clone(),
            Body::Schema1(_) => BTreeMap::new(),
        }
    }

    /// Artifact type field (not the config media type fallback).
    pub fn artifact_type(&self) -> &str {
        match &self.body {
            Body::Image(m) => &m.artifact_type,
            Body::Index(i) => &i.artifact_type,
            Body::Schema1(_) => "",
        }
    }

    /// The artifact type as referrers list it: `artifactType`, else the config media type.
    pub fn referrer_artifact_type(&self) -> String {
        match &self.body {
            Body::Image(m) if m.artifact_type.is_empty() => m
                .config
                .as_ref()
                .map(|c| c.media_type.clone())
                .unwrap_or_default(),
            _ => self.artifact_type().to_string(),
        }
    }

    /// Every descriptor this manifest references (children, config, layers; not the subject).
    pub fn references(&self) -> Vec<Descriptor> {
        match &self.body {
            Body::Index(i) => i.manifests.clone(),
            Body::Image(m) => m
                .config
                .iter()
                .cloned()
                .chain(m.layers.iter().cloned())
                .collect(),
            Body::Schema1(s) => s.layers(),
        }
    }

    /// For an index, the child best matching `want`.
    pub fn select_platform(&self, want: &Platform) -> Result<Descriptor> {
        match &self.body {
            Body::Index(i) => platform::select(&i.manifests, want).cloned(),
            _ => Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "{} is not an index, platforms cannot be selected",
                    self.media_type
                ),
            )),
        }
    }

    /// The JSON body as a value (for templates and diffs).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.raw).unwrap_or(serde_json::Value::Null)
    }
}

/// Duck typing when neither descriptor, header nor body names the type.
fn sniff(v: &serde_json::Value) -> String {
    if v.get("schemaVersion").and_then(|s| s.as_i64()) == Some(1) {
        return if v.get("signatures").is_some() {
            mt::DOCKER1_MANIFEST_SIGNED
        } else {
            mt::DOCKER1_MANIFEST
        }
        .to_string();
    }
    if let Some(list) = v.get("manifests").and_then(|m| m.as_array()) {
        let docker = list
            .first()
            .and_then(|d| d.get("mediaType"))
            .and_then(|m| m.as_str())
            .is_some_and(|m| m.starts_with("application/vnd.docker."));
        return if docker {
            mt::DOCKER2_MANIFEST_LIST
        } else {
            mt::OCI1_INDEX
        }
        .to_string();
    }
    if v.get("layers").is_some() || v.get("config").is_some() {
        let docker = v
            .get("config")
            .and_then(|c| c.get("mediaType"))
            .and_then(|m| m.as_str())
            == Some(mt::DOCKER2_IMAGE_CONFIG);
        return if docker {
            mt::DOCKER2_MANIFEST
        } else {
            mt::OCI1_MANIFEST
        }
        .to_string();
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OCI: &str = r#"{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2},
  "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "size": 2}],
  "annotations": {"a": "b"}
}"#;

    #[test]
    fn parse_oci_keeps_raw() {
        let m = Manifest::from_bytes(OCI.as_bytes().to_vec(), Source::default()).unwrap();
        assert_eq!(m.media_type(), mt::OCI1_MANIFEST);
        assert_eq!(m.raw(), OCI.as_bytes());
        assert_eq!(m.digest(), &Digest::sha256(OCI.as_bytes()));
        assert_eq!(m.layers().len(), 1);
        assert_eq!(m.annotations()["a"], "b");
        assert_eq!(m.references().len(), 2);
    }

    #[test]
    fn digest_verified() {
        let wrong = Digest::sha256(b"x");
        let e = Manifest::from_bytes(
            OCI.as_bytes().to_vec(),
            Source {
                digest: Some(&wrong),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DigestMismatch);
        let d512 = Algorithm::Sha512.digest(OCI.as_bytes());
        let m = Manifest::from_bytes(
            OCI.as_bytes().to_vec(),
            Source {
                digest: Some(&d512),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(m.digest(), &d512);
    }

    #[test]
    fn type_conflict_rejected() {
        let e = Manifest::from_bytes(
            OCI.as_bytes().to_vec(),
            Source {
                descriptor_type: Some(mt::OCI1_INDEX),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn sniffing() {
        let idx = br#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
        let m = Manifest::from_bytes(idx.to_vec(), Source::default()).unwrap();
        assert_eq!(m.media_type(), mt::DOCKER2_MANIFEST_LIST);
        assert!(m.is_index());
        let ct = Manifest::from_bytes(
            idx.to_vec(),
            Source {
                content_type: Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ct.media_type(), mt::OCI1_INDEX);
        let bad = Manifest::from_bytes(b"{\"foo\":1}".to_vec(), Source::default()).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::UnsupportedMediaType);
        let notjson = Manifest::from_bytes(b"{".to_vec(), Source::default()).unwrap_err();
        assert_eq!(notjson.kind(), ErrorKind::Parse);
    }

    #[test]
    fn size_cap() {
        let big = vec![b' '; MAX_PULL + 1];
        assert_eq!(
            Manifest::from_bytes(big, Source::default())
                .unwrap_err()
                .kind(),
            ErrorKind::SizeLimit
        );
    }

    #[test]
    fn artifact_manifest_blobs() {
        let a = br#"{"mediaType":"application/vnd.oci.artifact.manifest.v1+json","artifactType":"application/example","blobs":[{"mediaType":"text/plain","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}]}"#;
        let m = Manifest::from_bytes(a.to_vec(), Source::default()).unwrap();
        assert_eq!(m.layers().len(), 1);
        assert_eq!(m.referrer_artifact_type(), "application/example");
    }

    #[test]
    fn from_body_round_trip() {
        let idx = Index {
            schema_version: 2,
            media_type: mt::OCI1_INDEX.into(),
            ..Default::default()
        };
        let m = Manifest::from_body(Body::Index(idx), Algorithm::Sha256).unwrap();
        let again = Manifest::from_bytes(m.raw().to_vec(), Source::default()).unwrap();
        assert_eq!(again.digest(), m.digest());
        assert!(again.is_index());
    }
}
