//! `artifact list|tree|get|put`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use regclient::format;
use regclient::image_config::MAX_CONFIG;
use regclient::manifest::{Body, ImageManifest, Index};
use regclient::referrer::{self, ListOpts, MatchOpts};
use regclient::scheme::{BlobExpect, PutOpts, TagOpts};
use regclient::template::{Object, Value};
use regclient::{
    mediatype, platform, Algorithm, Descriptor, Digest, Error, ErrorKind, Manifest, Platform,
    Reference, Result,
};

use super::{invalid, with_raw, Ctx, ANNOTATION_TITLE};

/// The repository referrers are read from: `--external`, else the subject's.
fn referrer_source(ctx: &Ctx, subject: &Reference) -> Result<Reference> {
    match ctx.m.value("external") {
        "" => Ok(subject.clone()),
        s => ctx.reference(s),
    }
}

fn list_opts(ctx: &Ctx) -> Result<ListOpts> {
    Ok(ListOpts {
        filter: ctx.match_opts()?,
        slow_search: ctx.m.on("slow-referrers"),
    })
}

/// Tags of `r`'s repository (for `--digest-tags`).
fn repo_tags(ctx: &Ctx, r: &Reference) -> Result<Vec<String>> {
    Ok(ctx
        .client
        .scheme(r)?
        .tag_list(r, &TagOpts::default())
        .map_err(|e| e.context(format!("listing tags of {}", r.repo_name())))?
        .tags)
}

/// Digest tags of `d` among `tags`: those starting with `sha256-<hex>`, except the referrers
/// fallback tag itself.
pub fn digest_tags_of(tags: &[String], d: &Digest) -> Vec<String> {
    let prefix = d.fallback_tag();
    tags.iter()
        .filter(|t| t.starts_with(&prefix) && **t != prefix)
        .cloned()
        .collect()
}

pub fn list(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let source = referrer_source(ctx, &r)?;
    let opts = list_opts(ctx)?;
    let digest = ctx.resolve_digest(&r, ctx.platform()?.as_ref())?;
    let mut rl = referrer::list(ctx.client.scheme(&source)?, &source, &r, &digest, &opts)
        .map_err(|e| e.context(format!("listing referrers of {}", r.common_name())))?;
    if ctx.m.on("digest-tags") {
        rl.tags = digest_tags_of(&repo_tags(ctx, &r)?, &digest);
    }
    let mut data = format::referrer_list(&rl);
    if let Some(m) = &rl.manifest {
        data = with_raw(data, m.raw(), m.headers());
    }
    ctx.render(ctx.m.value("format"), &data)
}

/// One node of `artifact tree`.
#[derive(Clone)]
struct TreeNode {
    r: Reference,
    digest: Digest,
    manifest: Option<Manifest>,
    platform: Option<Platform>,
    artifact_type: String,
    children: Vec<TreeNode>,
    referrers: Vec<TreeNode>,
    tags: Vec<String>,
}

impl TreeNode {
    fn leaf(r: Reference, d: &Descriptor) -> TreeNode {
        TreeNode {
            r,
            digest: d.digest.clone(),
            manifest: None,
            platform: d.platform.clone(),
            artifact_type: d.artifact_type.clone(),
            children: Vec::new(),
            referrers: Vec::new(),
            tags: Vec::new(),
        }
    }

    fn pretty_into(&self, s: &mut String, indent: usize) {
        let pad = " ".repeat(indent);
        let section = |s: &mut String, title: &str, nodes: &[TreeNode]| {
            if nodes.is_empty() {
                return;
            }
            let _ = writeln!(s, "{pad}{title}:");
            for n in nodes {
                let _ = write!(s, "{pad}  - {}", n.digest);
                if let Some(p) = &n.platform {
                    let _ = write!(s, " [{p}]");
                }
                if !n.artifact_type.is_empty() {
                    let _ = write!(s, ": {}", n.artifact_type);
                }
                s.push('\n');
                n.pretty_into(s, indent + 4);
            }
        };
        section(s, "Children", &self.children);
        section(s, "Referrers", &self.referrers);
        if !self.tags.is_empty() {
            let _ = writeln!(s, "{pad}Tags:");
            for t in &self.tags {
                let _ = writeln!(s, "{pad}  - {t}");
            }
        }
    }
}

