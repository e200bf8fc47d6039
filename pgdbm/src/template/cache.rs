//! The expansion caches: each [`Templates`]' shared cache of expansions by SQL text, and the
//! per-thread front cache of recent expansions by the address of the caller's text
//! ([`Templates::expand`] looks in both).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError};

use crate::driver::front_cache::{FrontCache, str_key};

use super::{ExpandedSql, Templates};
#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;

/// Distinct SQL texts whose expansion a [`Templates`] keeps. When the cache is full it is
/// cleared before the next insertion, so dynamically built SQL cannot grow memory forever while
/// the hot, repeated statements are back in the cache after their next use.
pub(super) const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// Source of [`Templates::id`].
pub(super) static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One recent expansion, in [`FRONT`].
struct FrontEntry {
    /// The [`Templates::id`] that expanded it.
    owner: u64,
    /// The SQL as written.
    source: Arc<str>,
    expanded: Arc<str>,
}

thread_local! {
    /// Recent expansions by where the caller's text lives. A hot statement is usually the same
    /// string at the same address (a literal, or a string the caller keeps), so finding it here
    /// costs a comparison of the text instead of hashing it and taking the cache's lock. The
    /// address only picks the slot: an entry is used only when its expander and its text are
    /// equal to the caller's, so a stale or colliding entry is never wrong, only replaced.
    pub(super) static FRONT: FrontCache<FrontEntry> = const { FrontCache::new() };
}

/// The [`FRONT`] slot of `sql` (by address and length) for expander `owner`.
fn front_slot(owner: u64, sql: &str) -> usize {
    FrontCache::<FrontEntry>::slot(str_key(owner, sql))
}

