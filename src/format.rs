//! Output formatting for the tools: builds template data for each result type (with regctl's
//! Go field and method names) and renders `--format` strings, including the `raw`, `body` and
//! `headers` keywords.
//!
//! Data objects answer Go names first (`GetDescriptor`, `RawBody`, `CommonName`) and fall back
//! to the JSON body with a loose key match, so `{{.Config.Digest}}` and `{{.Layers}}` read the
//! manifest as stored. `printPretty` uses regctl's tab-aligned layouts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::descriptor::Descriptor;
use crate::error::Result;
use crate::image_config::ImageConfig;
use crate::manifest::Manifest;
use crate::reference::Reference;
use crate::referrer::ReferrerList;
use crate::scheme::TagList;
use crate::template::{Object, Template, Value};

/// Something a command prints: template data plus the raw response, if any.
#[derive(Clone)]
pub struct Data {
    /// The template data.
    pub value: Value,
    /// The original body bytes (`body` keyword).
    pub raw_body: Option<Vec<u8>>,
    /// Response headers (`headers` keyword); empty for layouts.
    pub raw_headers: Vec<(String, String)>,
}

impl Data {
    /// Data without raw parts.
    pub fn new(value: Value) -> Data {
        Data {
            value,
            raw_body: None,
            raw_headers: Vec::new(),
        }
    }
}

/// Renders `fmt` for `data`: `raw` (headers, blank line, body), `body`/`raw-body`/`rawBody`,
/// `headers`/`raw-headers`/`rawHeaders`, or a Go template.
pub fn render(fmt: &str, data: &Data) -> Result<Vec<u8>> {
    match fmt {
        "body" | "raw-body" | "rawBody" => Ok(data.raw_body.clone().unwrap_or_default()),
        "headers" | "raw-headers" | "rawHeaders" => {
            Ok(headers_text(&data.raw_headers).into_bytes())
        }
        "raw" => {
            let mut out = headers_text(&data.raw_headers).into_bytes();
            if !out.is_empty() {
                out.extend_from_slice(b"\n");
            }
            out.extend_from_slice(data.raw_body.as_deref().unwrap_or_default());
            Ok(out)
        }
        _ => Ok(Template::parse(fmt)?.render(&data.value)?.into_bytes()),
    }
}

fn headers_text(h: &[(String, String)]) -> String {
    h.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

/// Go's tabwriter with one aligned column (minwidth 0, padding 1, space padding): the text
/// before the first tab of every line is padded to the widest such text plus one. Lines made
/// only of a tab become runs of spaces, as regctl prints them.
struct TabWriter {
    lines: Vec<(String, String)>,
}

impl TabWriter {
    fn new() -> TabWriter {
        TabWriter { lines: Vec::new() }
    }

    fn row(&mut self, key: impl Into<String>, val: impl Into<String>) {
        self.lines.push((key.into(), val.into()));
    }

    fn blank(&mut self) {
        self.row("", "");
    }

    fn finish(self) -> String {
        let width = self
            .lines
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0)
            + 1;
        let mut out = String::new();
        for (k, v) in self.lines {
            out.push_str(&k);
            for _ in k.chars().count()..width {
                out.push(' ');
            }
            out.push_str(&v);
            out.push('\n');
        }
        out
    }
}

/// regctl's size display: bytes below 100000, else decimal units with 4 significant digits.
pub fn human_size(size: i64) -> String {
    if size < 100_000 {
        return format!("{size}B");
    }
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = size as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", sig4(v), units[i])
}

/// `%.4g` as Go prints it, for values between 1 and 1000.
fn sig4(v: f64) -> String {
    let decimals = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    // 999.95 rounds to "1000.0" → Go would print "1e+03"; keep it readable instead.
    s
}

