//! The regsync YAML configuration: parsing, defaults, templates and validation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::host::GoDuration;
use crate::config::Host;
use crate::mediatype;
use crate::template::{Template, Value};
use crate::{Error, ErrorKind, Platform, Reference, Result};

use super::filter::{RepoFilter, TagFilter};

/// Minimum (and default) wait between rate-limit checks.
pub const RATELIMIT_RETRY_MIN: std::time::Duration = std::time::Duration::from_secs(300);

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Schema version (0 or 1).
    #[serde(default)]
    pub version: i64,
    /// Registry settings and logins (templated).
    #[serde(default, serialize_with = "ser_creds")]
    pub creds: Vec<Host>,
    /// Values applied to every entry.
    #[serde(default)]
    pub defaults: Defaults,
    /// What to mirror.
    #[serde(default)]
    pub sync: Vec<SyncEntry>,
}

fn ser_creds<S: serde::Serializer>(creds: &[Host], s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(creds.len()))?;
    for h in creds {
        let mut v = serde_json::to_value(h).map_err(serde::ser::Error::custom)?;
        if let serde_json::Value::Object(o) = &mut v {
            o.insert("registry".into(), serde_json::Value::String(h.name.clone()));
        }
        seq.serialize_element(&v)?;
    }
    seq.end()
}

/// Rate-limit settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Wait while the source reports fewer remaining pulls than this.
    #[serde(default)]
    pub min: i64,
    /// Wait between checks (at least 5m).
    #[serde(default)]
    pub retry: GoDuration,
}

/// A referrer filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerFilter {
    /// Keep this artifact type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_type: String,
    /// Keep referrers carrying these annotations (empty value: key only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ReferrerFilter {
    fn match_opts(&self) -> crate::referrer::MatchOpts {
        crate::referrer::MatchOpts {
            artifact_type: self.artifact_type.clone(),
            annotations: self
                .annotations
                .iter()
                .map(|(k, v)| (k.clone(), (!v.is_empty()).then(|| v.clone())))
                .collect(),
            ..Default::default()
        }
    }
}

/// The options shared by the `defaults` section and every `sync` entry, flattened into both
/// so their YAML keys (and the `.Sync` template data) stay at the same level.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryOpts {
    /// Backup tag template.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backup: String,
    /// Server mode period.
    #[serde(default)]
    pub interval: GoDuration,
    /// Server mode cron schedule.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schedule: String,
    /// Rate limit.
    #[serde(default)]
    pub ratelimit: RateLimit,
    /// Copy digest tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_tags: Option<bool>,
    /// Copy referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrers: Option<bool>,
    /// Referrer filters (union).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrer_filters: Vec<ReferrerFilter>,
    /// External referrers source (a template in an entry).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub referrer_source: String,
    /// External referrers target (a template in an entry).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub referrer_target: String,
    /// Slow OCI-layout referrer scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_slow: Option<bool>,
    /// Skip referrer/digest tag refresh when digests match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_check: Option<bool>,
    /// Re-copy every manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_recursive: Option<bool>,
    /// Copy foreign layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_external: Option<bool>,
    /// Allowed source media types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media_types: Vec<String>,
    /// Hooks (parsed, never run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<serde_yaml::Value>,
}

/// Reads the flattened `EntryOpts` keys with serde_yaml rather than from serde's flatten
/// buffer, which reads YAML differently (a null is not an empty list or mapping, a list is
/// taken for a struct, a non-string key is let through): the file is accepted and refused as
/// before the options were shared.
fn opts_via_yaml<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<EntryOpts, D::Error> {
    let v = serde_yaml::Value::deserialize(d)?;
    serde_yaml::from_value(v).map_err(serde::de::Error::custom)
}

