//! A tenant's life: sign-up (registry row, schema, migrations, key — all or nothing), deletion,
//! cleaning up after sign-ups a crash interrupted, and bringing every tenant's schema up to date.

use std::time::Duration;

use futures_util::StreamExt;
use pgdbm::prelude::*;
use pgdbm::quote_identifier;
use serde::{Deserialize, Serialize};

use tokio::sync::oneshot;

use crate::api_key::{ApiKey, KeyHasher};
use crate::registry::{Registry, TenantRecord};
use crate::tenant::{TenantModule, schema_name, validate_slug};

/// A sign-up request.
#[derive(Debug, Clone, Deserialize)]
pub struct SignUp {
    /// The tenant's slug; its schema will be `tenant_<slug>`.
    pub slug: String,
    /// Its display name.
    pub name: String,
    /// Its plan (default `free`).
    #[serde(default = "default_plan")]
    pub plan: String,
}

/// Where the provisioning task sends its result; closed when the request was dropped.
type Reply = oneshot::Sender<Result<TenantRecord, SignupError>>;

fn default_plan() -> String {
    "free".to_owned()
}

/// A tenant that signed up, with its API key: the only time the key is shown.
#[derive(Debug, Clone, Serialize)]
pub struct SignedUp {
    /// The registry row, status `active`.
    pub tenant: TenantRecord,
    /// The key (`sk_…`); only its hash is stored.
    pub api_key: String,
}

/// Why a sign-up did not happen. Nothing of it is left behind in any case.
#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    /// A bad slug, an empty name or an unknown plan.
    #[error("{0}")]
    Invalid(String),
    /// Another tenant has (or is signing up with) this slug.
    #[error("slug {0:?} is taken")]
    SlugTaken(String),
    /// The tenant's schema exists without a tenant (made by hand?); it is left alone.
    #[error("schema {0} already exists")]
    SchemaExists(String),
    /// The key could not be hashed.
    #[error("hashing the key: {0}")]
    Hashing(String),
    /// The request was dropped before the tenant was activated; everything was undone.
    #[error("the sign-up was abandoned by its client")]
    Abandoned,
    /// The provisioning task panicked; the reaper removes what it left.
    #[error("sign-up task failed: {0}")]
    Task(String),
    /// A database error; what was made has been undone.
    #[error(transparent)]
    Database(#[from] pgdbm::Error),
}

/// Signs tenant `req.slug` up: registers it, creates schema `tenant_<slug>`, migrates
/// [`TenantModule`] into it, stores the hash of a new key and activates the tenant.
///
/// Concurrent sign-ups of one slug are decided by the registry's unique index: one gets the
/// row, the others [`SignupError::SlugTaken`] at once, without touching the schema. Everything
/// after the row runs on a task of its own, so a request dropped half way (the client went
/// away) does not stop it half way: the task either finishes or undoes what it made (schema and
/// row, in one transaction). It also undoes it when nobody waits for the answer any more at
/// the moment of activation, since nobody would ever learn the key; a retry of the sign-up then
/// succeeds. A crash of the process leaves a `provisioning` row, which
/// [`reap_abandoned_signups`] removes with its schema.
///
/// # Errors
///
/// See [`SignupError`].
pub async fn sign_up(
    registry: &Registry,
    hasher: &KeyHasher,
    req: SignUp,
) -> Result<SignedUp, SignupError> {
    validate_slug(&req.slug).map_err(SignupError::Invalid)?;
    if req.name.trim().is_empty() {
        return Err(SignupError::Invalid("name must not be empty".into()));
    }
    // The slow part (Argon2) comes before any write, so it holds no row and no lock.
    let key = ApiKey::generate();
    let key_hash = hasher.hash(&key).await.map_err(SignupError::Hashing)?;
    let (reply, answer) = oneshot::channel();
    let registry = registry.clone();
    let key_id = key.key_id().to_owned();
    // From the registry row on, the work runs on a task of its own: a dropped request cannot
    // stop it between two of its steps.
    tokio::spawn(async move {
        let result = register(&registry, req, &key_id, &key_hash, &reply).await;
        // Err: the request was dropped; what the task made has been undone.
        let _ = reply.send(result);
    });
    let tenant = answer
        .await
        .map_err(|_| SignupError::Task("the provisioning task ended without an answer".into()))??;
    Ok(SignedUp {
        tenant,
        api_key: key.expose().to_owned(),
    })
}

