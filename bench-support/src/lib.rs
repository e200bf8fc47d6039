//! Code shared by the benches of pgdbm's drivers; not published. Each driver's
//! `benches/point_select.rs` takes it as a dev-dependency and supplies only its own parts
//! (see [`point_select::Driver`]).

pub mod env;
pub mod point_select;

pub use env::env_number;