impl Templates {
    /// Expands the placeholders of `sql`.
    ///
    /// Text without `{{` is returned borrowed, untouched. Otherwise the expansion is cached: the
    /// same text expanded again returns the same shared string without parsing or allocating.
    ///
    /// ```
    /// # use pgdbm::{ExpandedSql, Templates};
    /// let t = Templates::new(Some("app"))?;
    /// assert!(matches!(t.expand("SELECT 1")?, ExpandedSql::Borrowed(_)));
    /// assert_eq!(&*t.expand("SELECT {{schema}}")?, r#"SELECT "app""#);
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Template`] naming the first malformed `{{tables…}}` or `{{schema…}}`
    /// placeholder (including one that is never closed, and one whose schema or table name is
    /// not a valid identifier). Errors are not cached.
    pub fn expand<'a>(&self, sql: &'a str) -> Result<ExpandedSql<'a>> {
        let slot = front_slot(self.id, sql);
        let recent = FRONT.with(|front| {
            front.get(slot, |e| {
                (e.owner == self.id && *e.source == *sql).then(|| Arc::clone(&e.expanded))
            })
        });
        if let Some(expanded) = recent {
            return Ok(ExpandedSql::Shared(expanded));
        }
        if !sql.contains("{{") {
            return Ok(ExpandedSql::Borrowed(sql));
        }
        let hit = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get_key_value(sql)
            .map(|(source, expanded)| (Arc::clone(source), Arc::clone(expanded)));
        if let Some((source, expanded)) = hit {
            self.remember(slot, source, Arc::clone(&expanded));
            return Ok(ExpandedSql::Shared(expanded));
        }
        let expanded: Arc<str> = Arc::from(self.expand_uncached(sql)?);
        if self.cache_capacity == 0 {
            return Ok(ExpandedSql::Shared(expanded));
        }
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(raced) = cache.get(sql) {
            // Another thread expanded the same text meanwhile: hand out its copy, so every
            // caller sees one shared string.
            return Ok(ExpandedSql::Shared(Arc::clone(raced)));
        }
        if cache.len() >= self.cache_capacity {
            cache.clear();
        }
        let source: Arc<str> = Arc::from(sql);
        cache.insert(Arc::clone(&source), Arc::clone(&expanded));
        drop(cache);
        self.remember(slot, source, Arc::clone(&expanded));
        Ok(ExpandedSql::Shared(expanded))
    }

    /// Keeps an expansion in this thread's [`FRONT`] cache.
    fn remember(&self, slot: usize, source: Arc<str>, expanded: Arc<str>) {
        FRONT.with(|front| {
            front.put(
                slot,
                FrontEntry {
                    owner: self.id,
                    source,
                    expanded,
                },
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::tests::{expand, with_schema};

    #[test]
    fn errors_are_not_cached() {
        let t = with_schema();
        assert!(t.expand("{{tables.1}}").is_err());
        assert!(t.expand("{{tables.1}}").is_err());
        assert_eq!(t.cache.read().unwrap().len(), 0);
    }

    #[test]
    fn no_placeholder_is_borrowed() {
        let t = with_schema();
        let sql = "SELECT '{\"a\": 1}' FROM users";
        match t.expand(sql).unwrap() {
            ExpandedSql::Borrowed(s) => assert!(std::ptr::eq(s, sql)),
            ExpandedSql::Shared(_) => panic!("expected Borrowed"),
        }
        assert_eq!(t.cache.read().unwrap().len(), 0);
    }

    #[test]
    fn cache_hit_shares_the_string() {
        let t = with_schema();
        let sql = "SELECT * FROM {{tables.users}}";
        let (ExpandedSql::Shared(a), ExpandedSql::Shared(b)) =
            (t.expand(sql).unwrap(), t.expand(sql).unwrap())
        else {
            panic!("expected Shared");
        };
        assert!(Arc::ptr_eq(&a, &b));
        // Brace text that is not a placeholder is cached too.
        let (ExpandedSql::Shared(a), ExpandedSql::Shared(b)) = (
            t.expand("SELECT '{{x}}'").unwrap(),
            t.expand("SELECT '{{x}}'").unwrap(),
        ) else {
            panic!("expected Shared");
        };
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn cache_is_per_schema() {
        let a = Templates::new(Some("a")).unwrap();
        let b = Templates::new(Some("b")).unwrap();
        let sql = "SELECT * FROM {{tables.t}}";
        assert_eq!(expand(&a, sql), r#"SELECT * FROM "a".t"#);
        assert_eq!(expand(&b, sql), r#"SELECT * FROM "b".t"#);
        assert_eq!(expand(&a, sql), r#"SELECT * FROM "a".t"#);
    }

    #[test]
    fn the_front_cache_compares_the_text_not_just_its_address() {
        let t = with_schema();
        // The same buffer (same address and length) holding another text, as a freed and
        // reused string would.
        let mut sql = String::from("SELECT * FROM {{tables.aa}}");
        assert_eq!(expand(&t, &sql), r#"SELECT * FROM "app".aa"#);
        let address = sql.as_ptr();
        sql.replace_range(.., "SELECT * FROM {{tables.bb}}");
        assert_eq!(sql.as_ptr(), address);
        assert_eq!(expand(&t, &sql), r#"SELECT * FROM "app".bb"#);
        // Text without placeholders in that buffer now.
        sql.replace_range(.., "SELECT * FROM plain_table_xx");
        assert!(matches!(t.expand(&sql).unwrap(), ExpandedSql::Borrowed(_)));
        // And another expander on the very same string.
        let other = Templates::new(Some("other")).unwrap();
        sql.replace_range(.., "SELECT * FROM {{tables.bb}}");
        assert_eq!(expand(&other, &sql), r#"SELECT * FROM "other".bb"#);
        assert_eq!(expand(&t, &sql), r#"SELECT * FROM "app".bb"#);
    }

    #[test]
    fn cache_is_bounded() {
        let t = Templates::with_cache_capacity(Some("app"), 8).unwrap();
        for i in 0..100 {
            let sql = format!("SELECT {i} FROM {{{{tables.users}}}}");
            assert_eq!(expand(&t, &sql), format!(r#"SELECT {i} FROM "app".users"#));
            assert!(t.cache.read().unwrap().len() <= 8);
        }
        // The most recent text is cached after a clear.
        let sql = "SELECT 99 FROM {{tables.users}}";
        assert!(t.cache.read().unwrap().contains_key(sql));

        let default = with_schema();
        for i in 0..(DEFAULT_CACHE_CAPACITY + 10) {
            default
                .expand(&format!("SELECT {i}, {{{{schema}}}}"))
                .unwrap();
        }
        assert!(default.cache.read().unwrap().len() <= DEFAULT_CACHE_CAPACITY);

        let none = Templates::with_cache_capacity(None, 0).unwrap();
        assert_eq!(expand(&none, "{{tables.t}}"), "t");
        assert_eq!(none.cache.read().unwrap().len(), 0);
    }

    #[test]
    fn poisoned_cache_still_works() {
        let t = Arc::new(with_schema());
        let t2 = Arc::clone(&t);
        let _ = std::thread::spawn(move || {
            let _guard = t2.cache.write().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(t.cache.is_poisoned());
        let sql = "SELECT * FROM {{tables.users}}";
        assert_eq!(expand(&t, sql), r#"SELECT * FROM "app".users"#);
        assert_eq!(expand(&t, sql), r#"SELECT * FROM "app".users"#);
        assert!(format!("{t:?}").contains("app"));
    }

    #[test]
    fn shared_across_threads() {
        let t = Arc::new(with_schema());
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    (0..200)
                        .map(|_| t.expand("SELECT {{tables.x}}").unwrap().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for s in h.join().unwrap() {
                assert_eq!(s, r#"SELECT "app".x"#);
            }
        }
    }
}
