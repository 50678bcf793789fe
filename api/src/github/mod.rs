//! GitHub's side of the platform: webhook signatures and payloads, and
//! signing people in with GitHub's OAuth.

pub mod oauth;
pub mod payload;
pub mod signature;
