//! Blobs kept in memory between the steps of a document.
//!
//! A document's bytes travel upload → stamping job → callback, usually
//! within milliseconds of each other, in the same process. Writing the
//! upload to its file is needed (it must be durable before it is
//! acknowledged), but reading it back from that file for the stamping job
//! and again for the callback, and — when the same book is uploaded again —
//! writing it to a temporary file only to find it already stored, were a
//! large share of the server's CPU time for a big PDF (measured in
//! BENCHMARKS.md, "Session 4"). So an upload's bytes, and the stamped
//! update, can stay in memory, *held* for the steps that still need them:
//!
//! - an upload that fits ([`Hot::max_entry`]) is gathered in memory while it
//!   streams in (the bytes reserved against the budget as they arrive, so
//!   concurrent uploads cannot hold more than the budget), hashed, written
//!   only when not already stored, and then held once;
//! - readers ([`BlobStore::read`](super::BlobStore::read), streams, sizes)
//!   look here first — the file or the database stays the truth, this is a
//!   copy of immutable, content-addressed bytes, and nothing decides
//!   "already stored" from it;
//! - each step that is done with a blob releases its hold, and a blob with no
//!   holds left leaves memory; a hold nobody releases (the document was
//!   deleted, the job went to another node) lapses after [`IDLE`].
//!
//! Admission never evicts: the queue is first in, first out, so the blobs
//! held longest are the ones needed next, and an upload that does not fit
//! is simply read from its file later, as without this cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A held blob nobody used for this long is dropped from memory.
pub(crate) const IDLE: Duration = Duration::from_secs(60);

/// The in-memory blobs of one process, shared by every clone of its
/// [`BlobStore`](super::BlobStore). A budget of 0 keeps nothing.
#[derive(Debug, Default)]
pub(crate) struct Hot {
    budget: u64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Bytes of `entries`.
    held: u64,
    /// Bytes of uploads being gathered in memory right now.
    reserved: u64,
    /// Blobs forgotten so far (see [`Hot::forgets`]).
    forgets: u64,
}

#[derive(Debug)]
struct Entry {
    bytes: Bytes,
    holds: u32,
    last_used: Instant,
}

impl Hot {
    pub(crate) fn new(budget: u64) -> Hot {
        Hot {
            budget,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent even if a holder panicked (every update
        // is a few field assignments), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether anything can be kept at all.
    pub(crate) fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// The largest blob kept: a quarter of the budget, so a few documents
    /// in flight fit at once.
    pub(crate) fn max_entry(&self) -> u64 {
        self.budget / 4
    }

    /// The bytes of `sha256`, if held.
    pub(crate) fn get(&self, sha256: &str) -> Option<Bytes> {
        let mut inner = self.lock();
        let entry = inner.entries.get_mut(sha256)?;
        entry.last_used = Instant::now();
        Some(entry.bytes.clone())
    }

    /// Holds `bytes` as blob `sha256` once more: a new entry if they fit in
    /// the budget (after dropping idle ones), another hold on an existing
    /// one. Returns whether they are held.
    pub(crate) fn hold(&self, sha256: &str, bytes: impl FnOnce() -> Bytes) -> bool {
        self.hold_if(None, sha256, bytes)
    }

    /// [`hold`](Self::hold), unless a blob was forgotten since
    /// [`forgets`](Self::forgets) said `forgets` (checked under the same
    /// lock as the hold).
    pub(crate) fn hold_unless_forgotten(
        &self,
        forgets: u64,
        sha256: &str,
        bytes: impl FnOnce() -> Bytes,
    ) -> bool {
        self.hold_if(Some(forgets), sha256, bytes)
    }

    fn hold_if(&self, forgets: Option<u64>, sha256: &str, bytes: impl FnOnce() -> Bytes) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut inner = self.lock();
        if forgets.is_some_and(|f| f != inner.forgets) {
            return false;
        }
        let now = Instant::now();
        if let Some(entry) = inner.entries.get_mut(sha256) {
            entry.holds = entry.holds.saturating_add(1);
            entry.last_used = now;
            return true;
        }
        let bytes = bytes();
        let len = bytes.len() as u64;
        if len > self.max_entry() || !inner.make_room(len, self.budget, now) {
            return false;
        }
        inner.held += len;
        inner.entries.insert(
            sha256.to_owned(),
            Entry {
                bytes,
                holds: 1,
                last_used: now,
            },
        );
        true
    }

    /// One hold on `sha256` is done; the blob leaves memory with its last.
    pub(crate) fn release(&self, sha256: &str) {
        let mut inner = self.lock();
        let Some(entry) = inner.entries.get_mut(sha256) else {
            return;
        };
        entry.holds = entry.holds.saturating_sub(1);
        if entry.holds == 0 {
            inner.remove(sha256);
        }
    }

    /// Forgets `sha256` whatever its holds (the blob was deleted).
    pub(crate) fn forget(&self, sha256: &str) {
        let mut inner = self.lock();
        inner.forgets += 1;
        inner.remove(sha256);
    }

    /// How many blobs were forgotten so far: an upload that read it before
    /// storing its file holds the bytes only if no delete ran meanwhile
    /// ([`hold_unless_forgotten`](Self::hold_unless_forgotten)), since that
    /// delete may have removed the very file the upload found in place.
    pub(crate) fn forgets(&self) -> u64 {
        self.lock().forgets
    }

    /// Reserves `n` more bytes of the budget for an upload being gathered;
    /// `false` (nothing reserved) when they do not fit.
    fn reserve(&self, n: u64) -> bool {
        let mut inner = self.lock();
        if !inner.make_room(n, self.budget, Instant::now()) {
            return false;
        }
        inner.reserved += n;
        true
    }

    fn unreserve(&self, n: u64) {
        let mut inner = self.lock();
        inner.reserved = inner.reserved.saturating_sub(n);
    }

    /// Bytes held and reserved (tests).
    #[cfg(test)]
    fn usage(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.held, inner.reserved)
    }
}

impl Inner {
    fn remove(&mut self, sha256: &str) {
        if let Some(entry) = self.entries.remove(sha256) {
            self.held = self.held.saturating_sub(entry.bytes.len() as u64);
        }
    }

