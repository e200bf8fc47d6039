//! `inet`, `cidr`, `macaddr` and `macaddr8` as text, written once for every driver: bound from
//! a `String` (parsed here into the type's binary format) and read as the `String` the server's
//! own output would be (`192.168.0.1/24`, `10.0.0.0/8`, `08:00:2b:01:02:03`).
//!
//! Both drivers exchange every value in binary format, so the text has to be turned into the
//! type's bytes on the client. What is accepted:
//!
//! * `inet`: an IPv4 or IPv6 address, optionally `/bits` (`192.168.0.1`, `10.1.2.3/8`, `::1`,
//!   `2001:db8::1/64`);
//! * `cidr`: the same, with no bits set to the right of the mask (`10.0.0.0/8`; without `/bits`,
//!   the whole address); PostgreSQL's abbreviations (`10/8`) are not accepted;
//! * `macaddr`: 12 hex digits, optionally separated by `:`, `-` or `.` (`08:00:2b:01:02:03`,
//!   `08-00-2b-01-02-03`, `0800.2b01.0203`, `08002b010203`); `macaddr8` also 16 digits.
//!
//! For any other spelling, cast in SQL (`$1::text::inet`). The binary format: `inet`/`cidr` are
//! family (2 for IPv4, 3 for IPv6), mask bits, a cidr flag, the address length, the address;
//! `macaddr`/`macaddr8` are their 6 or 8 bytes.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::driver::PgType;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 3;

/// A network value in its binary format, ready to write (at most 20 bytes: `inet`'s four header
/// bytes and an IPv6 address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkBytes {
    bytes: [u8; 20],
    len: u8,
}

impl NetworkBytes {
    fn new(parts: &[&[u8]]) -> NetworkBytes {
        let mut out = NetworkBytes {
            bytes: [0; 20],
            len: 0,
        };
        for part in parts {
            let start = usize::from(out.len);
            out.bytes[start..start + part.len()].copy_from_slice(part);
            out.len += part.len() as u8;
        }
        out
    }