impl Object for TreeNode {
    fn field(&self, name: &str) -> Option<Value> {
        let nodes = |v: &[TreeNode]| {
            Value::List(
                v.iter()
                    .map(|n| Value::Object(Arc::new(n.clone())))
                    .collect(),
            )
        };
        Some(match name {
            "Ref" => Value::String(self.r.common_name()),
            "Digest" => Value::String(self.digest.to_string()),
            "Manifest" => match &self.manifest {
                Some(m) => format::manifest(m, &self.r).value,
                None => Value::Nil,
            },
            "Platform" => match &self.platform {
                Some(p) => Value::Json(serde_json::to_value(p).unwrap_or_default()),
                None => Value::Nil,
            },
            "ArtifactType" => Value::String(self.artifact_type.clone()),
            "Child" => nodes(&self.children),
            "Referrer" => nodes(&self.referrers),
            "Tags" => Value::List(self.tags.iter().cloned().map(Value::String).collect()),
            _ => return None,
        })
    }

    fn to_json(&self) -> serde_json::Value {
        let mut o = serde_json::Map::new();
        o.insert("reference".into(), self.r.common_name().into());
        if let Some(m) = &self.manifest {
            o.insert("manifest".into(), m.json());
        }
        if let Some(p) = &self.platform {
            o.insert(
                "platform".into(),
                serde_json::to_value(p).unwrap_or_default(),
            );
        }
        if !self.artifact_type.is_empty() {
            o.insert("artifactType".into(), self.artifact_type.clone().into());
        }
        let list =
            |v: &[TreeNode]| serde_json::Value::Array(v.iter().map(|n| n.to_json()).collect());
        o.insert("child".into(), list(&self.children));
        o.insert("referrer".into(), list(&self.referrers));
        o.insert("tags".into(), self.tags.clone().into());
        serde_json::Value::Object(o)
    }

    fn pretty(&self) -> Option<String> {
        let mut s = format!("Ref: {}\nDigest: {}\n", self.r.common_name(), self.digest);
        self.pretty_into(&mut s, 0);
        Some(s)
    }
}

/// Tree nesting limit: real graphs are a few levels deep.
const MAX_TREE_DEPTH: usize = 32;

struct TreeWalk<'a> {
    ctx: &'a Ctx,
    opts: ListOpts,
    external: Option<Reference>,
    tags: Option<Vec<String>>,
    ancestors: Vec<Digest>,
    /// The first error met; the walk continues around it so the partial tree can be shown.
    err: Option<Error>,
}

impl TreeWalk<'_> {
    /// Builds the node for `r` (which has a digest, except for the root).
    fn node(
        &mut self,
        r: &Reference,
        desc: Option<&Descriptor>,
        referrer: bool,
    ) -> Option<TreeNode> {
        let leaf = |r: &Reference| desc.map(|d| TreeNode::leaf(r.clone(), d));
        if let Some(d) = desc {
            if self.ancestors.contains(&d.digest) {
                self.err.get_or_insert(Error::new(
                    ErrorKind::Loop,
                    format!("loop encountered at {}", r.common_name()),
                ));
                return leaf(r);
            }
        }
        if self.ancestors.len() >= MAX_TREE_DEPTH {
            self.err.get_or_insert(Error::new(
                ErrorKind::Loop,
                format!("loop encountered: tree deeper than {MAX_TREE_DEPTH} levels"),
            ));
            return leaf(r);
        }
        let m = match self.ctx.client.manifest_get(r) {
            Ok(m) => m,
            Err(e) => {
                self.err.get_or_insert(e);
                return leaf(r);
            }
        };
        let digest = m.digest().clone();
        let node_ref = if desc.is_some() {
            r.set_digest(&digest.to_string())
        } else {
            r.add_digest(&digest.to_string())
        };
        let mut node = TreeNode {
            r: node_ref,
            digest: digest.clone(),
            platform: desc.and_then(|d| d.platform.clone()),
            // Referrers show their type as listings do (falling back to the config media
            // type); plain images and indexes only an explicit artifactType.
            artifact_type: match desc {
                Some(d) if referrer && !d.artifact_type.is_empty() => d.artifact_type.clone(),
                _ if referrer => m.referrer_artifact_type(),
                _ => m.artifact_type().to_string(),
            },
            manifest: None,
            children: Vec::new(),
            referrers: Vec::new(),
            tags: self
                .tags
                .as_ref()
                .map(|t| digest_tags_of(t, &digest))
                .unwrap_or_default(),
        };
        self.ancestors.push(digest.clone());
        for d in m.manifests() {
            if !mediatype::is_manifest(&d.media_type) {
                continue;
            }
            let child_ref = r.set_digest(&d.digest.to_string());
            if let Some(n) = self.node(&child_ref, Some(d), false) {
                node.children.push(n);
            }
        }
        let source = self.external.clone().unwrap_or_else(|| r.clone());
        let listed = self
            .ctx
            .client
            .scheme(&source)
            .and_then(|s| referrer::list(s, &source, r, &digest, &self.opts));
        match listed {
            Ok(rl) => {
                for d in &rl.descriptors {
                    let rr = source.set_digest(&d.digest.to_string());
                    if let Some(n) = self.node(&rr, Some(d), true) {
                        node.referrers.push(n);
                    }
                }
            }
            Err(e) => {
                self.err.get_or_insert(e);
            }
        }
        self.ancestors.pop();
        node.manifest = Some(m);
        Some(node)
    }
}

