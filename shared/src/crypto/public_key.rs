//! Sealing to a public key (HPKE, RFC 9180: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20Poly1305, base mode), so the process that seals (ingest, facing the internet) never holds
//! what opens.
//!
//! Blob layout: `0x02 ‖ key id (u32 BE) ‖ encapsulated key (32) ‖ ciphertext ‖ tag (16)`. Every seal
//! draws a fresh ephemeral key, so there is no nonce to reuse. The key id is derived from the public
//! key (so ingest and executor cannot disagree about it) and always lies in 2^30..2^31, apart from
//! the ids of the AES keyring. The AAD is the keyring's, naming the cell and the key id.

use std::collections::BTreeMap;
use std::fmt;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{CellRef, CryptoError, KeyringError, aad};

type Kem = X25519HkdfSha256;
type KemPublic = <Kem as hpke::Kem>::PublicKey;
type KemPrivate = <Kem as hpke::Kem>::PrivateKey;
type Encapped = <Kem as hpke::Kem>::EncappedKey;

pub(super) const FORMAT_V2: u8 = 0x02;
const ENC_LEN: usize = 32;
const TAG_LEN: usize = 16;
pub(super) const HEADER_LEN: usize = 1 + 4 + ENC_LEN;
/// The smallest well-formed blob (an empty plaintext).
pub(super) const MIN_LEN: usize = HEADER_LEN + TAG_LEN;
const INFO: &[u8] = b"humbex api_keys hpke v2";

/// The id of a public key: 31 bits of its hash, with bit 30 set.
fn key_id(public: &KemPublic) -> u32 {
    let digest = Sha256::new()
        .chain_update(b"humbex-hpke-key-id")
        .chain_update(public.to_bytes())
        .finalize();
    let raw = u32::from_be_bytes(digest[..4].try_into().expect("4 bytes"));
    (raw & 0x3FFF_FFFF) | 0x4000_0000
}

/// Seals new values; holds nothing that opens them.
#[derive(Clone)]
pub struct PublicKey {
    id: u32,
    key: KemPublic,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey").field("key_id", &self.id).finish()
    }
}

impl PublicKey {
    /// From 64 hex characters (ENCRYPTION_PUBLIC_KEY).
    pub fn from_hex(text: &str) -> Result<Self, KeyringError> {
        let bytes = super::parse_key_hex(text.trim())?;
        let key = KemPublic::from_bytes(&bytes[..]).map_err(|_| KeyringError::NotAKey)?;
        Ok(PublicKey {
            id: key_id(&key),
            key,
        })
    }

    pub fn key_id(&self) -> u32 {
        self.id
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.key.to_bytes())
    }

    /// Seal `plaintext` for `cell` under a fresh ephemeral key.
    pub fn seal(&self, cell: CellRef<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (encapped, sealed) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &self.key,
            INFO,
            plaintext,
            &aad(cell, self.id),
        )
        .map_err(|_| CryptoError::Random)?;
        let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
        blob.push(FORMAT_V2);
        blob.extend_from_slice(&self.id.to_be_bytes());
        blob.extend_from_slice(&encapped.to_bytes());
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }
}

/// The private keys that open (ENCRYPTION_PRIVATE_KEY), by key id. Held by the executor alone.
#[derive(Clone)]
pub struct PrivateKeys {
    keys: BTreeMap<u32, KemPrivate>,
}

impl fmt::Debug for PrivateKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKeys")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("keys", &"[REDACTED]")
            .finish()
    }
}

impl PrivateKeys {
    /// From a comma-separated list of 64-hex-character private keys (the newest first, by
    /// convention; every one opens).
    pub fn from_hex_list(list: &str) -> Result<Self, KeyringError> {
        let mut keys = BTreeMap::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let bytes = Zeroizing::new(super::parse_key_hex(entry)?);
            let private = KemPrivate::from_bytes(&bytes[..]).map_err(|_| KeyringError::NotAKey)?;
            keys.insert(key_id(&Kem::sk_to_pk(&private)), private);
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(PrivateKeys { keys })
    }

    pub fn key_ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.keys().copied()
    }

    /// Open a version-2 blob sealed for exactly this `cell`.
    pub fn open(&self, cell: CellRef<'_>, blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < MIN_LEN || blob[0] != FORMAT_V2 {
            return Err(CryptoError::Malformed);
        }
        let key_id = u32::from_be_bytes(blob[1..5].try_into().expect("4 bytes"));
        let private = self
            .keys
            .get(&key_id)
            .ok_or(CryptoError::UnknownPrivateKey(key_id))?;
        let encapped = Encapped::from_bytes(&blob[5..HEADER_LEN]).map_err(|_| CryptoError::Unauthentic)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            private,
            &encapped,
            INFO,
            &blob[HEADER_LEN..],
            &aad(cell, key_id),
        )
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Unauthentic)
    }
}

/// A fresh key pair: (private key hex, public key), for `humbex keys generate` and paper mode.
pub fn generate() -> (Zeroizing<String>, PublicKey) {
    let (private, public) = Kem::gen_keypair();
    let private_hex = Zeroizing::new(hex::encode(
        Zeroizing::new(private.to_bytes().to_vec()).as_slice(),
    ));
    (
        private_hex,
        PublicKey {
            id: key_id(&public),
            key: public,
        },
    )
}

/// The public key that belongs to a private key given in hex (paper mode derives one from the other).
pub fn public_of(private_hex: &str) -> Result<PublicKey, KeyringError> {
    let bytes = Zeroizing::new(super::parse_key_hex(private_hex.trim())?);
    let private = KemPrivate::from_bytes(&bytes[..]).map_err(|_| KeyringError::NotAKey)?;
    let key = Kem::sk_to_pk(&private);
    Ok(PublicKey {
        id: key_id(&key),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::cell;
    use uuid::Uuid;

    #[test]
    fn seals_to_the_public_key_and_opens_with_the_private_one_in_its_own_cell_only() {
        let (private_hex, public) = generate();
        let private = PrivateKeys::from_hex_list(&private_hex).unwrap();
        assert_eq!(private.key_ids().collect::<Vec<_>>(), vec![public.key_id()]);
        assert!((1 << 30..1 << 31).contains(&public.key_id()));
        let (row, user) = (Uuid::new_v4(), Uuid::new_v4());
        let blob = public.seal(cell(row, user), b"secret").unwrap();
        assert_eq!(blob[0], FORMAT_V2);
        assert_eq!(&private.open(cell(row, user), &blob).unwrap()[..], b"secret");
        assert!(matches!(
            private.open(cell(Uuid::new_v4(), user), &blob),
            Err(CryptoError::Unauthentic)
        ));
        assert!(private.open(cell(row, Uuid::new_v4()), &blob).is_err());
        for i in 0..blob.len() * 8 {
            let mut bad = blob.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(private.open(cell(row, user), &bad).is_err(), "bit {i}");
        }
        let (other_hex, _) = generate();
        let other = PrivateKeys::from_hex_list(&other_hex).unwrap();
        assert!(matches!(
            other.open(cell(row, user), &blob),
            Err(CryptoError::UnknownPrivateKey(id)) if id == public.key_id()
        ));
        assert_eq!(public_of(&private_hex).unwrap().to_hex(), public.to_hex());
        assert_eq!(
            PublicKey::from_hex(&public.to_hex()).unwrap().key_id(),
            public.key_id()
        );
        let debug = format!("{private:?}{public:?}");
        assert!(!debug.contains(private_hex.as_str()) && debug.contains("REDACTED"));
    }
}
