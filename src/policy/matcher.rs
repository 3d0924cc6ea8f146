//! Wildcard (`*`, `?`) and ARN matching without allocation.
//!
//! Patterns are compiled once into [`Glob`]s (a sequence of [`Tok`]s with fast
//! paths for the common shapes) and matched against request strings with an
//! iterative backtracking matcher over bytes. `?` matches exactly one
//! character (a whole UTF-8 sequence), `*` any run of characters.

/// One element of a compiled wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A literal byte (already lower-cased for case-insensitive patterns).
    Lit(u8),
    /// `?`: exactly one character.
    One,
    /// `*`: any number of characters.
    Many,
}

/// Width in bytes of the UTF-8 sequence starting with `b` (1 for stray bytes).
#[inline]
fn utf8_width(b: u8) -> usize {
    if b < 0xC0 {
        1
    } else if b < 0xE0 {
        2
    } else if b < 0xF0 {
        3
    } else {
        4
    }
}

/// Equality for short byte strings, eight bytes at a time. Calling `memcmp`
/// for the handful of bytes in an ARN segment or a context key costs more than
/// the comparison itself.
#[inline]
pub(crate) fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut ac = a.chunks_exact(8);
    let mut bc = b.chunks_exact(8);
    for (x, y) in ac.by_ref().zip(bc.by_ref()) {
        let (Ok(x), Ok(y)) = (<[u8; 8]>::try_from(x), <[u8; 8]>::try_from(y)) else {
            return false;
        };
        if u64::from_ne_bytes(x) != u64::from_ne_bytes(y) {
            return false;
        }
    }
    ac.remainder()
        .iter()
        .zip(bc.remainder())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `text` starts with `prefix` (see [`bytes_eq`]).
#[inline]
pub(crate) fn bytes_starts_with(text: &[u8], prefix: &[u8]) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| bytes_eq(head, prefix))
}

#[inline]
fn byte_eq<const CI: bool>(pattern: u8, text: u8) -> bool {
    if CI {
        pattern == text.to_ascii_lowercase()
    } else {
        pattern == text
    }
}

/// Matches `text` against a token sequence. `CI`: the pattern is lower-case
/// and `text` is compared ASCII-case-insensitively.
pub(crate) fn match_toks<const CI: bool>(pattern: &[Tok], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Position after the last `*` seen, and the text position it resumes at.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if let Some(tok) = pattern.get(p) {
            match *tok {
                Tok::Many => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                Tok::One => {
                    t += utf8_width(text[t]);
                    p += 1;
                    continue;
                }
                Tok::Lit(b) => {
                    if byte_eq::<CI>(b, text[t]) {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                let next = st + utf8_width(text[st]);
                star = Some((sp, next));
                p = sp;
                t = next;
            }
            None => return false,
        }
    }
    if t > text.len() {
        return false;
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|tok| *tok == Tok::Many)
}

/// Tokenises a wildcard pattern where every `*` and `?` is a wildcard.
pub(crate) fn tokenize(pattern: &str, lowercase: bool) -> Vec<Tok> {
    pattern
        .bytes()
        .map(|b| match b {
            b'*' => Tok::Many,
            b'?' => Tok::One,
            _ if lowercase => Tok::Lit(b.to_ascii_lowercase()),
            _ => Tok::Lit(b),
        })
        .collect()
}

/// A compiled wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Glob {
    /// `*`: matches everything.
    Any,
    /// No wildcard at all.
    Exact(Box<[u8]>),
    /// A literal prefix followed by a single trailing `*`.
    Prefix(Box<[u8]>),
    /// Anything else.
    General(Box<[Tok]>),
}

impl Glob {
    /// Builds a glob from tokens (already lower-cased if it is meant for
    /// case-insensitive matching).
    pub(crate) fn from_toks(toks: &[Tok]) -> Glob {
        let literal = |ts: &[Tok]| -> Option<Box<[u8]>> {
            ts.iter()
                .map(|t| match t {
                    Tok::Lit(b) => Some(*b),
                    _ => None,
                })
                .collect()
        };
        if !toks.is_empty() && toks.iter().all(|t| *t == Tok::Many) {
            return Glob::Any;
        }
        if let Some(bytes) = literal(toks) {
            return Glob::Exact(bytes);
        }
        if let Some((Tok::Many, head)) = toks.split_last()
            && let Some(bytes) = literal(head)
        {
            return Glob::Prefix(bytes);
        }
        Glob::General(toks.into())
    }

    /// Compiles a pattern in which `*` and `?` are wildcards.
    pub(crate) fn new(pattern: &str, case_insensitive: bool) -> Glob {
        Glob::from_toks(&tokenize(pattern, case_insensitive))
    }

    #[inline]
    pub(crate) fn matches_cs(&self, text: &str) -> bool {
        self.matches::<false>(text.as_bytes())
    }

    #[inline]
    pub(crate) fn matches_ci(&self, text: &str) -> bool {
        self.matches::<true>(text.as_bytes())
    }

