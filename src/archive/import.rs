//! Reading an OCI layout tar or a `docker save` tar into a scheme.
//!
//! Order of work: index the tar, read and verify every manifest and check every blob the
//! image needs is in the tar with the right size, then push blobs (verified against their
//! digests while streaming), child manifests by digest, and the chosen manifest last. Any
//! failure stops before the last step, so the target tag never points at missing content.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde::Deserialize;

use crate::descriptor::Descriptor;
use crate::digest::{Algorithm, Digest};
use crate::error::{Error, ErrorKind, Result};
use crate::image_config::MAX_CONFIG;
use crate::manifest::{self, Body, ImageManifest, Manifest};
use crate::mediatype as mt;
use crate::reference::Reference;
use crate::scheme::{BlobExpect, PutOpts, Scheme};

use super::tarindex::TarIndex;
use super::{Compression, TempFile, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};

/// Deepest index nesting followed.
const MAX_DEPTH: usize = 8;
/// Largest `manifest.json`, `index.json` or `oci-layout` read.
const MAX_META: usize = 16 * 1024 * 1024;

/// Options of [`import`].
#[derive(Debug, Clone, Default)]
pub struct ImportOpts {
    /// Which image of a multi-image tar: matched against `RepoTags` (docker) or the
    /// `org.opencontainers.image.ref.name` / `io.containerd.image.name` annotations (OCI).
    pub name: String,
    /// Stop (kind `Canceled`) once this passes: checked on every read of the tar and before
    /// each manifest put, so nothing is tagged after it.
    pub deadline: Option<std::time::Instant>,
}

/// What [`import`] did.
#[derive(Debug, Clone)]
pub struct ImportReport {
    /// `oci` or `docker`: which part of the tar was read.
    pub format: &'static str,
    /// Digest of the manifest pushed to the reference.
    pub digest: Digest,
    /// Blobs streamed to the target.
    pub blobs_pushed: usize,
    /// Blobs the target already had.
    pub blobs_skipped: usize,
    /// Manifests pushed (children and the top one).
    pub manifests_pushed: usize,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg)
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().as_str(), d.hex())
}

/// Imports the tar `file` into `r` of `scheme`. The file must be seekable (a regular file);
/// gzip is decompressed to a temporary file first.
pub fn import(
    scheme: &dyn Scheme,
    r: &Reference,
    file: &Path,
    opts: &ImportOpts,
) -> Result<ImportReport> {
    let mut f = File::open(file).map_err(|e| Error::io(e, file.display().to_string()))?;
    let mut head = Vec::with_capacity(16);
    (&mut f).take(16).read_to_end(&mut head)?;
    let _temp;
    let tar_path: &Path = match Compression::detect(&head) {
        Compression::None => file,
        Compression::Gzip => {
            f.seek(SeekFrom::Start(0))?;
            let (t, out) = TempFile::create("regclient-import")?;
            let mut out = BufWriter::new(out);
            let mut dec = crate::deadline::DeadlineIo::new(
                flate2::read::MultiGzDecoder::new(std::io::BufReader::new(f)),
                opts.deadline,
            );
            std::io::copy(&mut dec, &mut out)
                .map_err(|e| bad(format!("decompressing {}: {e}", file.display())))?;
            out.flush()?;
            _temp = t;
            _temp.path()
        }
        c => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{}: unsupported compression ({}): decompress the file first",
                    file.display(),
                    c.as_str()
                ),
            ))
        }
    };
    let idx = TarIndex::build(tar_path).map_err(|e| e.context(file.display().to_string()))?;
    if idx.contains("oci-layout") && idx.contains("index.json") {
        import_oci(scheme, r, &idx, opts)
    } else if idx.contains("manifest.json") {
        import_docker(scheme, r, &idx, opts)
    } else {
        Err(bad(format!(
            "{}: neither an OCI layout (oci-layout and index.json) nor a docker save tar (manifest.json)",
            file.display()
        )))
    }
}

/// Counts pushes.
#[derive(Default)]
struct Pushed {
    blobs: usize,
    skipped: usize,
}

/// Pushes one blob from the tar entry `path` unless the target has it.
fn push_blob(
    scheme: &dyn Scheme,
    r: &Reference,
    d: &Descriptor,
    path: &str,
    open: &dyn Fn() -> Result<Box<dyn Read>>,
    n: &mut Pushed,
    deadline: Option<std::time::Instant>,
) -> Result<()> {
    crate::deadline::check(deadline, "import")?;
    if scheme.blob_head(r, d).is_ok() {
        n.skipped += 1;
        return Ok(());
    }
    let mut rdr = crate::deadline::DeadlineIo::new(open()?, deadline);
    scheme
        .blob_put(r, &BlobExpect::from_descriptor(d), &mut rdr)
        .map_err(|e| e.context(format!("importing tar entry {path:?}")))?;
    n.blobs += 1;
    Ok(())
}

