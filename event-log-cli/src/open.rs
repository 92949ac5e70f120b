//! How the commands open a log they are not a sled of: read-only, or as the target
//! of `sync`.

/// Opens a log for reading, as a tool that is not one of its sleds: the store
/// read-only (never created, migrated or written; a missing one is an error naming
/// it) and the log read-only with a throwaway key.
pub async fn open_reader(
    url: &str,
) -> Result<event_log::EventLog<event_log::AnyStore>, event_log::OpenError> {
    event_log::open_read_only(url).await
}

/// Opens a log that a tool writes ops of others into (the target of `sync`): a
/// throwaway key that never appends, and no replay checkpoint written.
pub async fn open_writer(
    url: &str,
) -> Result<event_log::EventLog<event_log::AnyStore>, event_log::OpenError> {
    let config = event_log::EventLogConfig::default().with_save_checkpoints(false);
    event_log::open_with(url, event_log::keys::generate(), config).await
}
