//! Docker-style token scopes (`repository:<repo>:<actions>`) and their merging.
//!
//! A token is issued for a set of scopes. Each request pre-adds the scope it needs; scopes of the
//! same repository are merged into one entry so the token server sees `pull,push` once instead of
//! two separate scopes, and anything that is not a repository scope is kept verbatim.

use std::fmt;

/// Actions with a fixed place in a merged scope, in the order they are written.
const KNOWN_ACTIONS: [&str; 3] = ["pull", "push", "delete"];

/// One scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `repository:<name>:<actions>`; actions kept in canonical order, unknown ones after.
    Repository {
        /// Repository path (`library/alpine`).
        name: String,
        /// Actions (`pull`, `push`, `delete`, then others in arrival order).
        actions: Vec<String>,
    },
    /// Any other scope (`registry:catalog:*`), kept verbatim.
    Other(String),
}

impl Scope {
    /// Parses `type:name:actions`; repository scopes get their actions normalised.
    pub fn parse(s: &str) -> Scope {
        if let Some(rest) = s.strip_prefix("repository:") {
            // The name may itself contain ':' (a registry port), so the actions are after the last.
            if let Some((name, actions)) = rest.rsplit_once(':') {
                if !name.is_empty() {
                    let mut scope = Scope::Repository {
                        name: name.to_string(),
                        actions: Vec::new(),
                    };
                    scope.add_actions(actions.split(',').filter(|a| !a.is_empty()));
                    return scope;
                }
            }
        }
        Scope::Other(s.to_string())
    }

    /// The scope a request needs: `pull` for GET/HEAD, `pull,push` for other methods, plus
    /// `delete` for DELETE.
    pub fn for_request(repo: &str, method: &str) -> Scope {
        let actions: &[&str] = match method.to_ascii_uppercase().as_str() {
            "GET" | "HEAD" => &["pull"],
            "DELETE" => &["pull", "push", "delete"],
            _ => &["pull", "push"],
        };
        Scope::Repository {
            name: repo.to_string(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    /// The catalog scope used by repository listing.
    pub fn catalog() -> Scope {
        Scope::Other("registry:catalog:*".to_string())
    }

    fn add_actions<'a>(&mut self, new: impl Iterator<Item = &'a str>) -> bool {
        let Scope::Repository { actions, .. } = self else {
            return false;
        };
        let mut changed = false;
        for a in new {
            if !actions.iter().any(|x| x == a) {
                actions.push(a.to_string());
                changed = true;
            }
        }
        let rank = |a: &String| {
            KNOWN_ACTIONS
                .iter()
                .position(|k| k == a)
                .unwrap_or(KNOWN_ACTIONS.len())
        };
        // Stable sort: known actions in canonical order, unknown ones keep arrival order.
        actions.sort_by_key(rank);
        changed
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Repository { name, actions } => {
                write!(f, "repository:{name}:{}", actions.join(","))
            }
            Scope::Other(s) => f.write_str(s),
        }
    }
}

/// An ordered set of merged scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<Scope>);

impl Scopes {
    /// An empty set.
    pub fn new() -> Scopes {
        Scopes::default()
    }

    /// Merges a scope in; returns true when the set changed (a cached token no longer covers it).
    pub fn add(&mut self, scope: Scope) -> bool {
        match scope {
            Scope::Repository { name, actions } => {
                for s in &mut self.0 {
                    if let Scope::Repository { name: n, .. } = s {
                        if *n == name {
                            return s.add_actions(actions.iter().map(String::as_str));
                        }
                    }
                }
                self.0.push(Scope::Repository { name, actions });
                true
            }
            Scope::Other(o) => {
                if self
                    .0
                    .iter()
                    .any(|s| matches!(s, Scope::Other(x) if *x == o))
                {
                    return false;
                }
                self.0.push(Scope::Other(o));
                true
            }
        }
    }

    /// Merges every space-separated scope of a challenge's `scope` parameter.
    pub fn add_str(&mut self, scopes: &str) -> bool {
        let mut changed = false;
        for s in scopes.split(' ').filter(|s| !s.is_empty()) {
            changed |= self.add(Scope::parse(s));
        }
        changed
    }

    /// True when nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes as strings, in insertion order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(Scope::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_request_table() {
        let cases = [
            ("GET", "repository:a/b:pull"),
            ("head", "repository:a/b:pull"),
            ("PUT", "repository:a/b:pull,push"),
            ("POST", "repository:a/b:pull,push"),
            ("PATCH", "repository:a/b:pull,push"),
            ("DELETE", "repository:a/b:pull,push,delete"),
        ];
        for (m, want) in cases {
            assert_eq!(Scope::for_request("a/b", m).to_string(), want, "{m}");
        }
    }

    #[test]
    fn merge_table() {
        let cases: [(&[&str], &[&str]); 6] = [
            (&["repository:a:pull"], &["repository:a:pull"]),
            (
                &["repository:a:push", "repository:a:pull"],
                &["repository:a:pull,push"],
            ),
            (
                &["repository:a:delete", "repository:a:pull,push"],
                &["repository:a:pull,push,delete"],
            ),
            (
                &[
                    "repository:a:pull",
                    "repository:b:pull",
                    "registry:catalog:*",
                ],
                &[
                    "repository:a:pull",
                    "repository:b:pull",
                    "registry:catalog:*",
                ],
            ),
            (
                &["registry:catalog:*", "registry:catalog:*"],
                &["registry:catalog:*"],
            ),
            (
                &[
                    "repository:host:5000/x:custom,pull",
                    "repository:host:5000/x:push",
                ],
                &["repository:host:5000/x:pull,push,custom"],
            ),
        ];
        for (input, want) in cases {
            let mut s = Scopes::new();
            for i in input {
                s.add_str(i);
            }
            assert_eq!(s.to_strings(), want, "{input:?}");
        }
    }

    #[test]
    fn add_reports_change() {
        let mut s = Scopes::new();
        assert!(s.add(Scope::for_request("a", "GET")));
        assert!(!s.add(Scope::for_request("a", "HEAD")));
        assert!(s.add(Scope::for_request("a", "PUT")));
        assert!(!s.add_str("repository:a:pull repository:a:push"));
        assert!(s.add(Scope::catalog()));
        assert!(!s.add(Scope::catalog()));
    }
}
