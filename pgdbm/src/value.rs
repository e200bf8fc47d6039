//! The driver-neutral value type: what parameters are bound as and what rows hold.
//!
//! [`ToParam`] turns Rust values into [`Value`]s for binding; [`FromValue`] reads them back.
//! Drivers translate [`Value`] to and from their wire types, so the same module code runs on
//! every driver.
//!
//! Integers bind to any integer column: an `i32` can be sent to a `BIGINT` column and an `i64` to an
//! `INTEGER` column when it fits; a value out of range for the column is an [`Error::Encode`](crate::Error::Encode)
//! naming the parameter, never a silent wrap.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The SQL type family of a [`Value`], without its data. Used for arrays' element type and in
/// error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Type not known (an empty array of unknown element type, a NULL).
    Unknown,
    /// `boolean`
    Bool,
    /// `smallint`
    Int2,
    /// `integer`
    Int4,
    /// `bigint`
    Int8,
    /// `real`
    Float4,
    /// `double precision`
    Float8,
    /// `text`, `varchar`, `char(n)`, `name`, `citext`
    Text,
    /// `bytea`
    Bytea,
    /// `json` / `jsonb`
    Json,
    /// `uuid`
    Uuid,
    /// `date`
    Date,
    /// `time`
    Time,
    /// `timestamp`
    Timestamp,
    /// `timestamptz`
    TimestampTz,
    /// `numeric`
    Numeric,
    /// `interval`
    Interval,
    /// an array
    Array,
}

impl Kind {
    /// The SQL name of this kind.
    pub fn sql_name(self) -> &'static str {
        match self {
            Kind::Unknown => "unknown",
            Kind::Bool => "boolean",
            Kind::Int2 => "smallint",
            Kind::Int4 => "integer",
            Kind::Int8 => "bigint",
            Kind::Float4 => "real",
            Kind::Float8 => "double precision",
            Kind::Text => "text",
            Kind::Bytea => "bytea",
            Kind::Json => "jsonb",
            Kind::Uuid => "uuid",
            Kind::Date => "date",
            Kind::Time => "time",
            Kind::Timestamp => "timestamp",
            Kind::TimestampTz => "timestamptz",
            Kind::Numeric => "numeric",
            Kind::Interval => "interval",
            Kind::Array => "array",
        }
    }
}

/// A PostgreSQL value, independent of the driver.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// `boolean`
    Bool(bool),
    /// `smallint`
    Int2(i16),
    /// `integer`
    Int4(i32),
    /// `bigint`
    Int8(i64),
    /// `real`
    Float4(f32),
    /// `double precision`
    Float8(f64),
    /// `text` and the other string types.
    Text(String),
    /// `bytea`
    Bytea(Vec<u8>),
    /// `json` or `jsonb` (binds to either).
    Json(serde_json::Value),
    /// `uuid`
    Uuid(uuid::Uuid),
    /// `date`
    #[cfg(feature = "chrono")]
    Date(chrono::NaiveDate),
    /// `time` (without time zone)
    #[cfg(feature = "chrono")]
    Time(chrono::NaiveTime),
    /// `timestamp` (without time zone)
    #[cfg(feature = "chrono")]
    Timestamp(chrono::NaiveDateTime),
    /// `timestamptz`
    #[cfg(feature = "chrono")]
    TimestampTz(chrono::DateTime<chrono::Utc>),
    /// `numeric`
    #[cfg(feature = "decimal")]
    Numeric(rust_decimal::Decimal),
    /// `interval`
    Interval(crate::Interval),
    /// `'infinity'` (or, `negative`, `'-infinity'`) of a `date`, `timestamp` or `timestamptz`
    /// (`kind` says which): a point no chrono type holds. Read and bound as
    /// [`Infinite<T>`](crate::Infinite).
    #[cfg(feature = "chrono")]
    Infinity {
        /// [`Kind::Date`], [`Kind::Timestamp`] or [`Kind::TimestampTz`].
        kind: Kind,
        /// `true` for `'-infinity'`.
        negative: bool,
    },
    /// An array; `items` may contain [`Value::Null`]. A multi-dimensional array is an array of
    /// arrays (`element` [`Kind::Array`]), each of the same length.
    Array {
        /// The element type (may be [`Kind::Unknown`] for an empty array built without a type).
        element: Kind,
        /// The elements.
        items: Vec<Value>,
    },
}

