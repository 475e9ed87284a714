//! The regbot YAML configuration: parsing, defaults, templated credentials and validation.
//!
//! The file follows regsync's conventions (see [`crate::sync::Config`]): `version` 0 or 1,
//! `creds` as a list of [`Host`]s, YAML anchors and `<<` merge keys, and duplicate keys allowed
//! so a key merged from an anchor can be written again (the last one wins). Unknown keys are
//! ignored, which leaves `x-*` keys free for anchors.
//!
//! ```yaml
//! version: 1
//! defaults:
//!   parallel: 2          # scripts running at the same time
//!   interval: 1h         # inherited by scripts with neither schedule nor interval
//!   timeout: 10m         # inherited by scripts without a timeout
//!   memoryLimit: 128MiB  # per Lua state (extension; default 256MiB)
//! scripts:
//!   - name: list tags
//!     schedule: "15 3 * * *"
//!     script: |
//!       for _, t in ipairs(tag.ls("registry.example.org/app")) do log(t) end
//! ```
//!
//! The fields are read one by one (not with a derived deserializer) so that every error names
//! the file, the script and the field.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value as Yaml};

use crate::config::host::GoDuration;
use crate::config::Host;
use crate::schedule::Schedule;
use crate::sync::config::{field_err, parse_yaml, read_input, render_creds};
use crate::{Error, ErrorKind, Result};

use super::{Limits, DEFAULT_MEMORY};

/// The smallest accepted `memoryLimit`: below this a Lua state cannot even load its libraries.
pub const MIN_MEMORY: usize = 1 << 20;

/// The whole file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Schema version (0 or 1).
    pub version: i64,
    /// Registry settings and logins (`user`, `pass`, `regcert`, `clientCert` and `clientKey`
    /// are templates, expanded while loading).
    pub creds: Vec<Host>,
    /// Values scripts inherit, and process-wide settings.
    pub defaults: Defaults,
    /// The scripts, in file order, with defaults applied.
    pub scripts: Vec<ScriptEntry>,
}

/// The `defaults` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// Server mode period for scripts with neither `schedule` nor `interval`.
    pub interval: GoDuration,
    /// Server mode cron schedule for scripts with neither `schedule` nor `interval`.
    pub schedule: String,
    /// Scripts running at the same time (at least 1).
    pub parallel: usize,
    /// Run time budget for scripts without their own `timeout` (zero: none).
    pub timeout: GoDuration,
    /// Largest upload chunk held in memory (as regctl's `blobLimit`; 0: the default).
    pub blob_limit: i64,
    /// Don't import docker's logins and certificates.
    pub skip_docker_config: bool,
    /// User agent override.
    pub user_agent: String,
    /// `memoryLimit`: bytes each script's Lua state may allocate (`None`: [`DEFAULT_MEMORY`]).
    /// Written as a byte count or with a unit (`512KiB`, `256MiB`, `1GiB`, or decimal `MB`).
    pub memory_limit: Option<usize>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: GoDuration::default(),
            schedule: String::new(),
            parallel: 1,
            timeout: GoDuration::default(),
            blob_limit: 0,
            skip_docker_config: false,
            user_agent: String::new(),
            memory_limit: None,
        }
    }
}

/// One entry of `scripts`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScriptEntry {
    /// Unique name, used in logs and errors.
    pub name: String,
    /// Lua source.
    pub script: String,
    /// Server mode period (zero: unset).
    pub interval: GoDuration,
    /// Server mode cron schedule (takes precedence over `interval`).
    pub schedule: String,
    /// Run time budget (zero: none).
    pub timeout: GoDuration,
}

impl ScriptEntry {
    /// When `regbot server` runs the script: its `schedule`, else its `interval`, else `None`
    /// (the script only runs with `regbot once`).
    pub fn trigger(&self) -> Result<Option<Schedule>> {
        if !self.schedule.is_empty() {
            Schedule::parse(&self.schedule).map(Some)
        } else if !self.interval.0.is_zero() {
            Schedule::every(self.interval.0).map(Some)
        } else {
            Ok(None)
        }
    }
}

