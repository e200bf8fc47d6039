//! Writing a new, empty-bodied migration file: `NNN_name.sql` or `YYYYMMDDHHMMSS_name.sql`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// How [`create_migration`] names a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MigrationNaming {
    /// `NNN_name.sql`: one more than the highest leading number in the directory, zero padded
    /// to 3 digits (`001`, `002`, …, `1000` after `999`).
    #[default]
    Sequential,
    /// `YYYYMMDDHHMMSS_name.sql` in UTC.
    Timestamp,
}

/// Writes a new migration file into `dir` (created if missing) and returns its path.
///
/// `name` is sanitized: lowercased, anything other than ASCII letters and digits becomes `_`,
/// repeated and surrounding underscores are removed. The file starts with a comment line (so
/// it is not empty) for you to write the SQL under.
///
/// ```no_run
/// use pgdbm::migrate::{MigrationNaming, create_migration};
/// let path = create_migration("migrations", "Add users table", MigrationNaming::Sequential)?;
/// assert!(path.ends_with("001_add_users_table.sql"));
/// # Ok::<(), pgdbm::Error>(())
/// ```
///
/// # Errors
///
/// [`Error::Config`] when `name` has no letter or digit; [`Error::Io`] when the directory
/// cannot be read or the file cannot be written (an existing file is never overwritten).
pub fn create_migration(
    dir: impl AsRef<Path>,
    name: &str,
    naming: MigrationNaming,
) -> Result<PathBuf> {
    let dir = dir.as_ref();
    let slug = sanitize(name);
    if slug.is_empty() {
        return Err(Error::config(
            "migration name",
            format!("{name:?} has no letter or digit"),
        ));
    }
    let io = |context: String| move |source| Error::Io { context, source };
    std::fs::create_dir_all(dir).map_err(io(format!("cannot create {}", dir.display())))?;
    let prefix = match naming {
        MigrationNaming::Sequential => {
            let mut highest = 0u64;
            for entry in
                std::fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?
            {
                let entry = entry.map_err(io(format!("cannot read {}", dir.display())))?;
                let file = entry.file_name();
                let Some(file) = file.to_str() else { continue };
                if file.starts_with('.') || !file.ends_with(".sql") {
                    continue;
                }
                let digits: String = file.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse::<u64>() {
                    highest = highest.max(n);
                }
            }
            format!("{:03}", highest + 1)
        }
        MigrationNaming::Timestamp => utc_timestamp(SystemTime::now()),
    };
    let path = dir.join(format!("{prefix}_{slug}.sql"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io(format!("cannot create {}", path.display())))?;
    writeln!(file, "-- Migration: {slug}\n")
        .map_err(io(format!("cannot write {}", path.display())))?;
    Ok(path)
}

fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// `YYYYMMDDHHMMSS` in UTC, computed by hand (no calendar crate needed).
fn utc_timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(utc_timestamp(UNIX_EPOCH), "19700101000000");
        // 2024-02-29T23:59:58Z = 1709251198
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_198);
        assert_eq!(utc_timestamp(t), "20240229235958");
        // 2000-03-01T12:34:56Z = 951914096
        let t = UNIX_EPOCH + Duration::from_secs(951_914_096);
        assert_eq!(utc_timestamp(t), "20000301123456");
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize("Add users table!"), "add_users_table");
        assert_eq!(sanitize("  --x__y--  "), "x_y");
        assert_eq!(sanitize("ümlaut"), "mlaut");
        assert_eq!(sanitize("!!!"), "");
    }

    #[test]
    fn sequential_and_timestamped_files() {
        let dir = std::env::temp_dir().join(format!("pgdbm_create_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p1 = create_migration(&dir, "Create users", MigrationNaming::Sequential).unwrap();
        assert!(p1.ends_with("001_create_users.sql"), "{p1:?}");
        std::fs::write(dir.join("009_other.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.join(".100_hidden.sql"), "SELECT 1;").unwrap();
        let p2 = create_migration(&dir, "next one", MigrationNaming::Sequential).unwrap();
        assert!(p2.ends_with("010_next_one.sql"), "{p2:?}");
        let p3 = create_migration(&dir, "stamped", MigrationNaming::Timestamp).unwrap();
        let file = p3.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(file.len(), "YYYYMMDDHHMMSS_stamped.sql".len(), "{file}");
        assert!(file[..14].chars().all(|c| c.is_ascii_digit()));
        // The new file is a valid (non-empty) migration.
        let source = crate::MigrationSource::from_dir(&dir).unwrap();
        assert_eq!(source.len(), 4);
        assert!(create_migration(&dir, "???", MigrationNaming::Sequential).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
