//! What every driver reads the same way: which column types are read at all, and the families
//! whose binary formats pgdbm itself decodes (`numeric`, `interval`, dates and times, the network
//! types, `money`); the basic scalars are left to each driver's codecs.

use crate::Value;
use crate::driver::{PgType, datetime, network, numeric};

impl PgType {
    /// `true` when a column of this family is read (for a driver that gave the family through
    /// [`PgType::unless_missing`]): not [`PgType::Other`] nor [`PgType::Array`] (arrays are read
    /// by their elements' family), and `numeric` only with pgdbm's `decimal` feature.
    #[inline]
    pub const fn readable(self) -> bool {
        match self {
            PgType::Other | PgType::Array => false,
            PgType::Numeric => numeric::READABLE,
            _ => true,
        }
    }

    /// `true` when an array whose elements are of this family is read: as
    /// [`readable`](PgType::readable), except `void`.
    #[inline]
    pub const fn readable_element(self) -> bool {
        !matches!(self, PgType::Void) && self.readable()
    }
}

/// Reads one non-NULL value of family `ty` when pgdbm decodes that family itself; `None` for the
/// families a driver reads with its own codecs (booleans, integers, floats, text, `bytea`, JSON,
/// `uuid`, `void`). The message of an error never contains the value.
pub fn decode_own(ty: PgType, raw: &[u8]) -> Option<Result<Value, String>> {
    Some(match ty {
        PgType::Numeric => numeric::decode(raw),
        PgType::Interval => crate::Interval::from_be_bytes(raw).map(Value::Interval),
        PgType::Date | PgType::Time | PgType::Timestamp | PgType::TimestampTz => {
            datetime::decode(ty, raw)
        }
        PgType::Inet | PgType::Cidr | PgType::MacAddr | PgType::MacAddr8 => {
            network::decode(ty, raw).map(Value::Text)
        }
        PgType::Money => <[u8; 8]>::try_from(raw)
            .map(|b| Value::Int8(i64::from_be_bytes(b)))
            .map_err(|_| format!("expected 8 bytes of money, got {}", raw.len())),
        _ => return None,
    })
}
