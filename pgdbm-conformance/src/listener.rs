//! LISTEN/NOTIFY: a [`Listener`] receives every notification of its channels in order while
//! connected, reconnects and says so after its backend is ended, stops at `unlisten`, keeps two
//! modules' channels of the same name apart, and loses nothing when `recv` is dropped at any
//! await; `notify` in a transaction is delivered on commit only.
//!
//! Every check scopes its channels to its own schema (unique per check), so checks running in
//! parallel on one server never see each other's notifications.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt;
use pgdbm::prelude::*;
use pgdbm::{Error, Listener, ListenerEvent, MonitorOptions, Notification, Result};

use crate::Ctx;
use crate::cancellation::poll_then_drop;
use crate::support::wait_until;

/// How long a check waits for an event that must come (far above any healthy delivery).
const PATIENCE: Duration = Duration::from_secs(20);

/// The next event, failing the check when none comes within [`PATIENCE`].
async fn next_event(listener: &mut Listener) -> Result<ListenerEvent> {
    match tokio::time::timeout(PATIENCE, listener.recv()).await {
        Ok(event) => event,
        Err(_) => panic!("no event within {PATIENCE:?}"),
    }
}

/// The next event, which must be a notification.
async fn next_notification(listener: &mut Listener) -> Result<Notification> {
    match next_event(listener).await? {
        ListenerEvent::Notification(n) => Ok(n),
        other => panic!("expected a notification, got {other:?}"),
    }
}

/// Asserts the next notification is `payload` on `channel`.
async fn expect(listener: &mut Listener, channel: &str, payload: &str) -> Result<()> {
    let n = next_notification(listener).await?;
    assert_eq!(
        (n.channel.as_str(), n.payload.as_str()),
        (channel, payload),
        "unexpected notification"
    );
    Ok(())
}

/// 10 000 notifications on 4 channels, sent by 4 sessions at once, all arrive, each channel's in
/// the order sent; a batch committed by one transaction arrives in exactly its order.
pub async fn listener_receives_every_notification_in_order(ctx: &Ctx) -> Result<()> {
    const CHANNELS: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
    const PER_CHANNEL: usize = 2_500;
    let mut listener = ctx.db.listener().await?;
    for channel in CHANNELS {
        listener.listen(channel).await?;
    }
    let mut senders = Vec::new();
    for channel in CHANNELS {
        let db = ctx.db.clone();
        senders.push(tokio::spawn(async move {
            for i in 0..PER_CHANNEL {
                db.notify(channel, &i.to_string()).await?;
            }
            Ok::<_, Error>(())
        }));
    }
    let mut next: HashMap<String, usize> = HashMap::new();
    for _ in 0..CHANNELS.len() * PER_CHANNEL {
        let n = next_notification(&mut listener).await?;
        let expected = next.entry(n.channel.clone()).or_default();
        assert_eq!(
            n.payload,
            expected.to_string(),
            "channel {}: out of order or lost",
            n.channel
        );
        assert!(n.process_id > 0);
        *expected += 1;
    }
    for sender in senders {
        sender.await.expect("sender panicked")?;
    }
    for channel in CHANNELS {
        assert_eq!(next.get(channel), Some(&PER_CHANNEL), "{channel}");
    }

    // One transaction, channels interleaved: delivered at commit, in the order sent.
    let scoped: Vec<String> = CHANNELS
        .iter()
        .map(|c| format!("{}.{c}", ctx.schema))
        .collect();
    ctx.db
        .execute(
            "SELECT pg_notify(($1::text[])[1 + i % 4], i::text) FROM generate_series(0, 999) AS i",
            params![scoped],
        )
        .await?;
    for i in 0..1000 {
        expect(&mut listener, CHANNELS[i % 4], &i.to_string()).await?;
    }
    Ok(())
}

