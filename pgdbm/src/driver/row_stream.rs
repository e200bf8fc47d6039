//! [`row_stream`]: a stream of rows written as one async block, for the drivers' and the core's
//! [`Executor::fetch`](crate::Executor::fetch).
//!
//! A statement that streams holds its connection (and the guards that decide what happens to it
//! when the stream is dropped) for as long as rows come. Written as an async block, the borrow of
//! the connection lives inside the block's own state, so no self-referential struct is needed:
//! the block sends each row into a small bounded buffer ([`STREAM_BUFFER`] rows), and the stream
//! polls the block itself — no task is spawned — whenever the buffer is empty. The block
//! therefore runs only as fast as the consumer reads, client memory stays bounded, and dropping
//! the stream drops the block at its current await, with the guards' usual effect (the running
//! statement is cancelled, see [`cancel`](super::cancel)).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{BoxStream, Stream};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::row::Row;

/// Rows a [`row_stream`] reads ahead of its consumer, at most.
pub const STREAM_BUFFER: usize = 32;

/// Where the block of a [`row_stream`] sends its rows.
#[derive(Debug)]
pub struct RowSender(mpsc::Sender<Row>);

impl RowSender {
    /// Hands `row` to the consumer; waits while [`STREAM_BUFFER`] rows are waiting to be read.
    pub async fn send(&self, row: Row) {
        // The receiver lives as long as the block (both are owned by the stream), so the send
        // cannot fail while the block runs.
        let _ = self.0.send(row).await;
    }
}

/// A stream of the rows `produce` sends, then of its error if it returns one. See the
/// [module docs](self).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures_util::TryStreamExt;
/// use pgdbm::driver::{Columns, new_column, new_row, row_stream};
/// use pgdbm::{Row, Value};
/// let columns: Columns = vec![new_column("n", "int4")].into();
/// let stream = row_stream(move |tx| async move {
///     for n in 0..100 {
///         tx.send(new_row(columns.clone(), vec![Value::Int4(n)])).await;
///     }
///     Ok(())
/// });
/// let rows: Vec<Row> = stream.try_collect().await.unwrap();
/// assert_eq!(rows.len(), 100);
/// # }
/// ```
pub fn row_stream<'a, F, Fut>(produce: F) -> BoxStream<'a, Result<Row>>
where
    F: FnOnce(RowSender) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'a,
{
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    Box::pin(Generated {
        producer: Some(Box::pin(produce(RowSender(tx)))),
        rx,
        error: None,
    })
}

struct Generated<'a> {
    /// The block; `None` once it returned.
    producer: Option<Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>>,
    rx: mpsc::Receiver<Row>,
    /// The block's error, yielded after the rows it sent before it.
    error: Option<Error>,
}

impl Stream for Generated<'_> {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Row>>> {
        let this = &mut *self;
        loop {
            if let Ok(row) = this.rx.try_recv() {
                return Poll::Ready(Some(Ok(row)));
            }
            let Some(producer) = this.producer.as_mut() else {
                return Poll::Ready(this.error.take().map(Err));
            };
            match producer.as_mut().poll(cx) {
                Poll::Ready(result) => {
                    // Dropping the block drops its sender: what it sent is still in `rx`.
                    this.producer = None;
                    this.error = result.err();
                }
                Poll::Pending => {
                    // The block waits for the server or for room in the buffer; it may have
                    // sent rows before it did.
                    return match this.rx.try_recv() {
                        Ok(row) => Poll::Ready(Some(Ok(row))),
                        Err(_) => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::StreamExt;

    use super::*;
    use crate::row::Column;
    use crate::value::Value;

    fn row(n: i32) -> Row {
        Row::new(vec![Column::new("n", "int4")].into(), vec![Value::Int4(n)])
    }

    #[tokio::test]
    async fn rows_then_the_error_in_order() {
        let stream = row_stream(|tx| async move {
            for n in 0..3 {
                tx.send(row(n)).await;
            }
            Err(Error::query("SELECT", "broke", None))
        });
        let items: Vec<_> = stream.collect().await;
        assert_eq!(items.len(), 4);
        for (n, item) in items[..3].iter().enumerate() {
            assert_eq!(item.as_ref().unwrap().get::<i32>(0).unwrap(), n as i32);
        }
        assert!(items[3].is_err());
    }

    #[tokio::test]
    async fn the_block_runs_only_as_far_as_the_consumer_reads() {
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let mut stream = row_stream(move |tx| async move {
            for n in 0..10_000 {
                tx.send(row(n)).await;
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        for _ in 0..5 {
            stream.next().await.unwrap().unwrap();
        }
        assert!(sent.load(Ordering::Relaxed) <= STREAM_BUFFER + 5);
        drop(stream);
        assert!(sent.load(Ordering::Relaxed) <= STREAM_BUFFER + 5);
    }
}