    /// Whether `n` more bytes fit in `budget`, after dropping idle holds if
    /// they do not at first.
    fn make_room(&mut self, n: u64, budget: u64, now: Instant) -> bool {
        let fits = |inner: &Inner| inner.held + inner.reserved + n <= budget;
        if !fits(self) {
            self.drop_idle(now);
        }
        fits(self)
    }

    fn drop_idle(&mut self, now: Instant) {
        let idle: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| now.duration_since(e.last_used) >= IDLE)
            .map(|(sha, _)| sha.clone())
            .collect();
        for sha in idle {
            self.remove(&sha);
        }
    }
}

/// The budget an upload gathering in memory has reserved; given back when
/// dropped (the upload ended, failed or was cancelled).
#[derive(Debug)]
pub(crate) struct Reservation {
    hot: Arc<Hot>,
    bytes: u64,
    /// Set once the upload went over what may be kept: it streams to its
    /// file from then on and reserves nothing more.
    spilled: bool,
}

impl Reservation {
    pub(crate) fn new(hot: Arc<Hot>) -> Reservation {
        let spilled = !hot.enabled();
        Reservation {
            hot,
            bytes: 0,
            spilled,
        }
    }

    /// Gathers nothing: the upload streams to its sink in batches.
    pub(crate) fn none() -> Reservation {
        Reservation::new(Arc::default())
    }

    /// Whether the upload may grow its buffer to `capacity` bytes and go on
    /// gathering in memory; reserves them. Once it says no, it says no for
    /// good and gives back what it had reserved (the upload streams to its
    /// file from then on, one batch at a time).
    pub(crate) fn may_keep(&mut self, capacity: u64) -> bool {
        if self.spilled {
            return false;
        }
        if capacity <= self.bytes {
            return true;
        }
        if capacity > self.hot.max_entry() || !self.hot.reserve(capacity - self.bytes) {
            self.spilled = true;
            self.hot.unreserve(self.bytes);
            self.bytes = 0;
            return false;
        }
        self.bytes = capacity;
        true
    }

    /// The largest buffer an upload may gather in.
    pub(crate) fn max_capacity(&self) -> usize {
        usize::try_from(self.hot.max_entry()).unwrap_or(usize::MAX)
    }

