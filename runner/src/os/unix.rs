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

/// Whether a socket is bound to UDP `port` on this machine: what the kernel
/// lists in `/proc/net/udp` and `/proc/net/udp6` (Linux), so that nothing
/// is bound to find out (a probe bind could take the port from the program).
pub fn udp_listening(port: u16) -> std::io::Result<bool> {
    let mut any_table = false;
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        any_table = true;
        if bound_in(&text, port) {
            return Ok(true);
        }
    }
    if any_table {
        Ok(false)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "no /proc/net/udp on this machine",
        ))
    }
}

/// Whether a `/proc/net/udp` table has a socket whose local address
/// (`ADDRESS:PORT`, the port in hexadecimal) has this port.
fn bound_in(table: &str, port: u16) -> bool {
    table.lines().skip(1).any(|line| {
        line.split_whitespace()
            .nth(1)
            .and_then(|local| local.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            == Some(port)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_found_in_the_kernels_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
                     \x20  12: 0100007F:1F90 00000000:0000 07 00000000:00000000\n";
        assert!(bound_in(table, 8080));
        assert!(!bound_in(table, 8081));
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        assert!(udp_listening(port).expect("linux"));
        drop(socket);
        assert!(!udp_listening(port).expect("linux"));
    }
}
