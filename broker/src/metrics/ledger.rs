//! Which leases this broker handed out and which reports it already
//! counted, so the lease-to-complete histogram has a start time and a
//! replayed `Complete` or `Fail` (same token, same answer) is not counted
//! twice.
//!
//! Both maps are bounded. Open leases normally leave on their report, a
//! release or a reap; one reaped or reported through another broker stays
//! until newer leases push it out (tokens come from one sequence, so the
//! smallest key is the oldest lease).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most open leases remembered.
const OPEN_CAP: usize = 100_000;
/// Most counted reports remembered for spotting replays.
const COUNTED_CAP: usize = 100_000;

/// What a report is to the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    /// The first report of this lease here; the lease's age if this broker
    /// leased it.
    First(Option<Duration>),
    /// A replay of a report already counted here.
    Replay,
}

#[derive(Debug, Default)]
struct Books {
    open: BTreeMap<i64, Instant>,
    counted: BTreeSet<i64>,
}

/// The ledger; shared by every lease stream and report of a broker.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    books: Mutex<Books>,
}

impl Ledger {
    /// Notes that `token` was leased now.
    pub(crate) fn leased(&self, token: i64) {
        let mut books = self.lock();
        books.open.insert(token, Instant::now());
        if books.open.len() > OPEN_CAP {
            books.open.pop_first();
        }
    }

    /// Notes a report of `token` and says whether to count it.
    pub(crate) fn reported(&self, token: i64) -> Seen {
        let mut books = self.lock();
        if !books.counted.insert(token) {
            return Seen::Replay;
        }
        if books.counted.len() > COUNTED_CAP {
            books.counted.pop_first();
        }
        Seen::First(books.open.remove(&token).map(|at| at.elapsed()))
    }

    /// Forgets a lease that ended without a report (released).
    pub(crate) fn forget(&self, token: i64) {
        self.lock().open.remove(&token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Books> {
        // The books hold no invariant a panicking holder could break.
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_counted_once_and_replays_are_spotted() {
        let ledger = Ledger::default();
        ledger.leased(7);
        assert!(matches!(ledger.reported(7), Seen::First(Some(_))));
        assert_eq!(ledger.reported(7), Seen::Replay);
    }

    #[test]
    fn a_report_of_a_lease_taken_elsewhere_counts_without_a_latency() {
        let ledger = Ledger::default();
        assert_eq!(ledger.reported(9), Seen::First(None));
    }

    #[test]
    fn open_leases_stay_bounded_by_dropping_the_oldest() {
        let ledger = Ledger::default();
        for token in 0..=i64::try_from(OPEN_CAP).unwrap() {
            ledger.leased(token);
        }
        assert_eq!(ledger.lock().open.len(), OPEN_CAP);
        assert_eq!(ledger.reported(0), Seen::First(None));
    }
}
