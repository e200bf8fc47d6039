//! Where migrations come from: a directory at run time, files embedded at compile time
//! ([`embed_migrations!`](crate::embed_migrations)), or in-memory `(name, sql)` pairs.

use std::borrow::Cow;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

use super::split::{is_no_transaction, split_statements};

/// The ledger checksum of a migration text: lowercase hex SHA-256 of the text with CRLF turned
/// into LF and leading/trailing whitespace trimmed — the definition pgdbm for Python uses, so
/// both recognise each other's ledger rows. Computed on the raw text, before templates.
///
/// ```
/// let a = pgdbm::migrate::checksum("CREATE TABLE t (id int);\r\n");
/// let b = pgdbm::migrate::checksum("  CREATE TABLE t (id int);");
/// assert_eq!(a, b);
/// assert_eq!(a.len(), 64);
/// ```
pub fn checksum(text: &str) -> String {
    let normalized = text.replace("\r\n", "\n");
    let digest = Sha256::digest(normalized.trim().as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from_digit(u32::from(byte >> 4), 16).unwrap_or('0'));
        out.push(char::from_digit(u32::from(byte & 0xf), 16).unwrap_or('0'));
    }
    out
}

/// One migration file: its name (the ledger key within a module), its raw SQL and its checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    name: Cow<'static, str>,
    sql: Cow<'static, str>,
    checksum: String,
}

impl Migration {
    /// A migration named `name` (e.g. `001_users.sql`) with SQL text `sql`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] (kind `InvalidData`) naming the file when the text is empty or only
    /// whitespace; [`Error::Config`] when the name is empty or longer than the ledger's 255
    /// characters.
    pub fn new(
        name: impl Into<Cow<'static, str>>,
        sql: impl Into<Cow<'static, str>>,
    ) -> Result<Self> {
        let name = name.into();
        let sql = sql.into();
        if name.is_empty() || name.chars().count() > 255 {
            return Err(Error::config(
                "migration name",
                format!("{name:?} must be 1 to 255 characters"),
            ));
        }
        if sql.trim().is_empty() {
            return Err(Error::Io {
                context: format!("migration file {name} is empty"),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "empty migration"),
            });
        }
        let checksum = checksum(&sql);
        Ok(Migration {
            name,
            sql,
            checksum,
        })
    }

    /// The file name, e.g. `001_users.sql`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw SQL, before templates.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The ledger checksum of the raw SQL (see [`checksum`]).
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// `true` when the text has a line starting with `-- pgdbm:no-transaction`: its statements
    /// then run one by one in autocommit.
    pub fn no_transaction(&self) -> bool {
        is_no_transaction(&self.sql)
    }

    /// `true` when the text has at least one SQL statement, not only comments and whitespace.
    /// A file without one is refused by [`Migrator::apply`](crate::Migrator::apply) (it would
    /// be recorded as done, and adding its SQL later would change its checksum).
    ///
    /// ```
    /// use pgdbm::migrate::Migration;
    /// assert!(!Migration::new("001_todo.sql", "-- TODO\n/* later */")?.has_statement());
    /// assert!(Migration::new("001_users.sql", "CREATE TABLE users (id int)")?.has_statement());
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    pub fn has_statement(&self) -> bool {
        !split_statements(&self.sql).is_empty()
    }
}

/// An ordered set of migrations (by file name), as a [`Module`](crate::Module) ships them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationSource {
    migrations: Vec<Migration>,
}

