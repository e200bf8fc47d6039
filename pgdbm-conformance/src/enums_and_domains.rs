//! User-defined types: PostgreSQL enums as Rust enums (`#[derive(pgdbm::Enum)]`) and as text,
//! domains as their base type, and arrays of both.

use pgdbm::prelude::*;
use pgdbm::{Error, Result, Row};

use super::Ctx;

/// `CREATE TYPE mood AS ENUM ('happy', 'sad', 'so-so')` in Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, pgdbm::Enum)]
#[pgdbm(rename_all = "lowercase")]
enum Mood {
    Happy,
    Sad,
    #[pgdbm(rename = "so-so")]
    SoSo,
}

/// The same type with a label missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, pgdbm::Enum)]
#[pgdbm(rename_all = "lowercase")]
enum OldMood {
    Happy,
    Sad,
}

#[derive(Debug, PartialEq, FromRow)]
struct Person {
    name: String,
    mood: Mood,
    past: Vec<Mood>,
    maybe: Option<Mood>,
}

async fn create_mood(ctx: &Ctx) -> Result<()> {
    ctx.db
        .batch_execute(
            "CREATE TYPE {{schema}}.mood AS ENUM ('happy', 'sad', 'so-so'); \
             CREATE TABLE {{tables.people}} (name text PRIMARY KEY, mood {{schema}}.mood NOT NULL, \
               past {{schema}}.mood[] NOT NULL, maybe {{schema}}.mood)",
        )
        .await
}

/// A derived enum binds into an enum column and an enum-typed parameter (a cast), reads back
/// from one, as `Vec<Mood>` from an enum array and `Option<Mood>` from NULL, and as a field of a
/// derived row; enum columns and arrays also read as `String`/`Vec<String>`.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn enum_parameters_and_columns(ctx: &Ctx) -> Result<()> {
    create_mood(ctx).await?;
    let db = &ctx.db;
    db.execute(
        "INSERT INTO {{tables.people}} VALUES ($1, $2, $3, $4), ($5, $6, $7, NULL)",
        params![
            "ann",
            Mood::SoSo,
            vec![Mood::Happy, Mood::Sad],
            Some(Mood::Sad),
            "bob",
            Mood::Happy,
            Vec::<Mood>::new()
        ],
    )
    .await?;
    let people: Vec<Person> = db
        .fetch_all_as("SELECT * FROM {{tables.people}} ORDER BY name", &[])
        .await?;
    assert_eq!(
        people,
        [
            Person {
                name: "ann".into(),
                mood: Mood::SoSo,
                past: vec![Mood::Happy, Mood::Sad],
                maybe: Some(Mood::Sad),
            },
            Person {
                name: "bob".into(),
                mood: Mood::Happy,
                past: vec![],
                maybe: None,
            },
        ]
    );
    let sad: String = db
        .fetch_value(
            "SELECT name FROM {{tables.people}} WHERE mood = $1 OR $1 = ANY(past) ORDER BY name",
            params![Mood::Sad],
        )
        .await?;
    assert_eq!(sad, "ann");
    let cast: Mood = db
        .fetch_value("SELECT $1::{{schema}}.mood", params![Mood::SoSo])
        .await?;
    assert_eq!(cast, Mood::SoSo);
    let all: Vec<Mood> = db
        .fetch_value("SELECT enum_range(NULL::{{schema}}.mood)", &[])
        .await?;
    assert_eq!(all, [Mood::Happy, Mood::Sad, Mood::SoSo]);
    let texts: Vec<String> = db
        .fetch_value("SELECT enum_range(NULL::{{schema}}.mood)", &[])
        .await?;
    assert_eq!(texts, ["happy", "sad", "so-so"]);
    let text: String = db
        .fetch_value(
            "SELECT mood FROM {{tables.people}} WHERE name = $1",
            params!["ann"],
        )
        .await?;
    assert_eq!(text, "so-so");
    let arrays: Vec<Vec<Mood>> = db
        .fetch_all("SELECT past FROM {{tables.people}} ORDER BY name", &[])
        .await?
        .iter()
        .map(|r: &Row| r.get("past"))
        .collect::<Result<_>>()?;
    assert_eq!(arrays, [vec![Mood::Happy, Mood::Sad], vec![]]);
    Ok(())
}

/// A label the Rust enum lacks is a decode error naming the column, the Rust enum and how many
/// labels it knows, not the text read; a label the database lacks is the server's error.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn enum_unknown_label_is_a_decode_error(ctx: &Ctx) -> Result<()> {
    create_mood(ctx).await?;
    let db = &ctx.db;
    let row = db
        .fetch_one("SELECT 'so-so'::{{schema}}.mood AS feeling", &[])
        .await?;
    let err = crate::assert_err!(row.get::<OldMood>("feeling"), Error::Decode { .. });
    let message = err.to_string();
    assert!(
        message.contains("feeling") && message.contains("OldMood") && message.contains("2 of"),
        "{message}"
    );
    assert!(!message.contains("so-so"), "value leaked: {message}");
    let err = crate::assert_err!(
        db.fetch_value::<Vec<OldMood>>(
            "SELECT enum_range(NULL::{{schema}}.mood) AS all_moods",
            &[]
        )
        .await,
        Error::Decode { .. }
    );
    assert!(err.to_string().contains("all_moods"), "{err}");
    // The server refuses a label its type does not have (binding is text to the enum type).
    let err = db
        .fetch_value::<String>("SELECT $1::{{schema}}.mood::text", params!["angry"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    Ok(())
}

/// A domain binds and reads as its base type — an integer domain from `i64`, a text domain from
/// `&str`, arrays of both — and the domain's check is the server's.
///
/// # Errors
///
/// Any unexpected query error.
pub async fn domains_and_their_arrays(ctx: &Ctx) -> Result<()> {
    let db = &ctx.db;
    db.batch_execute(
        "CREATE DOMAIN {{schema}}.positive AS int CHECK (VALUE > 0); \
         CREATE DOMAIN {{schema}}.email AS text CHECK (VALUE LIKE '%@%'); \
         CREATE TABLE {{tables.contacts}} (id {{schema}}.positive PRIMARY KEY, \
           address {{schema}}.email, scores {{schema}}.positive[], aliases {{schema}}.email[])",
    )
    .await?;
    db.execute(
        "INSERT INTO {{tables.contacts}} VALUES ($1, $2, $3, $4)",
        params![7i64, "a@example.com", vec![1i32, 2], vec!["b@x", "c@y"]],
    )
    .await?;
    let row = db
        .fetch_one("SELECT * FROM {{tables.contacts}}", &[])
        .await?;
    assert_eq!(row.get::<i32>("id")?, 7);
    assert_eq!(row.get::<String>("address")?, "a@example.com");
    assert_eq!(row.get::<Vec<i64>>("scores")?, [1, 2]);
    assert_eq!(row.get::<Vec<String>>("aliases")?, ["b@x", "c@y"]);
    let cast: Vec<i32> = db
        .fetch_value("SELECT $1::{{schema}}.positive[]", params![[3i32, 4]])
        .await?;
    assert_eq!(cast, [3, 4]);
    let err = db
        .execute(
            "INSERT INTO {{tables.contacts}} (id) VALUES ($1)",
            params![-1i32],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    let err = crate::assert_err!(
        db.execute(
            "INSERT INTO {{tables.contacts}} (id) VALUES ($1)",
            params!["seven"]
        )
        .await,
        Error::Encode { .. }
    );
    assert!(!err.to_string().contains("seven"), "value leaked: {err}");
    Ok(())
}
