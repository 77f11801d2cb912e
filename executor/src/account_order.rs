//! Two alerts that race for one account are applied in order of arrival, never interleaved: a
//! batch is split into waves (a signal goes after every earlier signal of the batch that shares an
//! account with it), and a wave starts only once none of its accounts is being traded by another
//! wave, here or in a concurrent batch. Accounts are taken all at once or not at all, so no two
//! waves can wait on each other. In memory: one executor's order only; across the fleet, a signal
//! that reads the position is not even claimed before the earlier ones on its accounts are placed
//! (`signals::CLAIM`, docs/trading-v2-executor.md#racing-alerts-for-one-account).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use uuid::Uuid;

use crate::claim::ClaimedWork;

/// The accounts some wave is trading right now.
#[derive(Default)]
pub struct AccountGate {
    busy: Mutex<HashSet<Uuid>>,
    freed: Notify,
}

/// Held while a wave trades its accounts; dropping it frees them.
pub struct Taken {
    gate: Arc<AccountGate>,
    accounts: Vec<Uuid>,
}

impl Drop for Taken {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.gate.busy.lock() {
            for account in &self.accounts {
                busy.remove(account);
            }
        }
        self.gate.freed.notify_waiters();
    }
}

impl AccountGate {
    /// Wait until none of `accounts` is busy, then take them all.
    pub async fn take(self: &Arc<Self>, accounts: Vec<Uuid>) -> Taken {
        loop {
            // Registered before the check, so a release between the check and the wait is seen.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut busy = self.busy.lock().expect("account gate lock");
                if accounts.iter().all(|a| !busy.contains(a)) {
                    busy.extend(accounts.iter().copied());
                    return Taken {
                        gate: self.clone(),
                        accounts,
                    };
                }
            }
            freed.await;
        }
    }
}

/// The accounts a signal trades on.
pub fn accounts_of(work: &ClaimedWork) -> Vec<Uuid> {
    let mut accounts: Vec<Uuid> = work
        .targets
        .iter()
        .filter_map(|t| t.api_key.as_ref().map(|k| k.id))
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    accounts
}

/// The wave of each signal of a batch (in batch order, which is arrival order): one after the
/// latest earlier signal it shares an account with.
pub fn waves(accounts: &[Vec<Uuid>]) -> Vec<usize> {
    let mut wave_of = Vec::with_capacity(accounts.len());
    for (i, mine) in accounts.iter().enumerate() {
        let after = (0..i)
            .filter(|&j| accounts[j].iter().any(|a| mine.binary_search(a).is_ok()))
            .map(|j| wave_of[j] + 1)
            .max()
            .unwrap_or(0);
        wave_of.push(after);
    }
    wave_of
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_waits_for_every_earlier_one_on_its_accounts() {
        let (x, y, z) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        assert_eq!(waves(&[vec![x], vec![y], vec![x]]), [0, 0, 1]);
        assert_eq!(waves(&[vec![x, y], vec![y], vec![x], vec![z]]), [0, 1, 1, 0]);
        assert_eq!(waves(&[vec![x], vec![x], vec![x]]), [0, 1, 2]);
        assert_eq!(waves(&[vec![], vec![]]), [0, 0]);
    }

    #[tokio::test]
    async fn a_busy_account_waits_and_disjoint_ones_do_not() {
        let gate = Arc::new(AccountGate::default());
        let (x, y) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let first = gate.take(vec![x]).await;
        // y is free: taken at once.
        let other = gate.take(vec![y]).await;
        drop(other);
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.take(vec![x, y]).await.accounts.len() }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        assert_eq!(waiting.await.unwrap(), 2);
    }
}
