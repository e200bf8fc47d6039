//! Mapping JSON values (a row as an object keyed by column name, a `json` column) onto serde
//! types, with errors that never quote the data.
//!
//! `serde_json::from_value` would do the same work, but its messages embed the value that did not
//! fit (`invalid type: string "…", expected i64`, ``invalid value: integer `300` ``, ``unknown
//! variant `…` ``). This deserializer behaves as `serde_json`'s for `serde_json::Value` (owned
//! strings, numbers as `u64`/`i64`/`f64`, numeric map keys, enums as a string or a one-entry
//! object), but its error type ([`DeError`]) keeps only the *kind* of what was found (`a string`,
//! `an integer`…), the expected type, and the path to the field. Messages of custom
//! `Deserialize` implementations (`de::Error::custom`) may still quote the data: the callers hide
//! the input's values in them ([`DeError::message`]).

use std::cell::Cell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde_json::Value as J;

use crate::redact::Secrets;

/// Deserializes `T` from `value`. With `names`, the object's keys are column names, always shown
/// in error paths; otherwise a key is shown only when the type reads it as a field name (the
/// keys of a map are data).
pub(crate) fn from_json<T: de::DeserializeOwned>(value: J, names: bool) -> Result<T, DeError> {
    T::deserialize(ValueDe { value, names })
}

/// One step of the path to the value that failed.
#[derive(Debug, Clone)]
enum Step {
    /// A field (or column) name.
    Field(String),
    /// An array position.
    Index(usize),
    /// The value of a map entry whose key is data, so not shown.
    Entry,
}

/// What went wrong, without the value.
#[derive(Debug, Clone)]
enum Problem {
    /// The value is not of the expected type (or not a valid one).
    Mismatch { expected: String, found: String },
    /// A missing or unknown field, a wrong length… (said from the type, not the data).
    Other(String),
    /// The message of a custom `Deserialize` implementation, which may quote the data.
    Custom(String),
}

/// A deserialization error that does not quote the data (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct DeError {
    path: Vec<Step>,
    problem: Problem,
}

impl DeError {
    fn at(mut self, step: Step) -> Self {
        self.path.push(step);
        self
    }

    /// The path to the failed value, outermost first: `n`, `doc.items[2]`, `tags[…]`; empty at the
    /// top level.
    pub(crate) fn path(&self) -> String {
        let mut out = String::new();
        for step in self.path.iter().rev() {
            match step {
                Step::Field(name) if out.is_empty() => out.push_str(name),
                Step::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Entry => out.push_str("[…]"),
            }
        }
        out
    }

    /// `Some((expected, found))` for a type mismatch.
    pub(crate) fn mismatch(&self) -> Option<(&str, &str)> {
        match &self.problem {
            Problem::Mismatch { expected, found } => Some((expected, found)),
            Problem::Other(_) | Problem::Custom(_) => None,
        }
    }

    /// The problem in words (without the path). A custom message has `secrets` hidden in it (the
    /// other messages are made from the types only).
    pub(crate) fn message(&self, secrets: &Secrets) -> String {
        match &self.problem {
            Problem::Mismatch { expected, found } => format!("expected {expected}, found {found}"),
            Problem::Other(message) => message.clone(),
            Problem::Custom(message) => secrets.hide(message).into_owned(),
        }
    }

    fn other(message: String) -> Self {
        DeError {
            path: Vec::new(),
            problem: Problem::Other(message),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message(&Secrets::default()))
    }
}

impl std::error::Error for DeError {}

