use std::path::Path;

use serde_json::{json, Value};

use super::*;
use crate::appc::PodManifest;

/// A pod directory with app `web` (a rootfs with /etc/passwd and
/// /etc/group) and the given pod manifest.
fn pod(manifest: Value) -> (tempfile::TempDir, PodDir, PodManifest) {
    let d = tempfile::tempdir().unwrap();
    let p = PodDir::new(d.path().into(), "0ab1c2d3-0000-4000-8000-000000000001").unwrap();
    let etc = p.app_rootfs("web").join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0::/root:/bin/sh\nwww:x:33:33::/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nweb:x:44:\n").unwrap();
    std::fs::write(p.manifest(), manifest.to_string()).unwrap();
    let m = PodManifest::load(&p.manifest()).unwrap();
    (d, p, m)
}

fn image(app: Value) -> ImageManifest {
    serde_json::from_value(
        json!({"acKind": "ImageManifest", "name": "example.com/web", "app": app}),
    )
    .unwrap()
}

fn settings(dns: &Dns) -> RunSettings<'_> {
    RunSettings {
        netns: Some(Path::new("/run/netns/hull-rkt-x")),
        sandbox_pid: Some(42),
        caps_restricted: true,
        seccomp: true,
        paths_restricted: true,
        terminal: false,
        dns,
    }
}

#[test]
fn process_user_env_workdir_and_resources() {
    let (_d, p, m) = pod(json!({"acKind": "PodManifest", "apps": [{"name": "web",
        "app": {"environment": [{"name": "B", "value": "pod"}], "group": "web"}}]}));
    let img = image(
        json!({"exec": ["/bin/httpd", "-f"], "user": "www", "group": "0",
        "supplementaryGIDs": [5], "workingDirectory": "/srv",
        "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "image"}],
        "isolators": [{"name": "resource/memory", "value": {"limit": "64Mi"}},
                      {"name": "resource/cpu", "value": {"limit": "250m"}},
                      {"name": "os/linux/capabilities-remove-set", "value": {"set": ["CAP_KILL"]}}]}),
    );
    let dns = Dns::default();
    let (c, limits) = app_config(&p, &m, &m.apps[0], &img, &settings(&dns)).unwrap();
    let pr = &c["process"];
    assert_eq!(pr["args"], json!(["/bin/httpd", "-f"]));
    assert_eq!(
        pr["user"],
        json!({"uid": 33, "gid": 44, "additionalGids": [5]})
    );
    assert_eq!(pr["cwd"], "/srv");
    let env: Vec<&str> = pr["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(env.contains(&"A=1") && env.contains(&"B=pod") && env.contains(&"AC_APP_NAME=web"));
    assert!(env.iter().any(|e| e.starts_with("PATH=")));
    let caps = pr["capabilities"]["bounding"].as_array().unwrap();
    assert!(!caps.contains(&json!("CAP_KILL")) && caps.contains(&json!("CAP_CHOWN")));
    assert_eq!(c["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(c["linux"]["resources"]["cpu"]["quota"], 25_000);
    assert_eq!(c["annotations"][CONTAINER_TYPE], "container");
    assert_eq!(c["annotations"][SANDBOX_ID], p.sandbox_id());
    assert_eq!(c["root"]["path"], json!(p.app_rootfs("web")));
    assert_eq!(c["linux"]["namespaces"][2]["path"], "/run/netns/hull-rkt-x");
    assert_eq!(c["linux"]["namespaces"][3]["path"], "/proc/42/ns/ipc");
    assert_eq!(c["linux"]["namespaces"][4]["path"], "/proc/42/ns/uts");
    assert_eq!(limits.memory_bytes, Some(64 << 20));
    // What hull reads: the OCI model accepts it.
    let spec: oci_spec::runtime::Spec = serde_json::from_value(c).unwrap();
    assert_eq!(spec.process().as_ref().unwrap().user().uid(), 33);
}

#[test]
fn volumes_host_empty_and_implicit() {
    let (_d, p, m) = pod(json!({"acKind": "PodManifest",
        "apps": [{"name": "web", "mounts": [{"volume": "data", "path": "/data"},
                                            {"volume": "logs", "path": "/logs"}]}],
        "volumes": [{"name": "data", "kind": "host", "source": "/srv/data", "readOnly": true},
                    {"name": "logs", "kind": "empty", "mode": "0700"}]}));
    let img = image(json!({"exec": ["/bin/true"], "user": "0", "group": "0",
        "mountPoints": [{"name": "cache", "path": "/cache"}]}));
    let dns = Dns::parse("resolv=host").unwrap();
    let (c, _) = app_config(&p, &m, &m.apps[0], &img, &settings(&dns)).unwrap();
    let mounts = c["mounts"].as_array().unwrap();
    let find = |dst: &str| {
        mounts
            .iter()
            .find(|m| m["destination"] == dst)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("/data")["source"], "/srv/data");
    assert_eq!(find("/data")["options"], json!(["rbind", "ro"]));
    assert_eq!(find("/logs")["source"], json!(p.volume_dir("logs")));
    assert_eq!(find("/cache")["source"], json!(p.volume_dir("cache")));
    assert_eq!(find("/etc/resolv.conf")["source"], "/etc/resolv.conf");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p.volume_dir("logs"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn bad_input_is_a_clear_error() {
    let (_d, p, m) = pod(json!({"acKind": "PodManifest",
        "apps": [{"name": "web", "mounts": [{"volume": "nope", "path": "/x"}]}, {"name": "gone"}]}));
    let dns = Dns::default();
    let ok = image(json!({"exec": ["/bin/true"]}));
    let e = app_config(&p, &m, &m.apps[0], &ok, &settings(&dns))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "app web: mount /x: no volume \"nope\" in the pod");
    let e = app_config(&p, &m, &m.apps[1], &ok, &settings(&dns))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("app gone: rootfs ") && e.ends_with(" is missing"),
        "{e}"
    );
    let (_d, p, m) = pod(json!({"acKind": "PodManifest", "apps": [{"name": "web"}]}));
    let e = app_config(&p, &m, &m.apps[0], &image(json!({})), &settings(&dns)).unwrap_err();
    assert!(e.to_string().contains("no exec"), "{e}");
    let who = image(json!({"exec": ["/bin/true"], "user": "nobody", "group": "0"}));
    let e = app_config(&p, &m, &m.apps[0], &who, &settings(&dns)).unwrap_err();
    assert!(
        e.to_string()
            .contains("\"nobody\" is not in the app's /etc/passwd"),
        "{e}"
    );
}

#[test]
fn disabled_restrictions_give_every_capability() {
    let (_d, p, m) = pod(json!({"acKind": "PodManifest", "apps": [{"name": "web"}]}));
    let dns = Dns::default();
    let mut s = settings(&dns);
    s.caps_restricted = false;
    s.paths_restricted = false;
    s.netns = None;
    s.sandbox_pid = None;
    let (c, _) = app_config(&p, &m, &m.apps[0], &image(json!({"exec": ["/bin/sh"]})), &s).unwrap();
    let caps = c["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert!(caps.contains(&json!("CAP_SYS_ADMIN")));
    assert!(c["linux"].get("maskedPaths").is_none());
    assert_eq!(c["linux"]["namespaces"].as_array().unwrap().len(), 2);
}
