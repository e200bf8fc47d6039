//! pgbench: finding it, aiming it at the server, one `pgbench -S` run and its tps.

use std::process::Command;

use pgdbm::DatabaseConfig;

use super::cpu::cpu_seconds;
use super::settings::env_nonempty;
use super::{BENCH_DB, Result};

/// Host, port, user and password for pgbench (`-h -p -U`, `PGPASSWORD`), from the URL.
pub(super) struct PgbenchTarget {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) user: String,
    pub(super) password: Option<String>,
}

impl PgbenchTarget {
    /// From the server URL as pgdbm reads it (a Unix socket directory is a host starting with
    /// `/`; the user defaults to `$USER`).
    pub(super) fn from_config(config: &DatabaseConfig) -> Self {
        PgbenchTarget {
            host: config.host().to_owned(),
            port: config.port(),
            user: config.user().to_owned(),
            password: config.password().map(str::to_owned),
        }
    }

    /// A pgbench command aimed at the server. TLS is off, as in the two Rust clients, so that all
    /// three pay the same per-query transport cost.
    pub(super) fn command(&self, pgbench: &str) -> Command {
        let mut cmd = Command::new(pgbench);
        cmd.arg("-h")
            .arg(&self.host)
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-U")
            .arg(&self.user)
            .env("PGSSLMODE", "disable");
        if let Some(pw) = &self.password {
            cmd.env("PGPASSWORD", pw);
        }
        cmd
    }
}

/// `pgbench` if it runs, else `None`.
pub(super) fn find_pgbench() -> Option<String> {
    let exe = env_nonempty("PGBENCH").unwrap_or_else(|| "pgbench".to_owned());
    match Command::new(&exe).arg("--version").output() {
        Ok(o) if o.status.success() => {
            println!(
                "point_select: using {}",
                String::from_utf8_lossy(&o.stdout).trim()
            );
            Some(exe)
        }
        _ => None,
    }
}

/// Runs pgbench once and returns its tps (without initial connection time) and the client CPU
/// it used per transaction, in µs (Linux only).
pub(super) fn run_pgbench(
    exe: &str,
    target: &PgbenchTarget,
    clients: usize,
    secs: u64,
) -> Result<(f64, Option<f64>)> {
    run_pgbench_mode(exe, target, "prepared", clients, secs)
}

/// As [`run_pgbench`], with query mode `mode` (`-M prepared`, `-M extended`: unnamed
/// statements, what a transaction pooler can carry).
pub(super) fn run_pgbench_mode(
    exe: &str,
    target: &PgbenchTarget,
    mode: &str,
    clients: usize,
    secs: u64,
) -> Result<(f64, Option<f64>)> {
    let cpu_before = cpu_seconds();
    let out = target
        .command(exe)
        .args(["-S", "-M", mode, "-n"])
        .args(["-c", &clients.to_string()])
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &secs.to_string()])
        .arg(BENCH_DB)
        .output()
        .map_err(|e| format!("cannot run pgbench: {e}"))?;
    let cpu_after = cpu_seconds();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "pgbench -S -c {clients} failed ({}): {}{}",
            out.status,
            stdout.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    let tps =
        parse_tps(&stdout).ok_or_else(|| format!("no tps line in pgbench output:\n{stdout}"))?;
    let transactions = stdout
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|v| v.split('/').next()?.trim().parse::<f64>().ok());
    let cpu_us = match (cpu_before, cpu_after, transactions) {
        (Some(b), Some(a), Some(t)) if t > 0.0 => Some((a.1 - b.1) * 1e6 / t),
        _ => None,
    };
    Ok((tps, cpu_us))
}

/// `tps = 12345.678 (without initial connection time)` (PostgreSQL 14+); older pgbench printed
/// `(excluding connections establishing)`.
fn parse_tps(output: &str) -> Option<f64> {
    let line = output
        .lines()
        .find(|l| l.starts_with("tps = ") && l.contains("without initial connection time"))
        .or_else(|| {
            output
                .lines()
                .find(|l| l.starts_with("tps = ") && l.contains("excluding connections"))
        })?;
    line.trim_start_matches("tps = ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
