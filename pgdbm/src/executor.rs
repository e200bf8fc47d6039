//! The [`Executor`] seam (runs SQL) and [`ExecutorExt`], the conveniences written once on top of it.

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result, truncate_sql};
use crate::from_row::FromRow;
use crate::row::Row;
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
    /// (`Option<T>` to accept `NULL`).
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row, [`Error::Decode`] when the value does not fit
    /// `T`; otherwise as [`Executor::fetch_optional`].
    async fn fetch_value<T: FromValue + Send>(&self, sql: &str, params: Params<'_>) -> Result<T> {
        required_row(self.fetch_optional(sql, params).await?, sql)?.get::<T>(0)
    }

    /// Runs a statement and maps every row onto `T` with serde (fields named like columns).
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when a row does not match `T`; otherwise as [`Executor::fetch_all`].
    async fn fetch_all_as<T: DeserializeOwned + Send>(
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

    /// Runs a statement and maps its first row onto `T` with serde.
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when there is no row, [`Error::Decode`] when it does not match `T`.
    async fn fetch_one_as<T: DeserializeOwned + Send>(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<T> {
        self.fetch_one(sql, params).await?.deserialize()
    }

    /// Runs a statement and maps its first row, if any, onto `T` with serde.
    ///
    /// # Errors
    ///
    /// [`Error::Decode`] when the row does not match `T`; otherwise as [`Executor::fetch_optional`].
    async fn fetch_optional_as<T: DeserializeOwned + Send>(
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

    /// Runs an `INSERT … RETURNING id` (or any statement returning one integer) and returns the
    /// value as `i64`. If `sql` has no `RETURNING` clause, ` RETURNING id` is appended.
    ///
    /// # Errors
    ///
    /// [`Error::RowNotFound`] when nothing is returned; otherwise as [`ExecutorExt::fetch_value`].
    async fn execute_and_return_id(&self, sql: &str, params: Params<'_>) -> Result<i64> {
        if contains_returning(sql) {
            self.fetch_value::<i64>(sql, params).await
        } else {
            let sql = format!("{} RETURNING id", sql.trim_end().trim_end_matches(';'));
            self.fetch_value::<i64>(&sql, params).await
        }
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
