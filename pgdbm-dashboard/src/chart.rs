//! The pool chart: inline SVG drawn on the server from the samples, no script.
//!
//! Connections in use (filled area), open connections (line) and waiting tasks (red line)
//! against time, with the pool's maximum as a dashed line and as the top of the scale.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use maud::{Markup, PreEscaped, html};

use crate::sampler::PoolSample;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 10.0;
const RIGHT: f64 = 10.0;

/// The chart up to `now` over the time the samples cover, at least 10 s and at most `window`
/// (samples older than that are left out).
pub(crate) fn pool_chart(samples: &[PoolSample], window: Duration, now: SystemTime) -> Markup {
    let covered = samples
        .iter()
        .map(|s| now.duration_since(s.at).unwrap_or_default())
        .max()
        .unwrap_or_default();
    let window = covered.max(Duration::from_secs(10)).min(window);
    let start = now.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let shown: Vec<&PoolSample> = samples.iter().filter(|s| s.at >= start).collect();
    let max = shown
        .iter()
        .map(|s| s.max_size.max(s.size).max(s.in_use + s.waiting))
        .max()
        .unwrap_or(1)
        .max(1);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let window_secs = window.as_secs_f64().max(1.0);
    let x = |s: &PoolSample| {
        let age = now.duration_since(s.at).unwrap_or_default().as_secs_f64();
        LEFT + plot_w * (1.0 - (age / window_secs).min(1.0))
    };
    let y = |v: u32| TOP + plot_h * (1.0 - f64::from(v) / f64::from(max));
    let line = |value: &dyn Fn(&PoolSample) -> u32| {
        let mut points = String::new();
        for s in &shown {
            let _ = write!(points, "{:.1},{:.1} ", x(s), y(value(s)));
        }
        points.trim_end().to_owned()
    };
    let mut area = String::new();
    if let (Some(first), Some(last)) = (shown.first(), shown.last()) {
        let _ = write!(area, "{:.1},{:.1} ", x(first), y(0));
        area.push_str(&line(&|s| s.in_use));
        let _ = write!(area, " {:.1},{:.1}", x(last), y(0));
    }
    let pool_max = shown.last().map_or(0, |s| s.max_size);
    let minutes = window.as_secs() / 60;
    let span = if minutes >= 1 {
        format!("−{minutes} min")
    } else {
        format!("−{} s", window.as_secs())
    };
    let label = format!(
        "Pool connections over the last {}: {} samples, maximum {pool_max}",
        crate::format::duration(window),
        shown.len()
    );
    html! {
        svg #pool-chart class="chart" xmlns="http://www.w3.org/2000/svg"
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(label)
            data-samples=(shown.len()) {
            title { (label) }
            // Axes and scale.
            line x1=(LEFT) y1=(y(0)) x2=(WIDTH - RIGHT) y2=(y(0)) class="axis" {}
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(y(0)) class="axis" {}
            text x=(LEFT - 6.0) y=(y(0)) class="tick" text-anchor="end" { "0" }
            text x=(LEFT - 6.0) y=(y(max) + 4.0) class="tick" text-anchor="end" { (max) }
            text x=(LEFT) y=(HEIGHT - 6.0) class="tick" { (span) }
            text x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) class="tick" text-anchor="end" { "now" }
            @if pool_max > 0 {
                line x1=(LEFT) y1=(y(pool_max)) x2=(WIDTH - RIGHT) y2=(y(pool_max))
                    class="max" stroke-dasharray="4 3" {}
            }
            @if shown.is_empty() {
                text x=(WIDTH / 2.0) y=(HEIGHT / 2.0) text-anchor="middle" class="tick" {
                    "no samples yet"
                }
            } @else {
                polygon class="in-use" points=(area) {}
                polyline class="open" points=(line(&|s| s.size)) {}
                polyline class="waiting" points=(line(&|s| s.waiting)) {}
            }
        }
        p class="legend" {
            span class="key in-use" {} "in use "
            span class="key open" {} "open "
            span class="key waiting" {} "waiting "
            span class="key max" {} "maximum"
        }
    }
}

/// The chart's styles, for the page's `<style>`.
pub(crate) const CHART_CSS: PreEscaped<&str> = PreEscaped(
    ".chart{width:100%;max-width:720px;height:auto;background:#fff;border:1px solid #ddd}\
     .chart .axis{stroke:#888}.chart .tick{font-size:11px;fill:#555}\
     .chart .max{stroke:#999}.chart .in-use{fill:#9ecae1;stroke:#3182bd}\
     .chart .open{fill:none;stroke:#31a354;stroke-width:1.5}\
     .chart .waiting{fill:none;stroke:#de2d26;stroke-width:1.5}\
     .legend .key{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}\
     .key.in-use{background:#9ecae1}.key.open{background:#31a354}\
     .key.waiting{background:#de2d26}.key.max{background:#999}",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_samples_inside_the_window() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let sample = |ago: u64, in_use: u32| PoolSample {
            at: now - Duration::from_secs(ago),
            size: 4,
            in_use,
            idle: 4 - in_use,
            max_size: 10,
            waiting: 0,
        };
        let samples = [sample(900, 1), sample(60, 2), sample(0, 3)];
        let svg = pool_chart(&samples, Duration::from_secs(300), now).into_string();
        assert!(svg.contains("id=\"pool-chart\""), "{svg}");
        assert!(svg.contains("data-samples=\"2\""), "{svg}");
        assert!(svg.contains("<polyline class=\"open\""), "{svg}");
        let empty = pool_chart(&[], Duration::from_secs(300), now).into_string();
        assert!(empty.contains("no samples yet"), "{empty}");
    }
}
