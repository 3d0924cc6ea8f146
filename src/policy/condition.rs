//! Condition operators, compiled at parse time and evaluated without
//! allocating (unless a policy variable has to be substituted).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::context::ContextKeys;
use super::error::PolicyError;
use super::matcher::{ArnPattern, Glob, eq_ignore_case, match_toks};
use super::variables::Template;

/// `ForAnyValue:` / `ForAllValues:` qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SetOp {
    Single,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    #[inline]
    fn test<T: PartialOrd>(self, request: T, policy: T) -> bool {
        match self {
            Cmp::Eq => request == policy,
            Cmp::Lt => request < policy,
            Cmp::Le => request <= policy,
            Cmp::Gt => request > policy,
            Cmp::Ge => request >= policy,
        }
    }
}

/// Base operator family (negated forms carry `negated = true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

/// A parsed operator name such as `ForAllValues:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) kind: OpKind,
    pub(crate) negated: bool,
    pub(crate) set: SetOp,
    pub(crate) if_exists: bool,
}

impl Operator {
    /// Parses an operator name; `None` if it is not a known IAM operator.
    pub(crate) fn parse(name: &str) -> Option<Operator> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetOp::ForAnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetOp::ForAllValues, r)
        } else {
            (SetOp::Single, name)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let (kind, negated) = match base {
            "StringEquals" => (OpKind::StringEquals, false),
            "StringNotEquals" => (OpKind::StringEquals, true),
            "StringEqualsIgnoreCase" => (OpKind::StringEqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (OpKind::StringEqualsIgnoreCase, true),
            "StringLike" => (OpKind::StringLike, false),
            "StringNotLike" => (OpKind::StringLike, true),
            "NumericEquals" => (OpKind::Numeric(Cmp::Eq), false),
            "NumericNotEquals" => (OpKind::Numeric(Cmp::Eq), true),
            "NumericLessThan" => (OpKind::Numeric(Cmp::Lt), false),
            "NumericLessThanEquals" => (OpKind::Numeric(Cmp::Le), false),
            "NumericGreaterThan" => (OpKind::Numeric(Cmp::Gt), false),
            "NumericGreaterThanEquals" => (OpKind::Numeric(Cmp::Ge), false),
            "DateEquals" => (OpKind::Date(Cmp::Eq), false),
            "DateNotEquals" => (OpKind::Date(Cmp::Eq), true),
            "DateLessThan" => (OpKind::Date(Cmp::Lt), false),
            "DateLessThanEquals" => (OpKind::Date(Cmp::Le), false),
            "DateGreaterThan" => (OpKind::Date(Cmp::Gt), false),
            "DateGreaterThanEquals" => (OpKind::Date(Cmp::Ge), false),
            "Bool" => (OpKind::Bool, false),
            "BinaryEquals" => (OpKind::Binary, false),
            "IpAddress" => (OpKind::Ip, false),
            "NotIpAddress" => (OpKind::Ip, true),
            "ArnEquals" | "ArnLike" => (OpKind::Arn, false),
            "ArnNotEquals" | "ArnNotLike" => (OpKind::Arn, true),
            "Null" => (OpKind::Null, false),
            _ => return None,
        };
        Some(Operator {
            kind,
            negated,
            set,
            if_exists,
        })
    }
}

impl Operator {
    /// The value of a (non-`Null`) condition whose key is absent from the
    /// request context or has no values, per AWS's documentation:
    ///
    /// * "If the key that you specify in a policy condition is not present in
    ///   the request context, the values do not match and the condition is
    ///   false. If the policy condition requires that the key is not matched,
    ///   such as `StringNotLike` or `ArnNotLike`, and the right key is not
    ///   present, the condition is true. This logic applies to all condition
    ///   operators except ...IfExists and Null check." (condition operators)
    /// * `...IfExists`: "If the key is not present, evaluate the condition
    ///   element as true."
    /// * `ForAllValues`: "It also returns true if there are no context keys in
    ///   the request"; `ForAnyValue`: "If the key in the request is missing,
    ///   the condition returns false" (multivalued context keys). The set
    ///   operator decides whether or not the operator after it is negated
    ///   (AWS's own `ForAllValues:StringNotLike` example with no `aws:TagKeys`
    ///   in the request is a match).
    pub(crate) fn missing_key_result(self) -> bool {
        if self.if_exists {
            return true;
        }
        match self.set {
            SetOp::ForAllValues => true,
            SetOp::ForAnyValue => false,
            SetOp::Single => self.negated,
        }
    }
}

/// A policy value: either fixed at parse time or containing variables.
#[derive(Debug, Clone)]
enum Val<T> {
    Static(T),
    Dynamic(Template),
}

