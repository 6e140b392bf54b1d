//! Exit codes shared by the commands (clap exits 2 on bad arguments, and a
//! settings fault is 2 as well; an unreachable service or failed work is 1).

/// What the command was asked to check is not right: a status threshold
/// was crossed, or verify-log found events that do not verify.
pub const CHECK_FAILED: u8 = 3;
