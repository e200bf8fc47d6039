//! [`Todos`]: the module's queries, on a [`Database`] handle scoped to the module's schema.

use pgdbm::prelude::*;
use pgdbm::{Database, Result};
use uuid::Uuid;

use super::{Changes, Title, Todo};

/// Which todos a list returns, and which page of them (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFilter {
    /// Only done (`Some(true)`) or open (`Some(false)`) todos; all when `None`.
    pub completed: Option<bool>,
    /// Page size, at most [`ListFilter::MAX_LIMIT`].
    pub limit: u32,
    /// Todos to skip.
    pub offset: u64,
}

impl ListFilter {
    /// The page size when the client names none.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// The largest page: a bigger `limit` is cut to this.
    pub const MAX_LIMIT: u32 = 100;

    /// A filter with `limit` defaulted to [`DEFAULT_LIMIT`](Self::DEFAULT_LIMIT) and capped at
    /// [`MAX_LIMIT`](Self::MAX_LIMIT), and `offset` defaulted to 0.
    pub fn new(completed: Option<bool>, limit: Option<u32>, offset: Option<u64>) -> Self {
        ListFilter {
            completed,
            limit: limit.unwrap_or(Self::DEFAULT_LIMIT).min(Self::MAX_LIMIT),
            offset: offset.unwrap_or(0),
        }
    }
}

impl Default for ListFilter {
    fn default() -> Self {
        ListFilter::new(None, None, None)
    }
}

const LIST_ALL: &str = "SELECT * FROM {{tables.todos}} \
     ORDER BY created_at DESC, id LIMIT $1 OFFSET $2";
const LIST_BY_STATE: &str = "SELECT * FROM {{tables.todos}} WHERE completed = $3 \
     ORDER BY created_at DESC, id LIMIT $1 OFFSET $2";
const UPDATE: &str = "UPDATE {{tables.todos}} SET \
         title = COALESCE($2, title), \
         description = CASE WHEN $3 THEN $4 ELSE description END, \
         completed = COALESCE($5, completed) \
     WHERE id = $1 RETURNING *";

/// The todo module bound to a handle (and so to a schema).
#[derive(Debug, Clone)]
pub struct Todos {
    db: Database,
}

impl Todos {
    /// The module's queries on `db`, which must be scoped to the schema the module was
    /// migrated into.
    pub fn new(db: Database) -> Self {
        Todos { db }
    }

    /// Adds a todo and returns it as stored.
    ///
    /// # Errors
    ///
    /// Query and connection errors.
    pub async fn create(&self, title: &Title, description: Option<&str>) -> Result<Todo> {
        self.db
            .fetch_one_as(
                "INSERT INTO {{tables.todos}} (title, description) VALUES ($1, $2) RETURNING *",
                params![title.as_str(), description],
            )
            .await
    }

    /// One page of todos, newest first.
    ///
    /// # Errors
    ///
    /// Query and connection errors.
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<Todo>> {
        let limit = i64::from(filter.limit);
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        match filter.completed {
            None => self.db.fetch_all_as(LIST_ALL, params![limit, offset]).await,
            Some(done) => {
                let p = params![limit, offset, done];
                self.db.fetch_all_as(LIST_BY_STATE, p).await
            }
        }
    }

    /// The todo with that id, if there is one.
    ///
    /// # Errors
    ///
    /// Query and connection errors.
    pub async fn get(&self, id: Uuid) -> Result<Option<Todo>> {
        self.db
            .fetch_optional_as("SELECT * FROM {{tables.todos}} WHERE id = $1", params![id])
            .await
    }

    /// Applies `changes` to the todo with that id and returns it (`None` when there is no such
    /// todo). Empty changes write nothing, so `updated_at` stays.
    ///
    /// # Errors
    ///
    /// Query and connection errors.
    pub async fn update(&self, id: Uuid, changes: &Changes) -> Result<Option<Todo>> {
        if changes.is_empty() {
            return self.get(id).await;
        }
        let title = changes.title.as_ref().map(Title::as_str);
        let set_description = changes.description.is_some();
        let description = changes.description.clone().flatten();
        let p = params![id, title, set_description, description, changes.completed];
        self.db.fetch_optional_as(UPDATE, p).await
    }

    /// Deletes the todo with that id; `false` when there was none.
    ///
    /// # Errors
    ///
    /// Query and connection errors.
    pub async fn delete(&self, id: Uuid) -> Result<bool> {
        let deleted = self
            .db
            .execute("DELETE FROM {{tables.todos}} WHERE id = $1", params![id])
            .await?;
        Ok(deleted > 0)
    }

    /// The handle the module runs on.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::ListFilter;

    #[test]
    fn limit_is_defaulted_and_capped() {
        assert_eq!(ListFilter::default().limit, ListFilter::DEFAULT_LIMIT);
        assert_eq!(ListFilter::new(None, Some(5), None).limit, 5);
        let big = ListFilter::new(Some(true), Some(10_000), Some(3));
        assert_eq!((big.limit, big.offset), (ListFilter::MAX_LIMIT, 3));
    }
}