/// Inserts the registry row, then provisions the tenant.
async fn register(
    registry: &Registry,
    req: SignUp,
    key_id: &str,
    key_hash: &str,
    reply: &Reply,
) -> Result<TenantRecord, SignupError> {
    let name = req.name.trim();
    let tenant = match registry
        .insert_provisioning(&req.slug, name, &req.plan)
        .await
    {
        Err(e) if e.is_unique_violation() => return Err(SignupError::SlugTaken(req.slug)),
        Err(e) if e.is_foreign_key_violation() => {
            return Err(SignupError::Invalid(format!("unknown plan {:?}", req.plan)));
        }
        other => other?,
    };
    provision(registry, tenant, key_id, key_hash, reply).await
}

/// Everything after the registry row; undoes it all on failure.
async fn provision(
    registry: &Registry,
    tenant: TenantRecord,
    key_id: &str,
    key_hash: &str,
    reply: &Reply,
) -> Result<TenantRecord, SignupError> {
    let schema = schema_name(&tenant.slug);
    // A plain CREATE SCHEMA: a schema that exists is not ours to migrate into, nor to drop.
    let create = format!("CREATE SCHEMA {}", quote_identifier(&schema));
    let result = match registry.db().batch_execute(&create).await {
        Ok(()) => activate(registry, &tenant, &schema, key_id, key_hash, reply).await,
        Err(e) if e.code() == Some("42P06") => {
            undo(registry, &tenant, None).await;
            return Err(SignupError::SchemaExists(schema));
        }
        Err(e) => Err(e.into()),
    };
    if result.is_err() {
        undo(registry, &tenant, Some(&schema)).await;
    }
    result
}

/// Migrates the tenant's schema, then stores its key and activates it in one transaction,
/// committed only while the request still waits for the answer.
async fn activate(
    registry: &Registry,
    tenant: &TenantRecord,
    schema: &str,
    key_id: &str,
    key_hash: &str,
    reply: &Reply,
) -> Result<TenantRecord, SignupError> {
    let db = Database::new(registry.db().pool().clone(), Some(schema))?;
    db.migrate(&TenantModule::for_schema(schema)).await?;
    let id = tenant.id;
    registry
        .db()
        .transaction(|tx| async move {
            tx.execute(
                "INSERT INTO {{tables.api_keys}} (key_id, tenant_id, key_hash) VALUES ($1, $2, $3)",
                params![key_id, id, key_hash],
            )
            .await?;
            let activated = tx
                .fetch_one_as(
                    "UPDATE {{tables.tenants}} AS t SET status = 'active', status_changed_at = now()
                     WHERE t.id = $1 AND t.status = 'provisioning'
                     RETURNING t.id, t.slug, t.name, t.plan, t.status, t.created_at",
                    params![id],
                )
                .await?;
            if reply.is_closed() {
                return Err(SignupError::Abandoned);
            }
            Ok(activated)
        })
        .await
}

/// Drops the tenant's schema (when `schema` is given) and its registry row, in one transaction.
/// A failure is logged: the row stays `provisioning` and the reaper takes it later.
async fn undo(registry: &Registry, tenant: &TenantRecord, schema: Option<&str>) {
    let result = registry
        .db()
        .transaction(|tx| async move {
            if let Some(schema) = schema {
                let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(schema));
                tx.batch_execute(&drop).await?;
            }
            tx.execute(
                "DELETE FROM {{tables.tenants}} WHERE id = $1 AND status = 'provisioning'",
                params![tenant.id],
            )
            .await?;
            Ok::<_, pgdbm::Error>(())
        })
        .await;
    if let Err(e) = result {
        tracing::error!(slug = %tenant.slug, error = %e, "undoing a failed sign-up failed; the reaper will retry");
    }
}

