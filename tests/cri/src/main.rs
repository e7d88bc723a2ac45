//! hull-cri-test: a CRI client for the engine suite (`tests/engines/cri.sh`).
//! It drives containerd's CRI plugin, over its gRPC socket, through one
//! pod's life as a kubelet would, and prints one line per assertion in the
//! engine suite's format: `PASS cri: NAME` or `FAIL cri: NAME: WHY`. Exit
//! status 1 when anything failed.
//!
//! `hull-cri-test SOCKET IMAGE LOG_DIR UNAME_FILE HULL_ROOT`: IMAGE is a
//! busybox image in containerd's `k8s.io` namespace; the pod's logs go to
//! LOG_DIR; the first app container's `uname -v` is written to UNAME_FILE
//! (the script checks it is hull's guest kernel); HULL_ROOT is the runtime's
//! `--root` (the faults, [`faults`], find a pod's sandbox process there).

use std::io::{Read, Write};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ContainerStatsRequest, ContainerStatusRequest,
    CreateContainerRequest, ExecSyncRequest, ImageSpec, LinuxContainerConfig,
    LinuxContainerResources, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    ListContainersRequest, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest,
    StartContainerRequest, StopContainerRequest, StopPodSandboxRequest,
    UpdateContainerResourcesRequest,
};
use tonic::transport::{Channel, Endpoint, Uri};

mod bench;
mod faults;

type Client = RuntimeServiceClient<Channel>;

/// What one run found; printed as it goes.
#[derive(Default)]
struct Report {
    failed: usize,
}

impl Report {
    fn check(&mut self, name: &str, ok: bool, why: impl FnOnce() -> String) -> bool {
        if ok {
            println!("PASS cri: {name}");
        } else {
            self.failed += 1;
            println!("FAIL cri: {name}: {}", why().replace('\n', " "));
        }
        ok
    }

    /// A request's result: PASS, or FAIL with the status; the value if any.
    fn call<T>(&mut self, name: &str, r: Result<tonic::Response<T>, tonic::Status>) -> Option<T> {
        match r {
            Ok(resp) => {
                println!("PASS cri: {name}");
                Some(resp.into_inner())
            }
            Err(status) => {
                self.failed += 1;
                println!("FAIL cri: {name}: {}", status.message().replace('\n', " "));
                None
            }
        }
    }
}

async fn connect(socket: String) -> Result<Client, tonic::transport::Error> {
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}

/// Every hull-vmm process now.
fn vmm_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "hull-vmm")
        })
        .collect()
}