pub fn tree(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let external = match ctx.m.value("external") {
        "" => None,
        s => Some(ctx.reference(s)?),
    };
    let tags = if ctx.m.on("digest-tags") {
        Some(repo_tags(ctx, &r)?)
    } else {
        None
    };
    let mut walk = TreeWalk {
        ctx,
        opts: list_opts(ctx)?,
        external,
        tags,
        ancestors: Vec::new(),
        err: None,
    };
    let Some(root) = walk.node(&r, None, false) else {
        return Err(walk
            .err
            .unwrap_or_else(|| Error::new(ErrorKind::NotFound, r.common_name())));
    };
    if root.manifest.is_none() {
        // The root itself could not be read: nothing to show.
        if let Some(e) = walk.err {
            return Err(e);
        }
    }
    let data = format::Data::new(Value::Object(Arc::new(root)));
    ctx.render(ctx.m.value("format"), &data)?;
    walk.err.map_or(Ok(()), Err)
}

pub fn get(ctx: &Ctx) -> Result<()> {
    let subject = match ctx.m.value("subject") {
        "" => ctx.m.value("refers"),
        s => s,
    };
    let arg = ctx.m.arg(0);
    if arg.is_empty() && subject.is_empty() {
        return Err(invalid(
            "either a reference or subject must be provided".to_string(),
        ));
    }
    if !ctx.m.value("external").is_empty() && subject.is_empty() {
        return Err(invalid("--external requires --subject".to_string()));
    }
    let platform = ctx.platform()?;
    let opts = list_opts(ctx)?;
    let (r, m) = if !arg.is_empty() {
        let r = ctx.reference(arg)?;
        let m = ctx.client.manifest_get(&r)?;
        if m.is_index() {
            let d = pick_from_index(&m, &opts.filter, platform.as_ref())
                .map_err(|e| e.context(r.common_name()))?;
            let r = r.set_digest(&d.digest.to_string());
            let m = ctx.client.manifest_get(&r)?;
            (r, m)
        } else {
            (r, m)
        }
    } else {
        let s = ctx.reference(subject)?;
        let source = referrer_source(ctx, &s)?;
        let digest = ctx.resolve_digest(&s, platform.as_ref())?;
        let rl = referrer::list(ctx.client.scheme(&source)?, &source, &s, &digest, &opts)
            .map_err(|e| e.context(format!("listing referrers of {}", s.common_name())))?;
        let Some(first) = rl.descriptors.first() else {
            return Err(Error::new(
                ErrorKind::NotFound,
                format!(
                    "referrer not found: none of {} matches the filters",
                    s.common_name()
                ),
            ));
        };
        if rl.descriptors.len() > 1 && opts.filter.sort_annotation.is_empty() {
            ctx.log.warn(
                "multiple referrers match, using the first (add filters or a sort)",
                &[("subject", s.common_name().as_str())],
            );
        }
        let r = source.set_digest(&first.digest.to_string());
        let m = ctx.client.manifest_get(&r)?;
        (r, m)
    };
    let scheme = ctx.client.scheme(&r)?;

    let want_config = ctx.m.on("config");
    let config_file = ctx.m.value("config-file");
    if want_config || !config_file.is_empty() {
        let cd = m.config().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                format!("{} has no config", r.common_name()),
            )
        })?;
        let raw = match cd.embedded_data() {
            Some(d) => d,
            None => scheme.blob_get(&r, cd)?.read_all(MAX_CONFIG)?,
        };
        if !config_file.is_empty() {
            std::fs::write(config_file, &raw)
                .map_err(|e| Error::io(e, format!("writing {config_file}")))?;
        }
        if want_config {
            return ctx.out(&raw);
        }
    }

    let strip = ctx.m.on("strip-dirs");
    let layers = select_layers(
        &m.layers(),
        ctx.m.values("file"),
        ctx.m.values("file-media-type"),
        strip,
    );
    if layers.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "layer not found: none in {} matches the filters",
                r.common_name()
            ),
        ));
    }
    let dir = ctx.m.value("output");
    if dir.is_empty() {
        if layers.len() > 1 {
            return Err(invalid(format!(
                "more than one matching layer found in {}, add filters or use --output",
                r.common_name()
            )));
        }
        let mut rdr = scheme.blob_get(&r, &layers[0])?;
        let mut out = std::io::stdout().lock();
        std::io::copy(&mut rdr, &mut out)?;
        out.flush()?;
        return Ok(());
    }
    for l in &layers {
        let path = output_path(Path::new(dir), l, strip)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(e, format!("creating {}", parent.display())))?;
        }
        ctx.log.info(
            "writing layer",
            &[
                ("digest", l.digest.to_string().as_str()),
                ("file", path.display().to_string().as_str()),
            ],
        );
        let mut rdr = scheme.blob_get(&r, l)?;
        let mut f = std::fs::File::create(&path)
            .map_err(|e| Error::io(e, format!("creating {}", path.display())))?;
        if let Err(e) = std::io::copy(&mut rdr, &mut f) {
            // Do not leave content that failed verification behind.
            drop(f);
            let _ = std::fs::remove_file(&path);
            return Err(Error::from(e).context(format!("writing {}", path.display())));
        }
    }
    Ok(())
}