impl Config {
    /// Reads and processes a file (`-` reads stdin).
    pub fn load(path: &Path) -> Result<Config> {
        let (data, name) = read_input(path)?;
        Config::parse(&data, &name)
    }

    /// Parses YAML, expands the credential templates, applies defaults and validates every
    /// script. `file` names the input in errors.
    pub fn parse(data: &[u8], file: &str) -> Result<Config> {
        let top = match parse_yaml(data, file)? {
            Yaml::Mapping(m) => m,
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!("{file}: invalid YAML: the top level must be a mapping"),
                ))
            }
        };
        let top = Fields::new(file, "top level".into(), &top);
        let mut cfg = Config {
            version: top.get("version")?,
            ..Default::default()
        };
        if !(0..=1).contains(&cfg.version) {
            return Err(top.err("version", format!("unsupported version {}", cfg.version)));
        }
        cfg.creds = top.get("creds")?;
        cfg.defaults = read_defaults(file, top.map.get("defaults"))?;
        render_creds(file, &mut cfg.creds, false)?;
        let scripts = match top.map.get("scripts") {
            None | Some(Yaml::Null) => Vec::new(),
            Some(Yaml::Sequence(s)) => s.clone(),
            Some(_) => return Err(top.err("scripts", "expected a list of scripts")),
        };
        for (i, v) in scripts.iter().enumerate() {
            let s = read_script(file, i, v, &cfg.defaults)?;
            if let Some(j) = cfg.scripts.iter().position(|o| o.name == s.name) {
                return Err(field_err(
                    file,
                    &format!("scripts[{i}] ({})", s.name),
                    "name",
                    format!("duplicate name, also used by scripts[{j}]"),
                ));
            }
            cfg.scripts.push(s);
        }
        Ok(cfg)
    }

    /// The limits of a run of `script`.
    pub fn limits(&self, script: &ScriptEntry) -> Limits {
        Limits {
            timeout: (!script.timeout.0.is_zero()).then_some(script.timeout.0),
            memory: self.defaults.memory_limit.unwrap_or(DEFAULT_MEMORY),
        }
    }
}

fn read_defaults(file: &str, v: Option<&Yaml>) -> Result<Defaults> {
    let empty = Mapping::new();
    let map = match v {
        None | Some(Yaml::Null) => &empty,
        Some(Yaml::Mapping(m)) => m,
        Some(_) => {
            return Err(field_err(
                file,
                "top level",
                "defaults",
                "expected a mapping",
            ))
        }
    };
    let f = Fields::new(file, "defaults".into(), map);
    let parallel: i64 = f.get("parallel")?;
    let d = Defaults {
        interval: f.get("interval")?,
        schedule: f.string("schedule")?,
        parallel: usize::try_from(parallel).unwrap_or(0).max(1),
        timeout: f.get("timeout")?,
        blob_limit: f.get("blobLimit")?,
        skip_docker_config: f.get("skipDockerConfig")?,
        user_agent: f.string("userAgent")?,
        memory_limit: match map.get("memoryLimit") {
            None | Some(Yaml::Null) => None,
            Some(v) => Some(parse_memory(v).map_err(|e| f.err("memoryLimit", e))?),
        },
    };
    check_trigger(&f, &d.schedule, d.interval)?;
    Ok(d)
}

fn read_script(file: &str, i: usize, v: &Yaml, d: &Defaults) -> Result<ScriptEntry> {
    let Yaml::Mapping(map) = v else {
        return Err(field_err(
            file,
            &format!("scripts[{i}]"),
            "name",
            "expected a mapping with name and script",
        ));
    };
    // The name first, so that errors in the other fields can name the script.
    let name = Fields::new(file, format!("scripts[{i}]"), map).string("name")?;
    if name.is_empty() {
        return Err(field_err(file, &format!("scripts[{i}]"), "name", "missing"));
    }
    let f = Fields::new(file, format!("scripts[{i}] ({name})"), map);
    let mut s = ScriptEntry {
        name,
        script: f.string("script")?,
        interval: f.get("interval")?,
        schedule: f.string("schedule")?,
        timeout: f.get("timeout")?,
    };
    if s.script.trim().is_empty() {
        return Err(f.err("script", "empty script"));
    }
    check_trigger(&f, &s.schedule, s.interval)?;
    if s.schedule.is_empty() && s.interval.0.is_zero() {
        s.schedule = d.schedule.clone();
        s.interval = d.interval;
    }
    if s.timeout.0.is_zero() {
        s.timeout = d.timeout;
    }
    Ok(s)
}

