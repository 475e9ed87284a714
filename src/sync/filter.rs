//! Tag and repository filters (anchored regexes and semver ranges).

use serde::{Deserialize, Serialize};

use super::semver::{Range, Version};
use crate::regex::Regex;
use crate::{Error, ErrorKind, Result};

/// One tag filter set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagFilter {
    /// Keep tags matching any of these (anchored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Drop tags matching any of these (anchored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
    /// Keep only versions in any of these ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub semver_range: Vec<String>,
}

/// Repository filter (registry type).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RepoFilter {
    /// Keep repositories matching any of these (anchored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Drop repositories matching any of these (anchored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<String>,
}

fn regexes(list: &[String]) -> Result<Vec<Regex>> {
    list.iter()
        .map(|p| {
            Regex::anchored(p).map_err(|e| {
                Error::new(ErrorKind::InvalidInput, format!("invalid regex {p:?}: {e}"))
            })
        })
        .collect()
}

/// A compiled filter set.
#[derive(Debug, Clone)]
pub struct Compiled {
    ranges: Vec<Range>,
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

impl Compiled {
    /// Does `name` pass?
    pub fn matches(&self, name: &str) -> bool {
        if !self.ranges.is_empty() {
            match Version::parse(name) {
                Some(v) if self.ranges.iter().any(|r| r.matches(&v)) => {}
                _ => return false,
            }
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|r| r.is_match(name)) {
            return false;
        }
        !self.deny.iter().any(|r| r.is_match(name))
    }
}

impl TagFilter {
    /// No rule at all.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty() && self.semver_range.is_empty()
    }

    /// Compiles the set.
    pub fn compile(&self) -> Result<Compiled> {
        Ok(Compiled {
            ranges: self
                .semver_range
                .iter()
                .map(|r| Range::parse(r))
                .collect::<Result<_>>()?,
            allow: regexes(&self.allow)?,
            deny: regexes(&self.deny)?,
        })
    }
}

impl RepoFilter {
    /// No rule at all.
    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }

    /// Compiles the filter.
    pub fn compile(&self) -> Result<Compiled> {
        Ok(Compiled {
            ranges: Vec::new(),
            allow: regexes(&self.allow)?,
            deny: regexes(&self.deny)?,
        })
    }
}

