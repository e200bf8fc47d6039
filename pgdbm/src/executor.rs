//! The [`Executor`] seam (runs SQL) and [`ExecutorExt`], the conveniences written once on top of it.

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, truncate_sql};
use crate::from_row::FromRow;
use crate::row::{ColumnIndex, Row};
use crate::value::{FromValue, Params, ToParam};

/// The stream of rows [`Executor::fetch`] returns (of `T` for
/// [`fetch_as`](ExecutorExt::fetch_as)): a boxed `futures` stream of results, read with
/// `futures_util::StreamExt`/`TryStreamExt` (`next`, `try_next`, `try_collect`…).
pub type RowStream<'a, T = Row> = BoxStream<'a, Result<T>>;

/// Runs SQL. Object safe: hold it as `&dyn Executor` or `Arc<dyn Executor>`.
///
/// Drivers implement it for their pool and their connections; the core implements it for
/// [`Database`](crate::Database) and [`Transaction`](crate::Transaction), which expand
/// `{{tables.…}}` templates and then delegate. Code written against `&dyn Executor` therefore runs
/// unchanged on a pool, inside a transaction, and on either driver.
///
/// Parameters are positional (`$1`, `$2`, …) and given as a slice of [`ToParam`] values, most
/// easily with [`params!`](crate::params): `db.execute(sql, params![id, name])`.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs one statement and returns the number of rows it affected.
    ///
    /// # Errors
    ///
    /// [`Error::Database`] for server errors, [`Error::Encode`]/[`Error::ParameterCount`] for
    /// parameters that do not fit the statement, [`Error::PoolTimeout`]/[`Error::PoolClosed`] when
    /// no connection can be had, [`Error::ConnectionLost`] when the connection fails.
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64>;

    /// Runs one statement and returns all rows.
    ///
    /// # Errors
    ///
    /// As [`execute`](Executor::execute), plus [`Error::UnsupportedType`] for a column type pgdbm
    /// cannot decode.
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>>;

    /// Runs one statement and returns its first row, if any (further rows are discarded).
    ///
    /// # Errors
    ///
    /// As [`fetch_all`](Executor::fetch_all).
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>>;

    /// Runs a script of one or more statements without parameters (the simple query protocol), as
    /// migrations do.
    ///
    /// # Errors
    ///
    /// As [`execute`](Executor::execute); statements before the failing one have run unless the
    /// script is inside a transaction.
    async fn batch_execute(&self, sql: &str) -> Result<()>;

    /// The schema this executor scopes names to: the one `{{tables.…}}` expands to on a
    /// [`Database`](crate::Database) or [`Transaction`](crate::Transaction), also the scope of
    /// notification channels ([`ExecutorExt::notify`]). `None` (the default) for pools and
    /// connections, which run SQL as given. Wrappers forward it.
    fn schema(&self) -> Option<&str> {
        None
    }

    /// Runs one statement and returns its rows as a stream, read from the server as the consumer
    /// takes them: client memory stays bounded (a few dozen rows ahead) whatever the size of the
    /// result. The connection is held until the stream ends or is dropped; dropping it early
    /// cancels the rest of the statement on the server (on a pool, the connection goes back
    /// clean; inside a transaction, the cancelled statement aborts the transaction, as any
    /// failed statement does).
    ///
    /// The parameters are borrowed for as long as the stream lives: bind them to a variable
    /// (`let p = params![min]; let rows = db.fetch(sql, p);`).
    ///
    /// ```no_run
    /// # async fn demo(db: &dyn pgdbm::Executor) -> pgdbm::Result<()> {
    /// use futures_util::TryStreamExt;
    /// let min = 10_i64;
    /// let p = pgdbm::params![min];
    /// let mut rows = db.fetch("SELECT id, body FROM {{tables.events}} WHERE id > $1 ORDER BY id", p);
    /// while let Some(row) = rows.try_next().await? {
    ///     let id: i64 = row.get("id")?;
    ///     # let _ = id;
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The stream yields the errors of [`fetch_all`](Executor::fetch_all), then ends.
    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>>;
}

#[async_trait]
impl<E: Executor + ?Sized> Executor for &E {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        (**self).execute(sql, params).await
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        (**self).fetch_all(sql, params).await
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        (**self).fetch_optional(sql, params).await
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        (**self).batch_execute(sql).await
    }
    fn schema(&self) -> Option<&str> {
        (**self).schema()
    }

    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        (**self).fetch(sql, params)
    }
}

