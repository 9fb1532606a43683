//! Request validation with pydantic's semantics: field validators, URLs,
//! metadata, the create union, the update model and list query parameters.

pub mod create;
pub mod datetime;
pub mod fields;
pub mod metadata;
pub mod query;
pub mod update;
pub mod url;
