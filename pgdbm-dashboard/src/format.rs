//! How figures are written on the page.

use std::time::{Duration, SystemTime};

/// `850 µs`, `12.3 ms`, `1.50 s`, `2 min 05 s`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 0.001 {
        format!("{} µs", d.as_micros())
    } else if secs < 1.0 {
        format!("{:.1} ms", secs * 1000.0)
    } else if secs < 60.0 {
        format!("{secs:.2} s")
    } else {
        format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// `512 B`, `8.0 kB`, `1.2 MB` (powers of 1024, as `pg_size_pretty`).
pub(crate) fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n.abs() < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// How long ago `at` was, from `now`: `12 s ago`, `3 min ago`, `5 h ago`, `2 d ago`; `never`.
pub(crate) fn ago(at: Option<SystemTime>, now: SystemTime) -> String {
    let Some(at) = at else {
        return "never".to_owned();
    };
    let secs = now.duration_since(at).unwrap_or_default().as_secs();
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1.50 s");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 05 s");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8192), "8.0 kB");
        assert_eq!(bytes(1_300_000), "1.2 MB");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100_000);
        assert_eq!(ago(None, now), "never");
        assert_eq!(ago(Some(now - Duration::from_secs(12)), now), "12 s ago");
        assert_eq!(ago(Some(now - Duration::from_secs(7200)), now), "2 h ago");
    }
}
