//! The runner on Unix: `sh -c`, process groups, mode bits.

use std::path::Path;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// A command that runs `line` through the shell, in a process group of its
/// own so that [`kill_tree`] reaches whatever it starts.
pub fn shell(line: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new("sh");
    command.arg("-c").arg(line).process_group(0);
    command
}

/// Kill a command made by [`shell`] and everything it started.
pub fn kill_tree(child: &tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Let the program under test run (an artifact's file comes unpacked
/// without its mode).
pub fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut permissions = std::fs::metadata(path)?.permissions();
    permissions.set_mode(0o755);
    std::fs::set_permissions(path, permissions)
}