impl Value {
    /// The type family of this value.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Unknown,
            Value::Bool(_) => Kind::Bool,
            Value::Int2(_) => Kind::Int2,
            Value::Int4(_) => Kind::Int4,
            Value::Int8(_) => Kind::Int8,
            Value::Float4(_) => Kind::Float4,
            Value::Float8(_) => Kind::Float8,
            Value::Text(_) => Kind::Text,
            Value::Bytea(_) => Kind::Bytea,
            Value::Json(_) => Kind::Json,
            Value::Uuid(_) => Kind::Uuid,
            #[cfg(feature = "chrono")]
            Value::Date(_) => Kind::Date,
            #[cfg(feature = "chrono")]
            Value::Time(_) => Kind::Time,
            #[cfg(feature = "chrono")]
            Value::Timestamp(_) => Kind::Timestamp,
            #[cfg(feature = "chrono")]
            Value::TimestampTz(_) => Kind::TimestampTz,
            #[cfg(feature = "decimal")]
            Value::Numeric(_) => Kind::Numeric,
            Value::Interval(_) => Kind::Interval,
            #[cfg(feature = "chrono")]
            Value::Infinity { kind, .. } => *kind,
            Value::Array { .. } => Kind::Array,
        }
    }

    /// `true` for [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// A short description of the value's type for error messages (`NULL`, `integer`,
    /// `integer[]`…). Never the value itself.
    pub fn type_description(&self) -> String {
        match self {
            Value::Null => "NULL".to_owned(),
            Value::Array {
                element: Kind::Array,
                items,
            } => match items.first() {
                Some(inner @ Value::Array { .. }) => format!("{}[]", inner.type_description()),
                _ => "array[]".to_owned(),
            },
            Value::Array { element, .. } => format!("{}[]", element.sql_name()),
            #[cfg(feature = "chrono")]
            Value::Infinity { kind, negative } => {
                format!(
                    "{} '{}infinity'",
                    kind.sql_name(),
                    if *negative { "-" } else { "" }
                )
            }
            other => other.kind().sql_name().to_owned(),
        }
    }

    /// The value as an `i64` when it is an integer of any width.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int2(v) => Some(v.into()),
            Value::Int4(v) => Some(v.into()),
            Value::Int8(v) => Some(v),
            _ => None,
        }
    }

    /// Converts the value to JSON: used by [`Row::deserialize`](crate::Row::deserialize).
    /// Dates and times become ISO 8601 strings, UUIDs and numerics strings, bytea an array of bytes.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(v) => J::Bool(*v),
            Value::Int2(v) => J::from(*v),
            Value::Int4(v) => J::from(*v),
            Value::Int8(v) => J::from(*v),
            Value::Float4(v) => J::from(*v),
            Value::Float8(v) => J::from(*v),
            Value::Text(v) => J::String(v.clone()),
            Value::Bytea(v) => J::from(v.clone()),
            Value::Json(v) => v.clone(),
            Value::Uuid(v) => J::String(v.to_string()),
            #[cfg(feature = "chrono")]
            Value::Date(v) => serde_json::to_value(v).unwrap_or(J::Null),
            #[cfg(feature = "chrono")]
            Value::Time(v) => serde_json::to_value(v).unwrap_or(J::Null),
            #[cfg(feature = "chrono")]
            Value::Timestamp(v) => serde_json::to_value(v).unwrap_or(J::Null),
            #[cfg(feature = "chrono")]
            Value::TimestampTz(v) => serde_json::to_value(v).unwrap_or(J::Null),
            #[cfg(feature = "decimal")]
            Value::Numeric(v) => J::String(v.to_string()),
            Value::Interval(v) => serde_json::to_value(v).unwrap_or(J::Null),
            #[cfg(feature = "chrono")]
            Value::Infinity { negative, .. } => {
                J::String(if *negative { "-infinity" } else { "infinity" }.to_owned())
            }
            Value::Array { items, .. } => J::Array(items.iter().map(Value::to_json).collect()),
        }
    }
}

