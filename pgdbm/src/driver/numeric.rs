//! `numeric` in PostgreSQL's binary format, written once for every driver (the client libraries'
//! codecs have no `numeric`).
//!
//! Writing needs no feature: integers, `f32`/`f64` and (with pgdbm's `decimal` feature)
//! `rust_decimal::Decimal` all go into a `numeric` parameter. Reading gives a
//! [`Value::Numeric`](crate::Value) when pgdbm's `decimal` feature is on ([`READABLE`]); a driver
//! keys its `numeric` columns on that constant, not on a feature of its own, so enabling
//! `decimal` on pgdbm or on any driver turns `numeric` on for every driver alike.
//!
//! The format: the number of base-10000 digits, the weight of the first (a power of 10000), the
//! sign (`0x0000`, `0x4000` negative, `0xC000` NaN, `0xD000` infinity, `0xF000` -infinity), the
//! display scale (digits after the decimal point), then the digits, each an `i16`.

/// `true` when `numeric` columns are read (as [`Value::Numeric`](crate::Value)): pgdbm was
/// built with its `decimal` feature.
pub const READABLE: bool = cfg!(feature = "decimal");

const NEGATIVE: u16 = 0x4000;
const NAN: u16 = 0xC000;
const INFINITY: u16 = 0xD000;
const NEG_INFINITY: u16 = 0xF000;

/// A value bound to a `numeric` parameter: see [`Numeric::write_binary`] for how each kind is
/// written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Numeric(Repr);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Repr {
    Int(i64),
    Float(f64),
    #[cfg(feature = "decimal")]
    Decimal(rust_decimal::Decimal),
}

impl Numeric {
    /// An integer, exactly.
    pub const fn int(v: i64) -> Numeric {
        Numeric(Repr::Int(v))
    }

    /// A float, as the shortest decimal that reads back as the same `f64` (what `v.to_string()`
    /// prints: `0.1` is sent as `0.1`, not as the binary fraction's 55 digits); NaN and the
    /// infinities as `numeric`'s own (PostgreSQL 14 and later).
    pub const fn float(v: f64) -> Numeric {
        Numeric(Repr::Float(v))
    }

    /// An `f32`, as its own shortest decimal (`0.1f32` is sent as `0.1`).
    pub fn float32(v: f32) -> Numeric {
        if !v.is_finite() {
            return Numeric::float(f64::from(v));
        }
        // The shortest decimal of an `f32` has at most 9 digits: as an `f64` it prints the same.
        Numeric::float(v.to_string().parse().unwrap_or(f64::from(v)))
    }

    /// A `Decimal`, exactly, with its scale (`1.50` stays `1.50`).
    #[cfg(feature = "decimal")]
    pub const fn decimal(v: rust_decimal::Decimal) -> Numeric {
        Numeric(Repr::Decimal(v))
    }

    /// Writes the value in `numeric`'s binary format (without a length prefix).
    pub fn write_binary(&self, out: &mut impl Extend<u8>) {
        match self.0 {
            Repr::Int(v) => write_digits(out, v < 0, &v.unsigned_abs().to_string(), 0),
            Repr::Float(v) if v.is_nan() => write_special(out, NAN),
            Repr::Float(v) if v.is_infinite() => {
                write_special(out, if v > 0.0 { INFINITY } else { NEG_INFINITY });
            }
            Repr::Float(v) => {
                // `Display` of a finite float: the shortest round-trip digits, never an exponent.
                let text = v.abs().to_string();
                let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
                let digits = format!("{int}{frac}");
                write_digits(out, v < 0.0, &digits, frac.len());
            }
            #[cfg(feature = "decimal")]
            Repr::Decimal(d) => write_digits(
                out,
                d.is_sign_negative(),
                &d.mantissa().unsigned_abs().to_string(),
                d.scale() as usize,
            ),
        }
    }
}

fn write_special(out: &mut impl Extend<u8>, sign: u16) {
    out.extend(0i16.to_be_bytes());
    out.extend(0i16.to_be_bytes());
    out.extend(sign.to_be_bytes());
    out.extend(0u16.to_be_bytes());
}

/// `digits` (ASCII, the value without its point) × 10^-`scale`, in base-10000 groups.
fn write_digits(out: &mut impl Extend<u8>, negative: bool, digits: &str, scale: usize) {
    let digits = digits.as_bytes();
    // Align on groups of four: zeros after the last fractional digit, then before the first.
    let frac_pad = (4 - scale % 4) % 4;
    let int_len = digits.len().saturating_sub(scale);
    let lead_pad = (4 - int_len % 4) % 4;
    let mut padded = Vec::with_capacity(lead_pad + digits.len() + frac_pad + 4);
    padded.resize(lead_pad, b'0');
    if digits.len() < scale {
        // Fewer digits than the scale: zeros between the point and the first digit.
        padded.resize(lead_pad + scale - digits.len(), b'0');
    }
    padded.extend_from_slice(digits);
    padded.resize(padded.len() + frac_pad, b'0');
    let mut groups: Vec<i16> = padded
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let frac_groups = (scale + frac_pad) / 4;
    let mut weight = groups.len() as i64 - frac_groups as i64 - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= leading as i64;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign = if negative && !groups.is_empty() {
        NEGATIVE
    } else {
        0
    };
    out.extend((groups.len() as i16).to_be_bytes());
    out.extend((weight as i16).to_be_bytes());
    out.extend(sign.to_be_bytes());
    out.extend((scale as u16).to_be_bytes());
    for g in groups {
        out.extend(g.to_be_bytes());
    }
}

