//! Policy variables (`${aws:username}`, `${key, 'default'}`, `${*}`, ...).
//!
//! Only recognised in policies with `"Version": "2012-10-17"`; in older
//! documents the text is taken literally. A variable resolves from the
//! request context key of the same (case-insensitive) name when that key has
//! exactly one value; otherwise the default is used if given, and if there is
//! none the element containing the variable does not match.

use super::context::ContextKeys;
use super::matcher::{Tok, tokenize};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Policy text; `*` and `?` in it are wildcards where wildcards apply.
    Text(String),
    /// `${*}`, `${?}` or `${$}`: always a literal character.
    Escaped(u8),
    /// `${key}` or `${key, 'default'}`; key lower-cased.
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// A string from a policy, split into text and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Box<[Part]>,
}

impl Template {
    /// Parses `text`; with `enabled == false` (pre-2012 policies) the whole
    /// text is literal.
    pub(crate) fn parse(text: &str, enabled: bool) -> Template {
        let mut parts: Vec<Part> = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while enabled && let Some(start) = rest.find("${") {
            literal.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match parse_variable(after) {
                Some((part, consumed)) => {
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                    rest = &after[consumed..];
                }
                None => {
                    literal.push_str("${");
                    rest = after;
                }
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Template {
            parts: parts.into(),
        }
    }

    /// True when the template contains a variable that needs the request.
    pub(crate) fn has_variables(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var { .. }))
    }

    /// The literal string (escapes applied); only meaningful without variables.
    pub(crate) fn static_string(&self) -> String {
        let mut out = String::new();
        for part in self.parts.iter() {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Escaped(b) => out.push(char::from(*b)),
                Part::Var { .. } => {}
            }
        }
        out
    }

    /// Wildcard tokens; only meaningful without variables.
    pub(crate) fn static_toks(&self, lowercase: bool) -> Vec<Tok> {
        let mut out = Vec::new();
        for part in self.parts.iter() {
            push_part_toks(&mut out, part, lowercase, None);
        }
        out
    }

    /// Resolves variables into a plain string, `None` if one has no value.
    pub(crate) fn resolve_string(&self, ctx: &ContextKeys) -> Option<String> {
        let mut out = String::new();
        for part in self.parts.iter() {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Escaped(b) => out.push(char::from(*b)),
                Part::Var { key, default } => out.push_str(lookup(ctx, key, default.as_deref())?),
            }
        }
        Some(out)
    }

    /// Resolves variables into wildcard tokens (substituted values are
    /// literal), `None` if one has no value.
    pub(crate) fn resolve_toks(&self, ctx: &ContextKeys, lowercase: bool) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        for part in self.parts.iter() {
            if !push_part_toks(&mut out, part, lowercase, Some(ctx)) {
                return None;
            }
        }
        Some(out)
    }
}

fn push_part_toks(
    out: &mut Vec<Tok>,
    part: &Part,
    lowercase: bool,
    ctx: Option<&ContextKeys>,
) -> bool {
    let lit = |b: u8| Tok::Lit(if lowercase { b.to_ascii_lowercase() } else { b });
    match part {
        Part::Text(t) => out.extend(tokenize(t, lowercase)),
        Part::Escaped(b) => out.push(lit(*b)),
        Part::Var { key, default } => {
            let Some(ctx) = ctx else { return false };
            match lookup(ctx, key, default.as_deref()) {
                Some(value) => out.extend(value.bytes().map(lit)),
                None => return false,
            }
        }
    }
    true
}

fn lookup<'a>(ctx: &'a ContextKeys, key: &str, default: Option<&'a str>) -> Option<&'a str> {
    match ctx.get_lowercase(key) {
        Some([single]) => Some(single.as_str()),
        _ => default,
    }
}

/// Parses the inside of `${...}` (text after `${`). Returns the part and the
/// number of bytes consumed including the closing `}`; `None` when malformed
/// (the text is then kept literally).
///
/// The grammar is `ws* key ws* ( "," ws* 'default' ws* )? "}"` (or one of
/// `*`, `?`, `$` alone), where a key has no white space, `{`, `}`, `$`, `'`
/// or `,`, and `''` stands for one quote inside the default. The scan stops at
/// the first byte that cannot continue a variable, so an unclosed `${` costs
/// only the bytes up to that point instead of a rescan to the end of the text
/// (which made a string with many unclosed `${` quadratic).
fn parse_variable(after: &str) -> Option<(Part, usize)> {
    let mut i = skip_ws(after, 0);
    let key_start = i;
    for (offset, c) in after[key_start..].char_indices() {
        if c.is_whitespace() || matches!(c, '{' | '}' | '$' | '\'' | ',') {
            i = key_start + offset;
            break;
        }
        i = key_start + offset + c.len_utf8();
    }
    let key = &after[key_start..i];
    if key.is_empty() {
        // Only `${$}` (with optional white space) is valid without a key.
        let rest = after[i..].strip_prefix('$')?;
        let close = skip_ws(rest, 0);
        return (rest.as_bytes().get(close) == Some(&b'}'))
            .then(|| (Part::Escaped(b'$'), i + 1 + close + 1));
    }
    i = skip_ws(after, i);
    let default = match after.as_bytes().get(i)? {
        b'}' => None,
        b',' => {
            i = skip_ws(after, i + 1);
            if after.as_bytes().get(i) != Some(&b'\'') {
                return None;
            }
            i += 1;
            let body_start = i;
            let bytes = after.as_bytes();
            let mut value = String::new();
            let mut copied = body_start;
            loop {
                match *bytes.get(i)? {
                    b'\'' if bytes.get(i + 1) == Some(&b'\'') => {
                        // '' stands for one quote.
                        value.push_str(&after[copied..=i]);
                        i += 2;
                        copied = i;
                    }
                    b'\'' => break,
                    _ => i += 1,
                }
            }
            value.push_str(&after[copied..i]);
            i = skip_ws(after, i + 1);
            if after.as_bytes().get(i) != Some(&b'}') {
                return None;
            }
            Some(value.into_boxed_str())
        }
        _ => return None,
    };
    let part = match (key, &default) {
        ("*", None) => Part::Escaped(b'*'),
        ("?", None) => Part::Escaped(b'?'),
        _ => Part::Var {
            key: key.to_lowercase().into_boxed_str(),
            default,
        },
    };
    Some((part, i + 1))
}