// ---- OCI layout ----

#[derive(Deserialize)]
struct LayoutFile {
    #[serde(rename = "imageLayoutVersion", default)]
    version: String,
}

fn choose_oci<'a>(entries: &'a [Descriptor], r: &Reference, name: &str) -> Result<&'a Descriptor> {
    let list = || {
        entries
            .iter()
            .map(|d| {
                d.annotations
                    .get(ANNOTATION_REF_NAME)
                    .cloned()
                    .unwrap_or_else(|| d.digest.to_string())
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if entries.is_empty() {
        return Err(bad("index.json lists no manifests"));
    }
    if entries.len() == 1 {
        return Ok(&entries[0]);
    }
    if !r.digest.is_empty() {
        if let Some(d) = entries.iter().find(|d| d.digest.to_string() == r.digest) {
            return Ok(d);
        }
    }
    let ann = |d: &Descriptor, k: &str| d.annotations.get(k).cloned().unwrap_or_default();
    if !name.is_empty() {
        if let Some(d) = entries.iter().find(|d| {
            ann(d, ANNOTATION_REF_NAME) == name
                || ann(d, ANNOTATION_IMAGE_NAME) == name
                || same_name(&ann(d, ANNOTATION_IMAGE_NAME), name)
        }) {
            return Ok(d);
        }
        return Err(Error::new(
            ErrorKind::NotFound,
            format!("no image named {name:?} in index.json (has: {})", list()),
        ));
    }
    let tag = r.tag_or_latest();
    entries
        .iter()
        .find(|d| ann(d, ANNOTATION_REF_NAME) == tag)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "index.json has {} images and none is tagged {tag:?} (has: {}); use --name",
                    entries.len(),
                    list()
                ),
            )
        })
}

/// Two image names equal after parsing (`alpine` = `docker.io/library/alpine:latest`)?
fn same_name(a: &str, b: &str) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    match (Reference::parse(a), Reference::parse(b)) {
        (Ok(x), Ok(y)) => {
            x.equal_repository(&y) && x.tag_or_latest() == y.tag_or_latest() && x.digest == y.digest
        }
        _ => false,
    }
}

/// Reads and verifies the manifest `d` from the tar, then its children; `order` gets them
/// children first.
fn read_manifests(
    idx: &TarIndex,
    d: &Descriptor,
    depth: usize,
    seen: &mut BTreeSet<String>,
    order: &mut Vec<Manifest>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ErrorKind::Loop,
            format!("index nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    if !seen.insert(d.digest.to_string()) {
        return Ok(());
    }
    let path = blob_path(&d.digest);
    let raw = idx.read(&path, manifest::MAX_PULL)?;
    if d.size >= 0 && raw.len() as i64 != d.size {
        return Err(bad(format!(
            "tar entry {path:?} has {} bytes, its descriptor says {}",
            raw.len(),
            d.size
        )));
    }
    let m = Manifest::from_bytes(
        raw,
        manifest::Source {
            descriptor_type: Some(&d.media_type),
            content_type: None,
            digest: Some(&d.digest),
        },
    )
    .map_err(|e| e.context(format!("tar entry {path:?}")))?;
    for c in m.manifests() {
        read_manifests(idx, c, depth + 1, seen, order)?;
    }
    order.push(m);
    Ok(())
}

