//! storage-sqlite (being written)
