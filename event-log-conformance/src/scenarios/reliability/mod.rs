//! Scenarios for the defects a review found: no input, fault or peer may brick,
//! stall, split or silently lose a log, on any store.

mod damage;
mod excluded;
mod followers;
mod idempotency;
mod limits;
mod membership;
mod restart;
mod rollback;

pub use damage::{damaged_rows_quarantined, own_chain_damage_refuses_open};
pub use excluded::excluded_sled_refuses_appends;
pub use followers::{follower_catches_up_any_lag, followers_see_equivocation, late_rows_replayed};
pub use idempotency::{dropped_append_withdrawn, idempotent_retries};
pub use limits::{config_validated, over_limits_refused};
pub use membership::{buffer_flood_is_contained, non_members_refused};
pub use restart::{in_doubt_never_dropped, own_late_write_resolved};
pub use rollback::{rolled_back_store_never_resigns, truncated_tail_detected};
