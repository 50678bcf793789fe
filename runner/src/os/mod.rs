//! What the runner does differently per operating system: how a test's
//! command line is run, how a test and everything it started is killed, how
//! the program under test is made executable, and how to tell that a
//! program listens on a UDP port. Everything else in the
//! runner is the same on every OS.
//!
//! Only the Unix implementation exists: the machines that build and test
//! this project cannot compile for Windows, and code no build here compiles
//! is not kept. A Windows port is one file, `windows.rs`, with the same
//! four functions (`cmd /C`, a job object killed whole, no executable bit,
//! `GetExtendedUdpTable`),
//! chosen below with `#[cfg(windows)]`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{kill_tree, make_executable, shell, udp_listening};