impl EntryOpts {
    /// Fills what an entry left unset from the defaults `d`.
    fn fill_from(&mut self, d: &EntryOpts) {
        if self.backup.is_empty() {
            self.backup = d.backup.clone();
        }
        // Schedule and interval are one choice: inherited together, only when neither is set.
        if self.schedule.is_empty() && self.interval.0.is_zero() {
            self.schedule = d.schedule.clone();
            self.interval = d.interval;
        }
        if self.ratelimit.min == 0 {
            self.ratelimit.min = d.ratelimit.min;
        }
        if self.ratelimit.retry.0.is_zero() {
            self.ratelimit.retry = d.ratelimit.retry;
        }
        if self.ratelimit.retry.0 < RATELIMIT_RETRY_MIN {
            self.ratelimit.retry = GoDuration(RATELIMIT_RETRY_MIN);
        }
        if self.media_types.is_empty() {
            self.media_types = d.media_types.clone();
        }
        for (v, dv) in [
            (&mut self.digest_tags, d.digest_tags),
            (&mut self.referrers, d.referrers),
            (&mut self.referrer_slow, d.referrer_slow),
            (&mut self.fast_check, d.fast_check),
            (&mut self.force_recursive, d.force_recursive),
            (&mut self.include_external, d.include_external),
        ] {
            if v.is_none() {
                *v = Some(dv.unwrap_or(false));
            }
        }
        if self.referrer_filters.is_empty() {
            self.referrer_filters = d.referrer_filters.clone();
        }
        if self.referrer_source.is_empty() {
            self.referrer_source = d.referrer_source.clone();
        }
        if self.referrer_target.is_empty() {
            self.referrer_target = d.referrer_target.clone();
        }
        if self.hooks.is_none() {
            self.hooks = d.hooks.clone();
        }
    }
}

/// The `defaults` section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    /// Options every entry inherits.
    #[serde(flatten, deserialize_with = "opts_via_yaml")]
    pub opts: EntryOpts,
    /// Concurrent image copies.
    #[serde(default)]
    pub parallel: i64,
    /// Largest upload chunk held in memory (as regctl's `blobLimit`; 0: the default).
    #[serde(default)]
    pub blob_limit: i64,
    /// Cache entries.
    #[serde(default)]
    pub cache_count: i64,
    /// Cache lifetime.
    #[serde(default)]
    pub cache_time: GoDuration,
    /// Don't import docker credentials.
    #[serde(default)]
    pub skip_docker_config: bool,
    /// User agent override.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
}

/// Kind of sync entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncType {
    /// One image.
    Image,
    /// Every (filtered) tag of a repository.
    Repository,
    /// Every (filtered) repository of a registry.
    Registry,
}

/// One `sync` entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncEntry {
    /// Source reference (template).
    #[serde(default)]
    pub source: String,
    /// Target reference (template).
    #[serde(default)]
    pub target: String,
    /// `image`, `repository` or `registry`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Tag filter.
    #[serde(default, skip_serializing_if = "TagFilter::is_empty")]
    pub tags: TagFilter,
    /// More tag filters (unioned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_sets: Vec<TagFilter>,
    /// Repository filter (registry type).
    #[serde(default, skip_serializing_if = "RepoFilter::is_empty")]
    pub repos: RepoFilter,
    /// Copy a single platform.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
    /// Keep only these platforms in an index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// Options, unset ones taken from the defaults.
    #[serde(flatten, deserialize_with = "opts_via_yaml")]
    pub opts: EntryOpts,
}

