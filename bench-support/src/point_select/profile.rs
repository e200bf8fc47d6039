//! `PGDBM_BENCH_PROFILE=raw|pgdbm`: one client's point selects inside [`profile_loop`], for
//! callgrind (`--toggle-collect='*profile_loop*'`; keep that function's name).

use super::driver::PgdbmTarget;
use super::pgbench::{PgbenchTarget, find_pgbench};
use super::settings::env_nonempty;
use super::setup::prepare_database;
use super::{ACCOUNTS, Driver, PointSelect, Result};

/// `PGDBM_BENCH_PROFILE`: `client` (`raw` or `pgdbm`) on one connection runs
/// `PGDBM_BENCH_QUERIES` point selects in [`profile_loop`], after a warm-up outside it.
pub(super) fn profile<D: Driver>(
    driver: &D,
    client: &str,
    bench_url: &str,
    admin_url: &str,
    target: &PgbenchTarget,
) -> Result<()> {
    let queries = match env_nonempty("PGDBM_BENCH_QUERIES") {
        None => 2000,
        Some(s) => s
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("PGDBM_BENCH_QUERIES={s:?}: expected a number >= 1"))?,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(prepare_database::<D>(
        admin_url,
        bench_url,
        target,
        find_pgbench().as_deref(),
    ))?;
    let sum = match client {
        "raw" => {
            let raw = rt.block_on(driver.open_raw(1))?;
            profile_loop(&rt, &raw, 200)?;
            let sum = profile_loop(&rt, &raw, queries)?;
            rt.block_on(raw.close());
            sum
        }
        "pgdbm" => {
            let pgdbm = rt.block_on(PgdbmTarget::open::<D>(bench_url, 1))?;
            profile_loop(&rt, &pgdbm, 200)?;
            let sum = profile_loop(&rt, &pgdbm, queries)?;
            rt.block_on(pgdbm.close());
            sum
        }
        other => {
            return Err(format!("PGDBM_BENCH_PROFILE={other:?}: expected raw or pgdbm").into());
        }
    };
    println!("profile: {client}, {queries} point selects (sum of balances {sum})");
    Ok(())
}

/// The profiled part: `queries` point selects one after another, with ids spread over the table.
#[inline(never)]
fn profile_loop<T: PointSelect>(
    rt: &tokio::runtime::Runtime,
    target: &T,
    queries: u32,
) -> Result<i64> {
    rt.block_on(async {
        let mut sum = 0i64;
        for i in 0..queries {
            let aid = 1 + (i.wrapping_mul(7919) % ACCOUNTS as u32) as i32;
            sum += i64::from(target.select(aid).await?);
        }
        Ok(sum)
    })
}