/// The kind of an unexpected value, without the value.
fn kind(unexp: &Unexpected<'_>) -> &'static str {
    match unexp {
        Unexpected::Bool(_) => "a boolean",
        Unexpected::Unsigned(_) | Unexpected::Signed(_) => "an integer",
        Unexpected::Float(_) => "a floating point number",
        Unexpected::Char(_) => "a character",
        Unexpected::Str(_) => "a string",
        Unexpected::Bytes(_) => "bytes",
        Unexpected::Unit => "null",
        Unexpected::Option => "an optional value",
        Unexpected::NewtypeStruct => "a newtype struct",
        Unexpected::Seq => "an array",
        Unexpected::Map => "an object",
        Unexpected::Enum => "an enum",
        Unexpected::UnitVariant => "a unit variant",
        Unexpected::NewtypeVariant => "a newtype variant",
        Unexpected::TupleVariant => "a tuple variant",
        Unexpected::StructVariant => "a struct variant",
        Unexpected::Other(_) => "a value of another kind",
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "none".to_owned(),
        [one] => format!("`{one}`"),
        _ => format!(
            "one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: Vec::new(),
            problem: Problem::Custom(msg.to_string()),
        }
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError {
            path: Vec::new(),
            problem: Problem::Mismatch {
                expected: exp.to_string(),
                found: kind(&unexp).to_owned(),
            },
        }
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError {
            path: Vec::new(),
            problem: Problem::Mismatch {
                expected: exp.to_string(),
                found: format!("{} that is not one", kind(&unexp)),
            },
        }
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Self::other(format!("invalid length {len}, expected {exp}"))
    }

    fn unknown_variant(_variant: &str, expected: &'static [&'static str]) -> Self {
        Self::other(format!("unknown variant, expected {}", one_of(expected)))
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        Self::other(format!("unknown field, expected {}", one_of(expected)))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::other(format!("missing field `{field}`"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::other(format!("duplicate field `{field}`"))
    }
}

fn unexpected(value: &J) -> Unexpected<'_> {
    match value {
        J::Null => Unexpected::Unit,
        J::Bool(b) => Unexpected::Bool(*b),
        J::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (_, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Unexpected::Str(s),
        J::Array(_) => Unexpected::Seq,
        J::Object(_) => Unexpected::Map,
    }
}

/// An owned JSON value as a serde `Deserializer`.
struct ValueDe {
    value: J,
    /// The keys of this object are column names (the row itself).
    names: bool,
}

impl ValueDe {
    fn inner(value: J) -> Self {
        ValueDe {
            value,
            names: false,
        }
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<J>, visitor: V) -> Result<V::Value, DeError> {
    let len = items.len();
    let mut seq = Seq {
        items: items.into_iter(),
        index: 0,
    };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.items.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: serde_json::Map<String, J>,
    names: bool,
    visitor: V,
) -> Result<V::Value, DeError> {
    let len = map.len();
    let mut access = Map {
        entries: map.into_iter(),
        pending: None,
        names,
        as_name: Cell::new(false),
    };
    let out = visitor.visit_map(&mut access)?;
    if access.entries.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in map"))
    }
}

impl<'de> Deserializer<'de> for ValueDe {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            J::Null => visitor.visit_unit(),
            J::Bool(b) => visitor.visit_bool(b),
            J::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => visitor.visit_u64(u),
                (_, Some(i)) => visitor.visit_i64(i),
                _ => visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => visitor.visit_string(s),
            J::Array(items) => visit_array(items, visitor),
            J::Object(map) => visit_object(map, self.names, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            J::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            J::String(s) => {
                visitor.visit_enum(IntoDeserializer::<'de, DeError>::into_deserializer(s))
            }
            J::Object(map) if map.len() == 1 => {
                let (variant, value) = map.into_iter().next().expect("one entry");
                visitor.visit_enum(Enum { variant, value })
            }
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a string or an object with one entry",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

struct Seq {
    items: std::vec::IntoIter<J>,
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let index = self.index;
        self.index += 1;
        seed.deserialize(ValueDe::inner(item))
            .map(Some)
            .map_err(|e| e.at(Step::Index(index)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    entries: serde_json::map::IntoIter,
    pending: Option<(String, J)>,
    names: bool,
    /// Whether the type read the last key as a field name.
    as_name: Cell<bool>,
}

impl<'de> MapAccess<'de> for Map {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.as_name.set(false);
        let out = seed.deserialize(KeyDe {
            key: key.clone(),
            as_name: &self.as_name,
        });
        self.pending = Some((key, value));
        out.map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let Some((key, value)) = self.pending.take() else {
            return Err(de::Error::custom("value is missing"));
        };
        let step = if self.names || self.as_name.get() {
            Step::Field(key)
        } else {
            Step::Entry
        };
        seed.deserialize(ValueDe::inner(value))
            .map_err(|e| e.at(step))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A map key: a string, parsed as a number or boolean when the type asks for one (as
/// `serde_json` does).
struct KeyDe<'a> {
    key: String,
    as_name: &'a Cell<bool>,
}

macro_rules! parsed_key {
    ($($method:ident => $visit:ident: $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.key.parse::<$t>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => Err(de::Error::invalid_type(Unexpected::Str(&self.key), &visitor)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_string(self.key)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.as_name.set(true);
        visitor.visit_string(self.key)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_enum(IntoDeserializer::<'de, DeError>::into_deserializer(
            self.key,
        ))
    }

    parsed_key! {
        deserialize_bool => visit_bool: bool,
        deserialize_i8 => visit_i8: i8,
        deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32,
        deserialize_i64 => visit_i64: i64,
        deserialize_i128 => visit_i128: i128,
        deserialize_u8 => visit_u8: u8,
        deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32,
        deserialize_u64 => visit_u64: u64,
        deserialize_u128 => visit_u128: u128,
        deserialize_f32 => visit_f32: f32,
        deserialize_f64 => visit_f64: f64,
    }

    serde::forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        ignored_any
    }
}

/// An enum written as `{"Variant": content}`.
struct Enum {
    variant: String,
    value: J,
}

impl<'de> EnumAccess<'de> for Enum {
    type Error = DeError;
    type Variant = Content;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Content), DeError> {
        let variant = seed.deserialize(IntoDeserializer::<'de, DeError>::into_deserializer(
            self.variant,
        ))?;
        Ok((variant, Content(self.value)))
    }
}

/// The content of an enum variant.
struct Content(J);

impl<'de> VariantAccess<'de> for Content {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.0 {
            J::Null => Ok(()),
            other => Err(de::Error::invalid_type(unexpected(&other), &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(ValueDe::inner(self.0))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.0 {
            J::Array(items) => visit_array(items, visitor),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            J::Object(map) => visit_object(map, false, visitor),
            J::Array(items) => visit_array(items, visitor),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"struct variant",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// Decodes `value` both with serde_json and with this deserializer: the results must agree.
    fn both<T>(value: J) -> (Result<T, String>, Result<T, DeError>)
    where
        T: de::DeserializeOwned,
    {
        (
            serde_json::from_value::<T>(value.clone()).map_err(|e| e.to_string()),
            from_json::<T>(value, false),
        )
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Shape {
        Dot,
        Circle(f64),
        Rect { w: u32, h: u32 },
        Pair(i8, i8),
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Everything {
        n: i64,
        small: u8,
        f: f32,
        s: String,
        opt: Option<String>,
        missing: Option<i32>,
        list: Vec<u16>,
        by_id: HashMap<u32, String>,
        flags: BTreeMap<bool, i8>,
        shapes: Vec<Shape>,
        tuple: (i32, String),
        unit: (),
        #[serde(default)]
        defaulted: i32,
        #[serde(flatten)]
        rest: HashMap<String, J>,
    }

    #[test]
    fn behaves_as_serde_json_on_success() {
        let value = json!({
            "n": -5, "small": 255, "f": 1.5, "s": "text", "opt": null,
            "list": [1, 2], "by_id": {"7": "seven"}, "flags": {"true": 1},
            "shapes": ["Dot", {"Circle": 2.0}, {"Rect": {"w": 1, "h": 2}}, {"Pair": [1, -1]}],
            "tuple": [1, "x"], "unit": null, "extra": {"k": [1]}
        });
        let (expected, ours) = both::<Everything>(value);
        assert_eq!(ours.unwrap(), expected.unwrap());
    }

    fn fails<T: de::DeserializeOwned + fmt::Debug>(value: J) -> DeError {
        let (theirs, ours) = both::<T>(value);
        assert!(theirs.is_err(), "serde_json accepts it: {theirs:?}");
        ours.unwrap_err()
    }

    #[test]
    fn errors_name_the_field_and_types_not_the_value() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct S {
            n: i64,
            inner: Inner,
            tags: Vec<u8>,
            map: HashMap<String, i32>,
            shape: Option<Shape>,
        }
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        #[serde(deny_unknown_fields)]
        struct Inner {
            small: u8,
        }
        let base = json!({
            "n": 1, "inner": {"small": 1}, "tags": [1], "map": {"k": 1}, "shape": null
        });
        let cases = [
            ("n", json!("SECRET-n"), "n", "expected i64, found a string"),
            (
                "inner",
                json!({"small": 300}),
                "inner.small",
                "expected u8, found an integer that is not one",
            ),
            (
                "tags",
                json!([1, "SECRET-t"]),
                "tags[1]",
                "expected u8, found a string",
            ),
            (
                "map",
                json!({"SECRET-key": "SECRET-v"}),
                "map[…]",
                "expected i32, found a string",
            ),
            (
                "shape",
                json!("SECRET-variant"),
                "shape",
                "unknown variant, expected one of `Dot`, `Circle`, `Rect`, `Pair`",
            ),
            (
                "inner",
                json!({"small": 1, "SECRET-field": 1}),
                "inner",
                "unknown field, expected `small`",
            ),
        ];
        for (field, bad, path, message) in cases {
            let mut value = base.clone();
            value[field] = bad;
            let err = fails::<S>(value);
            let text = format!("{err} {err:?}");
            assert!(!text.contains("SECRET"), "{text}");
            assert_eq!(err.path(), path, "{text}");
            assert_eq!(err.message(&Secrets::default()), message, "{text}");
        }
        let err = fails::<S>(json!({"n": 1}));
        assert_eq!(err.to_string(), "missing field `inner`");
        assert!(err.mismatch().is_none());
    }

    #[test]
    fn custom_messages_lose_the_values() {
        #[derive(Debug, Deserialize)]
        #[serde(try_from = "String")]
        struct Email(#[allow(dead_code)] String);
        impl TryFrom<String> for Email {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                Err(format!("not an email: {s}"))
            }
        }
        let value = json!({"to": "SECRET-address"});
        let err = fails::<HashMap<String, Email>>(value.clone());
        assert!(
            err.to_string().contains("SECRET"),
            "the message quotes it: {err}"
        );
        let mut secrets = Secrets::default();
        secrets.add_json(&value);
        assert_eq!(err.message(&secrets), "not an email: <hidden>");
    }
}