fn pretty_descriptor(tw: &mut TabWriter, d: &Descriptor, prefix: &str) {
    tw.row(format!("{prefix}Digest:"), d.digest.to_string());
    tw.row(format!("{prefix}MediaType:"), d.media_type.clone());
    if !d.artifact_type.is_empty() {
        tw.row(format!("{prefix}ArtifactType:"), d.artifact_type.clone());
    }
    tw.row(format!("{prefix}Size:"), human_size(d.size));
    if let Some(p) = &d.platform {
        tw.row(format!("{prefix}Platform:"), p.to_string());
        if !p.os_version.is_empty() {
            tw.row(format!("{prefix}OSVersion:"), p.os_version.clone());
        }
        if !p.os_features.is_empty() {
            tw.row(format!("{prefix}OSFeatures:"), p.os_features.join(", "));
        }
    }
    if !d.urls.is_empty() {
        tw.row(format!("{prefix}URLs:"), d.urls.join(", "));
    }
    pretty_annotations(tw, &d.annotations, prefix);
}

fn pretty_annotations(tw: &mut TabWriter, a: &BTreeMap<String, String>, prefix: &str) {
    if a.is_empty() {
        return;
    }
    tw.row(format!("{prefix}Annotations:"), "");
    for (k, v) in a {
        tw.row(format!("{prefix}  {k}:"), v.clone());
    }
}

/// regctl's human layout of a manifest or index.
pub fn pretty_manifest(m: &Manifest, r: &Reference) -> String {
    let mut tw = TabWriter::new();
    let name = if r.reference.is_empty() {
        String::new()
    } else {
        r.common_name()
    };
    if !name.is_empty() {
        tw.row("Name:", name.clone());
    }
    tw.row("MediaType:", m.media_type());
    if !m.artifact_type().is_empty() {
        tw.row("ArtifactType:", m.artifact_type());
    }
    tw.row("Digest:", m.digest().to_string());
    pretty_annotations(&mut tw, &m.annotations(), "");
    if m.is_index() {
        tw.blank();
        tw.row("Manifests:", "");
        for d in m.manifests() {
            tw.blank();
            if !name.is_empty() {
                tw.row("  Name:", r.set_digest(&d.digest.to_string()).common_name());
            }
            pretty_descriptor(&mut tw, d, "  ");
        }
    } else {
        let layers = m.layers();
        let total: i64 = m.config().map(|c| c.size).unwrap_or(0)
            + layers.iter().map(|l| l.size.max(0)).sum::<i64>();
        tw.row("Total Size:", human_size(total));
        if let Some(c) = m.config() {
            tw.blank();
            tw.row("Config:", "");
            pretty_descriptor(&mut tw, c, "  ");
        }
        tw.blank();
        tw.row("Layers:", "");
        for l in &layers {
            tw.blank();
            pretty_descriptor(&mut tw, l, "  ");
        }
    }
    if let Some(s) = m.subject() {
        tw.blank();
        tw.row("Subject:", "");
        pretty_descriptor(&mut tw, s, "  ");
    }
    tw.finish()
}

/// A digest as Go's `digest.Digest`: prints as the string, with `Hex`, `Encoded`,
/// `Algorithm` and `String` methods.
struct DigestObj(String);

impl Object for DigestObj {
    fn field(&self, name: &str) -> Option<Value> {
        let (algo, hex) = self.0.split_once(':').unwrap_or(("", &self.0));
        match name {
            "Hex" | "Encoded" => Some(Value::String(hex.to_string())),
            "Algorithm" => Some(Value::String(algo.to_string())),
            "String" => Some(Value::String(self.0.clone())),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::Value::String(self.0.clone())
    }
    fn display(&self) -> String {
        self.0.clone()
    }
}

fn digest_value(s: &str) -> Value {
    Value::Object(Arc::new(DigestObj(s.to_string())))
}

/// Looks `name` up in a JSON object: exact key, else a loose match ignoring case and `_.-`.
fn json_field(v: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    let obj = v.as_object()?;
    if let Some(x) = obj.get(name) {
        return Some(x.clone());
    }
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '.' | '-'))
            .flat_map(|c| c.to_lowercase())
            .collect()
    };
    let want = norm(name);
    obj.iter()
        .find(|(k, _)| norm(k) == want)
        .map(|(_, x)| x.clone())
}

