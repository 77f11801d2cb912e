//! Statements on `fills`.

/// A fill whose order is not ours joins nothing and is not inserted; one already recorded (also
/// earlier in the same statement) is skipped by its exec id.
pub const INSERT: &str = "\
    INSERT INTO fills (exec_id, order_id, qty, price, fee, exec_time) \
    SELECT u.exec_id, o.id, u.qty, u.price, u.fee, u.exec_time \
    FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::timestamptz[], \
                $6::text[], $7::uuid[]) AS u(exec_id, qty, price, fee, exec_time, link_id, key_id) \
    JOIN orders o ON o.order_link_id = u.link_id AND o.api_key_id = u.key_id \
    ON CONFLICT (exec_id) DO NOTHING \
    RETURNING exec_id, order_id";

/// Fills of orders HUMBEX did not place (recorded by [`super::orders::UPSERT_FOREIGN`]), matched by
/// the exchange's order id $6 on account $7; otherwise as [`INSERT`].
pub const INSERT_FOREIGN: &str = "\
    INSERT INTO fills (exec_id, order_id, qty, price, fee, exec_time) \
    SELECT u.exec_id, o.id, u.qty, u.price, u.fee, u.exec_time \
    FROM unnest($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::timestamptz[], \
                $6::text[], $7::uuid[]) AS u(exec_id, qty, price, fee, exec_time, xid, key_id) \
    JOIN orders o ON o.exchange_order_id = u.xid AND o.api_key_id = u.key_id \
    ON CONFLICT (exec_id) DO NOTHING \
    RETURNING exec_id, order_id";

/// The fills of orders $1, in execution order.
pub const OF_ORDERS: &str = "SELECT order_id, exec_id, qty, price, fee, exec_time FROM fills \
     WHERE order_id = ANY($1) ORDER BY exec_time, exec_id";

/// Every statement above, for the test that prepares them all.
pub fn all() -> Vec<&'static str> {
    vec![INSERT, INSERT_FOREIGN, OF_ORDERS]
}