/// A schedule must parse even when the interval is set too (the schedule wins at run time).
fn check_trigger(f: &Fields<'_>, schedule: &str, interval: GoDuration) -> Result<()> {
    if !schedule.is_empty() {
        Schedule::parse(schedule).map_err(|e| f.err("schedule", e))?;
    }
    if !interval.0.is_zero() {
        Schedule::every(interval.0).map_err(|e| f.err("interval", e))?;
    }
    Ok(())
}

/// Reads `memoryLimit`: a byte count, or a number with `K`/`KiB`/`M`/`MiB`/`G`/`GiB` (powers of
/// 1024) or `KB`/`MB`/`GB` (powers of 1000), optionally followed by `B`.
fn parse_memory(v: &Yaml) -> std::result::Result<usize, String> {
    let text = match v {
        Yaml::Number(n) => n.to_string(),
        Yaml::String(s) => s.trim().to_string(),
        _ => return Err("expected a size like 256MiB".into()),
    };
    let bad = || format!("invalid size {text:?}, expected a byte count or a size like 256MiB");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kib" => 1024.0,
        "m" | "mib" => 1024.0 * 1024.0,
        "g" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        _ => return Err(bad()),
    };
    let bytes = num * mult;
    if !bytes.is_finite() || bytes > usize::MAX as f64 {
        return Err(bad());
    }
    let bytes = bytes as usize;
    if bytes < MIN_MEMORY {
        return Err(format!("{text:?} is below the minimum of 1MiB"));
    }
    Ok(bytes)
}

/// Typed access to one mapping of the file, with errors naming the file, section and field.
struct Fields<'a> {
    file: &'a str,
    what: String,
    map: &'a Mapping,
}