struct DescriptorObj(Descriptor);

impl Object for DescriptorObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Digest" => Some(digest_value(&self.0.digest.to_string())),
            "Size" => Some(Value::Int(self.0.size)),
            "MediaType" => Some(Value::String(self.0.media_type.clone())),
            "ArtifactType" => Some(Value::String(self.0.artifact_type.clone())),
            "Annotations" => Some(string_map(&self.0.annotations)),
            "URLs" => Some(Value::List(
                self.0
                    .urls
                    .iter()
                    .map(|u| Value::String(u.clone()))
                    .collect(),
            )),
            "Platform" => Some(match &self.0.platform {
                Some(p) => Value::Object(Arc::new(PlatformObj(p.clone()))),
                None => Value::Nil,
            }),
            "Data" => Some(match &self.0.data {
                Some(d) => Value::String(d.clone()),
                None => Value::Nil,
            }),
            _ => json_field(&self.to_json(), name).map(Value::Json),
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
    fn pretty(&self) -> Option<String> {
        let mut tw = TabWriter::new();
        pretty_descriptor(&mut tw, &self.0, "");
        Some(tw.finish())
    }
}

struct PlatformObj(crate::platform::Platform);

impl Object for PlatformObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "String" => Some(Value::String(self.0.to_string())),
            "OS" => Some(Value::String(self.0.os.clone())),
            "Architecture" => Some(Value::String(self.0.architecture.clone())),
            "Variant" => Some(Value::String(self.0.variant.clone())),
            "OSVersion" => Some(Value::String(self.0.os_version.clone())),
            _ => json_field(&self.to_json(), name).map(Value::Json),
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).unwrap_or_default()
    }
    fn display(&self) -> String {
        self.0.to_string()
    }
}

/// A descriptor as template data.
pub fn descriptor_value(d: &Descriptor) -> Value {
    Value::Object(Arc::new(DescriptorObj(d.clone())))
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn headers_value(h: &[(String, String)]) -> Value {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    for (k, v) in h {
        match map.get_mut(k) {
            Some(Value::List(l)) => l.push(Value::String(v.clone())),
            _ => {
                map.insert(k.clone(), Value::List(vec![Value::String(v.clone())]));
            }
        }
    }
    Value::Map(map)
}

struct ManifestObj {
    m: Manifest,
    r: Reference,
    json: serde_json::Value,
}

impl Object for ManifestObj {
    fn field(&self, name: &str) -> Option<Value> {
        let m = &self.m;
        match name {
            "GetDescriptor" => Some(descriptor_value(&m.descriptor())),
            "GetRef" => Some(reference_value(&self.r)),
            "GetMediaType" | "MediaType" => Some(Value::String(m.media_type().to_string())),
            "GetConfig" => Some(m.config().map(descriptor_value).unwrap_or(Value::Nil)),
            "GetLayers" | "Layers" if !m.is_index() => Some(Value::List(
                m.layers().iter().map(descriptor_value).collect(),
            )),
            "Config" if !m.is_index() => {
                Some(m.config().map(descriptor_value).unwrap_or(Value::Nil))
            }
            "GetManifestList" | "Manifests" if m.is_index() => Some(Value::List(
                m.manifests().iter().map(descriptor_value).collect(),
            )),
            "GetAnnotations" | "Annotations" => Some(string_map(&m.annotations())),
            "GetSubject" | "Subject" => {
                Some(m.subject().map(descriptor_value).unwrap_or(Value::Nil))
            }
            "ArtifactType" | "GetArtifactType" => {
                Some(Value::String(m.artifact_type().to_string()))
            }
            "RawBody" | "GetOrig" => {
                Some(Value::String(String::from_utf8_lossy(m.raw()).into_owned()))
            }
            "RawHeaders" => Some(headers_value(m.headers())),
            "IsList" => Some(Value::Bool(m.is_index())),
            "IsSet" => Some(Value::Bool(true)),
            "Digest" => Some(digest_value(&m.digest().to_string())),
            _ => json_field(&self.json, name).map(Value::Json),
        }
    }
    fn to_json(&self) -> serde_json::Value {
        self.json.clone()
    }
    fn pretty(&self) -> Option<String> {
        Some(pretty_manifest(&self.m, &self.r))
    }
}

/// A manifest (fields of the manifest body by Go name, plus `GetDescriptor`, `GetConfig`,
/// `GetLayers`, `GetManifestList`, `GetAnnotations`, `GetSubject`, `MediaType`, `RawBody`,
/// `RawHeaders`, `IsList`, `IsSet`); printPretty gives regctl's manifest/index layout.
pub fn manifest(m: &Manifest, r: &Reference) -> Data {
    Data {
        value: manifest_value(m, r),
        raw_body: Some(m.raw().to_vec()),
        raw_headers: m.headers().to_vec(),
    }
}

/// A manifest as template data.
pub fn manifest_value(m: &Manifest, r: &Reference) -> Value {
    Value::Object(Arc::new(ManifestObj {
        json: m.json(),
        m: m.clone(),
        r: r.clone(),
    }))
}

struct ConfigObj {
    json: serde_json::Value,
}

impl Object for ConfigObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "GetConfig" => Some(Value::Json(self.json.clone())),
            _ => json_field(&self.json, name).map(Value::Json),
        }
    }
    fn to_json(&self) -> serde_json::Value {
        self.json.clone()
    }
}

