//! A small per-thread cache in front of a shared one, for the per-query hot path.
//!
//! A hot statement usually reaches pgdbm as the same string at the same address (a literal, or a
//! string pgdbm shares), so finding what is known of it by that address costs a comparison
//! instead of hashing the text and taking a lock. [`FrontCache`] is a fixed array of slots picked
//! by a key (an address, a hash): it never decides whether an entry is right for the caller. The
//! contract is **verify on hit**: the caller's `hit` closure compares what the entry is for (its
//! owner, its text, its column types) with what the caller has and answers `None` when they
//! differ, so a stale or colliding entry is never used, only replaced.
//!
//! Declare one per use in a `thread_local!`:
//!
//! ```
//! use std::sync::Arc;
//! use pgdbm::driver::front_cache::{FrontCache, str_key};
//!
//! thread_local! {
//!     static RECENT: FrontCache<(Arc<str>, usize)> = const { FrontCache::new() };
//! }
//!
//! fn lookup(owner: u64, sql: &str) -> Option<usize> {
//!     let slot = FrontCache::<(Arc<str>, usize)>::slot(str_key(owner, sql));
//!     let hit = RECENT.with(|c| c.get(slot, |(text, n)| (**text == *sql).then_some(*n)));
//!     hit.or_else(|| {
//!         let n = sql.len(); // the slow path
//!         RECENT.with(|c| c.put(slot, (Arc::from(sql), n)));
//!         Some(n)
//!     })
//! }
//! assert_eq!(lookup(1, "SELECT 1"), Some(8));
//! ```

use std::cell::RefCell;

/// Slots of a [`FrontCache`] unless its user says otherwise.
pub const DEFAULT_SLOTS: usize = 64;

/// `N` slots (a power of two, at least 2) of recent entries. Meant to live in a `thread_local!`,
/// so it needs no lock; see the [module docs](self) for the verify-on-hit contract.
pub struct FrontCache<T, const N: usize = DEFAULT_SLOTS> {
    slots: RefCell<[Option<T>; N]>,
}

impl<T, const N: usize> FrontCache<T, N> {
    /// An empty cache (usable in `thread_local!`'s `const { … }` form).
    pub const fn new() -> Self {
        assert!(
            N.is_power_of_two() && N >= 2,
            "FrontCache: N must be a power of two ≥ 2"
        );
        FrontCache {
            slots: RefCell::new([const { None }; N]),
        }
    }

    /// The slot of `key`: Fibonacci hashing, the top bits of the product.
    #[inline]
    pub const fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (u64::BITS - N.trailing_zeros())) as usize
    }

    /// What `hit` makes of the entry in `slot`, if there is one and `hit` accepts it (it must
    /// check that the entry is for the caller's key, see the module docs).
    #[inline]
    pub fn get<R>(&self, slot: usize, hit: impl FnOnce(&T) -> Option<R>) -> Option<R> {
        self.slots.borrow()[slot].as_ref().and_then(hit)
    }

    /// Puts `entry` in `slot`, replacing what was there.
    #[inline]
    pub fn put(&self, slot: usize, entry: T) {
        let old = self.slots.borrow_mut()[slot].replace(entry);
        // Dropped outside the borrow, in case the old entry's `Drop` looks at this cache.
        drop(old);
    }
}

impl<T, const N: usize> Default for FrontCache<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> std::fmt::Debug for FrontCache<T, N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontCache").field("slots", &N).finish()
    }
}

/// The key of a text for a [`FrontCache`]: its address and length, mixed with the id of the
/// object (`owner`) whose entries the cache holds, so that two owners' entries of one text fall
/// in different slots.
#[inline]
pub fn str_key(owner: u64, text: &str) -> u64 {
    (text.as_ptr() as u64) ^ (text.len() as u64).rotate_left(40) ^ owner.rotate_left(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_in_range_and_spread() {
        let mut seen = [false; 64];
        for k in 0..4096u64 {
            let s = FrontCache::<(), 64>::slot(k * 8);
            seen[s] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert!(FrontCache::<(), 2>::slot(u64::MAX) < 2);
    }

    #[test]
    fn a_hit_is_what_the_caller_verifies() {
        let cache: FrontCache<(u64, &str)> = FrontCache::new();
        cache.put(3, (7, "a"));
        assert_eq!(cache.get(3, |(o, t)| (*o == 7).then_some(*t)), Some("a"));
        assert_eq!(cache.get(3, |(o, t)| (*o == 8).then_some(*t)), None);
        assert_eq!(cache.get(4, |(_, t)| Some(*t)), None);
        cache.put(3, (8, "b"));
        assert_eq!(cache.get(3, |(o, t)| (*o == 8).then_some(*t)), Some("b"));
    }
}
