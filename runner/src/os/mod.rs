//! What the runner does differently per operating system: how a test's
//! command line is run, how a test and everything it started is killed, and
//! how the program under test is made executable. Everything else in the
//! runner is the same on every OS.
//!
//! Only the Unix implementation exists: the machines that build and test
//! this project cannot compile for Windows, and code no build here compiles
//! is not kept. A Windows port is one file, `windows.rs`, with the same
//! three functions (`cmd /C`, a job object killed whole, no executable bit),
//! chosen below with `#[cfg(windows)]`.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{kill_tree, make_executable, shell};
