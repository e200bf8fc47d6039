//! tokio-postgres driver (being written).