/// After `pg_terminate_backend` of the listener's backend, `Reconnected` comes, the channels are
/// listened on again by a new backend, and later notifications arrive.
pub async fn listener_reconnects_after_its_backend_is_ended(ctx: &Ctx) -> Result<()> {
    let mut listener = ctx.db.listener().await?;
    listener.listen("events").await?;
    listener.listen("other").await?;
    ctx.db.notify("events", "before").await?;
    expect(&mut listener, "events", "before").await?;

    let old = listener.backend_pid().expect("connected");
    let ended: bool = ctx
        .pool
        .fetch_value("SELECT pg_terminate_backend($1, 5000)", params![old])
        .await?;
    assert!(ended, "the listener's backend did not exit");
    match next_event(&mut listener).await? {
        ListenerEvent::Reconnected => {}
        other => panic!("expected Reconnected, got {other:?}"),
    }
    let new = listener.backend_pid().expect("reconnected");
    assert_ne!(new, old);
    assert_eq!(listener.channels(), ["events", "other"]);

    ctx.db.notify("other", "after 1").await?;
    ctx.db.notify("events", "after 2").await?;
    expect(&mut listener, "other", "after 1").await?;
    expect(&mut listener, "events", "after 2").await?;
    Ok(())
}

/// `unlisten` stops delivery at once, even of a notification sent just before it.
pub async fn listener_unlisten_stops_delivery(ctx: &Ctx) -> Result<()> {
    let mut listener = ctx.db.listener().await?;
    listener.listen("a").await?;
    listener.listen("b").await?;
    ctx.db.notify("a", "sent before unlisten").await?;
    listener.unlisten("a").await?;
    assert_eq!(listener.channels(), ["b"]);
    ctx.db.notify("a", "sent after unlisten").await?;
    ctx.db.notify("b", "marker").await?;
    expect(&mut listener, "b", "marker").await?;
    // Listening again works.
    listener.listen("a").await?;
    ctx.db.notify("a", "again").await?;
    expect(&mut listener, "a", "again").await?;
    Ok(())
}

/// Two modules (schemas) listening on `events` each get their own; an unscoped `events` reaches
/// neither. The server's channel of schema `s`, channel `events` is `s.events`.
pub async fn listener_channels_of_two_modules_do_not_collide(ctx: &Ctx) -> Result<()> {
    let first = ctx.db.with_schema(Some(&format!("{}_one", ctx.schema)))?;
    let second = ctx.db.with_schema(Some(&format!("{}_two", ctx.schema)))?;
    let mut one = first.listener().await?;
    let mut two = Listener::from_database(&second).await?;
    assert_eq!(one.schema(), first.schema());
    one.listen("events").await?;
    two.listen("events").await?;

    second.notify("events", "for two").await?;
    first.notify("events", "for one").await?;
    ctx.db
        .with_schema(None)?
        .notify("events", "unscoped")
        .await?;
    let raw = format!("{}_one.events", ctx.schema);
    ctx.pool
        .execute("SELECT pg_notify($1, 'raw')", params![raw])
        .await?;
    first.notify("events", "end").await?;
    second.notify("events", "end").await?;

    expect(&mut one, "events", "for one").await?;
    expect(&mut one, "events", "raw").await?;
    expect(&mut one, "events", "end").await?;
    // The listener is also a `Stream` of the same events.
    for payload in ["for two", "end"] {
        match tokio::time::timeout(PATIENCE, two.next()).await {
            Ok(Some(Ok(ListenerEvent::Notification(n)))) => {
                assert_eq!(
                    (n.channel.as_str(), n.payload.as_str()),
                    ("events", payload)
                );
            }
            other => panic!("expected {payload:?} from the stream, got {other:?}"),
        }
    }
    Ok(())
}

/// The payload is a parameter: never in the SQL text, and a monitor recording parameters sees
/// only its length.
pub async fn notify_payload_is_never_recorded(ctx: &Ctx) -> Result<()> {
    let mut listener = ctx.db.listener().await?;
    listener.listen("events").await?;
    let db = ctx
        .db
        .monitored(MonitorOptions::default().record_params(true));
    let payload = "s3cret-payload-nobody-may-log ' \\ \"; DROP";
    db.notify("events", payload).await?;
    expect(&mut listener, "events", payload).await?;
    let monitor = db.monitor().expect("monitored");
    let history = monitor.history();
    assert_eq!(history.len(), 1);
    let record = format!("{:?}", history[0]);
    assert!(!record.contains("s3cret"), "{record}");
    assert!(!history[0].sql.contains("s3cret"));
    let params = history[0].params.clone().unwrap_or_default();
    assert_eq!(params.len(), 2, "{params:?}");
    assert!(
        params[1].contains(&format!("{} bytes", payload.len())),
        "{params:?}"
    );
    Ok(())
}

