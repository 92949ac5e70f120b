//! How much work this process may spread: signing and verification split large
//! batches across the cores.

/// Cores this process may use, read once: `std::thread::available_parallelism`
/// reads cgroup files on every call, too slow for a per-batch decision.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
