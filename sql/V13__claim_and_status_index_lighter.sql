-- Lighter writes and a lighter claim on the signal path (docs/design.md#what-the-hot-path-pays-for).
--
-- 1. signals_by_status holds finished signals only. Every signal is written three times (received,
--    processing, then its end) and status is indexed, so none of those updates is HOT: each row
--    version wrote an entry here, two of them on the way to the order. The console and the admin
--    listing find received and processing signals through signals_waiting, which holds exactly
--    those; their filter names the status as a literal so the planner can prove which index
--    applies (shared/src/store/signals.rs `filtered_page`). It also stops the claim from
--    combining this index with signals_waiting in a bitmap, which, unlike an index scan, never
--    marks the dead entries of finished signals and so reads more of them every claim until a
--    vacuum.
DROP INDEX signals_by_status;
CREATE INDEX signals_by_status ON signals (status, received_at DESC, id DESC)
    WHERE status NOT IN ('received', 'processing');

-- 2. The racing rule (docs/trading-v2-executor.md#racing-alerts-for-one-account), moved out of the
--    claim statement into a function: whether a position-dependent signal must wait because an
--    earlier signal sharing an account with it is unfinished, or finished with an order still
--    `pending` (written by its claimer, not yet placed by the account's owner). Sharing an
--    account: the same user's own signals, the same strategy, a user's own signal and the
--    strategy that user actively follows, or the other way round (a user has one subscription,
--    so two strategies never share an account).
--
--    Inline, its five sub-plans were planned with every claim statement and set up at every
--    execution although the common path (a signal that reads no position) never runs them. As a
--    function it is planned once per connection, and only when a position-dependent signal is
--    next. STABLE: it reads with the claim statement's snapshot, as the inline text did.
--
--    One EXISTS per shape, so each probes its index (signals_by_user, signals_by_strategy) over
--    the window of unfinished signals only: from the oldest unfinished one (signals_waiting, one
--    index entry) to the signal itself. A single OR over the shapes walked every earlier
--    unfinished signal instead: behind 9,000 blocked `close` signals one claim took 22 s, against
--    0.2 s this way. The pending orders are found through orders_by_status.
CREATE FUNCTION humbex_signal_must_wait(s_id uuid, s_user uuid, s_strategy uuid, s_received timestamptz)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
DECLARE
    oldest timestamptz;
BEGIN
    SELECT min(w.received_at) INTO oldest FROM signals w WHERE w.status IN ('received', 'processing');
    RETURN EXISTS (SELECT 1 FROM signals p
                   WHERE p.user_id = s_user AND p.status IN ('received', 'processing')
                     AND p.received_at >= oldest AND p.received_at <= s_received
                     AND (p.received_at < s_received OR p.id < s_id))
        OR EXISTS (SELECT 1 FROM signals p
                   WHERE p.strategy_id = s_strategy AND p.status IN ('received', 'processing')
                     AND p.received_at >= oldest AND p.received_at <= s_received
                     AND (p.received_at < s_received OR p.id < s_id))
        OR EXISTS (SELECT 1 FROM subscriptions f JOIN signals p ON p.strategy_id = f.strategy_id
                   WHERE f.user_id = s_user AND f.status = 'active'
                     AND p.status IN ('received', 'processing')
                     AND p.received_at >= oldest AND p.received_at <= s_received
                     AND (p.received_at < s_received OR p.id < s_id))
        OR EXISTS (SELECT 1 FROM subscriptions f JOIN signals p ON p.user_id = f.user_id
                   WHERE f.strategy_id = s_strategy AND f.status = 'active'
                     AND p.status IN ('received', 'processing')
                     AND p.received_at >= oldest AND p.received_at <= s_received
                     AND (p.received_at < s_received OR p.id < s_id))
        OR EXISTS (SELECT 1 FROM orders o JOIN signals p ON p.id = o.signal_id
                   WHERE o.status = 'pending'
                     AND p.received_at <= s_received AND (p.received_at < s_received OR p.id < s_id)
                     AND (o.user_id = s_user
                          OR EXISTS (SELECT 1 FROM subscriptions f
                                     WHERE f.user_id = o.user_id AND f.strategy_id = s_strategy
                                       AND f.status = 'active')));
END $$;
