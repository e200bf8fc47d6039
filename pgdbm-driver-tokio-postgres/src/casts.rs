//! The types a statement's text casts its parameters to, read from the text alone (no server
//! round trip), for the statements behind a transaction pooler (`declare.rs`).
//!
//! When every use of `$n` in the statement is `$n::T` for one built-in type `T`, the server would
//! infer `T` for the parameter (a cast of an undeclared parameter makes it that type), so the
//! driver can declare `T` itself and bind the value by pgdbm's rules for `T`, exactly as when the
//! server is asked: `$1::money` from an integer in the currency's smallest unit, `$1::numeric`
//! from a float as its shortest decimal, `$1::inet` checked by the client, `$1::timestamptz`
//! refusing a `NaiveDateTime`.
//!
//! String literals, quoted identifiers, comments and dollar-quoted bodies are skipped. A cast to a
//! type not in the list below (a schema-qualified or quoted name, an enum, a domain, `int ARRAY`,
//! an interval with fields) says nothing, and nor does a parameter used once without a cast:
//! those parameters are declared from their values.

use pgdbm::driver::sql_scan::{self, Opaque, find, skip_opaque};
use tokio_postgres::types::Type;

/// What the text says about one parameter.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Never,
    Cast(Type),
    /// Used without a cast, or cast to different or unknown types.
    Other,
}