    #[inline]
    pub(crate) fn matches<const CI: bool>(&self, text: &[u8]) -> bool {
        match self {
            Glob::Any => true,
            Glob::Exact(p) => {
                if CI {
                    p.len() == text.len()
                        && p.iter()
                            .zip(text)
                            .all(|(a, b)| *a == b.to_ascii_lowercase())
                } else {
                    bytes_eq(p, text)
                }
            }
            Glob::Prefix(p) => {
                if CI {
                    text.len() >= p.len()
                        && p.iter()
                            .zip(text)
                            .all(|(a, b)| *a == b.to_ascii_lowercase())
                } else {
                    bytes_starts_with(text, p)
                }
            }
            Glob::General(toks) => match_toks::<CI>(toks, text),
        }
    }
}

/// Case-sensitive wildcard match (`*` any run of characters, `?` exactly one),
/// as used for resources and `StringLike`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    match_toks::<false>(&tokenize(pattern, false), text.as_bytes())
}

/// ASCII-case-insensitive wildcard match, as used for actions.
pub fn wildcard_match_ignore_case(pattern: &str, text: &str) -> bool {
    match_toks::<true>(&tokenize(pattern, true), text.as_bytes())
}

/// Splits an ARN into its six colon-separated parts
/// (`arn`, partition, service, region, account, resource). The resource part
/// keeps any further colons. Returns `None` when there are fewer than six parts.
#[inline]
pub fn split_arn(arn: &str) -> Option<[&str; 6]> {
    let mut parts = [""; 6];
    let mut rest = arn;
    for part in parts.iter_mut().take(5) {
        let (head, tail) = split_colon(rest)?;
        *part = head;
        rest = tail;
    }
    parts[5] = rest;
    Some(parts)
}

/// `s.split_once(':')` without the generic char searcher (which calls
/// `memcmp` for every candidate and dominates short-string matching).
#[inline]
pub(crate) fn split_colon(s: &str) -> Option<(&str, &str)> {
    let idx = s.bytes().position(|b| b == b':')?;
    // ':' is ASCII, so both sides are on char boundaries.
    Some((s.get(..idx)?, s.get(idx + 1..)?))
}

/// Splits a token sequence the way [`split_arn`] splits a string.
pub(crate) fn split_arn_toks(toks: &[Tok]) -> Option<[&[Tok]; 6]> {
    let empty: &[Tok] = &[];
    let mut parts = [empty; 6];
    let mut rest = toks;
    for part in parts.iter_mut().take(5) {
        let idx = rest.iter().position(|t| *t == Tok::Lit(b':'))?;
        *part = &rest[..idx];
        rest = &rest[idx + 1..];
    }
    parts[5] = rest;
    Some(parts)
}

/// Matches a pre-split ARN pattern (as tokens) against a pre-split ARN.
pub(crate) fn match_arn_toks(pattern: &[&[Tok]; 6], arn: &[&str; 6]) -> bool {
    pattern
        .iter()
        .zip(arn.iter())
        .all(|(p, s)| match_toks::<false>(p, s.as_bytes()))
}

/// A compiled ARN pattern, matched segment by segment (partition, service,
/// region, account, resource), case-sensitively. Wildcards inside the first
/// five segments never cross a `:`; in the resource segment `*` spans `:` and
/// `/`. `*` alone matches any string; a pattern that is not a six-part ARN is
/// matched as a whole-string wildcard pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnPattern {
    kind: ArnPatternKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ArnPatternKind {
    Any,
    Exact(Box<str>),
    /// Literal first five segments and a literal resource prefix followed by
    /// `*`: a plain prefix test on the whole ARN is equivalent.
    Prefix(Box<[u8]>),
    Segments(Box<[Glob; 6]>),
    Whole(Glob),
}

impl ArnPattern {
    /// Compiles a pattern in which `*` and `?` are wildcards.
    pub fn new(pattern: &str) -> ArnPattern {
        ArnPattern::from_toks(&tokenize(pattern, false))
    }

    pub(crate) fn from_toks(toks: &[Tok]) -> ArnPattern {
        let kind = if toks == [Tok::Many] {
            ArnPatternKind::Any
        } else if let Some(segs) = split_arn_toks(toks) {
            let globs = segs.map(Glob::from_toks);
            let head: Option<Vec<&[u8]>> = globs[..5]
                .iter()
                .map(|g| match g {
                    Glob::Exact(b) => Some(b.as_ref()),
                    _ => None,
                })
                .collect();
            match (head, &globs[5]) {
                (Some(head), Glob::Exact(last)) => {
                    let mut joined = head.join(&b':');
                    joined.push(b':');
                    joined.extend_from_slice(last);
                    match String::from_utf8(joined) {
                        Ok(s) => ArnPatternKind::Exact(s.into()),
                        Err(_) => ArnPatternKind::Segments(Box::new(globs)),
                    }
                }
                (Some(head), Glob::Prefix(last)) => {
                    let mut joined = head.join(&b':');
                    joined.push(b':');
                    joined.extend_from_slice(last);
                    ArnPatternKind::Prefix(joined.into_boxed_slice())
                }
                _ => ArnPatternKind::Segments(Box::new(globs)),
            }
        } else {
            ArnPatternKind::Whole(Glob::from_toks(toks))
        };
        ArnPattern { kind }
    }