#[async_trait]
impl<E: Executor + ?Sized> Executor for std::sync::Arc<E> {
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64> {
        (**self).execute(sql, params).await
    }
    async fn fetch_all(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        (**self).fetch_all(sql, params).await
    }
    async fn fetch_optional(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        (**self).fetch_optional(sql, params).await
    }
    async fn batch_execute(&self, sql: &str) -> Result<()> {
        (**self).batch_execute(sql).await
    }
    fn schema(&self) -> Option<&str> {
        (**self).schema()
    }

    fn fetch<'a>(&'a self, sql: &str, params: Params<'a>) -> BoxStream<'a, Result<Row>> {
        (**self).fetch(sql, params)
    }
}

/// Conveniences available on every [`Executor`] (including `dyn Executor`). Implemented once,
/// here; do not implement it yourself.
#[async_trait]
pub trait ExecutorExt: Executor {
    /// Runs a statement and returns its first row.
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row; otherwise as [`Executor::fetch_optional`].
    async fn fetch_one(&self, sql: &str, params: Params<'_>) -> Result<Row> {
        required_row(self.fetch_optional(sql, params).await?, sql)
    }

    /// Runs a statement and returns the first column of its first row as `T`
    /// (`Option<T>` to accept `NULL`). [`fetch_value_at`](ExecutorExt::fetch_value_at) reads
    /// another column.
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row, [`Error::Decode`] when the value does not fit
    /// `T`; otherwise as [`Executor::fetch_optional`].
    async fn fetch_value<T: FromValue + Send>(&self, sql: &str, params: Params<'_>) -> Result<T> {
        required_row(self.fetch_optional(sql, params).await?, sql)?.get::<T>(0)
    }

