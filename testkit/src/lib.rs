//! Helpers for clerk-sync's integration tests. Never a dependency of the
//! binaries.

pub mod broker;
pub mod cpu;
pub mod proxy;
