//! Rebuilds the crate when a file is added to (or removed from) `migrations/`, so that
//! `pgdbm::embed_migrations!("migrations")` embeds it on the next build.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
