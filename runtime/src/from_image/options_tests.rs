use super::options::*;

#[test]
fn volumes() {
    let v = Volume::parse("/tmp:/data:ro").unwrap();
    assert_eq!(
        (v.host.to_str(), v.container.as_str(), v.readonly),
        (Some("/tmp"), "/data", true)
    );
    assert!(!Volume::parse("/tmp:/data").unwrap().readonly);
    for bad in [
        "/tmp",
        "named:/data",
        "/tmp:rel",
        "/no/such/dir:/d",
        "/tmp:/d:rx",
        "/tmp:/d:ro:x",
    ] {
        assert!(Volume::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn ports() {
    let p = Publish::parse("8080:80").unwrap();
    assert_eq!(
        (
            p.host_ip,
            p.host_port,
            p.container_port,
            p.protocol.as_str()
        ),
        (None, 8080, 80, "tcp")
    );
    let p = Publish::parse("127.0.0.1:53:5353/udp").unwrap();
    assert_eq!(
        (p.host_ip.as_deref(), p.protocol.as_str()),
        (Some("127.0.0.1"), "udp")
    );
    for bad in ["80", "0:80", "a:b", "80:80/sctp", "1:2:3:4", "70000:80"] {
        assert!(Publish::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn cpus_env_network() {
    assert_eq!(cpu_quota("1.5").unwrap(), (150_000, 100_000));
    assert_eq!(cpu_quota("0.001").unwrap().0, 1000, "at least 1 ms");
    for bad in ["0", "-1", "x", "NaN", "inf"] {
        assert!(cpu_quota(bad).is_err(), "{bad}");
    }
    let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
    assert_eq!(
        env_entry("A=b=c", lookup).unwrap().as_deref(),
        Some("A=b=c")
    );
    assert_eq!(
        env_entry("HOME", lookup).unwrap().as_deref(),
        Some("HOME=/root")
    );
    assert_eq!(env_entry("UNSET", lookup).unwrap(), None);
    assert!(env_entry("=x", lookup).is_err());
    assert_eq!(Network::parse("none").unwrap(), Network::None);
    assert_eq!(Network::parse("default").unwrap(), Network::Default);
    assert!(Network::parse("host")
        .unwrap_err()
        .to_string()
        .contains("cannot share"));
}
