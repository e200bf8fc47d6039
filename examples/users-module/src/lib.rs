//! A reusable users module built on pgdbm.
//!
//! It owns one table, `{{tables.users}}`, and ships its migrations inside the crate
//! (`pgdbm::embed_migrations!`). The host decides where it lives: standalone with a pool of its
//! own, or next to other modules on a shared pool, each in its own schema. Its code only sees a
//! [`Database`] handle, so it is the same in both cases.

use pgdbm::prelude::*;
use pgdbm::{MigrationReport, MigrationSource, Result};

/// The users module.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsersModule;

impl Module for UsersModule {
    fn name(&self) -> &str {
        "users"
    }

    fn migrations(&self) -> MigrationSource {
        pgdbm::embed_migrations!("migrations")
    }
}

/// The users module bound to a database handle (and so to a schema).
#[derive(Debug, Clone)]
pub struct Users {
    db: Database,
}

impl Users {
    /// Binds the module to `db` and applies its migrations into `db`'s schema.
    ///
    /// # Errors
    ///
    /// The migration error, naming the file that failed.
    pub async fn setup(db: Database) -> Result<(Self, MigrationReport)> {
        let report = db.migrate(&UsersModule).await?;
        Ok((Users { db }, report))
    }

    /// Adds a user (or finds the existing one with that email) and returns its id.
    ///
    /// # Errors
    ///
    /// Query errors.
    pub async fn add(&self, email: &str, display_name: Option<&str>) -> Result<i64> {
        add_user(&self.db, email, display_name).await
    }

    /// How many users there are.
    ///
    /// # Errors
    ///
    /// Query errors.
    pub async fn count(&self) -> Result<i64> {
        self.db
            .fetch_value("SELECT count(*) FROM {{tables.users}}", &[])
            .await
    }

    /// The handle the module runs on.
    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// Adds a user (or finds the existing one with that email) through any executor and returns its
/// id: on the module's own [`Database`], in one of its transactions, or inside another module's
/// transaction through a handle with this module's schema (`tx.with_schema_of(&users_db)`).
///
/// # Errors
///
/// Query errors.
pub async fn add_user(db: &dyn Executor, email: &str, display_name: Option<&str>) -> Result<i64> {
    db.fetch_value(
        "INSERT INTO {{tables.users}} (email, display_name) VALUES ($1, $2)
         ON CONFLICT (email) DO UPDATE SET display_name = EXCLUDED.display_name
         RETURNING id",
        params![email, display_name],
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_order() {
        let source = UsersModule.migrations();
        let names: Vec<&str> = source.migrations().iter().map(|m| m.name()).collect();
        assert_eq!(names, ["001_create_users.sql", "002_add_display_name.sql"]);
        assert!(source.migrations()[0].sql().contains("{{tables.users}}"));
    }
}