/// Keeps the tags passing any set (all tags when there are no sets), in input order.
pub fn filter_tags(tags: &[String], sets: &[&TagFilter]) -> Result<Vec<String>> {
    if sets.is_empty() {
        return Ok(tags.to_vec());
    }
    let compiled = sets
        .iter()
        .map(|s| s.compile())
        .collect::<Result<Vec<_>>>()?;
    Ok(tags
        .iter()
        .filter(|t| compiled.iter().any(|c| c.matches(t)))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn table() {
        const TAGS: &[&str] = &[
            "latest",
            "v1",
            "v1.1",
            "v1.1.1",
            "v1.2",
            "v2",
            "v2.0.0-alpine",
            "v2.1",
            "v3",
            "v3-rc1",
            "v5-scratch",
            "5",
            "old",
            "a1",
            "a2",
            "b1",
            "loop",
            "1.2.3.4",
        ];
        let tags = s(TAGS);
        struct Case {
            name: &'static str,
            sets: Vec<TagFilter>,
            want: Vec<&'static str>,
        }
        let tf = |allow: &[&str], deny: &[&str], sv: &[&str]| TagFilter {
            allow: s(allow),
            deny: s(deny),
            semver_range: s(sv),
        };
        let cases = vec![
            Case {
                name: "no sets",
                sets: vec![],
                want: TAGS.to_vec(),
            },
            Case {
                name: "allow anchored",
                sets: vec![tf(&["v1"], &[], &[])],
                want: vec!["v1"],
            },
            Case {
                name: "allow regex",
                sets: vec![tf(&["v1.*"], &[], &[])],
                want: vec!["v1", "v1.1", "v1.1.1", "v1.2"],
            },
            Case {
                name: "allow list",
                sets: vec![tf(&["v1", "v3", "latest"], &[], &[])],
                want: vec!["latest", "v1", "v3"],
            },
            Case {
                name: "deny only",
                sets: vec![tf(&[], &["v.*", "[0-9].*"], &[])],
                want: vec!["latest", "old", "a1", "a2", "b1", "loop"],
            },
            Case {
                name: "allow then deny",
                sets: vec![tf(&["v1.*"], &["v1\\.1.*"], &[])],
                want: vec!["v1", "v1.2"],
            },
            Case {
                name: "semver >=v2",
                sets: vec![tf(&[], &[], &[">=v2"])],
                want: vec!["v2", "v2.1", "v3", "v3-rc1", "v5-scratch", "5"],
            },
            Case {
                name: "semver drops non-semver",
                sets: vec![tf(&[], &[], &[">=0"])],
                want: vec![
                    "v1",
                    "v1.1",
                    "v1.1.1",
                    "v1.2",
                    "v2",
                    "v2.0.0-alpine",
                    "v2.1",
                    "v3",
                    "v3-rc1",
                    "v5-scratch",
                    "5",
                    "1.2.3.4",
                ],
            },
            Case {
                name: "semver prerelease below release",
                sets: vec![tf(&[], &[], &["<2"])],
                want: vec!["v1", "v1.1", "v1.1.1", "v1.2", "v2.0.0-alpine", "1.2.3.4"],
            },
            Case {
                name: "semver caret",
                sets: vec![tf(&[], &[], &["^1.1"])],
                want: vec!["v1.1", "v1.1.1", "v1.2", "1.2.3.4"],
            },
            Case {
                name: "semver tilde",
                sets: vec![tf(&[], &[], &["~1.1"])],
                want: vec!["v1.1", "v1.1.1"],
            },
            Case {
                name: "semver or constraints",
                sets: vec![tf(&[], &[], &["1.1", "3"])],
                want: vec!["v1.1", "v1.1.1", "v3"],
            },
            Case {
                name: "semver and",
                sets: vec![tf(&[], &[], &[">1 <3"])],
                want: vec![
                    "v1.1",
                    "v1.1.1",
                    "v1.2",
                    "v2",
                    "v2.0.0-alpine",
                    "v2.1",
                    "v3-rc1",
                    "1.2.3.4",
                ],
            },
            Case {
                name: "semver then allow",
                sets: vec![tf(&["v.*"], &[], &[">=3"])],
                want: vec!["v3", "v5-scratch"],
            },
            Case {
                name: "semver then deny",
                sets: vec![tf(&[], &[".*-.*"], &[">=2"])],
                want: vec!["v2", "v2.1", "v3", "5"],
            },
            Case {
                name: "tag sets union",
                sets: vec![tf(&["a.*"], &[], &[]), tf(&["loop"], &[], &[])],
                want: vec!["a1", "a2", "loop"],
            },
            Case {
                name: "union overlapping",
                sets: vec![tf(&["v1"], &[], &[]), tf(&["v1", "v2"], &[], &[])],
                want: vec!["v1", "v2"],
            },
            Case {
                name: "nothing matches",
                sets: vec![tf(&["nope"], &[], &[])],
                want: vec![],
            },
        ];
        assert_eq!(cases.len(), 18);
        for c in cases {
            let sets: Vec<&TagFilter> = c.sets.iter().collect();
            let got = filter_tags(&tags, &sets).unwrap();
            assert_eq!(got, c.want, "{}", c.name);
        }
    }

    /// §5.3 details: prereleases sort below their release (`v2.0.0-alpine` < `2.0.0`,
    /// `v5-scratch` < `5`), any number of numeric parts, OR-ed constraints (list entries and
    /// `||`), and deny applied after semver and allow.
    #[test]
    fn semver_details_and_deny_after_allow() {
        const TAGS: &[&str] = &[
            "v2",
            "v2.0.0-alpine",
            "2.0.0",
            "2.0.1",
            "v5-scratch",
            "5",
            "v5.0.1",
            "v1.5",
            "1.2.3.4",
            "1.2.3.5",
            "1.2.3",
            "latest",
            "v2-rc.1",
            "v2-rc.10",
            "v2-rc.2",
        ];
        let tags = s(TAGS);
        let tf = |allow: &[&str], deny: &[&str], sv: &[&str]| TagFilter {
            allow: s(allow),
            deny: s(deny),
            semver_range: s(sv),
        };
        let cases: Vec<(&str, TagFilter, Vec<&str>)> = vec![
            (
                "prereleases below 2.0.0",
                tf(&[], &[], &[">=2.0.0"]),
                vec!["v2", "2.0.0", "2.0.1", "v5-scratch", "5", "v5.0.1"],
            ),
            (
                "v5-scratch below 5",
                tf(&[], &[], &["<5 >=4.9"]),
                vec!["v5-scratch"],
            ),
            (
                "5 excludes v5-scratch",
                tf(&[], &[], &[">=5"]),
                vec!["5", "v5.0.1"],
            ),
            (
                "every v2 prerelease below 2",
                tf(&[], &[], &["<2 >=1.9"]),
                vec!["v2.0.0-alpine", "v2-rc.1", "v2-rc.10", "v2-rc.2"],
            ),
            (
                "numeric prerelease parts",
                tf(&[], &[], &[">v2-rc.2 <2"]),
                vec!["v2-rc.10"],
            ),
            (
                "one part equals three",
                tf(&[], &[], &["=v2"]),
                vec!["v2", "2.0.0", "2.0.1"],
            ),
            (
                "four parts exact",
                tf(&[], &[], &["=1.2.3.4"]),
                vec!["1.2.3.4"],
            ),
            (
                "fourth part compared",
                tf(&[], &[], &[">1.2.3 <1.2.4"]),
                vec!["1.2.3.4", "1.2.3.5"],
            ),
            ("two parts tilde", tf(&[], &[], &["~1.5"]), vec!["v1.5"]),
            (
                "caret skips next prereleases",
                tf(&[], &[], &["^1.5"]),
                vec!["v1.5"],
            ),
            (
                "or with ||",
                tf(&[], &[], &["<1.3 || >=5"]),
                vec!["5", "v5.0.1", "1.2.3.4", "1.2.3.5", "1.2.3"],
            ),
            (
                "or across list entries",
                tf(&[], &[], &["=1.2.3.5", "=v1.5", ">=5.0.1"]),
                vec!["v5.0.1", "v1.5", "1.2.3.5"],
            ),
            (
                "semver, allow, then deny",
                tf(&["v.*"], &["v2.*"], &[">=1.5"]),
                vec!["v5-scratch", "v5.0.1", "v1.5"],
            ),
            (
                "deny wins over an explicit allow",
                tf(&["latest", "v1.5"], &["latest"], &[]),
                vec!["v1.5"],
            ),
        ];
        for (name, set, want) in cases {
            let got = filter_tags(&tags, &[&set]).unwrap();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn bad_inputs() {
        assert!(TagFilter {
            allow: s(&["("]),
            ..Default::default()
        }
        .compile()
        .is_err());
        assert!(TagFilter {
            semver_range: s(&[">=x"]),
            ..Default::default()
        }
        .compile()
        .is_err());
        assert!(RepoFilter {
            deny: s(&["[a"]),
            allow: vec![]
        }
        .compile()
        .is_err());
    }
}
