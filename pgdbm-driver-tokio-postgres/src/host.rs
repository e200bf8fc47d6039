//! Where the server is.

/// `true` when `host` is a Unix-socket directory.
pub(crate) fn is_unix_socket(host: &str) -> bool {
    host.starts_with('/')
}
