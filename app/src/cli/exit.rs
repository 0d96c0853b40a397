//! Process exit codes (DESIGN §5).

/// Success, `terminate_workflow` included.
pub const SUCCESS: i32 = 0;
/// A task or the workflow failed.
pub const FAILURE: i32 = 1;
/// Bad input: usage, an invalid file, a refused checkpoint.
pub const BAD_INPUT: i32 = 2;
/// Paused, waiting for human feedback; a checkpoint was written.
pub const PAUSED: i32 = 3;
/// Cancelled by `cancel_workflow`.
pub const CANCELLED: i32 = 4;
