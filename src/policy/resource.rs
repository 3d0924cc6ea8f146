//! `Resource` / `NotResource` matching.

use super::context::ContextKeys;
use super::matcher::{ArnPattern, match_arn_pattern_toks};
use super::variables::Template;

#[derive(Debug, Clone)]
enum Entry {
    Static(ArnPattern),
    /// Contains policy variables; resolved per request.
    Dynamic(Template),
}

/// A compiled resource list.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResourceMatcher {
    any: bool,
    entries: Box<[Entry]>,
}

impl ResourceMatcher {
    pub(crate) fn new<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
        variables: bool,
    ) -> ResourceMatcher {
        let mut any = false;
        let mut entries = Vec::new();
        for p in patterns {
            if p == "*" {
                any = true;
                continue;
            }
            let t = Template::parse(p, variables);
            if t.has_variables() {
                entries.push(Entry::Dynamic(t));
            } else {
                entries.push(Entry::Static(ArnPattern::from_toks(&t.static_toks(false))));
            }
        }
        ResourceMatcher {
            any,
            entries: entries.into_boxed_slice(),
        }
    }

    /// (some entry matches, some entry had a variable without a value).
    #[inline]
    pub(crate) fn matches(
        &self,
        resource: &str,
        parts: Option<&[&str; 6]>,
        ctx: &ContextKeys,
    ) -> (bool, bool) {
        if self.any {
            return (true, false);
        }
        let mut unresolved = false;
        for e in self.entries.iter() {
            let hit = match e {
                Entry::Static(p) => p.matches_split(resource, parts),
                Entry::Dynamic(t) => match t.resolve_toks(ctx, false) {
                    Some(toks) => match_arn_pattern_toks(&toks, resource, parts),
                    None => {
                        unresolved = true;
                        false
                    }
                },
            };
            if hit {
                return (true, unresolved);
            }
        }
        (false, unresolved)
    }
}
