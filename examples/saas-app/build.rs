//! Rebuilds the crate when a file is added to (or removed from) `migrations/`, so that
//! `pgdbm::embed_migrations!` embeds it on the next `cargo build` (cargo already rebuilds when an
//! embedded file is edited).

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
