//! Tuples and the derive on rows built by hand (no server).

use super::FromRow;
use crate::error::Error;
use crate::row::{Column, Row};
use crate::value::Value;

fn row() -> Row {
    Row::new(
        vec![Column::new("id", "int8"), Column::new("name", "text")].into(),
        vec![Value::Int8(5), Value::Text("ann".into())],
    )
}

#[test]
fn tuples_read_by_position_and_ignore_extra_columns() {
    assert_eq!(<(i64,)>::from_row(&row()).unwrap(), (5,));
    assert_eq!(
        <(i64, String)>::from_row(&row()).unwrap(),
        (5, "ann".to_owned())
    );
    assert_eq!(
        <(Option<i32>, Option<String>)>::from_row(&row()).unwrap(),
        (Some(5), Some("ann".to_owned()))
    );
}

#[test]
fn a_row_shorter_than_the_tuple_names_the_missing_position() {
    let err = <(i64, String, bool)>::from_row(&row()).unwrap_err();
    assert!(
        matches!(&err, Error::ColumnNotFound { column, field: Some(f), .. }
            if column == "2" && f == "(i64, String, bool).2"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no column 2 for field (i64, String, bool).2 in row (columns: id, name)"
    );
    let empty = Row::new(Vec::new().into(), Vec::new());
    let err = <(i64,)>::from_row(&empty).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no column 0 for field (i64,).0 in row (columns: )"
    );
}

#[test]
fn a_mismatched_element_names_column_element_and_types_not_the_value() {
    let row = Row::new(
        vec![Column::new("id", "int8"), Column::new("name", "text")].into(),
        vec![Value::Int8(5), Value::Text("Zq-secret-42".into())],
    );
    let err = <(i64, i64)>::from_row(&row).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert_eq!(
        err.to_string(),
        "cannot decode column name for field (i64, i64).1: expected i64, found text"
    );
    assert!(!text.contains("Zq-secret-42"), "{text}");
}

#[test]
fn twelve_elements() {
    let columns: Vec<Column> = (0..12)
        .map(|i| Column::new(format!("c{i}"), "int4"))
        .collect();
    let values = (0..12).map(Value::Int4).collect();
    let row = Row::new(columns.into(), values);
    type Twelve = (i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i64);
    let t = Twelve::from_row(&row).unwrap();
    assert_eq!((t.0, t.5, t.11), (0, 5, 11));
}

#[derive(pgdbm::FromRow, Debug, PartialEq)]
struct Named<T> {
    #[pgdbm(rename = "id")]
    key: T,
    #[pgdbm(default)]
    missing: Vec<String>,
    #[pgdbm(flatten)]
    inner: Inner,
    r#type: Option<String>,
}

#[derive(pgdbm::FromRow, Debug, PartialEq)]
struct Inner {
    name: String,
}

#[test]
fn derive_with_rename_default_flatten_option_and_a_type_parameter() {
    let row = Row::new(
        vec![
            Column::new("id", "int8"),
            Column::new("name", "text"),
            Column::new("type", "text"),
        ]
        .into(),
        vec![Value::Int8(5), Value::Text("ann".into()), Value::Null],
    );
    assert_eq!(
        Named::<i64>::from_row(&row).unwrap(),
        Named {
            key: 5,
            missing: Vec::new(),
            inner: Inner { name: "ann".into() },
            r#type: None,
        }
    );
    let err = Named::<String>::from_row(&row).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decode column id for field Named.key: expected String, found bigint"
    );
}

#[test]
fn derive_errors_name_the_innermost_struct_and_field() {
    let row = Row::new(
        vec![Column::new("id", "int8"), Column::new("name", "int4")].into(),
        vec![Value::Int8(5), Value::Int4(77_123)],
    );
    let err = Named::<i64>::from_row(&row).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot decode column name for field Inner.name: expected String, found integer"
    );
    assert!(!format!("{err:?}").contains("77123"), "{err:?}");
    let row = Row::new(vec![Column::new("id", "int8")].into(), vec![Value::Int8(5)]);
    let err = Named::<i64>::from_row(&row).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no column name for field Inner.name in row (columns: id)"
    );
}

