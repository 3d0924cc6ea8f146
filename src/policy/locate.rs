//! Where a JSON pointer falls in a document's text: the line and column an editor
//! marks for an error. serde_json keeps no positions, so this scans the text itself
//! (only documents that already parsed as JSON are scanned).

/// One reference token of a JSON pointer, escaped (RFC 6901: `~` as `~0`, `/` as `~1`).
pub(crate) fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The line and column (1-based; columns count characters) where the element
/// `pointer` names starts in `text`: an object member's key, an array item's value,
/// the document itself for `""`. `None` when the text does not hold it.
pub(crate) fn position_of(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let tokens: Vec<String> = if pointer.is_empty() {
        Vec::new()
    } else {
        pointer
            .strip_prefix('/')?
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let mut scan = Scan {
        text: text.as_bytes(),
        at: 0,
    };
    let offset = scan.find(&tokens)?;
    Some(line_and_column(text, offset))
}

/// The character column of serde_json's byte column on `line` (both 1-based; serde
/// says column 0 at the very start of a line).
pub(crate) fn char_column(text: &str, line: usize, byte_column: usize) -> usize {
    text.split('\n')
        .nth(line.saturating_sub(1))
        .and_then(|l| l.get(..byte_column.saturating_sub(1)))
        .map_or(byte_column, |prefix| prefix.chars().count() + 1)
}

/// 1-based line and character column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

struct Scan<'a> {
    text: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.whitespace();
        (self.peek() == Some(byte)).then(|| self.at += 1)
    }

    /// A string at the cursor, decoded.
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        if self.peek() != Some(b'"') {
            return None;
        }
        self.at += 1;
        loop {
            match self.peek()? {
                b'\\' => self.at += 2,
                b'"' => {
                    self.at += 1;
                    break;
                }
                _ => self.at += 1,
            }
        }
        let raw = std::str::from_utf8(self.text.get(start..self.at)?).ok()?;
        serde_json::from_str(raw).ok()
    }

    /// Moves past the value at the cursor.
    fn skip_value(&mut self) -> Option<()> {
        self.whitespace();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.at += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                ) {
                    self.at += 1;
                }
                Some(())
            }
        }
    }

    /// The byte offset of the element `rest` names inside the value at the cursor.
    fn find(&mut self, rest: &[String]) -> Option<usize> {
        self.whitespace();
        let Some((first, deeper)) = rest.split_first() else {
            return Some(self.at);
        };
        match self.peek()? {
            b'{' => {
                self.at += 1;
                loop {
                    self.whitespace();
                    let key_at = self.at;
                    let key = self.string()?;
                    self.expect(b':')?;
                    if key == *first {
                        return if deeper.is_empty() {
                            Some(key_at)
                        } else {
                            self.find(deeper)
                        };
                    }
                    self.skip_value()?;
                    self.expect(b',')?;
                }
            }
            b'[' => {
                let index: usize = first.parse().ok()?;
                self.at += 1;
                for _ in 0..index {
                    self.skip_value()?;
                    self.expect(b',')?;
                }
                self.find(deeper)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": [\"s3:Get*\", \"nope\"],\n     \"Resource\": \"*\", \"Condition\": {\"StringEquals\": {\"a/b\": \"x\"}}}\n  ]\n}";

    #[test]
    fn pointers_are_found_at_their_key_or_item() {
        assert_eq!(position_of(DOC, ""), Some((1, 1)));
        assert_eq!(position_of(DOC, "/Version"), Some((2, 3)));
        assert_eq!(position_of(DOC, "/Statement/0"), Some((4, 5)));
        assert_eq!(position_of(DOC, "/Statement/0/Action/1"), Some((4, 47)));
        assert_eq!(position_of(DOC, "/Statement/0/Resource"), Some((5, 6)));
        assert_eq!(
            position_of(DOC, "/Statement/0/Condition/StringEquals/a~1b"),
            Some((5, 54))
        );
        assert_eq!(position_of(DOC, "/Statement/1"), None);
        assert_eq!(position_of(DOC, "/Nope"), None);
        assert_eq!(token("a/b~c"), "a~1b~0c");
        // Columns count characters: "é" is two bytes.
        assert_eq!(char_column("{\n \"é\": 1,}", 2, 10), 9);
        assert_eq!(char_column("", 1, 0), 1);
    }
}
