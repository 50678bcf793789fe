//! The local provider: a "VM" is a child process (the runner, or a command the
//! operator configures) in a fresh working directory, so the whole flow runs
//! on one machine without a cloud account.
//!
//! Its VMs outlive the platform process: each lives in a directory of its own
//! under the state directory (`vm.json` with its labels, `pid` written by the
//! process itself before it starts the command, `work/`, `output.log`), in a
//! process group of its own. A platform that restarts lists, finds and deletes
//! them like cloud VMs, and creating a VM that exists returns it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::external::CallError;
use crate::provider::{CreateVm, VmInfo, VmProvider, VmState};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// Where the VMs' directories live.
    pub state_dir: PathBuf,
    /// The program (and arguments) each VM runs.
    pub command: Vec<String>,
    /// How long a create takes, as a cloud's would (0 in production use).
    pub create_delay: Duration,
}

#[derive(Debug)]
pub struct LocalProvider {
    config: LocalConfig,
    /// One create at a time: "exists?" and "start" must not interleave.
    creating: Mutex<()>,
}

#[derive(Debug, Serialize, Deserialize)]
struct VmFile {
    name: String,
    idempotency_key: String,
    labels: BTreeMap<String, String>,
    created_at: chrono::DateTime<Utc>,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> CallError {
    CallError::retryable(format!("{what} {}: {e}", path.display()))
}

/// VM names become directory names.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl LocalProvider {
    pub fn new(mut config: LocalConfig) -> Self {
        // The VM's command runs in its own work directory, where a relative
        // state directory would point elsewhere: its pid would never be
        // found, and every retry of the create would start it again.
        if let Ok(absolute) = std::path::absolute(&config.state_dir) {
            config.state_dir = absolute;
        }
        LocalProvider {
            config,
            creating: Mutex::new(()),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.config.state_dir.join(name)
    }

    async fn pid(dir: &Path) -> Option<i32> {
        tokio::fs::read_to_string(dir.join("pid"))
            .await
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn alive(pid: i32) -> bool {
        // Signal 0 checks that the process exists without touching it.
        kill(Pid::from_raw(pid), None).is_ok()
    }

    async fn info(&self, dir: &Path) -> Option<VmInfo> {
        let text = tokio::fs::read_to_string(dir.join("vm.json")).await.ok()?;
        let file: VmFile = serde_json::from_str(&text).ok()?;
        let state = match Self::pid(dir).await {
            None => VmState::Provisioning,
            Some(pid) if Self::alive(pid) => VmState::Running,
            Some(_) => VmState::Terminated,
        };
        Some(VmInfo {
            name: file.name,
            labels: file.labels,
            state,
        })
    }

    async fn start(&self, dir: &Path, request: &CreateVm) -> Result<(), CallError> {
        let Some((program, args)) = self.config.command.split_first() else {
            return Err(CallError::permanent("no command configured for local VMs"));
        };
        let work = dir.join("work");
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| io("create", &work, e))?;
        let log =
            std::fs::File::create(dir.join("output.log")).map_err(|e| io("create", dir, e))?;
        let log_err = log.try_clone().map_err(|e| io("open", dir, e))?;
        let mut command = tokio::process::Command::new("sh");
        // The process writes its own pid before becoming the command, so the
        // VM can be found even if the platform dies right after the spawn.
        command
            .arg("-c")
            .arg("echo $$ > \"$SP_VM_DIR/pid\"; exec \"$@\"")
            .arg("sp-vm")
            .arg(program)
            .args(args)
            .current_dir(&work)
            .env("SP_VM_NAME", &request.name)
            .env("SP_VM_DIR", dir)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        for (key, value) in &request.metadata {
            command.env(
                format!("SP_{}", key.to_ascii_uppercase().replace('-', "_")),
                value,
            );
        }
        let mut child = command
            .spawn()
            .map_err(|e| CallError::permanent(format!("cannot start {program:?}: {e}")))?;
        // Reap it when it exits, so a finished VM is not a zombie that looks alive.
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        for _ in 0..200 {
            if Self::pid(dir).await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Err(CallError::retryable(
            "the VM process did not start within a second",
        ))
    }
}

#[async_trait]
impl VmProvider for LocalProvider {
    async fn create(&self, request: &CreateVm) -> Result<VmInfo, CallError> {
        if !valid_name(&request.name) {
            return Err(CallError::permanent(format!(
                "invalid VM name {:?}",
                request.name
            )));
        }
        let dir = self.dir(&request.name);
        {
            let _one_at_a_time = self.creating.lock().await;
            let existing = self.info(&dir).await;
            match existing {
                // Created before (a retry, or a restart): the same VM.
                Some(info) if info.state != VmState::Provisioning => return Ok(info),
                // Described but never started: start it now.
                Some(_) => self.start(&dir, request).await?,
                None => {
                    tokio::fs::create_dir_all(&dir)
                        .await
                        .map_err(|e| io("create", &dir, e))?;
                    let file = VmFile {
                        name: request.name.clone(),
                        idempotency_key: request.idempotency_key.clone(),
                        labels: request.labels.clone(),
                        created_at: Utc::now(),
                    };
                    let json = serde_json::to_vec_pretty(&file)
                        .map_err(|e| CallError::permanent(e.to_string()))?;
                    let tmp = dir.join("vm.json.tmp");
                    tokio::fs::write(&tmp, json)
                        .await
                        .map_err(|e| io("write", &tmp, e))?;
                    tokio::fs::rename(&tmp, dir.join("vm.json"))
                        .await
                        .map_err(|e| io("write", &dir, e))?;
                    self.start(&dir, request).await?;
                }
            }
        }
        // As a cloud's operation would, creation takes a while to be confirmed.
        tokio::time::sleep(self.config.create_delay).await;
        self.info(&dir).await.ok_or_else(|| {
            CallError::retryable(format!("VM {} vanished while starting", request.name))
        })
    }

    async fn delete(&self, name: &str) -> Result<(), CallError> {
        if !valid_name(name) {
            return Err(CallError::permanent(format!("invalid VM name {name:?}")));
        }
        let dir = self.dir(name);
        if let Some(pid) = Self::pid(&dir).await {
            // The whole process group: the command and anything it started.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &dir, e)),
        }
    }

    async fn list(&self, labels: &BTreeMap<String, String>) -> Result<Vec<VmInfo>, CallError> {
        let mut entries = match tokio::fs::read_dir(&self.config.state_dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io("list", &self.config.state_dir, e)),
        };
        let mut vms = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| io("list", &self.config.state_dir, e))?
        {
            if let Some(info) = self.info(&entry.path()).await
                && labels.iter().all(|(k, v)| info.labels.get(k) == Some(v))
            {
                vms.push(info);
            }
        }
        vms.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(vms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::labels;

    fn provider(dir: &Path, command: &[&str]) -> LocalProvider {
        LocalProvider::new(LocalConfig {
            state_dir: dir.to_path_buf(),
            command: command.iter().map(|s| s.to_string()).collect(),
            create_delay: Duration::ZERO,
        })
    }

    fn request(name: &str) -> CreateVm {
        CreateVm {
            name: name.into(),
            platform: "linux".into(),
            idempotency_key: format!("{name}-key"),
            labels: labels("run-1", 1, "linux"),
            metadata: BTreeMap::from([(
                "report-url".to_string(),
                "http://127.0.0.1:1/r".to_string(),
            )]),
            max_run_duration: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn create_is_idempotent_and_survives_a_new_provider() {
        let dir = tempfile::tempdir().expect("dir");
        let p = provider(dir.path(), &["sleep", "30"]);
        let first = p.create(&request("sp-linux-a-a1")).await.expect("create");
        assert_eq!(first.state, VmState::Running);
        let pid = LocalProvider::pid(&dir.path().join("sp-linux-a-a1")).await;

        // The same VM again, from this provider and from a restarted one.
        p.create(&request("sp-linux-a-a1")).await.expect("again");
        let restarted = provider(dir.path(), &["sleep", "30"]);
        restarted
            .create(&request("sp-linux-a-a1"))
            .await
            .expect("after restart");
        assert_eq!(
            LocalProvider::pid(&dir.path().join("sp-linux-a-a1")).await,
            pid
        );
        let listed = restarted
            .list(&labels("run-1", 1, "linux"))
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].label("sp-run"), Some("run-1"));

        restarted.delete("sp-linux-a-a1").await.expect("delete");
        let pid = pid.expect("pid");
        for _ in 0..100 {
            if !LocalProvider::alive(pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!LocalProvider::alive(pid), "the VM's process is killed");
        assert!(
            restarted
                .list(&BTreeMap::new())
                .await
                .expect("list")
                .is_empty()
        );
        restarted
            .delete("sp-linux-a-a1")
            .await
            .expect("deleting twice is fine");
    }

    #[tokio::test]
    async fn a_relative_state_directory_still_finds_its_vm() {
        // The default state directory is `vms`, relative to where the
        // platform runs; the tests run in the package's directory.
        let dir = tempfile::tempdir_in(".").expect("dir");
        let relative = PathBuf::from(dir.path().file_name().expect("a name"));
        assert!(relative.is_relative());
        let p = provider(&relative, &["sleep", "30"]);
        let created = p.create(&request("sp-linux-r-a1")).await.expect("create");
        assert_eq!(created.state, VmState::Running);
        let vm = dir.path().join("sp-linux-r-a1");
        let pid = LocalProvider::pid(&vm).await.expect("the pid is found");
        p.create(&request("sp-linux-r-a1")).await.expect("again");
        assert_eq!(
            LocalProvider::pid(&vm).await,
            Some(pid),
            "a retried create starts nothing new"
        );
        p.delete("sp-linux-r-a1").await.expect("delete");
    }

    #[tokio::test]
    async fn the_command_gets_its_metadata_and_a_fresh_work_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let p = provider(
            dir.path(),
            &[
                "sh",
                "-c",
                "pwd > where; echo $SP_REPORT_URL > url; sleep 30",
            ],
        );
        p.create(&request("sp-linux-b-a1")).await.expect("create");
        let work = dir.path().join("sp-linux-b-a1/work");
        let mut url = String::new();
        for _ in 0..100 {
            url = tokio::fs::read_to_string(work.join("url"))
                .await
                .unwrap_or_default();
            if !url.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(url.trim(), "http://127.0.0.1:1/r");
        p.delete("sp-linux-b-a1").await.expect("delete");
    }

    #[tokio::test]
    async fn an_exited_vm_lists_as_terminated_and_bad_input_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let p = provider(dir.path(), &["true"]);
        p.create(&request("sp-linux-c-a1")).await.expect("create");
        let mut state = VmState::Running;
        for _ in 0..200 {
            state = p.list(&BTreeMap::new()).await.expect("list")[0].state;
            if state == VmState::Terminated {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(state, VmState::Terminated);
        assert!(p.create(&request("../escape")).await.is_err());
        let none = provider(dir.path(), &[]);
        let e = none
            .create(&request("sp-linux-d-a1"))
            .await
            .expect_err("no command");
        assert_eq!(e.class, sp_domain::ErrorClass::Permanent);
    }
}
