//! Binding: each value converted to the parameter type the statement declares, learned once per
//! pool ([`crate::statements`]) and learned again when a value no longer fits.

use std::sync::Arc;

use pgdbm::{Error, Params, Result, Value};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgArguments, PgConnection, PgTypeInfo, Postgres};
use sqlx::{Arguments as _, Either, Executor as _, Statement as _};

use crate::error::map;
use crate::statements::{Learned, StatementTypes, schema_may_have_changed};
use crate::types::Ty;
use crate::wire;

/// A pgdbm value bound as exactly the type the statement declares for its parameter.
struct Bind<'a> {
    value: &'a Value,
    ty: &'a PgTypeInfo,
    /// `types::classify(ty)`.
    kind: Ty,
}

impl sqlx::Type<Postgres> for Bind<'_> {
    fn type_info() -> PgTypeInfo {
        <String as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for Bind<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        match wire::encode_as(self.value, self.ty, self.kind, buf) {
            Ok(true) => Ok(IsNull::Yes),
            Ok(false) => Ok(IsNull::No),
            Err(message) => Err(message.into()),
        }
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(self.ty.clone())
    }
}

/// A statement ready to run: the text to send (the SQL and its tag, see [`crate::statements`])
/// and its arguments, each converted to its parameter's type.
pub(crate) struct Bound {
    pub(crate) learned: Arc<Learned>,
    pub(crate) args: PgArguments,
}

/// Converts `params` to the parameter types of `sql`, learning them first (one round trip, on
/// this connection) when the pool does not know them yet.
///
/// When a value does not fit a type the pool learned earlier, the schema may have changed since
/// (a column's type altered): the types are learned again (at most once a second per SQL text),
/// and if they differ the new ones replace the old and are used. A value that does not fit the
/// current types is the caller's [`Error::Encode`].
pub(crate) async fn bind(
    conn: &mut PgConnection,
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
) -> Result<Bound> {
    let (learned, fresh) = match cache.get(sql) {
        Some(learned) => (learned, false),
        None => {
            let learned = learn(conn, sql).await?;
            cache.insert(sql, Arc::clone(&learned));
            (learned, true)
        }
    };
    match arguments(&learned, sql, params) {
        Ok(args) => Ok(Bound { learned, args }),
        Err(err @ Error::Encode { .. }) if !fresh && learned.claim_recheck() => {
            let again = learn(conn, sql).await?;
            if again.types == learned.types {
                return Err(err);
            }
            cache.replace(sql, &learned, Arc::clone(&again));
            let args = arguments(&again, sql, params)?;
            Ok(Bound {
                learned: again,
                args,
            })
        }
        Err(err) => Err(err),
    }
}

/// Prepares `sql` under a new tag on this connection, which tells its parameter types.
async fn learn(conn: &mut PgConnection, sql: &str) -> Result<Arc<Learned>> {
    let tagged = Learned::tag(sql);
    let stmt = conn.prepare(&tagged).await.map_err(|e| map(e, sql))?;
    let types: Box<[PgTypeInfo]> = match stmt.parameters() {
        Some(Either::Left(types)) => types.into(),
        _ => Box::new([]),
    };
    drop(stmt);
    Ok(Arc::new(Learned::new(tagged, types)))
}

/// Every parameter converted to its type.
fn arguments(learned: &Learned, sql: &str, params: Params<'_>) -> Result<PgArguments> {
    let types = &learned.types;
    if types.len() != params.len() {
        return Err(Error::parameter_count(types.len(), params.len(), sql));
    }
    let mut args = PgArguments::default();
    args.reserve(params.len(), params.len() * 8);
    for (i, (param, (ty, &kind))) in params
        .iter()
        .zip(types.iter().zip(learned.kinds.iter()))
        .enumerate()
    {
        let value = param.to_param();
        args.add(Bind {
            value: &value,
            ty,
            kind,
        })
        .map_err(|e| Error::encode(i + 1, e.to_string()))?;
    }
    Ok(args)
}

/// The error of a bound statement's execution, the parameters' values hidden in its text. When a
/// changed schema may explain it, the learned types of `sql` are forgotten, so the next execution
/// learns them again.
pub(crate) fn run_error(
    cache: &StatementTypes,
    sql: &str,
    params: Params<'_>,
    learned: &Arc<Learned>,
    err: sqlx::Error,
) -> Error {
    if let sqlx::Error::Database(db) = &err {
        if db.code().is_some_and(|code| schema_may_have_changed(&code)) {
            cache.forget(sql, learned);
        }
    }
    map(err, sql).redact_params(params)
}
