//! The tenant registry: module `tenants` in schema `control` (plans, tenants, API keys) and the
//! queries on it.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use pgdbm::prelude::*;
use pgdbm::{FromValue, MigrationSource, SharedPool, ToParam, Value};
use serde::Serialize;
use uuid::Uuid;

/// The schema the registry lives in.
pub const CONTROL_SCHEMA: &str = "control";

/// The registry's module: `plans`, `tenants`, `api_keys`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ControlModule;

impl Module for ControlModule {
    fn name(&self) -> &str {
        "tenants"
    }

    fn migrations(&self) -> MigrationSource {
        pgdbm::embed_migrations!("migrations/control")
    }
}

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Signed up, schema not yet migrated: no key works yet.
    Provisioning,
    /// Serving requests.
    Active,
    /// Every request answered `403`.
    Suspended,
}

impl TenantStatus {
    /// The text stored in `control.tenants.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Provisioning => "provisioning",
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

impl ToParam for TenantStatus {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Text(self.as_str().to_owned()))
    }
}

impl FromValue for TenantStatus {
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Text(s) if s == "provisioning" => Ok(TenantStatus::Provisioning),
            Value::Text(s) if s == "active" => Ok(TenantStatus::Active),
            Value::Text(s) if s == "suspended" => Ok(TenantStatus::Suspended),
            Value::Text(s) => Err(format!("unknown tenant status {s:?}")),
            other => Err(format!("{:?}", other.kind())),
        }
    }
}

/// A row of `control.tenants`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct TenantRecord {
    /// The tenant's id.
    pub id: Uuid,
    /// Its slug; its schema is `tenant_<slug>`.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Its plan (a row of `control.plans`).
    pub plan: String,
    /// Where it is in its life.
    pub status: TenantStatus,
    /// When it signed up.
    pub created_at: DateTime<Utc>,
}

/// The columns of a [`TenantRecord`], from `control.tenants` aliased `t`.
macro_rules! tenant_columns {
    () => {
        "t.id, t.slug, t.name, t.plan, t.status, t.created_at"
    };
}

/// A tenant's record with the stored hash of one of its keys.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The tenant the key belongs to.
    pub tenant: TenantRecord,
    /// The Argon2id hash (PHC string) of the key.
    pub key_hash: String,
}

/// Queries on the registry, through a handle scoped to schema `control`.
#[derive(Debug, Clone)]
pub struct Registry {
    db: Database,
}

impl Registry {
    /// The registry on `control`, a handle scoped to [`CONTROL_SCHEMA`] where
    /// [`ControlModule`] was migrated.
    pub fn new(control: Database) -> Self {
        Registry { db: control }
    }

    /// Migrates [`ControlModule`] into schema `control` on `pool` and returns the registry.
    ///
    /// # Errors
    ///
    /// Migration errors, naming the file that failed.
    pub async fn setup(pool: SharedPool) -> pgdbm::Result<Self> {
        let db = Database::new(pool, Some(CONTROL_SCHEMA))?;
        db.migrate(&ControlModule).await?;
        Ok(Registry::new(db))
    }

    /// The handle on schema `control`.
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Inserts tenant `slug` in status `provisioning`. The unique index on `slug` decides
    /// between concurrent sign-ups of one slug: exactly one insert succeeds.
    ///
    /// # Errors
    ///
    /// A unique violation when the slug is taken, a foreign-key violation for an unknown plan,
    /// other server errors.
    pub async fn insert_provisioning(
        &self,
        slug: &str,
        name: &str,
        plan: &str,
    ) -> pgdbm::Result<TenantRecord> {
        self.db
            .fetch_one_as(
                concat!(
                    "INSERT INTO {{tables.tenants}} AS t (slug, name, plan) VALUES ($1, $2, $3)
                     RETURNING ",
                    tenant_columns!()
                ),
                params![slug, name, plan],
            )
            .await
    }

    /// The key `key_id` with its tenant, or `None`.
    ///
    /// # Errors
    ///
    /// Server errors.
    pub async fn find_key(&self, key_id: &str) -> pgdbm::Result<Option<KeyRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            tenant_columns!(),
            ", k.key_hash FROM {{tables.api_keys}} k
             JOIN {{tables.tenants}} t ON t.id = k.tenant_id WHERE k.key_id = $1"
        );
        let Some(row) = self.db.fetch_optional(SQL, params![key_id]).await? else {
            return Ok(None);
        };
        Ok(Some(KeyRecord {
            tenant: TenantRecord::from_row(&row)?,
            key_hash: row.get("key_hash")?,
        }))
    }

    /// Tenant `slug`, or `None`.
    ///
    /// # Errors
    ///
    /// Server errors.
    pub async fn by_slug(&self, slug: &str) -> pgdbm::Result<Option<TenantRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM {{tables.tenants}} t WHERE t.slug = $1"
        );
        self.db.fetch_optional_as(SQL, params![slug]).await
    }

    /// Moves tenant `slug` from status `from` to `to`; `None` when there is no such tenant in
    /// status `from`.
    ///
    /// # Errors
    ///
    /// Server errors.
    pub async fn change_status(
        &self,
        slug: &str,
        from: TenantStatus,
        to: TenantStatus,
    ) -> pgdbm::Result<Option<TenantRecord>> {
        self.db
            .fetch_optional_as(
                concat!(
                    "UPDATE {{tables.tenants}} AS t SET status = $3, status_changed_at = now()
                     WHERE t.slug = $1 AND t.status = $2 RETURNING ",
                    tenant_columns!()
                ),
                params![slug, from, to],
            )
            .await
    }

    /// A page of tenants (every status), oldest first.
    ///
    /// # Errors
    ///
    /// Server errors.
    pub async fn list(&self, limit: i64, offset: i64) -> pgdbm::Result<Vec<TenantRecord>> {
        const SQL: &str = concat!(
            "SELECT ",
            tenant_columns!(),
            " FROM {{tables.tenants}} t ORDER BY t.created_at, t.id LIMIT $1 OFFSET $2"
        );
        self.db.fetch_all_as(SQL, params![limit, offset]).await
    }

    /// The most projects plan `plan` allows, or `None` for an unknown plan.
    ///
    /// # Errors
    ///
    /// Server errors.
    pub async fn max_projects(&self, plan: &str) -> pgdbm::Result<Option<i32>> {
        let row = self
            .db
            .fetch_optional(
                "SELECT max_projects FROM {{tables.plans}} WHERE name = $1",
                params![plan],
            )
            .await?;
        row.map(|r| r.get(0)).transpose()
    }
}