    /// Whether the upload was gathered whole in memory.
    pub(crate) fn kept(&self) -> bool {
        !self.spilled
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.hot.unreserve(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(n: u8) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn holds_release_and_budget() {
        let hot = Hot::new(400);
        assert_eq!(hot.max_entry(), 100);
        assert!(hot.hold(&sha(1), || Bytes::from(vec![1; 100])));
        // A second hold on the same blob does not take more budget.
        assert!(hot.hold(&sha(1), || unreachable!("already held")));
        assert_eq!(hot.usage(), (100, 0));
        // Too large for one entry.
        assert!(!hot.hold(&sha(2), || Bytes::from(vec![2; 101])));
        assert!(hot.hold(&sha(2), || Bytes::from(vec![2; 100])));
        assert!(hot.hold(&sha(3), || Bytes::from(vec![3; 100])));
        assert!(hot.hold(&sha(4), || Bytes::from(vec![4; 100])));
        // Full: admission never evicts what is held.
        assert!(!hot.hold(&sha(5), || Bytes::from(vec![5; 1])));
        assert_eq!(hot.get(&sha(2)).as_deref(), Some(&[2u8; 100][..]));

        hot.release(&sha(1));
        assert!(hot.get(&sha(1)).is_some(), "one hold left");
        hot.release(&sha(1));
        assert!(hot.get(&sha(1)).is_none(), "gone with its last hold");
        assert_eq!(hot.usage(), (300, 0));
        hot.forget(&sha(2));
        assert!(hot.get(&sha(2)).is_none());
        // Releasing what is not held is harmless.
        hot.release(&sha(9));
        assert_eq!(hot.usage(), (200, 0));
    }

    #[test]
    fn idle_holds_lapse_when_room_is_needed() {
        let hot = Hot::new(400);
        assert!(hot.hold(&sha(1), || Bytes::from(vec![1; 100])));
        assert!(hot.hold(&sha(2), || Bytes::from(vec![1; 100])));
        assert!(hot.hold(&sha(3), || Bytes::from(vec![1; 100])));
        assert!(hot.hold(&sha(4), || Bytes::from(vec![1; 100])));
        {
            let mut inner = hot.lock();
            let long_ago = Instant::now()
                .checked_sub(IDLE + Duration::from_secs(1))
                .unwrap_or_else(Instant::now);
            if let Some(e) = inner.entries.get_mut(&sha(1)) {
                e.last_used = long_ago;
            }
        }
        assert!(hot.hold(&sha(5), || Bytes::from(vec![5; 100])));
        assert!(hot.get(&sha(1)).is_none(), "the idle one made room");
        assert!(hot.get(&sha(2)).is_some());
    }

    #[test]
    fn reservations_count_against_the_budget_until_dropped() {
        let hot = Arc::new(Hot::new(400));
        let mut a = Reservation::new(Arc::clone(&hot));
        assert!(a.may_keep(60));
        assert!(a.may_keep(100));
        assert!(!a.may_keep(101), "over the largest entry");
        assert!(!a.may_keep(10), "spilled for good");
        assert!(!a.kept());
        assert_eq!(hot.usage(), (0, 0), "a spilled upload gives its share back");
        let mut a = Reservation::new(Arc::clone(&hot));
        assert!(a.may_keep(100));
        assert_eq!(hot.usage(), (0, 100));
        let mut b = Reservation::new(Arc::clone(&hot));
        assert!(b.may_keep(100));
        assert!(hot.hold(&sha(1), || Bytes::from(vec![1; 100])));
        assert!(hot.hold(&sha(2), || Bytes::from(vec![1; 100])));
        let mut c = Reservation::new(Arc::clone(&hot));
        assert!(!c.may_keep(1), "held + reserved fill the budget");
        drop(a);
        drop(b);
        assert_eq!(hot.usage(), (200, 0));
        let mut d = Reservation::new(Arc::clone(&hot));
        assert!(d.may_keep(100));
        assert!(d.kept());
        // Disabled: nothing is ever kept.
        let off = Arc::new(Hot::new(0));
        let mut e = Reservation::new(Arc::clone(&off));
        assert!(!e.may_keep(1));
        assert!(!off.hold(&sha(1), || Bytes::from_static(b"x")));
    }
}
