//! The overview page: every section, each read on its own (concurrently, each bounded by the
//! query timeout) so one failing query leaves the others showing.

use std::future::Future;
use std::time::{Duration, SystemTime};

use maud::{Markup, html};
use pgdbm::PoolStats;
use pgdbm::migrate::{HistoryEntry, MigrationState, MigrationStatus};
use pgdbm::monitor::StatementStats;
use pgdbm::monitor::{BlockingQuery, LongRunningQuery, MonitorMetrics, QueryRecord, TableSize};

use super::failure;
use crate::format::{ago, bytes, duration};
use crate::redact::{mask_literals, mask_secrets};
use crate::sampler::PoolSample;
use crate::statement_id::statement_id;
use crate::{Inner, chart};

type Section<T> = Result<T, String>;

/// How many recent slow statements are listed.
const RECENT_SLOW: usize = 20;

/// Everything the page shows, read at one moment.
pub(crate) struct Overview {
    now: SystemTime,
    window: Duration,
    pool: PoolStats,
    samples: Vec<PoolSample>,
    server_version: Section<String>,
    database: Option<String>,
    statements: Option<Statements>,
    migrations: Migrations,
    blocking: Section<Vec<BlockingQuery>>,
    long_running: Section<Vec<LongRunningQuery>>,
    long_running_threshold: Duration,
    tables: Vec<(String, Section<Vec<TableSize>>)>,
}

struct Statements {
    metrics: MonitorMetrics,
    by_total: Vec<StatementStats>,
    by_p95: Vec<StatementStats>,
    recent_slow: Vec<QueryRecord>,
    slow_threshold: Duration,
}

enum Migrations {
    /// Per registered module: its schema and its files' states with the ledger rows.
    Modules(Vec<ModuleMigrations>),
    /// No module registered: the ledger of the handle's schema, by module.
    Ledger(Section<Vec<HistoryEntry>>),
}

struct ModuleMigrations {
    name: String,
    schema: Option<String>,
    files: Section<(Vec<MigrationStatus>, Vec<HistoryEntry>)>,
}

/// `work` bounded by `limit`, its error as the text shown.
async fn bounded<T>(limit: Duration, work: impl Future<Output = pgdbm::Result<T>>) -> Section<T> {
    match tokio::time::timeout(limit, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {}", duration(limit))),
    }
}

impl Overview {
    pub(crate) async fn read(inner: &Inner) -> Overview {
        let db = &inner.db;
        let limit = inner.query_timeout;
        let mut schemas: Vec<Option<&str>> = vec![db.schema()];
        for m in &inner.modules {
            if !schemas.contains(&m.db.schema()) {
                schemas.push(m.db.schema());
            }
        }
        // A handful of schemas (one per module): read one after another.
        let tables = async {
            let mut out = Vec::new();
            for schema in &schemas {
                let handle = db.with_schema(*schema).unwrap_or_else(|_| db.clone());
                let name = schema.unwrap_or("current schema").to_owned();
                out.push((name, bounded(limit, handle.table_sizes()).await));
            }
            out
        };
        let (server_version, migrations, blocking, long_running, tables) = tokio::join!(
            bounded(limit, db.fetch_value::<String>("SHOW server_version", &[])),
            read_migrations(inner),
            bounded(limit, db.find_blocking_queries()),
            bounded(
                limit,
                db.find_long_running_queries(inner.long_running_threshold)
            ),
            tables,
        );
        let pool = db.pool_stats();
        let mut samples = inner.ring.snapshot();
        samples.push(PoolSample::read(db.pool()));
        Overview {
            now: SystemTime::now(),
            window: inner.window,
            pool,
            samples,
            server_version,
            database: inner.monitored.database_name().map(str::to_owned),
            statements: read_statements(inner),
            migrations,
            blocking,
            long_running,
            long_running_threshold: inner.long_running_threshold,
            tables,
        }
    }

