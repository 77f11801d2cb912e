//! Webhook tokens: `<prefix>_<27 base62 random chars><6 base62 CRC32 chars>`.
//!
//! 27 base62 characters carry 160 random bits. The prefix says what kind of token leaked, and the
//! checksum lets ingest refuse a mistyped or invented token without touching the database. Only the
//! SHA-256 digest and a short display prefix are ever stored.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 27;
const CHECK_LEN: usize = 6;
/// Characters of a token kept for display: the prefix plus four random characters.
const DISPLAY_RANDOM_CHARS: usize = 4;

/// Whose token it is, read from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A user's own webhook token: the signal targets that user alone.
    User,
    /// A strategy's token: the signal fans out to its active subscribers.
    Strategy,
    /// An operator's admin token (generated in paper mode when none is set).
    Admin,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::User => "hbxu_",
            TokenKind::Strategy => "hbxs_",
            TokenKind::Admin => "hbxa_",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token has an unknown prefix")]
    Prefix,
    #[error("token has the wrong length or characters")]
    Shape,
    #[error("token checksum does not match (mistyped or invented)")]
    Checksum,
}

/// A full webhook token. Debug never shows it; the text is reachable only via `expose_secret`.
#[derive(Clone)]
pub struct WebhookToken {
    kind: TokenKind,
    text: SecretString,
}

impl fmt::Debug for WebhookToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookToken({}…[REDACTED])", self.kind.prefix())
    }
}

impl WebhookToken {
    /// A fresh token from the system CSPRNG.
    pub fn generate(kind: TokenKind) -> Self {
        let rng = SystemRandom::new();
        let mut random = String::with_capacity(RANDOM_LEN);
        let mut buf = [0u8; 64];
        while random.len() < RANDOM_LEN {
            rng.fill(&mut buf).expect("system random generator");
            // 248 = 4 × 62: rejecting bytes at or above it keeps every character equally likely.
            for &b in buf.iter().filter(|&&b| b < 248) {
                if random.len() == RANDOM_LEN {
                    break;
                }
                random.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
        let text = format!("{}{random}{}", kind.prefix(), checksum(kind.prefix(), &random));
        WebhookToken {
            kind,
            text: SecretString::from(text),
        }
    }

    /// Check prefix, shape and checksum; no database needed.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let kind = [TokenKind::User, TokenKind::Strategy, TokenKind::Admin]
            .into_iter()
            .find(|k| text.starts_with(k.prefix()))
            .ok_or(TokenError::Prefix)?;
        let body = &text[kind.prefix().len()..];
        if body.len() != RANDOM_LEN + CHECK_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenError::Shape);
        }
        let (random, check) = body.split_at(RANDOM_LEN);
        // The checksum is not secret (it is computed from the token itself), so a plain comparison
        // leaks nothing an attacker could not compute.
        if checksum(kind.prefix(), random) != check {
            return Err(TokenError::Checksum);
        }
        Ok(WebhookToken {
            kind,
            text: SecretString::from(text.to_owned()),
        })
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// SHA-256 of the whole token: what the database stores and looks up by.
    pub fn digest(&self) -> [u8; 32] {
        digest(self.text.expose_secret())
    }

    /// Shown in lists so an operator can tell tokens apart; too short to be useful to anyone else.
    pub fn display_prefix(&self) -> String {
        self.text.expose_secret()[..self.kind.prefix().len() + DISPLAY_RANDOM_CHARS].to_owned()
    }

    pub fn expose_secret(&self) -> &str {
        self.text.expose_secret()
    }
}

/// SHA-256 of a token's text.
/// `N` bytes from the system's CSPRNG (the console's session ids and CSRF tokens).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("system random generator");
    buf
}

pub fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn checksum(prefix: &str, random: &str) -> String {
    let mut value = crc32(prefix.as_bytes().iter().chain(random.as_bytes()));
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

/// CRC-32 (IEEE 802.3, reflected), bit by bit: a dozen bytes per token does not need a table.
fn crc32<'a>(bytes: impl Iterator<Item = &'a u8>) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789".iter()), 0xCBF4_3926);
    }

    #[test]
    fn generated_tokens_parse_and_are_distinct() {
        let a = WebhookToken::generate(TokenKind::User);
        let b = WebhookToken::generate(TokenKind::User);
        assert_ne!(a.expose_secret(), b.expose_secret());
        let parsed = WebhookToken::parse(a.expose_secret()).unwrap();
        assert_eq!(parsed.kind(), TokenKind::User);
        assert_eq!(parsed.digest(), a.digest());
        assert_eq!(a.expose_secret().len(), 5 + RANDOM_LEN + CHECK_LEN);
        assert!(a.display_prefix().starts_with("hbxu_") && a.display_prefix().len() == 9);
        let s = WebhookToken::generate(TokenKind::Strategy);
        assert_eq!(
            WebhookToken::parse(s.expose_secret()).unwrap().kind(),
            TokenKind::Strategy
        );
    }

    #[test]
    fn every_single_character_change_is_refused() {
        let token = WebhookToken::generate(TokenKind::User);
        let text = token.expose_secret().as_bytes().to_vec();
        for i in 0..text.len() {
            for &c in ALPHABET.iter().chain(b"_-.") {
                if c == text[i] {
                    continue;
                }
                let mut changed = text.clone();
                changed[i] = c;
                let changed = String::from_utf8(changed).unwrap();
                let result = WebhookToken::parse(&changed);
                // A prefix change to another kind's prefix is still refused by the checksum,
                // because the checksum covers the prefix.
                assert!(result.is_err(), "{changed} accepted");
            }
        }
    }

    #[test]
    fn debug_is_redacted() {
        let token = WebhookToken::generate(TokenKind::Strategy);
        let debug = format!("{token:?}");
        assert!(!debug.contains(&token.expose_secret()[5..]));
        assert!(debug.contains("REDACTED"));
    }

    #[test]
    fn junk_is_refused_by_shape() {
        assert_eq!(WebhookToken::parse("user_token").unwrap_err(), TokenError::Prefix);
        assert_eq!(WebhookToken::parse("hbxu_short").unwrap_err(), TokenError::Shape);
        let long = format!("hbxu_{}", "é".repeat(33));
        assert!(WebhookToken::parse(&long).is_err());
    }
}
