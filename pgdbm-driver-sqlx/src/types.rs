//! Server types as pgdbm sees them: their names (as `pg_type.typname` spells them), their
//! families for the binding rules, and how a result column of each is read (the bytes
//! themselves are [`crate::wire`]'s).

use std::borrow::Cow;

use pgdbm::{Error, Result};
use sqlx::TypeInfo;
use sqlx::postgres::{PgTypeInfo, PgTypeKind};

/// The type families pgdbm reads and writes (the core's, shared with every driver).
pub(crate) use pgdbm::driver::PgType as Ty;

/// The family of a type. Like the tokio-postgres driver, enums and `citext` are text and a domain
/// is its base type's; dates and times need pgdbm's `chrono` feature (else they are
/// [`Ty::Other`]); `numeric` is always written, and read with pgdbm's `decimal` feature
/// (whichever crate turned either on).
pub(crate) fn classify(ti: &PgTypeInfo) -> Ty {
    if let Some((ty, _)) = builtin(ti) {
        return ty.unless_missing();
    }
    match ti.kind() {
        PgTypeKind::Array(_) => Ty::Array,
        PgTypeKind::Enum(_) => Ty::Text,
        PgTypeKind::Domain(base) => classify(base),
        _ if ti.name().eq_ignore_ascii_case("citext") => Ty::Text,
        _ => Ty::Other,
    }
}

/// A built-in type pgdbm knows by OID.
fn builtin(ti: &PgTypeInfo) -> Option<(Ty, &'static str)> {
    ti.oid().and_then(|o| Ty::from_oid(o.0))
}

/// `true` for the built-in types pgdbm knows by OID: everything pgdbm derives from such a type
/// (name, reader) depends on its OID only.
pub(crate) fn is_builtin(ti: &PgTypeInfo) -> bool {
    builtin(ti).is_some()
}

/// The element type of an array type.
pub(crate) fn element(ti: &PgTypeInfo) -> Option<&PgTypeInfo> {
    match ti.kind() {
        PgTypeKind::Array(elem) => Some(elem),
        _ => None,
    }
}

/// The PostgreSQL name of a type, as `pg_type.typname` spells it (`int4`, `_text`, `citext`).
pub(crate) fn type_name(ti: &PgTypeInfo) -> Cow<'static, str> {
    if let Some((_, name)) = builtin(ti) {
        return Cow::Borrowed(name);
    }
    if let Some(elem) = element(ti) {
        return Cow::Owned(format!("_{}", type_name(elem)));
    }
    let name = ti.name();
    if let PgTypeKind::Simple | PgTypeKind::Pseudo = ti.kind() {
        if let Some(elem) = name.strip_suffix("[]") {
            return Cow::Owned(format!("_{}", elem.to_ascii_lowercase()));
        }
        if name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ')
        {
            // sqlx's display name of a built-in type (`INTERVAL`).
            return Cow::Owned(name.to_ascii_lowercase());
        }
    }
    Cow::Owned(unqualified(name))
}

/// `pg_type.typname` from sqlx's (possibly schema-qualified, quoted) name of a user type:
/// `app.mood` → `mood`, `"My Type"` → `My Type`.
fn unqualified(name: &str) -> String {
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in name.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            '.' if !in_quotes => start = i + 1,
            _ => {}
        }
    }
    let last = &name[start..];
    match last.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => last.to_owned(),
    }
}

/// How to read one result column.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reader {
    Scalar(Ty),
    Array(Ty),
}

/// The reader for a column type, or [`Error::UnsupportedType`] (suggesting a cast).
pub(crate) fn reader(ti: &PgTypeInfo, column: &str) -> Result<Reader> {
    // The same rules as the tokio-postgres driver's (the core's `readable`), so that both
    // drivers read the same columns.
    let unsupported = || Error::unsupported_type(column, type_name(ti));
    if let Some(elem) = element(ti) {
        let ty = classify(elem);
        return if ty.readable_element() {
            Ok(Reader::Array(ty))
        } else {
            Err(unsupported())
        };
    }
    let ty = classify(ti);
    if ty.readable() {
        Ok(Reader::Scalar(ty))
    } else {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<T: sqlx::Type<sqlx::Postgres>>() -> PgTypeInfo {
        T::type_info()
    }

    #[test]
    fn names_and_families() {
        assert_eq!(type_name(&info::<i32>()), "int4");
        assert_eq!(type_name(&info::<Vec<String>>()), "_text");
        assert_eq!(classify(&info::<i64>()), Ty::Int8);
        assert_eq!(classify(&info::<&str>()), Ty::Text);
    }

    #[test]
    fn user_type_names_are_unqualified() {
        assert_eq!(unqualified("app.mood"), "mood");
        assert_eq!(unqualified("mood"), "mood");
        assert_eq!(
            unqualified("\"my.schema\".\"My \"\"Type\"\""),
            "My \"Type\""
        );
    }
}