    /// Runs a statement and returns one column of its first row as `T` (`Option<T>` to accept
    /// `NULL`): by name (`"email"`) or by 0-based position (`1usize`).
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// let sql = "SELECT id, email, nickname FROM {{tables.users}} WHERE id = $1";
    /// let email: String = db.fetch_value_at(sql, params![1i64], "email").await?;
    /// let nickname: Option<String> = db.fetch_value_at(sql, params![1i64], 2usize).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row, [`Error::ColumnNotFound`] when the row has no
    /// such column, [`Error::Decode`] when the value does not fit `T`; otherwise as
    /// [`Executor::fetch_optional`].
    async fn fetch_value_at<T: FromValue + Send, C: ColumnIndex + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
        column: C,
    ) -> Result<T> {
        required_row(self.fetch_optional(sql, params).await?, sql)?.get::<T>(column)
    }

    /// Runs a statement and maps every row onto `T` with its [`FromRow`]:
    /// `#[derive(FromRow)]` structs (columns by field name), tuples (columns by position, e.g.
    /// `fetch_all_as::<(i64, String)>`), [`Row`] itself. For a serde type, see
    /// [`fetch_all_de`](ExecutorExt::fetch_all_de).
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// #[derive(FromRow)]
    /// struct User { id: i64, email: String }
    ///
    /// let users: Vec<User> = db.fetch_all_as("SELECT id, email FROM {{tables.users}}", &[]).await?;
    /// let pairs = db.fetch_all_as::<(i64, String)>("SELECT id, email FROM {{tables.users}}", &[]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]/[`Error::ColumnNotFound`] naming the column and field when a row does
    /// not match `T`; otherwise as [`Executor::fetch_all`].
    async fn fetch_all_as<T: FromRow + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<T>> {
        T::from_rows(self.fetch_all(sql, params).await?)
    }

    /// Runs a statement and maps its first row onto `T` with its [`FromRow`].
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row; [`Error::Decode`]/[`Error::ColumnNotFound`]
    /// when it does not match `T`.
    async fn fetch_one_as<T: FromRow + Send>(&self, sql: &str, params: Params<'_>) -> Result<T> {
        T::from_row(&self.fetch_one(sql, params).await?)
    }

    /// Runs a statement and maps its first row, if any, onto `T` with its [`FromRow`].
    ///
    /// # Errors
    ///
    /// [`Error::Decode`]/[`Error::ColumnNotFound`] when the row does not match `T`; otherwise as
    /// [`Executor::fetch_optional`].
    async fn fetch_optional_as<T: FromRow + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<T>> {
        match self.fetch_optional(sql, params).await? {
            Some(row) => T::from_row(&row).map(Some),
            None => Ok(None),
        }
    }

    /// Runs a statement and maps every row onto a serde `Deserialize` type (fields named like
    /// the columns), through [`Row::deserialize`]. The alternative to
    /// [`fetch_all_as`](ExecutorExt::fetch_all_as) for types that already implement
    /// `Deserialize` or need serde's attributes (`#[serde(with = …)]`, enums, `untagged`…); it
    /// goes through JSON, so it is slower, and dates, UUIDs and numerics arrive as strings.
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// #[derive(serde::Deserialize)]
    /// struct User { id: i64, email: String }
    ///
    /// let users: Vec<User> = db.fetch_all_de("SELECT id, email FROM {{tables.users}}", &[]).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a row does not match `T`; otherwise as [`Executor::fetch_all`].
    async fn fetch_all_de<T: DeserializeOwned + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<T>> {
        self.fetch_all(sql, params)
            .await?
            .iter()
            .map(Row::deserialize)
            .collect()
    }

    /// [`fetch`](Executor::fetch) with each row mapped onto `T` by its [`FromRow`]
    /// implementation, as the rows arrive. A row that does not map ends the stream with its
    /// error (the rest of the statement is cancelled).
    ///
    /// ```no_run
    /// # async fn demo(db: &dyn pgdbm::Executor) -> pgdbm::Result<()> {
    /// use futures_util::TryStreamExt;
    /// use pgdbm::prelude::*;
    /// use pgdbm::{FromRow, Row};
    /// struct Event { id: i64 }
    /// impl FromRow for Event {
    ///     fn from_row(row: &Row) -> pgdbm::Result<Self> { Ok(Event { id: row.get("id")? }) }
    /// }
    /// let mut events = db.fetch_as::<Event>("SELECT id FROM {{tables.events}} ORDER BY id", &[]);
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{}", event.id);
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The stream yields the errors of [`Executor::fetch`] and of [`FromRow::from_row`].
    fn fetch_as<'a, T: FromRow + Send + 'a>(
        &'a self,
        sql: &str,
        params: Params<'a>,
    ) -> BoxStream<'a, Result<T>> {
        let mut failed = false;
        self.fetch(sql, params)
            .map(|row| row.and_then(|row| T::from_row(&row)))
            .take_while(move |item| {
                // End after the first error: the rest of the statement is cancelled.
                let go = !failed;
                failed |= item.is_err();
                std::future::ready(go)
            })
            .boxed()
    }

    /// Runs a statement and maps its first row onto a serde `Deserialize` type; see
    /// [`fetch_all_de`](ExecutorExt::fetch_all_de).
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row, [`Error::Decode`] when it does not match `T`.
    async fn fetch_one_de<T: DeserializeOwned + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<T> {
        self.fetch_one(sql, params).await?.deserialize()
    }

    /// Runs a statement and maps its first row, if any, onto a serde `Deserialize` type; see
    /// [`fetch_all_de`](ExecutorExt::fetch_all_de).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the row does not match `T`; otherwise as [`Executor::fetch_optional`].
    async fn fetch_optional_de<T: DeserializeOwned + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<T>> {
        match self.fetch_optional(sql, params).await? {
            Some(row) => row.deserialize().map(Some),
            None => Ok(None),
        }
    }

    /// Runs the same statement once per parameter set, one after another, and returns the total
    /// rows affected. **Not atomic by itself**: it stops at the first failure and the sets before
    /// it stay applied, unless this executor is a [`Transaction`](crate::Transaction) (whose
    /// rollback then undoes them).
    ///
    /// For an all-or-nothing batch on a [`Database`](crate::Database), use
    /// [`Database::execute_many`](crate::Database::execute_many), which runs this inside a
    /// transaction of its own. (An `Executor` cannot begin a transaction, so this method cannot
    /// be atomic on a plain pool or connection; hence the different name.)
    ///
    /// The statement is prepared once (statement cache).
    ///
    /// # Errors
    ///
    /// The first failing execution's error; the sets before it have run.
    async fn execute_each(&self, sql: &str, param_sets: &[&[&dyn ToParam]]) -> Result<u64> {
        let mut total = 0;
        for params in param_sets {
            total += self.execute(sql, params).await?;
        }
        Ok(total)
    }

    /// Runs an `INSERT … RETURNING id` (or any statement returning one value) and returns the
    /// first column of its first row as `T`: `i64` for a `bigserial`/`identity` key,
    /// `uuid::Uuid` for a uuid key, any [`FromValue`] type. If `sql` has no `RETURNING` clause,
    /// ` RETURNING id` is appended.
    ///
    /// Rust has no default for a method's type parameter, so `T` comes from the binding
    /// (`let id: i64 = …`) or a turbofish where the value goes on as a parameter:
    ///
    /// ```no_run
    /// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
    /// use pgdbm::prelude::*;
    /// let id: i64 = db
    ///     .execute_and_return_id("INSERT INTO {{tables.users}} (email) VALUES ($1)", params!["a@b.c"])
    ///     .await?;
    /// let key = db
    ///     .execute_and_return_id::<uuid::Uuid>("INSERT INTO {{tables.tokens}} (user_id) VALUES ($1)", params![id])
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when nothing is returned, [`Error::Decode`] when the value is not a
    /// `T`; otherwise as [`ExecutorExt::fetch_value`].
    async fn execute_and_return_id<T: FromValue + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<T> {
        if contains_returning(sql) {
            self.fetch_value::<T>(sql, params).await
        } else {
            let sql = format!("{} RETURNING id", sql.trim_end().trim_end_matches(';'));
            self.fetch_value::<T>(&sql, params).await
        }
    }

    /// Sends a notification on `channel` with `payload` (`pg_notify`), scoped like a
    /// [`Listener`](crate::Listener)'s channels: on a handle or transaction with schema `todo`,
    /// channel `events` is the server's channel `todo.events`. Inside a transaction it is
    /// delivered when the transaction commits, and not at all if it rolls back; the server
    /// delivers a payload sent twice on one channel in one transaction only once.
    ///
    /// The payload is bound as a parameter (never part of the SQL text), at most 7999 bytes;
    /// it never appears in errors or logs, and a monitor recording parameters sees only its
    /// length.
    ///
    /// # Errors
    ///
    /// [`Error::Identifier`] naming the channel when it is not a valid identifier (or too long
    /// with the schema prefix); the server's error (e.g. a payload too long).
    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        let name = crate::listener::scoped_channel(self.schema(), channel)?;
        self.execute(
            crate::listener::NOTIFY_SQL,
            crate::params![name, payload.as_bytes()],
        )
        .await
        .map(drop)
    }
}

