//! `max_lag_secs`: an order is not sent when more than N seconds passed between the signal's own
//! timestamp (or, without one, the moment HUMBEX received it) and the moment it would be sent.

use chrono::{DateTime, Utc};

use super::skip::SkipReason;

pub fn check(
    signal_time: Option<DateTime<Utc>>,
    received_at: DateTime<Utc>,
    now: DateTime<Utc>,
    max_lag_secs: Option<u32>,
) -> Result<(), SkipReason> {
    let Some(max) = max_lag_secs else {
        return Ok(());
    };
    let since = signal_time.unwrap_or(received_at);
    let lag_ms = (now - since).num_milliseconds();
    // Compared in milliseconds: 30.4 s is more than 30.
    if lag_ms > i64::from(max) * 1000 {
        return Err(SkipReason::Stale {
            lag_secs: lag_ms / 1000,
            max_lag_secs: max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn older_than_the_limit_is_stale() {
        let now = Utc::now();
        let received = now - Duration::seconds(1);
        assert_eq!(
            check(Some(now - Duration::seconds(100)), received, now, None),
            Ok(())
        );
        assert_eq!(
            check(Some(now - Duration::seconds(30)), received, now, Some(30)),
            Ok(())
        );
        let late = check(
            Some(now - Duration::milliseconds(30_400)),
            received,
            now,
            Some(30),
        );
        assert_eq!(
            late,
            Err(SkipReason::Stale {
                lag_secs: 30,
                max_lag_secs: 30
            })
        );
        assert_eq!(late.unwrap_err().code(), "stale");
        // A timestamp in the future is not stale.
        assert_eq!(
            check(Some(now + Duration::seconds(5)), received, now, Some(1)),
            Ok(())
        );
    }

    #[test]
    fn without_a_timestamp_the_receipt_counts() {
        let now = Utc::now();
        assert!(check(None, now - Duration::seconds(61), now, Some(60)).is_err());
        assert!(check(None, now - Duration::seconds(59), now, Some(60)).is_ok());
    }
}
