//! Type lookups behind a transaction pooler.
//!
//! A result column of a type tokio-postgres does not know by OID (an enum, a composite, an
//! extension's type such as `citext`, their arrays) makes tokio-postgres look the type up with
//! statements of its own: named, prepared in one exchange and run in the next, and kept by the
//! client for later lookups. Behind a transaction pooler the two exchanges may reach two server
//! connections (`prepared statement "s3" does not exist`), and the kept statements exist on one
//! server connection only, which the pooler then hands to other clients.
//!
//! So a connection behind a transaction pooler remembers which statement texts it has run
//! ([`TypeLookups`]); a statement it has not run yet is *guarded*:
//!
//! * it runs where lookups are safe: inside the caller's transaction, or inside a
//!   `BEGIN`/`COMMIT` of its own (outside a transaction), so every exchange of the lookup reaches
//!   the same server connection;
//! * before it, named statements left on that server connection are dropped (`DEALLOCATE ALL`,
//!   so a lookup's name cannot collide with one another process left), and the lookup
//!   statements the client keeps are prepared again there under their names (`PREPARE`);
//! * after it, the lookup statements the client prepared meanwhile are read from
//!   `pg_prepared_statements` (kept to be prepared again next time) and every named statement is
//!   dropped again, in the round trip of the `COMMIT`.
//!
//! A guarded statement costs two round trips more, once per statement text and connection. Once
//! a statement text has run on a connection, its result types are in the client's type cache and
//! it runs as one unnamed exchange. (If a later schema change gives that statement a result type
//! the client has never seen, the lookup fails with `26000`; the connection is then closed.)

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use lru::LruCache;
use tokio_postgres::SimpleQueryMessage;

/// How many statement texts a connection remembers having run.
const REMEMBERED: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// Reads the lookup statements the client prepared during a guarded statement (the ones pgdbm
/// prepared again with `PREPARE` have `from_sql`).
const LEARN: &str = "SELECT name, statement, parameter_types::text \
                     FROM pg_catalog.pg_prepared_statements WHERE NOT from_sql";

/// What a guarded statement ends with, by how it ended and where it ran.
pub(crate) fn epilogue(own_transaction: bool, succeeded: bool) -> String {
    match (own_transaction, succeeded) {
        (true, true) => format!("{LEARN}; DEALLOCATE ALL; COMMIT"),
        (true, false) => format!("ROLLBACK; {LEARN}; DEALLOCATE ALL"),
        (false, _) => format!("{LEARN}; DEALLOCATE ALL"),
    }
}

/// A lookup statement the client keeps: its name and the `PREPARE` that recreates it.
struct Kept {
    name: String,
    prepare: String,
}

/// What a connection behind a transaction pooler knows of its statements and its session.
pub(crate) struct TypeLookups {
    /// Statement texts run on this connection (their result types are in the client's cache).
    seen: Mutex<LruCache<String, ()>>,
    /// The lookup statements the client keeps.
    kept: Mutex<Vec<Kept>>,
    /// A transaction is open: the pooler holds the server connection.
    in_transaction: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TypeLookups {
    pub(crate) fn new() -> Self {
        TypeLookups {
            seen: Mutex::new(LruCache::new(REMEMBERED)),
            kept: Mutex::new(Vec::new()),
            in_transaction: AtomicBool::new(false),
        }
    }

    /// `true` when `sql` must be guarded: this connection has not run it yet.
    pub(crate) fn must_guard(&self, sql: &str) -> bool {
        lock(&self.seen).get(sql).is_none()
    }

    /// `sql` ran guarded: its result types are now in the client's cache.
    pub(crate) fn ran(&self, sql: &str) {
        lock(&self.seen).put(sql.to_owned(), ());
    }

    pub(crate) fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::Relaxed)
    }

    /// Follows a batch the connection ran (see [`pgdbm::driver::transaction_control`]).
    pub(crate) fn follow(&self, sql: &str) {
        if let Some(open) = pgdbm::driver::transaction_control(sql) {
            self.in_transaction.store(open, Ordering::Relaxed);
        }
    }

    /// What a guarded statement starts with: its own `BEGIN` when outside a transaction, then
    /// `DEALLOCATE ALL` and the kept lookup statements prepared again.
    pub(crate) fn prologue(&self, own_transaction: bool) -> String {
        let mut sql = String::from(if own_transaction {
            "BEGIN; DEALLOCATE ALL"
        } else {
            "DEALLOCATE ALL"
        });
        for kept in lock(&self.kept).iter() {
            sql.push_str("; ");
            sql.push_str(&kept.prepare);
        }
        sql
    }

    /// Keeps the lookup statements the [`epilogue`]'s query listed.
    pub(crate) fn keep(&self, messages: &[SimpleQueryMessage]) {
        let mut kept = lock(&self.kept);
        for message in messages {
            let SimpleQueryMessage::Row(row) = message else {
                continue;
            };
            let (Some(name), Some(statement), Some(types)) = (row.get(0), row.get(1), row.get(2))
            else {
                continue;
            };
            // Only what `PREPARE` can recreate: tokio-postgres' lookups are queries (a COPY's
            // statement, say, is closed by then anyway).
            let query = statement
                .trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"));
            if !query || kept.iter().any(|k| k.name == name) {
                continue;
            }
            kept.push(Kept {
                name: name.to_owned(),
                prepare: prepare_again(name, statement, types),
            });
        }
    }
}

/// The `PREPARE` that recreates a protocol-level statement named `name` of `statement`, whose
/// parameter types are `types` (`pg_prepared_statements.parameter_types` as text: `{oid}`).
fn prepare_again(name: &str, statement: &str, types: &str) -> String {
    let name = name.replace('"', "\"\"");
    let types = types.trim_start_matches('{').trim_end_matches('}');
    if types.is_empty() {
        format!("PREPARE \"{name}\" AS {statement}")
    } else {
        format!("PREPARE \"{name}\" ({types}) AS {statement}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_prepared_again_under_their_names() {
        assert_eq!(
            prepare_again("s3", "SELECT $1::oid", "{oid}"),
            "PREPARE \"s3\" (oid) AS SELECT $1::oid"
        );
        assert_eq!(
            prepare_again("a\"b", "SELECT 1", "{}"),
            "PREPARE \"a\"\"b\" AS SELECT 1"
        );
    }

    #[test]
    fn guarded_statements_open_and_close_their_own_transaction_outside_one() {
        let lookups = TypeLookups::new();
        assert!(lookups.must_guard("SELECT 1"));
        lookups.ran("SELECT 1");
        assert!(!lookups.must_guard("SELECT 1"));
        assert_eq!(lookups.prologue(true), "BEGIN; DEALLOCATE ALL");
        assert_eq!(lookups.prologue(false), "DEALLOCATE ALL");
        assert!(epilogue(true, true).ends_with("DEALLOCATE ALL; COMMIT"));
        assert!(epilogue(true, false).starts_with("ROLLBACK; "));
        lookups.follow("BEGIN; SET LOCAL statement_timeout = 1");
        assert!(lookups.in_transaction());
        lookups.follow("COMMIT");
        assert!(!lookups.in_transaction());
    }
}
