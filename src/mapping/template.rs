//! Templates of session settings and templated grants: literal text with
//! `${claims.NAME}` or `${match.NAME}` variables, each followed by filters:
//! `${claims.email|lower|truncate:64}`, `${claims.cost_center|default:none}`.
//!
//! - `${claims.X}`: the claim's value. A multi-valued claim gives its **first**
//!   value (session tags are single-valued in STS; a list such as a SAML attribute
//!   with one value reads naturally).
//! - `${match.X}`: a named capture of the rule's `for_each` regex.
//! - Filters, applied left to right: `lower`, `upper`, `trim`, `truncate:N`
//!   (characters), `default:VALUE` (when the value is missing or empty) and
//!   `replace:FROM:TO`.
//!
//! A variable still missing after its filters makes the whole template render to
//! nothing (the caller omits the setting and warns): no literal `${…}` is ever left
//! in a result.

use std::collections::HashMap;

use super::claims::SourceClaims;

/// The longest `truncate:N`.
const MAX_TRUNCATE: usize = 4096;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Var {
    namespace: Namespace,
    name: String,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    Claims,
    Match,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Filter {
    Lower,
    Upper,
    Trim,
    Truncate(usize),
    Default(String),
    Replace(String, String),
}

/// The named captures of one `for_each` match.
pub(crate) type Captures = HashMap<String, String>;

impl Template {
    /// Parses `text`; the error says what is wrong (the caller adds the code).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(format!("unclosed \"${{\" in {text:?}"));
            };
            parts.push(Part::Var(parse_var(&after[..end])?));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The text when the template has no variables.
    pub(crate) fn literal(&self) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(_) => return None,
            }
        }
        Some(out)
    }

    /// The variables used, as (namespace, name).
    pub(crate) fn variables(&self) -> impl Iterator<Item = (Namespace, &str)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some((v.namespace, v.name.as_str())),
            Part::Text(_) => None,
        })
    }

    /// The rendered text, or the first variable that is missing (as written,
    /// such as `claims.department`).
    pub(crate) fn render(
        &self,
        claims: &SourceClaims,
        captures: Option<&Captures>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Var(var) => {
                    let value = match var.namespace {
                        Namespace::Claims => claims.get(&var.name).first().cloned(),
                        Namespace::Match => captures.and_then(|c| c.get(&var.name)).cloned(),
                    };
                    let value = var
                        .filters
                        .iter()
                        .fold(value, |value, filter| filter.apply(value));
                    match value {
                        Some(value) => out.push_str(&value),
                        None => {
                            let ns = match var.namespace {
                                Namespace::Claims => "claims",
                                Namespace::Match => "match",
                            };
                            return Err(format!("{ns}.{}", var.name));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Filter {
    fn apply(&self, value: Option<String>) -> Option<String> {
        match self {
            Self::Default(default) => match value {
                Some(v) if !v.is_empty() => Some(v),
                _ => Some(default.clone()),
            },
            Self::Lower => value.map(|v| v.to_lowercase()),
            Self::Upper => value.map(|v| v.to_uppercase()),
            Self::Trim => value.map(|v| v.trim().to_owned()),
            Self::Truncate(n) => value.map(|v| v.chars().take(*n).collect()),
            Self::Replace(from, to) => value.map(|v| v.replace(from.as_str(), to)),
        }
    }
}

fn parse_var(body: &str) -> Result<Var, String> {
    let mut pieces = body.split('|');
    let path = pieces.next().unwrap_or_default().trim();
    let (namespace, name) = match path.split_once('.') {
        Some(("claims", name)) => (Namespace::Claims, name),
        Some(("match", name)) => (Namespace::Match, name),
        _ => {
            return Err(format!(
                "unknown variable \"${{{path}}}\": use ${{claims.NAME}} or ${{match.NAME}}"
            ));
        }
    };
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '$' || c == '{')
    {
        return Err(format!("invalid variable name in \"${{{path}}}\""));
    }
    let filters = pieces.map(parse_filter).collect::<Result<_, _>>()?;
    Ok(Var {
        namespace,
        name: name.to_owned(),
        filters,
    })
}

fn parse_filter(text: &str) -> Result<Filter, String> {
    let (name, arg) = match text.split_once(':') {
        Some((name, arg)) => (name.trim(), Some(arg)),
        None => (text.trim(), None),
    };
    match (name, arg) {
        ("lower", None) => Ok(Filter::Lower),
        ("upper", None) => Ok(Filter::Upper),
        ("trim", None) => Ok(Filter::Trim),
        ("truncate", Some(n)) => match n.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_TRUNCATE).contains(&n) => Ok(Filter::Truncate(n)),
            _ => Err(format!(
                "truncate takes a length from 1 to {MAX_TRUNCATE}, not {n:?}"
            )),
        },
        ("default", Some(value)) => Ok(Filter::Default(value.to_owned())),
        ("replace", Some(args)) => match args.split_once(':') {
            Some((from, to)) if !from.is_empty() => {
                Ok(Filter::Replace(from.to_owned(), to.to_owned()))
            }
            _ => Err("replace takes replace:FROM:TO with a non-empty FROM".to_owned()),
        },
        ("lower" | "upper" | "trim", Some(_)) => Err(format!("filter {name} takes no argument")),
        ("truncate" | "default" | "replace", None) => {
            Err(format!("filter {name} needs an argument ({name}:…)"))
        }
        _ => Err(format!(
            "unknown filter {name:?}: use lower, upper, trim, truncate:N, default:VALUE or replace:FROM:TO"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(pairs: &[(&str, &[&str])]) -> SourceClaims {
        SourceClaims {
            source: "corp".into(),
            values: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            case_sensitive: true,
        }
    }

    #[test]
    fn variables_and_filters_render() {
        let c = claims(&[
            ("email", &["Alice.Smith@Example.com"]),
            ("groups", &["first", "second"]),
            ("dept", &["  Eng  "]),
        ]);
        let render = |t: &str| Template::parse(t).unwrap().render(&c, None);
        assert_eq!(
            render("${claims.email|lower}").unwrap(),
            "alice.smith@example.com"
        );
        assert_eq!(render("${claims.email|upper|truncate:5}").unwrap(), "ALICE");
        assert_eq!(render("u-${claims.dept|trim|lower}!").unwrap(), "u-eng!");
        assert_eq!(render("${claims.groups}").unwrap(), "first");
        assert_eq!(
            render("${claims.cost_center|default:none}").unwrap(),
            "none"
        );
        assert_eq!(
            render("${claims.email|replace:@:_at_}").unwrap(),
            "Alice.Smith_at_Example.com"
        );
        assert_eq!(render("${claims.nope|lower}").unwrap_err(), "claims.nope");
        assert_eq!(render("plain").unwrap(), "plain");

        let mut captures = Captures::new();
        captures.insert("role".into(), "Dev".into());
        let t = Template::parse("${match.role|lower}").unwrap();
        assert_eq!(t.render(&c, Some(&captures)).unwrap(), "dev");
        assert_eq!(t.literal(), None);
        assert_eq!(
            Template::parse("x").unwrap().literal().as_deref(),
            Some("x")
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in [
            "${claims.email",
            "${user.email}",
            "${email}",
            "${claims.email|shout}",
            "${claims.email|truncate:0}",
            "${claims.email|truncate:x}",
            "${claims.email|default}",
            "${claims.email|lower:1}",
            "${claims.}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