#[derive(Debug, Clone)]
enum Values {
    Str(Box<[Val<Box<str>>]>),
    Like(Box<[Val<Glob>]>),
    Num(Cmp, Box<[Val<f64>]>),
    Date(Cmp, Box<[Val<i128>]>),
    Bool(Box<[Box<str>]>),
    Binary(Box<[Box<[u8]>]>),
    Ip(Box<[Val<IpNet>]>),
    Arn(Box<[Val<ArnPattern>]>),
    Null(Box<[bool]>),
}

/// One `operator: { key: values }` pair, compiled.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    key: Box<str>,
    op: Operator,
    ignore_case: bool,
    values: Values,
}

fn compile_vals<T>(
    raw: &[String],
    vars: bool,
    mut parse: impl FnMut(&str) -> Result<T, PolicyError>,
) -> Result<Box<[Val<T>]>, PolicyError> {
    raw.iter()
        .map(|s| {
            let t = Template::parse(s, vars);
            if t.has_variables() {
                Ok(Val::Dynamic(t))
            } else {
                parse(&t.static_string()).map(Val::Static)
            }
        })
        .collect()
}

impl Condition {
    /// Compiles one key of an operator block. `raw` holds the values as
    /// strings (JSON numbers and booleans already converted).
    pub(crate) fn compile(
        op: Operator,
        key: &str,
        raw: &[String],
        vars: bool,
    ) -> Result<Condition, PolicyError> {
        let bad = |what: &str, v: &str| {
            PolicyError::legacy(format!(
                "invalid {what} value {v:?} for condition key {key:?}"
            ))
        };
        let values = match op.kind {
            OpKind::StringEquals | OpKind::StringEqualsIgnoreCase => {
                Values::Str(compile_vals(raw, vars, |s| Ok(s.into()))?)
            }
            OpKind::StringLike => Values::Like(
                raw.iter()
                    .map(|s| {
                        let t = Template::parse(s, vars);
                        if t.has_variables() {
                            Val::Dynamic(t)
                        } else {
                            Val::Static(Glob::from_toks(&t.static_toks(false)))
                        }
                    })
                    .collect(),
            ),
            OpKind::Numeric(cmp) => Values::Num(
                cmp,
                compile_vals(raw, vars, |s| {
                    parse_number(s).ok_or_else(|| bad("numeric", s))
                })?,
            ),
            OpKind::Date(cmp) => Values::Date(
                cmp,
                compile_vals(raw, vars, |s| parse_date(s).ok_or_else(|| bad("date", s)))?,
            ),
            OpKind::Bool => Values::Bool(
                raw.iter()
                    .map(|s| s.to_ascii_lowercase().into_boxed_str())
                    .collect(),
            ),
            OpKind::Binary => Values::Binary(
                raw.iter()
                    .map(|s| {
                        decode_base64(s)
                            .map(Vec::into_boxed_slice)
                            .ok_or_else(|| bad("base64", s))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            OpKind::Ip => Values::Ip(compile_vals(raw, vars, |s| {
                parse_cidr(s).ok_or_else(|| bad("IP address", s))
            })?),
            OpKind::Arn => Values::Arn(
                raw.iter()
                    .map(|s| {
                        let t = Template::parse(s, vars);
                        if t.has_variables() {
                            Val::Dynamic(t)
                        } else {
                            Val::Static(ArnPattern::from_toks(&t.static_toks(false)))
                        }
                    })
                    .collect(),
            ),
            OpKind::Null => Values::Null(
                raw.iter()
                    .map(|s| {
                        if s.eq_ignore_ascii_case("true") {
                            Ok(true)
                        } else if s.eq_ignore_ascii_case("false") {
                            Ok(false)
                        } else {
                            Err(bad("Null", s))
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Condition {
            key: key.to_lowercase().into_boxed_str(),
            op,
            ignore_case: op.kind == OpKind::StringEqualsIgnoreCase,
            values,
        })
    }

    /// Evaluates the condition against the request context.
    #[inline]
    pub(crate) fn evaluate(&self, ctx: &ContextKeys) -> bool {
        let found = ctx.get_lowercase(&self.key);
        if let Values::Null(wanted) = &self.values {
            let present = found.is_some_and(|v| !v.is_empty());
            return wanted.iter().any(|want_null| *want_null != present);
        }
        let values = match found {
            Some(v) if !v.is_empty() => v,
            _ => return self.op.missing_key_result(),
        };
        let negated = self.op.negated;
        // For negated operators a value whose variable cannot be resolved makes
        // the condition fail rather than succeed.
        let value_ok = |c: &String| {
            let (matched, unresolved) = self.matches_any(c, ctx);
            if negated {
                !matched && !unresolved
            } else {
                matched
            }
        };
        match self.op.set {
            SetOp::Single => {
                if negated {
                    values.iter().all(value_ok)
                } else {
                    values.iter().any(value_ok)
                }
            }
            SetOp::ForAnyValue => values.iter().any(value_ok),
            SetOp::ForAllValues => values.iter().all(value_ok),
        }
    }

    /// Does the request value match any policy value (positive form)?
    /// Second element: some policy value had an unresolvable variable.
    fn matches_any(&self, c: &str, ctx: &ContextKeys) -> (bool, bool) {
        let mut unresolved = false;
        let matched = match &self.values {
            Values::Str(vals) => vals.iter().any(|v| match v {
                Val::Static(p) => {
                    if self.ignore_case {
                        eq_ignore_case(c, p)
                    } else {
                        **p == *c
                    }
                }
                Val::Dynamic(t) => match t.resolve_string(ctx) {
                    Some(p) => {
                        if self.ignore_case {
                            eq_ignore_case(c, &p)
                        } else {
                            p == c
                        }
                    }
                    None => {
                        unresolved = true;
                        false
                    }
                },
            }),
            Values::Like(vals) => vals.iter().any(|v| match v {
                Val::Static(g) => g.matches_cs(c),
                Val::Dynamic(t) => match t.resolve_toks(ctx, false) {
                    Some(toks) => match_toks::<false>(&toks, c.as_bytes()),
                    None => {
                        unresolved = true;
                        false
                    }
                },
            }),
            Values::Num(cmp, vals) => match parse_number(c) {
                Some(n) => vals.iter().any(|v| match v {
                    Val::Static(p) => cmp.test(n, *p),
                    Val::Dynamic(t) => match t.resolve_string(ctx).and_then(|s| parse_number(&s)) {
                        Some(p) => cmp.test(n, p),
                        None => {
                            unresolved = true;
                            false
                        }
                    },
                }),
                None => false,
            },
            Values::Date(cmp, vals) => match parse_date(c) {
                Some(d) => vals.iter().any(|v| match v {
                    Val::Static(p) => cmp.test(d, *p),
                    Val::Dynamic(t) => match t.resolve_string(ctx).and_then(|s| parse_date(&s)) {
                        Some(p) => cmp.test(d, p),
                        None => {
                            unresolved = true;
                            false
                        }
                    },
                }),
                None => false,
            },
            Values::Bool(vals) => vals.iter().any(|p| c.eq_ignore_ascii_case(p)),
            Values::Binary(vals) => vals.iter().any(|p| base64_equals(c, p)),
            Values::Ip(vals) => match IpAddr::from_str(c) {
                Ok(addr) => vals.iter().any(|v| match v {
                    Val::Static(net) => net.contains(&addr),
                    Val::Dynamic(t) => match t.resolve_string(ctx).and_then(|s| parse_cidr(&s)) {
                        Some(net) => net.contains(&addr),
                        None => {
                            unresolved = true;
                            false
                        }
                    },
                }),
                Err(_) => false,
            },
            Values::Arn(vals) => vals.iter().any(|v| match v {
                Val::Static(p) => p.matches(c),
                Val::Dynamic(t) => match t.resolve_toks(ctx, false) {
                    Some(toks) => ArnPattern::from_toks(&toks).matches(c),
                    None => {
                        unresolved = true;
                        false
                    }
                },
            }),
            Values::Null(_) => false,
        };
        (matched, unresolved)
    }
}

/// Parses a decimal number (integer or fraction); rejects NaN and infinities.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses a CIDR block or a bare IPv4/IPv6 address (a single host).
pub(crate) fn parse_cidr(s: &str) -> Option<IpNet> {
    let t = s.trim();
    if t.contains('/') {
        IpNet::from_str(t).ok()
    } else {
        IpAddr::from_str(t).ok().map(IpNet::from)
    }
}

const NANOS: i128 = 1_000_000_000;

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn ranged(s: &str, lo: i64, hi: i64) -> Option<i64> {
    digits(s).filter(|v| (lo..=hi).contains(v))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an IAM date value into nanoseconds since the Unix epoch.
///
/// Values containing `T` or `-` are ISO 8601 (`YYYY[-MM[-DD]][Thh[:mm[:ss[.fff]]][Z|±hh[:mm]]]`,
/// years −292275054..=292278993); anything else is whole epoch seconds
/// (0..=i64::MAX).
pub fn parse_date(s: &str) -> Option<i128> {
    if !s.bytes().any(|b| matches!(b, b't' | b'T' | b'-')) {
        let secs: i128 = s.trim().parse().ok()?;
        return (0..=i128::from(i64::MAX))
            .contains(&secs)
            .then(|| secs * NANOS);
    }
    let (date, time) = match s.find(['t', 'T']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (negative, body) = match date.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, date),
    };
    let mut parts = body.split('-');
    let year = digits(parts.next()?)?;
    let year = if negative { -year } else { year };
    if !(-292_275_054..=292_278_993).contains(&year) {
        return None;
    }
    let month = match parts.next() {
        Some(m) => ranged(m, 1, 12)?,
        None => 1,
    };
    let day = match parts.next() {
        Some(d) => ranged(d, 1, 31)?,
        None => 1,
    };
    if parts.next().is_some() {
        return None;
    }
    let mut secs = i128::from(days_from_civil(year, month, day)) * 86_400;
    let mut frac_nanos: i128 = 0;
    if let Some(time) = time {
        // Split off the zone designator.
        let (clock, offset) = match time.find(['z', 'Z', '+', '-']) {
            Some(i) => {
                let zone = &time[i..];
                let offset = if zone.eq_ignore_ascii_case("z") {
                    0
                } else {
                    let sign: i128 = if zone.starts_with('-') { -1 } else { 1 };
                    let z = &zone[1..];
                    if !z.is_ascii() {
                        return None;
                    }
                    let (hh, mm) = match z.split_once(':') {
                        Some((h, m)) => (h, Some(m)),
                        None if z.len() == 4 => (&z[..2], Some(&z[2..])),
                        None => (z, None),
                    };
                    if hh.len() != 2 || mm.is_some_and(|m| m.len() != 2) {
                        return None;
                    }
                    let h = ranged(hh, 0, 23)?;
                    let m = match mm {
                        Some(m) => ranged(m, 0, 59)?,
                        None => 0,
                    };
                    sign * i128::from(h * 3600 + m * 60)
                };
                (&time[..i], offset)
            }
            None => (time, 0),
        };
        if !clock.is_empty() {
            let mut fields = clock.split(':');
            let h = ranged(fields.next()?, 0, 23)?;
            let m = match fields.next() {
                Some(m) => ranged(m, 0, 59)?,
                None => 0,
            };
            let s = match fields.next() {
                Some(sec) => {
                    let (whole, frac) = match sec.split_once('.') {
                        Some((w, f)) => (w, Some(f)),
                        None => (sec, None),
                    };
                    if let Some(f) = frac {
                        if f.is_empty() || f.len() > 9 {
                            return None;
                        }
                        let v = digits(f)?;
                        frac_nanos = i128::from(v) * 10i128.pow(9 - f.len() as u32);
                    }
                    ranged(whole, 0, 59)?
                }
                None => 0,
            };
            if fields.next().is_some() {
                return None;
            }
            secs += i128::from(h * 3600 + m * 60 + s);
        }
        secs -= offset;
    }
    Some(secs * NANOS + frac_nanos)
}

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' | b'-' => 62,
        b'/' | b'_' => 63,
        _ => return None,
    } as u32)
}

/// Streams the bytes encoded by base64 text (standard or URL-safe alphabet,
/// padding and whitespace ignored); `f` returns false to stop early.
/// Returns `None` for invalid input.
fn base64_for_each(s: &str, mut f: impl FnMut(u8) -> bool) -> Option<bool> {
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut padding = false;
    for c in s.bytes() {
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == b'=' {
            padding = true;
            continue;
        }
        if padding {
            return None;
        }
        acc = (acc << 6) | b64_value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
            if !f(byte) {
                return Some(false);
            }
        }
    }
    // Leftover bits must be zero padding bits (at most 4 of them).
    Some(bits < 6 && acc == 0)
}

pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    match base64_for_each(s, |b| {
        out.push(b);
        true
    }) {
        Some(true) => Some(out),
        _ => None,
    }
}

/// Compares a base64-encoded request value with decoded policy bytes.
fn base64_equals(encoded: &str, expected: &[u8]) -> bool {
    let mut i = 0;
    let ok = base64_for_each(encoded, |b| {
        let same = expected.get(i) == Some(&b);
        i += 1;
        same
    });
    ok == Some(true) && i == expected.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("86400"), Some(86_400 * NANOS));
        assert_eq!(
            parse_date("1970-01-02T01:00:00+01:00"),
            Some(86_400 * NANOS)
        );
        assert_eq!(
            parse_date("2016-12-13T21:20:37.5+00:00").map(|n| n % NANOS),
            Some(500_000_000)
        );
        assert!(parse_date("2016-12-13t2:00:00.593194+23").is_some());
        assert!(parse_date("01T").is_some());
        assert!(parse_date("-292275054").is_some());
        for bad in [
            "2020-01-01T10:00+aé1",
            "sdfdsf",
            "234-13",
            "2016-12-13t2:00:00.593194+1",
            "2016-12-13t2:00:00.1999999999+10:59",
            "9223372036854775808",
            "2016-",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64() {
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert!(base64_equals("aGVsbG8", b"hello"));
        assert!(!base64_equals("aGVsbG8=", b"hell"));
        assert_eq!(decode_base64("a"), None);
    }
}