    /// The bytes to send (without a length prefix).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// `text` as a value of the network family `ty` ([`PgType::Inet`], [`PgType::Cidr`],
/// [`PgType::MacAddr`], [`PgType::MacAddr8`]) in its binary format; `None` when the text is not
/// one (see the [module docs](self) for what is accepted).
pub fn encode(ty: PgType, text: &str) -> Option<NetworkBytes> {
    match ty {
        PgType::Inet | PgType::Cidr => {
            let cidr = ty == PgType::Cidr;
            let (addr, bits) = match text.trim().split_once('/') {
                Some((addr, bits)) => {
                    (addr.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?))
                }
                None => (text.trim().parse::<IpAddr>().ok()?, None),
            };
            let (family, octets): (u8, Vec<u8>) = match addr {
                IpAddr::V4(a) => (AF_INET, a.octets().to_vec()),
                IpAddr::V6(a) => (AF_INET6, a.octets().to_vec()),
            };
            let width = (octets.len() * 8) as u8;
            let bits = bits.unwrap_or(width);
            if bits > width || (cidr && !host_bits_clear(&octets, bits)) {
                return None;
            }
            Some(NetworkBytes::new(&[
                &[family, bits, u8::from(cidr), octets.len() as u8],
                &octets,
            ]))
        }
        PgType::MacAddr | PgType::MacAddr8 => {
            let digits: Vec<u8> = text
                .trim()
                .chars()
                .filter(|c| !matches!(c, ':' | '-' | '.'))
                .map(|c| c.to_digit(16).map(|d| d as u8))
                .collect::<Option<_>>()?;
            let bytes: Vec<u8> = digits
                .chunks(2)
                .map(|p| p[0] << 4 | p.get(1).copied().unwrap_or(0))
                .collect();
            match (ty, digits.len()) {
                (PgType::MacAddr, 12) | (PgType::MacAddr8, 16) => {
                    Some(NetworkBytes::new(&[&bytes]))
                }
                // A 6-byte address as a macaddr8: FF:FE in the middle, as the server does.
                (PgType::MacAddr8, 12) => Some(NetworkBytes::new(&[
                    &bytes[..3],
                    &[0xff, 0xfe],
                    &bytes[3..],
                ])),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `true` when no bit of `octets` right of the first `bits` is set.
fn host_bits_clear(octets: &[u8], bits: u8) -> bool {
    octets.iter().enumerate().all(|(i, byte)| {
        let keep = usize::from(bits).saturating_sub(i * 8).min(8);
        let mask = if keep == 8 { 0xff } else { !(0xffu8 >> keep) };
        byte & !mask == 0
    })
}

/// Reads a value of the network family `ty` from its binary format as the text the server would
/// print. The message of an error names the problem, never the value.
///
/// # Errors
///
/// The bytes are not a value of that type, or `ty` is not a network family.
pub fn decode(ty: PgType, raw: &[u8]) -> Result<String, String> {
    match ty {
        PgType::Inet | PgType::Cidr => {
            let [family, bits, _cidr, len, addr @ ..] = raw else {
                return Err("truncated inet".to_owned());
            };
            if usize::from(*len) != addr.len() {
                return Err("inet address length mismatch".to_owned());
            }
            let (ip, width) = match (*family, addr.len()) {
                (AF_INET, 4) => {
                    let a: [u8; 4] = addr.try_into().map_err(|_| "bad inet")?;
                    (Ipv4Addr::from(a).to_string(), 32)
                }
                (AF_INET6, 16) => {
                    let a: [u8; 16] = addr.try_into().map_err(|_| "bad inet")?;
                    (ipv6_text(Ipv6Addr::from(a)), 128)
                }
                _ => return Err("unknown inet address family".to_owned()),
            };
            Ok(if ty == PgType::Cidr || *bits != width {
                format!("{ip}/{bits}")
            } else {
                ip
            })
        }
        PgType::MacAddr | PgType::MacAddr8 => {
            let expected = if ty == PgType::MacAddr { 6 } else { 8 };
            if raw.len() != expected {
                return Err(format!(
                    "expected {expected} bytes of macaddr, got {}",
                    raw.len()
                ));
            }
            let mut text = String::with_capacity(3 * expected);
            for (i, b) in raw.iter().enumerate() {
                if i > 0 {
                    text.push(':');
                }
                let _ = write!(text, "{b:02x}");
            }
            Ok(text)
        }
        other => Err(format!("{other:?} is not a network type")),
    }
}

/// An IPv6 address as the server prints it: Rust's compressed form, except that an address whose
/// first six groups are zero ends in dotted IPv4 (`::1.2.3.4`), as PostgreSQL writes it (`::`
/// and `::1` stay as they are).
fn ipv6_text(addr: Ipv6Addr) -> String {
    let s = addr.segments();
    if s[..6] == [0; 6] && !(s[6] == 0 && s[7] <= 1) {
        let [.., a, b, c, d] = addr.octets();
        return format!("::{a}.{b}.{c}.{d}");
    }
    addr.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(ty: PgType, text: &str) -> String {
        let bytes = encode(ty, text).unwrap_or_else(|| panic!("{text} refused"));
        decode(ty, bytes.as_bytes()).unwrap()
    }

    #[test]
    fn addresses_print_as_the_server_prints_them() {
        assert_eq!(roundtrip(PgType::Inet, "192.168.0.1/24"), "192.168.0.1/24");
        assert_eq!(roundtrip(PgType::Inet, "192.168.0.1/32"), "192.168.0.1");
        assert_eq!(roundtrip(PgType::Inet, "::1"), "::1");
        assert_eq!(roundtrip(PgType::Inet, "::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(roundtrip(PgType::Inet, "::1.2.3.4"), "::1.2.3.4");
        assert_eq!(roundtrip(PgType::Inet, "2001:db8::1/64"), "2001:db8::1/64");
        assert_eq!(roundtrip(PgType::Cidr, "10.0.0.0/8"), "10.0.0.0/8");
        assert_eq!(roundtrip(PgType::Cidr, "10.1.2.3"), "10.1.2.3/32");
        assert_eq!(
            roundtrip(PgType::MacAddr, "08-00-2B-01-02-03"),
            "08:00:2b:01:02:03"
        );
        assert_eq!(
            roundtrip(PgType::MacAddr, "0800.2b01.0203"),
            "08:00:2b:01:02:03"
        );
        assert_eq!(
            roundtrip(PgType::MacAddr8, "08:00:2b:01:02:03"),
            "08:00:2b:ff:fe:01:02:03"
        );
    }

    #[test]
    fn malformed_text_is_refused() {
        assert_eq!(encode(PgType::Cidr, "10.1.0.0/8"), None, "host bits set");
        assert_eq!(encode(PgType::Inet, "1.2.3.4/33"), None);
        assert_eq!(encode(PgType::Inet, "localhost"), None);
        assert_eq!(encode(PgType::MacAddr, "08:00:2b:01:02"), None);
        assert_eq!(encode(PgType::MacAddr, "08:00:2b:01:02:0g"), None);
        assert!(decode(PgType::Inet, &[2, 32, 0, 4, 1]).is_err());
        assert!(decode(PgType::MacAddr, &[1, 2]).is_err());
    }
}
