//! The `index.json` entry rules: tag lookup, tag replace, untagged entries, removals. Pure
//! functions over [`Index`] so the rules are tested without a filesystem.

use std::collections::BTreeMap;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::manifest::Index;

/// The annotation naming an entry.
pub(super) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation recording when an entry was written.
pub(super) const CREATED: &str = "org.opencontainers.image.created";

/// The tag part of a `ref.name`: the whole value when it is a bare tag, the text after the last
/// `:` when another tool stored a full name (`docker.io/library/alpine:3`). A colon followed by
/// a `/` belongs to a registry port, so such a name carries no tag.
pub(super) fn tag_of(name: &str) -> Option<&str> {
    match name.rsplit_once(':') {
        Some((_, t)) if t.is_empty() || t.contains('/') => None,
        Some((_, t)) => Some(t),
        None if name.is_empty() => None,
        None => Some(name),
    }
}

/// The `ref.name` of an entry.
pub(super) fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations.get(REF_NAME).map(String::as_str)
}

/// Does the entry carry `tag` (exactly or as a full name's tag)?
pub(super) fn has_tag(d: &Descriptor, tag: &str) -> bool {
    ref_name(d).is_some_and(|n| n == tag || tag_of(n) == Some(tag))
}

/// The entry for `tag`: an exact `ref.name` match wins over a full-name suffix match.
pub(super) fn find_tag<'a>(index: &'a Index, tag: &str) -> Option<&'a Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| ref_name(d) == Some(tag))
        .or_else(|| index.manifests.iter().find(|d| has_tag(d, tag)))
}

/// The first entry with `digest`.
pub(super) fn find_digest<'a>(index: &'a Index, digest: &Digest) -> Option<&'a Descriptor> {
    index.manifests.iter().find(|d| &d.digest == digest)
}

/// The entry written for a manifest: its descriptor with fresh annotations.
fn entry(desc: &Descriptor, tag: Option<&str>, created: &str) -> Descriptor {
    let mut annotations = BTreeMap::new();
    if let Some(tag) = tag {
        annotations.insert(REF_NAME.to_string(), tag.to_string());
    }
    annotations.insert(CREATED.to_string(), created.to_string());
    Descriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.clone(),
        size: desc.size,
        artifact_type: desc.artifact_type.clone(),
        annotations,
        ..Default::default()
    }
}

/// Points `tag` at `desc`: every entry with that tag goes (duplicates too), one new entry is
/// appended.
pub(super) fn set_tag(index: &mut Index, tag: &str, desc: &Descriptor, created: &str) {
    index.manifests.retain(|d| !has_tag(d, tag));
    index.manifests.push(entry(desc, Some(tag), created));
}

/// Adds an untagged entry for `desc` unless one for that digest exists; returns whether the
/// index changed.
pub(super) fn add_untagged(index: &mut Index, desc: &Descriptor, created: &str) -> bool {
    let present = index
        .manifests
        .iter()
        .any(|d| d.digest == desc.digest && ref_name(d).is_none());
    if !present {
        index.manifests.push(entry(desc, None, created));
    }
    !present
}

/// Removes every entry with `digest`; returns how many went.
pub(super) fn remove_digest(index: &mut Index, digest: &Digest) -> usize {
    let before = index.manifests.len();
    index.manifests.retain(|d| &d.digest != digest);
    before - index.manifests.len()
}

/// Removes every entry with `tag`; returns how many went.
pub(super) fn remove_tag(index: &mut Index, tag: &str) -> usize {
    let before = index.manifests.len();
    index.manifests.retain(|d| !has_tag(d, tag));
    before - index.manifests.len()
}

/// Tags of the index: deduplicated and sorted.
pub(super) fn tags(index: &Index) -> Vec<String> {
    let mut tags: Vec<String> = index
        .manifests
        .iter()
        .filter_map(ref_name)
        .filter_map(tag_of)
        .map(str::to_string)
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mediatype as mt;

    fn desc(n: &[u8]) -> Descriptor {
        Descriptor::for_bytes(mt::OCI1_MANIFEST, n)
    }

    fn named(n: &[u8], name: &str) -> Descriptor {
        let mut d = desc(n);
        d.annotations.insert(REF_NAME.into(), name.into());
        d
    }

    #[test]
    fn tag_parts() {
        assert_eq!(tag_of("v1"), Some("v1"));
        assert_eq!(tag_of("docker.io/library/alpine:3.19"), Some("3.19"));
        assert_eq!(tag_of("localhost:5000/repo"), None);
        assert_eq!(tag_of("localhost:5000/repo:v2"), Some("v2"));
        assert_eq!(tag_of(""), None);
    }

    #[test]
    fn set_replaces_all_duplicates() {
        let mut idx = Index::default();
        idx.manifests.push(named(b"a", "v1"));
        idx.manifests.push(named(b"b", "example.com/x:v1"));
        idx.manifests.push(named(b"c", "v2"));
        set_tag(&mut idx, "v1", &desc(b"d"), "2020-01-01T00:00:00Z");
        assert_eq!(idx.manifests.len(), 2);
        let e = find_tag(&idx, "v1").unwrap();
        assert_eq!(e.digest, Digest::sha256(b"d"));
        assert_eq!(e.annotations[CREATED], "2020-01-01T00:00:00Z");
        assert_eq!(e.annotations.len(), 2);
        assert_eq!(find_tag(&idx, "v2").unwrap().digest, Digest::sha256(b"c"));
    }

    #[test]
    fn exact_name_beats_suffix() {
        let mut idx = Index::default();
        idx.manifests.push(named(b"a", "example.com/x:v1"));
        idx.manifests.push(named(b"b", "v1"));
        assert_eq!(find_tag(&idx, "v1").unwrap().digest, Digest::sha256(b"b"));
        idx.manifests.pop();
        assert_eq!(find_tag(&idx, "v1").unwrap().digest, Digest::sha256(b"a"));
        assert!(find_tag(&idx, "1").is_none());
    }

    #[test]
    fn untagged_once_per_digest() {
        let mut idx = Index::default();
        idx.manifests.push(named(b"a", "v1"));
        assert!(add_untagged(&mut idx, &desc(b"a"), "t"));
        assert!(!add_untagged(&mut idx, &desc(b"a"), "t"));
        assert_eq!(idx.manifests.len(), 2);
        assert_eq!(remove_digest(&mut idx, &Digest::sha256(b"a")), 2);
        assert!(idx.manifests.is_empty());
    }

    #[test]
    fn tag_listing_and_removal() {
        let mut idx = Index::default();
        idx.manifests.push(named(b"a", "v2"));
        idx.manifests.push(named(b"b", "example.com/x:v1"));
        idx.manifests.push(named(b"c", "v1"));
        idx.manifests.push(desc(b"d"));
        assert_eq!(tags(&idx), vec!["v1", "v2"]);
        assert_eq!(remove_tag(&mut idx, "v1"), 2);
        assert_eq!(tags(&idx), vec!["v2"]);
    }
}
