//! Output formatting for the tools: builds template data for each result type (with regctl's
//! Go field and method names) and renders `--format` strings, including the `raw`, `body` and
//! `headers` keywords.

use crate::error::Result;
use crate::template::{Template, Value};

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

use crate::descriptor::Descriptor;
use crate::image_config::ImageConfig;
use crate::manifest::Manifest;
use crate::reference::Reference;
use crate::referrer::ReferrerList;
use crate::scheme::TagList;

/// A manifest (fields of the manifest body by Go name, plus `GetDescriptor`, `GetConfig`,
/// `GetLayers`, `GetManifestList`, `GetAnnotations`, `GetSubject`, `MediaType`, `RawBody`,
/// `RawHeaders`, `IsList`, `IsSet`); printPretty gives regctl's manifest/index layout.
pub fn manifest(m: &Manifest, r: &Reference) -> Data {
    let _ = (m, r);
    Data::new(Value::Nil)
}

/// An image config (`.Config.Labels`, `.Created`, `.OS`, ... and `GetConfig`).
pub fn image_config(cfg: &ImageConfig, raw: &[u8], r: &Reference) -> Data {
    let _ = (cfg, raw, r);
    Data::new(Value::Nil)
}

/// A tag list (`.Tags`, `.Name`, `.Index` for layouts, `RawBody`); printPretty is one tag per
/// line.
pub fn tag_list(tl: &TagList, r: &Reference) -> Data {
    let _ = (tl, r);
    Data::new(Value::Nil)
}

/// A referrers listing (`.Subject`, `.Source`, `.Descriptors`, `.Annotations`, `.Tags`,
/// `.Manifest`); printPretty gives regctl's referrer layout.
pub fn referrer_list(rl: &ReferrerList) -> Data {
    let _ = rl;
    Data::new(Value::Nil)
}

/// A descriptor (`.MediaType`, `.Digest`, `.Size`, ...).
pub fn descriptor(d: &Descriptor) -> Data {
    let _ = d;
    Data::new(Value::Nil)
}

/// A blob HEAD or GET result: descriptor fields plus response headers.
pub fn blob(d: &Descriptor, headers: &[(String, String)]) -> Data {
    let _ = (d, headers);
    Data::new(Value::Nil)
}

/// A reference (`.CommonName`, `.Scheme`, `.Registry`, `.Repository`, `.Tag`, `.Digest`,
/// `.Path`, `.Reference`).
pub fn reference(r: &Reference) -> Data {
    let _ = r;
    Data::new(Value::Nil)
}

/// Any JSON value (printPretty prints it indented).
pub fn json(v: serde_json::Value) -> Data {
    Data::new(Value::Json(v))
}