fn import_oci(
    scheme: &dyn Scheme,
    r: &Reference,
    idx: &TarIndex,
    opts: &ImportOpts,
) -> Result<ImportReport> {
    let layout: LayoutFile = serde_json::from_slice(&idx.read("oci-layout", MAX_META)?)
        .map_err(|e| bad(format!("tar entry \"oci-layout\": {e}")))?;
    if layout.version != "1.0.0" {
        return Err(bad(format!(
            "tar entry \"oci-layout\": unsupported imageLayoutVersion {:?}",
            layout.version
        )));
    }
    let index: manifest::Index = serde_json::from_slice(&idx.read("index.json", MAX_META)?)
        .map_err(|e| bad(format!("tar entry \"index.json\": {e}")))?;
    let chosen = choose_oci(&index.manifests, r, &opts.name)?.clone();

    // Validate everything before pushing anything.
    let mut order = Vec::new();
    read_manifests(idx, &chosen, 0, &mut BTreeSet::new(), &mut order)?;
    let mut blobs: BTreeMap<String, Descriptor> = BTreeMap::new();
    for m in &order {
        for d in m.config().into_iter().cloned().chain(m.layers()) {
            let path = blob_path(&d.digest);
            if !idx.contains(&path) {
                if !d.urls.is_empty() {
                    continue; // foreign layer, not carried in the tar
                }
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!(
                        "blob {} of manifest {} is missing: tar entry {path:?} not found",
                        d.digest,
                        m.digest()
                    ),
                ));
            }
            let size = idx.size(&path)?;
            if d.size < 0 || size != d.size as u64 {
                return Err(bad(format!(
                    "tar entry {path:?} has {size} bytes, its descriptor says {}",
                    d.size
                )));
            }
            blobs.insert(path, d);
        }
    }

    let mut n = Pushed::default();
    for (path, d) in &blobs {
        let open = || -> Result<Box<dyn Read>> { Ok(Box::new(idx.open(path)?)) };
        push_blob(scheme, r, d, path, &open, &mut n, opts.deadline)?;
    }
    let top = order.pop().expect("the chosen manifest was read");
    crate::deadline::check(opts.deadline, "import")?;
    for m in &order {
        scheme
            .manifest_put(
                &r.set_digest(&m.digest().to_string()),
                m,
                PutOpts { child: true },
            )
            .map_err(|e| e.context(format!("pushing manifest {}", m.digest())))?;
    }
    crate::deadline::check(opts.deadline, "import")?;
    put_top(scheme, r, &top)?;
    Ok(ImportReport {
        format: "oci",
        digest: top.digest().clone(),
        blobs_pushed: n.blobs,
        blobs_skipped: n.skipped,
        manifests_pushed: order.len() + 1,
    })
}

fn put_top(scheme: &dyn Scheme, r: &Reference, m: &Manifest) -> Result<()> {
    if !r.digest.is_empty() && r.digest != m.digest().to_string() {
        return Err(Error::new(
            ErrorKind::DigestMismatch,
            format!(
                "the image in the tar has digest {}, the reference asks for {}",
                m.digest(),
                r.digest
            ),
        ));
    }
    m.check_push_size()?;
    scheme
        .manifest_put(r, m, PutOpts::default())
        .map_err(|e| e.context(format!("pushing manifest to {}", r.common_name())))
}

// ---- docker save ----

#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
    #[serde(rename = "LayerSources", default)]
    layer_sources: Option<BTreeMap<String, Descriptor>>,
}

/// The digest a tar entry name promises: `blobs/<alg>/<hex>` or `<hex>.json` (old docker
/// save configs).
fn named_digest(path: &str) -> Option<Digest> {
    let p = path.trim_start_matches("./");
    let parts: Vec<&str> = p.split('/').collect();
    match parts.as_slice() {
        ["blobs", alg, hex] => Digest::parse(&format!("{alg}:{hex}")).ok(),
        [file] => file
            .strip_suffix(".json")
            .filter(|h| h.len() == 64)
            .and_then(|h| Digest::parse(&format!("sha256:{h}")).ok()),
        _ => None,
    }
}

/// Docker media type for a layer media type (keeps the compression).
fn docker_layer_type(t: &str) -> &'static str {
    match t {
        mt::OCI1_LAYER | mt::DOCKER2_LAYER => mt::DOCKER2_LAYER,
        mt::OCI1_LAYER_ZSTD | mt::DOCKER2_LAYER_ZSTD => mt::DOCKER2_LAYER_ZSTD,
        mt::OCI1_FOREIGN_LAYER | mt::OCI1_FOREIGN_LAYER_GZIP | mt::DOCKER2_FOREIGN_LAYER => {
            mt::DOCKER2_FOREIGN_LAYER
        }
        _ => mt::DOCKER2_LAYER_GZIP,
    }
}

/// Hashes a stream.
fn hash(rdr: &mut dyn Read) -> Result<(Digest, u64)> {
    let mut dg = Algorithm::Sha256.digester();
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        let k = rdr.read(&mut buf)?;
        if k == 0 {
            break;
        }
        dg.update(&buf[..k]);
        n += k as u64;
    }
    Ok((dg.finish(), n))
}