/// The default allowed media types.
pub fn default_media_types() -> Vec<String> {
    [
        mediatype::DOCKER2_MANIFEST,
        mediatype::DOCKER2_MANIFEST_LIST,
        mediatype::OCI1_MANIFEST,
        mediatype::OCI1_INDEX,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl SyncEntry {
    /// The parsed `type`.
    pub fn sync_type(&self) -> Result<SyncType> {
        match self.kind.as_str() {
            "image" => Ok(SyncType::Image),
            "repository" => Ok(SyncType::Repository),
            "registry" => Ok(SyncType::Registry),
            t => Err(Error::new(
                ErrorKind::InvalidInput,
                format!("invalid input: unknown type {t:?}"),
            )),
        }
    }

    /// The tag filter sets (`tags` plus `tagSets`, empty ones dropped).
    pub fn tag_filters(&self) -> Vec<&TagFilter> {
        std::iter::once(&self.tags)
            .chain(self.tag_sets.iter())
            .filter(|f| !f.is_empty())
            .collect()
    }

    /// Copy options of this entry (references already expanded).
    pub fn copy_opts(&self) -> Result<crate::copy::CopyOpts> {
        let mut o = crate::copy::CopyOpts {
            digest_tags: self.opts.digest_tags.unwrap_or(false),
            referrers: self.opts.referrers.unwrap_or(false),
            referrer_filters: self
                .opts
                .referrer_filters
                .iter()
                .map(|f| f.match_opts())
                .collect(),
            fast: self.opts.fast_check.unwrap_or(false),
            force_recursive: self.opts.force_recursive.unwrap_or(false),
            include_external: self.opts.include_external.unwrap_or(false),
            referrer_slow: self.opts.referrer_slow.unwrap_or(false),
            ..Default::default()
        };
        if !self.platform.is_empty() {
            o.platform = Some(Platform::parse(&self.platform)?);
        }
        for p in &self.platforms {
            o.platforms.push(Platform::parse(p)?);
        }
        if !self.opts.referrer_source.is_empty() {
            o.referrer_src = Some(Reference::parse(&self.opts.referrer_source)?);
        }
        if !self.opts.referrer_target.is_empty() {
            o.referrer_tgt = Some(Reference::parse(&self.opts.referrer_target)?);
        }
        Ok(o)
    }

    /// Template data `.Sync` for this entry.
    pub fn template_value(&self) -> Value {
        Value::Json(serde_json::to_value(self).unwrap_or_default())
    }
}

/// Renders a template with `data`.
pub fn render(src: &str, data: &Value) -> Result<String> {
    if !src.contains("{{") {
        return Ok(src.to_string());
    }
    Template::parse(src)?.render(data)
}

pub(crate) fn field_err(file: &str, what: &str, field: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("{file}: {what}: field {field}: {e}"),
    )
}

impl Config {
    /// Reads and processes a file (`-` reads stdin).
    pub fn load(path: &Path) -> Result<Config> {
        let (data, name) = read_input(path)?;
        Config::parse(&data, &name)
    }

    /// Parses YAML, applies defaults, expands templates and validates every entry. `file`
    /// names the input in errors.
    pub fn parse(data: &[u8], file: &str) -> Result<Config> {
        let v = parse_yaml(data, file)?;
        let mut cfg: Config = serde_yaml::from_value(v).map_err(|e| yaml_err(file, e))?;
        cfg.process(file)?;
        Ok(cfg)
    }

    fn process(&mut self, file: &str) -> Result<()> {
        if self.version > 1 || self.version < 0 {
            return Err(field_err(
                file,
                "top level",
                "version",
                format!("unsupported version {}", self.version),
            ));
        }
        render_creds(file, &mut self.creds, true)?;
        let d = &mut self.defaults;
        if d.opts.ratelimit.retry.0 < RATELIMIT_RETRY_MIN {
            d.opts.ratelimit.retry = GoDuration(RATELIMIT_RETRY_MIN);
        }
        if d.opts.media_types.is_empty() {
            d.opts.media_types = default_media_types();
        }
        if d.parallel <= 0 {
            d.parallel = 1;
        }
        let defaults = self.defaults.opts.clone();
        for (i, s) in self.sync.iter_mut().enumerate() {
            let what = format!("sync[{i}] (source {})", s.source);
            let err = |field: &str, e: &dyn std::fmt::Display| field_err(file, &what, field, e);
            s.opts.fill_from(&defaults);
            let t = s.sync_type().map_err(|e| err("type", &e))?;
            for field in ["source", "referrerSource", "target", "referrerTarget"] {
                let data = Value::Map(BTreeMap::from([("Sync".to_string(), s.template_value())]));
                let slot = match field {
                    "source" => &mut s.source,
                    "referrerSource" => &mut s.opts.referrer_source,
                    "target" => &mut s.target,
                    _ => &mut s.opts.referrer_target,
                };
                *slot = render(slot, &data).map_err(|e| err(field, &e))?;
            }
            if !s.opts.backup.is_empty() {
                Template::parse(&s.opts.backup).map_err(|e| err("backup", &e))?;
            }
            for (field, v) in [("source", &s.source), ("target", &s.target)] {
                // A registry entry names a host, optionally with a repository prefix.
                let r = match t {
                    SyncType::Registry => Reference::parse(&format!("{v}/repo")),
                    _ => Reference::parse(v),
                };
                r.map_err(|e| err(field, &e))?;
            }
            for f in s.tag_filters() {
                f.compile().map_err(|e| err("tags", &e))?;
            }
            s.repos.compile().map_err(|e| err("repos", &e))?;
            s.copy_opts().map_err(|e| err("platform/referrers", &e))?;
        }
        Ok(())
    }

    /// The processed configuration as YAML.
    pub fn to_yaml(&self) -> Result<String> {
        serde_yaml::to_string(self)
            .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("encoding YAML: {e}")))
    }
}

