//! Helpers shared by the core's unit and property tests (compiled for tests only).

use proptest::prelude::*;

/// Strings of up to `max` characters of `alphabet` (cheaper to generate than a regex).
pub(crate) fn chars(alphabet: &str, max: usize) -> impl Strategy<Value = String> + use<> {
    let alphabet: Vec<char> = alphabet.chars().collect();
    prop::collection::vec(prop::sample::select(alphabet), 0..=max)
        .prop_map(|c| c.into_iter().collect())
}
