//! Who waits for what: long-polls on runs and on the deliveries log. Kept beside the state,
//! not in it, so waking them happens after the state lock is released. Every long-poll also
//! selects on `stopping`, so a server that shuts down answers them at once (with what they
//! have, as on a timeout) instead of holding its shutdown for their wait.
//!
//! Lock order: a waiter registers while it holds the state lock (so no change can slip
//! between its look and its registration); the commit point wakes after dropping the state
//! lock. The watchers' own lock is never held while taking the state lock.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub(crate) struct Watchers {
    /// run id -> whoever long-polls it.
    runs: Mutex<HashMap<u64, Vec<oneshot::Sender<()>>>>,
    /// Woken whenever a delivery is recorded.
    pub(crate) delivered: Notify,
    /// Cancelled when the server starts shutting down: long-polls stop waiting.
    pub(crate) stopping: CancellationToken,
}

impl Watchers {
    /// A receiver that completes (or is dropped) at the run's next change.
    pub(crate) fn watch(&self, run_id: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut runs = self.lock();
        let watchers = runs.entry(run_id).or_default();
        watchers.retain(|w| !w.is_closed());
        watchers.push(tx);
        rx
    }

    /// Wakes whoever waits for these runs.
    pub(crate) fn wake(&self, run_ids: impl IntoIterator<Item = u64>) {
        let woken: Vec<_> = {
            let mut runs = self.lock();
            run_ids
                .into_iter()
                .flat_map(|id| runs.remove(&id).unwrap_or_default())
                .collect()
        };
        for tx in woken {
            let _ = tx.send(());
        }
    }

    /// Wakes every waiter of every run (after a reset or an import: they look again and find
    /// their run changed or gone).
    pub(crate) fn wake_all(&self) {
        let all = std::mem::take(&mut *self.lock());
        drop(all);
        self.delivered.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Vec<oneshot::Sender<()>>>> {
        self.runs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
