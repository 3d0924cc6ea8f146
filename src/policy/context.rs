//! The request context: condition keys and their values.

/// Request context keys (case-insensitive names) mapped to one or more string
/// values, e.g. `aws:username`, `aws:PrincipalTag/team`, `aws:SourceIp`,
/// `aws:CurrentTime`, `saml:sub`. Policy variables and conditions read from
/// here; the caller supplies every value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextKeys {
    /// (lower-cased key, values) in insertion order.
    entries: Vec<(Box<str>, Vec<String>)>,
}

fn normalize(key: &str) -> Box<str> {
    if key.is_ascii() {
        key.to_ascii_lowercase().into_boxed_str()
    } else {
        key.to_lowercase().into_boxed_str()
    }
}

impl ContextKeys {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Option<usize> {
        if key.is_ascii() {
            self.entries
                .iter()
                .position(|(k, _)| k.eq_ignore_ascii_case(key))
        } else {
            let lower = key.to_lowercase();
            self.entries.iter().position(|(k, _)| **k == *lower)
        }
    }

    /// Appends `value` to the values of `key` (creating the key if needed).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        let value = value.into();
        match self.position(key) {
            Some(i) => self.entries[i].1.push(value),
            None => self.entries.push((normalize(key), vec![value])),
        }
        self
    }

    /// Builder form of [`insert`](Self::insert).
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Replaces all values of `key`. An empty list makes the key present with
    /// no values (which `Null` treats as missing and `ForAllValues` as an
    /// empty set).
    pub fn set<I, S>(&mut self, key: &str, values: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        match self.position(key) {
            Some(i) => self.entries[i].1 = values,
            None => self.entries.push((normalize(key), values)),
        }
        self
    }

    /// Removes `key`; returns its values if it was present.
    pub fn remove(&mut self, key: &str) -> Option<Vec<String>> {
        let i = self.position(key)?;
        Some(self.entries.remove(i).1)
    }

    /// The values of `key` (case-insensitive), if present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.position(key).map(|i| self.entries[i].1.as_slice())
    }

    /// Lookup with a key already lower-cased (used on the hot path).
    #[inline]
    pub(crate) fn get_lowercase(&self, lower_key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(k, _)| super::matcher::bytes_eq(k.as_bytes(), lower_key.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Iterates over (lower-cased key, values).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(k, v)| (&**k, v.as_slice()))
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for ContextKeys {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut ctx = ContextKeys::new();
        for (k, v) in iter {
            ctx.insert(k.as_ref(), v);
        }
        ctx
    }
}
