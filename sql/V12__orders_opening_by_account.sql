-- A position that opens is linked to the signal of the account's latest opening order on its
-- symbol (shared/src/store/positions.rs, UPSERT). Without this index that look-up read every order
-- the account ever had, once a position push: 458 buffer reads a push after 2,000 signals over 32
-- accounts, and growing with each account's history. Its predicate is the look-up's, word for word.
CREATE INDEX orders_opening_by_account ON orders (api_key_id, symbol, created_at DESC)
    WHERE origin = 'signal' AND NOT reduce_only;
