//! The settings read from the environment (`PGDBM_TEST_URL`/`DATABASE_URL`, `PGDBM_BENCH_*`)
//! and the server URL turned into the bench's and the admin database's.

use std::process::Command;

use super::Result;

/// Tokio worker threads. Measured on the 2-core machine this was written on, where PostgreSQL
/// shares the cores: one and two workers give the same throughput within noise (±3 %), but two
/// cost 1.5–2 µs more client CPU per query at c=8 and c=32 (cross-thread wake-ups and work
/// stealing between each client task and its connection task), CPU the server then lacks when
/// the machine is busy. Override with `PGDBM_BENCH_WORKERS`.
const DEFAULT_WORKERS: usize = 1;

/// What the environment asks for.
pub(super) struct Settings {
    /// Base server URL (its database part is replaced).
    pub(super) url: String,
    /// Where `url` came from, for messages.
    pub(super) url_source: &'static str,
    pub(super) secs: u64,
    pub(super) warmup_secs: f64,
    /// Each phase is split into this many slices, run pgbench, raw, pgdbm, pgbench, pgdbm, raw, …
    pub(super) rounds: u64,
    pub(super) concurrency: Vec<usize>,
    pub(super) workers: usize,
}

pub(super) fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The current OS user, as libpq would default to.
fn current_user() -> String {
    if let Some(u) = env_nonempty("USER").or_else(|| env_nonempty("LOGNAME")) {
        return u;
    }
    Command::new("id")
        .arg("-un")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "postgres".to_owned())
}

impl Settings {
    pub(super) fn from_env() -> Result<Self> {
        let (url, url_source) = match (env_nonempty("PGDBM_TEST_URL"), env_nonempty("DATABASE_URL"))
        {
            (Some(u), _) => (u, "PGDBM_TEST_URL"),
            (None, Some(u)) => (u, "DATABASE_URL"),
            (None, None) => (
                format!("postgresql://{}@localhost:5432/postgres", current_user()),
                "default",
            ),
        };
        let secs = match env_nonempty("PGDBM_BENCH_SECS") {
            None => 10,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("PGDBM_BENCH_SECS={s:?}: expected whole seconds >= 1"))?,
        };
        let warmup_secs = match env_nonempty("PGDBM_BENCH_WARMUP_SECS") {
            None => 0.5,
            Some(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|w| w.is_finite() && *w >= 0.0)
                .ok_or_else(|| format!("PGDBM_BENCH_WARMUP_SECS={s:?}: expected seconds >= 0"))?,
        };
        let rounds = match env_nonempty("PGDBM_BENCH_ROUNDS") {
            // Slices of about 2 s.
            None => (secs / 2).max(1),
            Some(s) => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|&r| r >= 1)
                .ok_or_else(|| format!("PGDBM_BENCH_ROUNDS={s:?}: expected a number >= 1"))?
                .min(secs),
        };
        let concurrency = match env_nonempty("PGDBM_BENCH_CONCURRENCY") {
            None => vec![1, 8, 32],
            Some(s) => s
                .split(',')
                .map(|p| p.trim().parse::<usize>().ok().filter(|&n| n >= 1))
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    format!("PGDBM_BENCH_CONCURRENCY={s:?}: expected e.g. 1,8,32 (each >= 1)")
                })?,
        };
        let workers = match env_nonempty("PGDBM_BENCH_WORKERS") {
            None => DEFAULT_WORKERS,
            Some(s) => s
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| format!("PGDBM_BENCH_WORKERS={s:?}: expected a number >= 1"))?,
        };
        Ok(Settings {
            url,
            url_source,
            secs,
            warmup_secs,
            rounds,
            concurrency,
            workers,
        })
    }
}

/// `url` with its database replaced by `db` (user, password, host, port and query kept).
pub(super) fn with_database(url: &str, db: &str) -> Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("the server URL must look like postgresql://user@host:port/db".into());
    };
    if scheme != "postgres" && scheme != "postgresql" {
        return Err(format!("unsupported URL scheme {scheme:?} (expected postgresql://)").into());
    }
    let (main, query) = match rest.find('?') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = main.split('/').next().unwrap_or_default();
    Ok(format!("{scheme}://{authority}/{db}{query}"))
}
