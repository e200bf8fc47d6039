//! API keys: `sk_<key id>_<secret>`. The key id is public and finds the key's row; only an
//! Argon2id hash of the whole key is stored, so a leaked registry does not leak usable keys.

use std::fmt;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, Params, PasswordHasher, PasswordVerifier};
use rand::RngCore;

const PREFIX: &str = "sk_";
/// Bytes of randomness in the key id (shown as twice as many hex digits).
const KEY_ID_BYTES: usize = 6;
/// Bytes of randomness in the secret: 256 bits.
const SECRET_BYTES: usize = 32;
const SALT_BYTES: usize = 16;

/// A freshly generated key. Its text is shown to the tenant once, at sign-up, and never stored.
#[derive(Clone)]
pub struct ApiKey {
    text: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secret never reaches logs.
        f.debug_struct("ApiKey")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut id = [0u8; KEY_ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        ApiKey {
            text: format!("{PREFIX}{}_{}", hex(&id), hex(&secret)),
        }
    }

    /// The public key id (looked up in the registry).
    pub fn key_id(&self) -> &str {
        key_id_of(&self.text).expect("a generated key is well-formed")
    }

    /// The whole key, as the client sends it.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

/// The key id of a presented key, or `None` when `key` does not have the shape of a key
/// (`sk_`, 12 hex digits, `_`, 64 hex digits).
pub fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == KEY_ID_BYTES * 2
        && secret.len() == SECRET_BYTES * 2
        && id
            .bytes()
            .chain(secret.bytes())
            .all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hashes and verifies keys with Argon2id, off the async runtime (`spawn_blocking`): one hash
/// takes tens of milliseconds of CPU by design.
#[derive(Debug, Clone)]
pub struct KeyHasher {
    params: Params,
}

impl Default for KeyHasher {
    /// Argon2id with the crate's default (OWASP-recommended) cost: 19 MiB, 2 passes.
    fn default() -> Self {
        KeyHasher {
            params: Params::DEFAULT,
        }
    }
}

impl KeyHasher {
    /// A hasher with these Argon2id parameters.
    pub fn new(params: Params) -> Self {
        KeyHasher { params }
    }

    /// The smallest cost Argon2 allows (8 KiB, one pass): for tests only, where the debug build
    /// would spend seconds per hash at the default cost. Verification reads the cost from the
    /// stored hash, so keys hashed either way verify with any hasher.
    pub fn low_cost() -> Self {
        let params = Params::new(Params::MIN_M_COST, 1, 1, None)
            .expect("the minimum Argon2 parameters are valid");
        KeyHasher { params }
    }

    /// The stored form of `key`: a PHC string (`$argon2id$v=19$m=…`) with a random salt.
    ///
    /// # Errors
    ///
    /// A message when hashing fails (it does not for keys of this shape).
    pub async fn hash(&self, key: &ApiKey) -> Result<String, String> {
        let argon = Argon2::from(&self.params);
        let text = key.expose().to_owned();
        let mut salt = [0u8; SALT_BYTES];
        rand::rng().fill_bytes(&mut salt);
        let hashed = tokio::task::spawn_blocking(move || {
            argon
                .hash_password_with_salt(text.as_bytes(), &salt)
                .map(|hash: PasswordHash| hash.to_string())
        })
        .await
        .map_err(|e| format!("hashing task failed: {e}"))?;
        hashed.map_err(|e| format!("argon2: {e}"))
    }

    /// Whether `key` matches `stored` (a PHC string from [`hash`](Self::hash)). A malformed
    /// stored hash does not match.
    pub async fn verify(key: &str, stored: &str) -> bool {
        let (key, stored) = (key.to_owned(), stored.to_owned());
        tokio::task::spawn_blocking(move || {
            Argon2::default()
                .verify_password(key.as_bytes(), stored.as_str())
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let (a, b) = (ApiKey::generate(), ApiKey::generate());
        assert_ne!(a.expose(), b.expose());
        assert_eq!(key_id_of(a.expose()), Some(a.key_id()));
        assert_eq!(a.key_id().len(), 12);
        assert!(!format!("{a:?}").contains(&a.expose()[16..]));
    }

    #[test]
    fn malformed_keys_have_no_id() {
        let key = ApiKey::generate();
        for bad in [
            "",
            "sk_",
            &key.expose()[1..],
            &key.expose()[..key.expose().len() - 1],
            &key.expose().replace("sk_", "pk_"),
            "sk_zzzzzzzzzzzz_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert_eq!(key_id_of(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_hash_verifies_its_key_only() {
        let hasher = KeyHasher::low_cost();
        let (key, other) = (ApiKey::generate(), ApiKey::generate());
        let stored = hasher.hash(&key).await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(!stored.contains(key.expose()));
        assert!(KeyHasher::verify(key.expose(), &stored).await);
        assert!(!KeyHasher::verify(other.expose(), &stored).await);
        assert!(!KeyHasher::verify(key.expose(), "not a hash").await);
    }
}
