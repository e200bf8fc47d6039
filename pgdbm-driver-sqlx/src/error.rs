//! Mapping sqlx errors onto pgdbm's [`Error`].

use pgdbm::driver::ServerError;
use pgdbm::driver::TlsError;
use pgdbm::{DbError, Error};
use sqlx::postgres::PgDatabaseError;

/// Maps an error of a statement (`sql` is kept, cut to size, never the parameters): server
/// errors to [`Error::Database`], an I/O failure of the connection to [`Error::ConnectionLost`].
pub(crate) fn map(err: sqlx::Error, sql: &str) -> Error {
    match err {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => Error::from(db_error(pg)).with_sql(sql),
            None => Error::query(sql, db.message().to_owned(), Some(Box::new(db))),
        },
        sqlx::Error::PoolClosed => Error::PoolClosed,
        sqlx::Error::Io(io) => Error::connection_lost(sql, io.to_string(), Some(Box::new(io))),
        other => Error::query(sql, other.to_string(), Some(Box::new(other))),
    }
}

/// The server error's fields as pgdbm's [`DbError`].
pub(crate) fn db_error(db: &PgDatabaseError) -> DbError {
    let severity = format!("{:?}", db.severity()).to_ascii_uppercase();
    ServerError {
        code: db.code(),
        message: db.message(),
        severity: &severity,
        detail: db.detail(),
        hint: db.hint(),
        schema: db.schema(),
        table: db.table(),
        column: db.column(),
        constraint: db.constraint(),
    }
    .to_db_error()
}

/// The cause of a failed connect: the server's own error when it sent one (an authentication
/// failure says so), a [`TlsError`] when TLS failed in a way a retry cannot fix (a refused
/// certificate, a TLS alert, a server without TLS where the mode requires it), sqlx's error
/// otherwise.
pub(crate) fn connect_cause(err: sqlx::Error) -> pgdbm::BoxError {
    if let sqlx::Error::Database(db) = &err {
        if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
            return Box::new(Error::from(db_error(pg)));
        }
    }
    if let Some(tls) = tls_failure(&err) {
        return Box::new(tls);
    }
    Box::new(err)
}

/// The TLS failure `err` stands for, if any. sqlx reports its own TLS setup errors as
/// `Error::Tls`, and what rustls refuses during the handshake as an I/O error (`InvalidData`)
/// wrapping the `rustls::Error`.
fn tls_failure(err: &sqlx::Error) -> Option<TlsError> {
    match err {
        sqlx::Error::Tls(inner) => {
            #[cfg(feature = "tls")]
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(TlsError::new(describe_rustls(tls)));
            }
            let text = inner.to_string();
            Some(TlsError::new(if text == "server does not support TLS" {
                "the server does not support TLS, and ssl_mode (require, verify-ca or verify-full) \
                 requires it"
                    .to_owned()
            } else {
                format!("TLS setup failed: {text}")
            }))
        }
        #[cfg(feature = "tls")]
        sqlx::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(|tls| TlsError::new(describe_rustls(tls))),
        _ => None,
    }
}

/// What a rustls error means for the user.
#[cfg(feature = "tls")]
fn describe_rustls(err: &rustls::Error) -> String {
    use rustls::{CertificateError, Error as E};
    match err {
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "TLS: the server certificate is not valid for the host name (the sqlx driver checks \
             it in verify-full and, unlike libpq, in verify-ca): {err}"
        ),
        E::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "TLS: the server certificate is not trusted, its issuer is unknown (the sqlx driver \
             trusts the certificates of ssl_ca_file and the webpki roots): {err}"
        ),
        E::InvalidCertificate(_) => format!("TLS: the server certificate was refused: {err}"),
        E::AlertReceived(_) => format!(
            "TLS: the server refused the handshake: {err} (check the client certificate and key, \
             and the server's TLS settings)"
        ),
        _ => format!("TLS handshake failed: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use pgdbm::BoxError;
    use pgdbm::driver::is_permanent;

    use super::*;

    #[test]
    fn tls_failures_are_permanent() {
        let cause = connect_cause(sqlx::Error::Tls("server does not support TLS".into()));
        assert!(is_permanent(&cause), "{cause}");
        assert!(cause.to_string().contains("ssl_mode"), "{cause}");

        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let cause: BoxError = connect_cause(sqlx::Error::Io(refused));
        assert!(!is_permanent(&cause), "{cause}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn rustls_refusals_are_described() {
        let unknown = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, unknown);
        let cause = connect_cause(sqlx::Error::Io(io));
        assert!(is_permanent(&cause), "{cause}");
        assert!(cause.to_string().contains("not trusted"), "{cause}");

        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnknownCA);
        let cause = connect_cause(sqlx::Error::Tls(Box::new(alert)));
        assert!(is_permanent(&cause), "{cause}");
        assert!(cause.to_string().contains("client certificate"), "{cause}");
    }
}
