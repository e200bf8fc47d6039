//! What clients send, and the checks that turn it into values the store accepts: a [`Title`] is
//! trimmed and 1–200 characters long, so the store never sees an empty one.

use serde::{Deserialize, Deserializer};

/// The longest title, in characters (the table's `CHECK` says the same).
pub const MAX_TITLE_CHARS: usize = 200;

/// A field of a request that breaks a rule; the message names the field, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidInput {
    /// The field, as named in the JSON body.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.field, self.problem)
    }
}

impl std::error::Error for InvalidInput {}

/// A checked title: trimmed, not empty, at most [`MAX_TITLE_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Trims `text` and checks it.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for `title` when it is empty (or only spaces) or too long.
    pub fn parse(text: &str) -> Result<Self, InvalidInput> {
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("title", "must not be empty"));
        }
        if text.chars().count() > MAX_TITLE_CHARS {
            return Err(invalid("title", "must be at most 200 characters"));
        }
        Ok(Title(text.to_owned()))
    }

    /// The trimmed text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The body of `POST /todos`: `{"title": "…", "description": "…"}` (`description` optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTodo {
    /// Required; optional here only so that a missing title gets the same clear error as an
    /// empty one.
    pub title: Option<String>,
    /// Optional details.
    pub description: Option<String>,
}

impl NewTodo {
    /// The checked title and the description.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for a missing, empty or too long `title`.
    pub fn validate(self) -> Result<(Title, Option<String>), InvalidInput> {
        let title = self.title.ok_or(invalid("title", "is required"))?;
        Ok((Title::parse(&title)?, self.description))
    }
}

/// The body of `PATCH /todos/{id}`: only the fields present change. `"description": null`
/// clears the description; `title` and `completed` cannot be null.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TodoChanges {
    /// `None`: absent; `Some(None)`: null.
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Option<String>>,
    /// `None`: absent; `Some(None)`: null (clears it).
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    /// `None`: absent; `Some(None)`: null.
    #[serde(default, deserialize_with = "present")]
    pub completed: Option<Option<bool>>,
}

/// Checked changes for [`Todos::update`](super::Todos::update).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// A new title.
    pub title: Option<Title>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// A new state.
    pub completed: Option<bool>,
}

impl Changes {
    /// `true` when nothing would change.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.completed.is_none()
    }
}

impl TodoChanges {
    /// The checked changes.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] for a null, empty or too long `title`, or a null `completed`.
    pub fn validate(self) -> Result<Changes, InvalidInput> {
        let title = match self.title {
            None => None,
            Some(None) => return Err(invalid("title", "must not be null")),
            Some(Some(text)) => Some(Title::parse(&text)?),
        };
        let completed = match self.completed {
            None => None,
            Some(None) => return Err(invalid("completed", "must not be null")),
            Some(Some(done)) => Some(done),
        };
        Ok(Changes {
            title,
            description: self.description,
            completed,
        })
    }
}

fn invalid(field: &'static str, problem: &'static str) -> InvalidInput {
    InvalidInput { field, problem }
}

/// Reads a field that is present (its value may be null), so that absent and null differ.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_checked() {
        assert_eq!(Title::parse("  buy milk ").unwrap().as_str(), "buy milk");
        assert_eq!(
            Title::parse(" \t ").unwrap_err().to_string(),
            "`title` must not be empty"
        );
        assert!(Title::parse(&"x".repeat(MAX_TITLE_CHARS)).is_ok());
        assert!(Title::parse(&"x".repeat(MAX_TITLE_CHARS + 1)).is_err());
    }

    #[test]
    fn absent_and_null_differ_in_changes() {
        let changes: TodoChanges = serde_json::from_str(r#"{"description": null}"#).unwrap();
        let changes = changes.validate().unwrap();
        assert_eq!(changes.description, Some(None));
        assert_eq!(changes.title, None);
        assert!(!changes.is_empty());
        let none: TodoChanges = serde_json::from_str("{}").unwrap();
        assert!(none.validate().unwrap().is_empty());
        let null_title: TodoChanges = serde_json::from_str(r#"{"title": null}"#).unwrap();
        assert_eq!(null_title.validate().unwrap_err().field, "title");
    }

    #[test]
    fn a_missing_title_is_named() {
        let err = NewTodo::default().validate().unwrap_err();
        assert_eq!(err.to_string(), "`title` is required");
    }
}
