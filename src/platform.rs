//! Platforms (`os/arch[/variant]`): parsing, normalising, host detection, compatibility and
//! picking the best entry of an index.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::descriptor::Descriptor;
use crate::error::{Error, ErrorKind, Result};

/// A platform as in an OCI index entry or image config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default)]
    pub architecture: String,
    /// Operating system (`linux`, `windows`, ...).
    #[serde(default)]
    pub os: String,
    /// OS version (Windows builds).
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub os_version: String,
    /// OS features.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant (`v7`, `v8`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
    /// CPU features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "arm64",
    "arm64be",
    "armbe",
    "loong64",
    "mips",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "mipsle",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
    "x86_64",
    "x86-64",
    "aarch64",
    "armhf",
    "armel",
    "i386",
];

impl Platform {
    /// Builds `os/arch[/variant]`, normalised.
    pub fn new(os: &str, arch: &str, variant: &str) -> Platform {
        let mut p = Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: variant.to_string(),
            ..Default::default()
        };
        p.normalize();
        p
    }

    /// The platform this binary runs on.
    pub fn host() -> Platform {
        let os = match std::env::consts::OS {
            "macos" => "darwin",
            o => o,
        };
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", amd64_variant()),
            "x86" => ("386", ""),
            "aarch64" => ("arm64", ""),
            "arm" => (
                "arm",
                if cfg!(target_feature = "v7") {
                    "v7"
                } else {
                    "v6"
                },
            ),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", ""),
            "powerpc64" => ("ppc64", ""),
            "riscv64" => ("riscv64", ""),
            "s390x" => ("s390x", ""),
            "loongarch64" => ("loong64", ""),
            "wasm32" => ("wasm", ""),
            a => (a, ""),
        };
        Platform::new(os, arch, variant)
    }

    /// Parses `os[/arch[/variant]][,osver=X]`; `local` is the host. A lone architecture means
    /// the host OS with that architecture; a lone OS takes the host architecture when the host
    /// runs that OS family.
    pub fn parse(s: &str) -> Result<Platform> {
        Self::parse_with_host(s, &Platform::host())
    }

    /// As [`Platform::parse`] with an explicit host (for tests and cross tools).
    pub fn parse_with_host(s: &str, host: &Platform) -> Result<Platform> {
        let invalid = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("invalid platform {s:?}: {why}"),
            )
        };
        let mut parts = s.split(',');
        let main = parts.next().unwrap_or("").trim();
        let mut os_version = String::new();
        for opt in parts {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| invalid("options must be key=value"))?;
            match k.trim() {
                "osver" | "osversion" => os_version = v.trim().to_string(),
                k => return Err(invalid(&format!("unknown option {k:?}"))),
            }
        }
        if main == "local" {
            let mut p = host.clone();
            if !os_version.is_empty() {
                p.os_version = os_version;
            }
            return Ok(p);
        }
        let comps: Vec<&str> = main.split('/').collect();
        if comps.is_empty() || comps.len() > 3 {
            return Err(invalid("want os/arch[/variant]"));
        }
        for c in &comps {
            if c.is_empty()
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(invalid("components are [A-Za-z0-9_-]+"));
            }
        }
        let lower: Vec<String> = comps.iter().map(|c| c.to_ascii_lowercase()).collect();
        let mut p = Platform::default();
        if lower.len() == 1 {
            if KNOWN_ARCH.contains(&lower[0].as_str()) {
                p.os = host.os.clone();
                p.architecture = lower[0].clone();
            } else {
                p.os = lower[0].clone();
                let probe = Platform {
                    os: normalize_os(&p.os),
                    architecture: host.architecture.clone(),
                    variant: host.variant.clone(),
                    ..Default::default()
                };
                if compatible(host, &probe) || host.os == probe.os {
                    p.architecture = host.architecture.clone();
                    p.variant = host.variant.clone();
                }
                if normalize_os(&p.os) == "windows" && host.os == "windows" {
                    p.os_version = host.os_version.clone();
                }
            }
        } else {
            p.os = lower[0].clone();
            p.architecture = lower[1].clone();
            if lower.len() == 3 {
                p.variant = lower[2].clone();
            }
        }
        if !os_version.is_empty() {
            p.os_version = os_version;
        }
        p.normalize();
        Ok(p)
    }

    /// Applies the usual aliases (`x86_64`→`amd64`, `aarch64`→`arm64`, `armhf`→`arm/v7`, ...).
    pub fn normalize(&mut self) {
        self.os = normalize_os(&self.os);
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.to_ascii_lowercase();
        let (a, v) = match (arch.as_str(), variant.as_str()) {
            ("i386", v) => ("386", v.to_string()),
            ("x86_64" | "x86-64" | "amd64", "v1") => ("amd64", String::new()),
            ("x86_64" | "x86-64", v) => ("amd64", v.to_string()),
            ("aarch64" | "arm64", "8" | "v8") => ("arm64", String::new()),
            ("aarch64", v) => ("arm64", v.to_string()),
            ("armhf", _) => ("arm", "v7".to_string()),
            ("armel", _) => ("arm", "v6".to_string()),
            ("arm", "") => ("arm", "v7".to_string()),
            (a, "5" | "6" | "7" | "8") => (a, format!("v{variant}")),
            (a, v) => (a, v.to_string()),
        };
        self.architecture = a.to_string();
        self.variant = v;
    }

    /// True when every field is empty.
    pub fn is_empty(&self) -> bool {
        self.os.is_empty() && self.architecture.is_empty() && self.variant.is_empty()
    }
}

