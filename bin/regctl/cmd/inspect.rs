//! Commands that look inside images: `image get-file`, `blob get-file`, `blob diff-config`,
//! `blob diff-layer`, `manifest diff`, `image check-base`, and `image create` (an empty
//! image to build on).

use std::io::{Read, Write};
use std::sync::Arc;

use regclient::diff::{self, DiffOpts};
use regclient::format::{self, Data};
use regclient::image_config::{ImageConfig, MAX_CONFIG};
use regclient::layer::{self, FileHeader, Found};
use regclient::manifest::Source;
use regclient::mediatype;
use regclient::scheme::BlobExpect;
use regclient::template::{Object, Time, Value};
use regclient::{Descriptor, Digest, Error, ErrorKind, Manifest, Platform, Reference, Result};

use super::{invalid, with_raw, Ctx};

const ANNOTATION_BASE_NAME: &str = "org.opencontainers.image.base.name";
const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// Template data of `get-file --format`: `.Header` (Go's `tar.Header` fields).
struct FileData {
    header: FileHeader,
}

impl Object for FileData {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Header" => Some(Value::Object(Arc::new(self.header.clone()))),
            // The content is written only without --format.
            "Reader" => Some(Value::Nil),
            _ => None,
        }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "Header": self.header.to_json(), "Reader": {} })
    }
}

/// A descriptor for a blob known only by digest (size unknown).
fn by_digest(s: &str) -> Result<Descriptor> {
    Ok(Descriptor {
        digest: Digest::parse(s)?,
        size: -1,
        ..Default::default()
    })
}

/// Writes a found file: `--format` output, the `out` file, or stdout.
fn emit_file(ctx: &Ctx, out: &str, h: &FileHeader, rdr: &mut dyn Read) -> Result<()> {
    match ctx.m.value("format") {
        "" => {}
        fmt => {
            let data = Data::new(Value::Object(Arc::new(FileData { header: h.clone() })));
            return ctx.render(fmt, &data);
        }
    }
    if out.is_empty() {
        let mut o = std::io::stdout().lock();
        std::io::copy(rdr, &mut o)?;
        o.flush()?;
    } else {
        let mut f =
            std::fs::File::create(out).map_err(|e| Error::io(e, format!("creating {out}")))?;
        std::io::copy(rdr, &mut f)?;
        f.flush()?;
    }
    Ok(())
}

fn file_deleted(file: &str) -> Error {
    Error::new(ErrorKind::FileDeleted, format!("file deleted: {file}"))
}

fn file_not_found(file: &str) -> Error {
    Error::new(ErrorKind::NotFound, format!("file not found: {file}"))
}

/// `image get-file ref file [out]`: the file from the topmost layer that has it.
pub fn image_get_file(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let file = ctx.m.arg(1);
    let out = ctx.m.arg(2);
    let p = ctx.platform()?.unwrap_or_else(Platform::host);
    let m = ctx.client.manifest_get_platform(&r, &p)?;
    let scheme = ctx.client.scheme(&r)?;
    for d in m.layers().iter().rev() {
        let rdr = scheme
            .blob_get(&r, d)
            .map_err(|e| e.context(format!("reading layer {}", d.digest)))?;
        let found = layer::find_file(rdr, file, |h, rdr| emit_file(ctx, out, h, rdr))
            .map_err(|e| e.context(format!("layer {}", d.digest)))?;
        match found {
            Found::File(()) => return Ok(()),
            Found::Deleted => return Err(file_deleted(file)),
            Found::NotFound => {}
        }
    }
    Err(file_not_found(file))
}

/// `blob get-file repo digest file [out]`: one file of one layer.
pub fn blob_get_file(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let d = by_digest(ctx.m.arg(1))?;
    let file = ctx.m.arg(2);
    let out = ctx.m.arg(3);
    let rdr = ctx
        .client
        .scheme(&r)?
        .blob_get(&r, &d)
        .map_err(|e| e.context(format!("reading blob {} from {}", d.digest, r.repo_name())))?;
    match layer::find_file(rdr, file, |h, rdr| emit_file(ctx, out, h, rdr))? {
        Found::File(()) => Ok(()),
        Found::Deleted => Err(file_deleted(file)),
        Found::NotFound => Err(file_not_found(file)),
    }
}