fn pod_config(log_dir: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "hull-pod".into(),
            uid: "hull-pod-uid-1".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "hull-pod".into(),
        log_directory: log_dir.into(),
        linux: Some(LinuxPodSandboxConfig {
            // As kubelet's cgroupfs driver: the pod's cgroup, each
            // container's below it (named by its id).
            cgroup_parent: "/kubepods/besteffort/podhull-pod-uid-1".into(),
            security_context: Some(LinuxSandboxSecurityContext {
                // Network and IPC of the pod, a pid namespace per container.
                namespace_options: Some(NamespaceOption {
                    network: 0,
                    pid: 1,
                    ipc: 0,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container(name: &str, image: &str, args: &[&str]) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: args.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

async fn exec(c: &mut Client, id: &str, cmd: &[&str]) -> Result<(i32, String, String), String> {
    let r = c
        .exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 120,
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    Ok((
        r.exit_code,
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
    ))
}

/// `GET /` on `addr` from this host; the body.
fn http_get(addr: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut text = String::new();
    s.read_to_string(&mut text).map_err(|e| e.to_string())?;
    Ok(text)
}

async fn state_of(c: &mut Client, id: &str) -> Option<k8s_cri::v1::ContainerStatus> {
    c.container_status(ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    })
    .await
    .ok()?
    .into_inner()
    .status
}

async fn scenario(c: &mut Client, r: &mut Report, image: &str, log_dir: &str, uname_file: &str) {
    let before = vmm_pids();
    let config = pod_config(log_dir);
    let Some(pod) = r.call(
        "RunPodSandbox",
        c.run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await,
    ) else {
        return;
    };
    let pod_id = pod.pod_sandbox_id;
    let pod_vmms: Vec<u32> = vmm_pids()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    r.check("RunPodSandbox boots one VM", pod_vmms.len() == 1, || {
        format!("new hull-vmm processes: {pod_vmms:?}")
    });
    let ip = c
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.clone(),
            verbose: false,
        })
        .await
        .ok()
        .and_then(|s| s.into_inner().status)
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    r.check(
        "PodSandboxStatus: the pod has an IP",
        !ip.is_empty(),
        || "no IP".into(),
    );

    // Two app containers: a web server on the pod's port 8080 and a client.
    let server = container(
        "web",
        image,
        &[
            "sh",
            "-c",
            "echo pod-local > /tmp/index.html; echo serving; exec httpd -f -p 8080 -h /tmp",
        ],
    );
    let client = container(
        "client",
        image,
        &[
            "sh",
            "-c",
            "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 1; done",
        ],
    );
    let mut ids = Vec::new();
    for (name, cfg) in [("web", server), ("client", client)] {
        let created = c
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod_id.clone(),
                config: Some(cfg),
                sandbox_config: Some(config.clone()),
            })
            .await;
        if let Some(resp) = r.call(&format!("CreateContainer {name}"), created) {
            let started = c
                .start_container(StartContainerRequest {
                    container_id: resp.container_id.clone(),
                })
                .await;
            r.call(&format!("StartContainer {name}"), started);
            ids.push(resp.container_id);
        }
    }
    let [web, client] = ids.as_slice() else {
        return;
    };
    let vmms: Vec<u32> = vmm_pids()
        .into_iter()
        .filter(|p| !before.contains(p))
        .collect();
    r.check(
        "the pod is still one VM with two app containers",
        vmms == pod_vmms,
        || format!("{vmms:?} (pod's {pod_vmms:?})"),
    );
    let listed = c
        .list_containers(ListContainersRequest { filter: None })
        .await
        .map(|l| l.into_inner().containers.len())
        .unwrap_or(0);
    r.check("ListContainers lists both", listed >= 2, || {
        format!("{listed} listed")
    });

    let boot =
        |out: Result<(i32, String, String), String>| out.map(|(_, o, _)| o.trim().to_owned());
    let a = boot(exec(c, web, &["cat", "/proc/sys/kernel/random/boot_id"]).await);
    let b = boot(exec(c, client, &["cat", "/proc/sys/kernel/random/boot_id"]).await);
    r.check(
        "both app containers are in the same guest",
        a.is_ok() && a == b,
        || format!("{a:?} vs {b:?}"),
    );
    if let Ok((_, uname, _)) = exec(c, client, &["uname", "-v"]).await {
        let _ = std::fs::write(uname_file, uname);
    }
    // One container reaches the other on localhost (httpd may need a moment).
    let mut got = Err(String::new());
    for _ in 0..60 {
        got = exec(c, client, &["wget", "-qO-", "http://127.0.0.1:8080/"]).await;
        if matches!(&got, Ok((0, out, _)) if out.contains("pod-local")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    r.check(
        "the client reaches the web server on 127.0.0.1",
        matches!(&got, Ok((0, o, _)) if o.contains("pod-local")),
        || format!("{got:?}"),
    );
    let addr = exec(c, web, &["ip", "-4", "-o", "addr", "show", "eth0"]).await;
    r.check(
        "the pod IP is the guest's eth0 address",
        matches!(&addr, Ok((0, o, _)) if !ip.is_empty() && o.contains(&format!(" {ip}/"))),
        || format!("{ip} vs {addr:?}"),
    );
    let from_host = http_get(&format!("{ip}:8080"));
    r.check(
        "the pod IP is reachable from the host",
        from_host.as_ref().is_ok_and(|t| t.contains("pod-local")),
        || format!("{from_host:?}"),
    );
    let exit = exec(c, client, &["sh", "-c", "echo out; echo err >&2; exit 3"]).await;
    r.check(
        "ExecSync: stdout, stderr and exit code",
        exit == Ok((3, "out\n".into(), "err\n".into())),
        || format!("{exit:?}"),
    );
    let slow = c
        .exec_sync(ExecSyncRequest {
            container_id: client.clone(),
            cmd: vec!["sleep".into(), "60".into()],
            timeout: 2,
        })
        .await;
    r.check(
        "ExecSync: a command over its timeout is ended with an error",
        slow.as_ref()
            .is_err_and(|s| s.message().contains("timeout")),
        || format!("{slow:?}"),
    );

    let updated = c
        .update_container_resources(UpdateContainerResourcesRequest {
            container_id: client.clone(),
            linux: Some(LinuxContainerResources {
                memory_limit_in_bytes: 64 << 20,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    r.call("UpdateContainerResources", updated);
    let limit = exec(c, client, &["cat", "/sys/fs/cgroup/memory.max"]).await;
    r.check(
        "the new memory limit is the container's in the guest",
        matches!(&limit, Ok((0, o, _)) if o.trim() == (64u64 << 20).to_string()),
        || format!("{limit:?}"),
    );
    let stats = c
        .container_stats(ContainerStatsRequest {
            container_id: client.clone(),
        })
        .await;
    if let Some(s) = r.call("ContainerStats", stats) {
        let mem = s
            .stats
            .and_then(|s| s.memory)
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value);
        r.check(
            "ContainerStats reports memory",
            mem.is_some_and(|v| v > 0),
            || format!("{mem:?}"),
        );
    }

    // An app container whose image lacks its command: its start fails with
    // the reason, the pod lives on.
    let missing = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(container("missing", image, &["/no/such/program"])),
            sandbox_config: Some(config.clone()),
        })
        .await;
    if let Some(resp) = r.call("CreateContainer with a missing program", missing) {
        let started = c
            .start_container(StartContainerRequest {
                container_id: resp.container_id.clone(),
            })
            .await;
        r.check(
            "StartContainer of a missing program fails, saying so",
            started
                .as_ref()
                .is_err_and(|s| s.message().contains("/no/such/program")),
            || format!("{started:?}"),
        );
        let removed = c
            .remove_container(RemoveContainerRequest {
                container_id: resp.container_id,
            })
            .await;
        r.call("RemoveContainer of the failed one", removed);
    }
    // A container whose memory limit (2 GiB) does not fit the pod's VM: refused
    // at its start (containerd creates the task there), saying so.
    let mut huge = container("huge", image, &["true"]);
    huge.linux = Some(LinuxContainerConfig {
        resources: Some(LinuxContainerResources {
            memory_limit_in_bytes: 2 << 30,
            ..Default::default()
        }),
        ..Default::default()
    });
    let created = c
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod_id.clone(),
            config: Some(huge),
            sandbox_config: Some(config.clone()),
        })
        .await;
    if let Some(resp) = r.call("CreateContainer with 2 GiB of memory", created) {
        let started = c
            .start_container(StartContainerRequest {
                container_id: resp.container_id.clone(),
            })
            .await;
        r.check(
            "StartContainer of a container too big for the pod's VM fails, saying so",
            started
                .as_ref()
                .is_err_and(|s| s.message().contains("does not fit the pod's VM")),
            || format!("{started:?}"),
        );
        let removed = c
            .remove_container(RemoveContainerRequest {
                container_id: resp.container_id,
            })
            .await;
        r.call("RemoveContainer of the refused one", removed);
    }
    r.check(
        "the pod lives on after a failed start",
        exec(c, web, &["true"])
            .await
            .is_ok_and(|(code, _, _)| code == 0),
        || "exec failed".into(),
    );

    let stopped = c
        .stop_container(StopContainerRequest {
            container_id: client.clone(),
            timeout: 30,
        })
        .await;
    r.call("StopContainer (SIGTERM, grace 30 s)", stopped);
    let st = state_of(c, client).await;
    r.check(
        "ContainerStatus: exited 0 after its TERM trap, reason Completed",
        st.as_ref()
            .is_some_and(|s| s.state == 2 && s.exit_code == 0 && s.reason == "Completed"),
        || format!("{st:?}"),
    );
    let log = std::fs::read_to_string(format!("{log_dir}/client.log")).unwrap_or_default();
    r.check(
        "the container log has its output",
        log.contains("ready") && log.contains("got TERM"),
        || format!("{log:?}"),
    );
    r.check(
        "the web server lives on after the client's exit",
        exec(c, web, &["true"])
            .await
            .is_ok_and(|(code, _, _)| code == 0),
        || "exec failed".into(),
    );
    let removed = c
        .remove_container(RemoveContainerRequest {
            container_id: client.clone(),
        })
        .await;
    r.call("RemoveContainer", removed);
    let stopped = c
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await;
    r.call("StopPodSandbox", stopped);
    let removed = c
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.clone(),
        })
        .await;
    r.call("RemovePodSandbox", removed);
    let left: Vec<u32> = vmm_pids()
        .into_iter()
        .filter(|p| pod_vmms.contains(p))
        .collect();
    r.check("no hull-vmm is left", left.is_empty(), || {
        format!("{left:?}")
    });
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hull-cri-test: {e}");
            std::process::exit(2);
        }
    };
    if let [mode, socket, image, log_dir, hull_root, rounds] = args.as_slice() {
        if mode == "bench" {
            let rounds = rounds.parse::<usize>().unwrap_or(3).max(1);
            let result = runtime.block_on(async {
                let mut client = connect(socket.clone()).await.map_err(|e| e.to_string())?;
                bench::bench(&mut client, image, log_dir, hull_root, rounds).await
            });
            if let Err(e) = result {
                eprintln!("hull-cri-test: bench: {e}");
                std::process::exit(1);
            }
            return;
        }
    }
    let [socket, image, log_dir, uname_file, hull_root] = args.as_slice() else {
        eprintln!("usage: hull-cri-test SOCKET IMAGE LOG_DIR UNAME_FILE HULL_ROOT");
        eprintln!("       hull-cri-test bench SOCKET IMAGE LOG_DIR HULL_ROOT ROUNDS");
        std::process::exit(2);
    };
    let mut report = Report::default();
    runtime.block_on(async {
        match connect(socket.clone()).await {
            Ok(mut client) => {
                scenario(&mut client, &mut report, image, log_dir, uname_file).await;
                faults::faults(&mut client, &mut report, image, log_dir, hull_root).await;
            }
            Err(e) => {
                report.check("connect to the CRI socket", false, || e.to_string());
            }
        }
    });
    std::process::exit(i32::from(report.failed > 0));
}
