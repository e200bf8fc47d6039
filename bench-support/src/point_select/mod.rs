//! The driver-independent half of the `point_select` benches of `pgdbm-driver-tokio-postgres` and
//! `pgdbm-driver-sqlx`: settings, database preparation (through pgdbm on the bench's driver, and
//! pgbench), the pgbench runs, the timed loops and the report. Each bench depends on this crate
//! (a dev-dependency), calls [`main`] and supplies a [`Driver`]: its raw baseline and pgdbm's
//! pool on that driver.
//!
//! The database is `pgdbm_bench` at pgbench scale 10 on the server named by `PGDBM_TEST_URL`,
//! else `DATABASE_URL`, else `postgresql://$USER@localhost:5432/`. It is created (from a plain
//! connection to `postgres`) and initialised with `pgbench -i -s 10 --quiet` when it or its
//! `pgbench_accounts` (1 000 000 rows) is missing.
//!
//! For each concurrency N (default 1, 8 and 32) three clients are measured (five for a driver
//! whose pgdbm pool multiplexes, [`Driver::MULTIPLEXES`]):
//!
//! 1. pgbench: `pgbench -S -M prepared -c N -j min(N,2) -T <secs> -n` (the reference: C, libpq,
//!    one prepared statement per connection), its `tps = … (without initial connection time)`;
//! 2. raw: the driver's own pool of N connections running [`RAW_SQL`] (see each bench);
//! 3. pgdbm: the driver's pgdbm pool of N connections shared by a `Database` handle scoped to
//!    `public`, one `db.fetch_value::<i32>("SELECT abalance FROM {{tables.pgbench_accounts}}
//!    WHERE aid = $1", params![aid])` per query (acquire per query, template expansion, statement
//!    cache, `Value` conversion and row decode included);
//! 4. multiplexed: the same with `multiplexing = true` (`multiplexed_connections` at its default,
//!    the number of CPUs; the N exclusive connections are there too, for statements that need
//!    one — none here);
//! 5. shared: the pipelining ceiling, as many raw clients as `multiplexed_connections` shared by
//!    the N tasks (round-robin, the statement prepared once per client).
//!
//! In 2 and 3, N tasks each loop over random ids (1..=1 000 000) until the slice ends;
//! qps = completed queries / elapsed time. Both pools have min = max = N, all N connections open
//! before measuring, and get a short warm-up (which also prepares the statement on every
//! connection) before they are timed. All three connect over the same transport, without TLS.
//!
//! The phases are interleaved: each phase of `<secs>` is cut into rounds of about 2 s, run as
//! pgbench, raw, pgdbm, pgbench, pgdbm, raw, … (the clients after pgbench rotate every round) and each
//! result is the total over its rounds. On a small shared machine the throughput drifts by ±20 %
//! within a minute; three back-to-back 10 s phases would turn that drift into a difference
//! between the clients, interleaving spreads it over all three, and swapping the order cancels
//! a drift within a round. Each round also gives one pgdbm/raw ratio of two neighbouring slices;
//! the summary shows their median and range and a 95 % interval of their (geometric) mean, so a
//! run says how far its pgdbm/raw figure can be trusted. The pools are opened for each slice
//! (connecting is not timed) and closed after it, so that at most N client connections exist at
//! a time, as with pgbench. A first 2 s warm-up fills the buffer cache.
//!
//! Each line also shows the client CPU per query (this process for raw and pgdbm, the pgbench
//! child for pgbench, from `/proc`): on a machine where client and server share the cores, client
//! CPU is server CPU lost.
//!
//! Environment:
//!
//! * `PGDBM_BENCH_SECS`: seconds per phase (default 10);
//! * `PGDBM_BENCH_ROUNDS`: rounds per phase (default secs/2; 1 = one block per client, in the
//!   order pgbench, raw, pgdbm; the interval needs 2 or more);
//! * `PGDBM_BENCH_WARMUP_SECS`: pool warm-up before each slice (default 0.5, 0 = none);
//! * `PGDBM_BENCH_CONCURRENCY`: e.g. `1,8,32` (the default);
//! * `PGDBM_BENCH_WORKERS`: tokio worker threads (default 1, see `DEFAULT_WORKERS`);
//! * `PGBENCH`: the pgbench executable (default `pgbench` on `PATH`). Without it the pgbench
//!   results are `n/a`;
//! * `PGDBM_BENCH_PROFILE=raw|pgdbm`: instead of the benchmark, one client on one connection
//!   runs `PGDBM_BENCH_QUERIES` point selects (default 2000) one after another on a
//!   current-thread runtime, inside `profile_loop` — for counting instructions, which unlike
//!   throughput does not depend on what else the machine is doing:
//!
//!   ```text
//!   PGDBM_BENCH_PROFILE=pgdbm PGDBM_BENCH_QUERIES=2000 valgrind --tool=callgrind \
//!       --toggle-collect='*profile_loop*' target/release/deps/point_select-<hash>
//!   ```
//!
//!   Instructions per query = (the total at 4000 queries − the total at 2000) / 2000: the
//!   runtime, the connection task and the allocator included, start-up excluded.
//!
//! * `PGDBM_BENCH_POOLER=0`: skips the `pooler` phase (see `pooler.rs`: pgdbm with
//!   `pooler = transaction` and `pgbench -M extended`, both through one PgBouncer in transaction
//!   mode, run after the main phases when `pgbouncer` is installed).
//!
//! The last lines are one summary per concurrency:
//! `point_select c=<N>: pgdbm <qps> qps, raw <qps> qps, pgbench <tps> tps, pgdbm/pgbench <ratio>`,
//! with multiplexing
//! `point_select c=<N>: pgdbm <qps> qps, multiplexed <qps> qps, raw <qps> qps, pgbench <tps> tps,
//! pgdbm/pgbench <r>, multiplexed/pgbench <r>, shared <qps> qps, multiplexed/shared <r>`,
//! then the pooler phase's:
//! `point_select pooler c=<N>: pgdbm <qps> qps, pgbench -M extended <tps> tps, pgdbm/pgbench <r>`.

mod cpu;
mod driver;
mod pgbench;
mod pooler;
mod profile;
mod report;
mod run;
mod settings;
mod setup;
mod timed;

pub use driver::{Driver, NoShared, PointSelect};

/// The database the benchmark owns.
pub const BENCH_DB: &str = "pgdbm_bench";
/// pgbench scale factor.
const SCALE: i64 = 10;
/// Rows of `pgbench_accounts` at [`SCALE`]; ids are `1..=ACCOUNTS`.
const ACCOUNTS: i64 = 100_000 * SCALE;
/// The statement of the raw baselines: pgdbm's (`driver.rs`), expanded.
pub const RAW_SQL: &str = "SELECT abalance FROM \"public\".pgbench_accounts WHERE aid = $1";

/// Any error of the bench.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The bench's result type.
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Runs the bench with driver `D` and exits with status 1 on an error.
pub fn main<D: Driver>() {
    if let Err(e) = run::run::<D>() {
        eprintln!("point_select: error: {}", with_sources(&*e));
        std::process::exit(1);
    }
}

/// An error and its causes: `error connecting to server: Connection refused (os error 111)`.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