/// Parses repeated `k=v` flags into annotations.
pub fn annotations(ctx: &Ctx, flag: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in ctx.m.values(flag) {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| invalid(format!("--{flag} must be key=value, got {a:?}")))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// Refuses media types that are not RFC 6838 `type/subtype` (parameters included).
fn check_media_type(mt: &str) -> Result<()> {
    if mediatype::valid(mt) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("unsupported media type: {mt:?}"),
        ))
    }
}

/// The `{mediaType, digest, size}` of the manifest at `r` (of `platform`'s manifest when
/// given), from a HEAD when it reports a digest, else a GET.
pub fn head_descriptor(
    ctx: &Ctx,
    r: &Reference,
    platform: Option<&Platform>,
) -> Result<Descriptor> {
    let d = match platform {
        Some(p) => ctx.client.manifest_get_platform(r, p)?.descriptor(),
        None => {
            let head = ctx
                .client
                .scheme(r)?
                .manifest_head(r)
                .map_err(|e| e.context(format!("reading manifest {}", r.common_name())))?;
            match head.descriptor() {
                Some(d) if !d.media_type.is_empty() && head.size.is_some() => d,
                _ => ctx.client.manifest_get(r)?.descriptor(),
            }
        }
    };
    Ok(Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        ..Default::default()
    })
}

/// A temporary file removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(what: &str) -> TempFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        TempFile(std::env::temp_dir().join(format!("regctl-{what}-{}-{n}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Digest and size of a file, streamed.
fn file_digest(path: &Path) -> Result<(Digest, i64)> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::io(e, format!("opening {}", path.display())))?;
    let mut h = Algorithm::Sha256.digester();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0i64;
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io(e, format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as i64;
    }
    Ok((h.finish(), size))
}

/// Packs directory `dir` into a tar+gzip temp file (entries under the directory's name).
fn tar_dir(dir: &Path) -> Result<TempFile> {
    let tmp = TempFile::new("dir");
    let f = std::fs::File::create(&tmp.0)
        .map_err(|e| Error::io(e, format!("creating {}", tmp.0.display())))?;
    let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    b.follow_symlinks(false);
    let name = dir
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    b.append_dir_all(&name, dir)
        .and_then(|_| b.into_inner())
        .and_then(|gz| gz.finish())
        .map_err(|e| Error::io(e, format!("packing {}", dir.display())))?;
    Ok(tmp)
}