/// A Rust value that can be bound as a statement parameter.
///
/// Implemented for the scalar types, `String`/`&str`, `Vec<u8>`/`&[u8]`, `serde_json::Value`,
/// [`Json<T>`], `uuid::Uuid`, chrono types (feature `chrono`), `rust_decimal::Decimal` (feature
/// `decimal`), `Option<T>` (`None` is `NULL`), `Vec<T>`/`&[T]` (arrays) and [`Value`] itself.
pub trait ToParam: Sync {
    /// The value to send.
    fn to_param(&self) -> Cow<'_, Value>;
}

/// A Rust type that can be read from a [`Value`].
pub trait FromValue: Sized {
    /// The name used in error messages for this type.
    fn type_name() -> String {
        std::any::type_name::<Self>().to_owned()
    }
    /// Reads the value. On a mismatch, returns a description of what was found instead
    /// (e.g. `"NULL"`, `"text"` or `"bigint value out of range"`).
    ///
    /// # Errors
    ///
    /// A description of the actual value when it cannot be turned into `Self`.
    fn from_value(value: &Value) -> Result<Self, String>;

    /// As [`from_value`](FromValue::from_value), taking the value: a `String`, `Vec<u8>`, JSON
    /// value or array is moved out instead of copied. The default borrows it; mapping a whole
    /// result with [`FromRow::from_rows`](crate::FromRow::from_rows) uses this.
    ///
    /// # Errors
    ///
    /// As [`from_value`](FromValue::from_value).
    fn from_owned_value(value: Value) -> Result<Self, String> {
        Self::from_value(&value)
    }
}

/// Parameters as the [`Executor`](crate::Executor) methods take them.
pub type Params<'a> = &'a [&'a dyn ToParam];

/// Builds a parameter slice: `params![id, &name]` is `&[&id as &dyn ToParam, &name]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[&dyn $crate::ToParam] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::ToParam),+] as &[&dyn $crate::ToParam] };
}

impl ToParam for Value {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Borrowed(self)
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Result<Self, String> {
        Ok(value.clone())
    }
    fn from_owned_value(value: Value) -> Result<Self, String> {
        Ok(value)
    }
}

impl<T: ToParam + ?Sized> ToParam for &T {
    fn to_param(&self) -> Cow<'_, Value> {
        (**self).to_param()
    }
}

impl<T: ToParam> ToParam for Option<T> {
    fn to_param(&self) -> Cow<'_, Value> {
        match self {
            Some(v) => v.to_param(),
            None => Cow::Owned(Value::Null),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn type_name() -> String {
        format!("Option<{}>", T::type_name())
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
    fn from_owned_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_owned_value(other).map(Some),
        }
    }
}

/// Element types of arrays: types whose [`Kind`] is known statically.
pub trait ArrayElement: ToParam {
    /// The element kind used for an empty array.
    const KIND: Kind;
}

macro_rules! scalar {
    ($t:ty, $variant:ident, $kind:ident, $name:literal) => {
        impl ToParam for $t {
            fn to_param(&self) -> Cow<'_, Value> {
                Cow::Owned(Value::$variant(self.clone()))
            }
        }
        impl ArrayElement for $t {
            const KIND: Kind = Kind::$kind;
        }
        impl FromValue for $t {
            fn type_name() -> String {
                $name.to_owned()
            }
            fn from_value(value: &Value) -> Result<Self, String> {
                match value {
                    Value::$variant(v) => Ok(v.clone()),
                    other => Err(other.type_description()),
                }
            }
            fn from_owned_value(value: Value) -> Result<Self, String> {
                match value {
                    Value::$variant(v) => Ok(v),
                    other => Err(other.type_description()),
                }
            }
        }
    };
}