/// `notify` in a transaction (also through `&dyn Executor`) is delivered when it commits, and
/// never when it rolls back.
pub async fn notify_in_transaction_is_delivered_on_commit(ctx: &Ctx) -> Result<()> {
    let mut listener = ctx.db.listener().await?;
    listener.listen("events").await?;

    let tx = ctx.db.begin().await?;
    tx.notify("events", "committed").await?;
    let exec: &dyn Executor = &tx;
    exec.notify("events", "committed via dyn").await?;
    // Sent after, delivered first: the transaction's are not out yet.
    ctx.db.notify("events", "autocommit").await?;
    expect(&mut listener, "events", "autocommit").await?;
    tx.commit().await?;
    expect(&mut listener, "events", "committed").await?;
    expect(&mut listener, "events", "committed via dyn").await?;

    let tx = ctx.db.begin().await?;
    tx.notify("events", "rolled back").await?;
    tx.rollback().await?;
    ctx.db
        .transaction(|tx| async move {
            tx.notify("events", "closure").await?;
            Ok::<_, Error>(())
        })
        .await?;
    expect(&mut listener, "events", "closure").await?;
    Ok(())
}

/// A channel that is not an identifier is a typed error naming it, from `listen`, `unlisten`
/// and `notify`; nothing is sent.
pub async fn listener_refuses_bad_channel_names(ctx: &Ctx) -> Result<()> {
    let listener = ctx.db.listener().await?;
    for bad in ["bad-name", "x\"; DROP TABLE t; --", "", "1abc"] {
        for err in [
            listener.listen(bad).await.expect_err("refused"),
            listener.unlisten(bad).await.expect_err("refused"),
            ctx.db.notify(bad, "p").await.expect_err("refused"),
        ] {
            match &err {
                Error::Identifier { kind, value, .. } => {
                    assert_eq!((*kind, value.as_str()), ("channel", bad));
                }
                other => panic!("expected Error::Identifier, got {other:?}"),
            }
        }
    }
    // Valid alone, too long with the schema prefix.
    let long = "c".repeat(63 - ctx.schema.len());
    let err = listener.listen(&long).await.expect_err("too long scoped");
    assert!(err.to_string().contains("schema prefix"), "{err}");
    assert!(listener.channels().is_empty());
    Ok(())
}

/// A listener opened from a config (no pool) uses its settings — its `application_name` shows
/// its backend — and closes its connection when dropped.
pub async fn listener_from_config_closes_on_drop(ctx: &Ctx) -> Result<()> {
    let app = format!("pgdbm_listen_{}", std::process::id());
    let config = ctx.config_with(|b| b.application_name(&app).schema(&ctx.schema))?;
    let mut listener =
        Listener::with_connector((ctx.notifications)(&config)?, config.schema()).await?;
    listener.listen("events").await?;
    let pid = listener.backend_pid().expect("connected");
    let name: String = ctx
        .pool
        .fetch_value(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            params![pid],
        )
        .await?;
    assert_eq!(name, app);
    ctx.db.notify("events", "hello").await?;
    expect(&mut listener, "events", "hello").await?;

    drop(listener);
    let gone = wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let n: i64 = ctx
                .pool
                .fetch_value(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                    params![pid],
                )
                .await?;
            Ok(n == 0)
        },
    )
    .await?;
    assert!(gone, "the dropped listener's backend {pid} is still there");
    Ok(())
}

/// `recv` dropped after any number of polls loses no notification and leaves the listener
/// working; `listen` dropped after its first poll still completes.
pub async fn cancelled_listener_recv_loses_nothing(ctx: &Ctx) -> Result<()> {
    let mut listener = ctx.db.listener().await?;
    listener.listen("events").await?;
    for polls in 0..12 {
        let payload = format!("n{polls}");
        // Sent while `recv` is being polled: delivered to this future or kept for the next.
        let sender = {
            let db = ctx.db.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(polls * 2)).await;
                db.notify("events", &payload).await
            })
        };
        let got = poll_then_drop(listener.recv(), polls as usize, Duration::from_millis(3)).await;
        sender.await.expect("sender panicked")?;
        let n = match got {
            Some(event) => match event? {
                ListenerEvent::Notification(n) => n,
                other => panic!("expected a notification, got {other:?}"),
            },
            None => next_notification(&mut listener).await?,
        };
        assert_eq!(n.payload, payload, "dropped after {polls} polls");
    }

    // `listen` dropped after its first poll: the command still runs.
    for polls in 1..4 {
        let channel = format!("late{polls}");
        let _ = poll_then_drop(listener.listen(&channel), polls, Duration::ZERO).await;
        let listed = wait_until(Duration::from_secs(10), Duration::from_millis(5), || {
            let listed = listener.channels().contains(&channel);
            async move { Ok(listed) }
        })
        .await?;
        assert!(
            listed,
            "listen dropped after {polls} polls did not complete"
        );
        ctx.db.notify(&channel, "hi").await?;
        expect(&mut listener, &channel, "hi").await?;
    }
    Ok(())
}

