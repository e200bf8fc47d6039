//! The report: the summary lines (ratios to raw and to pgbench) and how the per-round pgdbm/raw
//! ratios spread (median, range, 95 % interval).

/// One concurrency's results.
pub(super) struct Summary {
    pub(super) n: usize,
    pub(super) pgdbm_qps: f64,
    pub(super) raw_qps: f64,
    pub(super) pgbench_tps: Option<f64>,
    /// Per-round pgdbm/raw ratios.
    pub(super) ratios: Vec<f64>,
    /// pgdbm with multiplexing, and the shared raw clients (drivers that multiplex).
    pub(super) multiplexed_qps: Option<f64>,
    pub(super) shared_qps: Option<f64>,
}

/// Prints the summary: the ratios per concurrency, then one `point_select c=<N>: …` line each.
pub(super) fn print_summary(summary: &[Summary]) {
    println!();
    for row in summary {
        let Summary {
            n,
            pgdbm_qps,
            raw_qps,
            pgbench_tps,
            ratios,
            ..
        } = row;
        let mut vs = match pgbench_tps {
            Some(t) => format!(
                "raw/pgbench {:.2}, pgdbm/raw {:.2}",
                raw_qps / t,
                pgdbm_qps / raw_qps
            ),
            None => format!("pgdbm/raw {:.2}", pgdbm_qps / raw_qps),
        };
        vs.push_str(&RatioSpread::of(ratios).map_or_else(String::new, |r| r.describe()));
        if let (Some(m), Some(s)) = (row.multiplexed_qps, row.shared_qps) {
            vs.push_str(&format!(", multiplexed/shared {:.2}", m / s));
        }
        println!("c={n}: {vs}");
    }
    for row in summary {
        let (n, pgdbm_qps, raw_qps) = (row.n, row.pgdbm_qps, row.raw_qps);
        let to_pgbench = |qps: f64| {
            row.pgbench_tps
                .map_or_else(|| "n/a".to_owned(), |t| format!("{:.2}", qps / t))
        };
        let tps = row
            .pgbench_tps
            .map_or_else(|| "n/a".to_owned(), |t| format!("{t:.0}"));
        let ratio = to_pgbench(pgdbm_qps);
        match (row.multiplexed_qps, row.shared_qps) {
            (Some(m), Some(s)) => println!(
                "point_select c={n}: pgdbm {pgdbm_qps:.0} qps, multiplexed {m:.0} qps, raw {raw_qps:.0} qps, pgbench {tps} tps, pgdbm/pgbench {ratio}, multiplexed/pgbench {}, shared {s:.0} qps, multiplexed/shared {:.2}",
                to_pgbench(m),
                m / s
            ),
            _ => println!(
                "point_select c={n}: pgdbm {pgdbm_qps:.0} qps, raw {raw_qps:.0} qps, pgbench {tps} tps, pgdbm/pgbench {ratio}"
            ),
        }
    }
}

/// How the per-round pgdbm/raw ratios of one concurrency spread.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RatioSpread {
    median: f64,
    min: f64,
    max: f64,
    /// The 95 % interval of the geometric mean (Student's t on the logarithms), with 2 or more
    /// rounds.
    interval: Option<(f64, f64)>,
}

impl RatioSpread {
    /// `None` without ratios.
    fn of(ratios: &[f64]) -> Option<Self> {
        let mut sorted: Vec<f64> = ratios.iter().copied().filter(|r| *r > 0.0).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let k = sorted.len();
        let median = if k % 2 == 1 {
            sorted[k / 2]
        } else {
            (sorted[k / 2 - 1] + sorted[k / 2]) / 2.0
        };
        let interval = (k >= 2).then(|| {
            let logs: Vec<f64> = sorted.iter().map(|r| r.ln()).collect();
            let mean = logs.iter().sum::<f64>() / k as f64;
            let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (k - 1) as f64;
            let half = t_975(k - 1) * (var / k as f64).sqrt();
            ((mean - half).exp(), (mean + half).exp())
        });
        Some(RatioSpread {
            median,
            min: sorted[0],
            max: sorted[k - 1],
            interval,
        })
    }

    /// ` (per round: median 0.96, 0.90–1.01; 95 % interval 0.94–0.98)`.
    fn describe(&self) -> String {
        let interval = self.interval.map_or_else(String::new, |(lo, hi)| {
            format!("; 95 % interval {lo:.2}–{hi:.2}")
        });
        format!(
            " (per round: median {:.2}, {:.2}–{:.2}{interval})",
            self.median, self.min, self.max
        )
    }
}

/// The 97.5 % quantile of Student's t distribution with `df` degrees of freedom.
fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => TABLE[df - 1],
        31..=60 => 2.00,
        61..=120 => 1.98,
        _ => 1.96,
    }
}
