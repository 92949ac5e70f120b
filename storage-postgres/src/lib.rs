//! storage-postgres (being written)
