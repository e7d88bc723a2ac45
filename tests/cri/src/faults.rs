//! The pods issue's faults through containerd's CRI plugin: two pods
//! started at once (each one VM, each its own guest), a container that
//! ignores SIGTERM stopped with a grace period (SIGKILL after it), and a
//! pod whose sandbox process is SIGKILLed while an app runs (the shim sees
//! the app exit with an error; removing the pod leaves nothing).

use std::path::Path;
use std::time::Duration;

use k8s_cri::v1::{RemovePodSandboxRequest, StopContainerRequest, StopPodSandboxRequest};

use super::bench::{add_container, remove_pod, run_pod, Pod};
use super::{exec, state_of, vmm_pids, Client, Report};

/// CRI's `CONTAINER_EXITED`.
const EXITED: i32 = 2;

/// The guest's boot id as app container `id` sees it.
async fn boot_id(c: &mut Client, id: &str) -> Result<String, String> {
    let (code, out, err) = exec(c, id, &["cat", "/proc/sys/kernel/random/boot_id"]).await?;
    match code {
        0 => Ok(out.trim().to_owned()),
        _ => Err(format!("exit {code}: {err}")),
    }
}

/// Waits (bounded) until container `id` has exited; its status then.
async fn exited(c: &mut Client, id: &str) -> Option<k8s_cri::v1::ContainerStatus> {
    for _ in 0..240 {
        let st = state_of(c, id).await;
        if st.as_ref().is_some_and(|s| s.state == EXITED) {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    state_of(c, id).await
}

/// The host pid of hull's sandbox process for pod `id` (from its state under
/// `root`, containerd's `k8s.io` namespace).
fn sandbox_pid(root: &Path, id: &str) -> Option<i32> {
    let text = std::fs::read_to_string(root.join("k8s.io").join(id).join("state.json")).ok()?;
    let rest = text.split("\"sandboxPid\":").nth(1)?;
    rest.split([',', '}']).next()?.trim().parse().ok()
}

/// One pod with one running app container: the pod and the app's id.
async fn pod_with_app(
    mut c: Client,
    name: &str,
    image: &str,
    log_dir: &str,
) -> Result<(Pod, String), String> {
    let pod = run_pod(&mut c, name, "", log_dir).await?;
    let app = add_container(&mut c, &pod, "app", image, &["sleep", "100000"]).await;
    match app {
        Ok(id) => Ok((pod, id)),
        Err(e) => {
            remove_pod(&mut c, &pod).await;
            Err(e)
        }
    }
}

pub async fn faults(c: &mut Client, r: &mut Report, image: &str, log_dir: &str, hull_root: &str) {
    let before = vmm_pids();
    let (a, b) = tokio::join!(
        pod_with_app(c.clone(), "race-a", image, log_dir),
        pod_with_app(c.clone(), "race-b", image, log_dir),
    );
    let pods: Vec<&Pod> = [&a, &b].into_iter().flatten().map(|(p, _)| p).collect();
    let ok = r.check(
        "two pods started at once both run",
        a.is_ok() && b.is_ok(),
        || format!("{:?} / {:?}", a.as_ref().err(), b.as_ref().err()),
    );
    if ok {
        let (Ok((pod_a, app_a)), Ok((pod_b, app_b))) = (&a, &b) else {
            return;
        };
        let vmms: Vec<u32> = vmm_pids()
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        r.check("two racing pods are two VMs", vmms.len() == 2, || {
            format!("new hull-vmm processes: {vmms:?}")
        });
        let (ba, bb) = (boot_id(c, app_a).await, boot_id(c, app_b).await);
        r.check(
            "each racing pod's app runs in its own guest",
            ba.is_ok() && bb.is_ok() && ba != bb,
            || format!("{ba:?} vs {bb:?}"),
        );
        stop_with_grace(c, r, pod_a, image).await;
        kill_sandbox(c, r, pod_b, app_b, hull_root).await;
    }
    for pod in pods {
        let name = pod.config.metadata.as_ref().map_or("", |m| m.name.as_str());
        let stopped = c
            .stop_pod_sandbox(StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await;
        r.call(&format!("StopPodSandbox {name}"), stopped);
        let removed = c
            .remove_pod_sandbox(RemovePodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await;
        r.call(&format!("RemovePodSandbox {name}"), removed);
    }
    let left: Vec<u32> = vmm_pids()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    r.check(
        "no hull-vmm of the racing pods is left",
        left.is_empty(),
        || format!("{left:?}"),
    );
}

/// A container that ignores SIGTERM: StopContainer's grace period ends in
/// SIGKILL (exit code 137).
async fn stop_with_grace(c: &mut Client, r: &mut Report, pod: &Pod, image: &str) {
    let script = "trap '' TERM; echo ready; while :; do sleep 1; done";
    let id = add_container(c, pod, "stubborn", image, &["sh", "-c", script]).await;
    let Ok(id) = id else {
        r.check("a container ignoring SIGTERM starts", false, || {
            format!("{id:?}")
        });
        return;
    };
    let stopped = c
        .stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await;
    r.call(
        "StopContainer (grace 2 s) of a container ignoring SIGTERM",
        stopped,
    );
    let st = exited(c, &id).await;
    r.check(
        "it was SIGKILLed after the grace period (exit 137, reason Error)",
        st.as_ref()
            .is_some_and(|s| s.exit_code == 137 && s.reason == "Error"),
        || format!("{st:?}"),
    );
}

/// SIGKILL of the pod's sandbox process while its app runs: the app's
/// exit is seen with an error status, and the pod can still be removed.
async fn kill_sandbox(c: &mut Client, r: &mut Report, pod: &Pod, app: &str, hull_root: &str) {
    let Some(pid) = sandbox_pid(Path::new(hull_root), &pod.id) else {
        r.check("the pod's sandbox process is found", false, || {
            format!("no sandboxPid in {hull_root}/k8s.io/{}/state.json", pod.id)
        });
        return;
    };
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    r.check(
        "SIGKILL the pod's sandbox process",
        matches!(killed, Ok(s) if s.success()),
        || format!("{killed:?}"),
    );
    let st = exited(c, app).await;
    r.check(
        "the app's exit is seen, with an error status",
        st.as_ref().is_some_and(|s| s.exit_code != 0),
        || format!("{st:?}"),
    );
}