    pub(crate) fn render(&self, base: &str) -> Markup {
        html! {
            (self.pool_section())
            (self.statements_section(base))
            (self.migrations_section())
            (self.activity_section())
            (self.tables_section())
            section #replicas {
                h2 { "Replica lag" }
                p class="muted" { "no replicas configured" }
            }
        }
    }

    fn pool_section(&self) -> Markup {
        let p = &self.pool;
        html! {
            section #pool {
                h2 { "Pool" }
                p class="figures" {
                    span { "server " b { @match &self.server_version {
                        Ok(v) => (v),
                        Err(_) => "unreachable",
                    } } }
                    @if let Some(db) = &self.database { span { "database " b { (db) } } }
                    span { "in use " b #pool-in-use { (p.in_use) } " / " (p.max_size) }
                    span { "open " b { (p.size) } }
                    span { "idle " b { (p.idle) } }
                    span { "waiting " b { (p.waiting) } }
                    span { "timeouts " b { (p.timed_out) } }
                }
                @if let Err(e) = &self.server_version { (failure("Reaching the server", e)) }
                (chart::pool_chart(&self.samples, self.window, self.now))
            }
        }
    }

    fn statements_section(&self, base: &str) -> Markup {
        html! {
            section #statements {
                h2 { "Statements" }
                @match &self.statements {
                    None => p class="muted" {
                        "This handle has no monitor: build the dashboard from the handle your \
                         requests run on, made with Database::monitored."
                    },
                    Some(s) => {
                        p class="figures" {
                            span { "statements " b { (s.metrics.total_queries) } }
                            span { "errors " b { (s.metrics.total_errors) } }
                            span { "slow " b { (s.metrics.slow_queries) } }
                            span { "time " b { (duration(s.metrics.total_time)) } }
                            span { "slow at " b { (duration(s.slow_threshold)) } }
                        }
                        h3 { "Slowest by total time" }
                        (statement_table("by-total", &s.by_total, base))
                        h3 { "Slowest by p95" }
                        (statement_table("by-p95", &s.by_p95, base))
                        h3 { "Recent slow statements" }
                        (slow_table(&s.recent_slow, base, self.now))
                    }
                }
            }
        }
    }

    fn migrations_section(&self) -> Markup {
        html! {
            section #migrations {
                h2 { "Migrations" }
                @match &self.migrations {
                    Migrations::Modules(modules) => {
                        @for m in modules { (module_migrations(m)) }
                    }
                    Migrations::Ledger(Err(e)) => (failure("Reading the ledger", e)),
                    Migrations::Ledger(Ok(rows)) if rows.is_empty() => {
                        p class="muted" { "no migrations applied in this schema" }
                    }
                    Migrations::Ledger(Ok(rows)) => (ledger_by_module(rows)),
                }
            }
        }
    }

    fn activity_section(&self) -> Markup {
        html! {
            section #activity {
                h2 { "Blocking queries" }
                @match &self.blocking {
                    Err(e) => (failure("Finding blocking queries", e)),
                    Ok(rows) if rows.is_empty() => p class="muted" { "no session is waiting for a lock" },
                    Ok(rows) => table #blocking {
                        tr { th { "blocked pid" } th { "waiting" } th { "statement" }
                             th { "blocking pid" } th { "state" } th { "its statement" } }
                        @for b in rows {
                            tr {
                                td class="num" { (b.blocked_pid) }
                                td class="num" { (duration(b.blocked_for)) }
                                td { code { (mask_literals(&b.blocked_query)) } }
                                td class="num" { (b.blocking_pid) }
                                td { (b.blocking_state.as_deref().unwrap_or("")) }
                                td { code { (mask_literals(&b.blocking_query)) } }
                            }
                        }
                    },
                }
                h2 { "Long-running queries" }
                p class="muted" { "running for at least " (duration(self.long_running_threshold))
                    "; string literals hidden" }
                @match &self.long_running {
                    Err(e) => (failure("Finding long-running queries", e)),
                    Ok(rows) if rows.is_empty() => p class="muted" { "none" },
                    Ok(rows) => table #long-running {
                        tr { th { "pid" } th { "for" } th { "state" } th { "waits on" }
                             th { "user" } th { "application" } th { "statement" } }
                        @for q in rows {
                            tr {
                                td class="num" { (q.pid) }
                                td class="num" { (duration(q.duration)) }
                                td { (q.state) }
                                td { (q.wait_event_type.as_deref().unwrap_or("")) }
                                td { (q.user.as_deref().unwrap_or("")) }
                                td { (q.application_name.as_deref().unwrap_or("")) }
                                td { code { (mask_literals(&q.query)) } }
                            }
                        }
                    },
                }
            }
        }
    }

    fn tables_section(&self) -> Markup {
        html! {
            section #tables {
                h2 { "Table sizes" }
                @for (schema, sizes) in &self.tables {
                    h3 { "schema " (schema) }
                    @match sizes {
                        Err(e) => (failure("Reading table sizes", e)),
                        Ok(rows) if rows.is_empty() => p class="muted" { "no tables" },
                        Ok(rows) => table class="table-sizes" {
                            tr { th { "table" } th class="num" { "size" } th class="num" { "live rows" }
                                 th class="num" { "dead rows" } th { "last vacuum" } th { "last analyze" } }
                            @for t in rows {
                                tr {
                                    td { (t.table) }
                                    td class="num" { (bytes(t.total_bytes)) }
                                    td class="num" { (t.live_rows) }
                                    td class="num" { (t.dead_rows) }
                                    td { (ago(t.last_vacuum.max(t.last_autovacuum), self.now)) }
                                    td { (ago(t.last_analyze.max(t.last_autoanalyze), self.now)) }
                                }
                            }
                        },
                    }
                }
            }
        }
    }
}

