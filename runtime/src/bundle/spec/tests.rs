use super::*;

fn spec(json: &str) -> Result<Spec, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn the_network_namespace_path_is_found() {
    let s = spec(
        r#"{"linux": {"namespaces": [
            {"type": "pid"},
            {"type": "network", "path": "/var/run/netns/cni-1"}
        ]}}"#,
    )
    .unwrap();
    assert_eq!(s.network_namespace_path(), Some("/var/run/netns/cni-1"));
    let linux = s.linux.as_ref().unwrap();
    assert_eq!(linux.namespace_path("pid"), None);
    assert_eq!(linux.namespace_path("ipc"), None);
    for json in [
        r#"{}"#,
        r#"{"linux": {}}"#,
        r#"{"linux": {"namespaces": [{"type": "network"}]}}"#,
        r#"{"linux": {"namespaces": [{"type": "network", "path": ""}]}}"#,
    ] {
        assert_eq!(spec(json).unwrap().network_namespace_path(), None, "{json}");
    }
}

#[test]
fn hooks_cgroups_path_and_resources_parse() {
    let s = spec(
        r#"{
            "hooks": {"poststop": [{"path": "/bin/cleanup", "args": ["cleanup", "-v"]}]},
            "linux": {
                "cgroupsPath": "system.slice:docker:abc",
                "resources": {"memory": {"limit": 1048576}, "pids": {"limit": 10}}
            }
        }"#,
    )
    .unwrap();
    assert_eq!(s.hooks(HookKind::Poststop)[0].args, ["cleanup", "-v"]);
    assert!(s.hooks(HookKind::Prestart).is_empty());
    let linux = s.linux.unwrap();
    assert_eq!(
        linux.cgroups_path.as_deref(),
        Some("system.slice:docker:abc")
    );
    let resources = linux.resources.unwrap();
    assert_eq!(resources.memory.unwrap().limit, Some(1 << 20));
    assert!(spec("{}").unwrap().hooks(HookKind::Poststop).is_empty());
}

#[test]
fn an_invalid_hook_fails_the_whole_spec() {
    let e = spec(r#"{"hooks": {"createRuntime": [{"path": "relative"}]}}"#).unwrap_err();
    assert!(e.contains("not an absolute path"), "{e}");
}