    /// Does `arn` match this pattern?
    pub fn matches(&self, arn: &str) -> bool {
        match &self.kind {
            ArnPatternKind::Any => true,
            ArnPatternKind::Exact(s) => bytes_eq(s.as_bytes(), arn.as_bytes()),
            ArnPatternKind::Prefix(p) => bytes_starts_with(arn.as_bytes(), p),
            ArnPatternKind::Segments(globs) => match split_arn(arn) {
                Some(parts) => globs.iter().zip(parts).all(|(g, p)| g.matches_cs(p)),
                None => false,
            },
            ArnPatternKind::Whole(g) => g.matches_cs(arn),
        }
    }

    /// Like [`matches`](Self::matches) with the ARN already split.
    #[inline]
    pub(crate) fn matches_split(&self, whole: &str, parts: Option<&[&str; 6]>) -> bool {
        match &self.kind {
            ArnPatternKind::Any => true,
            ArnPatternKind::Exact(s) => bytes_eq(s.as_bytes(), whole.as_bytes()),
            ArnPatternKind::Prefix(p) => bytes_starts_with(whole.as_bytes(), p),
            ArnPatternKind::Segments(globs) => match parts {
                Some(parts) => globs.iter().zip(parts).all(|(g, p)| g.matches_cs(p)),
                None => false,
            },
            ArnPatternKind::Whole(g) => g.matches_cs(whole),
        }
    }
}

/// Matches a dynamic (variable-resolved) ARN pattern given as tokens.
pub(crate) fn match_arn_pattern_toks(toks: &[Tok], whole: &str, parts: Option<&[&str; 6]>) -> bool {
    if toks == [Tok::Many] {
        return true;
    }
    match split_arn_toks(toks) {
        Some(segs) => match parts {
            Some(parts) => match_arn_toks(&segs, parts),
            None => false,
        },
        None => match_toks::<false>(toks, whole.as_bytes()),
    }
}

/// Unicode-aware case-insensitive equality without allocating.
#[inline]
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.chars()
            .flat_map(char::to_lowercase)
            .eq(b.chars().flat_map(char::to_lowercase))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basics() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("?", "é"));
        assert!(!wildcard_match("??", "é"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("", "a"));
        assert!(wildcard_match("", ""));
        assert!(wildcard_match("*a*b", "xxaxxb"));
        assert!(!wildcard_match("*a*b", "xxaxxbc"));
        assert!(wildcard_match_ignore_case("s3:get*", "S3:GetObject"));
        for (a, b) in [
            ("", ""),
            ("abcdefgh", "abcdefgh"),
            ("abcdefghij", "abcdefghij"),
        ] {
            assert!(bytes_eq(a.as_bytes(), b.as_bytes()));
        }
        for (a, b) in [
            ("a", ""),
            ("abcdefgh", "abcdefgx"),
            ("abcdefghij", "abcdefghix"),
            ("xbcdefghij", "abcdefghij"),
        ] {
            assert!(!bytes_eq(a.as_bytes(), b.as_bytes()));
        }
        assert!(bytes_starts_with(b"abcdefghijk", b"abcdefghij"));
        assert!(!bytes_starts_with(b"abc", b"abcd"));
        assert!(!wildcard_match("s3:get*", "S3:GetObject"));
    }

    #[test]
    fn arn() {
        let p = ArnPattern::new("arn:aws:s3:::bucket/*");
        assert!(p.matches("arn:aws:s3:::bucket/a/b:c"));
        assert!(!p.matches("arn:aws:s3:::bucket2/a"));
        let p = ArnPattern::new("arn:aws:iam::*:role/*");
        assert!(p.matches("arn:aws:iam::123:role/x"));
        assert!(!p.matches("arn:aws:iam::123:extra:user/x"));
        assert!(ArnPattern::new("arn:aws:*").matches("arn:aws:s3:::b"));
        let p = ArnPattern::new("arn:aws:s3:::b/in/*");
        assert!(matches!(p.kind, ArnPatternKind::Prefix(_)));
        assert!(p.matches("arn:aws:s3:::b/in/x:y"));
        assert!(!p.matches("arn:aws:s3:::b/out/x"));
        let p = ArnPattern::new("arn:aws:s3:::b/in");
        assert!(matches!(p.kind, ArnPatternKind::Exact(_)));
        assert!(p.matches("arn:aws:s3:::b/in"));
        assert!(!p.matches("arn:aws:s3:::b/in/"));
    }
}
