//! The HTML: the layout every page shares, and the pages.

pub(crate) mod overview;
pub(crate) mod plan;

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The page's styles (no external resources: the page works offline and under a strict CSP).
const CSS: PreEscaped<&str> = PreEscaped(
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f6f6}\
     header{background:#223;color:#fff;padding:10px 20px}header a{color:#fff;text-decoration:none}\
     header nav a{margin-left:14px;font-size:13px;color:#cde}\
     main{padding:10px 20px 40px}section{background:#fff;border:1px solid #ddd;\
     border-radius:4px;padding:8px 16px 12px;margin:14px 0}\
     h2{font-size:17px;margin:6px 0 10px}h3{font-size:14px;margin:12px 0 6px}\
     table{border-collapse:collapse;width:100%;font-size:13px}\
     th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;vertical-align:top}\
     th{background:#fafafa}td.num,th.num{text-align:right;white-space:nowrap}\
     code,pre{font:12px/1.4 ui-monospace,monospace}pre{white-space:pre-wrap;\
     background:#fafafa;border:1px solid #eee;padding:8px;overflow:auto}\
     td code{white-space:pre-wrap;word-break:break-word}\
     .error{color:#a00}.muted{color:#777}.ok{color:#070}.warn{color:#a60}\
     .figures span{display:inline-block;margin-right:22px}.figures b{font-size:16px}",
);

/// A whole page: `title`, the navigation (links under `base`, where the router is mounted),
/// and `body`.
pub(crate) fn layout(base: &str, title: &str, body: Markup) -> Markup {
    let home = home(base);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · pgdbm" }
                style { (CSS) (crate::chart::CHART_CSS) }
            }
            body {
                header {
                    a href=(home) { b { "pgdbm" } " dashboard" }
                    nav {
                        a href=(format!("{home}#pool")) { "pool" }
                        a href=(format!("{home}#statements")) { "statements" }
                        a href=(format!("{home}#migrations")) { "migrations" }
                        a href=(format!("{home}#activity")) { "activity" }
                        a href=(format!("{home}#tables")) { "tables" }
                        a href=(format!("{home}#replicas")) { "replicas" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The overview's address: the mount point (axum matches a nested `/` there, not at
/// `mount/`), or `/` when the router is not nested.
pub(crate) fn home(base: &str) -> &str {
    if base.is_empty() { "/" } else { base }
}

/// A section's failure, in place of its content.
pub(crate) fn failure(what: &str, error: &str) -> Markup {
    html! { p class="error" { (what) " failed: " (error) } }
}
