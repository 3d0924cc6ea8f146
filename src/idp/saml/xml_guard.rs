//! The first steps of every SAML input, before any XML parser sees it: the size cap,
//! base64, UTF-8, and the refusal of DTDs (so no entity is ever declared, let alone
//! expanded: billion laughs and XXE die here). Then a strict parse into a small tree
//! that the verifier walks: namespaces resolved, only the predefined entities and
//! character references, no processing instructions, no foreign encodings, bounded
//! depth and size. The same bytes go to xmlsec, so both parsers see one document.

use base64::Engine as _;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::SamlError;

/// The most base64 characters a SAMLResponse may have (AWS's cap for AssumeRoleWithSAML).
pub const MAX_BASE64_CHARS: usize = 100_000;
/// Deepest element nesting accepted (SAML responses nest about ten deep).
const MAX_DEPTH: usize = 48;
/// Most elements in one document.
const MAX_ELEMENTS: usize = 5_000;

/// The base64 `SAMLResponse` as received -> its XML text. The cap is checked on the
/// characters as received, before anything is decoded; ASCII whitespace (line breaks
/// some IdPs insert) is ignored by the decoder.
pub fn decode_base64_xml(b64: &str) -> Result<String, SamlError> {
    if b64.chars().count() > MAX_BASE64_CHARS {
        return Err(SamlError::TooLarge);
    }
    let compact: Vec<u8> = b64.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(SamlError::MalformedBase64);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .map_err(|_| SamlError::MalformedBase64)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| SamlError::MalformedXml("the document is not UTF-8".into()))?;
    refuse_dtd(&text)?;
    Ok(text)
}

/// Refuses any markup declaration (`<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, `<!ATTLIST`,
/// `<!NOTATION`): only comments and CDATA sections may start with `<!`. Also refuses
/// what would make two parsers read the bytes differently: a declared encoding other
/// than UTF-8, XML 1.1, NUL and other characters XML 1.0 forbids.
pub fn refuse_dtd(xml: &str) -> Result<(), SamlError> {
    let bytes = xml.as_bytes();
    let mut at = 0;
    while let Some(found) = memchr_lt_bang(&bytes[at..]) {
        let rest = &bytes[at + found + 2..];
        if !(rest.starts_with(b"--") || rest.starts_with(b"[CDATA[")) {
            return Err(SamlError::DtdForbidden);
        }
        at += found + 2;
    }
    // Belt and braces: the keyword anywhere in markup position, whatever the case.
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err(SamlError::DtdForbidden);
    }
    if let Some(bad) = xml.chars().find(|c| !xml10_char(*c)) {
        return Err(SamlError::MalformedXml(format!(
            "character U+{:04X} is not allowed in XML",
            u32::from(bad)
        )));
    }
    Ok(())
}

fn memchr_lt_bang(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"<!")
}

fn xml10_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A node of the strict tree.
#[derive(Debug, Clone)]
pub enum Node {
    Element(Element),
    Text(String),
    /// A comment: kept as a marker so value elements can refuse them.
    Comment,
}

/// An element: its namespace URI and local name, its attributes (namespace
/// declarations left out) and children in document order.
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub local: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone)]
pub struct Attr {
    pub ns: Option<String>,
    pub local: String,
    pub value: String,
}

impl Element {
    pub fn is(&self, ns: &str, local: &str) -> bool {
        self.local == local && self.ns.as_deref() == Some(ns)
    }

