//! Capturing `tracing` output (of every task and thread) while a check runs, for the checks
//! that secrets never show up in logs; and unique secret values to look for.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::instrument::WithSubscriber;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Everything `tracing` emitted while a [`CaptureSession`] was open: one line per span (name and
/// fields), per late span field and per event (level, target and fields).
#[derive(Default)]
struct Captured {
    lines: Mutex<Vec<String>>,
    active: AtomicUsize,
    next_id: AtomicU64,
}

struct Line<'a>(&'a mut String);

impl Visit for Line<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str(&format!(" {}={value}", field.name()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={value:?}", field.name()));
    }
}

/// The subscriber: always interested (so callsites are never cached as disabled), recording
/// only while a session is open.
#[derive(Clone)]
struct Collector(Arc<Captured>);

impl Collector {
    fn push(&self, line: String) {
        self.0
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }
    fn recording(&self) -> bool {
        self.0.active.load(Ordering::Acquire) > 0
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.0.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        if self.recording() {
            let m = span.metadata();
            let mut line = format!("span {} {} {}:", m.level(), m.target(), m.name());
            span.record(&mut Line(&mut line));
            self.push(line);
        }
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        if self.recording() {
            let mut line = format!("span #{} record:", span.into_u64());
            values.record(&mut Line(&mut line));
            self.push(line);
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        if self.recording() {
            let m = event.metadata();
            let mut line = format!("event {} {}:", m.level(), m.target());
            event.record(&mut Line(&mut line));
            self.push(line);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// The process-wide collector, installed as the global default subscriber on first use; `None`
/// when the process already has a global subscriber.
fn global_collector() -> Option<Collector> {
    static GLOBAL: OnceLock<Option<Collector>> = OnceLock::new();
    GLOBAL
        .get_or_init(|| {
            let collector = Collector(Arc::default());
            tracing::subscriber::set_global_default(collector.clone())
                .ok()
                .map(|()| collector)
        })
        .clone()
}

/// Captures all `tracing` output while open: of every task and thread (background connects,
/// connection tasks…) through the global collector, or — when the process has a global
/// subscriber of its own — of the future given to [`CaptureSession::run`] only (said on
/// standard error).
pub(crate) struct CaptureSession {
    collector: Collector,
    global: bool,
    start: usize,
}

impl CaptureSession {
    pub(crate) fn open(check: &str) -> Self {
        let (collector, global) = match global_collector() {
            Some(c) => (c, true),
            None => {
                eprintln!(
                    "{check}: a global tracing subscriber is already installed; capturing only \
                     the check's own task, not background tasks"
                );
                (Collector(Arc::default()), false)
            }
        };
        collector.0.active.fetch_add(1, Ordering::AcqRel);
        let start = collector
            .0
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        CaptureSession {
            collector,
            global,
            start,
        }
    }

    pub(crate) async fn run<T>(&self, fut: impl Future<Output = T>) -> T {
        if self.global {
            fut.await
        } else {
            fut.with_subscriber(self.collector.clone()).await
        }
    }

    /// The lines captured since the session opened (other sessions' included).
    pub(crate) fn lines(&self) -> Vec<String> {
        self.collector
            .0
            .lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(self.start..)
            .unwrap_or_default()
            .to_vec()
    }
}

impl Drop for CaptureSession {
    fn drop(&mut self) {
        self.collector.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A value unique to this process and call, for secrets that must not show up anywhere.
pub(crate) fn unique_token(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{what}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