/// Pushes a blob from `path` unless the repository already has it.
fn push_file_blob(ctx: &Ctx, r: &Reference, d: &Descriptor, path: &Path) -> Result<()> {
    let scheme = ctx.client.scheme(r)?;
    if scheme.blob_head(r, d).is_ok() {
        ctx.log.info(
            "blob already present",
            &[("digest", d.digest.to_string().as_str())],
        );
        return Ok(());
    }
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::io(e, format!("opening {}", path.display())))?;
    scheme
        .blob_put(r, &BlobExpect::from_descriptor(d), &mut f)
        .map_err(|e| e.context(format!("pushing {}", path.display())))?;
    Ok(())
}

/// Pushes an in-memory blob unless the repository already has it.
pub fn push_bytes_blob(ctx: &Ctx, r: &Reference, d: &Descriptor, data: &[u8]) -> Result<()> {
    let scheme = ctx.client.scheme(r)?;
    if scheme.blob_head(r, d).is_ok() {
        return Ok(());
    }
    let mut rdr = data;
    scheme
        .blob_put(r, &BlobExpect::from_descriptor(d), &mut rdr)
        .map_err(|e| e.context(format!("pushing blob {}", d.digest)))?;
    Ok(())
}

pub fn put(ctx: &Ctx) -> Result<()> {
    let subject = match ctx.m.value("subject") {
        "" => ctx.m.value("refers"),
        s => s,
    };
    let arg = ctx.m.arg(0);
    if arg.is_empty() && subject.is_empty() {
        return Err(invalid(
            "either a reference or subject must be provided".to_string(),
        ));
    }
    let media_type = match ctx.m.value("media-type") {
        "" => mediatype::OCI1_MANIFEST,
        mediatype::OCI1_MANIFEST => mediatype::OCI1_MANIFEST,
        mt => {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "unsupported media type: {mt:?} (only {})",
                    mediatype::OCI1_MANIFEST
                ),
            ))
        }
    };
    let index = ctx.m.on("index");
    if index && arg.is_empty() {
        return Err(invalid("--index requires a reference".to_string()));
    }

    // Where the artifact goes.
    let mut target = if arg.is_empty() {
        None
    } else {
        Some(super::index::write_ref(ctx.reference(arg)?))
    };
    let pushed_by_digest = target.is_none() || ctx.m.on("by-digest");
    let subject_ref = if subject.is_empty() {
        None
    } else {
        Some(ctx.reference(subject)?)
    };
    match ctx.m.value("external") {
        "" => {}
        ext => {
            if subject_ref.is_none() {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "unsupported: --external requires --subject",
                ));
            }
            let ext = ctx.reference(ext)?;
            match &target {
                Some(t) if !t.equal_repository(&ext) => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        format!(
                            "unsupported: --external {} does not match the artifact reference {}",
                            ext.repo_name(),
                            t.common_name()
                        ),
                    ))
                }
                Some(_) => {}
                None => target = Some(ext),
            }
        }
    }
    // Without a reference the manifest goes by digest into the subject's repository.
    let target = match target {
        Some(t) => t,
        None => subject_ref.clone().expect("checked above"),
    };

    // Media types.
    let mut artifact_type = ctx.m.value("artifact-type").to_string();
    let mut config_type = ctx.m.value("config-type").to_string();
    let file_types = ctx.m.values("file-media-type");
    for mt in [&artifact_type, &config_type]
        .into_iter()
        .filter(|s| !s.is_empty())
        .chain(file_types.iter())
    {
        check_media_type(mt)?;
    }
    let config_file = ctx.m.value("config-file");
    if config_file.is_empty() {
        if artifact_type.is_empty()
            && (config_type.is_empty() || config_type == mediatype::OCI1_EMPTY)
        {
            ctx.log.warn(
                "using default value for artifact-type is not recommended",
                &[("artifact-type", mediatype::UNKNOWN_ARTIFACT)],
            );
            artifact_type = mediatype::UNKNOWN_ARTIFACT.to_string();
        }
        if config_type.is_empty() {
            config_type = mediatype::OCI1_EMPTY.to_string();
        }
    } else if config_type.is_empty() {
        if artifact_type.is_empty() {
            return Err(invalid(
                "--config-type is required with --config-file when --artifact-type is not set"
                    .to_string(),
            ));
        }
        ctx.log.warn(
            "setting config-type using artifact-type",
            &[("config-type", artifact_type.as_str())],
        );
        config_type = artifact_type.clone();
    }

    // Config blob.
    let config_raw = if config_file.is_empty() {
        b"{}".to_vec()
    } else {
        std::fs::read(config_file).map_err(|e| Error::io(e, format!("reading {config_file}")))?
    };
    let config = Descriptor::for_bytes(&config_type, &config_raw);

    // Layers: files (directories packed), or stdin.
    let files = ctx.m.values("file");
    let n_layers = files.len().max(1);
    let layer_types: Vec<String> = if file_types.is_empty() && n_layers == 1 {
        let t = if !artifact_type.is_empty() && artifact_type != mediatype::UNKNOWN_ARTIFACT {
            artifact_type.clone()
        } else {
            mediatype::OCTET_STREAM.to_string()
        };
        vec![t]
    } else if file_types.len() == n_layers {
        file_types.to_vec()
    } else {
        return Err(invalid(format!(
            "one --file-media-type is needed for each file ({} files, {} media types)",
            n_layers,
            file_types.len()
        )));
    };
    let mut temps = Vec::new();
    let mut sources: Vec<(PathBuf, Option<String>)> = Vec::new();
    if files.is_empty() {
        let tmp = TempFile::new("stdin");
        let mut f = std::fs::File::create(&tmp.0)
            .map_err(|e| Error::io(e, format!("creating {}", tmp.0.display())))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut f)
            .map_err(|e| Error::io(e, "reading stdin".to_string()))?;
        sources.push((tmp.0.clone(), None));
        temps.push(tmp);
    } else {
        let strip = ctx.m.on("strip-dirs");
        for f in files {
            let path = Path::new(f);
            let meta = std::fs::metadata(path).map_err(|e| Error::io(e, format!("reading {f}")))?;
            let mut t = if strip {
                base_name(f).to_string()
            } else {
                f.trim_end_matches('/').to_string()
            };
            if meta.is_dir() {
                t.push('/');
                let tmp = tar_dir(path)?;
                // Directories always carry their title: it is what marks them as archives.
                sources.push((tmp.0.clone(), Some(t)));
                temps.push(tmp);
            } else {
                let title = ctx.m.on("file-title").then_some(t);
                sources.push((path.to_path_buf(), title));
            }
        }
    }
    let mut layers = Vec::new();
    for ((path, title), mt) in sources.iter().zip(&layer_types) {
        let (digest, size) = file_digest(path)?;
        let mut d = Descriptor {
            media_type: mt.clone(),
            digest,
            size,
            ..Default::default()
        };
        if let Some(t) = title {
            d.annotations
                .insert(ANNOTATION_TITLE.to_string(), t.clone());
        }
        push_file_blob(ctx, &target, &d, path)?;
        layers.push(d);
    }
    drop(temps);
    push_bytes_blob(ctx, &target, &config, &config_raw)?;

    // Subject.
    let platform = ctx.platform()?;
    let subject_desc = match &subject_ref {
        Some(s) => Some(head_descriptor(ctx, s, platform.as_ref())?),
        None => None,
    };

    let annotations = annotations(ctx, "annotation")?;
    let body = ImageManifest {
        schema_version: 2,
        media_type: media_type.to_string(),
        artifact_type: artifact_type.clone(),
        config: Some(config),
        layers,
        subject: subject_desc,
        annotations: annotations.clone(),
    };
    let m = Manifest::from_body(Body::Image(body), Algorithm::Sha256)?;
    let scheme = ctx.client.scheme(&target)?;
    let out_ref = if index {
        let child = target.set_digest(&m.digest().to_string());
        scheme
            .manifest_put(&child, &m, PutOpts { child: true })
            .map_err(|e| e.context(format!("pushing manifest {}", child.common_name())))?;
        let mut idx = match ctx.client.manifest_get(&target) {
            Ok(cur) => match cur.body() {
                Body::Index(i) => i.clone(),
                _ => {
                    return Err(Error::new(
                        ErrorKind::UnsupportedMediaType,
                        format!("{} is not an index", target.common_name()),
                    ))
                }
            },
            Err(e) if e.kind() == ErrorKind::NotFound => Index {
                schema_version: 2,
                media_type: mediatype::OCI1_INDEX.to_string(),
                ..Default::default()
            },
            Err(e) => return Err(e),
        };
        let mut d = m.descriptor();
        d.artifact_type = artifact_type.clone();
        d.annotations = annotations;
        d.platform = platform;
        idx.manifests.push(d);
        let im = Manifest::from_body(Body::Index(idx), Algorithm::Sha256)?;
        // The artifact itself is by digest; the index stays at the reference.
        let r = super::index::put_ref(&target, im.digest(), false);
        scheme
            .manifest_put(&r, &im, PutOpts::default())
            .map_err(|e| e.context(format!("pushing index {}", r.common_name())))?;
        r
    } else {
        let r = super::index::put_ref(&target, m.digest(), pushed_by_digest);
        scheme
            .manifest_put(&r, &m, PutOpts::default())
            .map_err(|e| e.context(format!("pushing manifest {}", r.common_name())))?;
        r
    };
    match ctx.m.value("format") {
        "" if ctx.m.on("by-digest") => ctx.out(format!("{}\n", m.digest()).as_bytes()),
        "" => Ok(()),
        fmt => ctx.render(fmt, &with_raw(format::manifest(&m, &out_ref), m.raw(), &[])),
    }
}