/// An image config (`.Config.Labels`, `.Created`, `.OS`, ... and `GetConfig`).
pub fn image_config(cfg: &ImageConfig, raw: &[u8], r: &Reference) -> Data {
    let _ = r;
    let json = serde_json::to_value(cfg).unwrap_or_default();
    Data {
        value: Value::Object(Arc::new(ConfigObj { json })),
        raw_body: Some(raw.to_vec()),
        raw_headers: Vec::new(),
    }
}

struct TagListObj {
    tl: TagList,
    r: Reference,
}

impl Object for TagListObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Tags" | "GetTags" => Some(Value::List(
                self.tl
                    .tags
                    .iter()
                    .map(|t| Value::String(t.clone()))
                    .collect(),
            )),
            "Name" => Some(Value::String(self.tl.name.clone())),
            "Index" => Some(Value::Json(
                serde_json::from_slice(&self.tl.raw).unwrap_or_default(),
            )),
            "RawBody" => Some(Value::String(
                String::from_utf8_lossy(&self.tl.raw).into_owned(),
            )),
            "RawHeaders" => Some(headers_value(&self.tl.headers)),
            "MediaType" => Some(Value::String(self.tl.media_type.clone())),
            "GetRef" => Some(reference_value(&self.r)),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"name": self.tl.name, "tags": self.tl.tags})
    }
    fn pretty(&self) -> Option<String> {
        Some(self.tl.tags.iter().map(|t| format!("{t}\n")).collect())
    }
}

/// A tag list (`.Tags`, `.Name`, `.Index` for layouts, `RawBody`); printPretty is one tag per
/// line.
pub fn tag_list(tl: &TagList, r: &Reference) -> Data {
    Data {
        value: Value::Object(Arc::new(TagListObj {
            tl: tl.clone(),
            r: r.clone(),
        })),
        raw_body: Some(tl.raw.clone()),
        raw_headers: tl.headers.clone(),
    }
}

struct ReferrerListObj(ReferrerList);

