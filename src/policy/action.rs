//! `Action` / `NotAction` matching, indexed by service prefix.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::matcher::{Glob, split_colon};

/// Compares an already lower-cased `lower` with `other` ignoring ASCII case.
#[inline]
fn cmp_ci(lower: &[u8], other: &[u8]) -> Ordering {
    for (a, b) in lower.iter().zip(other) {
        match a.cmp(&b.to_ascii_lowercase()) {
            Ordering::Equal => {}
            ord => return ord,
        }
    }
    lower.len().cmp(&other.len())
}

#[derive(Debug, Clone, Default)]
struct ServiceActions {
    /// `service:*`.
    all: bool,
    /// Lower-cased action names without wildcards, sorted.
    exact: Box<[Box<[u8]>]>,
    /// Lower-cased name patterns with wildcards.
    patterns: Box<[Glob]>,
}

/// A compiled list of action patterns (case-insensitive).
#[derive(Debug, Clone, Default)]
pub(crate) struct ActionMatcher {
    any: bool,
    /// Sorted by lower-cased service prefix.
    services: Box<[(Box<[u8]>, ServiceActions)]>,
    /// Patterns with a wildcard in the service prefix, matched on the whole action.
    globs: Box<[Glob]>,
}

/// (`service:*` seen, exact names, name patterns) while compiling.
type Building = (bool, Vec<Box<[u8]>>, Vec<Glob>);

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

impl ActionMatcher {
    pub(crate) fn new<'a>(patterns: impl IntoIterator<Item = &'a str>) -> ActionMatcher {
        let mut any = false;
        let mut globs = Vec::new();
        let mut by_service: BTreeMap<Vec<u8>, Building> = BTreeMap::new();
        for p in patterns {
            if !p.is_empty() && p.bytes().all(|b| b == b'*') {
                any = true;
                continue;
            }
            match p.split_once(':') {
                Some((service, name)) if !has_wildcard(service) => {
                    let entry = by_service
                        .entry(service.to_ascii_lowercase().into_bytes())
                        .or_default();
                    if !name.is_empty() && name.bytes().all(|b| b == b'*') {
                        entry.0 = true;
                    } else if has_wildcard(name) {
                        entry.2.push(Glob::new(name, true));
                    } else {
                        entry
                            .1
                            .push(name.to_ascii_lowercase().into_bytes().into_boxed_slice());
                    }
                }
                _ => globs.push(Glob::new(p, true)),
            }
        }
        let services = by_service
            .into_iter()
            .map(|(service, (all, mut exact, patterns))| {
                exact.sort();
                exact.dedup();
                (
                    service.into_boxed_slice(),
                    ServiceActions {
                        all,
                        exact: exact.into_boxed_slice(),
                        patterns: patterns.into_boxed_slice(),
                    },
                )
            })
            .collect();
        ActionMatcher {
            any,
            services,
            globs: globs.into_boxed_slice(),
        }
    }

    /// Does `action` (e.g. `s3:GetObject`, any case) match one of the patterns?
    #[inline]
    pub(crate) fn matches(&self, action: &str) -> bool {
        if self.any {
            return true;
        }
        if let Some((service, name)) = split_colon(action)
            && let Ok(i) = self
                .services
                .binary_search_by(|(s, _)| cmp_ci(s, service.as_bytes()))
        {
            let actions = &self.services[i].1;
            if actions.all
                || actions
                    .exact
                    .binary_search_by(|e| cmp_ci(e, name.as_bytes()))
                    .is_ok()
                || actions.patterns.iter().any(|g| g.matches_ci(name))
            {
                return true;
            }
        }
        self.globs.iter().any(|g| g.matches_ci(action))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching() {
        let m = ActionMatcher::new(["s3:Get*", "ec2:DescribeInstances", "iam:*", "*:List*"]);
        assert!(m.matches("S3:getobject"));
        assert!(m.matches("ec2:describeinstances"));
        assert!(!m.matches("ec2:DescribeInstance"));
        assert!(m.matches("iam:CreateUser"));
        assert!(m.matches("lambda:ListFunctions"));
        assert!(!m.matches("lambda:Invoke"));
        assert!(!m.matches("s3"));
        assert!(ActionMatcher::new(["*"]).matches("anything"));
    }
}
