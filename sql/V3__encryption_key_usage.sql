-- How many encryptions each encryption key id has performed (security.md §2.1: random 96-bit
-- nonces cap a key at 2^32 encryptions; HUMBEX stops at ENCRYPTION_MAX_PER_KEY). Incremented in the
-- same transaction as the write that stores the ciphertexts, so it survives restarts and counts
-- only what was committed (plus, conservatively, rewraps that lost a race).

CREATE TABLE encryption_key_usage (
    key_id       integer PRIMARY KEY CHECK (key_id > 0),
    encryptions  bigint NOT NULL CHECK (encryptions >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Rows stored before this table existed: two ciphertexts each (key and secret). Earlier rewraps
-- left no trace, so this is a lower bound.
INSERT INTO encryption_key_usage (key_id, encryptions)
SELECT enc_key_id, 2 * count(*) FROM api_keys GROUP BY enc_key_id;
