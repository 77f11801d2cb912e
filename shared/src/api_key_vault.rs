//! The one home of how a user's exchange key pair is kept at rest: the cells its two ciphertexts
//! are bound to (the AAD labels), sealing a pair for a new row, opening a stored pair, and moving a
//! pair onto the primary encryption key.
//!
//! Sealing and opening are separate capabilities, [`Sealer`] and [`Opener`], so a role is handed
//! only the one it needs: the admin API seals what it is given, the executor opens what it trades
//! with, and only a rewrap holds both. With a public key configured the sealer cannot open at all.

use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::public_key::{PrivateKeys, PublicKey};
use crate::crypto::{CellRef, CryptoError, Format, Keyring, blob_format, into_secret_string};

/// The table whose cells the AAD names; part of every ciphertext's binding, so never renamed.
pub const TABLE: &str = "api_keys";
/// The column holding the sealed API key.
pub const KEY_COLUMN: &str = "api_key_enc";
/// The column holding the sealed API secret.
pub const SECRET_COLUMN: &str = "api_secret_enc";

/// The row a key pair belongs to: both ciphertexts are bound to its id and its user, so a pair
/// copied into another row does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
}

impl KeyRow {
    fn cell(self, column: &'static str) -> CellRef<'static> {
        CellRef {
            table: TABLE,
            column,
            row_id: self.id,
            user_id: self.user_id,
        }
    }
}

/// A pair as sealed, ready to store (`api_key_enc`, `api_secret_enc`).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedPair {
    pub key_enc: Vec<u8>,
    pub secret_enc: Vec<u8>,
}

impl SealedPair {
    pub fn stored(&self) -> StoredPair<'_> {
        StoredPair {
            key_enc: &self.key_enc,
            secret_enc: &self.secret_enc,
        }
    }
}

impl fmt::Debug for SealedPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedPair").finish_non_exhaustive()
    }
}

/// A stored pair's two ciphertexts, borrowed from wherever the row was read into.
#[derive(Clone, Copy)]
pub struct StoredPair<'a> {
    pub key_enc: &'a [u8],
    pub secret_enc: &'a [u8],
}

/// An opened pair. Both halves are secrets: a full API key in a log is half a credential.
pub struct KeyPair {
    pub api_key: SecretString,
    pub api_secret: SecretString,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair").finish_non_exhaustive()
    }
}

/// What a [`Sealer`] seals with.
#[derive(Clone)]
enum SealWith {
    /// The keyring's primary key (which also opens: a deployment that has not moved to a public key).
    Keyring(Arc<Keyring>),
    /// A public key: the sealer cannot open what it sealed.
    PublicKey(Arc<PublicKey>),
}

/// Seals new key pairs, under the public key when one is configured (else the keyring's primary).
/// Cheap to clone.
#[derive(Clone)]
pub struct Sealer {
    with: SealWith,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("key_id", &self.key_id())
            .field("format", &self.format())
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Sealer {
    /// Seal under the keyring's primary key.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Sealer {
            with: SealWith::Keyring(keyring),
        }
    }

    /// Seal to a public key.
    pub fn public(key: PublicKey) -> Self {
        Sealer {
            with: SealWith::PublicKey(Arc::new(key)),
        }
    }

    /// The encryption key id new pairs are sealed under (stored as `enc_key_id`, and counted).
    pub fn key_id(&self) -> u32 {
        match &self.with {
            SealWith::Keyring(k) => k.primary_key_id(),
            SealWith::PublicKey(k) => k.key_id(),
        }
    }

    /// The format new blobs have.
    pub fn format(&self) -> Format {
        match &self.with {
            SealWith::Keyring(_) => Format::Keyring,
            SealWith::PublicKey(_) => Format::PublicKey,
        }
    }

    /// Whether this sealer holds a key that also opens (the keyring): ingest warns about it.
    pub fn can_open(&self) -> bool {
        matches!(self.with, SealWith::Keyring(_))
    }

    fn seal_one(&self, cell: CellRef<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.with {
            SealWith::Keyring(k) => k.seal(cell, plaintext),
            SealWith::PublicKey(k) => k.seal(cell, plaintext),
        }
    }

    /// Seal a pair for `row`, each half on its own (fresh nonce, or fresh ephemeral key).
    pub fn seal(&self, row: KeyRow, api_key: &str, api_secret: &str) -> Result<SealedPair, CryptoError> {
        Ok(SealedPair {
            key_enc: self.seal_one(row.cell(KEY_COLUMN), api_key.as_bytes())?,
            secret_enc: self.seal_one(row.cell(SECRET_COLUMN), api_secret.as_bytes())?,
        })
    }
}

/// Opens stored key pairs: format-2 blobs with the private keys, format-1 blobs with the keyring.
/// Cheap to clone.
#[derive(Clone)]
pub struct Opener {
    keyring: Option<Arc<Keyring>>,
    private: Option<Arc<PrivateKeys>>,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener").field("keys", &"[REDACTED]").finish()
    }
}

