//! Server settings travel in the startup packet's `options` string (`-c name=value …`), which the
//! server splits into words at every unescaped C `isspace` character (`pg_split_opts`). A
//! setting's value must arrive whole: it can never end its word early and add a setting of its
//! own.

use pgdbm::{Database, Result};

use super::Ctx;

/// Every character the server's `pg_split_opts` splits words at (C's `isspace`, C locale).
const WHITESPACE: [(char, &str); 6] = [
    (' ', "space"),
    ('\t', "tab"),
    ('\n', "newline"),
    ('\u{0b}', "vertical tab"),
    ('\u{0c}', "form feed"),
    ('\r', "carriage return"),
];

/// `SHOW statement_timeout` and `current_setting('search_path')` on `db`.
async fn guarded_settings(db: &Database) -> Result<(String, String)> {
    Ok((
        db.fetch_value::<String>("SHOW statement_timeout", &[])
            .await?,
        db.fetch_value::<String>("SELECT current_setting('search_path')", &[])
            .await?,
    ))
}

/// A server setting whose value holds whitespace of any kind (space, tab, newline, vertical
/// tab, form feed, carriage return) followed by `-c name=value` cannot add settings: with
/// `server_setting("app.note", "v<ws>-c<ws>statement_timeout=7<ws>-c<ws>search_path=evil")`
/// `statement_timeout` and `search_path` stay as configured and `app.note` holds the whole value.
/// Backslashes next to the whitespace do not help either.
///
/// # Errors
///
/// Any unexpected connect or query error.
pub async fn server_setting_cannot_add_settings(ctx: &Ctx) -> Result<()> {
    let expected = guarded_settings(&ctx.db).await?;
    for (ws, kind) in WHITESPACE {
        for value in [
            format!("v{ws}-c{ws}statement_timeout=7{ws}-c{ws}search_path=evil"),
            // A backslash of the value's own right before the whitespace must not escape the
            // escape: `\` + ws would become `\\` + `\` + ws, not `\\` + ws.
            format!("v\\{ws}-c{ws}statement_timeout=7\\\\{ws}-c{ws}search_path=evil\\"),
            format!("{ws}{ws}-c{ws}statement_timeout=7{ws}"),
        ] {
            let config = ctx.config_with(|b| {
                b.server_setting("app.note", value.as_str())
                    .min_connections(0)
                    .max_connections(1)
            })?;
            let db = Database::owning(ctx.connect(config).await?, None)?;
            let got = guarded_settings(&db).await?;
            let note = db
                .fetch_value::<String>("SELECT current_setting('app.note')", &[])
                .await?;
            db.close().await;
            assert_eq!(
                got, expected,
                "a value with {kind}s changed statement_timeout/search_path: {value:?}"
            );
            assert_eq!(
                note, value,
                "app.note did not arrive whole with {kind}s: {value:?}"
            );
        }
    }
    Ok(())
}

/// Setting values arrive exactly as given, whatever they hold: backslashes (also trailing and
/// doubled), runs of mixed whitespace at either end, quotes, `=`, `-c`, non-ASCII text, and the
/// empty string — several settings on one connection, none disturbing the next.
///
/// # Errors
///
/// Any unexpected connect or query error.
pub async fn server_setting_values_arrive_verbatim(ctx: &Ctx) -> Result<()> {
    let values = [
        "",
        " ",
        "\\",
        "\\\\",
        r"C:\Program Files\app\",
        " \t\n\u{0b}\u{0c}\r lead and trail \r\u{0c}\u{0b}\n\t ",
        "a=b=c -c x=y --z=w",
        "'single' \"double\" `back`",
        "héllo ✓ \u{a0}nbsp\u{2028}ls",
        "\\ \\t\\\t\\n",
    ];
    let config = ctx.config_with(|mut b| {
        for (i, value) in values.iter().enumerate() {
            b = b.server_setting(format!("app.v{i}"), *value);
        }
        b.min_connections(0).max_connections(1)
    })?;
    let db = Database::owning(ctx.connect(config).await?, None)?;
    for (i, value) in values.iter().enumerate() {
        let got = db
            .fetch_value::<String>(&format!("SELECT current_setting('app.v{i}')"), &[])
            .await?;
        assert_eq!(got, *value, "app.v{i} did not arrive verbatim");
    }
    let got = guarded_settings(&db).await?;
    db.close().await;
    assert_eq!(got, guarded_settings(&ctx.db).await?);
    Ok(())
}