/// Reads a config file, `-` meaning stdin; returns the bytes and the name for errors.
pub(crate) fn read_input(path: &Path) -> Result<(Vec<u8>, String)> {
    let name = path.display().to_string();
    let data = if name == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut v)
            .map_err(|e| Error::io(e, "reading stdin"))?;
        v
    } else {
        std::fs::read(path).map_err(|e| Error::io(e, format!("reading {name}")))?
    };
    Ok((data, name))
}

fn yaml_err(file: &str, e: serde_yaml::Error) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        format!("{file}: invalid YAML: {e}"),
    )
}

/// Parses a config file's YAML the way regsync and regbot read it: duplicate keys allowed
/// (the last wins), merge keys applied, an empty file read as an empty mapping.
pub(crate) fn parse_yaml(data: &[u8], file: &str) -> Result<serde_yaml::Value> {
    let Loose(mut v) = serde_yaml::from_slice(data).map_err(|e| yaml_err(file, e))?;
    v.apply_merge().map_err(|e| yaml_err(file, e))?;
    if v.is_null() {
        v = serde_yaml::Value::Mapping(Default::default());
    }
    Ok(v)
}

/// Expands the templates of `creds` (`user`, `pass`, `regcert`, `clientCert`, `clientKey`,
/// and `registry` too when `with_registry`: regbot leaves the name literal).
pub(crate) fn render_creds(file: &str, creds: &mut [Host], with_registry: bool) -> Result<()> {
    let none = Value::Nil;
    for (i, h) in creds.iter_mut().enumerate() {
        let what = format!("creds[{i}] ({})", h.name);
        if with_registry {
            h.name = render(&h.name, &none).map_err(|e| field_err(file, &what, "registry", e))?;
        } else if h.name.is_empty() {
            return Err(field_err(file, &what, "registry", "missing"));
        }
        for (field, v) in [
            ("user", &mut h.user),
            ("pass", &mut h.pass),
            ("regcert", &mut h.regcert),
            ("clientCert", &mut h.client_cert),
            ("clientKey", &mut h.client_key),
        ] {
            *v = render(v, &none).map_err(|e| field_err(file, &what, field, e))?;
        }
    }
    Ok(())
}

/// A YAML value read with duplicate mapping keys allowed (the last one wins), so a key that
/// also comes from an anchor can be written again.
pub(crate) struct Loose(pub(crate) serde_yaml::Value);

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor).map(Loose)
    }
}

struct LooseVisitor;