fn diff_opts(ctx: &Ctx) -> Result<DiffOpts> {
    let context = match ctx.m.value("context") {
        "" => 3,
        s => s
            .parse()
            .map_err(|_| invalid(format!("--context must be a number, got {s:?}")))?,
    };
    Ok(DiffOpts {
        context,
        full: ctx.m.on("context-full"),
    })
}

fn print_diff(ctx: &Ctx, a: &[String], b: &[String]) -> Result<()> {
    let lines = diff::unified(a, b, &diff_opts(ctx)?);
    let mut text = String::new();
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    ctx.out(text.as_bytes())
}

/// Indented JSON of `raw`, as lines.
fn json_lines(raw: &[u8], what: &str) -> Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(raw)
        .map_err(|e| Error::new(ErrorKind::Parse, format!("parsing {what}: {e}")))?;
    let s = serde_json::to_string_pretty(&v)
        .map_err(|e| Error::new(ErrorKind::Parse, format!("formatting {what}: {e}")))?;
    Ok(diff::lines(&s).into_iter().map(String::from).collect())
}

/// Reads blob `dig` of repository `repo` as an image config.
fn config_blob(ctx: &Ctx, repo: &str, dig: &str) -> Result<Vec<String>> {
    let r = ctx.reference(repo)?;
    let d = by_digest(dig)?;
    let raw = ctx
        .client
        .scheme(&r)?
        .blob_get(&r, &d)
        .and_then(|b| b.read_all(MAX_CONFIG))
        .map_err(|e| {
            e.context(format!(
                "reading config {} from {}",
                d.digest,
                r.repo_name()
            ))
        })?;
    json_lines(&raw, "config")
}

/// `blob diff-config repo dig repo dig`.
pub fn diff_config(ctx: &Ctx) -> Result<()> {
    let a = config_blob(ctx, ctx.m.arg(0), ctx.m.arg(1))?;
    let b = config_blob(ctx, ctx.m.arg(2), ctx.m.arg(3))?;
    print_diff(ctx, &a, &b)
}

fn layer_listing(ctx: &Ctx, repo: &str, dig: &str) -> Result<Vec<String>> {
    let r = ctx.reference(repo)?;
    let d = by_digest(dig)?;
    let rdr = ctx
        .client
        .scheme(&r)?
        .blob_get(&r, &d)
        .map_err(|e| e.context(format!("reading layer {} from {}", d.digest, r.repo_name())))?;
    layer::list(rdr, ctx.m.on("ignore-timestamp"))
        .map_err(|e| e.context(format!("listing layer {}", d.digest)))
}

/// `blob diff-layer repo dig repo dig`.
pub fn diff_layer(ctx: &Ctx) -> Result<()> {
    let a = layer_listing(ctx, ctx.m.arg(0), ctx.m.arg(1))?;
    let b = layer_listing(ctx, ctx.m.arg(2), ctx.m.arg(3))?;
    print_diff(ctx, &a, &b)
}

/// `manifest diff a b`.
pub fn manifest_diff(ctx: &Ctx) -> Result<()> {
    let ra = ctx.reference(ctx.m.arg(0))?;
    let rb = ctx.reference(ctx.m.arg(1))?;
    let ma = ctx.client.manifest_get(&ra)?;
    let mb = ctx.client.manifest_get(&rb)?;
    let a = json_lines(ma.raw(), "manifest")?;
    let b = json_lines(mb.raw(), "manifest")?;
    print_diff(ctx, &a, &b)
}

fn mismatch(msg: String) -> Error {
    Error::new(ErrorKind::Mismatch, msg)
}

