//! `#[derive(FromRow)]`: one `row.get("column")` per named field, with the struct and field
//! named in the error.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Error, Fields, Generics, Ident, LitStr, Result, Type};

/// How one field is read.
enum Source {
    /// The column `name`; `default` when a missing column gives `Default::default()`.
    Column { name: String, default: bool },
    /// The field's own `FromRow`, on the same row.
    Flatten,
}

/// The options of one field, from its `#[pgdbm(...)]` attributes.
struct FieldOptions {
    rename: Option<LitStr>,
    default: bool,
    flatten: Option<Span>,
}

/// The `impl ::pgdbm::FromRow` for `input`, or the compile error explaining why not.
pub(crate) fn derive(input: DeriveInput) -> Result<TokenStream> {
    reject_struct_options(&input)?;
    let fields = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(named) => &named.named,
            Fields::Unnamed(_) => {
                return Err(Error::new(
                    input.ident.span(),
                    "#[derive(FromRow)] maps columns by field name and needs a struct with named \
                     fields; to read columns by position, fetch a tuple instead, e.g. \
                     fetch_all_as::<(i64, String)>(…)",
                ));
            }
            Fields::Unit => {
                return Err(Error::new(
                    input.ident.span(),
                    "#[derive(FromRow)] needs a struct with named fields; a unit struct has no \
                     columns to read",
                ));
            }
        },
        Data::Enum(data) => {
            return Err(Error::new(
                data.enum_token.span,
                "#[derive(FromRow)] supports structs with named fields only, not enums",
            ));
        }
        Data::Union(data) => {
            return Err(Error::new(
                data.union_token.span,
                "#[derive(FromRow)] supports structs with named fields only, not unions",
            ));
        }
    };

    let name = &input.ident;
    let target = name.unraw().to_string();
    let type_params: Vec<Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    let mut inits = Vec::new();
    let mut bounds = Vec::new();
    // For `from_rows`, when no field is flattened: each field's column, and how it is taken.
    let mut specs = Vec::new();
    let mut takes = Vec::new();
    for (n, field) in fields.iter().enumerate() {
        let ident = field.ident.as_ref().expect("named fields have names");
        let field_name = ident.unraw().to_string();
        let ty = &field.ty;
        let source = source_of(field, &field_name)?;
        let read = match &source {
            Source::Column {
                name: column,
                default: false,
            } => quote! {
                ::pgdbm::__derive_support::column::<#ty>(row, #column, #target, #field_name)?
            },
            Source::Column {
                name: column,
                default: true,
            } => quote! {
                ::pgdbm::__derive_support::column_or_default::<#ty>(
                    row, #column, #target, #field_name,
                )?
            },
            Source::Flatten => quote! {
                ::pgdbm::__derive_support::flatten::<#ty>(row, #target, #field_name)?
            },
        };
        inits.push(quote! { #ident: #read });
        if let Source::Column {
            name: column,
            default,
        } = &source
        {
            specs.push(quote! {
                ::pgdbm::__derive_support::Field {
                    column: #column,
                    field: #field_name,
                    default: #default,
                }
            });
            let take = if *default {
                quote! { take_or_default }
            } else {
                quote! { take }
            };
            takes.push(quote! { #ident: fields.#take::<#ty>(#n)? });
        }
        if mentions_any(ty, &type_params) {
            bounds.push(match source {
                Source::Column { default: false, .. } => quote! { #ty: ::pgdbm::FromValue },
                Source::Column { default: true, .. } => {
                    quote! { #ty: ::pgdbm::FromValue + ::core::default::Default }
                }
                Source::Flatten => quote! { #ty: ::pgdbm::FromRow },
            });
        }
    }

    // A flattened struct reads its own columns by its own plan: the whole result is then mapped
    // row by row (the trait's default `from_rows`).
    let from_rows = (takes.len() == inits.len()).then(|| {
        quote! {
            fn from_rows(
                rows: ::std::vec::Vec<::pgdbm::Row>,
            ) -> ::pgdbm::Result<::std::vec::Vec<Self>> {
                const FIELDS: &[::pgdbm::__derive_support::Field] = &[#(#specs,)*];
                ::pgdbm::__derive_support::from_rows(rows, #target, FIELDS, |fields| {
                    ::core::result::Result::Ok(Self { #(#takes,)* })
                })
            }
        }
    });
    let (impl_generics, ty_generics, where_clause) = split_with_bounds(&input.generics, &bounds);
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::pgdbm::FromRow for #name #ty_generics #where_clause {
            #[inline]
            fn from_row(row: &::pgdbm::Row) -> ::pgdbm::Result<Self> {
                ::core::result::Result::Ok(Self { #(#inits,)* })
            }

            #from_rows
        }
    })
}

/// The derive has no struct-level options; say so rather than ignore one.
fn reject_struct_options(input: &DeriveInput) -> Result<()> {
    match input.attrs.iter().find(|a| a.path().is_ident("pgdbm")) {
        Some(attr) => Err(Error::new(
            attr.meta.span(),
            "#[derive(FromRow)] has no options on the struct; put #[pgdbm(rename = \"…\")], \
             #[pgdbm(default)] or #[pgdbm(flatten)] on a field",
        )),
        None => Ok(()),
    }
}

/// Where `field` is read from, after checking its options make sense together.
fn source_of(field: &syn::Field, field_name: &str) -> Result<Source> {
    let options = field_options(field)?;
    if let Some(span) = options.flatten {
        if options.rename.is_some() || options.default {
            return Err(Error::new(
                span,
                "#[pgdbm(flatten)] reads no column of its own, so it cannot be combined with \
                 `rename` or `default`",
            ));
        }
        return Ok(Source::Flatten);
    }
    Ok(Source::Column {
        name: options
            .rename
            .map_or_else(|| field_name.to_owned(), |lit| lit.value()),
        default: options.default,
    })
}

fn field_options(field: &syn::Field) -> Result<FieldOptions> {
    let mut options = FieldOptions {
        rename: None,
        default: false,
        flatten: None,
    };
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("pgdbm")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() {
                    return Err(Error::new(lit.span(), "the column name cannot be empty"));
                }
                if options.rename.replace(lit).is_some() {
                    return Err(meta.error("`rename` is given twice"));
                }
            } else if meta.path.is_ident("default") {
                options.default = true;
            } else if meta.path.is_ident("flatten") {
                options.flatten = Some(meta.path.span());
            } else {
                return Err(meta.error(
                    "unknown option; #[derive(FromRow)] knows rename = \"column\", default and \
                     flatten",
                ));
            }
            Ok(())
        })?;
    }
    Ok(options)
}

/// Whether `ty` names one of the struct's type parameters (then the impl needs a bound for it).
fn mentions_any(ty: &Type, params: &[Ident]) -> bool {
    fn walk(tokens: TokenStream, params: &[Ident]) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => params.contains(&ident),
            TokenTree::Group(group) => walk(group.stream(), params),
            _ => false,
        })
    }
    !params.is_empty() && walk(quote!(#ty), params)
}

/// The generics of the impl, with `bounds` added to the where clause.
fn split_with_bounds(
    generics: &Generics,
    bounds: &[TokenStream],
) -> (TokenStream, TokenStream, TokenStream) {
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let existing = where_clause.map(|w| {
        let predicates = w.predicates.iter();
        quote! { #(#predicates,)* }
    });
    let where_clause = if existing.is_none() && bounds.is_empty() {
        quote! {}
    } else {
        quote! { where #existing #(#bounds,)* }
    };
    (quote!(#impl_generics), quote!(#ty_generics), where_clause)
}
