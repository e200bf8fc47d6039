//! Binary `COPY … FROM STDIN`, the parts every driver shares: the statements (see
//! [`CopyStatements`](super::CopyStatements)), the file header and trailer of the binary format,
//! and the check that each row has one value per column.

use crate::{Error, Result};

/// The binary COPY header: signature, flags (0) and header extension length (0).
pub const BINARY_HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The binary COPY trailer: a field count of -1.
pub const BINARY_TRAILER: [u8; 2] = (-1i16).to_be_bytes();

/// Checks that row `index` (0-based) of a `copy_in` has one value per column. The error, an
/// [`Error::Query`] on `copy_sql` naming the row (1-based) and both counts, is raised before the
/// row is sent: the driver then aborts the COPY, so nothing is written.
///
/// # Errors
///
/// When `values != columns`.
#[inline]
pub fn check_row_width(copy_sql: &str, index: usize, values: usize, columns: usize) -> Result<()> {
    if values == columns {
        return Ok(());
    }
    Err(Error::query(
        copy_sql,
        format!(
            "row {} has {} values for {} columns",
            index + 1,
            values,
            columns
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert!(check_row_width("COPY t FROM STDIN", 0, 2, 2).is_ok());
        let err = check_row_width("COPY t FROM STDIN", 2, 1, 2).unwrap_err();
        assert!(
            err.to_string().contains("row 3 has 1 values for 2 columns"),
            "{err}"
        );
        assert_eq!(&BINARY_HEADER[..11], b"PGCOPY\n\xff\r\n\0");
    }
}