/// What reading `'infinity'` into the chrono type `name` says: which type holds it.
#[cfg(feature = "chrono")]
pub(crate) fn infinity_hint(value: &Value, name: &str) -> Option<String> {
    match value {
        Value::Infinity { .. } => Some(format!(
            "{}, which {name} cannot hold: read it as pgdbm::Infinite<{name}> \
             (or as text: col::text)",
            value.type_description()
        )),
        _ => None,
    }
}

/// `date`: `'infinity'` read as `NaiveDate` names [`Infinite`](crate::Infinite).
#[cfg(feature = "chrono")]
macro_rules! dated {
    ($t:ty, $variant:ident, $name:literal) => {
        impl ToParam for $t {
            fn to_param(&self) -> Cow<'_, Value> {
                Cow::Owned(Value::$variant(*self))
            }
        }
        impl ArrayElement for $t {
            const KIND: Kind = Kind::$variant;
        }
        impl FromValue for $t {
            fn type_name() -> String {
                $name.to_owned()
            }
            fn from_value(value: &Value) -> Result<Self, String> {
                match value {
                    Value::$variant(v) => Ok(*v),
                    other => {
                        Err(infinity_hint(other, $name).unwrap_or_else(|| other.type_description()))
                    }
                }
            }
        }
    };
}

/// `timestamp` and `timestamptz`: reading one as the other's Rust type says which type to use;
/// reading `'infinity'` names [`Infinite`](crate::Infinite).
#[cfg(feature = "chrono")]
macro_rules! zoned {
    ($t:ty, $variant:ident, $name:literal, $other:ident, $hint:literal) => {
        impl ToParam for $t {
            fn to_param(&self) -> Cow<'_, Value> {
                Cow::Owned(Value::$variant(*self))
            }
        }
        impl ArrayElement for $t {
            const KIND: Kind = Kind::$variant;
        }
        impl FromValue for $t {
            fn type_name() -> String {
                $name.to_owned()
            }
            fn from_value(value: &Value) -> Result<Self, String> {
                match value {
                    Value::$variant(v) => Ok(*v),
                    Value::$other(_) => Err($hint.to_owned()),
                    other => {
                        Err(infinity_hint(other, $name).unwrap_or_else(|| other.type_description()))
                    }
                }
            }
        }
    };
}

scalar!(bool, Bool, Bool, "bool");
scalar!(String, Text, Text, "String");
scalar!(Vec<u8>, Bytea, Bytea, "Vec<u8>");
scalar!(serde_json::Value, Json, Json, "serde_json::Value");
scalar!(uuid::Uuid, Uuid, Uuid, "Uuid");
#[cfg(feature = "chrono")]
dated!(chrono::NaiveDate, Date, "NaiveDate");
#[cfg(feature = "chrono")]
scalar!(chrono::NaiveTime, Time, Time, "NaiveTime");
#[cfg(feature = "chrono")]
zoned!(
    chrono::NaiveDateTime,
    Timestamp,
    "NaiveDateTime",
    TimestampTz,
    "timestamptz (with time zone): read it as chrono::DateTime<Utc>"
);
#[cfg(feature = "chrono")]
zoned!(
    chrono::DateTime<chrono::Utc>,
    TimestampTz,
    "DateTime<Utc>",
    Timestamp,
    "timestamp (without time zone): read it as chrono::NaiveDateTime, or convert it in SQL \
     (col AT TIME ZONE 'UTC')"
);
#[cfg(feature = "decimal")]
scalar!(rust_decimal::Decimal, Numeric, Numeric, "Decimal");

macro_rules! integer {
    ($t:ty, $variant:ident, $kind:ident, $name:literal) => {
        impl ToParam for $t {
            fn to_param(&self) -> Cow<'_, Value> {
                Cow::Owned(Value::$variant(*self))
            }
        }
        impl ArrayElement for $t {
            const KIND: Kind = Kind::$kind;
        }
        impl FromValue for $t {
            fn type_name() -> String {
                $name.to_owned()
            }
            fn from_value(value: &Value) -> Result<Self, String> {
                match value.as_i64() {
                    Some(v) => <$t>::try_from(v).map_err(|_| {
                        format!(
                            "{} value out of range for {}",
                            value.type_description(),
                            $name
                        )
                    }),
                    None => Err(value.type_description()),
                }
            }
        }
    };
}

