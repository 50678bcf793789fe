//! Read models built from the event log: the queue, the runs dashboard and the
//! audit view. Each projector follows the log from its checkpoint and writes
//! the checkpoint in the same transaction as its read-model change.
//!
//! (Filled in by the intake issue; the foundation only reserves the crate.)
