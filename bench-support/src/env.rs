//! Reading a bench's settings from the environment.

/// `name` as a whole number ≥ 1, or `default` when it is unset or blank.
///
/// # Errors
///
/// A message naming the variable and its value when it is not a whole number ≥ 1.
pub fn env_number(
    name: &str,
    default: u64,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("{name}={v:?}: expected a whole number >= 1").into()),
    }
}