integer!(i16, Int2, Int2, "i16");
integer!(i32, Int4, Int4, "i32");
integer!(i64, Int8, Int8, "i64");

impl ToParam for f32 {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Float4(*self))
    }
}
impl ArrayElement for f32 {
    const KIND: Kind = Kind::Float4;
}
impl FromValue for f32 {
    fn type_name() -> String {
        "f32".to_owned()
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Float4(v) => Ok(*v),
            other => Err(other.type_description()),
        }
    }
}
impl ToParam for f64 {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Float8(*self))
    }
}
impl ArrayElement for f64 {
    const KIND: Kind = Kind::Float8;
}
impl FromValue for f64 {
    fn type_name() -> String {
        "f64".to_owned()
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Float8(v) => Ok(*v),
            Value::Float4(v) => Ok(f64::from(*v)),
            other => Err(other.type_description()),
        }
    }
}

impl ToParam for str {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Text(self.to_owned()))
    }
}
impl ToParam for [u8] {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Bytea(self.to_vec()))
    }
}

impl<T: ArrayElement> ToParam for [T] {
    fn to_param(&self) -> Cow<'_, Value> {
        Cow::Owned(Value::Array {
            element: T::KIND,
            items: self.iter().map(|v| v.to_param().into_owned()).collect(),
        })
    }
}

impl<T: ArrayElement, const N: usize> ToParam for [T; N] {
    fn to_param(&self) -> Cow<'_, Value> {
        self.as_slice().to_param()
    }
}

/// `&str` elements: `&["a", "b"][..]`, `vec!["a", "b"]` and `&[&str]` bind as `text[]`.
impl ArrayElement for str {
    const KIND: Kind = Kind::Text;
}

impl<T: ArrayElement + ?Sized> ArrayElement for &T {
    const KIND: Kind = T::KIND;
}

impl<T: ArrayElement> ToParam for Vec<T> {
    fn to_param(&self) -> Cow<'_, Value> {
        self.as_slice().to_param()
    }
}

impl<T: ArrayElement> ArrayElement for Option<T> {
    const KIND: Kind = T::KIND;
}

/// Arrays of arrays: `Vec<Vec<i64>>`, `&[[i32; 2]]`… bind as multi-dimensional arrays (each
/// sub-array of the same length; see [`driver::array`](crate::driver::array)).
impl<T: ArrayElement> ArrayElement for [T] {
    const KIND: Kind = Kind::Array;
}

impl<T: ArrayElement> ArrayElement for Vec<T> {
    const KIND: Kind = Kind::Array;
}

impl<T: ArrayElement, const N: usize> ArrayElement for [T; N] {
    const KIND: Kind = Kind::Array;
}

impl<T: FromValue> FromValue for Vec<T> {
    fn type_name() -> String {
        format!("Vec<{}>", T::type_name())
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            Value::Array { items, .. } => items
                .iter()
                .map(|item| T::from_value(item).map_err(|found| format!("array element {found}")))
                .collect(),
            other => Err(other.type_description()),
        }
    }
    fn from_owned_value(value: Value) -> Result<Self, String> {
        match value {
            Value::Array { items, .. } => items
                .into_iter()
                .map(|item| {
                    T::from_owned_value(item).map_err(|found| format!("array element {found}"))
                })
                .collect(),
            other => Err(other.type_description()),
        }
    }
}

/// A `json`/`jsonb` value mapped to any serde type: bind `Json(&my_struct)`, read `Json<MyStruct>`.
///
/// A value whose serialization fails (a map with non-string keys) binds as JSON `null`.
///
/// `Json<T>` is a field type in both ways of mapping rows: with `#[derive(FromRow)]` it reads the
/// column through [`FromValue`]; it also implements `Serialize` and `Deserialize` transparently
/// (as `T` itself), so a serde type read with [`Row::deserialize`](crate::Row::deserialize) or
/// written out again can hold it too.
///
/// ```
/// #[derive(serde::Serialize, serde::Deserialize, pgdbm::FromRow)]
/// struct Profile {
///     id: i64,
///     settings: pgdbm::Json<Settings>,
/// }
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Settings {
///     theme: String,
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Json<T>(pub T);

impl<T: Serialize + Sync> ToParam for Json<T> {
    fn to_param(&self) -> Cow<'_, Value> {
        // Serializing to a JSON value only fails for maps with non-string keys (or a failing
        // custom `Serialize`); such a value binds as JSON `null`, as documented on `Json`.
        Cow::Owned(Value::Json(
            serde_json::to_value(&self.0).unwrap_or(serde_json::Value::Null),
        ))
    }
}