impl Opener {
    /// Open with the keyring alone.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Opener {
            keyring: Some(keyring),
            private: None,
        }
    }

    /// Open with the private keys and, for blobs sealed before them, the keyring.
    pub fn with_keys(private: Option<PrivateKeys>, keyring: Option<Arc<Keyring>>) -> Self {
        Opener {
            keyring,
            private: private.map(Arc::new),
        }
    }

    /// Whether a blob sealed to this public key id would open here.
    pub fn has_private_key(&self, key_id: u32) -> bool {
        self.private
            .as_ref()
            .is_some_and(|p| p.key_ids().any(|id| id == key_id))
    }

    fn open_one(&self, cell: CellRef<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match blob_format(blob)? {
            (Format::Keyring, id) => self
                .keyring
                .as_ref()
                .ok_or(CryptoError::UnknownKey(id))?
                .open(cell, blob),
            (Format::PublicKey, id) => self
                .private
                .as_ref()
                .ok_or(CryptoError::UnknownPrivateKey(id))?
                .open(cell, blob),
        }
    }

    /// Open the pair stored in `row`; a pair sealed for another row, or tampered with, does not.
    pub fn open(&self, row: KeyRow, stored: StoredPair<'_>) -> Result<KeyPair, CryptoError> {
        Ok(KeyPair {
            api_key: into_secret_string(self.open_one(row.cell(KEY_COLUMN), stored.key_enc)?)?,
            api_secret: into_secret_string(self.open_one(row.cell(SECRET_COLUMN), stored.secret_enc)?)?,
        })
    }
}

/// The table of users' notification settings, whose webhook secret is sealed.
pub const WEBHOOK_TABLE: &str = "notification_settings";
/// The column holding a user's sealed webhook signing secret.
pub const WEBHOOK_SECRET_COLUMN: &str = "webhook_secret_enc";

/// Every column of the schema that holds a sealed secret, as (table, column): what `humbex keys
/// rewrap` must move (crate::rewrap), and what a test checks the schema against, so a new sealed
/// column cannot be left on an old key unnoticed.
pub const SEALED_COLUMNS: [(&str, &str); 3] = [
    (TABLE, KEY_COLUMN),
    (TABLE, SECRET_COLUMN),
    (WEBHOOK_TABLE, WEBHOOK_SECRET_COLUMN),
];

/// The cell a user's notification webhook secret is sealed to (`notification_settings`,
/// sql/V7): bound to the user, so a blob copied to another user's row does not open. It is sealed
/// like an exchange key because HUMBEX must read it back to sign (a digest would not do): ingest
/// seals it when `webhook_url` is set, only the executor's sender opens it
/// (docs/notifications.md#the-webhook-secret).
fn webhook_secret_cell(user_id: Uuid) -> CellRef<'static> {
    CellRef {
        table: WEBHOOK_TABLE,
        column: WEBHOOK_SECRET_COLUMN,
        row_id: user_id,
        user_id,
    }
}

impl Sealer {
    /// Seal a user's notification webhook secret for their settings row.
    pub fn seal_webhook_secret(&self, user_id: Uuid, secret: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal_one(webhook_secret_cell(user_id), secret.as_bytes())
    }
}

impl Opener {
    /// Open a user's notification webhook secret.
    pub fn open_webhook_secret(&self, user_id: Uuid, blob: &[u8]) -> Result<SecretString, CryptoError> {
        into_secret_string(self.open_one(webhook_secret_cell(user_id), blob)?)
    }
}

/// Both capabilities over one keyring.
pub fn from_keyring(keyring: Keyring) -> (Sealer, Opener) {
    let keyring = Arc::new(keyring);
    (Sealer::new(keyring.clone()), Opener::new(keyring))
}

/// Re-seal a stored pair for the same row under the sealer's key. A half already under that key is
/// kept as it is, but still opened first, so a rewrap never vouches for a tampered blob; the
/// plaintext lives only in buffers zeroed when this returns.
pub fn rewrap(
    opener: &Opener,
    sealer: &Sealer,
    row: KeyRow,
    stored: StoredPair<'_>,
) -> Result<SealedPair, CryptoError> {
    Ok(SealedPair {
        key_enc: rewrap_cell(opener, sealer, row.cell(KEY_COLUMN), stored.key_enc)?,
        secret_enc: rewrap_cell(opener, sealer, row.cell(SECRET_COLUMN), stored.secret_enc)?,
    })
}

/// Re-seal a user's webhook secret under the sealer's key, by the same rule as a key pair.
pub fn rewrap_webhook_secret(
    opener: &Opener,
    sealer: &Sealer,
    user_id: Uuid,
    blob: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    rewrap_cell(opener, sealer, webhook_secret_cell(user_id), blob)
}

/// The one rule of every rewrap: open the blob in its own cell (so a tampered blob is never
/// vouched for), keep it when it is already under the sealer's key, else seal the plaintext again
/// for the same cell.
fn rewrap_cell(
    opener: &Opener,
    sealer: &Sealer,
    cell: CellRef<'_>,
    blob: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let plain = opener.open_one(cell, blob)?;
    if sealer.is_current(blob) {
        return Ok(blob.to_vec());
    }
    sealer.seal_one(cell, &plain)
}

