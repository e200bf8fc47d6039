//! The parameter types of pgdbm's statements, learned once per pool instead of asked of the
//! connection at every execution.
//!
//! pgdbm binds every value as the type the statement declares for its parameter, so the driver
//! must know those types before it encodes the arguments. sqlx tells them through
//! `PgConnection::prepare`, which even on a hit in its per-connection statement cache costs a
//! boxed future and a second cache lookup per execution. [`StatementTypes`] keeps them per SQL
//! text for the whole pool instead.
//!
//! Types learned on one connection are only right for the *same server-side statement*: a
//! connection that prepared the text earlier (before a DDL change, or an application statement
//! of the same text bound with other Rust types on a wrapped pool) may hold it with other
//! parameter types, and a value encoded for `bigint` read as `double precision` would be silently
//! wrong. So the text sent to the server is the SQL followed by a comment naming the entry,
//! `\n/* pgdbm:17 */`: every connection's statement of that text was prepared either by the
//! learning `prepare` of that entry or by sqlx with the entry's types declared, never with other
//! types. The comment does not move error positions (it comes after the SQL) and does not change
//! `pg_stat_statements`' query id (comments are not part of it).
//!
//! The types follow schema changes:
//!
//! * a value that does not fit a type learned earlier makes the driver learn the types again at
//!   once (at most once a second per text); it uses them if they changed, and the value is the
//!   caller's error if they did not;
//! * an execution the server refuses in a way a changed schema explains (classes 42 and 0A, or
//!   bad binary data) drops the entry, so that the next execution learns the types again, under
//!   a new tag.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use pgdbm::driver::front_cache::{FrontCache, str_key};
use sqlx::postgres::PgTypeInfo;

use crate::types::{self, Ty};

/// Distinct SQL texts a pool keeps the types of; when full, it starts over (the hot statements
/// are learned again at their next use, one round trip each).
const CAPACITY: usize = 2048;

/// Tags are unique in the process: two pgdbm pools wrapping one `PgPool` share its connections.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// What comes between the SQL and the tag's number. A newline first: the SQL may end in a `--`
/// comment.
const TAG_START: &str = "\n/* pgdbm:";

/// Source of [`StatementTypes::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The per-thread front cache: an entry and the [`StatementTypes::id`] of its pool per slot.
type FrontEntry = (u64, Arc<Learned>);

thread_local! {
    /// Recently used entries by the address of the caller's SQL text (pgdbm hands the driver the
    /// same shared string for a repeated templated statement), tagged with their pool's
    /// [`StatementTypes::id`]. A hit costs a comparison of the text instead of a hash and the
    /// pool's lock; an entry is used only when its pool and text are the caller's and the pool
    /// still keeps it, so a stale or colliding entry is never used, only replaced.
    static FRONT: FrontCache<FrontEntry> = const { FrontCache::new() };
}

/// The [`FRONT`] slot of `sql` (by address and length) for pool `owner`.
fn front_slot(owner: u64, sql: &str) -> usize {
    FrontCache::<FrontEntry>::slot(str_key(owner, sql))
}

/// What pgdbm knows of one SQL text.
#[derive(Debug)]
pub(crate) struct Learned {
    /// The text sent to the server: the SQL and its tag comment.
    pub(crate) tagged: Box<str>,
    /// The statement's parameter types, in order.
    pub(crate) types: Box<[PgTypeInfo]>,
    /// Their families, classified once here rather than at every encoding.
    pub(crate) kinds: Box<[Ty]>,
    /// Length of the SQL at the start of `tagged`.
    source_len: usize,
    /// When the types were last checked against the server after a value did not fit them, in
    /// milliseconds since [`epoch`] plus one (0: never).
    rechecked: AtomicU64,
    /// Set when the pool no longer keeps this entry (forgotten, replaced, or the pool's map
    /// started over), so that no thread's [`FRONT`] cache hands it out again.
    retired: AtomicBool,
}