/// For each of the `count` parameters of `sql`: the built-in type every use of it is cast to, if
/// there is one.
pub(crate) fn cast_types(sql: &str, count: usize) -> Vec<Option<Type>> {
    let mut seen = vec![Seen::Never; count];
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if let Some(Opaque::Comment(next) | Opaque::Quoted(next)) = skip_opaque(bytes, i) {
            i = next;
            continue;
        }
        let b = bytes[i];
        match b {
            b'$' if i > 0 && is_ident_byte(bytes[i - 1]) => i += 1,
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                let index = sql[start..end].parse::<usize>().unwrap_or(0);
                let (cast, next) = cast_after(bytes, end);
                if let Some(slot) = index.checked_sub(1).and_then(|k| seen.get_mut(k)) {
                    *slot = match (&*slot, cast) {
                        (Seen::Never, Some(ty)) => Seen::Cast(ty),
                        (Seen::Cast(old), Some(ty)) if *old == ty => Seen::Cast(ty),
                        _ => Seen::Other,
                    };
                }
                i = next;
            }
            _ if is_ident_byte(b) => {
                while i < bytes.len() && is_ident_byte(bytes[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    seen.into_iter()
        .map(|s| match s {
            Seen::Cast(ty) => Some(ty),
            _ => None,
        })
        .collect()
}

/// The built-in type of a `::T` at `at` (after a parameter), and where the scan goes on.
fn cast_after(bytes: &[u8], at: usize) -> (Option<Type>, usize) {
    let mut i = skip_space(bytes, at);
    if !bytes[i..].starts_with(b"::") {
        return (None, at);
    }
    i = skip_space(bytes, i + 2);
    let mut words = Vec::new();
    let (mut word, mut next) = ident(bytes, i);
    if word == "pg_catalog" && bytes.get(next) == Some(&b'.') {
        (word, next) = ident(bytes, next + 1);
    }
    if word.is_empty() || bytes.get(next).is_some_and(|&b| b == b'.' || b == b'"') {
        return (None, next);
    }
    words.push(word);
    // Multi-word names (`double precision`, `timestamp with time zone`…) and a type modifier.
    loop {
        let at_space = skip_space(bytes, next);
        if bytes.get(at_space) == Some(&b'(') {
            match find(bytes, at_space, b")") {
                Some(close) => next = close + 1,
                None => return (None, bytes.len()),
            }
            continue;
        }
        let (word, after) = ident(bytes, at_space);
        if matches!(
            word.as_str(),
            "precision" | "varying" | "with" | "without" | "time" | "zone"
        ) {
            words.push(word);
            next = after;
            continue;
        }
        // `int ARRAY`, an interval's fields: not a name this reads.
        if matches!(
            word.as_str(),
            "array" | "year" | "month" | "day" | "hour" | "minute" | "second"
        ) {
            return (None, after);
        }
        break;
    }
    let mut dimensions = 0;
    loop {
        let at_space = skip_space(bytes, next);
        if bytes.get(at_space) != Some(&b'[') {
            break;
        }
        match find(bytes, at_space, b"]") {
            Some(close) => {
                dimensions += 1;
                next = close + 1;
            }
            None => return (None, bytes.len()),
        }
    }
    let scalar = builtin(&words.join(" "));
    let ty = match dimensions {
        0 => scalar,
        _ => scalar.and_then(|s| array_of(&s)),
    };
    (ty, next)
}

/// The built-in types a cast is read for, by the names (and aliases) SQL spells them.
fn builtin(name: &str) -> Option<Type> {
    Some(match name {
        "bool" | "boolean" => Type::BOOL,
        "int2" | "smallint" => Type::INT2,
        "int4" | "int" | "integer" => Type::INT4,
        "int8" | "bigint" => Type::INT8,
        "float4" | "real" => Type::FLOAT4,
        "float8" | "double precision" => Type::FLOAT8,
        "numeric" | "decimal" => Type::NUMERIC,
        "money" => Type::MONEY,
        "text" => Type::TEXT,
        "varchar" | "character varying" => Type::VARCHAR,
        "bytea" => Type::BYTEA,
        "uuid" => Type::UUID,
        "json" => Type::JSON,
        "jsonb" => Type::JSONB,
        "date" => Type::DATE,
        "time" | "time without time zone" => Type::TIME,
        "timestamp" | "timestamp without time zone" => Type::TIMESTAMP,
        "timestamptz" | "timestamp with time zone" => Type::TIMESTAMPTZ,
        "interval" => Type::INTERVAL,
        "inet" => Type::INET,
        "cidr" => Type::CIDR,
        "macaddr" => Type::MACADDR,
        "macaddr8" => Type::MACADDR8,
        "oid" => Type::OID,
        _ => return None,
    })
}

/// The array type of a built-in scalar type (`declare.rs` uses it for values too).
pub(crate) fn array_of(scalar: &Type) -> Option<Type> {
    let pairs = [
        (Type::BOOL, Type::BOOL_ARRAY),
        (Type::INT2, Type::INT2_ARRAY),
        (Type::INT4, Type::INT4_ARRAY),
        (Type::INT8, Type::INT8_ARRAY),
        (Type::FLOAT4, Type::FLOAT4_ARRAY),
        (Type::FLOAT8, Type::FLOAT8_ARRAY),
        (Type::NUMERIC, Type::NUMERIC_ARRAY),
        (Type::MONEY, Type::MONEY_ARRAY),
        (Type::TEXT, Type::TEXT_ARRAY),
        (Type::VARCHAR, Type::VARCHAR_ARRAY),
        (Type::BYTEA, Type::BYTEA_ARRAY),
        (Type::UUID, Type::UUID_ARRAY),
        (Type::JSON, Type::JSON_ARRAY),
        (Type::JSONB, Type::JSONB_ARRAY),
        (Type::DATE, Type::DATE_ARRAY),
        (Type::TIME, Type::TIME_ARRAY),
        (Type::TIMESTAMP, Type::TIMESTAMP_ARRAY),
        (Type::TIMESTAMPTZ, Type::TIMESTAMPTZ_ARRAY),
        (Type::INTERVAL, Type::INTERVAL_ARRAY),
        (Type::INET, Type::INET_ARRAY),
        (Type::CIDR, Type::CIDR_ARRAY),
        (Type::MACADDR, Type::MACADDR_ARRAY),
        (Type::MACADDR8, Type::MACADDR8_ARRAY),
        (Type::OID, Type::OID_ARRAY),
    ];
    pairs
        .into_iter()
        .find(|(s, _)| s == scalar)
        .map(|(_, array)| array)
}

/// The lowercased identifier at `at` (empty if there is none) and the position after it.
fn ident(bytes: &[u8], at: usize) -> (String, usize) {
    let mut end = at;
    if bytes
        .get(at)
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        while end < bytes.len() && is_ident_byte(bytes[end]) {
            end += 1;
        }
    }
    (
        String::from_utf8_lossy(&bytes[at..end]).to_ascii_lowercase(),
        end,
    )
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// A byte of a word: an identifier byte, or `$` (which PostgreSQL allows after the first).
fn is_ident_byte(b: u8) -> bool {
    sql_scan::is_ident_byte(b) || b == b'$'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Option<Type> {
        cast_types(sql, 1).remove(0)
    }

    #[test]
    fn casts_of_every_use() {
        assert_eq!(one("SELECT $1::money"), Some(Type::MONEY));
        assert_eq!(one("SELECT $1 :: Int4 + $1::int"), Some(Type::INT4));
        assert_eq!(one("SELECT $1::int8[]::text"), Some(Type::INT8_ARRAY));
        assert_eq!(one("SELECT $1::int4[][]"), Some(Type::INT4_ARRAY));
        assert_eq!(one("SELECT $1::numeric(10, 2)"), Some(Type::NUMERIC));
        assert_eq!(
            one("SELECT $1::timestamp with time zone"),
            Some(Type::TIMESTAMPTZ)
        );
        assert_eq!(one("SELECT $1::double precision"), Some(Type::FLOAT8));
        assert_eq!(one("SELECT $1::pg_catalog.inet"), Some(Type::INET));
        assert_eq!(
            cast_types("SELECT $2::date, $1::uuid", 2),
            [Some(Type::UUID), Some(Type::DATE)]
        );
    }

    #[test]
    fn anything_else_says_nothing() {
        assert_eq!(one("SELECT $1"), None);
        assert_eq!(one("SELECT $1::int, $1"), None);
        assert_eq!(one("SELECT $1::int, $1::int8"), None);
        assert_eq!(one("SELECT $1::s.positive"), None);
        assert_eq!(one("SELECT $1::\"int4\""), None);
        assert_eq!(one("SELECT $1::mood"), None);
        assert_eq!(one("SELECT $1::int ARRAY"), None);
        assert_eq!(one("SELECT $1::interval day"), None);
        assert_eq!(one("SELECT $1::timetz"), None);
        assert_eq!(one("SELECT $1::time with time zone"), None);
        assert_eq!(one("SELECT '$1::int', $1"), None);
    }

    #[test]
    fn quoted_and_commented_text_is_skipped() {
        let sql =
            "SELECT '$1', E'\\'$1', \"$1\", $q$ $1::text $q$, $1::int -- $1\n/* $1 /* $1 */ */";
        assert_eq!(one(sql), Some(Type::INT4));
        assert_eq!(one("SELECT a$1, $1::uuid"), Some(Type::UUID));
        assert_eq!(cast_types("SELECT $2::int", 1), [None]);
    }
}