    /// An attribute without a namespace, by local name.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.local == local)
            .map(|a| a.value.as_str())
    }

    /// An attribute in namespace `ns`.
    pub fn attr_ns(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.as_deref() == Some(ns) && a.local == local)
            .map(|a| a.value.as_str())
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// Direct children named `ns`:`local`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        local: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.elements().filter(move |e| e.is(ns, local))
    }

    /// The only direct child named `ns`:`local`; `None` when there is none, an error
    /// when there are several.
    pub fn only_child(&self, ns: &str, local: &str) -> Result<Option<&Element>, SamlError> {
        let mut found = self.elements().filter(|e| e.is(ns, local));
        let first = found.next();
        if found.next().is_some() {
            return Err(SamlError::Wrapping(format!(
                "more than one {local} in {}",
                self.local
            )));
        }
        Ok(first)
    }

    /// The text content: every text piece of this element and its descendants, in
    /// order (comments contribute nothing and do not cut the text).
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.collect_text(&mut out);
        out
    }

    fn collect_text(&self, out: &mut String) {
        for child in &self.children {
            match child {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.collect_text(out),
                Node::Comment => {}
            }
        }
    }

    /// Whether a comment sits anywhere inside this element.
    pub fn has_comment(&self) -> bool {
        self.children.iter().any(|n| match n {
            Node::Comment => true,
            Node::Element(e) => e.has_comment(),
            Node::Text(_) => false,
        })
    }

    /// Every element of the subtree (this one included), depth first, with its depth.
    pub fn walk(&self) -> Vec<(&Element, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![(self, 0usize)];
        while let Some((e, depth)) = stack.pop() {
            out.push((e, depth));
            for child in e.elements().collect::<Vec<_>>().into_iter().rev() {
                stack.push((child, depth + 1));
            }
        }
        out
    }
}

fn malformed(what: impl std::fmt::Display) -> SamlError {
    SamlError::MalformedXml(what.to_string())
}

fn resolved_ns(ns: ResolveResult<'_>) -> Result<Option<String>, SamlError> {
    match ns {
        ResolveResult::Bound(ns) => Ok(Some(String::from_utf8_lossy(ns.into_inner()).into_owned())),
        ResolveResult::Unbound => Ok(None),
        ResolveResult::Unknown(prefix) => Err(malformed(format!(
            "undeclared namespace prefix {}",
            String::from_utf8_lossy(&prefix)
        ))),
    }
}

fn element_of(reader: &NsReader<&[u8]>, start: &BytesStart<'_>) -> Result<Element, SamlError> {
    let (ns, local) = reader.resolver().resolve_element(start.name());
    let mut element = Element {
        ns: resolved_ns(ns)?,
        local: String::from_utf8_lossy(local.into_inner()).into_owned(),
        ..Element::default()
    };
    for attr in start.attributes().with_checks(true) {
        let attr = attr.map_err(malformed)?;
        let key = attr.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (ns, local) = reader.resolver().resolve_attribute(key);
        let value = attr
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(malformed)?
            .into_owned();
        let ns = resolved_ns(ns)?;
        let local = String::from_utf8_lossy(local.into_inner()).into_owned();
        if element.attrs.iter().any(|a| a.ns == ns && a.local == local) {
            return Err(malformed(format!("attribute {local} appears twice")));
        }
        element.attrs.push(Attr { ns, local, value });
    }
    Ok(element)
}