/// Reads a `numeric` in binary format as a [`Value::Numeric`](crate::Value). The message of an
/// error names the problem (NaN, infinity, out of range for `Decimal`, or pgdbm built without
/// `decimal`), never the value.
///
/// # Errors
///
/// The value has no `Decimal` (NaN, ±infinity, more than 28 digits after the point or beyond
/// `Decimal`'s range), the bytes are not a `numeric`, or [`READABLE`] is `false`.
pub fn decode(raw: &[u8]) -> Result<crate::Value, String> {
    #[cfg(feature = "decimal")]
    {
        decode_decimal(raw).map(crate::Value::Numeric)
    }
    #[cfg(not(feature = "decimal"))]
    {
        let _ = raw;
        Err("numeric is read with pgdbm's `decimal` feature".to_owned())
    }
}

#[cfg(feature = "decimal")]
fn decode_decimal(raw: &[u8]) -> Result<rust_decimal::Decimal, String> {
    use rust_decimal::Decimal;
    let word = |i: usize| {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".to_owned())
    };
    let ndigits = usize::try_from(word(0)?).map_err(|_| "bad numeric")?;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = word(3)? as u16;
    match sign {
        NAN => return Err("NaN cannot be read as Decimal (read it as f64: cast to float8)".into()),
        INFINITY | NEG_INFINITY => {
            return Err(
                "infinity cannot be read as Decimal (read it as f64: cast to float8)".into(),
            );
        }
        0 | NEGATIVE => {}
        _ => return Err("bad numeric sign".into()),
    }
    let overflow = || "numeric out of range for Decimal".to_owned();
    let mut m: i128 = 0;
    for i in 0..ndigits {
        let digit = i128::from(word(4 + i)?);
        m = m
            .checked_mul(10_000)
            .and_then(|m| m.checked_add(digit))
            .ok_or_else(overflow)?;
    }
    let mut exp = weight - (ndigits as i32 - 1); // value = m * 10000^exp
    while exp > 0 {
        m = m.checked_mul(10_000).ok_or_else(overflow)?;
        exp -= 1;
    }
    let mut scale = u32::try_from(-exp * 4).unwrap_or_default();
    // Drop zeros beyond the display scale so the mantissa fits.
    while scale > u32::from(dscale) && m % 10 == 0 {
        m /= 10;
        scale -= 1;
    }
    if sign == NEGATIVE {
        m = -m;
    }
    let mut d = Decimal::try_from_i128_with_scale(m, scale).map_err(|_| overflow())?;
    if d.scale() < u32::from(dscale) && u32::from(dscale) <= 28 {
        d.rescale(u32::from(dscale));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: Numeric) -> Vec<u8> {
        let mut out = Vec::new();
        n.write_binary(&mut out);
        out
    }

    fn words(raw: &[u8]) -> Vec<i16> {
        raw.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn floats_are_sent_as_their_shortest_decimal() {
        // 0.1: one group 1000 at weight -1, scale 1.
        assert_eq!(words(&bytes(Numeric::float(0.1))), [1, -1, 0, 1, 1000]);
        // -12345.5: groups 1, 2345, 5000; weight 1; negative; scale 1.
        assert_eq!(
            words(&bytes(Numeric::float(-12345.5))),
            [3, 1, 0x4000, 1, 1, 2345, 5000]
        );
        assert_eq!(words(&bytes(Numeric::float(100.0))), [1, 0, 0, 0, 100]);
        assert_eq!(words(&bytes(Numeric::float(0.0))), [0, 0, 0, 0]);
        assert_eq!(words(&bytes(Numeric::float(f64::NAN)))[2] as u16, NAN);
        assert_eq!(
            words(&bytes(Numeric::float(f64::NEG_INFINITY)))[2] as u16,
            NEG_INFINITY
        );
        assert_eq!(words(&bytes(Numeric::float(1e-5))), [1, -2, 0, 5, 1000]);
        assert_eq!(bytes(Numeric::float32(0.1)), bytes(Numeric::float(0.1)));
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(words(&bytes(Numeric::int(10_000))), [1, 1, 0, 0, 1]);
        assert_eq!(
            words(&bytes(Numeric::int(i64::MIN))),
            [5, 4, 0x4000, 0, 922, 3372, 368, 5477, 5808]
        );
    }

    #[cfg(feature = "decimal")]
    #[test]
    fn decimals_roundtrip_with_their_scale() {
        use rust_decimal::Decimal;
        for s in [
            "0",
            "1",
            "-1",
            "12345.678901",
            "0.0001",
            "10000",
            "-0.5",
            "100.00",
            "1e-20",
            "79228162514264337593543950335",
        ] {
            let d: Decimal = s.parse().or_else(|_| Decimal::from_scientific(s)).unwrap();
            let back = decode_decimal(&bytes(Numeric::decimal(d))).unwrap();
            assert_eq!(back, d, "{s}");
            assert_eq!(back.scale(), d.scale(), "{s}");
        }
        let err = decode_decimal(&bytes(Numeric::float(f64::INFINITY))).unwrap_err();
        assert!(err.contains("infinity"), "{err}");
        assert_eq!(
            decode_decimal(&bytes(Numeric::float(-0.25))).unwrap(),
            "-0.25".parse::<Decimal>().unwrap()
        );
    }
}
