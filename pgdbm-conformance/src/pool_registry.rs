//! The process-wide pool registry: a second pool to the same database and role is logged as a
//! `warn` (usually a mistake: modules should share one pool), as pgdbm for Python does.

use pgdbm::Result;

use crate::capture::CaptureSession;
use crate::ctx::Ctx;

/// Opening a second pool to the same database and role logs a `warn` naming the role and the
/// database; a pool of another role does not, and closing the second pool lets a third open
/// without counting it.
///
/// # Errors
///
/// Any unexpected error.
pub async fn second_pool_to_same_database_and_role_warns(ctx: &Ctx) -> Result<()> {
    // A role of this check's own, so other checks' pools (all of the test role) never match.
    let role = format!("pgdbm_reg_{}_{}", std::process::id(), ctx.schema);
    let role = &role[..role.len().min(63)];
    let quoted = pgdbm::quote_identifier(role);
    let _drop_role = ctx.cleanup_on_drop(format!("DROP ROLE IF EXISTS {quoted}"));
    ctx.pool
        .batch_execute(&format!("CREATE ROLE {quoted} LOGIN"))
        .await?;
    let config = ctx.config_with(|b| b.user(role).min_connections(0).max_connections(1))?;
    let warned = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("another connection pool") && l.contains(role))
            .count()
    };

    let capture = CaptureSession::open("second_pool_to_same_database_and_role_warns");
    let first = capture.run(ctx.connect(config.clone())).await?;
    assert_eq!(
        warned(&capture.lines()),
        0,
        "the first pool is not a mistake"
    );
    let second = capture.run(ctx.connect(config.clone())).await?;
    let lines = capture.lines();
    assert_eq!(warned(&lines), 1, "{lines:#?}");
    let line = lines
        .iter()
        .find(|l| l.contains("another connection pool") && l.contains(role))
        .expect("counted above");
    assert!(line.contains(config.database()), "{line}");
    assert!(line.contains("WARN"), "{line}");

    // Closed and dropped, the second no longer counts: a new one is again the second.
    second.close().await;
    drop(second);
    let third = capture.run(ctx.connect(config.clone())).await?;
    assert_eq!(warned(&capture.lines()), 2);
    third.close().await;
    first.close().await;
    Ok(())
}
