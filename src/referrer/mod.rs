//! Referrers: manifests whose `subject` points at another manifest. Listed through a native API
//! when the backend has one, else through the fallback tag `<alg>-<hex>`; filters are always
//! applied client-side whatever the server claims.

pub mod fallback;

use std::collections::BTreeMap;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{ErrorKind, Result};
use crate::manifest::Manifest;
use crate::reference::Reference;
use crate::scheme::Scheme;

/// Filters for a referrers listing.
#[derive(Debug, Clone, Default)]
pub struct MatchOpts {
    /// Keep only this artifact type.
    pub artifact_type: String,
    /// Keep only descriptors carrying these annotations (`None` value: key only).
    pub annotations: BTreeMap<String, Option<String>>,
    /// Sort by this annotation (unannotated last).
    pub sort_annotation: String,
    /// Sort descending.
    pub sort_desc: bool,
}

impl MatchOpts {
    /// Does `d` pass the filters?
    pub fn matches(&self, d: &Descriptor) -> bool {
        if !self.artifact_type.is_empty() && d.artifact_type != self.artifact_type {
            return false;
        }
        self.annotations
            .iter()
            .all(|(k, v)| match (d.annotations.get(k), v) {
                (Some(_), None) => true,
                (Some(have), Some(want)) => have == want,
                (None, _) => false,
            })
    }

    /// Filters and sorts in place.
    pub fn apply(&self, descs: &mut Vec<Descriptor>) {
        descs.retain(|d| self.matches(d));
        if !self.sort_annotation.is_empty() {
            let key = &self.sort_annotation;
            descs.sort_by(
                |a, b| match (a.annotations.get(key), b.annotations.get(key)) {
                    (Some(x), Some(y)) => {
                        if self.sort_desc {
                            y.cmp(x)
                        } else {
                            x.cmp(y)
                        }
                    }
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                },
            );
        }
    }
}

/// Options for listing referrers.
#[derive(Debug, Clone, Default)]
pub struct ListOpts {
    /// Filters and sort.
    pub filter: MatchOpts,
    /// Also scan every manifest of a layout for a matching subject.
    pub slow_search: bool,
}

/// The referrers of one subject.
#[derive(Debug, Clone)]
pub struct ReferrerList {
    /// The subject (with its digest).
    pub subject: Reference,
    /// Where the referrers were read from (the subject's repository or an external one).
    pub source: Reference,
    /// The referrer descriptors, filtered and sorted.
    pub descriptors: Vec<Descriptor>,
    /// Annotations of the listing index.
    pub annotations: BTreeMap<String, String>,
    /// The listing index as read (API response or fallback tag), if any.
    pub manifest: Option<Manifest>,
    /// Digest tags found (`sha256-<hex>.*`), when asked for by callers.
    pub tags: Vec<String>,
}

/// Lists referrers of `subject_digest`, reading from `source` (same repository as the subject,
/// or an external one).
pub fn list(
    scheme: &dyn Scheme,
    source: &Reference,
    subject: &Reference,
    subject_digest: &Digest,
    opts: &ListOpts,
) -> Result<ReferrerList> {
    let mut descriptors = Vec::new();
    let mut annotations = BTreeMap::new();
    let mut manifest = None;
    let api = scheme.referrers_api(source, subject_digest)?;
    let index = match api {
        Some(m) => Some(m),
        None => {
            let tag_ref = source.set_tag(&subject_digest.fallback_tag());
            match scheme.manifest_get(&tag_ref) {
                Ok(m) => Some(m),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        }
    };
    if let Some(m) = index {
        descriptors.extend(m.manifests().iter().cloned());
        annotations = m.annotations();
        manifest = Some(m);
    }
    if opts.slow_search {
        if let Some(all) = scheme.manifest_scan(source)? {
            for d in all {
                if descriptors.iter().any(|x| x.digest == d.digest) {
                    continue;
                }
                let r = source.set_digest(&d.digest.to_string());
                let Ok(m) = scheme.manifest_get(&r) else {
                    continue;
                };
                if m.subject().is_some_and(|s| &s.digest == subject_digest) {
                    let mut desc = m.descriptor();
                    desc.artifact_type = m.referrer_artifact_type();
                    desc.annotations = m.annotations();
                    descriptors.push(desc);
                }
            }
        }
    }
    // Dedupe by digest, keeping the first.
    let mut seen = std::collections::HashSet::new();
    descriptors.retain(|d| seen.insert(d.digest.clone()));
    opts.filter.apply(&mut descriptors);
    Ok(ReferrerList {
        subject: subject.set_digest(&subject_digest.to_string()),
        source: source.clone(),
        descriptors,
        annotations,
        manifest,
        tags: Vec::new(),
    })
}