impl Object for ReferrerListObj {
    fn field(&self, name: &str) -> Option<Value> {
        let rl = &self.0;
        match name {
            "Subject" => Some(reference_value(&rl.subject)),
            "Source" => Some(reference_value(&rl.source)),
            "Descriptors" => Some(Value::List(
                rl.descriptors.iter().map(descriptor_value).collect(),
            )),
            "Annotations" => Some(string_map(&rl.annotations)),
            "Tags" => Some(Value::List(
                rl.tags.iter().map(|t| Value::String(t.clone())).collect(),
            )),
            "Manifest" => Some(match &rl.manifest {
                Some(m) => manifest_value(m, &rl.source),
                None => Value::Nil,
            }),
            "IsEmpty" => Some(Value::Bool(rl.descriptors.is_empty())),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        let rl = &self.0;
        serde_json::json!({
            "subject": rl.subject.common_name(),
            "source": rl.source.common_name(),
            "descriptors": rl.descriptors,
            "annotations": rl.annotations,
            "tags": rl.tags,
        })
    }
    fn pretty(&self) -> Option<String> {
        Some(pretty_referrers(&self.0))
    }
}

fn pretty_referrers(rl: &ReferrerList) -> String {
    let mut tw = TabWriter::new();
    tw.row("Subject:", rl.subject.common_name());
    if !rl.source.equal_repository(&rl.subject) {
        tw.row("Source:", rl.source.common_name());
    }
    tw.blank();
    tw.row("Referrers:", "");
    for d in &rl.descriptors {
        tw.blank();
        tw.row(
            "  Name:",
            rl.source.set_digest(&d.digest.to_string()).common_name(),
        );
        pretty_descriptor(&mut tw, d, "  ");
    }
    if !rl.annotations.is_empty() {
        tw.blank();
        pretty_annotations(&mut tw, &rl.annotations, "");
    }
    if !rl.tags.is_empty() {
        tw.blank();
        tw.row("Tags:", "");
        for t in &rl.tags {
            tw.row(format!("  {t}"), "");
        }
    }
    tw.finish()
}

/// A referrers listing (`.Subject`, `.Source`, `.Descriptors`, `.Annotations`, `.Tags`,
/// `.Manifest`); printPretty gives regctl's referrer layout.
pub fn referrer_list(rl: &ReferrerList) -> Data {
    Data {
        value: Value::Object(Arc::new(ReferrerListObj(rl.clone()))),
        raw_body: rl.manifest.as_ref().map(|m| m.raw().to_vec()),
        raw_headers: rl
            .manifest
            .as_ref()
            .map(|m| m.headers().to_vec())
            .unwrap_or_default(),
    }
}

/// A descriptor (`.MediaType`, `.Digest`, `.Size`, ...).
pub fn descriptor(d: &Descriptor) -> Data {
    Data::new(descriptor_value(d))
}

struct BlobObj {
    d: Descriptor,
    headers: Vec<(String, String)>,
}

impl Object for BlobObj {
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "GetDescriptor" | "Descriptor" => Some(descriptor_value(&self.d)),
            "RawHeaders" => Some(headers_value(&self.headers)),
            "Digest" => Some(digest_value(&self.d.digest.to_string())),
            "Size" | "Length" => Some(Value::Int(self.d.size)),
            "MediaType" => Some(Value::String(self.d.media_type.clone())),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.d).unwrap_or_default()
    }
    fn pretty(&self) -> Option<String> {
        let mut tw = TabWriter::new();
        pretty_descriptor(&mut tw, &self.d, "");
        let mut s = tw.finish();
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\n"));
        }
        Some(s)
    }
}

/// A blob HEAD or GET result: descriptor fields plus response headers.
pub fn blob(d: &Descriptor, headers: &[(String, String)]) -> Data {
    Data {
        value: Value::Object(Arc::new(BlobObj {
            d: d.clone(),
            headers: headers.to_vec(),
        })),
        raw_body: None,
        raw_headers: headers.to_vec(),
    }
}

struct RefObj(Reference);

