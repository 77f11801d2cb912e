//! Property tests (docs/security.md#property-tests-and-fuzzing) for the sealed-blob format and
//! webhook tokens.

use std::collections::BTreeMap;

use humbex_shared::crypto::{CellRef, Keyring};
use humbex_shared::token::{TokenKind, WebhookToken};
use proptest::prelude::*;
use uuid::Uuid;

fn keyring() -> Keyring {
    Keyring::new(BTreeMap::from([(1, [7u8; 32]), (2, [9u8; 32])]), 2).unwrap()
}

fn cell(row: u128, user: u128, column: &str) -> CellRef<'_> {
    CellRef {
        table: humbex_shared::api_key_vault::TABLE,
        column,
        row_id: Uuid::from_u128(row),
        user_id: Uuid::from_u128(user),
    }
}

proptest! {
    #[test]
    fn open_seal_round_trips_and_every_bit_flip_or_other_aad_fails(
        plain in proptest::collection::vec(any::<u8>(), 0..256),
        row in any::<u128>(),
        user in any::<u128>(),
        column in "[a-z_]{1,20}",
        flip in any::<proptest::sample::Index>(),
        other_row in any::<u128>(),
    ) {
        let ring = keyring();
        let blob = ring.seal(cell(row, user, &column), &plain).unwrap();
        prop_assert_eq!(ring.open(cell(row, user, &column), &blob).unwrap().to_vec(), plain);
        let bit = flip.index(blob.len() * 8);
        let mut bad = blob.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(ring.open(cell(row, user, &column), &bad).is_err());
        prop_assume!(other_row != row);
        prop_assert!(ring.open(cell(other_row, user, &column), &blob).is_err());
        prop_assert!(ring.open(cell(row, user, "other_column"), &blob).is_err() || column == "other_column");
    }

    #[test]
    fn opening_arbitrary_bytes_never_panics(blob in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = keyring().open(cell(1, 2, humbex_shared::api_key_vault::SECRET_COLUMN), &blob);
    }

    #[test]
    fn tokens_round_trip_and_refuse_every_one_character_mutation(
        kind in prop_oneof![Just(TokenKind::User), Just(TokenKind::Strategy), Just(TokenKind::Admin)],
        position in any::<proptest::sample::Index>(),
        replacement in proptest::char::range('!', '~'),
    ) {
        let token = WebhookToken::generate(kind);
        let text = token.expose_secret().to_owned();
        let parsed = WebhookToken::parse(&text).unwrap();
        prop_assert_eq!(parsed.kind(), kind);
        prop_assert_eq!(parsed.digest(), token.digest());
        let mut chars: Vec<char> = text.chars().collect();
        let i = position.index(chars.len());
        prop_assume!(chars[i] != replacement);
        chars[i] = replacement;
        let mutated: String = chars.into_iter().collect();
        prop_assert!(WebhookToken::parse(&mutated).is_err(), "{} accepted", mutated);
    }

    #[test]
    fn token_parser_never_panics(text in "\\PC{0,80}") {
        let _ = WebhookToken::parse(&text);
    }
}
