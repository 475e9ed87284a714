//! Registry rate-limit headers (`regctl image ratelimit`).
//!
//! Docker Hub reports pull limits with the IETF draft headers
//! `RateLimit-Limit: 100;w=21600`, `RateLimit-Remaining: 76;w=21600` and optionally
//! `RateLimit-Reset: <seconds>`. The fields follow regclient's `types.RateLimit` so templates and
//! JSON output keep their Go names (`Limit`, `Remain`, `Reset`, `Set`, `Policies`). A value that
//! does not parse counts as 0, as upstream does: the command reports what it can rather than
//! failing on a registry's formatting.

use serde::{Serialize, Serializer};

use crate::transport::header_value;

/// Rate-limit state reported by a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RateLimit {
    /// Requests allowed per window: the number before `;` in the first `RateLimit-Limit` item.
    pub limit: i64,
    /// Requests left in the window (`RateLimit-Remaining`).
    pub remain: i64,
    /// Seconds until the window resets (`RateLimit-Reset`).
    pub reset: i64,
    /// True when `RateLimit-Remaining` was present and parsed, i.e. the registry limits us.
    pub set: bool,
    /// The policy items of `RateLimit-Limit` (such as `100;w=21600`); `null` in JSON when
    /// there are none, matching Go's nil slice.
    #[serde(serialize_with = "empty_as_null")]
    pub policies: Vec<String>,
}

fn empty_as_null<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        v.serialize(s)
    }
}

/// The integer before the first `;`, or 0.
fn leading_int(item: &str) -> Option<i64> {
    item.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .ok()
}

impl RateLimit {
    /// Reads the rate-limit headers (any case) from a response.
    pub fn from_headers(headers: &[(&str, &str)]) -> RateLimit {
        let mut rl = RateLimit::default();
        if let Some(value) = header_value(headers, "RateLimit-Limit").filter(|v| !v.is_empty()) {
            let items: Vec<&str> = value.split(',').map(str::trim).collect();
            let first = items.first().copied().unwrap_or_default();
            rl.limit = leading_int(first).unwrap_or(0);
            // `100;w=21600, 400;w=86400`: every item is a policy. `100, 100;w=21600`: the first
            // item is the bare limit and the policies follow.
            let policies = if first.contains(';') {
                &items[..]
            } else {
                &items[1..]
            };
            rl.policies = policies.iter().map(|s| s.to_string()).collect();
        }
        if let Some(value) = header_value(headers, "RateLimit-Remaining").filter(|v| !v.is_empty())
        {
            if let Some(n) = leading_int(value) {
                rl.remain = n;
                rl.set = true;
            }
        }
        if let Some(value) = header_value(headers, "RateLimit-Reset") {
            rl.reset = value.trim().parse().unwrap_or(0);
        }
        rl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl(limit: i64, remain: i64, reset: i64, set: bool, policies: &[&str]) -> RateLimit {
        RateLimit {
            limit,
            remain,
            reset,
            set,
            policies: policies.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn from_headers_table() {
        let cases: Vec<(Vec<(&str, &str)>, RateLimit)> = vec![
            (vec![], RateLimit::default()),
            // Docker Hub.
            (
                vec![
                    ("ratelimit-limit", "100;w=21600"),
                    ("ratelimit-remaining", "76;w=21600"),
                    ("docker-ratelimit-source", "1.2.3.4"),
                ],
                rl(100, 76, 0, true, &["100;w=21600"]),
            ),
            // Several policies, all items count.
            (
                vec![
                    ("RateLimit-Limit", "100;w=21600, 1000;w=86400"),
                    ("RATELIMIT-REMAINING", "0"),
                    ("RateLimit-Reset", "3600"),
                ],
                rl(100, 0, 3600, true, &["100;w=21600", "1000;w=86400"]),
            ),
            // A bare first item is the limit, the rest are policies.
            (
                vec![("RateLimit-Limit", "100, 100;w=21600")],
                rl(100, 0, 0, false, &["100;w=21600"]),
            ),
            (vec![("RateLimit-Limit", "100")], rl(100, 0, 0, false, &[])),
            // Unparsable values are 0; an unparsable Remaining leaves Set false.
            (
                vec![
                    ("RateLimit-Limit", "lots;w=1"),
                    ("RateLimit-Remaining", "some"),
                    ("RateLimit-Reset", "soon"),
                ],
                rl(0, 0, 0, false, &["lots;w=1"]),
            ),
            (vec![("RateLimit-Remaining", "")], rl(0, 0, 0, false, &[])),
            (
                vec![("RateLimit-Remaining", " 5 ;w=60")],
                rl(0, 5, 0, true, &[]),
            ),
        ];
        for (headers, want) in cases {
            assert_eq!(RateLimit::from_headers(&headers), want, "{headers:?}");
        }
    }

    #[test]
    fn json_uses_go_names() {
        let r = rl(100, 76, 0, true, &["100;w=21600"]);
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"Limit":100,"Remain":76,"Reset":0,"Set":true,"Policies":["100;w=21600"]}"#
        );
        assert_eq!(
            serde_json::to_string(&RateLimit::default()).unwrap(),
            r#"{"Limit":0,"Remain":0,"Reset":0,"Set":false,"Policies":null}"#
        );
    }
}
