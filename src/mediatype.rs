//! Media type constants and helpers.

/// Docker schema1 manifest.
pub const DOCKER1_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema1 signed manifest.
pub const DOCKER1_MANIFEST_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema2 manifest.
pub const DOCKER2_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER2_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER2_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker uncompressed layer.
pub const DOCKER2_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker gzip layer.
pub const DOCKER2_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker zstd layer.
pub const DOCKER2_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign layer.
pub const DOCKER2_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI image manifest.
pub const OCI1_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI1_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI artifact manifest (withdrawn draft; read only).
pub const OCI1_ARTIFACT: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// OCI image config.
pub const OCI1_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI empty JSON (`{}`).
pub const OCI1_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// OCI uncompressed layer.
pub const OCI1_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI1_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI1_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI non-distributable layer.
pub const OCI1_FOREIGN_LAYER: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";
/// OCI non-distributable gzip layer.
pub const OCI1_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// OCI non-distributable zstd layer.
pub const OCI1_FOREIGN_LAYER_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
/// BuildKit cache config.
pub const BUILDKIT_CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
/// Default artifact type when none was given.
pub const UNKNOWN_ARTIFACT: &str = "application/vnd.unknown.config+json";
/// Generic binary content.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// Digest of the empty JSON object `{}`.
pub const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// The `Accept` list for manifest requests, most preferred first.
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI1_INDEX,
    OCI1_MANIFEST,
    DOCKER2_MANIFEST_LIST,
    DOCKER2_MANIFEST,
    DOCKER1_MANIFEST_SIGNED,
    DOCKER1_MANIFEST,
    OCI1_ARTIFACT,
];

/// Strips parameters and lower-cases (`Content-Type` values).
pub fn base(mt: &str) -> String {
    mt.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Index-like manifests (OCI index, Docker manifest list).
pub fn is_index(mt: &str) -> bool {
    mt == OCI1_INDEX || mt == DOCKER2_MANIFEST_LIST
}

/// Single-image manifests (OCI, Docker v2 and v1, OCI artifact).
pub fn is_image(mt: &str) -> bool {
    matches!(
        mt,
        OCI1_MANIFEST
            | DOCKER2_MANIFEST
            | DOCKER1_MANIFEST
            | DOCKER1_MANIFEST_SIGNED
            | OCI1_ARTIFACT
    )
}

/// Any manifest media type this library understands.
pub fn is_manifest(mt: &str) -> bool {
    is_index(mt) || is_image(mt)
}

/// Checks RFC 6838's `type/subtype` shape (each at most 127 characters, no parameters).
pub fn valid(mt: &str) -> bool {
    fn token(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 127
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    }
    match mt.split_once('/') {
        Some((t, s)) => token(t) && token(s),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_strips_params() {
        assert_eq!(base("Application/JSON; charset=utf-8"), "application/json");
    }

    #[test]
    fn validity() {
        assert!(valid("application/vnd.example+json"));
        assert!(!valid("application/example;version=1.0"));
        assert!(!valid("noslash"));
        assert!(!valid("/x"));
    }

    #[test]
    fn kinds() {
        assert!(is_index(OCI1_INDEX) && is_index(DOCKER2_MANIFEST_LIST));
        assert!(is_image(OCI1_MANIFEST) && !is_image(OCI1_INDEX));
        assert!(!is_manifest(OCI1_LAYER_GZIP));
    }
}