/// Deletes tenant `slug` (active or suspended): drops its schema and its registry row (and so
/// its keys) in one transaction. `None` when there is no such tenant.
///
/// `DROP SCHEMA` waits for the tenant's statements in flight (up to the session's
/// `lock_timeout`). Invalidate the tenant's cached handles after this returns.
///
/// # Errors
///
/// Server errors; nothing is deleted then.
pub async fn delete_tenant(registry: &Registry, slug: &str) -> pgdbm::Result<Option<TenantRecord>> {
    registry
        .db()
        .transaction(|tx| async move {
            let Some(tenant) = tx
                .fetch_optional_as::<TenantRecord>(
                    "SELECT t.id, t.slug, t.name, t.plan, t.status, t.created_at
                     FROM {{tables.tenants}} t
                     WHERE t.slug = $1 AND t.status IN ('active', 'suspended')
                     FOR UPDATE",
                    params![slug],
                )
                .await?
            else {
                return Ok(None);
            };
            let schema = schema_name(&tenant.slug);
            tx.batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_identifier(&schema)
            ))
            .await?;
            tx.execute(
                "DELETE FROM {{tables.tenants}} WHERE id = $1",
                params![tenant.id],
            )
            .await?;
            Ok(Some(tenant))
        })
        .await
}

/// Removes sign-ups still `provisioning` after `older_than` (their process died half way), each
/// with its schema, one transaction each; returns their slugs. Rows another session holds are
/// skipped. Run it at start-up; `older_than` must exceed the longest sign-up.
///
/// # Errors
///
/// Server errors.
pub async fn reap_abandoned_signups(
    registry: &Registry,
    older_than: Duration,
) -> pgdbm::Result<Vec<String>> {
    let candidates: Vec<(uuid::Uuid,)> = registry
        .db()
        .fetch_all_as(
            "SELECT id FROM {{tables.tenants}}
             WHERE status = 'provisioning' AND status_changed_at < now() - make_interval(secs => $1)",
            params![older_than.as_secs_f64()],
        )
        .await?;
    let mut reaped = Vec::new();
    for (id,) in candidates {
        let slug = registry
            .db()
            .transaction(|tx| async move {
                let Some((slug,)) = tx
                    .fetch_optional_as::<(String,)>(
                        "SELECT slug FROM {{tables.tenants}}
                         WHERE id = $1 AND status = 'provisioning' FOR UPDATE SKIP LOCKED",
                        params![id],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let schema = quote_identifier(&schema_name(&slug));
                tx.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                    .await?;
                tx.execute("DELETE FROM {{tables.tenants}} WHERE id = $1", params![id])
                    .await?;
                Ok::<_, pgdbm::Error>(Some(slug))
            })
            .await?;
        reaped.extend(slug);
    }
    Ok(reaped)
}

/// What [`migrate_all_tenants`] did.
#[derive(Debug, Default)]
pub struct UpgradeReport {
    /// Tenants looked at (active and suspended).
    pub tenants: usize,
    /// Migration files applied, over all tenants.
    pub applied: usize,
    /// Tenants whose migration failed, with the error; the others were migrated.
    pub failed: Vec<(String, pgdbm::Error)>,
}

/// Applies [`TenantModule`]'s pending migrations to every active and suspended tenant,
/// `concurrency` tenants at a time (each under its own migration lock). A failing tenant does
/// not stop the others.
///
/// # Errors
///
/// Server errors reading the registry.
pub async fn migrate_all_tenants(
    registry: &Registry,
    concurrency: usize,
) -> pgdbm::Result<UpgradeReport> {
    let slugs: Vec<(String,)> = registry
        .db()
        .fetch_all_as(
            "SELECT slug FROM {{tables.tenants}} WHERE status IN ('active', 'suspended') ORDER BY slug",
            &[],
        )
        .await?;
    let pool = registry.db().pool().clone();
    let mut runs = futures_util::stream::iter(slugs)
        .map(|(slug,)| {
            let pool = pool.clone();
            async move {
                let schema = schema_name(&slug);
                let result = match Database::new(pool, Some(&schema)) {
                    Ok(db) => db.migrate(&TenantModule::for_schema(&schema)).await,
                    Err(e) => Err(e),
                };
                (slug, result)
            }
        })
        .buffer_unordered(concurrency.max(1));
    let mut report = UpgradeReport::default();
    while let Some((slug, result)) = runs.next().await {
        report.tenants += 1;
        match result {
            Ok(done) => report.applied += done.applied.len(),
            Err(e) => report.failed.push((slug, e)),
        }
    }
    Ok(report)
}