fn import_docker(
    scheme: &dyn Scheme,
    r: &Reference,
    idx: &TarIndex,
    opts: &ImportOpts,
) -> Result<ImportReport> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&idx.read("manifest.json", MAX_META)?)
            .map_err(|e| bad(format!("tar entry \"manifest.json\": {e}")))?;
    let entry = if opts.name.is_empty() {
        entries.first()
    } else {
        entries.iter().find(|e| {
            e.repo_tags
                .iter()
                .flatten()
                .any(|t| t == &opts.name || same_name(t, &opts.name))
        })
    };
    let entry = entry.ok_or_else(|| {
        if opts.name.is_empty() {
            bad("tar entry \"manifest.json\" lists no images")
        } else {
            let tags: Vec<&str> = entries
                .iter()
                .flat_map(|e| e.repo_tags.iter().flatten().map(String::as_str))
                .collect();
            Error::new(
                ErrorKind::NotFound,
                format!(
                    "no image named {:?} in manifest.json (has: {})",
                    opts.name,
                    tags.join(", ")
                ),
            )
        }
    })?;

    // Validate: every file named exists, named digests match.
    for p in std::iter::once(&entry.config).chain(&entry.layers) {
        if !idx.contains(p) {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("manifest.json names {p:?}, which is not in the tar"),
            ));
        }
    }
    let config = idx.read(&entry.config, MAX_CONFIG)?;
    let config_desc = Descriptor::for_bytes(mt::DOCKER2_IMAGE_CONFIG, &config);
    if let Some(want) = named_digest(&entry.config) {
        if want != config_desc.digest {
            return Err(Error::new(
                ErrorKind::DigestMismatch,
                format!(
                    "tar entry {:?}: digest is {}, its name says {want}",
                    entry.config, config_desc.digest
                ),
            ));
        }
    }
    serde_json::from_slice::<serde_json::Value>(&config).map_err(|e| {
        bad(format!(
            "tar entry {:?}: config is not JSON: {e}",
            entry.config
        ))
    })?;
    let sources = entry.layer_sources.clone().unwrap_or_default();

    let mut n = Pushed::default();
    let mut layers = Vec::new();
    for path in &entry.layers {
        let size = idx.size(path)?;
        let named = named_digest(path);
        // The original descriptor, when the export recorded one (kept as is).
        if let Some(src) = named.as_ref().and_then(|d| sources.get(&d.to_string())) {
            if src.size != size as i64 || Some(&src.digest) != named.as_ref() {
                return Err(bad(format!(
                    "tar entry {path:?} does not match its LayerSources descriptor"
                )));
            }
            let d = Descriptor {
                media_type: docker_layer_type(&src.media_type).to_string(),
                digest: src.digest.clone(),
                size: src.size,
                ..Default::default()
            };
            let open = || -> Result<Box<dyn Read>> { Ok(Box::new(idx.open(path)?)) };
            push_blob(scheme, r, &d, path, &open, &mut n, opts.deadline)?;
            layers.push(d);
            continue;
        }
        let mut head = Vec::new();
        idx.open(path)?.take(16).read_to_end(&mut head)?;
        let comp = Compression::detect(&head);
        match comp {
            Compression::None | Compression::Gzip | Compression::Zstd => {
                // Pushed as is, so digests stay stable: compressed layers keep their bytes, and
                // a plain tar (docker save) becomes an uncompressed Docker layer whose digest is
                // its diff id (re-gzipping every layer made imports several times slower than
                // skopeo).
                let (digest, len) = hash(&mut idx.open(path)?)?;
                if let Some(want) = &named {
                    if want != &digest {
                        return Err(Error::new(
                            ErrorKind::DigestMismatch,
                            format!("tar entry {path:?}: digest is {digest}, its name says {want}"),
                        ));
                    }
                }
                let d = Descriptor {
                    media_type: match comp {
                        Compression::Gzip => mt::DOCKER2_LAYER_GZIP,
                        Compression::Zstd => mt::DOCKER2_LAYER_ZSTD,
                        _ => mt::DOCKER2_LAYER,
                    }
                    .to_string(),
                    digest,
                    size: len as i64,
                    ..Default::default()
                };
                let open = || -> Result<Box<dyn Read>> { Ok(Box::new(idx.open(path)?)) };
                push_blob(scheme, r, &d, path, &open, &mut n, opts.deadline)?;
                layers.push(d);
            }
            c => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "tar entry {path:?}: unsupported layer compression ({})",
                        c.as_str()
                    ),
                ))
            }
        }
    }
    let open = || -> Result<Box<dyn Read>> { Ok(Box::new(std::io::Cursor::new(config.clone()))) };
    push_blob(
        scheme,
        r,
        &config_desc,
        &entry.config,
        &open,
        &mut n,
        opts.deadline,
    )?;
    let m = Manifest::from_body(
        Body::Image(ImageManifest {
            schema_version: 2,
            media_type: mt::DOCKER2_MANIFEST.to_string(),
            config: Some(config_desc),
            layers,
            ..Default::default()
        }),
        Algorithm::Sha256,
    )?;
    crate::deadline::check(opts.deadline, "import")?;
    put_top(scheme, r, &m)?;
    Ok(ImportReport {
        format: "docker",
        digest: m.digest().clone(),
        blobs_pushed: n.blobs,
        blobs_skipped: n.skipped,
        manifests_pushed: 1,
    })
}
