//! storage-redb (being written)
