//! `#[pgdbm_testing::test(…)]`: an async test that receives a fresh database cloned from a
//! template with the named modules migrated. The work is done at run time by
//! `pgdbm_testing::__private` (provisioning, fixtures, the runtime); this file only reads the
//! arguments and the function and writes the call.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, ExprAssign, ExprLit, FnArg, GenericArgument, ItemFn, Lit, LitStr, Pat, Path,
    PathArguments, ReturnType, Token, Type,
};

/// One module to migrate, and its own schema when given (`Users = "users"`).
struct ModuleArg {
    module: Expr,
    schema: Option<LitStr>,
}

/// The attribute's arguments.
#[derive(Default)]
struct Args {
    modules: Option<Vec<ModuleArg>>,
    schema: Option<LitStr>,
    fixtures: Vec<LitStr>,
    driver: Option<Path>,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let function: ItemFn = syn::parse2(item)?;
    let sig = &function.sig;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            "#[pgdbm_testing::test] needs an `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "#[pgdbm_testing::test] functions cannot be generic",
        ));
    }
    let (pattern, written_type) = single_parameter(&function)?;
    let driver = driver_type(args.driver.as_ref(), &written_type)?;
    let parameter_type = with_driver(written_type, &driver);

    let name = &sig.ident;
    let name_text = name.to_string();
    let output = &sig.output;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let body = &function.block;
    let unit_output = matches!(output, ReturnType::Default);
    let modules = args.modules.unwrap_or_default().into_iter().map(|m| {
        let module = m.module;
        let schema = option_str(m.schema.as_ref());
        quote_spanned! {module.span()=>
            (&#module as &dyn ::pgdbm_testing::__private::Module, #schema)
        }
    });
    let schema = option_str(args.schema.as_ref());
    let fixtures = args
        .fixtures
        .iter()
        .map(fixture)
        .collect::<syn::Result<Vec<_>>>()?;
    // The body keeps its own name and signature (minus the attribute), so errors in it point at
    // the user's code; the test function of the same name provisions and calls it.
    let inner = syn::Ident::new("__pgdbm_test_body", Span::mixed_site());
    let ret = if unit_output {
        quote!()
    } else {
        quote!(#output)
    };
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() #ret {
            async fn #inner(#pattern: #parameter_type) #ret #body
            ::pgdbm_testing::__private::block_on(async {
                let db = ::pgdbm_testing::__private::provision::<#driver>(
                    #name_text,
                    &[#(#modules),*],
                    #schema,
                    &[#(#fixtures),*],
                )
                .await;
                #inner(db).await
            })
        }
    })
}

fn option_str(lit: Option<&LitStr>) -> TokenStream {
    match lit {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    }
}

