//! Per-call bounds ([`Database::with_timeout`](crate::Database::with_timeout),
//! [`Transaction::with_timeout`](crate::Transaction::with_timeout)): the client-side bound of
//! one call and the server-side `SET LOCAL statement_timeout` of a bounded transaction. See
//! [the crate docs' "Timeouts"](crate#timeouts) for how they fit with the configured ones.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Runs `work` (one call of a handle, `sql` its text) bounded by `limit`: past it, the future is
/// dropped — which cancels a statement the server runs — and [`Error::Timeout`] is returned. A
/// server cancel (`57014`) that comes after `limit` has passed (the `statement_timeout` a bounded
/// transaction set) is reported as [`Error::Timeout`] too, so one bound gives one error.
pub(crate) async fn bounded<T>(
    limit: Option<Duration>,
    sql: &str,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(limit) = limit else {
        return work.await;
    };
    let start = Instant::now();
    match tokio::time::timeout(limit, work).await {
        Ok(Err(e)) if e.code() == Some("57014") && start.elapsed() >= limit => {
            Err(Error::timeout(limit, sql))
        }
        Ok(result) => result,
        Err(_) => Err(Error::timeout(limit, sql)),
    }
}

/// `SET LOCAL statement_timeout` for `limit`, in whole milliseconds rounded up (0 would turn the
/// server's bound off).
pub(crate) fn set_local_statement_timeout(limit: Duration) -> String {
    let ms = limit.as_micros().div_ceil(1000).max(1);
    format!("SET LOCAL statement_timeout = {ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expiry_is_a_typed_timeout() {
        let limit = Duration::from_millis(10);
        let err = bounded(Some(limit), "SELECT pg_sleep(1)", async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await
        .expect_err("bounded");
        assert!(err.is_timeout() && err.is_query_canceled(), "{err}");
        assert!(matches!(err, Error::Timeout { limit: l, .. } if l == limit));
        assert!(err.to_string().contains("SELECT pg_sleep(1)"), "{err}");
        assert_eq!(bounded(None, "", async { Ok(3) }).await.unwrap(), 3);
        assert_eq!(bounded(Some(limit), "", async { Ok(4) }).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn a_late_server_cancel_is_the_same_timeout() {
        let limit = Duration::from_millis(5);
        let server_cancel = || Error::from(crate::DbError::new("57014", "canceling statement"));
        let late = bounded(Some(Duration::from_millis(1)), "q", async {
            tokio::time::sleep(limit).await;
            Err::<(), _>(server_cancel())
        })
        .await;
        // The client bound ran out first, or the server's cancel arrived after it.
        assert!(late.expect_err("bounded").is_timeout());
        let early = bounded(Some(Duration::from_secs(60)), "q", async {
            Err::<(), _>(server_cancel())
        })
        .await;
        let early = early.expect_err("server cancel");
        assert!(!early.is_timeout() && early.is_query_canceled());
    }

    #[test]
    fn server_bound_in_milliseconds() {
        assert_eq!(
            set_local_statement_timeout(Duration::from_micros(1)),
            "SET LOCAL statement_timeout = 1"
        );
        assert_eq!(
            set_local_statement_timeout(Duration::from_millis(1500)),
            "SET LOCAL statement_timeout = 1500"
        );
        assert_eq!(
            set_local_statement_timeout(Duration::from_micros(2001)),
            "SET LOCAL statement_timeout = 3"
        );
    }
}
