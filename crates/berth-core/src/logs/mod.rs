//! CloudWatch Logs logic that needs no I/O: the filter pattern language of FilterLogEvents,
//! metric filters and subscription filters.

pub mod filter;

pub use filter::{FilterError, FilterPattern};
