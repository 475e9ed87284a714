//! The image config blob (`application/vnd.oci.image.config.v1+json` and Docker's).
//!
//! Parsed fields cover what the tools read (platform, labels, history, diff ids); the raw JSON
//! is kept so nothing unknown is lost when printing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::platform::Platform;

/// Largest config we read.
pub const MAX_CONFIG: usize = 8 * 1024 * 1024;

/// An image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ImageConfig {
    /// Creation time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// Operating system.
    #[serde(default)]
    pub os: String,
    /// OS version.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    /// OS features.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// Runtime config.
    #[serde(default)]
    pub config: RunConfig,
    /// Layer diff ids.
    #[serde(default)]
    pub rootfs: RootFs,
    /// Build history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// The `config` section (Go-style capitalised keys, as the spec writes them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    /// User.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Exposed ports.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrypoint: Vec<String>,
    /// Command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmd: Vec<String>,
    /// Volumes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub volumes: BTreeMap<String, serde_json::Value>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Stop signal.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stop_signal: String,
}

/// The `rootfs` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Uncompressed layer digests.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct History {
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Command that made the layer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Author.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub author: String,
    /// Comment.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// True when no layer was produced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl ImageConfig {
    /// Parses a config blob.
    pub fn parse(raw: &[u8]) -> Result<ImageConfig> {
        if raw.len() > MAX_CONFIG {
            return Err(Error::new(
                ErrorKind::SizeLimit,
                "image config exceeds 8 MiB",
            ));
        }
        serde_json::from_slice(raw)
            .map_err(|e| Error::new(ErrorKind::Parse, format!("parsing image config: {e}")))
    }

    /// The platform the config describes.
    pub fn platform(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.architecture, &self.variant);
        p.os_version = self.os_version.clone();
        p.os_features = self.os_features.clone();
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_config() {
        let raw = br#"{"architecture":"arm","variant":"v7","os":"linux","config":{"Env":["A=1"],"Labels":{"version":"1"}},"rootfs":{"type":"layers","diff_ids":["sha256:x"]},"history":[{"created_by":"RUN x","empty_layer":true}]}"#;
        let c = ImageConfig::parse(raw).unwrap();
        assert_eq!(c.platform().to_string(), "linux/arm/v7");
        assert_eq!(c.config.labels["version"], "1");
        assert!(c.history[0].empty_layer);
        assert_eq!(c.rootfs.diff_ids.len(), 1);
    }
}
