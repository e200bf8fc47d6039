//! Masking parameters for [`QueryRecord::params`](super::QueryRecord::params).

use crate::value::{Params, Value};

/// Characters of a string kept before it is shortened.
const KEEP_CHARS: usize = 16;

/// A short, masked description of a parameter value, as recorded with
/// [`MonitorOptions::record_params`](super::MonitorOptions::record_params):
///
/// * strings (and JSON) longer than 16 characters keep their first 16: `'abcdefghijklmnop…(40 chars)'`;
/// * bytes show only their length: `<bytea 1024 bytes>`;
/// * arrays only their type and length: `<integer[] 3 items>`;
/// * other values their short form and type: `42::integer`, `NULL`.
///
/// ```
/// use pgdbm::{Value, monitor::mask_value};
/// assert_eq!(mask_value(&Value::Bytea(vec![0; 10])), "<bytea 10 bytes>");
/// assert_eq!(mask_value(&Value::Int4(7)), "7::integer");
/// assert!(mask_value(&Value::Text("x".repeat(40))).ends_with("…(40 chars)'"));
/// ```
pub fn mask_value(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_owned(),
        Value::Text(s) => format!("'{}'", shorten(s)),
        Value::Bytea(b) => format!("<bytea {} bytes>", b.len()),
        Value::Json(j) => format!("'{}'::json", shorten(&j.to_string())),
        Value::Array { element, items } => {
            format!("<{}[] {} items>", element.sql_name(), items.len())
        }
        other => {
            let json = other.to_json();
            let short = match &json {
                serde_json::Value::String(s) => shorten(s),
                j => shorten(&j.to_string()),
            };
            format!("{short}::{}", other.type_description())
        }
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(KEEP_CHARS) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…({} chars)", &s[..cut], s.chars().count()),
    }
}

pub(crate) fn mask_params(params: Params<'_>) -> Vec<String> {
    params.iter().map(|p| mask_value(&p.to_param())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Kind;

    #[test]
    fn masks() {
        assert_eq!(mask_value(&Value::Null), "NULL");
        assert_eq!(mask_value(&Value::Text("short".into())), "'short'");
        let long = "secret-value-that-is-long-enough";
        let masked = mask_value(&Value::Text(long.into()));
        assert_eq!(masked, "'secret-value-tha…(32 chars)'");
        assert!(!masked.contains(long));
        assert_eq!(mask_value(&Value::Bytea(vec![1, 2, 3])), "<bytea 3 bytes>");
        assert_eq!(mask_value(&Value::Int8(-5)), "-5::bigint");
        assert_eq!(mask_value(&Value::Bool(true)), "true::boolean");
        let arr = Value::Array {
            element: Kind::Int4,
            items: vec![Value::Int4(1), Value::Null],
        };
        assert_eq!(mask_value(&arr), "<integer[] 2 items>");
        assert_eq!(
            shorten("ééééééééééééééééééé"),
            "éééééééééééééééé…(19 chars)"
        );
    }
}