impl Object for RefObj {
    fn field(&self, name: &str) -> Option<Value> {
        let r = &self.0;
        let s = |x: &str| Some(Value::String(x.to_string()));
        match name {
            "CommonName" | "String" => s(&r.common_name()),
            "Scheme" => s(r.scheme.as_str()),
            "Reference" => s(&r.reference),
            "Registry" => s(&r.registry),
            "Repository" => s(&r.repository),
            "Tag" => s(&r.tag),
            "Digest" => s(&r.digest),
            "Path" => s(&r.path),
            "IsSet" => Some(Value::Bool(r.is_set())),
            _ => None,
        }
    }
    fn to_json(&self) -> serde_json::Value {
        let r = &self.0;
        serde_json::json!({
            "Scheme": r.scheme.as_str(), "Reference": r.reference, "Registry": r.registry,
            "Repository": r.repository, "Tag": r.tag, "Digest": r.digest, "Path": r.path,
        })
    }
    fn display(&self) -> String {
        self.0.common_name()
    }
}

/// A reference as template data.
pub fn reference_value(r: &Reference) -> Value {
    Value::Object(Arc::new(RefObj(r.clone())))
}

/// A reference (`.CommonName`, `.Scheme`, `.Registry`, `.Repository`, `.Tag`, `.Digest`,
/// `.Path`, `.Reference`).
pub fn reference(r: &Reference) -> Data {
    Data::new(reference_value(r))
}

/// Any JSON value (printPretty prints it indented).
pub fn json(v: serde_json::Value) -> Data {
    Data::new(Value::Json(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Source;

    #[test]
    fn sizes() {
        assert_eq!(human_size(123), "123B");
        assert_eq!(human_size(99_999), "99999B");
        assert_eq!(human_size(100_000), "100kB");
        assert_eq!(human_size(2_746_000), "2.746MB");
        assert_eq!(human_size(123_456), "123.5kB");
        assert_eq!(human_size(16_777_216), "16.78MB");
    }

    #[test]
    fn pretty_index_layout() {
        let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"platform":{"architecture":"amd64","os":"linux"}}],"annotations":{"org.example.version":"v1"}}"#;
        let m = Manifest::from_bytes(raw.to_vec(), Source::default()).unwrap();
        let r = Reference::parse("ocidir://x:v1").unwrap();
        let out = pretty_manifest(&m, &r);
        let lines: Vec<&str> = out.lines().collect();
        let col = "  org.example.version: ".len();
        assert_eq!(lines[0], format!("{:col$}ocidir://x:v1", "Name:"));
        assert_eq!(
            lines[1],
            format!(
                "{:col$}application/vnd.oci.image.index.v1+json",
                "MediaType:"
            )
        );
        assert!(out.contains(&format!("{:col$}v1\n", "  org.example.version:")));
        assert!(out.contains(&format!("{:col$}linux/amd64\n", "  Platform:")));
        assert!(out.contains(&format!(
            "{:col$}ocidir://x@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "  Name:"
        )));
        // blank separator lines are padded like Go's tabwriter
        assert!(lines.iter().any(|l| !l.is_empty() && l.trim().is_empty()));
    }

    #[test]
    fn loose_json_lookup() {
        let v = serde_json::json!({"rootfs": {"diff_ids": ["a"]}, "os.version": "10"});
        assert!(json_field(&v, "RootFS").is_some());
        assert_eq!(
            json_field(&json_field(&v, "RootFS").unwrap(), "DiffIDs").unwrap(),
            serde_json::json!(["a"])
        );
        assert_eq!(json_field(&v, "OSVersion").unwrap(), "10");
    }

    #[test]
    fn raw_keywords() {
        let mut d = Data::new(Value::Nil);
        d.raw_body = Some(b"{}".to_vec());
        d.raw_headers = vec![("Content-Type".into(), "x/y".into())];
        assert_eq!(render("body", &d).unwrap(), b"{}");
        assert_eq!(render("headers", &d).unwrap(), b"Content-Type: x/y\n");
        assert_eq!(render("raw", &d).unwrap(), b"Content-Type: x/y\n\n{}");
    }
}
