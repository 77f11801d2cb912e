//! The secrets: the webhook secret (and the previous one during a rotation), the admin token, and
//! the encryption keys, each role reading only those it uses (ingest seals, the executor opens).
//! `Debug` never prints one.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretSlice, SecretString};

use super::bybit::BybitEnv;
use super::parse::{ConfigError, Get, bad};
use crate::api_key_vault::{Opener, Sealer};
use crate::crypto::Keyring;
use crate::crypto::public_key::{PrivateKeys, PublicKey};

/// The secrets that paper mode may generate when they are missing (the private key before the
/// public key, which is derived from it).
pub const GENERATED_SECRETS: [&str; 4] = [
    "TRADINGVIEW_SECRET",
    "ENCRYPTION_PRIVATE_KEY",
    "ENCRYPTION_PUBLIC_KEY",
    "ADMIN_TOKEN",
];

/// The previous webhook secret during a rotation, and until when it is accepted (None: until it is
/// removed from the configuration).
pub type PreviousSecret = (WebhookSecret, Option<chrono::DateTime<chrono::Utc>>);

/// The shared secret behind X-Signature and the Standard Webhooks signature.
#[derive(Clone)]
pub struct WebhookSecret {
    raw: SecretString,
    standard_webhooks_key: SecretSlice<u8>,
}

impl WebhookSecret {
    /// X-Signature keys with the secret's bytes as given; Standard Webhooks uses the
    /// base64-decoded remainder of a `whsec_` secret, or else the bytes as given.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.len() < 16 {
            return Err(format!(
                "is {} characters; use at least 16 (openssl rand -hex 32)",
                text.len()
            ));
        }
        let sw_key = match text.strip_prefix("whsec_") {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| "starts with whsec_ but the rest is not base64".to_string())?,
            None => text.as_bytes().to_vec(),
        };
        if sw_key.is_empty() {
            return Err("whsec_ secret decodes to nothing".into());
        }
        Ok(WebhookSecret {
            raw: SecretString::from(text.to_owned()),
            standard_webhooks_key: SecretSlice::from(sw_key),
        })
    }

    /// Key bytes for X-Signature.
    pub fn x_signature_key(&self) -> &[u8] {
        self.raw.expose_secret().as_bytes()
    }

    /// Key bytes for `webhook-signature`.
    pub fn standard_webhooks_key(&self) -> &[u8] {
        self.standard_webhooks_key.expose_secret()
    }

    pub fn expose_secret(&self) -> &str {
        self.raw.expose_secret()
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([REDACTED])")
    }
}

/// What ingest alone uses: the webhook secrets and the admin token.
#[derive(Debug, Clone)]
pub struct IngestSecrets {
    pub tradingview_secret: WebhookSecret,
    /// During a rotation: the previous secret, still accepted until the given time (or until it is
    /// removed from the configuration, when no time is given).
    pub previous_tradingview_secret: Option<PreviousSecret>,
    pub admin_token: SecretString,
}

/// The secrets of the roles this configuration was read for; a part no role asked for is absent
/// (never read), so a process holds only what it uses.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    /// ingest (and `up`).
    pub ingest: Option<IngestSecrets>,
    /// ingest and `keys rewrap`: seals new key pairs (to ENCRYPTION_PUBLIC_KEY when set).
    pub sealer: Option<Sealer>,
    /// The executor and `keys rewrap`: opens stored key pairs.
    pub opener: Option<Opener>,
    /// Hard cap on encryptions per encryption key id (ENCRYPTION_MAX_PER_KEY).
    pub encryption_max_per_key: u64,
}

fn not_read(part: &str) -> ConfigError {
    bad(
        "(configuration)",
        format!("the {part} secrets were not read for this role"),
    )
}

impl SecretsConfig {
    pub fn ingest(&self) -> Result<&IngestSecrets, ConfigError> {
        self.ingest.as_ref().ok_or_else(|| not_read("ingest"))
    }
    pub fn sealer(&self) -> Result<&Sealer, ConfigError> {
        self.sealer.as_ref().ok_or_else(|| not_read("sealing"))
    }
    pub fn opener(&self) -> Result<&Opener, ConfigError> {
        self.opener.as_ref().ok_or_else(|| not_read("opening"))
    }
}

/// The keyring (ENCRYPTION_KEY_HEX / ENCRYPTION_KEYS), when one is configured.
pub(crate) fn optional_keyring(get: Get, env: BybitEnv) -> Result<Option<Arc<Keyring>>, ConfigError> {
    if get("ENCRYPTION_KEY_HEX").is_none() && get("ENCRYPTION_KEYS").is_none() {
        return Ok(None);
    }
    keyring(get, env).map(|k| Some(Arc::new(k)))
}

/// Ingest's sealer: to ENCRYPTION_PUBLIC_KEY, else (a deployment not moved yet) the keyring's
/// primary key, which also opens.
pub(crate) fn sealer(
    get: Get,
    env: BybitEnv,
    keyring: &dyn Fn() -> Result<Option<Arc<Keyring>>, ConfigError>,
) -> Result<Sealer, ConfigError> {
    if let Some(text) = get("ENCRYPTION_PUBLIC_KEY") {
        let key = PublicKey::from_hex(&text).map_err(|e| bad("ENCRYPTION_PUBLIC_KEY", e.to_string()))?;
        return Ok(Sealer::public(key));
    }
    match keyring()? {
        Some(keyring) => Ok(Sealer::new(keyring)),
        None => Err(required(get, env, "ENCRYPTION_PUBLIC_KEY").unwrap_err()),
    }
}

