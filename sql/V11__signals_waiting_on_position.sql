-- Racing alerts across the fleet (docs/trading-v2-executor.md#racing-alerts-for-one-account): a
-- signal whose plan reads the account's position (`close`, `target_position`, `position_percent`)
-- is claimed only once every earlier signal sharing an account is finished and has no order left
-- `pending`. When a signal ends or an order is answered, the settle statement announces the
-- received position-dependent signals again, so a waiting one is claimed at once. This index
-- keeps that look-up an empty scan on the common path (plain signals never match it). Its
-- predicate is shared/src/store/signals.rs `position_dependent`, word for word.
CREATE INDEX signals_waiting_on_position ON signals (received_at)
    WHERE status = 'received'
      AND (action = 'close'
           OR COALESCE(trade ? 'target_position' OR trade ->> 'quantity_type' = 'position_percent', false));
