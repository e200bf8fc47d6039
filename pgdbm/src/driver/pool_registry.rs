//! Which pools this process has open, per server, database and role — to warn when a second one
//! is opened where one shared pool would do (pgdbm for Python's pool registry).

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::ConnectTarget;

/// Open pools per `user@host:port/database`.
static OPEN_POOLS: Mutex<BTreeMap<String, usize>> = Mutex::new(BTreeMap::new());

fn open_pools() -> std::sync::MutexGuard<'static, BTreeMap<String, usize>> {
    OPEN_POOLS.lock().unwrap_or_else(|p| p.into_inner())
}

/// One open pool, counted until dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    key: String,
}

impl Registration {
    /// Counts a new pool for `target`; a `warn` when the process already has one open to the same
    /// server, database and role — usually a mistake: modules should share one pool
    /// ([`Database::new`](crate::Database::new) on a shared pool, one handle per schema).
    pub(crate) fn open(target: &ConnectTarget) -> Registration {
        let key = format!(
            "{}@{}:{}/{}",
            target.user, target.host, target.port, target.database
        );
        let others = {
            let mut pools = open_pools();
            let count = pools.entry(key.clone()).or_insert(0);
            *count += 1;
            *count - 1
        };
        if others > 0 {
            tracing::warn!(
                target: "pgdbm::pool",
                pools_already_open = others,
                user = %target.user,
                host = %target.host,
                port = target.port,
                database = %target.database,
                "pgdbm: another connection pool to the same database and role; this is usually \
                 a mistake: open one pool and share it (Database::new(pool.clone(), Some(schema)) \
                 per module)"
            );
        }
        Registration { key }
    }

    /// Pools open now to this registration's server, database and role (itself included).
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        open_pools().get(&self.key).copied().unwrap_or(0)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut pools = open_pools();
        if let Some(count) = pools.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                pools.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(database: &str, user: &str) -> ConnectTarget {
        ConnectTarget {
            host: "registry-test-host".into(),
            port: 5432,
            database: database.into(),
            user: user.into(),
        }
    }

    #[test]
    fn counts_pools_per_database_and_role() {
        let first = Registration::open(&target("reg_a", "app"));
        assert_eq!(first.open_count(), 1);
        let second = Registration::open(&target("reg_a", "app"));
        assert_eq!((first.open_count(), second.open_count()), (2, 2));
        // Another role or database is another key.
        let other_role = Registration::open(&target("reg_a", "admin"));
        let other_db = Registration::open(&target("reg_b", "app"));
        assert_eq!((other_role.open_count(), other_db.open_count()), (1, 1));
        drop(second);
        assert_eq!(first.open_count(), 1);
        drop(first);
        assert!(!open_pools().contains_key("app@registry-test-host:5432/reg_a"));
    }
}
