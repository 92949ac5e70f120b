//! Removing a store: dropping its schema, for test harnesses and decommissioning.

use event_log_core::StoreError;

use crate::config::quote_ident;
use crate::error::{from_pg, from_pool};
use crate::store::PostgresStore;

impl PostgresStore {
    /// Drops this store's schema and everything in it (`DROP SCHEMA … CASCADE`): every
    /// op is gone, for every handle and process using the schema. Irreversible; meant
    /// for test harnesses and decommissioning. Afterwards this handle (and its clones)
    /// must not be used: appends and reads fail.
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        let target = self.redacted_url();
        let client = self
            .pool()
            .get()
            .await
            .map_err(|e| from_pool("dropping the schema", target, e))?;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {} CASCADE",
                quote_ident(self.schema())
            ))
            .await
            .map_err(|e| from_pg("dropping the schema", target, e))?;
        Ok(())
    }
}
