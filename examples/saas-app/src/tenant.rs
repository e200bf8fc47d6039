//! One tenant: its slug and schema, the module migrated into that schema, and the handle its
//! requests run on.

use pgdbm::prelude::*;
use pgdbm::{MigrationSource, SharedPool};
use uuid::Uuid;

/// Longest slug: `tenant_` (7 characters) + 56 fits PostgreSQL's 63-character identifiers.
pub const MAX_SLUG_LEN: usize = 56;

/// Checks a tenant slug: 1 to 56 characters, lower-case ASCII letters, digits and `_`, starting
/// with a letter. The slug becomes part of a schema name, so nothing else may get through.
///
/// # Errors
///
/// A message naming the slug and what is wrong with it.
pub fn validate_slug(slug: &str) -> Result<(), String> {
    let problem = if slug.is_empty() {
        Some("is empty")
    } else if slug.len() > MAX_SLUG_LEN {
        Some("is longer than 56 characters")
    } else if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lower-case letter")
    } else if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Some("may contain only lower-case letters, digits and underscores")
    } else {
        None
    };
    if let Some(problem) = problem {
        let shown: String = slug.chars().take(80).collect();
        return Err(format!("slug {shown:?} {problem}"));
    }
    // pgdbm's own rule for identifiers it puts into SQL, as a second guard.
    pgdbm::validate_identifier("schema", &schema_name(slug)).map_err(|e| e.to_string())
}

/// The schema of the tenant with `slug`: `tenant_<slug>`.
pub fn schema_name(slug: &str) -> String {
    format!("tenant_{slug}")
}

/// The tables of one tenant (`projects`), migrated into the tenant's schema at sign-up.
///
/// Its name — the ledger's `module_name` and the key of pgdbm's migration lock,
/// `hashtext('pgdbm_migration_' || name)` — is the tenant's schema name, so sign-ups of
/// different tenants take different locks and migrate side by side instead of queueing behind
/// one lock.
#[derive(Debug, Clone)]
pub struct TenantModule {
    name: String,
}

impl TenantModule {
    /// The module for the tenant whose schema is `schema`.
    pub fn for_schema(schema: &str) -> Self {
        TenantModule {
            name: schema.to_owned(),
        }
    }
}

impl Module for TenantModule {
    fn name(&self) -> &str {
        &self.name
    }

    fn migrations(&self) -> MigrationSource {
        pgdbm::embed_migrations!("migrations/tenant")
    }
}

/// An active tenant as requests see it: who it is and a handle scoped to its schema.
///
/// Every query goes through [`db`](Self::db), whose templates qualify each table with the
/// tenant's schema (`{{tables.projects}}` → `"tenant_acme".projects`); no connection's
/// `search_path` is ever set per tenant, so pooled connections carry nothing from one tenant to
/// the next.
#[derive(Debug)]
pub struct Tenant {
    id: Uuid,
    slug: String,
    plan: String,
    db: Database,
}

impl Tenant {
    /// The tenant `id`/`slug` on plan `plan`, with a handle on `pool` scoped to its schema.
    ///
    /// # Errors
    ///
    /// [`pgdbm::Error::Identifier`] when the slug does not make a valid schema name.
    pub fn new(id: Uuid, slug: &str, plan: &str, pool: SharedPool) -> pgdbm::Result<Self> {
        let db = Database::new(pool, Some(&schema_name(slug)))?;
        Ok(Tenant {
            id,
            slug: slug.to_owned(),
            plan: plan.to_owned(),
            db,
        })
    }

    /// The registry id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The slug.
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// The plan's name when the handle was made.
    pub fn plan(&self) -> &str {
        &self.plan
    }

    /// The handle scoped to the tenant's schema.
    pub fn db(&self) -> &Database {
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["acme", "a", "acme_2", &"a".repeat(56)] {
            assert_eq!(validate_slug(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("Acme", "lower-case letter"),
            ("2acme", "lower-case letter"),
            ("_acme", "lower-case letter"),
            ("ac-me", "only lower-case"),
            ("acme; drop schema control", "only lower-case"),
            ("acmé", "only lower-case"),
            (&"a".repeat(57), "longer than 56"),
        ] {
            let e = validate_slug(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn each_tenant_has_its_own_module_name() {
        let m = TenantModule::for_schema("tenant_acme");
        assert_eq!(m.name(), "tenant_acme");
        let names: Vec<String> = m
            .migrations()
            .migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        assert_eq!(names, ["001_projects.sql"]);
    }
}
