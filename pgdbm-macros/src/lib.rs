//! Compile-time helpers for pgdbm. Use them through `pgdbm` (`pgdbm::embed_migrations!`,
//! `#[derive(pgdbm::FromRow)]`, `#[derive(pgdbm::Enum)]`) and `pgdbm-testing` (`#[pgdbm_testing::test]`), not directly.

use std::path::{Path, PathBuf};

mod enum_derive;
mod from_row;

use proc_macro::{Delimiter, Literal, TokenStream, TokenTree};

mod test_attr;

/// An async test that receives a fresh database cloned from a migrated template; documented
/// where it is re-exported, as `pgdbm_testing::test`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Embeds the `*.sql` files of a directory (relative to the calling crate's `Cargo.toml`) as a
/// `pgdbm::MigrationSource`, sorted by file name, hidden files skipped.
///
/// Each file is included with `include_str!`, so cargo rebuilds when a file changes. An empty or
/// non-UTF-8 file, a symbolic link resolving outside the directory, or a missing directory is a
/// compile error naming it.
///
/// ```ignore
/// fn migrations(&self) -> pgdbm::MigrationSource {
///     pgdbm::embed_migrations!("migrations")
/// }
/// ```
///
/// # New files: add a `build.rs`
///
/// `include_str!` only tells cargo about the files that existed when the macro ran, so a file
/// *added* to the directory (say by `pgdbm migrate create`) would not be embedded until something
/// else rebuilt the crate — the application would report "0 applied". Tell cargo to watch the
/// directory with a build script next to the crate's `Cargo.toml` (`pgdbm generate module`
/// writes it):
///
/// ```ignore
/// // build.rs
/// fn main() {
///     // The directory given to embed_migrations!, relative to Cargo.toml.
///     println!("cargo:rerun-if-changed=migrations");
/// }
/// ```
///
/// For a directory, cargo compares the newest modification time of the directory and of
/// everything in it, so adding, removing or editing a file reruns the build script and rebuilds
/// the crate, which expands the macro again; an unrelated change does not. It needs no
/// build-dependency. (Once a build script prints any `rerun-if-changed`, cargo stops rerunning
/// it for every change in the package — list any other paths the script reads as well.)
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(tokens) => tokens,
        Err(message) => compile_error(&message),
    }
}

/// Derives `pgdbm::FromRow` for a struct with named fields; documented on the `pgdbm::FromRow`
/// trait. The expansion names `::pgdbm`.
#[proc_macro_derive(FromRow, attributes(pgdbm))]
pub fn derive_from_row(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    from_row::derive(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `pgdbm::Enum` (and `ToParam`, `FromValue`, `ArrayElement`) for an enum of unit
/// variants; documented on the `pgdbm::Enum` trait. The expansion names `::pgdbm`.
#[proc_macro_derive(Enum, attributes(pgdbm))]
pub fn derive_enum(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    enum_derive::derive(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

fn compile_error(message: &str) -> TokenStream {
    format!("::core::compile_error!({message:?})")
        .parse()
        .unwrap_or_default()
}

fn expand(input: TokenStream) -> Result<TokenStream, String> {
    let relative = parse_string_literal(input)?;
    let manifest = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "embed_migrations!: CARGO_MANIFEST_DIR is not set".to_owned())?;
    let dir = Path::new(&manifest).join(&relative);
    let files = list(&dir)?;
    let mut body = String::from("::pgdbm::MigrationSource::embedded(&[");
    for (name, path) in files {
        let path = path
            .to_str()
            .ok_or_else(|| format!("embed_migrations!: path {} is not UTF-8", path.display()))?;
        body.push_str(&format!("({name:?}, ::core::include_str!({path:?})),"));
    }
    body.push_str("])");
    body.parse()
        .map_err(|e| format!("embed_migrations!: internal error: {e}"))
}

fn parse_string_literal(input: TokenStream) -> Result<String, String> {
    let mut tokens = input.into_iter().peekable();
    let token = match tokens.next() {
        // A literal passed through another macro arrives wrapped in an invisible group.
        Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::None => {
            return parse_string_literal(g.stream());
        }
        Some(token) => token,
        None => return Err(usage()),
    };
    if tokens.next().is_some() {
        return Err(usage());
    }
    let TokenTree::Literal(lit) = token else {
        return Err(usage());
    };
    unquote(&lit).ok_or_else(usage)
}

fn usage() -> String {
    "usage: embed_migrations!(\"migrations\") with a directory relative to Cargo.toml".to_owned()
}

/// The value of a plain or raw string literal without escapes other than `\\` and `\"`.
fn unquote(lit: &Literal) -> Option<String> {
    let text = lit.to_string();
    if let Some(raw) = text.strip_prefix('r') {
        let hashes = raw.chars().take_while(|&c| c == '#').count();
        let inner = raw.get(hashes + 1..raw.len().checked_sub(hashes + 1)?)?;
        return Some(inner.to_owned());
    }
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\\", "\\").replace("\\\"", "\""))
}

fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let root = dir.canonicalize().map_err(|e| {
        format!(
            "embed_migrations!: cannot read migrations directory {}: {e}",
            dir.display()
        )
    })?;
    let entries = std::fs::read_dir(&root)
        .map_err(|e| format!("embed_migrations!: cannot read {}: {e}", root.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("embed_migrations!: cannot read {}: {e}", root.display()))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".sql") {
            continue;
        }
        let path = entry.path();
        let real = path
            .canonicalize()
            .map_err(|e| format!("embed_migrations!: cannot read {}: {e}", path.display()))?;
        if !real.starts_with(&root) {
            return Err(format!(
                "embed_migrations!: migration file {} resolves outside the migrations directory (to {})",
                path.display(),
                real.display()
            ));
        }
        if !real.is_file() {
            continue;
        }
        let bytes = std::fs::read(&real)
            .map_err(|e| format!("embed_migrations!: cannot read {}: {e}", path.display()))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            format!(
                "embed_migrations!: migration file {} is not valid UTF-8",
                path.display()
            )
        })?;
        if text.trim().is_empty() {
            return Err(format!(
                "embed_migrations!: migration file {} is empty",
                path.display()
            ));
        }
        files.push((name, real));
    }
    files.sort();
    Ok(files)
}