fn read_statements(inner: &Inner) -> Option<Statements> {
    let monitor = inner.monitored.monitor()?;
    let all = monitor.statements();
    let by_total: Vec<StatementStats> = all.iter().take(inner.statements_shown).cloned().collect();
    let mut by_p95 = all;
    by_p95.sort_by(|a, b| b.p95.cmp(&a.p95).then_with(|| a.sql.cmp(&b.sql)));
    by_p95.truncate(inner.statements_shown);
    let mut recent_slow = monitor.slow_queries();
    recent_slow.reverse();
    recent_slow.truncate(RECENT_SLOW);
    Some(Statements {
        metrics: monitor.metrics(),
        by_total,
        by_p95,
        recent_slow,
        slow_threshold: monitor.options().slow_query_threshold,
    })
}

async fn read_migrations(inner: &Inner) -> Migrations {
    let limit = inner.query_timeout;
    if inner.modules.is_empty() {
        return Migrations::Ledger(bounded(limit, inner.db.migrator().history(None)).await);
    }
    let mut modules = Vec::new();
    for m in &inner.modules {
        let migrator = m.db.migrator();
        let files = bounded(limit, async {
            let status = migrator.status(&m.name, &m.source).await?;
            let history = migrator.history(Some(&m.name)).await?;
            Ok((status, history))
        })
        .await;
        modules.push(ModuleMigrations {
            name: m.name.clone(),
            schema: m.db.schema().map(str::to_owned),
            files,
        });
    }
    Migrations::Modules(modules)
}

fn statement_table(id: &str, rows: &[StatementStats], base: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="muted" { "no statements recorded yet" }
        } @else {
            table id=(id) class="statements" {
                tr { th { "statement" } th class="num" { "calls" } th class="num" { "total" }
                     th class="num" { "mean" } th class="num" { "p95" } th class="num" { "max" }
                     th class="num" { "errors" } th { "" } }
                @for s in rows {
                    tr {
                        td { code class="sql" { (mask_secrets(&s.sql)) } }
                        td class="num" { (s.count) }
                        td class="num" { (duration(s.total)) }
                        td class="num" { (duration(s.mean)) }
                        td class="num" { (duration(s.p95)) }
                        td class="num" { (duration(s.max)) }
                        td class="num" { (s.errors) }
                        td { a class="plan" href=(format!("{base}/plan/{}", statement_id(&s.sql))) { "plan" } }
                    }
                }
            }
        }
    }
}

