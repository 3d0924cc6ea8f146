//! The code a person types to approve a device login (RFC 8628 §6.1): eight letters
//! in two groups of four, parsed once where it arrives.

use std::fmt;
use std::str::FromStr;

use rand::Rng;

/// Consonants only, so no words and no 0/O or 1/I confusion.
const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const LETTERS: usize = 8;
/// The longest input looked at: codes are typed, never pasted essays.
const INPUT_LIMIT: usize = 64;

/// A user code in its canonical `XXXX-XXXX` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

/// The input cannot be a user code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a user code: codes are eight letters like BCDF-GHJK")]
pub struct InvalidUserCode;

impl UserCode {
    pub fn generate(rng: &mut impl Rng) -> Self {
        let letters: Vec<char> = (0..LETTERS)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        Self::from_letters(&letters)
    }

    fn from_letters(letters: &[char]) -> Self {
        let (first, second) = letters.split_at(LETTERS / 2);
        let mut code: String = first.iter().collect();
        code.push('-');
        code.extend(second);
        Self(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What people type: any case, spaces, with or without the dash.
impl FromStr for UserCode {
    type Err = InvalidUserCode;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.len() > INPUT_LIMIT {
            return Err(InvalidUserCode);
        }
        let letters: Vec<char> = input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let valid = letters.len() == LETTERS
            && letters
                .iter()
                .all(|c| c.is_ascii() && ALPHABET.contains(&(*c as u8)));
        if !valid {
            return Err(InvalidUserCode);
        }
        Ok(Self::from_letters(&letters))
    }
}

impl fmt::Display for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Option<String> {
        input.parse::<UserCode>().ok().map(|code| code.to_string())
    }

    #[test]
    fn user_codes_use_the_rfc_8628_alphabet_and_normalise() {
        let mut rng = crate::clock::Random::system().rng();
        for _ in 0..100 {
            let code = UserCode::generate(&mut rng).to_string();
            assert_eq!(code.len(), 9);
            assert_eq!(parse(&code).as_deref(), Some(code.as_str()));
        }
        assert_eq!(parse(" bcdf ghjk ").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(parse("bcdfghjk").as_deref(), Some("BCDF-GHJK"));
        assert_eq!(parse("BCDF-GHJ"), None);
        assert_eq!(parse("ABCD-EFGH"), None, "vowels never occur");
        assert_eq!(parse("BCDF-GHJK-L"), None);
        assert_eq!(parse("ＢCDF-GHJK"), None);
    }
}