impl<E: Executor + ?Sized> ExecutorExt for E {}

/// The row of a statement that must return one: [`Error::RowNotFound`] naming `sql` otherwise.
pub(crate) fn required_row(row: Option<Row>, sql: &str) -> Result<Row> {
    row.ok_or_else(|| Error::RowNotFound {
        sql: truncate_sql(sql),
    })
}

fn contains_returning(sql: &str) -> bool {
    sql.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .any(|word| word.eq_ignore_ascii_case("returning"))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::{Executor, ExecutorExt, contains_returning};
    use crate::error::{Error, Result};
    use crate::row::Row;
    use crate::value::{Params, Value};

    /// Applies each `execute` at once (no transaction), refusing the parameter `0`.
    #[derive(Default)]
    struct Autocommit {
        applied: Mutex<Vec<i32>>,
    }

    #[async_trait]
    impl Executor for Autocommit {
        async fn execute(&self, _sql: &str, params: Params<'_>) -> Result<u64> {
            let Value::Int4(v) = *params[0].to_param() else {
                panic!("an int4 parameter");
            };
            if v == 0 {
                return Err(Error::Transaction("refused".into()));
            }
            self.applied.lock().unwrap().push(v);
            Ok(1)
        }
        async fn fetch_all(&self, _: &str, _: Params<'_>) -> Result<Vec<Row>> {
            unreachable!()
        }
        async fn fetch_optional(&self, _: &str, _: Params<'_>) -> Result<Option<Row>> {
            unreachable!()
        }
        async fn batch_execute(&self, _: &str) -> Result<()> {
            unreachable!()
        }
        fn fetch<'a>(
            &'a self,
            _: &str,
            _: Params<'a>,
        ) -> futures_util::stream::BoxStream<'a, Result<Row>> {
            unreachable!()
        }
    }

    /// `execute_each` is a plain loop: it stops at the first failure and keeps what ran before
    /// (the all-or-nothing `Database::execute_many` is checked by the conformance suite,
    /// `execute_many_is_atomic`).
    #[tokio::test]
    async fn execute_each_is_not_atomic() {
        let exec = Autocommit::default();
        let sql = "INSERT INTO t VALUES ($1)";
        let n = exec
            .execute_each(sql, &[crate::params![1i32], crate::params![2i32]])
            .await
            .unwrap();
        assert_eq!(n, 2);
        let sets = [
            crate::params![3i32],
            crate::params![0i32],
            crate::params![4i32],
        ];
        exec.execute_each(sql, &sets).await.expect_err("refused");
        assert_eq!(*exec.applied.lock().unwrap(), [1, 2, 3]);
    }

    #[test]
    fn returning_detection() {
        assert!(contains_returning("INSERT INTO t VALUES (1) RETURNING id"));
        assert!(contains_returning(
            "insert into t values (1)\nreturning\tpk"
        ));
        assert!(!contains_returning(
            "INSERT INTO returning_things VALUES (1)"
        ));
    }
}
