//! PostgreSQL enums as Rust enums: the [`Enum`] trait and what `#[derive(Enum)]` expands to call.

use std::borrow::Cow;

use crate::Value;

/// A Rust enum of unit variants mapped to the labels of a PostgreSQL enum type. Derive it:
/// `#[derive(pgdbm::Enum)]` also implements [`ToParam`](crate::ToParam),
/// [`FromValue`](crate::FromValue) and [`ArrayElement`](crate::ArrayElement), so the enum binds as
/// a parameter (also into `Vec<Mood>` → `mood[]`), reads from a column, and is a field of a
/// [`FromRow`](trait@crate::FromRow) struct.
///
/// # The derive
///
/// Each variant's label is its name **as written** (`Happy` → `'Happy'`), unless the enum says
/// `#[pgdbm(rename_all = "…")]` or the variant `#[pgdbm(rename = "…")]` (which wins).
/// `rename_all` takes serde's spellings, applied to the variant name as serde applies them:
///
/// | `rename_all` | `InProgress` becomes |
/// |---|---|
/// | `"lowercase"` | `inprogress` |
/// | `"UPPERCASE"` | `INPROGRESS` |
/// | `"snake_case"` | `in_progress` |
/// | `"SCREAMING_SNAKE_CASE"` | `IN_PROGRESS` |
/// | `"kebab-case"` | `in-progress` |
/// | `"SCREAMING-KEBAB-CASE"` | `IN-PROGRESS` |
/// | `"camelCase"` | `inProgress` |
/// | `"PascalCase"` | `InProgress` |
///
/// Two variants with one label, a variant with fields, or an unknown option is a compile error:
///
/// ```compile_fail
/// #[derive(pgdbm::Enum)]
/// #[pgdbm(rename_all = "lowercase")]
/// enum Clash { Open, OPEN } // both `open`
/// ```
///
/// ```compile_fail
/// #[derive(pgdbm::Enum)]
/// enum Shape { Circle(f64) } // labels carry no data
/// ```
///
/// ```compile_fail
/// #[derive(pgdbm::Enum)]
/// #[pgdbm(rename_all = "Title Case")] // not one of the spellings above
/// enum Mood { Happy }
/// ```
///
/// ```no_run
/// # async fn demo(db: pgdbm::Database) -> pgdbm::Result<()> {
/// use pgdbm::prelude::*;
///
/// // CREATE TYPE mood AS ENUM ('happy', 'sad', 'so-so')
/// #[derive(Debug, Clone, Copy, PartialEq, pgdbm::Enum)]
/// #[pgdbm(rename_all = "lowercase")]
/// enum Mood {
///     Happy,
///     Sad,
///     #[pgdbm(rename = "so-so")]
///     SoSo,
/// }
///
/// db.execute("INSERT INTO {{tables.people}} (name, mood) VALUES ($1, $2)", params!["ann", Mood::Happy])
///     .await?;
/// let mood: Mood = db.fetch_value("SELECT mood FROM {{tables.people}} WHERE name = $1", params!["ann"])
///     .await?;
/// let any: Vec<Mood> = db.fetch_value("SELECT enum_range(NULL::mood)", &[]).await?;
/// # Ok(()) }
/// ```
///
/// Binding sends the label as text to the enum-typed parameter, so the statement must give the
/// parameter that type (a column, or a cast: `$1::mood`); the server refuses a label its enum does
/// not have. Reading a label the Rust enum does not have is an
/// [`Error::Decode`](crate::Error::Decode) naming the column, the Rust enum and how many labels it
/// knows (the text read is not shown: it may be any text column's value). Enum columns also read
/// as `String`.
pub trait Enum: Sized + Sync + 'static {
    /// The Rust enum's name, for error messages.
    const NAME: &'static str;
    /// The labels, in the order of the variants.
    const LABELS: &'static [&'static str];

    /// This variant's label.
    fn label(&self) -> &'static str;

    /// The variant of `label`, if there is one (labels are case-sensitive, as in PostgreSQL).
    fn from_label(label: &str) -> Option<Self>;
}

/// What the derive expands to call: the value bound for a variant, a variant read from a value.
#[doc(hidden)]
pub mod support {
    use super::*;

    /// The label, as text.
    pub fn to_param<E: Enum>(variant: &E) -> Cow<'static, Value> {
        Cow::Owned(Value::Text(variant.label().to_owned()))
    }

    /// The variant of a text value; the error describes what was found, never the text.
    ///
    /// # Errors
    ///
    /// Not text, or text that is none of the labels.
    pub fn from_value<E: Enum>(value: &Value) -> Result<E, String> {
        match value {
            Value::Text(label) => E::from_label(label).ok_or_else(|| unknown::<E>()),
            other => Err(other.type_description()),
        }
    }

    fn unknown<E: Enum>() -> String {
        format!(
            "a label that is none of the {count} of {name} ({labels}): add a variant for it, or \
             #[pgdbm(rename = \"…\")] one to it",
            count = E::LABELS.len(),
            name = E::NAME,
            labels = E::LABELS.join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{FromValue, ToParam, Value};

    #[derive(Debug, Clone, Copy, PartialEq, crate::Enum)]
    #[pgdbm(rename_all = "snake_case")]
    enum Status {
        InProgress,
        #[pgdbm(rename = "DONE")]
        Done,
        HTTPError,
    }

    #[derive(Debug, PartialEq, crate::Enum)]
    #[pgdbm(rename_all = "SCREAMING-KEBAB-CASE")]
    enum Shout {
        LoudNoise,
    }

    #[derive(Debug, PartialEq, crate::Enum)]
    enum AsWritten {
        #[allow(dead_code)]
        PlainName,
    }

    #[test]
    fn labels_follow_rename_all_and_rename() {
        use super::Enum;
        assert_eq!(Status::LABELS, ["in_progress", "DONE", "h_t_t_p_error"]);
        assert_eq!(Shout::LABELS, ["LOUD-NOISE"]);
        assert_eq!(AsWritten::LABELS, ["PlainName"]);
        assert_eq!(Status::NAME, "Status");
        assert_eq!(
            Status::InProgress.to_param().into_owned(),
            Value::Text("in_progress".into())
        );
        assert_eq!(
            Status::from_value(&Value::Text("DONE".into())),
            Ok(Status::Done)
        );
        assert_eq!(Status::from_label("done"), None);
    }

    #[test]
    fn unknown_labels_are_described_without_the_text() {
        let err = Status::from_value(&Value::Text("secret-label".into())).unwrap_err();
        assert!(err.contains("3 of Status"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        assert_eq!(
            Status::from_value(&Value::Int4(1)),
            Err("integer".to_owned())
        );
        let all = vec![Status::Done, Status::InProgress]
            .to_param()
            .into_owned();
        assert_eq!(
            Vec::<Status>::from_value(&all),
            Ok(vec![Status::Done, Status::InProgress])
        );
        assert_eq!(Option::<Status>::from_value(&Value::Null), Ok(None));
    }
}