impl<T: DeserializeOwned> FromValue for Json<T> {
    fn type_name() -> String {
        format!("Json<{}>", std::any::type_name::<T>())
    }
    fn from_value(value: &Value) -> Result<Self, String> {
        match value {
            // Not serde_json's own deserializer: its messages quote the value.
            Value::Json(v) => crate::de::from_json(v.clone(), false)
                .map(Json)
                .map_err(|e| {
                    let mut secrets = crate::redact::Secrets::default();
                    secrets.add_json(v);
                    let message = e.message(&secrets);
                    match e.path() {
                        path if path.is_empty() => format!("json that does not match ({message})"),
                        path => format!("json that does not match (at `{path}`: {message})"),
                    }
                }),
            other => Err(other.type_description()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_widen_and_range_check_on_read() {
        assert_eq!(i64::from_value(&Value::Int2(7)), Ok(7));
        assert_eq!(i32::from_value(&Value::Int8(7)), Ok(7));
        let err = i16::from_value(&Value::Int8(1 << 40)).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
        assert_eq!(i32::from_value(&Value::Null), Err("NULL".to_owned()));
        assert_eq!(Option::<i32>::from_value(&Value::Null), Ok(None));
    }

    #[test]
    fn arrays_carry_their_element_kind() {
        let empty: Vec<i64> = vec![];
        match empty.to_param().into_owned() {
            Value::Array { element, items } => {
                assert_eq!(element, Kind::Int8);
                assert!(items.is_empty());
            }
            other => panic!("not an array: {other:?}"),
        }
        let with_null = vec![Some(1i32), None];
        assert_eq!(
            with_null.to_param().into_owned(),
            Value::Array {
                element: Kind::Int4,
                items: vec![Value::Int4(1), Value::Null]
            }
        );
        assert_eq!(
            Vec::<Option<i32>>::from_value(&with_null.to_param()),
            Ok(with_null)
        );
    }

    #[test]
    fn arrays_of_arrays_nest() {
        let grid = vec![vec![1i64, 2], vec![3, 4]];
        let value = grid.to_param().into_owned();
        assert_eq!(value.type_description(), "bigint[][]");
        assert_eq!(Vec::<Vec<i64>>::from_value(&value), Ok(grid));
        let fixed: &[[i32; 2]] = &[[1, 2]];
        assert_eq!(
            fixed.to_param().into_owned().type_description(),
            "integer[][]"
        );
    }

    #[test]
    fn params_macro_builds_a_slice() {
        let name = String::from("x");
        let p = params![1i32, name, "lit", None::<i64>];
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].to_param().into_owned(), Value::Int4(1));
        assert_eq!(p[2].to_param().into_owned(), Value::Text("lit".into()));
        assert!(p[3].to_param().is_null());
    }

    #[test]
    fn json_is_transparent_to_serde() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Outer {
            inner: Json<Vec<i32>>,
        }
        let outer = Outer {
            inner: Json(vec![1, 2]),
        };
        let text = serde_json::to_string(&outer).unwrap();
        assert_eq!(text, r#"{"inner":[1,2]}"#);
        assert_eq!(serde_json::from_str::<Outer>(&text).unwrap(), outer);
    }

    #[test]
    fn json_roundtrip() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct S {
            a: i32,
        }
        let v = Json(S { a: 3 }).to_param().into_owned();
        assert_eq!(Json::<S>::from_value(&v).unwrap().0, S { a: 3 });
        assert!(Json::<S>::from_value(&Value::Text("x".into())).is_err());
    }
}
