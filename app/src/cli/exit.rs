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

/// The exit code of a run that ended with `status`.
pub fn for_status(status: graflow_engine::RunStatus) -> i32 {
    use graflow_engine::RunStatus::*;
    match status {
        Succeeded => SUCCESS,
        Failed => FAILURE,
        Paused => PAUSED,
        Cancelled => CANCELLED,
    }
}

#[cfg(test)]
mod tests {
    use graflow_engine::RunStatus;

    #[test]
    fn codes_agree_with_the_engine() {
        for s in [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Paused,
            RunStatus::Cancelled,
        ] {
            assert_eq!(super::for_status(s), s.exit_code());
        }
    }
}