/// The first index entry passing the filters (and best matching the platform, if given).
fn pick_from_index(m: &Manifest, filter: &MatchOpts, p: Option<&Platform>) -> Result<Descriptor> {
    let mut candidates: Vec<Descriptor> = m
        .manifests()
        .iter()
        .filter(|d| filter.matches(d))
        .cloned()
        .collect();
    filter.apply(&mut candidates);
    match p {
        Some(p) => platform::select(&candidates, p).cloned(),
        None => candidates.into_iter().next().ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "no matching artifact found in the index",
            )
        }),
    }
}

fn title(d: &Descriptor) -> Option<&str> {
    d.annotations
        .get(ANNOTATION_TITLE)
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

fn base_name(t: &str) -> &str {
    t.trim_end_matches('/').rsplit('/').next().unwrap_or(t)
}

/// Layers selected by `--file` (title, or its base name with `--strip-dirs`) and
/// `--file-media-type`.
fn select_layers(
    layers: &[Descriptor],
    files: &[String],
    media_types: &[String],
    strip: bool,
) -> Vec<Descriptor> {
    layers
        .iter()
        .filter(|l| {
            files.is_empty()
                || title(l).is_some_and(|t| {
                    files
                        .iter()
                        .any(|f| f == t || (strip && base_name(f) == base_name(t)))
                })
        })
        .filter(|l| media_types.is_empty() || media_types.contains(&l.media_type))
        .cloned()
        .collect()
}

/// Where a layer goes under `dir`: its title (base name with `strip`) or digest hex. Titles
/// come from the artifact, so absolute paths and `..` are refused.
fn output_path(dir: &Path, l: &Descriptor, strip: bool) -> Result<PathBuf> {
    let name = match title(l) {
        Some(t) if t.ends_with('/') || unpack(l) => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "layer {} is a directory archive ({t}); extracting it is not supported",
                    l.digest
                ),
            ))
        }
        Some(t) if strip => base_name(t).to_string(),
        Some(t) => t.to_string(),
        None => l.digest.hex().to_string(),
    };
    let rel = Path::new(&name);
    let safe = !name.is_empty()
        && rel
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("layer title {name:?} is not a safe relative path"),
        ));
    }
    Ok(dir.join(rel))
}

