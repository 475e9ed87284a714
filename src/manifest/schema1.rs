//! Docker schema1 manifests, read only. Signed ones are digested over their JWS payload, which
//! is the body with the `signatures` section cut out as the first signature's protected header
//! describes (`formatLength` bytes, then `formatTail`).

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::mediatype as mt;

/// A Docker schema1 manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Schema1 {
    /// Always 1.
    #[serde(default)]
    pub schema_version: i64,
    /// Repository name.
    #[serde(default)]
    pub name: String,
    /// Tag.
    #[serde(default)]
    pub tag: String,
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// Layers, newest first.
    #[serde(default)]
    pub fs_layers: Vec<FsLayer>,
    /// v1 compatibility history.
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
}

/// One schema1 layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FsLayer {
    /// Layer digest.
    pub blob_sum: Digest,
}

impl Schema1 {
    /// Layers as descriptors, base first (size unknown: -1).
    pub fn layers(&self) -> Vec<Descriptor> {
        self.fs_layers
            .iter()
            .rev()
            .map(|l| Descriptor {
                media_type: mt::DOCKER2_LAYER_GZIP.to_string(),
                digest: l.blob_sum.clone(),
                size: -1,
                ..Default::default()
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Protected {
    #[serde(rename = "formatLength")]
    format_length: usize,
    #[serde(rename = "formatTail")]
    format_tail: String,
}

/// The bytes a signed schema1 manifest's digest is computed over.
pub(crate) fn signed_payload(raw: &[u8]) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::new(ErrorKind::Parse, format!("schema1 signature: {why}"));
    let v: serde_json::Value = serde_json::from_slice(raw).map_err(|e| bad(&e.to_string()))?;
    let protected = v
        .get("signatures")
        .and_then(|s| s.get(0))
        .and_then(|s| s.get("protected"))
        .and_then(|p| p.as_str())
        .ok_or_else(|| bad("no protected header"))?;
    let header =
        crate::base64::decode(protected).map_err(|_| bad("protected header is not base64"))?;
    let p: Protected = serde_json::from_slice(&header).map_err(|e| bad(&e.to_string()))?;
    let tail =
        crate::base64::decode(&p.format_tail).map_err(|_| bad("formatTail is not base64"))?;
    if p.format_length > raw.len() {
        return Err(bad("formatLength beyond the body"));
    }
    let mut out = raw[..p.format_length].to_vec();
    out.extend_from_slice(&tail);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Manifest, Source};

    #[test]
    fn signed_digest_over_payload() {
        let payload = br#"{"schemaVersion":1,"name":"x","tag":"t","architecture":"amd64","fsLayers":[{"blobSum":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}],"history":[]"#;
        let tail = b"\n}";
        let prot = format!(
            "{{\"formatLength\":{},\"formatTail\":\"{}\"}}",
            payload.len(),
            crate::base64::encode(tail).trim_end_matches('=')
        );
        let mut raw = payload.to_vec();
        raw.extend_from_slice(
            format!(
                ",\"signatures\":[{{\"protected\":\"{}\"}}]}}",
                crate::base64::encode(prot.as_bytes()).trim_end_matches('=')
            )
            .as_bytes(),
        );
        let m = Manifest::from_bytes(raw, Source::default()).unwrap();
        assert_eq!(m.media_type(), mt::DOCKER1_MANIFEST_SIGNED);
        let mut want = payload.to_vec();
        want.extend_from_slice(tail);
        assert_eq!(m.digest(), &Digest::sha256(&want));
        assert_eq!(m.layers().len(), 1);
    }
}