/// The index of the first non-white-space character at or after `from`.
fn skip_ws(text: &str, from: usize) -> usize {
    text[from..]
        .char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(text.len(), |(offset, _)| from + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        let t = Template::parse("home/${aws:username}/*", true);
        assert!(t.has_variables());
        let t = Template::parse("a${*}b${?}c${$}d", true);
        assert!(!t.has_variables());
        assert_eq!(t.static_string(), "a*b?c$d");
        let t = Template::parse("${aws:username}", false);
        assert_eq!(t.static_string(), "${aws:username}");
        let t = Template::parse("${ aws:username , 'it''s' }", true);
        let ctx = ContextKeys::new();
        assert_eq!(t.resolve_string(&ctx).as_deref(), Some("it's"));
        let t = Template::parse("x${unterminated", true);
        assert_eq!(t.static_string(), "x${unterminated");
    }

    /// The previous implementation (rescans to the closing brace), the
    /// reference for the grammar-driven scan. Returns the part and the
    /// number of bytes consumed including the closing `}`; `None` when malformed
    /// (the text is then kept literally).
    fn reference_parse_variable(after: &str) -> Option<(Part, usize)> {
        // Find the closing brace, skipping over a quoted default value.
        let bytes = after.as_bytes();
        let mut i = 0;
        let mut in_quote = false;
        let close = loop {
            let b = *bytes.get(i)?;
            if in_quote {
                if b == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    in_quote = false;
                }
            } else if b == b'\'' {
                in_quote = true;
            } else if b == b'}' {
                break i;
            }
            i += 1;
        };
        let inner = after[..close].trim();
        let part = match inner {
            "*" => Part::Escaped(b'*'),
            "?" => Part::Escaped(b'?'),
            "$" => Part::Escaped(b'$'),
            _ => {
                let (key, default) = match inner.find(',') {
                    Some(comma) => {
                        let key = inner[..comma].trim();
                        let quoted = inner[comma + 1..].trim();
                        let body = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
                        // Inside the default, '' stands for one quote; a lone quote is malformed.
                        let mut value = String::with_capacity(body.len());
                        let mut chars = body.chars();
                        while let Some(c) = chars.next() {
                            if c == '\'' && chars.next() != Some('\'') {
                                return None;
                            }
                            value.push(c);
                        }
                        (key, Some(value.into_boxed_str()))
                    }
                    None => (inner, None),
                };
                if key.is_empty()
                    || key.chars().any(char::is_whitespace)
                    || key.contains(['{', '$', '\''])
                {
                    return None;
                }
                Part::Var {
                    key: key.to_lowercase().into_boxed_str(),
                    default,
                }
            }
        };
        Some((part, close + 1))
    }

    /// The linear scan accepts and rejects exactly what the previous
    /// (quadratic) one did: every string of up to 6 characters over the
    /// characters that matter to the grammar, and a few longer ones.
    #[test]
    fn same_results_as_the_rescanning_parser() {
        const ALPHABET: &[char] = &['$', '{', '}', '\'', ',', ' ', 'a', '*'];
        fn visit(text: &mut String, depth: usize, checked: &mut usize) {
            assert_eq!(
                parse_variable(text),
                reference_parse_variable(text),
                "{text:?}"
            );
            *checked += 1;
            if depth == 0 {
                return;
            }
            for &c in ALPHABET {
                text.push(c);
                visit(text, depth - 1, checked);
                text.pop();
            }
        }
        let mut checked = 0;
        visit(&mut String::new(), 6, &mut checked);
        assert!(checked > 200_000);
        for sample in [
            "aws:username}",
            " k , 'it''s' }",
            "k,''}",
            "k,'''}x'}",
            "é, 'ü'}",
            "?}",
            " $ }",
            "a\u{2003}}",
        ] {
            assert_eq!(
                parse_variable(sample),
                reference_parse_variable(sample),
                "{sample:?}"
            );
        }
    }
}
