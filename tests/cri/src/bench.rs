//! `hull-cri-test bench SOCKET IMAGE LOG_DIR HULL_ROOT ROUNDS`: pods
//! through containerd's CRI plugin, hull (the default handler) against runc
//! (handler `runc`): a pod's start (RunPodSandbox, one container created and
//! started), a second container added to it, the host memory of a pod with
//! 1 and with 3 containers against 3 one-container pods (PSS of every hull
//! process: stand-ins, sandbox processes, hull-vmm with the guest's RAM),
//! and 10 pods started at once. Prints medians, one line each.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_cri::v1::{
    CreateContainerRequest, PodSandboxConfig, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopPodSandboxRequest,
};

use super::{container, pod_config, Client};

/// What the benchmark's containers run.
const SLEEP: &[&str] = &["sleep", "100000"];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One pod: its id and config.
pub struct Pod {
    pub id: String,
    pub config: PodSandboxConfig,
}

pub async fn run_pod(
    c: &mut Client,
    name: &str,
    handler: &str,
    log_dir: &str,
) -> Result<Pod, String> {
    let mut config = pod_config(log_dir);
    if let Some(m) = config.metadata.as_mut() {
        m.name = name.into();
        m.uid = format!("{name}-uid");
    }
    if let Some(l) = config.linux.as_mut() {
        l.cgroup_parent = format!("/kubepods/besteffort/pod{name}-uid");
    }
    config.hostname = name.into();
    let id = c
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .map_err(|s| format!("RunPodSandbox {name}: {}", s.message()))?
        .into_inner()
        .pod_sandbox_id;
    Ok(Pod { id, config })
}

/// Creates and starts container `name` running `args`; its id.
pub async fn add_container(
    c: &mut Client,
    pod: &Pod,
    name: &str,
    image: &str,
    args: &[&str],
) -> Result<String, String> {
    let id = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.id.clone(),
            config: Some(container(name, image, args)),
            sandbox_config: Some(pod.config.clone()),
        })
        .await
        .map_err(|s| format!("CreateContainer {name}: {}", s.message()))?
        .into_inner()
        .container_id;
    c.start_container(StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .map_err(|s| format!("StartContainer {name}: {}", s.message()))?;
    Ok(id)
}

pub async fn remove_pod(c: &mut Client, pod: &Pod) {
    let _ = c
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await;
    let _ = c
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.id.clone(),
        })
        .await;
}

/// PSS (KiB) of every hull process of pod `id`: the processes each of its
/// containers' `state.json` names under `root` (containerd's `k8s.io`
/// namespace).
fn pod_pss_kib(root: &Path, id: &str) -> u64 {
    let Ok(dir) = std::fs::read_dir(root.join("k8s.io")) else {
        return 0;
    };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path().join("state.json")) else {
            continue;
        };
        let owner = |key: &str| text.contains(&format!("\"{key}\":\"{id}\""));
        if !(owner("id") || owner("podSandbox")) {
            continue;
        }
        for key in ["\"pid\":", "\"sandboxPid\":", "\"vmmPid\":"] {
            if let Some(pid) = text
                .split(key)
                .nth(1)
                .and_then(|rest| rest.split([',', '}']).next())
                .and_then(|n| n.trim().parse::<u32>().ok())
                .filter(|p| *p > 0)
            {
                pids.push(pid);
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .sum()
}

pub async fn bench(
    c: &mut Client,
    image: &str,
    log_dir: &str,
    hull_root: &str,
    rounds: usize,
) -> Result<(), String> {
    let root = Path::new(hull_root);
    for handler in ["", "runc"] {
        let shown = if handler.is_empty() { "hull" } else { handler };
        let (mut start, mut second) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            let t = Instant::now();
            let pod = run_pod(c, &format!("b-{shown}-{round}"), handler, log_dir).await?;
            add_container(c, &pod, "first", image, SLEEP).await?;
            start.push(ms(t.elapsed()));
            let t = Instant::now();
            add_container(c, &pod, "second", image, SLEEP).await?;
            second.push(ms(t.elapsed()));
            remove_pod(c, &pod).await;
        }
        println!("bench-cri: {shown}: pod start {:.0} ms", median(start));
        println!(
            "bench-cri: {shown}: second container {:.0} ms",
            median(second)
        );
    }

    // Memory: a pod with 1, then 3 containers; 3 one-container pods.
    let mut one = Vec::new();
    let mut three = Vec::new();
    let mut separate = Vec::new();
    for round in 0..rounds {
        let pod = run_pod(c, &format!("m-{round}"), "", log_dir).await?;
        add_container(c, &pod, "c0", image, SLEEP).await?;
        one.push(pod_pss_kib(root, &pod.id) as f64 / 1024.0);
        add_container(c, &pod, "c1", image, SLEEP).await?;
        add_container(c, &pod, "c2", image, SLEEP).await?;
        three.push(pod_pss_kib(root, &pod.id) as f64 / 1024.0);
        remove_pod(c, &pod).await;
        let mut pods = Vec::new();
        for i in 0..3 {
            let pod = run_pod(c, &format!("s-{round}-{i}"), "", log_dir).await?;
            add_container(c, &pod, "c0", image, SLEEP).await?;
            pods.push(pod);
        }
        let total: u64 = pods.iter().map(|p| pod_pss_kib(root, &p.id)).sum();
        separate.push(total as f64 / 1024.0);
        for pod in &pods {
            remove_pod(c, pod).await;
        }
    }
    println!(
        "bench-cri: hull: PSS of a pod: 1 container {:.1} MiB, 3 containers {:.1} MiB, 3 one-container pods {:.1} MiB",
        median(one),
        median(three),
        median(separate)
    );

    // 10 pods at once, each with one container.
    for handler in ["", "runc"] {
        let shown = if handler.is_empty() { "hull" } else { handler };
        let t = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..10 {
            let mut c = c.clone();
            let (image, log_dir, handler) =
                (image.to_owned(), log_dir.to_owned(), handler.to_owned());
            tasks.push(tokio::spawn(async move {
                let pod = run_pod(&mut c, &format!("p-{handler}-{i}"), &handler, &log_dir).await?;
                add_container(&mut c, &pod, "c0", &image, SLEEP).await?;
                Ok::<Pod, String>(pod)
            }));
        }
        let mut pods = Vec::new();
        for task in tasks {
            pods.push(task.await.map_err(|e| e.to_string())??);
        }
        println!(
            "bench-cri: {shown}: 10 pods at once {:.0} ms",
            ms(t.elapsed())
        );
        for pod in &pods {
            remove_pod(c, pod).await;
        }
    }
    Ok(())
}
