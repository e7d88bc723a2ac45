use std::path::Path;

use agent_protocol::container::WindowSize;
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
            "namespaces": [{"type": "pid"}],
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
    assert_eq!(c.rootfs, "/run/hull/share/c1/rootfs");
    assert!(c.readonly_rootfs);
    assert_eq!(c.hostname.as_deref(), Some("box"));
    let p = &c.process;
    assert!(p.terminal);
    assert_eq!(p.console_size, Some(WindowSize { rows: 24, cols: 80 }));
    assert_eq!(p.args, ["sh", "-c", "echo hi"]);
    assert_eq!(p.env, ["PATH=/bin", "TERM=xterm"]);
    assert_eq!(p.cwd, "/work");
    assert_eq!(
        (p.user.uid, p.user.gid, p.user.umask),
        (1000, 100, Some(18))
    );
    assert_eq!(p.user.additional_gids, [5, 6]);
    assert_eq!(p.rlimits[0].kind, "RLIMIT_NOFILE");
    assert_eq!((p.rlimits[0].hard, p.rlimits[0].soft), (1024, 512));
    let caps = p.capabilities.as_ref().unwrap();
    assert_eq!(caps.bounding, ["CAP_CHOWN"]);
    assert!(caps.ambient.is_empty());
    assert!(p.no_new_privileges);
    assert_eq!(p.oom_score_adj, Some(100));

    let m = &c.mounts;
    assert_eq!(m.len(), 4);
    assert_eq!(m[0].source.as_deref(), Some("proc"));
    assert_eq!(m[0].fstype.as_deref(), Some("proc"));
    assert_eq!(m[1].source.as_deref(), Some("/run/hull/share/c1/mounts/1"));
    assert_eq!(m[1].options, ["rbind", "ro"]);
    assert_eq!(m[2].source.as_deref(), Some("/run/hull/share/c1/mounts/2"));
    assert_eq!(m[2].fstype, None);
    assert_eq!(m[3].options, ["nosuid", "size=64m"]);
    assert_eq!(c.masked_paths, ["/proc/kcore"]);
    assert_eq!(c.readonly_paths, ["/proc/sys"]);
    assert_eq!(c.sysctl["net.ipv4.ip_forward"], "1");
}

#[test]
fn a_minimal_spec_takes_defaults() {
    let mut config = minimal();
    config["process"].as_object_mut().unwrap().remove("cwd");
    let dir = bundle_with(&config);
    let bundle = Bundle::load(dir.path()).unwrap();
    let c = bundle.container_config("x");
    assert!(!c.readonly_rootfs && !c.process.terminal);
    assert_eq!(c.process.cwd, "/");
    assert_eq!(c.process.capabilities, None);
    assert!(c.mounts.is_empty() && c.sysctl.is_empty());
    assert_eq!(c.hostname, None);
    assert_eq!(
        c.namespaces,
        agent_protocol::container::default_namespaces()
    );
}

#[test]
fn the_namespace_list_is_the_specs() {
    use agent_protocol::container::Namespace;
    let mut config = minimal();
    config["linux"] = serde_json::json!({"namespaces": [
        {"type": "mount"}, {"type": "network", "path": "/var/run/netns/x"}, {"type": "time"}
    ]});
    let dir = bundle_with(&config);
    let c = Bundle::load(dir.path()).unwrap().container_config("x");
    assert_eq!(c.namespaces, [Namespace::Mount]);
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
