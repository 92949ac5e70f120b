//! The schema-qualified table names every statement is written against.

use crate::config::quote_ident;

/// Quoted, schema-qualified table names.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    /// `"schema"`.
    pub schema: String,
    /// `"schema".ops`.
    pub ops: String,
    /// `"schema".schema_version`.
    pub version: String,
    /// `"schema".meta`.
    pub meta: String,
    /// The key (an SQL expression) of the advisory lock every append holds shared
    /// and `load` takes exclusively: see [`crate::append`].
    pub fence_key: String,
}

impl Tables {
    /// Names in the validated schema `schema`.
    pub(crate) fn new(schema: &str) -> Self {
        let q = quote_ident(schema);
        Tables {
            ops: format!("{q}.ops"),
            version: format!("{q}.schema_version"),
            meta: format!("{q}.meta"),
            // The schema is a validated identifier: safe inside a literal.
            fence_key: format!("hashtextextended('event-log positions {schema}', 0)"),
            schema: q,
        }
    }
}