/// A fixture file, embedded at compile time (a missing file is a compile error, and an edit
/// rebuilds the test), with its kind from the extension.
fn fixture(path: &LitStr) -> syn::Result<TokenStream> {
    let text = path.value();
    let kind = if text.ends_with(".json") {
        quote!(::pgdbm_testing::__private::FixtureKind::Json)
    } else if text.ends_with(".sql") {
        quote!(::pgdbm_testing::__private::FixtureKind::Sql)
    } else {
        return Err(syn::Error::new(
            path.span(),
            format!("fixture {text:?}: expected a `.json` or `.sql` file"),
        ));
    };
    let full = if std::path::Path::new(&text).is_absolute() {
        quote!(#path)
    } else {
        let relative = LitStr::new(&format!("/{text}"), path.span());
        quote!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), #relative))
    };
    Ok(quote! {
        ::pgdbm_testing::__private::Fixture {
            path: #path,
            kind: #kind,
            text: ::core::include_str!(#full),
        }
    })
}

/// The function's one parameter: the test database.
fn single_parameter(function: &ItemFn) -> syn::Result<(Box<Pat>, Type)> {
    let inputs = &function.sig.inputs;
    let mut params = inputs.iter();
    match (params.next(), params.next()) {
        (Some(FnArg::Typed(arg)), None) => Ok((arg.pat.clone(), (*arg.ty).clone())),
        _ => Err(syn::Error::new(
            if inputs.is_empty() {
                function.sig.ident.span()
            } else {
                inputs.span()
            },
            "#[pgdbm_testing::test] functions take one parameter, the test database: \
             `async fn name(db: TestDatabase) …` (or `TestDatabase<Driver>`)",
        )),
    }
}

/// The driver: `driver = …` when given (`Sqlx`, `TokioPostgres` or any path to a
/// `pgdbm::driver::Driver`), else the one written in `TestDatabase<…>`, else tokio-postgres.
fn driver_type(driver: Option<&Path>, written: &Type) -> syn::Result<TokenStream> {
    if let Some(path) = driver {
        if let Some(ident) = path.get_ident() {
            match ident.to_string().as_str() {
                "Sqlx" | "SqlxDriver" => return Ok(quote!(::pgdbm_driver_sqlx::SqlxDriver)),
                "TokioPostgres" => {
                    return Ok(quote!(::pgdbm_driver_tokio_postgres::TokioPostgres));
                }
                _ => {}
            }
        }
        return Ok(path.to_token_stream());
    }
    if let Some(GenericArgument::Type(ty)) = last_segment_arguments(written)
        .and_then(|args| args.args.first())
        .cloned()
    {
        return Ok(ty.to_token_stream());
    }
    Ok(quote!(::pgdbm_driver_tokio_postgres::TokioPostgres))
}

fn last_segment_arguments(ty: &Type) -> Option<&syn::AngleBracketedGenericArguments> {
    let Type::Path(path) = ty else { return None };
    match &path.path.segments.last()?.arguments {
        PathArguments::AngleBracketed(args) => Some(args),
        _ => None,
    }
}

/// The parameter's type with the driver filled in when written without one (`TestDatabase`).
fn with_driver(mut ty: Type, driver: &TokenStream) -> Type {
    if let Type::Path(path) = &mut ty {
        if let Some(last) = path.path.segments.last_mut() {
            if matches!(last.arguments, PathArguments::None) {
                last.arguments = PathArguments::AngleBracketed(syn::parse_quote!(<#driver>));
            }
        }
    }
    ty
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match key.as_str() {
            "module" | "modules" => {
                if out.modules.is_some() {
                    return Err(
                        meta.error("give the modules once: `module = M` or `modules = [A, B]`")
                    );
                }
                let value = meta.value()?;
                out.modules = Some(if key == "module" {
                    vec![module_arg(value.parse()?)?]
                } else {
                    bracketed(value, |input| module_arg(input.parse()?))?
                });
            }
            "schema" => out.schema = Some(meta.value()?.parse()?),
            "fixtures" => {
                out.fixtures = bracketed(meta.value()?, |input| input.parse::<LitStr>())?;
            }
            "driver" => out.driver = Some(meta.value()?.parse()?),
            _ => {
                return Err(meta.error(
                    "unknown argument; expected `module = M`, `modules = [A = \"schema_a\", B]`, \
                     `schema = \"…\"`, `fixtures = [\"file.json\", \"file.sql\"]` or `driver = Sqlx`",
                ));
            }
        }
        Ok(())
    });
    parser.parse2(args)?;
    Ok(out)
}

/// `[item, item, …]`.
fn bracketed<T>(
    input: ParseStream<'_>,
    item: fn(ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<Vec<T>> {
    let content;
    syn::bracketed!(content in input);
    Ok(
        Punctuated::<T, Token![,]>::parse_terminated_with(&content, item)?
            .into_iter()
            .collect(),
    )
}

/// `Module` or `Module = "schema"` (which parses as an assignment expression).
fn module_arg(expr: Expr) -> syn::Result<ModuleArg> {
    match expr {
        Expr::Assign(ExprAssign { left, right, .. }) => match *right {
            Expr::Lit(ExprLit {
                lit: Lit::Str(schema),
                ..
            }) => Ok(ModuleArg {
                module: *left,
                schema: Some(schema),
            }),
            other => Err(syn::Error::new(
                other.span(),
                "a module's schema is a string literal: `Module = \"schema\"`",
            )),
        },
        module => Ok(ModuleArg {
            module,
            schema: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_text(args: &str, item: &str) -> Result<String, String> {
        expand(args.parse().unwrap(), item.parse().unwrap())
            .map(|t| t.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn modules_with_schemas_fixtures_and_the_default_driver() {
        let out = expand_text(
            r#"modules = [Users = "users", Audit], schema = "main", fixtures = ["a.json", "b.sql"]"#,
            "async fn t(db: TestDatabase) -> pgdbm::Result<()> { Ok(()) }",
        )
        .unwrap();
        let squeezed: String = out.split_whitespace().collect();
        assert!(squeezed.contains("fnt()->pgdbm::Result<()>"), "{out}");
        assert!(
            squeezed.contains("db:TestDatabase<::pgdbm_driver_tokio_postgres::TokioPostgres>"),
            "{out}"
        );
        assert!(
            squeezed.contains("(&Usersas&dyn::pgdbm_testing::__private::Module,::core::option::Option::Some(\"users\"))"),
            "{out}"
        );
        assert!(
            squeezed.contains(
                "(&Auditas&dyn::pgdbm_testing::__private::Module,::core::option::Option::None)"
            ),
            "{out}"
        );
        assert!(squeezed.contains("\"/a.json\""), "{out}");
        assert!(squeezed.contains("FixtureKind::Sql"), "{out}");
    }

    #[test]
    fn driver_from_the_argument_or_the_parameter_type() {
        let sqlx = expand_text("driver = Sqlx", "async fn t(db: TestDatabase) {}").unwrap();
        assert!(
            sqlx.contains(":: pgdbm_driver_sqlx :: SqlxDriver"),
            "{sqlx}"
        );
        let typed = expand_text("", "async fn t(db: TestDatabase<my::Driver>) {}").unwrap();
        assert!(typed.contains("provision :: < my :: Driver >"), "{typed}");
    }

    #[test]
    fn mistakes_are_compile_errors_that_say_what_is_expected() {
        let cases = [
            (
                "modules = [A], module = B",
                "async fn t(db: TestDatabase) {}",
                "give the modules once",
            ),
            (
                "colour = 1",
                "async fn t(db: TestDatabase) {}",
                "unknown argument",
            ),
            (
                "modules = [A = 1]",
                "async fn t(db: TestDatabase) {}",
                "string literal",
            ),
            (
                "fixtures = [\"seed.csv\"]",
                "async fn t(db: TestDatabase) {}",
                ".json",
            ),
            ("", "fn t(db: TestDatabase) {}", "async fn"),
            ("", "async fn t() {}", "one parameter"),
            ("", "async fn t(a: TestDatabase, b: u8) {}", "one parameter"),
            ("", "async fn t<T>(db: TestDatabase) {}", "generic"),
        ];
        for (args, item, expected) in cases {
            let err = expand_text(args, item).expect_err(args);
            assert!(err.contains(expected), "{args} / {item}: {err}");
        }
    }
}