impl<'a> Fields<'a> {
    fn new(file: &'a str, what: String, map: &'a Mapping) -> Fields<'a> {
        Fields { file, what, map }
    }

    fn err(&self, field: &str, e: impl std::fmt::Display) -> Error {
        field_err(self.file, &self.what, field, e)
    }

    /// The field as `T`; a missing or null field is `T::default()`.
    fn get<T: DeserializeOwned + Default>(&self, key: &str) -> Result<T> {
        match self.map.get(key) {
            None | Some(Yaml::Null) => Ok(T::default()),
            Some(v) => serde_yaml::from_value(v.clone()).map_err(|e| self.err(key, e)),
        }
    }

    /// A text field; numbers and booleans are taken as written (`name: 2024` is a name).
    fn string(&self, key: &str) -> Result<String> {
        match self.map.get(key) {
            None | Some(Yaml::Null) => Ok(String::new()),
            Some(Yaml::String(s)) => Ok(s.clone()),
            Some(Yaml::Number(n)) => Ok(n.to_string()),
            Some(Yaml::Bool(b)) => Ok(b.to_string()),
            Some(_) => Err(self.err(key, "expected a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(n: u64) -> GoDuration {
        GoDuration(Duration::from_secs(n))
    }

    /// Upstream `TestConfigRead` style: anchors merged into scripts with keys overridden,
    /// duplicate keys, defaults inherited only where the script leaves them unset.
    #[test]
    fn config_read_anchors_and_defaults() {
        let y = br#"
version: 1
creds:
  - registry: registry:5000
    tls: disabled
    user: '{{ "bot" }}'
    pass: plain
  - registry: docker.io
defaults:
  parallel: 2
  interval: 60m
  timeout: 10m
  skipDockerConfig: true
  userAgent: my-bot
  blobLimit: 1024
  memoryLimit: 64MiB
x-hourly: &hourly
  schedule: "0 * * * *"
  timeout: 1m
scripts:
  - name: inherits
    script: log("a")
  - <<: *hourly
    name: from-anchor
    script: log("b")
    timeout: 2m
  - name: own-interval
    interval: 5m
    script: log("c")
    script: log("c2")
  - name: 2024
    schedule: "@daily"
    script: |
      log("d")
"#;
        let c = Config::parse(y, "config1.yml").unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.creds.len(), 2);
        assert_eq!(c.creds[0].name, "registry:5000");
        assert_eq!(c.creds[0].user, "bot", "user is a template");
        assert_eq!(c.creds[0].pass, "plain");
        assert_eq!(c.creds[1].name, "docker.io");
        let d = &c.defaults;
        assert_eq!(d.parallel, 2);
        assert_eq!(d.interval, secs(3600));
        assert_eq!(d.timeout, secs(600));
        assert!(d.skip_docker_config);
        assert_eq!(d.user_agent, "my-bot");
        assert_eq!(d.blob_limit, 1024);
        assert_eq!(d.memory_limit, Some(64 << 20));

        let names: Vec<&str> = c.scripts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["inherits", "from-anchor", "own-interval", "2024"]);
        let s = &c.scripts[0];
        assert_eq!(
            (s.schedule.as_str(), s.interval, s.timeout),
            ("", secs(3600), secs(600))
        );
        assert_eq!(s.script, "log(\"a\")");
        let s = &c.scripts[1];
        assert_eq!(s.schedule, "0 * * * *");
        assert_eq!(
            s.interval,
            GoDuration::default(),
            "a schedule keeps the default interval out"
        );
        assert_eq!(
            s.timeout,
            secs(120),
            "the later duplicate key wins over the anchor"
        );
        let s = &c.scripts[2];
        assert_eq!((s.schedule.as_str(), s.interval), ("", secs(300)));
        assert_eq!(s.script, "log(\"c2\")");
        assert_eq!(s.timeout, secs(600));
        let s = &c.scripts[3];
        assert_eq!(s.schedule, "@daily");
        assert_eq!(s.script, "log(\"d\")\n");

        let l = c.limits(&c.scripts[1]);
        assert_eq!(
            (l.timeout, l.memory),
            (Some(Duration::from_secs(120)), 64 << 20)
        );
        assert_eq!(
            c.scripts[1].trigger().unwrap().unwrap().to_string(),
            "0 * * * *"
        );
        assert!(c.scripts[2].trigger().unwrap().is_some());
    }

    #[test]
    fn minimal_and_empty_files() {
        let c = Config::parse(b"", "f.yaml").unwrap();
        assert!(c.scripts.is_empty() && c.creds.is_empty());
        assert_eq!(c.defaults, Defaults::default());
        let c = Config::parse(b"scripts:\n  - name: a\n    script: x = 1\n", "f.yaml").unwrap();
        let s = &c.scripts[0];
        assert!(s.trigger().unwrap().is_none(), "no schedule: once only");
        assert_eq!(c.defaults.parallel, 1);
        let l = c.limits(s);
        assert_eq!((l.timeout, l.memory), (None, DEFAULT_MEMORY));
        // Version 0 is the same as 1; a zero or negative parallel means one at a time.
        let c = Config::parse(b"version: 0\ndefaults:\n  parallel: -3\n", "f.yaml").unwrap();
        assert_eq!(c.defaults.parallel, 1);
    }

    #[test]
    fn memory_limit_units() {
        for (text, want) in [
            ("2097152", 2 << 20),
            ("'2097152'", 2 << 20),
            ("2MiB", 2 << 20),
            ("2M", 2 << 20),
            ("1.5GiB", 3 << 29),
            ("2048KiB", 2 << 20),
            ("5MB", 5_000_000),
            ("1gb", 1_000_000_000),
        ] {
            let y = format!("defaults:\n  memoryLimit: {text}\n");
            let c = Config::parse(y.as_bytes(), "f.yaml").unwrap();
            assert_eq!(c.defaults.memory_limit, Some(want), "{text}");
        }
    }

    fn err(y: &str) -> String {
        Config::parse(y.as_bytes(), "f.yaml")
            .unwrap_err()
            .to_string()
    }

    fn assert_names(e: &str, parts: &[&str]) {
        assert!(e.starts_with("f.yaml: "), "{e}");
        for p in parts {
            assert!(e.contains(p), "{p:?} missing from: {e}");
        }
    }

    #[test]
    fn errors_name_file_script_and_field() {
        let cases: &[(&str, &[&str])] = &[
            ("scripts: [\n", &["invalid YAML"]),
            ("- a\n- b\n", &["top level must be a mapping"]),
            ("version: 2\n", &["top level", "field version", "unsupported version 2"]),
            ("version: x\n", &["field version"]),
            ("scripts: {a: b}\n", &["field scripts"]),
            ("scripts:\n  - just text\n", &["scripts[0]", "field name"]),
            ("scripts:\n  - script: x = 1\n", &["scripts[0]", "field name", "missing"]),
            ("scripts:\n  - name: [a]\n    script: x = 1\n", &["scripts[0]", "field name"]),
            (
                "scripts:\n  - name: a\n    script: x = 1\n  - name: b\n    script: x = 1\n  - name: a\n    script: y = 1\n",
                &["scripts[2] (a)", "field name", "duplicate", "scripts[0]"],
            ),
            ("scripts:\n  - name: a\n", &["scripts[0] (a)", "field script", "empty script"]),
            (
                "scripts:\n  - name: a\n    script: \"  \\n\"\n",
                &["scripts[0] (a)", "field script", "empty script"],
            ),
            (
                "scripts:\n  - name: a\n    script: x = 1\n    schedule: every day\n",
                &["scripts[0] (a)", "field schedule", "invalid schedule"],
            ),
            (
                "scripts:\n  - name: a\n    script: x = 1\n    schedule: '61 * * * *'\n",
                &["scripts[0] (a)", "field schedule"],
            ),
            (
                "scripts:\n  - name: a\n    script: x = 1\n    interval: soon\n",
                &["scripts[0] (a)", "field interval", "invalid duration"],
            ),
            (
                "scripts:\n  - name: a\n    script: x = 1\n    timeout: -5s\n",
                &["scripts[0] (a)", "field timeout", "invalid duration"],
            ),
            ("defaults:\n  interval: forever\n", &["defaults", "field interval"]),
            ("defaults:\n  timeout: 1x\n", &["defaults", "field timeout"]),
            ("defaults:\n  schedule: '@sometimes'\n", &["defaults", "field schedule"]),
            ("defaults:\n  parallel: many\n", &["defaults", "field parallel"]),
            ("defaults:\n  skipDockerConfig: maybe\n", &["defaults", "field skipDockerConfig"]),
            ("defaults:\n  memoryLimit: lots\n", &["defaults", "field memoryLimit", "invalid size"]),
            ("defaults:\n  memoryLimit: 12KiB\n", &["field memoryLimit", "minimum"]),
            ("defaults:\n  memoryLimit: 5XB\n", &["field memoryLimit"]),
            ("defaults: [1]\n", &["field defaults"]),
            ("creds:\n  - tls: disabled\n", &["creds[0]", "field registry", "missing"]),
            ("creds:\n  - registry: r\n    tls: sometimes\n", &["field creds"]),
            (
                "creds:\n  - registry: r.example\n    pass: '{{ nofunc }}'\n",
                &["creds[0] (r.example)", "field pass"],
            ),
        ];
        for (y, parts) in cases {
            assert_names(&err(y), parts);
        }
    }

    /// `registry` is not a template (upstream expands only the secrets).
    #[test]
    fn registry_is_not_templated() {
        let c = Config::parse(b"creds:\n  - registry: '{{x}}'\n", "f.yaml").unwrap();
        assert_eq!(c.creds[0].name, "{{x}}");
    }
}
