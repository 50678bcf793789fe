//! GitHub's side of the platform: webhook signatures and payloads.

pub mod payload;
pub mod signature;