impl MigrationSource {
    /// A source from migrations, sorted by name.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when two migrations have the same name.
    pub fn from_migrations(mut migrations: Vec<Migration>) -> Result<Self> {
        migrations.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = migrations.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(Error::config(
                "migrations",
                format!("two migrations are named {}", w[0].name),
            ));
        }
        Ok(MigrationSource { migrations })
    }

    /// A source from in-memory `(file name, sql)` pairs, sorted by name. Handy in tests and for
    /// migrations generated at run time.
    ///
    /// ```
    /// let source = pgdbm::MigrationSource::from_pairs([
    ///     ("002_index.sql", "CREATE INDEX ON {{tables.users}} (email);"),
    ///     ("001_users.sql", "CREATE TABLE {{tables.users}} (id serial PRIMARY KEY, email text);"),
    /// ])?;
    /// assert_eq!(source.migrations()[0].name(), "001_users.sql");
    /// # Ok::<(), pgdbm::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Migration::new`] (an empty text) and [`MigrationSource::from_migrations`].
    pub fn from_pairs<N, S>(pairs: impl IntoIterator<Item = (N, S)>) -> Result<Self>
    where
        N: Into<Cow<'static, str>>,
        S: Into<Cow<'static, str>>,
    {
        let migrations = pairs
            .into_iter()
            .map(|(name, sql)| Migration::new(name, sql))
            .collect::<Result<Vec<_>>>()?;
        Self::from_migrations(migrations)
    }

    /// The source [`embed_migrations!`](crate::embed_migrations) expands to. The macro has
    /// already refused empty, non-UTF-8 and escaping files at compile time, so this cannot fail;
    /// should it meet an empty text anyway, that file is left out (and logged).
    #[doc(hidden)]
    pub fn embedded(files: &'static [(&'static str, &'static str)]) -> Self {
        let mut migrations = Vec::with_capacity(files.len());
        for (name, sql) in files {
            match Migration::new(*name, *sql) {
                Ok(m) => migrations.push(m),
                Err(e) => tracing::error!(error = %e, "embedded migration left out"),
            }
        }
        migrations.sort_by(|a, b| a.name.cmp(&b.name));
        migrations.dedup_by(|a, b| a.name == b.name);
        MigrationSource { migrations }
    }

    /// Reads the `*.sql` files of `dir` (not recursively; names starting with `.` are ignored),
    /// sorted by file name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the directory or file when it cannot be read, when a file is not
    /// UTF-8, is empty, or is a symbolic link resolving outside `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let io = |context: String| move |source| Error::Io { context, source };
        let root = dir.canonicalize().map_err(io(format!(
            "cannot read migrations directory {}",
            dir.display()
        )))?;
        let entries = std::fs::read_dir(&root).map_err(io(format!(
            "cannot read migrations directory {}",
            dir.display()
        )))?;
        let mut migrations = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io(format!(
                "cannot read migrations directory {}",
                dir.display()
            )))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue; // a non-UTF-8 name cannot end in ".sql" as far as we can tell
            };
            if name.starts_with('.') || !name.ends_with(".sql") {
                continue;
            }
            let path = entry.path();
            let real = path
                .canonicalize()
                .map_err(io(format!("cannot read migration file {}", path.display())))?;
            if !real.starts_with(&root) {
                return Err(Error::Io {
                    context: format!(
                        "migration file {} resolves outside the migrations directory (to {})",
                        path.display(),
                        real.display()
                    ),
                    source: std::io::Error::new(
                        std::io::ErrorKind::PermissionDenied,
                        "symbolic link escapes the directory",
                    ),
                });
            }
            if !real.is_file() {
                continue;
            }
            let bytes = std::fs::read(&real)
                .map_err(io(format!("cannot read migration file {}", path.display())))?;
            let sql = String::from_utf8(bytes).map_err(|e| Error::Io {
                context: format!("migration file {} is not valid UTF-8", path.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            migrations.push(Migration::new(name, sql).map_err(|e| match e {
                Error::Io { source, .. } => Error::Io {
                    context: format!("migration file {} is empty", path.display()),
                    source,
                },
                other => other,
            })?);
        }
        Self::from_migrations(migrations)
    }

    /// The migrations, ordered by name.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// The number of migrations.
    pub fn len(&self) -> usize {
        self.migrations.len()
    }

    /// `true` when there is no migration.
    pub fn is_empty(&self) -> bool {
        self.migrations.is_empty()
    }

    /// The migration named `name`.
    pub fn get(&self, name: &str) -> Option<&Migration> {
        self.migrations
            .binary_search_by(|m| m.name().cmp(name))
            .ok()
            .map(|i| &self.migrations[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory removed on drop.
    pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "pgdbm_{tag}_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
        fn write(&self, name: &str, text: &[u8]) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn checksum_definition() {
        // sha256("SELECT 1;") computed independently (`printf 'SELECT 1;' | sha256sum`).
        let expected = "17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a";
        assert_eq!(checksum("\r\n  SELECT 1;\r\n\n"), expected);
        assert_eq!(checksum("SELECT 1;"), expected);
        assert_eq!(
            checksum("a\r\nb"),
            checksum("a\nb"),
            "CRLF is normalized inside the text too"
        );
        assert_ne!(checksum("a\nb"), checksum("a\n b"));
        // The empty string's SHA-256 is well known.
        assert_eq!(
            checksum("  \n"),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn pairs_are_sorted_and_validated() {
        let s =
            MigrationSource::from_pairs([("b.sql", "SELECT 2"), ("a.sql", "SELECT 1")]).unwrap();
        assert_eq!(s.migrations()[0].name(), "a.sql");
        assert_eq!(s.get("b.sql").unwrap().sql(), "SELECT 2");
        let e = MigrationSource::from_pairs([("002_x.sql", " \n ")]).unwrap_err();
        assert!(e.to_string().contains("002_x.sql"), "{e}");
        assert!(MigrationSource::from_pairs([("a.sql", "x"), ("a.sql", "y")]).is_err());
    }

    #[test]
    fn directory_source() {
        let dir = TempDir::new("src");
        dir.write("002_b.sql", b"SELECT 2;");
        dir.write("001_a.sql", b"SELECT 1;");
        dir.write(".hidden.sql", b"SELECT 'hidden';");
        dir.write("notes.txt", b"not a migration");
        let s = MigrationSource::from_dir(&dir.0).unwrap();
        let names: Vec<_> = s.migrations().iter().map(Migration::name).collect();
        assert_eq!(names, ["001_a.sql", "002_b.sql"]);

        dir.write("003_empty.sql", b"\n\n");
        let e = MigrationSource::from_dir(&dir.0).unwrap_err();
        assert!(
            e.to_string().contains("003_empty.sql") && e.to_string().contains("empty"),
            "{e}"
        );
        std::fs::remove_file(dir.0.join("003_empty.sql")).unwrap();

        dir.write("004_latin1.sql", b"SELECT '\xe9';");
        let e = MigrationSource::from_dir(&dir.0).unwrap_err();
        assert!(
            e.to_string().contains("004_latin1.sql") && e.to_string().contains("UTF-8"),
            "{e}"
        );
        std::fs::remove_file(dir.0.join("004_latin1.sql")).unwrap();

        assert!(MigrationSource::from_dir(dir.0.join("missing")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_escape_is_refused() {
        let outside = TempDir::new("outside");
        outside.write("secret.sql", b"SELECT 'outside';");
        let dir = TempDir::new("links");
        dir.write("001_a.sql", b"SELECT 1;");
        dir.write("target.sql.txt", b"SELECT 'inside';");
        // A link inside the directory is fine.
        std::os::unix::fs::symlink(dir.0.join("target.sql.txt"), dir.0.join("002_in.sql")).unwrap();
        assert_eq!(MigrationSource::from_dir(&dir.0).unwrap().len(), 2);
        std::os::unix::fs::symlink(outside.0.join("secret.sql"), dir.0.join("003_out.sql"))
            .unwrap();
        let e = MigrationSource::from_dir(&dir.0).unwrap_err();
        assert!(
            e.to_string().contains("003_out.sql") && e.to_string().contains("outside"),
            "{e}"
        );
    }
}