/// `image check-base ref`.
pub fn check_base(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let res = check_base_run(ctx, &r);
    let quiet = ctx.m.on("quiet");
    match res {
        Ok(()) => {
            if !quiet {
                ctx.out(b"base image matches\n")?;
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::Mismatch => {
            if !quiet {
                ctx.out(b"base image has changed\n")?;
            }
            // The reason goes to the log; stderr otherwise stays quiet (see main).
            ctx.log
                .info("base image differs", &[("reason", e.to_string().as_str())]);
            Err(Error::new(ErrorKind::Mismatch, "base image has changed"))
        }
        Err(e) => Err(e),
    }
}

fn check_base_run(ctx: &Ctx, r: &Reference) -> Result<()> {
    let mut top = None;
    let (base_name, base_digest) = match ctx.m.value("base") {
        "" => {
            let m = ctx.client.manifest_get(r)?;
            let ann = m.annotations();
            let name = ann.get(ANNOTATION_BASE_NAME).cloned().ok_or_else(|| {
                Error::new(
                    ErrorKind::MissingAnnotation,
                    format!(
                        "annotation is missing: {} has no {ANNOTATION_BASE_NAME}, give --base",
                        r.common_name()
                    ),
                )
            })?;
            let digest = match ctx.m.value("digest") {
                "" => ann.get(ANNOTATION_BASE_DIGEST).cloned().unwrap_or_default(),
                d => d.to_string(),
            };
            top = Some(m);
            (name, digest)
        }
        b => (b.to_string(), ctx.m.value("digest").to_string()),
    };
    let base = ctx.reference(&base_name)?;
    if !base_digest.is_empty() {
        let want = Digest::parse(&base_digest)?;
        let got = ctx.resolve_digest(&base, None)?;
        ctx.log.debug(
            "base digest",
            &[
                ("expected", want.to_string().as_str()),
                ("current", got.to_string().as_str()),
            ],
        );
        if got != want {
            return Err(mismatch(format!(
                "base image has changed: {} is {got}, expected {want}",
                base.common_name()
            )));
        }
        return Ok(());
    }
    let m = match top {
        Some(m) => m,
        None => ctx.client.manifest_get(r)?,
    };
    let no_config = ctx.m.on("no-config");
    match ctx.platform()? {
        Some(p) => {
            let m = if m.is_index() {
                ctx.client.manifest_get_platform(r, &p)?
            } else {
                m
            };
            check_platform(ctx, r, &m, &base, &p, no_config)
        }
        None if m.is_index() => {
            let mut checked = 0;
            for d in m.manifests() {
                // Attestations and other platform-less entries have no base to compare.
                let Some(p) = d.platform.as_ref().filter(|p| p.os != "unknown") else {
                    continue;
                };
                let child = ctx
                    .client
                    .manifest_get(&r.set_digest(&d.digest.to_string()))?;
                check_platform(ctx, r, &child, &base, p, no_config)
                    .map_err(|e| e.context(format!("platform {p}")))?;
                checked += 1;
            }
            if checked == 0 {
                return Err(invalid(format!(
                    "{} lists no platform to compare",
                    r.common_name()
                )));
            }
            Ok(())
        }
        None => {
            // A single image: compare with the base for the platform its config names.
            let p = match config_of(ctx, r, &m).map(|c| c.platform()) {
                Ok(p) if !p.os.is_empty() && !p.architecture.is_empty() => p,
                _ => Platform::host(),
            };
            check_platform(ctx, r, &m, &base, &p, no_config)
        }
    }
}

/// Base layers must be a prefix of the image's, then (unless `no_config`) the base history a
/// prefix of the image history.
fn check_platform(
    ctx: &Ctx,
    r: &Reference,
    m: &Manifest,
    base: &Reference,
    p: &Platform,
    no_config: bool,
) -> Result<()> {
    let bm = ctx.client.manifest_get_platform(base, p)?;
    let layers = m.layers();
    let base_layers = bm.layers();
    if base_layers.len() > layers.len() {
        return Err(mismatch(format!(
            "base image has more layers than the image ({} > {})",
            base_layers.len(),
            layers.len()
        )));
    }
    for (i, (b, l)) in base_layers.iter().zip(&layers).enumerate() {
        if b.digest != l.digest {
            return Err(mismatch(format!(
                "base layer {i} changed: {} is now {}",
                l.digest, b.digest
            )));
        }
    }
    if no_config {
        return Ok(());
    }
    let cfg = config_of(ctx, r, m)?;
    let bcfg = config_of(ctx, base, &bm)?;
    if bcfg.history.len() > cfg.history.len() {
        return Err(mismatch(format!(
            "base image has more history entries than the image ({} > {})",
            bcfg.history.len(),
            cfg.history.len()
        )));
    }
    for (i, (b, h)) in bcfg.history.iter().zip(&cfg.history).enumerate() {
        let same_time = match (&b.created, &h.created) {
            (Some(x), Some(y)) => same_instant(x, y),
            (None, None) => true,
            _ => false,
        };
        if b.author != h.author
            || b.comment != h.comment
            || !same_time
            || b.created_by != h.created_by
            || b.empty_layer != h.empty_layer
        {
            return Err(mismatch(format!("base history entry {i} changed")));
        }
    }
    Ok(())
}

fn same_instant(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        Time::parse("2006-01-02T15:04:05.999999999Z07:00", s)
            .or_else(|_| Time::parse(RFC3339, s))
            .ok()
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => {
            x.unix() == y.unix() && x.format(".000000000") == y.format(".000000000")
        }
        _ => a == b,
    }
}

fn config_of(ctx: &Ctx, r: &Reference, m: &Manifest) -> Result<ImageConfig> {
    let cd = m.config().ok_or_else(|| {
        Error::new(
            ErrorKind::UnsupportedMediaType,
            format!("{} has no config", r.common_name()),
        )
    })?;
    let raw = match cd.embedded_data() {
        Some(d) => d,
        None => ctx
            .client
            .scheme(r)?
            .blob_get(r, cd)?
            .read_all(MAX_CONFIG)?,
    };
    ImageConfig::parse(&raw)
}

fn key_values(ctx: &Ctx, flag: &str) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    for kv in ctx.m.values(flag) {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| invalid(format!("--{flag} must be key=value, got {kv:?}")))?;
        if k.is_empty() {
            return Err(invalid(format!("--{flag} needs a key, got {kv:?}")));
        }
        out.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    Ok(out)
}

