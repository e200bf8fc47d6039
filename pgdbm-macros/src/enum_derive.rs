//! `#[derive(Enum)]`: a Rust enum of unit variants as the labels of a PostgreSQL enum type.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Error, Fields, LitStr, Result};

/// How `rename_all` spells a variant name (serde's spellings and rules).
#[derive(Clone, Copy)]
enum Case {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

const CASES: &[(&str, Case)] = &[
    ("lowercase", Case::Lower),
    ("UPPERCASE", Case::Upper),
    ("PascalCase", Case::Pascal),
    ("camelCase", Case::Camel),
    ("snake_case", Case::Snake),
    ("SCREAMING_SNAKE_CASE", Case::ScreamingSnake),
    ("kebab-case", Case::Kebab),
    ("SCREAMING-KEBAB-CASE", Case::ScreamingKebab),
];

impl Case {
    fn apply(self, variant: &str) -> String {
        let snake = || {
            let mut out = String::new();
            for (i, c) in variant.char_indices() {
                if i > 0 && c.is_uppercase() {
                    out.push('_');
                }
                out.extend(c.to_lowercase());
            }
            out
        };
        match self {
            Case::Lower => variant.to_lowercase(),
            Case::Upper => variant.to_uppercase(),
            Case::Pascal => variant.to_owned(),
            Case::Camel => {
                let mut chars = variant.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_lowercase().chain(chars).collect()
                })
            }
            Case::Snake => snake(),
            Case::ScreamingSnake => snake().to_uppercase(),
            Case::Kebab => snake().replace('_', "-"),
            Case::ScreamingKebab => snake().replace('_', "-").to_uppercase(),
        }
    }
}

/// The impls of `::pgdbm::Enum`, `ToParam`, `ArrayElement` and `FromValue` for `input`, or the
/// compile error explaining why not.
pub(crate) fn derive(input: DeriveInput) -> Result<TokenStream> {
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(s) => return Err(not_an_enum(s.struct_token.span)),
        Data::Union(u) => return Err(not_an_enum(u.union_token.span)),
    };
    if let Some(param) = input.generics.params.first() {
        return Err(Error::new(
            param.span(),
            "#[derive(Enum)] needs an enum without generic parameters (its variants are labels)",
        ));
    }
    let case = rename_all(&input.attrs)?;
    let name = &input.ident;
    let rust_name = name.unraw().to_string();
    let mut labels: Vec<(String, Span)> = Vec::new();
    let mut variants = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return Err(Error::new(
                variant.fields.span(),
                "#[derive(Enum)] maps unit variants to enum labels; this variant has fields",
            ));
        }
        let written = variant.ident.unraw().to_string();
        let label = match rename(&variant.attrs)? {
            Some(lit) => lit.value(),
            None => case.map_or_else(|| written.clone(), |case| case.apply(&written)),
        };
        if label.len() > 63 {
            return Err(Error::new(
                variant.ident.span(),
                format!("the label {label:?} is longer than PostgreSQL's 63 bytes"),
            ));
        }
        if let Some((_, first)) = labels.iter().find(|(l, _)| *l == label) {
            let mut err = Error::new(
                variant.ident.span(),
                format!("two variants have the label {label:?}; give one a #[pgdbm(rename)]"),
            );
            err.combine(Error::new(*first, "the first one is here"));
            return Err(err);
        }
        labels.push((label, variant.ident.span()));
        variants.push(&variant.ident);
    }
    let label_strs: Vec<&str> = labels.iter().map(|(l, _)| l.as_str()).collect();
    Ok(quote! {
        #[automatically_derived]
        impl ::pgdbm::Enum for #name {
            const NAME: &'static str = #rust_name;
            const LABELS: &'static [&'static str] = &[#(#label_strs),*];

            fn label(&self) -> &'static str {
                match self {
                    #(Self::#variants => #label_strs,)*
                }
            }

            fn from_label(label: &str) -> ::core::option::Option<Self> {
                match label {
                    #(#label_strs => ::core::option::Option::Some(Self::#variants),)*
                    _ => ::core::option::Option::None,
                }
            }
        }

        #[automatically_derived]
        impl ::pgdbm::ToParam for #name {
            fn to_param(&self) -> ::std::borrow::Cow<'_, ::pgdbm::Value> {
                ::pgdbm::__enum_support::to_param(self)
            }
        }

        #[automatically_derived]
        impl ::pgdbm::ArrayElement for #name {
            const KIND: ::pgdbm::Kind = ::pgdbm::Kind::Text;
        }

        #[automatically_derived]
        impl ::pgdbm::FromValue for #name {
            fn type_name() -> ::std::string::String {
                ::std::string::String::from(#rust_name)
            }

            fn from_value(
                value: &::pgdbm::Value,
            ) -> ::core::result::Result<Self, ::std::string::String> {
                ::pgdbm::__enum_support::from_value(value)
            }
        }
    })
}

fn not_an_enum(span: Span) -> Error {
    Error::new(
        span,
        "#[derive(Enum)] is for enums of unit variants (PostgreSQL enum labels); for a row type \
         use #[derive(FromRow)]",
    )
}

/// The enum's `#[pgdbm(rename_all = "…")]`, if any.
fn rename_all(attrs: &[Attribute]) -> Result<Option<Case>> {
    let mut case = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("pgdbm")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("rename_all") {
                return Err(meta.error(
                    "unknown option; #[derive(Enum)] knows rename_all = \"…\" on the enum and \
                     rename = \"label\" on a variant",
                ));
            }
            let lit: LitStr = meta.value()?.parse()?;
            let found = CASES.iter().find(|(name, _)| *name == lit.value());
            let Some((_, found)) = found else {
                let known: Vec<&str> = CASES.iter().map(|(name, _)| *name).collect();
                return Err(Error::new(
                    lit.span(),
                    format!("unknown rename_all; one of: {}", known.join(", ")),
                ));
            };
            if case.replace(*found).is_some() {
                return Err(meta.error("`rename_all` is given twice"));
            }
            Ok(())
        })?;
    }
    Ok(case)
}

/// A variant's `#[pgdbm(rename = "…")]`, if any.
fn rename(attrs: &[Attribute]) -> Result<Option<LitStr>> {
    let mut rename = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("pgdbm")) {
        attr.parse_nested_meta(|meta| {
            if !meta.path.is_ident("rename") {
                return Err(meta.error(
                    "unknown option; a variant of #[derive(Enum)] knows rename = \"label\"",
                ));
            }
            let lit: LitStr = meta.value()?.parse()?;
            if lit.value().is_empty() {
                return Err(Error::new(lit.span(), "an enum label cannot be empty"));
            }
            if rename.replace(lit).is_some() {
                return Err(meta.error("`rename` is given twice"));
            }
            Ok(())
        })?;
    }
    Ok(rename)
}
