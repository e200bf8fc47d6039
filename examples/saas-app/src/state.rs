//! [`AppState`]: what every handler shares — the registry, the key cache, the hasher, the
//! admin key — and the tenant operations that must keep the cache right.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::api_key::{KeyHasher, key_id_of};
use crate::cache::TenantCache;
use crate::error::ApiError;
use crate::lifecycle::delete_tenant;
use crate::registry::{Registry, TenantRecord, TenantStatus};
use crate::tenant::Tenant;

/// Settings of the application (the database is given separately).
#[derive(Clone)]
pub struct AppConfig {
    /// The key of the `/admin` routes; `None` turns them off (every admin request gets `403`).
    pub admin_key: Option<String>,
    /// How tenant keys are hashed at sign-up.
    pub hasher: KeyHasher,
    /// How many verified keys the cache holds.
    pub cache_capacity: NonZeroUsize,
    /// How long a verified key is trusted without looking at the registry again: the longest a
    /// suspension made by another process goes unseen here.
    pub cache_ttl: Duration,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            admin_key: None,
            hasher: KeyHasher::default(),
            cache_capacity: NonZeroUsize::new(10_000).expect("non-zero"),
            cache_ttl: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<set>"))
            .field("hasher", &self.hasher)
            .field("cache_capacity", &self.cache_capacity)
            .field("cache_ttl", &self.cache_ttl)
            .finish()
    }
}

/// The state shared by every request (cheap to clone).
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    cache: TenantCache,
    hasher: KeyHasher,
    admin_key_digest: Option<[u8; 32]>,
}

impl AppState {
    /// The state on `registry` (already migrated, see [`Registry::setup`]) with `config`.
    pub fn new(registry: Registry, config: AppConfig) -> Self {
        AppState {
            inner: Arc::new(Inner {
                registry,
                cache: TenantCache::new(config.cache_capacity, config.cache_ttl),
                hasher: config.hasher,
                admin_key_digest: config.admin_key.as_deref().map(digest),
            }),
        }
    }

    /// The tenant registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The cache of verified keys.
    pub fn cache(&self) -> &TenantCache {
        &self.inner.cache
    }

    /// The hasher new keys are hashed with.
    pub fn hasher(&self) -> &KeyHasher {
        &self.inner.hasher
    }

    /// The active tenant whose key is `key`: from the cache, or from the registry after an
    /// Argon2 verification (then cached).
    ///
    /// # Errors
    ///
    /// `401` for a malformed, unknown or wrong key, `403 suspended` for a suspended tenant,
    /// `500` for database errors.
    pub async fn resolve(&self, key: &str) -> Result<Arc<Tenant>, ApiError> {
        let key_id = key_id_of(key).ok_or_else(|| ApiError::unauthorized("malformed API key"))?;
        let cache = self.cache();
        if let Some(tenant) = cache.get(key_id, key) {
            return Ok(tenant);
        }
        let generation = cache.generation();
        let record = self.registry().find_key(key_id).await?;
        let Some(record) = record else {
            return Err(ApiError::unauthorized("unknown API key"));
        };
        if !KeyHasher::verify(key, &record.key_hash).await {
            return Err(ApiError::unauthorized("unknown API key"));
        }
        let t = record.tenant;
        match t.status {
            TenantStatus::Active => {}
            TenantStatus::Suspended => {
                return Err(ApiError::forbidden(
                    "suspended",
                    format!("tenant {} is suspended", t.slug),
                ));
            }
            TenantStatus::Provisioning => {
                return Err(ApiError::forbidden(
                    "provisioning",
                    "tenant is being set up",
                ));
            }
        }
        let pool = self.registry().db().pool().clone();
        let tenant = Arc::new(Tenant::new(t.id, &t.slug, &t.plan, pool)?);
        cache.insert(generation, key_id, key, t.id, tenant.clone());
        Ok(tenant)
    }

    /// Whether `key` is the admin key (compared as SHA-256 digests).
    pub fn is_admin_key(&self, key: &str) -> bool {
        self.inner
            .admin_key_digest
            .is_some_and(|expected| expected == digest(key))
    }

    /// Suspends active tenant `slug` and forgets its cached keys; `None` when there is no such
    /// active tenant.
    ///
    /// The change and the invalidation run on a task of their own: a request dropped while the
    /// `UPDATE` is in flight cannot leave the change committed and the cache not invalidated.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn suspend(&self, slug: &str) -> pgdbm::Result<Option<TenantRecord>> {
        let (state, slug) = (self.clone(), slug.to_owned());
        detached(async move {
            let changed = state
                .registry()
                .change_status(&slug, TenantStatus::Active, TenantStatus::Suspended)
                .await?;
            if let Some(t) = &changed {
                state.cache().invalidate_tenant(t.id);
            }
            Ok(changed)
        })
        .await
    }

    /// Resumes suspended tenant `slug`; `None` when there is no such suspended tenant.
    ///
    /// # Errors
    ///
    /// Database errors.
    pub async fn resume(&self, slug: &str) -> pgdbm::Result<Option<TenantRecord>> {
        self.registry()
            .change_status(slug, TenantStatus::Suspended, TenantStatus::Active)
            .await
    }

    /// Deletes tenant `slug` (see [`delete_tenant`]) and forgets its cached keys, on a task of
    /// its own as [`suspend`](Self::suspend) does.
    ///
    /// # Errors
    ///
    /// Database errors; nothing is deleted then.
    pub async fn delete(&self, slug: &str) -> pgdbm::Result<Option<TenantRecord>> {
        let (state, slug) = (self.clone(), slug.to_owned());
        detached(async move {
            let deleted = delete_tenant(state.registry(), &slug).await?;
            if let Some(t) = &deleted {
                state.cache().invalidate_tenant(t.id);
            }
            Ok(deleted)
        })
        .await
    }
}

/// Runs `work` on a task of its own and waits for it: dropping the wait does not stop the work.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = pgdbm::Result<T>> + Send + 'static,
) -> pgdbm::Result<T> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        // The task panicked (or the runtime is shutting down): continue the panic here.
        Err(e) => std::panic::resume_unwind(
            e.try_into_panic()
                .unwrap_or_else(|cancelled| Box::new(cancelled.to_string())),
        ),
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}
