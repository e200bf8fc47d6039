//! [`TenantCache`]: verified API keys → the tenant's handle, so that a request does not pay an
//! Argon2 verification and a registry lookup each time.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lru::LruCache;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::tenant::Tenant;

/// A bounded, in-process LRU of verified keys.
///
/// An entry holds the SHA-256 of the key that was verified (never the key), so a hit needs the
/// very same key; the tenant handle it returns keeps its own template cache warm. Entries expire
/// after a time to live, which bounds how long a change made by *another* process (which cannot
/// invalidate this cache) goes unseen.
///
/// Invalidation races with lookups: a request may read the registry, a suspension may commit and
/// invalidate, and the request may then insert what it read. Every invalidation therefore bumps a
/// generation, and [`insert`](Self::insert) only stores an entry looked up in the current one.
#[derive(Debug)]
pub struct TenantCache<V = Arc<Tenant>> {
    inner: Mutex<Inner<V>>,
    ttl: Duration,
}

#[derive(Debug)]
struct Inner<V> {
    entries: LruCache<String, Entry<V>>,
    generation: u64,
}

#[derive(Debug)]
struct Entry<V> {
    key_digest: [u8; 32],
    tenant_id: Uuid,
    value: V,
    verified_at: Instant,
}

/// The cache's generation when a lookup started; see [`TenantCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl<V: Clone> TenantCache<V> {
    /// A cache of at most `capacity` keys, each kept at most `ttl`.
    pub fn new(capacity: NonZeroUsize, ttl: Duration) -> Self {
        TenantCache {
            inner: Mutex::new(Inner {
                entries: LruCache::new(capacity),
                generation: 0,
            }),
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<V>> {
        // Nothing panics while holding the lock; a poisoned one still holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value (the tenant's handle) of `key` (whose id is `key_id`) if it was verified within the time to live.
    pub fn get(&self, key_id: &str, key: &str) -> Option<V> {
        let digest = digest(key);
        let mut inner = self.lock();
        let entry = inner.entries.get(key_id)?;
        if entry.verified_at.elapsed() > self.ttl {
            inner.entries.pop(key_id);
            return None;
        }
        (entry.key_digest == digest).then(|| entry.value.clone())
    }

    /// The generation to pass to [`insert`](Self::insert); read it before the registry lookup.
    pub fn generation(&self) -> Generation {
        Generation(self.lock().generation)
    }

    /// Stores `value` for a verified key of tenant `tenant_id` unless the cache was invalidated
    /// since `seen`; returns whether it was stored.
    pub fn insert(
        &self,
        seen: Generation,
        key_id: &str,
        key: &str,
        tenant_id: Uuid,
        value: V,
    ) -> bool {
        let mut inner = self.lock();
        if inner.generation != seen.0 {
            return false;
        }
        let entry = Entry {
            key_digest: digest(key),
            tenant_id,
            value,
            verified_at: Instant::now(),
        };
        inner.entries.put(key_id.to_owned(), entry);
        true
    }

    /// Forgets every key of tenant `id` (after its suspension or deletion committed).
    pub fn invalidate_tenant(&self, id: Uuid) {
        let mut inner = self.lock();
        inner.generation += 1;
        let stale: Vec<String> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.tenant_id == id)
            .map(|(k, _)| k.clone())
            .collect();
        for key_id in stale {
            inner.entries.pop(&key_id);
        }
    }

    /// How many keys are cached.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl: Duration) -> TenantCache<&'static str> {
        TenantCache::new(NonZeroUsize::new(2).unwrap(), ttl)
    }

    #[test]
    fn a_hit_needs_the_same_key() {
        let c = cache(Duration::from_secs(60));
        let g = c.generation();
        assert!(c.insert(g, "id1", "key-one", Uuid::nil(), "acme"));
        assert_eq!(c.get("id1", "key-one"), Some("acme"));
        assert_eq!(c.get("id1", "key-two"), None);
        assert_eq!(c.get("id2", "key-one"), None);
    }

    #[test]
    fn invalidation_forgets_the_tenant_and_refuses_older_lookups() {
        let c = cache(Duration::from_secs(60));
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let g = c.generation();
        c.insert(g, "a1", "ka", a, "a");
        c.insert(g, "b1", "kb", b, "b");
        let before = c.generation();
        c.invalidate_tenant(a);
        assert_eq!(c.get("a1", "ka"), None);
        assert_eq!(c.get("b1", "kb"), Some("b"));
        // A lookup that started before the invalidation must not store what it read.
        assert!(!c.insert(before, "a1", "ka", a, "a"));
        assert_eq!(c.get("a1", "ka"), None);
        assert!(c.insert(c.generation(), "a1", "ka", a, "a"));
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let c = cache(Duration::ZERO);
        c.insert(c.generation(), "a1", "ka", Uuid::nil(), "a");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.get("a1", "ka"), None);
        let c = cache(Duration::from_secs(60));
        for (i, id) in ["x", "y", "z"].into_iter().enumerate() {
            c.insert(c.generation(), id, id, Uuid::from_u128(i as u128), id);
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("x", "x"), None);
    }
}
