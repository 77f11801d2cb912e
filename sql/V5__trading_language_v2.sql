-- The trading language v2 (docs/api.md#webhook-body-v2): a signal keeps its v2 fields as one
-- JSONB object (shared/src/domain/trade.rs `TradeSpec`, decimals as strings, never floats; NULL
-- for a v1 signal, whose plain market order keeps its short path), `cancel` joins the actions,
-- and strategies and subscriptions get defaults for their signals. Every change is additive: a
-- process of the previous version still reads and writes what it knew.

ALTER TABLE signals
    ADD COLUMN trade jsonb CHECK (jsonb_typeof(trade) = 'object');

ALTER TABLE signals DROP CONSTRAINT signals_action_check;
ALTER TABLE signals ADD CONSTRAINT signals_action_check
    CHECK (action IN ('buy', 'sell', 'close', 'cancel'));

-- A quantity is needed unless the whole position is closed, the signal cancels, or the signal
-- names the position to hold (target_position sizes the order itself).
ALTER TABLE signals DROP CONSTRAINT signals_check1;
ALTER TABLE signals ADD CONSTRAINT signals_quantity_needed
    CHECK (quantity IS NOT NULL OR action IN ('close', 'cancel') OR COALESCE(trade ? 'target_position', false));
ALTER TABLE signals ADD CONSTRAINT signals_cancel_has_no_quantity
    CHECK (action <> 'cancel' OR quantity IS NULL);
ALTER TABLE signals ADD CONSTRAINT signals_target_has_no_quantity
    CHECK (quantity IS NULL OR trade IS NULL OR NOT trade ? 'target_position');

-- Defaults for signals: the signal's own field wins over the strategy's, which wins over the
-- subscription's (TradeSpec::with_defaults). Leverage as Bybit takes it: 1 to 200, 2 places.
ALTER TABLE strategies
    ADD COLUMN max_lag_secs integer CHECK (max_lag_secs BETWEEN 1 AND 86400),
    ADD COLUMN leverage     numeric(5, 2) CHECK (leverage BETWEEN 1 AND 200);

ALTER TABLE subscriptions
    ADD COLUMN leverage     numeric(5, 2) CHECK (leverage BETWEEN 1 AND 200),
    ADD COLUMN margin_mode  text CHECK (margin_mode IN ('cross', 'isolated'));