fn slow_table(rows: &[QueryRecord], base: &str, now: SystemTime) -> Markup {
    html! {
        @if rows.is_empty() {
            p class="muted" { "none" }
        } @else {
            table #slow class="statements" {
                tr { th { "when" } th { "module" } th { "schema" } th class="num" { "took" }
                     th { "statement" } th { "outcome" } th { "" } }
                @for r in rows {
                    tr {
                        td { (ago(Some(r.started_at), now)) }
                        td class="module" { (r.module.as_deref().unwrap_or("")) }
                        td { (r.schema.as_deref().unwrap_or("")) }
                        td class="num" { (duration(r.duration)) }
                        td { code class="sql" { (mask_secrets(&r.sql)) } }
                        td { @match &r.error {
                            None => span class="ok" { "ok" },
                            Some(e) => span class="error" { (e.code.as_deref().unwrap_or(e.variant)) },
                        } }
                        td { a class="plan" href=(format!("{base}/plan/{}", statement_id(&r.sql))) { "plan" } }
                    }
                }
            }
        }
    }
}

fn module_migrations(m: &ModuleMigrations) -> Markup {
    html! {
        div class="module-migrations" data-module=(m.name) {
            h3 { "module " span class="module" { (m.name) }
                 @if let Some(s) = &m.schema { span class="muted" { " · schema " (s) } } }
            @match &m.files {
                Err(e) => (failure("Reading the ledger", e)),
                Ok((files, history)) => {
                    @let count = |f: fn(&MigrationState) -> bool| files.iter().filter(|s| f(&s.state)).count();
                    p {
                        (count(|s| matches!(s, MigrationState::Applied))) " applied, "
                        span class=(if count(|s| matches!(s, MigrationState::Pending)) > 0 { "warn" } else { "" }) {
                            (count(|s| matches!(s, MigrationState::Pending))) " pending"
                        }
                        @let changed = count(|s| matches!(s, MigrationState::Changed { .. }));
                        @if changed > 0 { ", " span class="error" { (changed) " changed since applied" } }
                        @let missing = count(|s| matches!(s, MigrationState::MissingFromSource));
                        @if missing > 0 { ", " span class="warn" { (missing) " no longer in the source" } }
                    }
                    table class="migrations" {
                        tr { th { "file" } th { "state" } th { "applied" } th class="num" { "took" } }
                        @for f in files {
                            @let row = history.iter().rev().find(|h| h.filename == f.file);
                            tr {
                                td { (f.file) }
                                td { (state_name(&f.state)) }
                                td { (row.map_or("", |h| h.applied_at.as_str())) }
                                td class="num" { (row.and_then(|h| h.execution_time_ms).map(|ms| format!("{ms} ms")).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn state_name(state: &MigrationState) -> &'static str {
    match state {
        MigrationState::Applied => "applied",
        MigrationState::Pending => "pending",
        MigrationState::Changed { .. } => "changed since applied",
        MigrationState::MissingFromSource => "applied, no longer in the source",
        _ => "unknown",
    }
}

fn ledger_by_module(rows: &[HistoryEntry]) -> Markup {
    let mut modules: Vec<&str> = Vec::new();
    for r in rows {
        let name = r.module_name.as_deref().unwrap_or("(no module)");
        if !modules.contains(&name) {
            modules.push(name);
        }
    }
    html! {
        @for name in &modules {
            div class="module-migrations" data-module=(name) {
                h3 { "module " span class="module" { (name) } }
                table class="migrations" {
                    tr { th { "file" } th { "applied" } th { "by" } th class="num" { "took" } }
                    @for r in rows.iter().filter(|r| r.module_name.as_deref().unwrap_or("(no module)") == *name) {
                        tr {
                            td { (r.filename) }
                            td { (r.applied_at) }
                            td { (r.applied_by.as_deref().unwrap_or("")) }
                            td class="num" { (r.execution_time_ms.map(|ms| format!("{ms} ms")).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}
