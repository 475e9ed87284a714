//! Content descriptors: the `{mediaType, digest, size, ...}` triple that points at a blob or
//! manifest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::platform::Platform;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    #[serde(default)]
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
    /// Alternative download locations (foreign layers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// Arbitrary metadata.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Embedded content, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Platform of an index entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Artifact type (index entries and referrers).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_type: String,
}

impl Default for Digest {
    fn default() -> Digest {
        Digest::sha256(b"")
    }
}

impl Descriptor {
    /// A descriptor for `data` with the given media type (sha256).
    pub fn for_bytes(media_type: &str, data: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: Digest::sha256(data),
            size: data.len() as i64,
            ..Default::default()
        }
    }

    /// The embedded `data`, decoded and checked against size and digest; `None` when absent
    /// or wrong (callers then fetch the content instead).
    pub fn embedded_data(&self) -> Option<Vec<u8>> {
        let data = crate::base64::decode(self.data.as_deref()?).ok()?;
        if data.len() as i64 != self.size || self.digest.verify(&data).is_err() {
            return None;
        }
        Some(data)
    }

    /// Size as `u64`; a negative size is invalid input.
    pub fn size_u64(&self) -> Result<u64> {
        u64::try_from(self.size).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("descriptor {} has negative size {}", self.digest, self.size),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let j = r#"{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="}"#;
        let d: Descriptor = serde_json::from_str(j).unwrap();
        assert_eq!(d.embedded_data().unwrap(), b"{}");
        assert_eq!(serde_json::to_string(&d).unwrap(), j);
    }

    #[test]
    fn bad_data_ignored() {
        let mut d = Descriptor::for_bytes("x/y", b"{}");
        d.data = Some(crate::base64::encode(b"[]"));
        assert!(d.embedded_data().is_none());
    }
}
