//! The id a plan link carries: a hash of a statement's text as the monitor recorded it, so the
//! page can only ask for plans of statements the application ran (the text itself never travels
//! in a URL).

/// 16 lowercase hex digits of the 64-bit FNV-1a hash of `sql`.
pub(crate) fn statement_id(sql: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = sql
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

/// Whether `id` has the shape [`statement_id`] produces.
pub(crate) fn is_statement_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_well_formed() {
        let id = statement_id("SELECT 1");
        assert_eq!(id, statement_id("SELECT 1"));
        assert_ne!(id, statement_id("SELECT 2"));
        assert!(is_statement_id(&id));
        assert_eq!(statement_id(""), "cbf29ce484222325");
        assert!(!is_statement_id("CBF29CE484222325"));
        assert!(!is_statement_id("<script>"));
        assert!(!is_statement_id("cbf29ce48422232"));
    }
}
