//! Writing an image to a tar: `docker load` input and OCI layout in one file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::descriptor::Descriptor;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::Manifest;
use crate::mediatype as mt;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::scheme::Scheme;

use super::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};

/// Deepest index nesting followed.
const MAX_DEPTH: usize = 8;

/// Options of [`export`].
#[derive(Debug, Clone, Default)]
pub struct ExportOpts {
    /// Export only this platform's image (resolved in the index), so `docker load` can read it.
    pub platform: Option<Platform>,
    /// Name embedded in the tar (`RepoTags`, `index.json` annotations) instead of the source
    /// reference.
    pub name: Option<Reference>,
    /// gzip the tar.
    pub compress: bool,
}

/// What goes into `blobs/`.
enum Content {
    Bytes(Vec<u8>),
    Blob(Box<Descriptor>),
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

/// The registry-style name and tag written into the tar.
fn image_name(r: &Reference) -> (String, String) {
    let n = r.to_reg();
    let tag = n.tag_or_latest().to_string();
    let repo = if n.repository.is_empty() {
        n.registry.clone()
    } else {
        format!("{}/{}", n.registry, n.repository)
    };
    (format!("{repo}:{tag}"), tag)
}

/// Reads the manifest of `r`, resolved to `platform` when given. Returns the manifest and the
/// descriptor that pointed at it (for the platform), if any.
fn top_manifest(
    scheme: &dyn Scheme,
    r: &Reference,
    platform: Option<&Platform>,
) -> Result<(Manifest, Option<Descriptor>)> {
    let mut m = scheme
        .manifest_get(r)
        .map_err(|e| e.context(format!("getting manifest {}", r.common_name())))?;
    let Some(p) = platform else {
        return Ok((m, None));
    };
    let mut via = None;
    for _ in 0..MAX_DEPTH {
        if !m.is_index() {
            return Ok((m, via));
        }
        let d = m
            .select_platform(p)
            .map_err(|e| e.context(r.common_name()))?;
        m = scheme.manifest_get(&r.set_digest(&d.digest.to_string()))?;
        via = Some(d);
    }
    Err(Error::new(
        ErrorKind::Loop,
        "index nesting deeper than 8 levels",
    ))
}

/// Collects every manifest and blob reachable from `m`.
fn walk(
    scheme: &dyn Scheme,
    r: &Reference,
    m: &Manifest,
    depth: usize,
    out: &mut BTreeMap<String, Content>,
    seen: &mut BTreeSet<String>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::Loop,
            format!("index nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    if !seen.insert(m.digest().to_string()) {
        return Ok(());
    }
    out.insert(blob_path(m.digest()), Content::Bytes(m.raw().to_vec()));
    for d in m.manifests() {
        let child = scheme
            .manifest_get(&r.set_digest(&d.digest.to_string()))
            .map_err(|e| e.context(format!("getting child manifest {}", d.digest)))?;
        walk(scheme, r, &child, depth + 1, out, seen)?;
    }
    let blobs = m.config().into_iter().cloned().chain(m.layers());
    for d in blobs {
        // Foreign layers stay where their urls point; registries do not hold them.
        if !d.urls.is_empty() {
            continue;
        }
        d.size_u64()?;
        out.entry(blob_path(&d.digest))
            .or_insert_with(|| Content::Blob(Box::new(d)));
    }
    Ok(())
}

fn header(kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn tar_err(what: &str, e: std::io::Error) -> Error {
    // Errors of the blob stream (digest or size mismatch) travel through io::Error.
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        return inner.clone().context(what.to_string());
    }
    Error::io(e, what.to_string())
}

/// Writes the image `r` of `scheme` to `w` as a tar (see the module docs). Entries are
/// written in sorted order with fixed metadata (mtime 0, uid/gid 0, 0644/0755), so the same
/// image always gives the same bytes. Returns the digest of the top manifest exported.
pub fn export(
    scheme: &dyn Scheme,
    r: &Reference,
    opts: &ExportOpts,
    w: &mut dyn Write,
) -> Result<Digest> {
    let (top, via) = top_manifest(scheme, r, opts.platform.as_ref())?;
    let mut content = BTreeMap::new();
    walk(scheme, r, &top, 0, &mut content, &mut BTreeSet::new())?;

    let (full_name, tag) = image_name(opts.name.as_ref().unwrap_or(r));
    let mut top_desc = top.descriptor();
    if let Some(via) = via {
        top_desc.platform = via.platform;
    }
    top_desc
        .annotations
        .insert(ANNOTATION_IMAGE_NAME.to_string(), full_name.clone());
    top_desc
        .annotations
        .insert(ANNOTATION_REF_NAME.to_string(), tag);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI1_INDEX,
        "manifests": [top_desc],
    });
    let index =
        serde_json::to_vec(&index).map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;

    let docker = match top.config() {
        Some(c)
            if !top.is_index()
                && (c.media_type == mt::OCI1_IMAGE_CONFIG
                    || c.media_type == mt::DOCKER2_IMAGE_CONFIG) =>
        {
            let layers: Vec<Descriptor> = top
                .layers()
                .into_iter()
                .filter(|l| l.urls.is_empty())
                .collect();
            let sources: serde_json::Map<String, serde_json::Value> = layers
                .iter()
                .map(|l| {
                    let v = serde_json::to_value(l).unwrap_or_default();
                    (l.digest.to_string(), v)
                })
                .collect();
            let entry = serde_json::json!([{
                "Config": blob_path(&c.digest),
                "RepoTags": [full_name],
                "Layers": layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
                "LayerSources": sources,
            }]);
            Some(
                serde_json::to_vec(&entry)
                    .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?,
            )
        }
        _ => None,
    };

    let small = {
        let mut v = vec![("index.json", index)];
        if let Some(m) = docker {
            v.push(("manifest.json", m));
        }
        v.push(("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()));
        v
    };
    if opts.compress {
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(w, flate2::Compression::default());
        write_tar(scheme, r, &content, &small, &mut gz)?;
        let w = gz.finish().map_err(|e| tar_err("finishing gzip", e))?;
        w.flush()?;
    } else {
        write_tar(scheme, r, &content, &small, w)?;
        w.flush()?;
    }
    Ok(top.digest().clone())
}

fn write_tar(
    scheme: &dyn Scheme,
    r: &Reference,
    content: &BTreeMap<String, Content>,
    small: &[(&str, Vec<u8>)],
    out: &mut dyn Write,
) -> Result<()> {
    let mut b = tar::Builder::new(out);
    let dirs: BTreeSet<String> = content
        .keys()
        .filter_map(|p| p.rsplit_once('/').map(|(d, _)| format!("{d}/")))
        .collect();
    if !dirs.is_empty() {
        b.append_data(
            &mut header(tar::EntryType::Directory, 0),
            "blobs/",
            std::io::empty(),
        )
        .map_err(|e| tar_err("writing blobs/", e))?;
    }
    for d in &dirs {
        b.append_data(
            &mut header(tar::EntryType::Directory, 0),
            d,
            std::io::empty(),
        )
        .map_err(|e| tar_err(&format!("writing {d}"), e))?;
    }
    for (path, c) in content {
        match c {
            Content::Bytes(bytes) => b.append_data(
                &mut header(tar::EntryType::Regular, bytes.len() as u64),
                path,
                bytes.as_slice(),
            ),
            Content::Blob(d) => {
                let mut rdr = scheme.blob_get(r, d).map_err(|e| {
                    e.context(format!("reading blob {} of {}", d.digest, r.common_name()))
                })?;
                b.append_data(
                    &mut header(tar::EntryType::Regular, d.size_u64()?),
                    path,
                    &mut rdr,
                )
            }
        }
        .map_err(|e| tar_err(&format!("writing {path}"), e))?;
    }
    for (name, bytes) in small {
        b.append_data(
            &mut header(tar::EntryType::Regular, bytes.len() as u64),
            name,
            bytes.as_slice(),
        )
        .map_err(|e| tar_err(&format!("writing {name}"), e))?;
    }
    b.finish().map_err(|e| tar_err("finishing the tar", e))?;
    Ok(())
}