/// When a whole round of reconnect attempts fails, `recv` yields the connect error and the
/// listener keeps trying: once connects work again, `Reconnected` comes and notifications
/// arrive. (The listener's role is refused login, then allowed again.)
pub async fn listener_reports_a_failed_reconnect_and_recovers(ctx: &Ctx) -> Result<()> {
    let role = format!("pgdbm_listen_{}_{}", std::process::id(), ctx.schema);
    let role = &role[..role.len().min(63)];
    let quoted = pgdbm::quote_identifier(role);
    let _drop_role = ctx.cleanup_on_drop(format!("DROP ROLE IF EXISTS {quoted}"));
    ctx.pool
        .batch_execute(&format!("CREATE ROLE {quoted} LOGIN"))
        .await?;
    let config = ctx.config_with(|b| {
        b.user(role)
            .schema(&ctx.schema)
            .retry(pgdbm::RetryPolicy::new(
                2,
                Duration::from_millis(10),
                2.0,
                Duration::from_millis(200),
            ))
    })?;
    let mut listener =
        Listener::with_connector((ctx.notifications)(&config)?, config.schema()).await?;
    listener.listen("events").await?;

    ctx.pool
        .batch_execute(&format!("ALTER ROLE {quoted} NOLOGIN"))
        .await?;
    let pid = listener.backend_pid().expect("connected");
    ctx.pool
        .fetch_value::<bool>("SELECT pg_terminate_backend($1, 5000)", params![pid])
        .await?;
    match tokio::time::timeout(PATIENCE, listener.recv()).await {
        Ok(Err(e @ Error::Connect { .. })) => {
            assert_eq!(
                e.kind(),
                Some(pgdbm::ErrorKind::InvalidAuthorization),
                "{e}"
            );
        }
        other => panic!("expected the failed reconnect as Error::Connect, got {other:?}"),
    }
    assert_eq!(listener.backend_pid(), None);

    ctx.pool
        .batch_execute(&format!("ALTER ROLE {quoted} LOGIN"))
        .await?;
    loop {
        match next_event(&mut listener).await {
            Ok(ListenerEvent::Reconnected) => break,
            // Rounds that failed before the role could log in again.
            Err(Error::Connect { .. }) => continue,
            other => panic!("expected Reconnected, got {other:?}"),
        }
    }
    ctx.db.notify("events", "back").await?;
    expect(&mut listener, "events", "back").await?;
    Ok(())
}

/// A listener is refused when the config says a transaction pooler is in front (its `LISTEN`
/// would end with the pooler's transaction): a typed error naming the mode and `direct_url`,
/// before any connection is made. With the config's direct connection it works.
pub async fn listener_refuses_a_transaction_pooler(ctx: &Ctx) -> Result<()> {
    let pooled = ctx.config_with(|b| {
        b.pooler(pgdbm::Pooler::Transaction).direct_url(format!(
            "host='{}' port={}",
            ctx.direct.host(),
            ctx.direct.port()
        ))
    })?;
    let refused = Listener::with_connector((ctx.notifications)(&pooled)?, Some(&ctx.schema)).await;
    let err = match refused {
        Err(e @ Error::Pooler { .. }) => e,
        Err(other) => panic!("expected Error::Pooler, got {other:?}"),
        Ok(_) => panic!("a listener must not run through a transaction pooler"),
    };
    let text = err.to_string();
    assert!(text.contains("transaction"), "{text}");
    assert!(text.contains("direct_url"), "{text}");
    let direct = pooled.direct_config().expect("direct_url given").clone();
    let listener =
        Listener::with_connector((ctx.notifications)(&direct)?, Some(&ctx.schema)).await?;
    listener.listen("events").await?;
    Ok(())
}