impl Sealer {
    /// Whether `blob` is already sealed the way this sealer seals (format and key id).
    pub fn is_current(&self, blob: &[u8]) -> bool {
        blob_format(blob).is_ok_and(|f| f == (self.format(), self.key_id()))
    }
}

impl KeyPair {
    /// The API key in clear, for the places that must send it (signing, the paper exchange).
    pub fn api_key(&self) -> &str {
        self.api_key.expose_secret()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::crypto::blob_key_id;

    fn vault(ids: &[u32], primary: u32) -> (Sealer, Opener) {
        let keys: BTreeMap<u32, [u8; 32]> = ids.iter().map(|&id| (id, [id as u8; 32])).collect();
        from_keyring(Keyring::new(keys, primary).unwrap())
    }

    fn row() -> KeyRow {
        KeyRow {
            id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
        }
    }

    #[test]
    fn a_pair_opens_in_its_own_row_only_and_halves_do_not_swap() {
        let (sealer, opener) = vault(&[1], 1);
        let r = row();
        let sealed = sealer.seal(r, "KEY", "SECRET").unwrap();
        let pair = opener.open(r, sealed.stored()).unwrap();
        assert_eq!(
            (pair.api_key(), pair.api_secret.expose_secret()),
            ("KEY", "SECRET")
        );
        assert!(opener.open(row(), sealed.stored()).is_err());
        let other_user = KeyRow {
            user_id: Uuid::new_v4(),
            ..r
        };
        assert!(opener.open(other_user, sealed.stored()).is_err());
        let swapped = StoredPair {
            key_enc: &sealed.secret_enc,
            secret_enc: &sealed.key_enc,
        };
        assert!(matches!(opener.open(r, swapped), Err(CryptoError::Unauthentic)));
        assert!(!format!("{pair:?}{sealed:?}").contains("SECRET"));
    }

    #[test]
    fn rewrap_moves_to_the_primary_and_keeps_the_row_binding() {
        let r = row();
        let (old_sealer, _) = vault(&[1], 1);
        let sealed = old_sealer.seal(r, "KEY", "s3cret").unwrap();
        let (sealer, opener) = vault(&[1, 2], 2);
        let moved = rewrap(&opener, &sealer, r, sealed.stored()).unwrap();
        assert_eq!(blob_key_id(&moved.key_enc).unwrap(), 2);
        assert_eq!(blob_key_id(&moved.secret_enc).unwrap(), 2);
        let (_, only_new) = vault(&[2], 2);
        let pair = only_new.open(r, moved.stored()).unwrap();
        assert_eq!(pair.api_secret.expose_secret(), "s3cret");
        // Already on the primary: unchanged; another row: refused.
        assert_eq!(rewrap(&opener, &sealer, r, moved.stored()).unwrap(), moved);
        assert!(rewrap(&opener, &sealer, row(), sealed.stored()).is_err());
        let message = rewrap(&only_new, &sealer, r, sealed.stored())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("key id 1") && message.contains("ENCRYPTION_KEYS"),
            "{message}"
        );
    }

    #[test]
    fn a_public_key_sealer_cannot_open_and_rewrap_moves_keyring_pairs_to_it() {
        let r = row();
        let (old_sealer, old_opener) = vault(&[1], 1);
        let sealed = old_sealer.seal(r, "KEY", "s3cret").unwrap();
        let (private_hex, public) = crate::crypto::public_key::generate();
        let private = PrivateKeys::from_hex_list(&private_hex).unwrap();
        let sealer = Sealer::public(public.clone());
        assert!(!sealer.can_open() && old_sealer.can_open());
        let keyring = old_opener.keyring.clone();
        let opener = Opener::with_keys(Some(private.clone()), keyring);
        let moved = rewrap(&opener, &sealer, r, sealed.stored()).unwrap();
        assert_eq!(
            blob_format(&moved.key_enc).unwrap(),
            (Format::PublicKey, public.key_id())
        );
        assert_eq!(
            blob_format(&moved.secret_enc).unwrap(),
            (Format::PublicKey, public.key_id())
        );
        let only_private = Opener::with_keys(Some(private), None);
        let pair = only_private.open(r, moved.stored()).unwrap();
        assert_eq!(pair.api_secret.expose_secret(), "s3cret");
        // Without the keyring an old pair names the key it needs.
        assert!(matches!(
            only_private.open(r, sealed.stored()),
            Err(CryptoError::UnknownKey(1))
        ));
        // Sealed to the public key, a pair still opens in its own row only.
        let fresh = sealer.seal(r, "K2", "S2").unwrap();
        assert!(only_private.open(row(), fresh.stored()).is_err());
        assert_eq!(rewrap(&opener, &sealer, r, moved.stored()).unwrap(), moved);
    }
}
