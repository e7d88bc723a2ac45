use std::path::Path;

use serde_json::json;

use super::*;
use crate::testutil::TempDir;

fn bundle_with(config: &serde_json::Value) -> TempDir {
    let dir = TempDir::new("bundle");
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    std::fs::write(dir.path().join(CONFIG_FILE), config.to_string()).unwrap();
    dir
}

fn minimal() -> serde_json::Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["/bin/true"], "cwd": "/"},
        "root": {"path": "rootfs"},
    })
}

fn load_err(config: &serde_json::Value) -> String {
    let dir = bundle_with(config);
    Bundle::load(dir.path()).unwrap_err().to_string()
}

#[test]
fn a_full_spec_translates() {
    let dir = bundle_with(&json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "consoleSize": {"height": 24, "width": 80},
            "user": {"uid": 1000, "gid": 100, "umask": 18, "additionalGids": [5, 6]},
            "args": ["sh", "-c", "echo hi"],
            "env": ["PATH=/bin", "TERM=xterm"],
            "cwd": "/work",
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 512}],
            "noNewPrivileges": true,
            "oomScoreAdj": 100,
            "apparmorProfile": "ignored",
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "ro"]},
            {"destination": "/etc/hosts", "source": "hosts", "options": ["bind"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=64m"]},
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"],
            "sysctl": {"net.ipv4.ip_forward": "1"},
        },
        "hooks": {},
    }));
    let bundle = Bundle::load(dir.path()).unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(bundle.rootfs, root.join("rootfs"));
    assert!(bundle.terminal());
    assert_eq!(
        bundle.host_binds,
        vec![
            HostBind {
                index: 1,
                source: "/srv/data".into(),
                recursive: true,
                readonly: true
            },
            HostBind {
                index: 2,
                source: root.join("hosts"),
                recursive: false,
                readonly: false
            },
        ]
    );

    let c = bundle.container_config("c1");
    assert_eq!(c.rootfs(), Path::new("/run/hull/share/c1/rootfs"));
    assert!(c.readonly_rootfs());
    // The spec itself goes to the guest: only host paths and hooks change.
    let mut expected = bundle.spec.clone();
    expected.set_hooks(None);
    let sources: Vec<Option<String>> = c
        .spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.source().as_ref().map(|s| s.display().to_string()))
        .collect();
    assert_eq!(
        sources,
        [
            Some("proc".to_string()),
            Some("/run/hull/share/c1/mounts/1/data".into()),
            Some("/run/hull/share/c1/mounts/2/hosts".into()),
            Some("tmpfs".into()),
        ]
    );
    assert_eq!(c.spec.process(), expected.process());
    assert_eq!(c.spec.linux(), expected.linux());
    assert_eq!(c.spec.hostname().as_deref(), Some("box"));
    assert!(c.spec.hooks().is_none());
    let size = c.spec.process().as_ref().unwrap().console_size().unwrap();
    assert_eq!((size.height(), size.width()), (24, 80));
    // apparmorProfile is accepted with a log line.
    assert!(
        bundle
            .warnings
            .iter()
            .any(|w| w.contains("process.apparmorProfile")),
        "{:?}",
        bundle.warnings
    );
}

#[test]
fn a_minimal_spec_takes_defaults() {
    let mut config = minimal();
    config["process"].as_object_mut().unwrap().remove("cwd");
    let dir = bundle_with(&config);
    let bundle = Bundle::load(dir.path()).unwrap();
    let c = bundle.container_config("x");
    assert!(!c.readonly_rootfs() && !bundle.terminal());
    let p = c.process().unwrap();
    assert_eq!(p.cwd(), Path::new("/"));
    assert_eq!(p.capabilities(), &None);
    assert_eq!(c.spec.hostname(), &None);
    assert_eq!(
        c.namespaces(),
        agent_protocol::container::default_namespaces()
    );
}

