use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn report(name: &str) -> (Report, Vec<String>) {
    let parsed = super::super::parse(&fixture(name)).unwrap();
    (check(&parsed.spec), parsed.unknown_fields)
}

fn fields(list: &[Finding]) -> Vec<&str> {
    list.iter().map(|f| f.field.as_str()).collect()
}

/// Every leaf of the maximal config is either applied (not reported) or
/// reported by name, and `oci-spec` understood every field of it.
#[test]
fn the_maximal_config_is_applied_or_refused_field_by_field() {
    let (report, unknown) = report("oci/maximal-config.json");
    assert!(unknown.is_empty(), "{unknown:?}");
    let refused = fields(&report.refused);
    for field in [
        "process.user.username",
        "process.commandLine",
        "process.ioPriority.class",
        "process.ioPriority.priority",
        "mounts[2].uidMappings[0].hostID",
        "mounts[2].options[1] (idmap)",
        "linux.netDevices",
        "linux.resources.memory.disableOOMKiller",
        "linux.resources.cpu.burst",
        "linux.resources.cpu.realtimeRuntime",
        "linux.resources.cpu.realtimePeriod",
        "linux.resources.cpu.idle",
        "linux.resources.blockIO.weight",
        "linux.resources.blockIO.weightDevice[0].major",
        "linux.resources.hugepageLimits[0].limit",
        "linux.resources.network.classID",
        "linux.resources.rdma",
        "linux.resources.unified",
        "linux.intelRdt.closID",
        "linux.memoryPolicy.mode",
        "vm.hypervisor.path",
        "windows.layerFolders",
    ] {
        assert!(refused.contains(&field), "{field} not refused: {refused:?}");
    }
    let logged = fields(&report.logged);
    for field in [
        "process.apparmorProfile",
        "process.selinuxLabel",
        "linux.mountLabel",
        "linux.resources.memory.swap",
        "linux.resources.memory.kernel",
        "linux.resources.cpu.mems",
    ] {
        assert!(logged.contains(&field), "{field} not logged: {logged:?}");
    }
    // Applied ones are in neither list.
    for field in [
        "process.args",
        "process.capabilities.bounding",
        "process.scheduler.policy",
        "linux.seccomp.defaultAction",
        "linux.seccomp.syscalls[0].args[0].op",
        "linux.devices[0].major",
        "linux.resources.devices[1].access",
        "linux.uidMappings[0].hostID",
        "linux.timeOffsets",
        "linux.rootfsPropagation",
        "linux.personality.domain",
        "hooks.prestart[0].path",
    ] {
        assert!(
            !refused.contains(&field) && !logged.contains(&field),
            "{field} reported"
        );
    }
    let e = report.error().unwrap();
    assert!(
        e.contains("linux.intelRdt.closID: the guest has no Intel RDT"),
        "{e}"
    );
}

/// What Podman, Docker and containerd really send loads with nothing refused.
#[test]
fn engine_configs_are_fully_supported() {
    for engine in ["podman", "docker", "containerd"] {
        for kind in ["config", "tty-config"] {
            let name = format!("engines/{engine}-{kind}.json");
            let (report, unknown) = report(&name);
            assert_eq!(report.refused, [], "{name}");
            assert!(unknown.is_empty(), "{name}: {unknown:?}");
        }
    }
}

#[test]
fn a_namespace_path_other_than_the_network_or_a_process_is_refused_by_name() {
    // A path into a process names a pod (create resolves it).
    let parsed = super::super::parse(
        br#"{"linux": {"namespaces": [{"type": "network", "path": "/run/netns/a"},
                                      {"type": "ipc", "path": "/proc/1/ns/ipc"},
                                      {"type": "uts", "path": "/run/utsns/b"}]}}"#,
    )
    .unwrap();
    let report = check(&parsed.spec);
    assert_eq!(fields(&report.refused), ["linux.namespaces[2].path"]);
}

#[test]
fn lookup_takes_the_longest_prefix_and_refuses_the_unknown() {
    assert_eq!(lookup("linux.resources.memory.limit"), Support::Guest);
    assert!(matches!(
        lookup("linux.resources.memory.swap"),
        Support::Logged(_)
    ));
    assert!(matches!(
        lookup("linux.resources.blockIO.weight"),
        Support::Refused(_)
    ));
    assert!(matches!(lookup("linux.somethingNew"), Support::Refused(_)));
    // A prefix matches whole components only.
    assert!(matches!(lookup("process.argsX"), Support::Refused(_)));
}
