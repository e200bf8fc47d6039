//! Client CPU from `/proc` (this process, and the pgbench children it waited for).

use std::process::Command;

/// Clock ticks per second of `/proc/self/stat`.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// CPU seconds (user + system) used so far by this process, all threads, and by its children
/// that were waited for (pgbench). `None` where `/proc` is not available.
pub(super) fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, starting with field 3 (state).
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 2..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    let ticks = clock_ticks();
    Some((
        (field(14)? + field(15)?) / ticks,
        (field(16)? + field(17)?) / ticks,
    ))
}

/// ", 12.3 µs client CPU/query" when known.
pub(super) fn cpu_note(cpu_us: Option<f64>, per: &str) -> String {
    cpu_us.map_or_else(String::new, |us| format!(", {us:.1} µs client CPU/{per}"))
}