#[test]
fn the_namespace_list_is_the_specs() {
    use agent_protocol::container::LinuxNamespaceType as Ns;
    let mut config = minimal();
    config["linux"] = serde_json::json!({"namespaces": [
        {"type": "mount"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "time"}
    ]});
    let dir = bundle_with(&config);
    let c = Bundle::load(dir.path()).unwrap().container_config("x");
    assert_eq!(c.namespaces(), [Ns::Mount, Ns::Network, Ns::Time]);
}

#[test]
fn unsupported_fields_are_refused_by_name() {
    let mut config = minimal();
    config["linux"] = json!({"intelRdt": {"closID": "x"}});
    let e = load_err(&config);
    assert!(e.contains("linux.intelRdt.closID"), "{e}");
    config["linux"] = json!({"namespaces": [{"type": "ipc", "path": "/run/ipcns/1"}]});
    let e = load_err(&config);
    assert!(e.contains("linux.namespaces[0].path"), "{e}");
    // A namespace list without a network namespace: the host's network.
    config["linux"] = json!({"namespaces": [{"type": "pid"}, {"type": "mount"}]});
    let e = load_err(&config);
    assert!(
        e.contains("linux.namespaces (network)") && e.contains("cannot share"),
        "{e}"
    );
}

#[test]
fn an_absolute_root_path_is_used_as_is() {
    let elsewhere = TempDir::new("root");
    let mut config = minimal();
    config["root"]["path"] = json!(elsewhere.path());
    let dir = bundle_with(&config);
    assert_eq!(Bundle::load(dir.path()).unwrap().rootfs, elsewhere.path());
}

#[test]
fn bad_bundles_are_refused_with_clear_errors() {
    let empty = TempDir::new("empty");
    let e = Bundle::load(empty.path()).unwrap_err().to_string();
    assert!(e.contains("config.json not found"), "{e}");
    let e = Bundle::load(Path::new("/nonexistent/bundle")).unwrap_err();
    assert!(matches!(e, BundleError::Dir { .. }), "{e}");

    let dir = TempDir::new("malformed");
    std::fs::write(
        dir.path().join(CONFIG_FILE),
        "{\n  \"process\": {\n    \"args\": [1]",
    )
    .unwrap();
    let e = Bundle::load(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("malformed") && e.contains("line 3 column"),
        "{e}"
    );

    let mut c = minimal();
    c.as_object_mut().unwrap().remove("process");
    assert!(load_err(&c).contains("no process"));
    let mut c = minimal();
    c["process"]["args"] = json!([]);
    assert!(load_err(&c).contains("process.args is empty"));
    let mut c = minimal();
    c["process"]["cwd"] = json!("work");
    assert!(load_err(&c).contains("\"work\" is not an absolute path"));
    let mut c = minimal();
    c.as_object_mut().unwrap().remove("root");
    assert!(load_err(&c).contains("no root"));
    let mut c = minimal();
    c["root"]["path"] = json!("missing");
    assert!(load_err(&c).contains("missing: No such file"));
    let mut c = minimal();
    c["root"]["path"] = json!("config.json");
    assert!(load_err(&c).contains("is not a directory"));
    let mut c = minimal();
    c["mounts"] = json!([{"destination": "/x", "options": ["rbind"]}]);
    assert!(load_err(&c).contains("mount 0 (/x): a bind mount needs a source"));
    let mut c = minimal();
    c["mounts"] = json!([{"destination": "x", "type": "tmpfs"}]);
    assert!(load_err(&c).contains("destination \"x\" is not an absolute path"));
}

#[test]
fn resources_go_to_the_guest_and_empty_ones_are_left_out() {
    let mut config = minimal();
    config["linux"] = json!({"resources": {
        "memory": {"limit": 67108864}, "cpu": {"shares": 1024}, "devices": []
    }});
    let dir = bundle_with(&config);
    let c = Bundle::load(dir.path()).unwrap().container_config("x");
    let r = c.resources.unwrap();
    assert_eq!((r.memory_max, r.cpu_weight), (Some(64 << 20), Some(39)));

    config["linux"] = json!({"resources": {"devices": [{"allow": false}]}});
    let dir = bundle_with(&config);
    let c = Bundle::load(dir.path()).unwrap().container_config("x");
    assert_eq!(c.resources, None);
}
