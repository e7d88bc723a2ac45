use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::testutil::TempDir;

/// A fake plugin: logs `COMMAND TYPE prev=…` and answers a result naming
/// itself; `fail` (its type) fails its ADD with a CNI error.
fn plugin(dir: &Path, name: &str) {
    let script = format!(
        r#"#!/bin/sh
config="$(cat)"
prev=$(echo "$config" | grep -o '"prevResult".*' | grep -o '10\.0\.0\.[0-9]*/24' | head -1)
rc=$(echo "$config" | grep -o '"runtimeConfig":{{[^}}]*}}' || true)
echo "$CNI_COMMAND {name} $CNI_IFNAME prev=$prev $rc" >> "{log}"
if [ "{name}" = fail ] && [ "$CNI_COMMAND" = ADD ]; then
  echo '{{"code":11,"msg":"no room","details":"subnet full"}}'; exit 1
fi
echo '{{"cniVersion":"1.0.0","ips":[{{"address":"10.0.0.{n}/24"}}]}}'
"#,
        log = dir.join("log").display(),
        n = name.len()
    );
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn attachment(dir: &Path, plugins: &[&str]) -> Attachment {
    let list: Vec<Value> = plugins
        .iter()
        .map(|p| match *p {
            "pm" => {
                json!({"type": "pm", "capabilities": {"portMappings": true, "bandwidth": false}})
            }
            p => json!({"type": p}),
        })
        .collect();
    Attachment {
        container_id: "c1".into(),
        netns: "/run/netns/x".into(),
        ifname: "eth0".into(),
        network: json!({"cniVersion": CNI_VERSION, "name": "net", "plugins": list}),
        runtime_config: json!({"portMappings": [{"hostPort": 8080}], "bandwidth": {}}),
        plugin_dir: dir.to_path_buf(),
    }
}

fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn add_chains_results_and_del_runs_in_reverse() {
    let dir = TempDir::new("cni");
    for p in ["br", "pm"] {
        plugin(dir.path(), p);
    }
    let a = attachment(dir.path(), &["br", "pm"]);
    let result = a.add().unwrap();
    assert_eq!(first_ipv4(&result).as_deref(), Some("10.0.0.2"));
    a.del(Some(&result)).unwrap();
    assert_eq!(
        log(dir.path()),
        [
            "ADD br eth0 prev=",
            "ADD pm eth0 prev=10.0.0.2/24 \"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080}",
            "DEL pm eth0 prev=10.0.0.2/24 \"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080}",
            "DEL br eth0 prev=10.0.0.2/24",
        ]
    );
}

#[test]
fn a_failed_add_is_undone_and_reported() {
    let dir = TempDir::new("cni-fail");
    for p in ["br", "fail"] {
        plugin(dir.path(), p);
    }
    let e = attachment(dir.path(), &["br", "fail"]).add().unwrap_err();
    assert_eq!(
        e.to_string(),
        "CNI plugin fail ADD failed: no room: subnet full"
    );
    let lines = log(dir.path());
    assert_eq!(lines[0], "ADD br eth0 prev=");
    assert!(
        lines[2].starts_with("DEL fail") && lines[3].starts_with("DEL br"),
        "{lines:?}"
    );
    let e = attachment(dir.path(), &["missing"]).add().unwrap_err();
    assert!(e.to_string().starts_with("CNI plugin missing:"), "{e}");
    let e = attachment(dir.path(), &["../br"]).add().unwrap_err();
    assert!(e.to_string().contains("bad plugin type"), "{e}");
}

#[test]
fn the_default_network_is_a_bridge_with_port_mappings() {
    let n = default_network("hull", "hull0", "10.89.0.0/24");
    assert_eq!(n["plugins"][0]["type"], "bridge");
    assert_eq!(
        n["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
        "10.89.0.0/24"
    );
    assert_eq!(n["plugins"][1]["capabilities"]["portMappings"], true);
}
