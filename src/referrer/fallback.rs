//! Maintaining the referrers fallback tag index (pure helpers). Stub: implemented with ocidir.