/// The config of an empty image (JSON in Go's field order).
pub fn scratch_config(
    p: &Platform,
    created: Option<&str>,
    labels: serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let mut c = serde_json::Map::new();
    if let Some(t) = created {
        c.insert("created".into(), t.into());
    }
    c.insert("architecture".into(), p.architecture.clone().into());
    c.insert("os".into(), p.os.clone().into());
    if !p.os_version.is_empty() {
        c.insert("os.version".into(), p.os_version.clone().into());
    }
    if !p.os_features.is_empty() {
        c.insert("os.features".into(), p.os_features.clone().into());
    }
    if !p.variant.is_empty() {
        c.insert("variant".into(), p.variant.clone().into());
    }
    let mut run = serde_json::Map::new();
    if !labels.is_empty() {
        run.insert("Labels".into(), labels.into());
    }
    c.insert("config".into(), run.into());
    c.insert(
        "rootfs".into(),
        serde_json::json!({"type": "layers", "diff_ids": []}),
    );
    c.into()
}

/// `image create ref`: pushes an image with no layers.
pub fn create(ctx: &Ctx) -> Result<()> {
    let r = ctx.reference(ctx.m.arg(0))?;
    let p = ctx.platform()?.unwrap_or_else(Platform::host);
    let (manifest_type, config_type) = match ctx.m.value("media-type") {
        "" | mediatype::OCI1_MANIFEST => (mediatype::OCI1_MANIFEST, mediatype::OCI1_IMAGE_CONFIG),
        mediatype::DOCKER2_MANIFEST => {
            (mediatype::DOCKER2_MANIFEST, mediatype::DOCKER2_IMAGE_CONFIG)
        }
        mt => {
            return Err(Error::new(
                ErrorKind::UnsupportedMediaType,
                format!(
                    "unsupported manifest media type {mt:?} (use {} or {})",
                    mediatype::OCI1_MANIFEST,
                    mediatype::DOCKER2_MANIFEST
                ),
            ))
        }
    };
    let created = match ctx.m.value("created") {
        "" => None,
        "now" => Some(Time::now().format(RFC3339)),
        s => {
            Time::parse(RFC3339, s).map_err(|e| {
                invalid(format!(
                    "--created must be \"now\" or RFC 3339, got {s:?}: {e}"
                ))
            })?;
            Some(s.to_string())
        }
    };
    let labels = key_values(ctx, "label")?;
    let annotations = key_values(ctx, "annotation")?;
    let conf = serde_json::to_vec(&scratch_config(&p, created.as_deref(), labels))
        .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
    let conf_desc = Descriptor::for_bytes(config_type, &conf);
    let scheme = ctx.client.scheme(&r)?;
    scheme
        .blob_put(&r, &BlobExpect::from_descriptor(&conf_desc), &mut &conf[..])
        .map_err(|e| e.context(format!("pushing config to {}", r.repo_name())))?;
    let mut body = serde_json::Map::new();
    body.insert("schemaVersion".into(), 2.into());
    body.insert("mediaType".into(), manifest_type.into());
    body.insert(
        "config".into(),
        serde_json::to_value(&conf_desc)
            .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?,
    );
    body.insert("layers".into(), serde_json::Value::Array(Vec::new()));
    if !annotations.is_empty() {
        body.insert("annotations".into(), annotations.into());
    }
    let raw = serde_json::to_vec_pretty(&serde_json::Value::Object(body))
        .map_err(|e| Error::new(ErrorKind::Parse, e.to_string()))?;
    let m = Manifest::from_bytes(
        raw,
        Source {
            content_type: Some(manifest_type),
            ..Default::default()
        },
    )?;
    let by_digest = ctx.m.on("by-digest");
    let target = if by_digest || r.tag.is_empty() && !r.digest.is_empty() {
        r.set_digest(&m.digest().to_string())
    } else {
        r.clone()
    };
    scheme
        .manifest_put(&target, &m, Default::default())
        .map_err(|e| e.context(format!("pushing manifest {}", target.common_name())))?;
    match ctx.m.value("format") {
        "" if by_digest => ctx.out(format!("{}\n", m.digest()).as_bytes()),
        "" => Ok(()),
        fmt => ctx.render(fmt, &with_raw(format::manifest(&m, &target), m.raw(), &[])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_config_fields() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        let mut labels = serde_json::Map::new();
        labels.insert("a".into(), "b".into());
        let c = scratch_config(&p, Some("2020-01-01T00:00:00Z"), labels);
        assert_eq!(
            c.to_string(),
            r#"{"created":"2020-01-01T00:00:00Z","architecture":"arm","os":"linux","variant":"v7","config":{"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":[]}}"#
        );
        let c = scratch_config(&p, None, Default::default());
        assert!(c.get("created").is_none());
        assert_eq!(c["config"], serde_json::json!({}));
    }

    #[test]
    fn history_times_compare_as_instants() {
        assert!(same_instant(
            "2020-01-01T00:00:00Z",
            "2020-01-01T01:00:00+01:00"
        ));
        assert!(same_instant(
            "2020-01-01T00:00:00.5Z",
            "2020-01-01T00:00:00.500Z"
        ));
        assert!(!same_instant(
            "2020-01-01T00:00:00Z",
            "2020-01-01T00:00:01Z"
        ));
    }
}