/// The x86-64 micro-architecture level this CPU reaches (`v1` is normalised away).
#[cfg(target_arch = "x86_64")]
fn amd64_variant() -> &'static str {
    use std::arch::is_x86_feature_detected as has;
    let v2 = has!("cmpxchg16b")
        && has!("popcnt")
        && has!("sse3")
        && has!("sse4.1")
        && has!("sse4.2")
        && has!("ssse3");
    let v3 = v2
        && has!("avx")
        && has!("avx2")
        && has!("bmi1")
        && has!("bmi2")
        && has!("f16c")
        && has!("fma")
        && has!("lzcnt")
        && has!("movbe")
        && has!("xsave");
    let v4 = v3
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512cd")
        && has!("avx512dq")
        && has!("avx512vl");
    match (v2, v3, v4) {
        (_, _, true) => "v4",
        (_, true, _) => "v3",
        (true, _, _) => "v2",
        _ => "",
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn amd64_variant() -> &'static str {
    ""
}

fn normalize_os(os: &str) -> String {
    match os.to_ascii_lowercase().as_str() {
        "macos" => "darwin".to_string(),
        o => o.to_string(),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = if self.os.is_empty() {
            "unknown"
        } else {
            &self.os
        };
        write!(f, "{os}")?;
        if !self.architecture.is_empty() {
            write!(f, "/{}", self.architecture)?;
        }
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

fn variant_num(v: &str) -> u32 {
    v.trim_start_matches('v').parse().unwrap_or(1)
}

fn osver_prefix(v: &str) -> Vec<&str> {
    v.split('.').take(3).collect()
}

/// Can `host` run `target`?
pub fn compatible(host: &Platform, target: &Platform) -> bool {
    match host.os.as_str() {
        "linux" | "freebsd" => {
            target.os == host.os
                && target.architecture == host.architecture
                && variant_compatible(&host.variant, &target.variant)
        }
        "windows" => {
            (target.os == "windows"
                && target.architecture == host.architecture
                && target.variant == host.variant
                && osver_prefix(&target.os_version) == osver_prefix(&host.os_version))
                || (target.os == "linux" && target.architecture == host.architecture)
        }
        "darwin" => {
            (target.os == "darwin" || target.os == "linux")
                && target.architecture == host.architecture
                && variant_compatible(&host.variant, &target.variant)
        }
        _ => host == target,
    }
}

fn variant_compatible(host: &str, target: &str) -> bool {
    host == target || variant_num(host) >= variant_num(target)
}

/// Exact match (os, arch, variant; Windows also the first three os.version parts).
pub fn matches(a: &Platform, b: &Platform) -> bool {
    a.os == b.os
        && a.architecture == b.architecture
        && a.variant == b.variant
        && (a.os != "windows" || osver_prefix(&a.os_version) == osver_prefix(&b.os_version))
}

/// Orders two compatible candidates for `want`; `Greater` means `a` is the better pick.
fn better(want: &Platform, a: &Platform, b: &Platform) -> Ordering {
    let eq = |x: &str, y: &str| x == y;
    (eq(&a.os, &want.os).cmp(&eq(&b.os, &want.os)))
        .then(eq(&a.architecture, &want.architecture).cmp(&eq(&b.architecture, &want.architecture)))
        .then(eq(&a.variant, &want.variant).cmp(&eq(&b.variant, &want.variant)))
        .then(variant_num(&a.variant).cmp(&variant_num(&b.variant)))
        .then(eq(&a.os_version, &want.os_version).cmp(&eq(&b.os_version, &want.os_version)))
        .then(cmp_version(&a.os_version, &b.os_version))
}

fn cmp_version(a: &str, b: &str) -> Ordering {
    let pa: Vec<u64> = a.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    let pb: Vec<u64> = b.split('.').map(|x| x.parse().unwrap_or(0)).collect();
    pa.cmp(&pb)
}

/// Picks the index entry best suited to run on `want`; the first of equals wins.
pub fn select<'a>(entries: &'a [Descriptor], want: &Platform) -> Result<&'a Descriptor> {
    let mut best: Option<&Descriptor> = None;
    for d in entries {
        let Some(p) = &d.platform else { continue };
        if !compatible(want, p) {
            continue;
        }
        best = match best {
            Some(b) if better(want, p, b.platform.as_ref().unwrap()) != Ordering::Greater => {
                Some(b)
            }
            _ => Some(d),
        };
    }
    best.ok_or_else(|| {
        let have: Vec<String> = entries
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
            .collect();
        Error::new(
            ErrorKind::NotFound,
            format!(
                "platform not found: {want} (available: {})",
                if have.is_empty() {
                    "none".to_string()
                } else {
                    have.join(", ")
                }
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux_amd64() -> Platform {
        Platform::new("linux", "amd64", "")
    }

    #[test]
    fn parse_table() {
        let host = linux_amd64();
        for (input, want) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/x86-64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/i386", "linux/386"),
            ("Linux/ARM64", "linux/arm64"),
            ("macos/arm64", "darwin/arm64"),
            ("arm64", "linux/arm64"),
            ("linux", "linux/amd64"),
            ("local", "linux/amd64"),
            ("windows/amd64", "windows/amd64"),
        ] {
            let p = Platform::parse_with_host(input, &host).unwrap();
            assert_eq!(p.to_string(), want, "{input}");
        }
        let w = Platform::parse_with_host("windows/amd64,osver=10.0.17763.1234", &host).unwrap();
        assert_eq!(w.os_version, "10.0.17763.1234");
        for bad in [
            "linux/amd64/v1/x",
            "linux/am d64",
            "linux//x",
            "linux/amd64,foo=bar",
            "",
        ] {
            assert!(Platform::parse_with_host(bad, &host).is_err(), "{bad}");
        }
    }

    #[test]
    fn compatibility() {
        let h = linux_amd64();
        assert!(compatible(&h, &Platform::new("linux", "amd64", "")));
        assert!(!compatible(&h, &Platform::new("linux", "arm64", "")));
        let arm8 = Platform::new("linux", "arm", "v8");
        assert!(compatible(&arm8, &Platform::new("linux", "arm", "v7")));
        assert!(!compatible(
            &Platform::new("linux", "arm", "v6"),
            &Platform::new("linux", "arm", "v7")
        ));
        let mac = Platform::new("darwin", "arm64", "");
        assert!(compatible(&mac, &Platform::new("linux", "arm64", "")));
        let mut win = Platform::new("windows", "amd64", "");
        win.os_version = "10.0.17763.1234".into();
        let mut wt = win.clone();
        wt.os_version = "10.0.17763.999".into();
        assert!(compatible(&win, &wt));
        wt.os_version = "10.0.20348.1".into();
        assert!(!compatible(&win, &wt));
        assert!(compatible(&win, &Platform::new("linux", "amd64", "")));
    }

    fn desc(p: &str) -> Descriptor {
        let mut d = Descriptor::for_bytes("x/y", p.as_bytes());
        d.platform = Some(Platform::parse_with_host(p, &linux_amd64()).unwrap());
        d
    }

    #[test]
    fn select_best() {
        let entries = vec![
            desc("linux/arm/v6"),
            desc("linux/arm/v7"),
            desc("linux/amd64"),
        ];
        let got = select(&entries, &Platform::new("linux", "arm", "v8")).unwrap();
        assert_eq!(got.platform.as_ref().unwrap().to_string(), "linux/arm/v7");
        let got = select(&entries, &Platform::new("linux", "arm", "v6")).unwrap();
        assert_eq!(got.platform.as_ref().unwrap().to_string(), "linux/arm/v6");
        let err = select(&entries, &Platform::new("linux", "s390x", "")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err
            .to_string()
            .contains("linux/arm/v6, linux/arm/v7, linux/amd64"));
        // darwin prefers its own OS when both exist
        let entries = vec![desc("linux/arm64"), desc("darwin/arm64")];
        let got = select(&entries, &Platform::new("darwin", "arm64", "")).unwrap();
        assert_eq!(got.platform.as_ref().unwrap().os, "darwin");
    }
}