impl<'de> serde::de::Visitor<'de> for LooseVisitor {
    type Value = serde_yaml::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::Number(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::String(v))
    }
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(serde_yaml::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        Loose::deserialize(d).map(|l| l.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut a: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Loose(v)) = a.next_element()? {
            out.push(v);
        }
        Ok(serde_yaml::Value::Sequence(out))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut a: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = serde_yaml::Mapping::new();
        while let Some((Loose(k), Loose(v))) = a.next_entry()? {
            out.insert(k, v);
        }
        Ok(serde_yaml::Value::Mapping(out))
    }
    fn visit_enum<A: serde::de::EnumAccess<'de>>(
        self,
        a: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        // A tagged value (`!tag value`): keep the value, drop the tag.
        use serde::de::VariantAccess;
        let (_tag, variant): (String, _) = a.variant()?;
        variant.newtype_variant::<Loose>().map(|l| l.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_defaults_and_overrides() {
        let y = br#"
version: 1
x-img: &img
  type: image
  referrers: true
  digestTags: true
defaults:
  backup: "old-{{.Ref.Tag}}"
  interval: 5m
  ratelimit: {min: 10, retry: 1m}
  fastCheck: true
  referrerFilters:
    - artifactType: application/example.sbom
  mediaTypes: [application/vnd.oci.image.manifest.v1+json]
sync:
  - <<: *img
    source: reg.example/a:1
    target: reg.example/b:{{ .Sync.Type }}
    digestTags: false
  - source: reg.example/a
    target: reg.example/c
    type: repository
    type: registry
    schedule: "@daily"
    ratelimit: {retry: 10m}
    backup: keep
"#;
        let c = Config::parse(y, "t.yaml").unwrap();
        let a = &c.sync[0];
        assert_eq!(a.kind, "image");
        assert_eq!(a.target, "reg.example/b:image");
        assert_eq!(a.opts.referrers, Some(true));
        assert_eq!(a.opts.digest_tags, Some(false));
        assert_eq!(a.opts.fast_check, Some(true));
        assert_eq!(a.opts.force_recursive, Some(false));
        assert_eq!(a.opts.backup, "old-{{.Ref.Tag}}");
        assert_eq!(a.opts.interval.0.as_secs(), 300);
        assert_eq!(a.opts.ratelimit.min, 10);
        assert_eq!(a.opts.ratelimit.retry.0, RATELIMIT_RETRY_MIN);
        assert_eq!(a.opts.media_types.len(), 1);
        assert_eq!(
            a.opts.referrer_filters[0].artifact_type,
            "application/example.sbom"
        );
        let b = &c.sync[1];
        assert_eq!(b.kind, "registry", "the last duplicate key wins");
        assert_eq!(b.opts.schedule, "@daily");
        assert!(b.opts.interval.0.is_zero());
        assert_eq!(b.opts.ratelimit.retry.0.as_secs(), 600);
        assert_eq!(b.opts.backup, "keep");
        assert_eq!(c.defaults.parallel, 1);
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let e = Config::parse(
            b"sync:\n  - source: a/b:1\n    target: c/d:1\n    type: nope\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("f.yaml")
                && e.contains("sync[0] (source a/b:1)")
                && e.contains("field type"),
            "{e}"
        );
        let e = Config::parse(
            b"sync:\n  - source: a/b:1\n    target: '{{ .Sync.X.Y }}'\n    type: image\n",
            "f.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("field target"), "{e}");
        let e = Config::parse(b"creds:\n  - registry: '{{ nofunc }}'\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("creds[0]") && e.contains("field registry"),
            "{e}"
        );
        assert!(Config::parse(b"version: 2\n", "f.yaml").is_err());
        assert!(Config::parse(b"sync: {\n", "f.yaml").is_err());
        let e = Config::parse(b"defaults:\n  interval: forever\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.yaml"), "{e}");
        assert!(Config::parse(b"", "f.yaml").unwrap().sync.is_empty());
    }

    /// Upstream `TestConfigRead` (config1.yml style): anchors merged into entries with keys
    /// overridden, duplicate keys, defaults applied and templates (`split`/`index`) expanded;
    /// every entry compared field by field after processing.
    #[test]
    fn config_read_fully_defaulted() {
        let y = br#"
version: 1
creds:
  - registry: registry:5000
    tls: disabled
  - registry: docker.io
defaults:
  ratelimit:
    min: 100
    retry: 1m
  parallel: 2
  interval: 60m
  backup: "bkup-{{.Ref.Tag}}"
  referrers: true
  referrerFilters:
    - artifactType: application/example.sbom
    - annotations: {type: eat, signed: ""}
x-sync-hub: &sync-hub
  target: registry:5000/hub/{{ .Sync.Source }}
  type: repository
  tags:
    allow:
      - "latest"
      - "3"
      - "3.\\d+"
x-sync-gcr: &sync-gcr
  target: registry:5000/gcr/{{ index (split .Sync.Source "/") 2 }}
  type: repository
  tags:
    allow: ["latest"]
    deny: ["old.*"]
sync:
  - source: busybox:latest
    target: registry:5000/library/busybox:latest
    type: image
    digestTags: true
    digestTags: false
  - <<: *sync-hub
    source: alpine
    schedule: "15 3 * * *"
    ratelimit: {min: 5, retry: 10m}
  - <<: *sync-gcr
    source: gcr.io/example/repo
    type: image
    backup: ""
    referrers: false
    referrerSlow: true
    fastCheck: true
    tagSets:
      - semverRange: [">=1.2"]
    platform: linux/arm64
    mediaTypes: [application/vnd.oci.image.index.v1+json]
"#;
        let c = Config::parse(y, "config1.yml").unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.creds.len(), 2);
        assert_eq!(c.creds[0].name, "registry:5000");
        assert_eq!(c.creds[1].name, "docker.io");
        assert_eq!(c.defaults.parallel, 2);
        assert_eq!(c.defaults.opts.ratelimit.min, 100);
        assert_eq!(
            c.defaults.opts.ratelimit.retry.0, RATELIMIT_RETRY_MIN,
            "raised to 5m"
        );
        assert_eq!(c.defaults.opts.interval.0.as_secs(), 3600);
        assert_eq!(c.defaults.opts.media_types, default_media_types());
        assert_eq!(c.sync.len(), 3);
        let sbom = ReferrerFilter {
            artifact_type: "application/example.sbom".into(),
            ..Default::default()
        };
        let eat = ReferrerFilter {
            annotations: BTreeMap::from([
                ("signed".to_string(), String::new()),
                ("type".to_string(), "eat".to_string()),
            ]),
            ..Default::default()
        };
        let hour = GoDuration(std::time::Duration::from_secs(3600));
        let zero = GoDuration::default();
        let sv = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        // Entry 0: plain image, defaults everywhere, the duplicate key's last value wins.
        let e = &c.sync[0];
        assert_eq!(e.source, "busybox:latest");
        assert_eq!(e.target, "registry:5000/library/busybox:latest");
        assert_eq!(e.sync_type().unwrap(), SyncType::Image);
        assert!(e.tags.is_empty() && e.tag_sets.is_empty() && e.repos.is_empty());
        assert_eq!(e.platform, "");
        assert!(e.platforms.is_empty());
        assert_eq!(e.opts.backup, "bkup-{{.Ref.Tag}}");
        assert_eq!(e.opts.interval, hour);
        assert_eq!(e.opts.schedule, "");
        assert_eq!(
            e.opts.ratelimit,
            RateLimit {
                min: 100,
                retry: GoDuration(RATELIMIT_RETRY_MIN)
            }
        );
        assert_eq!(e.opts.digest_tags, Some(false));
        assert_eq!(e.opts.referrers, Some(true));
        assert_eq!(e.opts.referrer_filters, vec![sbom.clone(), eat.clone()]);
        assert_eq!(e.opts.referrer_source, "");
        assert_eq!(e.opts.referrer_target, "");
        assert_eq!(e.opts.referrer_slow, Some(false));
        assert_eq!(e.opts.fast_check, Some(false));
        assert_eq!(e.opts.force_recursive, Some(false));
        assert_eq!(e.opts.include_external, Some(false));
        assert_eq!(e.opts.media_types, default_media_types());
        assert_eq!(e.opts.hooks, None);
        let o = e.copy_opts().unwrap();
        assert!(o.referrers && !o.digest_tags && !o.referrer_slow && !o.fast);
        assert_eq!(o.referrer_filters.len(), 2);

        // Entry 1: the hub anchor, target templated from the source, schedule replaces the
        // default interval, its own rate limit (retry kept above the minimum).
        let e = &c.sync[1];
        assert_eq!(e.source, "alpine");
        assert_eq!(e.target, "registry:5000/hub/alpine");
        assert_eq!(e.sync_type().unwrap(), SyncType::Repository);
        assert_eq!(
            e.tags,
            TagFilter {
                allow: sv(&["latest", "3", "3.\\d+"]),
                ..Default::default()
            }
        );
        assert!(e.tag_sets.is_empty());
        assert_eq!(e.opts.backup, "bkup-{{.Ref.Tag}}");
        assert_eq!(e.opts.schedule, "15 3 * * *");
        assert_eq!(
            e.opts.interval, zero,
            "a schedule keeps the default interval out"
        );
        assert_eq!(e.opts.ratelimit.min, 5);
        assert_eq!(e.opts.ratelimit.retry.0.as_secs(), 600);
        assert_eq!(e.opts.digest_tags, Some(false));
        assert_eq!(e.opts.referrers, Some(true));
        assert_eq!(e.opts.referrer_slow, Some(false));
        assert_eq!(e.opts.fast_check, Some(false));
        assert_eq!(e.opts.media_types, default_media_types());
        assert_eq!(e.opts.referrer_filters, vec![sbom, eat]);
        let tags: Vec<String> = sv(&["latest", "3", "3.1", "3.10", "3.x", "4", "old"]);
        assert_eq!(
            super::super::filter::filter_tags(&tags, &e.tag_filters()).unwrap(),
            sv(&["latest", "3", "3.1", "3.10"])
        );

        // Entry 2: the gcr anchor with `type` overridden, `split`/`index` in the target,
        // explicit booleans over the defaults, an empty backup falls back to the default.
        let e = &c.sync[2];
        assert_eq!(e.source, "gcr.io/example/repo");
        assert_eq!(e.target, "registry:5000/gcr/repo");
        assert_eq!(e.sync_type().unwrap(), SyncType::Image);
        assert_eq!(
            e.tags,
            TagFilter {
                allow: sv(&["latest"]),
                deny: sv(&["old.*"]),
                ..Default::default()
            }
        );
        assert_eq!(
            e.tag_sets,
            vec![TagFilter {
                semver_range: sv(&[">=1.2"]),
                ..Default::default()
            }]
        );
        assert_eq!(e.tag_filters().len(), 2);
        assert_eq!(e.opts.backup, "bkup-{{.Ref.Tag}}");
        assert_eq!(e.opts.interval, hour);
        assert_eq!(e.platform, "linux/arm64");
        assert_eq!(e.opts.referrers, Some(false));
        assert_eq!(e.opts.referrer_slow, Some(true));
        assert_eq!(e.opts.fast_check, Some(true));
        assert_eq!(e.opts.digest_tags, Some(false));
        assert_eq!(e.opts.force_recursive, Some(false));
        assert_eq!(e.opts.media_types, sv(&[mediatype::OCI1_INDEX]));
        let o = e.copy_opts().unwrap();
        assert!(!o.referrers && o.referrer_slow && o.fast);
        assert_eq!(o.platform, Some(Platform::parse("linux/arm64").unwrap()));

        // The processed YAML reads back to the same entries.
        let again = Config::parse(c.to_yaml().unwrap().as_bytes(), "again").unwrap();
        assert_eq!(again.sync[2].target, "registry:5000/gcr/repo");
        assert_eq!(again.sync[1].opts.schedule, "15 3 * * *");
        assert_eq!(again.sync[2].opts.referrer_slow, Some(true));
    }
}