/// Parses `xml` (already through [`refuse_dtd`]) into its root element, strictly:
/// one root, nothing but whitespace and comments around it, an XML declaration only
/// for version 1.0 in UTF-8, no processing instructions, only predefined entities.
pub fn parse_strict(xml: &str) -> Result<Element, SamlError> {
    refuse_dtd(xml)?;
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let mut reader = NsReader::from_reader(xml.as_bytes());
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.allow_unmatched_ends = false;
    config.expand_empty_elements = false;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut first_event = true;
    loop {
        let event = reader.read_event().map_err(malformed)?;
        let is_first = std::mem::replace(&mut first_event, false);
        match event {
            Event::Decl(decl) => {
                if !is_first {
                    return Err(malformed("XML declaration not at the start"));
                }
                let version = decl.version().map_err(malformed)?;
                if version.as_ref() != b"1.0" {
                    return Err(malformed("only XML 1.0 is accepted"));
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(malformed)?;
                    if !encoding.eq_ignore_ascii_case(b"utf-8") {
                        return Err(malformed("only UTF-8 documents are accepted"));
                    }
                }
            }
            Event::DocType(_) => return Err(SamlError::DtdForbidden),
            Event::PI(_) => return Err(malformed("processing instructions are not accepted")),
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(malformed("content after the root element"));
            }
            Event::Start(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(malformed("the document is too deep or too large"));
                }
                let element = element_of(&reader, &start)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                elements += 1;
                if elements > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                    return Err(malformed("the document is too deep or too large"));
                }
                let element = element_of(&reader, &start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(element)),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(malformed("unmatched end tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(done)),
                    None => root = Some(done),
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content().map_err(malformed)?;
                push_text(&mut stack, &content)?;
            }
            Event::CData(data) => {
                let content = data.xml10_content().map_err(malformed)?;
                push_text(&mut stack, &content)?;
            }
            Event::GeneralRef(reference) => {
                let ch = match reference.resolve_char_ref().map_err(malformed)? {
                    Some(ch) => ch,
                    None => {
                        let name = reference.decode().map_err(malformed)?;
                        match name.as_ref() {
                            "lt" => '<',
                            "gt" => '>',
                            "amp" => '&',
                            "apos" => '\'',
                            "quot" => '"',
                            _ => return Err(SamlError::DtdForbidden),
                        }
                    }
                };
                if !xml10_char(ch) {
                    return Err(malformed("character reference to a forbidden character"));
                }
                push_text(&mut stack, ch.encode_utf8(&mut [0u8; 4]))?;
            }
            Event::Comment(_) => {
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Node::Comment);
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed("unclosed element"));
    }
    root.ok_or_else(|| malformed("no root element"))
}

fn push_text(stack: &mut [Element], content: &str) -> Result<(), SamlError> {
    match stack.last_mut() {
        Some(parent) => {
            if let Some(Node::Text(previous)) = parent.children.last_mut() {
                previous.push_str(content);
            } else {
                parent.children.push(Node::Text(content.to_owned()));
            }
            Ok(())
        }
        None if content.chars().all(|c| c.is_ascii_whitespace()) => Ok(()),
        None => Err(malformed("text outside the root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctype_and_entities_are_refused_before_parsing() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><r>&lol2;</r>"#;
        assert_eq!(refuse_dtd(laughs), Err(SamlError::DtdForbidden));
        let xxe = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert_eq!(parse_strict(xxe).unwrap_err(), SamlError::DtdForbidden);
        assert_eq!(
            parse_strict("<r>&x;</r>").unwrap_err(),
            SamlError::DtdForbidden
        );
    }

    #[test]
    fn comments_do_not_cut_text_and_are_seen() {
        let root = parse_strict("<r><n>admin@corp.example<!-- x -->.evil.example</n></r>").unwrap();
        let n = root.elements().next().unwrap();
        assert_eq!(n.text(), "admin@corp.example.evil.example");
        assert!(n.has_comment());
    }

    #[test]
    fn foreign_encodings_pis_and_trailing_content_are_refused() {
        for bad in [
            r#"<?xml version="1.0" encoding="ISO-8859-1"?><r/>"#,
            r#"<?xml version="1.1"?><r/>"#,
            "<?pi x?><r/>",
            "<r/><r/>",
            "<r>\u{1}</r>",
            "<p:r/>",
            "<r a='1' a='2'/>",
        ] {
            assert!(
                matches!(parse_strict(bad), Err(SamlError::MalformedXml(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn base64_cap_is_checked_before_decoding() {
        assert_eq!(
            decode_base64_xml(&"A".repeat(MAX_BASE64_CHARS + 1)),
            Err(SamlError::TooLarge)
        );
        assert_eq!(
            decode_base64_xml("not base64!"),
            Err(SamlError::MalformedBase64)
        );
        assert_eq!(decode_base64_xml("PHIvPg==").unwrap(), "<r/>");
        assert_eq!(decode_base64_xml("PHIv\r\nPg==").unwrap(), "<r/>");
    }
}