/// No flattened field: the derive maps whole results by a plan.
#[derive(pgdbm::FromRow, Debug, PartialEq)]
struct Flat {
    id: i64,
    name: Option<String>,
    #[pgdbm(default)]
    tags: Vec<String>,
    #[pgdbm(rename = "name")]
    again: Option<String>,
}

#[derive(pgdbm::FromRow, Debug, PartialEq)]
struct Plain {
    id: i64,
    #[pgdbm(default)]
    tags: Vec<String>,
    name: String,
}

fn result(columns: &[(&str, &str)], rows: Vec<Vec<Value>>) -> Vec<Row> {
    let columns: crate::row::Columns = columns
        .iter()
        .map(|(name, ty)| Column::new(*name, *ty))
        .collect::<Vec<_>>()
        .into();
    rows.into_iter()
        .map(|values| Row::new(columns.clone(), values))
        .collect()
}

#[test]
fn from_rows_gives_what_from_row_gives() {
    let rows = result(
        &[("name", "text"), ("id", "int8"), ("tags", "_text")],
        vec![
            vec![
                Value::Text("a".into()),
                Value::Int8(1),
                Value::Array {
                    element: crate::Kind::Text,
                    items: vec![Value::Text("x".into())],
                },
            ],
            vec![
                Value::Text("b".into()),
                Value::Int8(2),
                Value::Array {
                    element: crate::Kind::Text,
                    items: vec![],
                },
            ],
        ],
    );
    let one_by_one: Vec<Plain> = rows.iter().map(|r| Plain::from_row(r).unwrap()).collect();
    assert_eq!(Plain::from_rows(rows.clone()).unwrap(), one_by_one);
    assert_eq!(one_by_one[0].tags, ["x"]);
    // Two fields on one column: still both read (row by row).
    let flat = Flat::from_rows(rows.clone()).unwrap();
    assert_eq!(flat[1].name, flat[1].again);
    assert_eq!(flat[1].name.as_deref(), Some("b"));
    // Rows of another shape in the same call get a plan of their own.
    let mut mixed = rows;
    mixed.extend(result(
        &[("id", "int8"), ("name", "text")],
        vec![vec![Value::Int8(3), Value::Text("c".into())]],
    ));
    let plain = Plain::from_rows(mixed).unwrap();
    assert_eq!((plain[2].id, plain[2].name.as_str()), (3, "c"));
    assert!(plain[2].tags.is_empty());
    assert_eq!(
        <(i64,)>::from_rows(result(&[("id", "int8")], vec![vec![Value::Int8(4)]])).unwrap(),
        [(4,)]
    );
    assert!(Plain::from_rows(Vec::new()).unwrap().is_empty());
}

#[test]
fn from_rows_errors_are_from_row_errors() {
    let rows = result(
        &[("id", "int8"), ("name", "text")],
        vec![
            vec![Value::Int8(1), Value::Text("a".into())],
            vec![Value::Int8(2), Value::Null],
        ],
    );
    let whole = Plain::from_rows(rows.clone()).unwrap_err().to_string();
    assert_eq!(whole, Plain::from_row(&rows[1]).unwrap_err().to_string());
    assert_eq!(
        whole,
        "cannot decode column name for field Plain.name: expected String, found NULL"
    );
    let short = result(&[("id", "int8")], vec![vec![Value::Int8(1)]]);
    assert_eq!(
        Plain::from_rows(short.clone()).unwrap_err().to_string(),
        "no column name for field Plain.name in row (columns: id)"
    );
    assert_eq!(
        <(i64, String)>::from_rows(short).unwrap_err().to_string(),
        "no column 1 for field (i64, String).1 in row (columns: id)"
    );
    let err = <(i64, i64)>::from_rows(rows).unwrap_err().to_string();
    assert_eq!(
        err,
        "cannot decode column name for field (i64, i64).1: expected i64, found text"
    );
}

#[test]
fn the_innermost_field_is_kept() {
    let err = Error::decode("c", "i64", "text")
        .in_field(|| "Inner.x".to_owned())
        .in_field(|| "Outer.inner".to_owned());
    assert_eq!(
        err.to_string(),
        "cannot decode column c for field Inner.x: expected i64, found text"
    );
    let other = Error::PoolClosed.in_field(|| unreachable!("only for decode errors"));
    assert!(matches!(other, Error::PoolClosed));
}