/// A value not fitting the learned types is checked against the server (one round trip, and one
/// more statement in that connection's cache) at most this often per SQL text, so that a caller
/// repeating a wrong value does not fill the statement caches.
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// The clock of [`Learned::claim_recheck`].
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Learned {
    /// What the statement prepared as `tagged` (from [`Learned::tag`]) declares.
    pub(crate) fn new(tagged: Box<str>, types: Box<[PgTypeInfo]>) -> Self {
        let source_len = tagged.rfind(TAG_START).unwrap_or(tagged.len());
        let kinds = types.iter().map(types::classify).collect();
        Learned {
            tagged,
            types,
            kinds,
            source_len,
            rechecked: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }
    }

    /// The text to send for `sql` under a fresh tag.
    pub(crate) fn tag(sql: &str) -> Box<str> {
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        format!("{sql}{TAG_START}{tag} */").into_boxed_str()
    }

    /// `true` when this entry was learned for exactly `sql` and the pool still keeps it.
    fn serves(&self, sql: &str) -> bool {
        self.source_len == sql.len()
            && self.tagged.as_bytes()[..self.source_len] == *sql.as_bytes()
            && !self.retired.load(Ordering::Acquire)
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }

    /// `true` for the one caller that may check these types against the server now (see
    /// [`RECHECK_EVERY`]).
    pub(crate) fn claim_recheck(&self) -> bool {
        let now = u64::try_from(epoch().elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let last = self.rechecked.load(Ordering::Relaxed);
        let every = u64::try_from(RECHECK_EVERY.as_millis()).unwrap_or(u64::MAX);
        (last == 0 || now.saturating_sub(last) >= every)
            && self
                .rechecked
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Parameter types per SQL text, shared by a pool's connections (see the module docs).
#[derive(Debug)]
pub(crate) struct StatementTypes {
    map: RwLock<HashMap<Box<str>, Arc<Learned>, foldhash::fast::RandomState>>,
    /// Names this pool's entries in the per-thread [`FRONT`] cache (unique in the process).
    id: u64,
    /// Behind a transaction pooler: statements run unnamed, each on one server connection
    /// (`pooled.rs`).
    pub(crate) unnamed: bool,
}

impl Default for StatementTypes {
    fn default() -> Self {
        StatementTypes::new(false)
    }
}

impl StatementTypes {
    /// An empty map; `unnamed` behind a transaction pooler.
    pub(crate) fn new(unnamed: bool) -> Self {
        StatementTypes {
            map: RwLock::default(),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            unnamed,
        }
    }

    /// What is known of `sql`.
    pub(crate) fn get(&self, sql: &str) -> Option<Arc<Learned>> {
        let slot = front_slot(self.id, sql);
        let recent = FRONT.with(|front| {
            front.get(slot, |(owner, learned)| {
                (*owner == self.id && learned.serves(sql)).then(|| Arc::clone(learned))
            })
        });
        if recent.is_some() {
            return recent;
        }
        let learned = self
            .map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned()?;
        FRONT.with(|front| front.put(slot, (self.id, Arc::clone(&learned))));
        Some(learned)
    }

    /// Records `learned` for `sql` unless another execution did meanwhile (either is right for
    /// its own tag).
    pub(crate) fn insert(&self, sql: &str, learned: Arc<Learned>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(sql) {
            return;
        }
        Self::make_room(&mut map);
        map.insert(Box::from(sql), learned);
    }

    /// Replaces `old` (if it is still the entry of `sql`, or there is none) with `new`.
    pub(crate) fn replace(&self, sql: &str, old: &Arc<Learned>, new: Arc<Learned>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(sql) {
            Some(current) if Arc::ptr_eq(current, old) => {
                current.retire();
                *current = new;
            }
            Some(_) => {}
            None => {
                Self::make_room(&mut map);
                map.insert(Box::from(sql), new);
            }
        }
    }

    /// Forgets `learned` (if it is still the entry of `sql`), so the next execution learns the
    /// types again under a new tag.
    pub(crate) fn forget(&self, sql: &str, learned: &Arc<Learned>) {
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if map.get(sql).is_some_and(|l| Arc::ptr_eq(l, learned)) {
            if let Some(gone) = map.remove(sql) {
                gone.retire();
            }
        }
    }

    /// Starts over when the map is full.
    fn make_room(map: &mut HashMap<Box<str>, Arc<Learned>, foldhash::fast::RandomState>) {
        if map.len() >= CAPACITY {
            for (_, gone) in map.drain() {
                gone.retire();
            }
        }
    }

    /// Entries kept (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// `true` when a statement failing with `code` may have failed because its learned parameter or
/// result types no longer match the schema: syntax or access rule violations (class 42: an
/// operator or function missing for the parameter's type, a datatype mismatch), feature not
/// supported (0A000, "cached plan must not change result type"), and binary data the server
/// could not read as the parameter's type (22P03).
pub(crate) fn schema_may_have_changed(code: &str) -> bool {
    code.starts_with("42") || code.starts_with("0A") || code == "22P03"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_and_end_the_text_safely() {
        let a = Learned::tag("SELECT 1 -- note");
        let b = Learned::tag("SELECT 1 -- note");
        assert_ne!(a, b);
        assert!(a.starts_with("SELECT 1 -- note\n/* pgdbm:"), "{a}");
        assert!(a.ends_with(" */"), "{a}");
    }

    #[test]
    fn entries_are_kept_replaced_only_when_forgotten_and_bounded() {
        let cache = StatementTypes::default();
        let first = Arc::new(Learned::new(Learned::tag("SELECT $1"), Box::new([])));
        cache.insert("SELECT $1", Arc::clone(&first));
        let second = Arc::new(Learned::new(Learned::tag("SELECT $1"), Box::new([])));
        // A racing insert does not replace the entry others already use.
        cache.insert("SELECT $1", Arc::clone(&second));
        assert!(Arc::ptr_eq(&cache.get("SELECT $1").unwrap(), &first));
        // Forgetting an entry that is no longer current leaves the current one.
        cache.forget("SELECT $1", &second);
        assert!(cache.get("SELECT $1").is_some());
        cache.forget("SELECT $1", &first);
        assert!(cache.get("SELECT $1").is_none());

        for i in 0..CAPACITY + 10 {
            let sql = format!("SELECT {i}");
            let learned = Arc::new(Learned::new(Learned::tag(&sql), Box::new([])));
            cache.insert(&sql, learned);
        }
        assert!(cache.len() <= CAPACITY, "{}", cache.len());
    }

    fn learned(sql: &str) -> Arc<Learned> {
        Arc::new(Learned::new(Learned::tag(sql), Box::new([])))
    }

    #[test]
    fn the_front_cache_serves_only_the_same_pool_text_and_current_entry() {
        let pool = StatementTypes::default();
        let mut sql = String::from("SELECT $1::int");
        let first = learned(&sql);
        pool.insert(&sql, Arc::clone(&first));
        // The second lookup is a front hit: the same entry.
        assert!(Arc::ptr_eq(&pool.get(&sql).unwrap(), &first));
        assert!(Arc::ptr_eq(&pool.get(&sql).unwrap(), &first));
        // Same address and length, other text: not served.
        let address = sql.as_ptr();
        sql.replace_range(.., "SELECT $1::txt");
        assert_eq!(sql.as_ptr(), address);
        assert!(pool.get(&sql).is_none());
        sql.replace_range(.., "SELECT $1::int");
        assert!(pool.get(&sql).is_some());
        // Another pool, same text at the same address: its own (empty) map.
        let other = StatementTypes::default();
        assert!(other.get(&sql).is_none());
        // Forgotten: no thread's front cache hands it out again.
        pool.forget(&sql, &first);
        assert!(pool.get(&sql).is_none());
        // Replaced: the new entry only.
        let second = learned(&sql);
        pool.insert(&sql, Arc::clone(&second));
        assert!(Arc::ptr_eq(&pool.get(&sql).unwrap(), &second));
        let third = learned(&sql);
        pool.replace(&sql, &second, Arc::clone(&third));
        assert!(Arc::ptr_eq(&pool.get(&sql).unwrap(), &third));
        // A text containing what a tag starts with is still matched exactly.
        let odd = "SELECT 1\n/* pgdbm:5 */";
        pool.insert(odd, learned(odd));
        assert!(pool.get(odd).is_some());
        assert!(pool.get("SELECT 1").is_none());
    }

    #[test]
    fn rechecks_are_rate_limited() {
        let learned = Learned::new(Learned::tag("SELECT $1"), Box::new([]));
        assert!(learned.claim_recheck());
        assert!(
            !learned.claim_recheck(),
            "a second check within RECHECK_EVERY"
        );
    }

    #[test]
    fn schema_errors() {
        for code in ["42883", "42804", "42P01", "0A000", "22P03"] {
            assert!(schema_may_have_changed(code), "{code}");
        }
        for code in ["23505", "57014", "22012", "40001", "25P02"] {
            assert!(!schema_may_have_changed(code), "{code}");
        }
    }
}
