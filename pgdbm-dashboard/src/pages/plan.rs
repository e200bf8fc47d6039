//! The plan page of one recorded statement.

use maud::{Markup, html};
use pgdbm::monitor::Explain;

use crate::redact::mask_secrets;

/// The statement (as shown everywhere on the page), then its plan or why there is none.
pub(crate) fn render(
    base: &str,
    sql: &str,
    schema: Option<&str>,
    plan: &Result<Explain, String>,
) -> Markup {
    html! {
        section #plan {
            h2 { "Plan" }
            p { a href=(format!("{}#statements", super::home(base))) { "← statements" } }
            h3 { "Statement" @if let Some(s) = schema { span class="muted" { " · schema " (s) } } }
            pre class="sql" { (mask_secrets(sql)) }
            p class="muted" {
                "A generic plan: EXPLAIN of the prepared statement with plan_cache_mode = \
                 force_generic_plan, so parameters appear as $1, $2…; the statement was not run."
            }
            @match plan {
                Ok(explain) => {
                    h3 { "Summary" }
                    p #plan-summary { code { (explain.summary()) } }
                    h3 { "Plan (JSON)" }
                    pre #plan-json {
                        (serde_json::to_string_pretty(&explain.plan).unwrap_or_default())
                    }
                }
                Err(e) => p class="error" #plan-error { "No plan: " (e) },
            }
        }
    }
}
