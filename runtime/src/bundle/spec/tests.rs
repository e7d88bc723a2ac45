use super::*;

fn spec(json: &str) -> Result<Spec, String> {
    parse(json.as_bytes())
        .map(|p| p.spec)
        .map_err(|e| e.to_string())
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
    assert_eq!(
        network_namespace_path(&s),
        Some(Path::new("/var/run/netns/cni-1"))
    );
    assert_eq!(namespace_path(&s, LinuxNamespaceType::Pid), None);
    assert_eq!(namespace_path(&s, LinuxNamespaceType::Ipc), None);
    for json in [
        r#"{}"#,
        r#"{"linux": {}}"#,
        r#"{"linux": {"namespaces": [{"type": "network"}]}}"#,
        r#"{"linux": {"namespaces": [{"type": "network", "path": ""}]}}"#,
    ] {
        assert_eq!(network_namespace_path(&spec(json).unwrap()), None, "{json}");
    }
}

#[test]
fn unknown_fields_are_named_and_known_ones_are_not() {
    let p = parse(
        br#"{"ociVersion": "1.2.0", "futureField": 1, "hostname": null,
             "process": {"args": ["x"], "cwd": "/", "user": {"uid": 0, "gid": 0, "shoeSize": 9}},
             "mounts": [{"destination": "/a", "bogus": true}],
             "linux": {"namespaces": [{"type": "pid"}], "sysctl": {"a.b": "1"}}}"#,
    )
    .unwrap();
    assert_eq!(
        p.unknown_fields,
        ["futureField", "mounts[0].bogus", "process.user.shoeSize"]
    );
}

#[test]
fn a_missing_user_and_cwd_take_go_and_hull_defaults() {
    let s = spec(r#"{"process": {"args": ["x"]}}"#).unwrap();
    let p = s.process().as_ref().unwrap();
    assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
    assert_eq!(p.cwd(), Path::new("/"));
}

#[test]
fn malformed_values_are_errors() {
    assert!(spec(r#"{"process": {"args": "not-a-list"}}"#).is_err());
    let e = spec(r#"{"process": {"capabilities": {"bounding": ["CAP_NOPE"]}}}"#).unwrap_err();
    assert!(e.contains("CAP_NOPE") || e.contains("unknown"), "{e}");
}