fn unpack(l: &Descriptor) -> bool {
    l.annotations
        .get("io.deis.oras.content.unpack")
        .is_some_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(title: Option<&str>, mt: &str, data: &[u8]) -> Descriptor {
        let mut d = Descriptor::for_bytes(mt, data);
        if let Some(t) = title {
            d.annotations.insert(ANNOTATION_TITLE.into(), t.into());
        }
        d
    }

    #[test]
    fn layer_selection() {
        let ls = vec![
            layer(Some("layer1.txt"), "application/example.layer.1", b"1"),
            layer(Some("dir/layer2.txt"), "application/example.layer.2", b"2"),
            layer(None, "application/example.layer.3", b"3"),
        ];
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(select_layers(&ls, &[], &[], false).len(), 3);
        let got = select_layers(&ls, &s(&["layer1.txt"]), &[], false);
        assert_eq!(got, vec![ls[0].clone()]);
        let got = select_layers(&ls, &[], &s(&["application/example.layer.3"]), false);
        assert_eq!(got, vec![ls[2].clone()]);
        assert!(select_layers(&ls, &s(&["layer2.txt"]), &[], false).is_empty());
        assert_eq!(select_layers(&ls, &s(&["layer2.txt"]), &[], true).len(), 1);
        assert!(select_layers(&ls, &s(&["nope"]), &[], false).is_empty());
    }

    #[test]
    fn output_paths_are_safe() {
        let dir = Path::new("/out");
        let l = layer(Some("a/b.txt"), "x/y", b"1");
        assert_eq!(
            output_path(dir, &l, false).unwrap(),
            Path::new("/out/a/b.txt")
        );
        assert_eq!(output_path(dir, &l, true).unwrap(), Path::new("/out/b.txt"));
        let l = layer(None, "x/y", b"1");
        assert_eq!(
            output_path(dir, &l, false).unwrap(),
            dir.join(l.digest.hex())
        );
        for bad in ["../x", "/etc/passwd", "a/../../x"] {
            let l = layer(Some(bad), "x/y", b"1");
            assert!(output_path(dir, &l, false).is_err(), "{bad}");
        }
        let l = layer(Some("dir/"), "x/y", b"1");
        assert_eq!(
            output_path(dir, &l, false).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }

    #[test]
    fn media_type_checks() {
        assert!(check_media_type("application/example.test+json").is_ok());
        for bad in [
            "application/example;version=1.0",
            "noslash",
            "/x",
            "application/",
        ] {
            let e = check_media_type(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::UnsupportedMediaType, "{bad}");
            assert!(e.to_string().contains("unsupported media type"), "{e}");
        }
    }

    #[test]
    fn digest_tags_exclude_fallback() {
        let d = Digest::sha256(b"x");
        let fb = d.fallback_tag();
        let tags = vec![
            fb.clone(),
            format!("{fb}.sig"),
            format!("{fb}.abc.meta"),
            "v1".to_string(),
        ];
        assert_eq!(
            digest_tags_of(&tags, &d),
            vec![format!("{fb}.sig"), format!("{fb}.abc.meta")]
        );
    }

    #[test]
    fn tree_pretty_layout() {
        let r = Reference::parse("ocidir://repo:v1").unwrap();
        let mut child = TreeNode::leaf(
            r.set_digest(&Digest::sha256(b"c").to_string()),
            &Descriptor {
                platform: Some(Platform::new("linux", "amd64", "")),
                ..Descriptor::for_bytes(mediatype::OCI1_MANIFEST, b"c")
            },
        );
        child.referrers.push(TreeNode::leaf(
            r.clone(),
            &Descriptor {
                artifact_type: "application/example.sbom".into(),
                ..Descriptor::for_bytes(mediatype::OCI1_MANIFEST, b"s")
            },
        ));
        let mut root = TreeNode::leaf(
            r.clone(),
            &Descriptor::for_bytes(mediatype::OCI1_INDEX, b"i"),
        );
        root.children.push(child);
        root.tags.push("sha256-x.sig".into());
        let p = root.pretty().unwrap();
        let want = format!(
            "Ref: ocidir://repo:v1\nDigest: {}\nChildren:\n  - {} [linux/amd64]\n    Referrers:\n      - {}: application/example.sbom\nTags:\n  - sha256-x.sig\n",
            Digest::sha256(b"i"),
            Digest::sha256(b"c"),
            Digest::sha256(b"s")
        );
        assert_eq!(p, want);
        let j = root.to_json();
        assert_eq!(
            j["child"][0]["referrer"][0]["artifactType"],
            "application/example.sbom"
        );
        assert!(matches!(root.field("Child"), Some(Value::List(l)) if l.len() == 1));
        assert!(root.field("Nope").is_none());
    }
}