/// The executor's opener: ENCRYPTION_PRIVATE_KEY for what is sealed to a public key, and the
/// keyring, when configured, for what was sealed before.
pub(crate) fn opener(get: Get, env: BybitEnv, keyring: Option<Arc<Keyring>>) -> Result<Opener, ConfigError> {
    let private = match get("ENCRYPTION_PRIVATE_KEY") {
        Some(list) => Some(
            PrivateKeys::from_hex_list(&list).map_err(|e| bad("ENCRYPTION_PRIVATE_KEY", e.to_string()))?,
        ),
        None => None,
    };
    if private.is_none() && keyring.is_none() {
        return Err(required(get, env, "ENCRYPTION_PRIVATE_KEY").unwrap_err());
    }
    Ok(Opener::with_keys(private, keyring))
}

/// In a process that both seals and opens (`up`, `keys rewrap`), what it seals must open.
pub(crate) fn check_pair(sealer: &Sealer, opener: &Opener) -> Result<(), ConfigError> {
    if !sealer.can_open() && !opener.has_private_key(sealer.key_id()) {
        return Err(bad(
            "ENCRYPTION_PUBLIC_KEY",
            "belongs to none of the keys of ENCRYPTION_PRIVATE_KEY (`humbex keys generate` prints a \
             matching pair)",
        ));
    }
    Ok(())
}

/// A required secret's absence, with the hint that fits the environment.
pub(crate) fn required(get: Get, env: BybitEnv, name: &'static str) -> Result<String, ConfigError> {
    get(name).ok_or_else(|| {
        let hint = if env == BybitEnv::Paper {
            "is not set (`humbex up` generates one in paper mode; other commands read it from the \
             environment or ./.humbex/secrets.env)"
                .to_owned()
        } else {
            format!("is not set; it is required when BYBIT_ENV={}", env.as_str())
        };
        bad(name, hint)
    })
}

/// TRADINGVIEW_SECRET_PREVIOUS and its end, TRADINGVIEW_SECRET_PREVIOUS_UNTIL.
pub(crate) fn previous_tradingview_secret(get: Get) -> Result<Option<PreviousSecret>, ConfigError> {
    let Some(text) = get("TRADINGVIEW_SECRET_PREVIOUS") else {
        return Ok(None);
    };
    let secret = WebhookSecret::parse(&text).map_err(|p| bad("TRADINGVIEW_SECRET_PREVIOUS", p))?;
    let until = match get("TRADINGVIEW_SECRET_PREVIOUS_UNTIL") {
        None => None,
        Some(at) => Some(
            chrono::DateTime::parse_from_rfc3339(at.trim())
                .map_err(|_| {
                    bad(
                        "TRADINGVIEW_SECRET_PREVIOUS_UNTIL",
                        format!("{at:?} is not an RFC 3339 time such as 2027-01-31T00:00:00Z"),
                    )
                })?
                .with_timezone(&chrono::Utc),
        ),
    };
    Ok(Some((secret, until)))
}

/// ENCRYPTION_KEY_HEX and/or ENCRYPTION_KEYS, with ENCRYPTION_PRIMARY_KEY_ID.
pub(crate) fn keyring(get: Get, env: BybitEnv) -> Result<Keyring, ConfigError> {
    let single = get("ENCRYPTION_KEY_HEX");
    let list = get("ENCRYPTION_KEYS");
    if single.is_none() && list.is_none() {
        return Err(required(get, env, "ENCRYPTION_KEY_HEX").unwrap_err());
    }
    let primary = match get("ENCRYPTION_PRIMARY_KEY_ID") {
        Some(p) => Some(p.trim().parse::<u32>().map_err(|_| {
            bad(
                "ENCRYPTION_PRIMARY_KEY_ID",
                format!("{p:?} is not a positive integer"),
            )
        })?),
        None => None,
    };
    // The single key is checked on its own first, so its errors name its own variable.
    if let Some(single) = &single {
        crate::crypto::parse_key_hex(single.trim()).map_err(|e| bad("ENCRYPTION_KEY_HEX", e.to_string()))?;
    }
    Keyring::from_config(single.as_deref().map(str::trim), list.as_deref(), primary).map_err(|e| match e {
        crate::crypto::KeyringError::MissingPrimary(_) => bad("ENCRYPTION_PRIMARY_KEY_ID", e.to_string()),
        _ => bad("ENCRYPTION_KEYS", e.to_string()),
    })
}

pub(crate) fn encryption_max_per_key(get: Get) -> Result<u64, ConfigError> {
    match get("ENCRYPTION_MAX_PER_KEY") {
        None => Ok(crate::key_usage::DEFAULT_MAX_PER_KEY),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=crate::key_usage::MAX_CAP).contains(n))
            .ok_or_else(|| {
                bad(
                    "ENCRYPTION_MAX_PER_KEY",
                    format!("{v:?} is not a whole number between 1 and 4294967296 (2^32)"),
                )
            }),
    }
}

pub(crate) fn admin_token(get: Get, env: BybitEnv) -> Result<SecretString, ConfigError> {
    let admin_token = required(get, env, "ADMIN_TOKEN")?;
    if admin_token.len() < 16 {
        return Err(bad("ADMIN_TOKEN", "must be at least 16 characters"));
    }
    Ok(SecretString::from(admin_token))
}
