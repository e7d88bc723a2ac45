use std::path::{Path, PathBuf};

use super::*;
use crate::testutil::TempDir;

const FULL: &str = r#"
# every key
[vm]
kernel = "/opt/hull/vmlinux"
initramfs = "/opt/hull/initramfs.cpio"
memory_mib = 512
vcpus = 2
memory_overhead_mib = 64

[timeouts]
boot_secs = 30
power_off_secs = 20
output_grace_secs = 0

[log]
level = "error"

[annotations]
allowed = ["io.hull.vm.vcpus"]
"#;

#[test]
fn built_in_defaults_are_the_old_constants() {
    let d = Config::default();
    assert_eq!((d.vm.memory_mib, d.vm.vcpus), (256, 1));
    assert_eq!(d.vm.memory_overhead_mib, 48);
    assert_eq!(
        (d.vm.kernel.as_ref(), d.vm.initramfs.as_ref()),
        (None, None)
    );
    assert_eq!(d.boot_timeout(), crate::sandbox::DEFAULT_BOOT_TIMEOUT);
    assert_eq!(d.power_off_timeout(), crate::sandbox::POWER_OFF_TIMEOUT);
    assert_eq!(d.output_grace(), crate::sandbox::run::DEFAULT_OUTPUT_GRACE);
    assert_eq!(d.log_level, LogLevel::Warn);
    assert_eq!(d.source, None);
}

#[test]
fn every_key_is_read() {
    let path = Path::new("/etc/hull/config.toml");
    let c = Config::parse(FULL, path).unwrap();
    assert_eq!(c.vm.kernel, Some(PathBuf::from("/opt/hull/vmlinux")));
    assert_eq!(
        c.vm.initramfs,
        Some(PathBuf::from("/opt/hull/initramfs.cpio"))
    );
    assert_eq!(
        (c.vm.memory_mib, c.vm.vcpus, c.vm.memory_overhead_mib),
        (512, 2, 64)
    );
    assert_eq!(
        (
            c.timeouts.boot_secs,
            c.timeouts.power_off_secs,
            c.timeouts.output_grace_secs
        ),
        (30, 20, 0)
    );
    assert_eq!(c.log_level, LogLevel::Error);
    assert_eq!(c.allowed_annotations, ["io.hull.vm.vcpus"]);
    assert_eq!(c.source.as_deref(), Some(path));
    // Each setting of the table is stored somewhere: the file changed them
    // all from the defaults.
    let d = Config::default();
    assert_ne!(c.vm, d.vm);
    assert_ne!(c.timeouts, d.timeouts);
}

#[test]
fn each_setting_is_stored() {
    for s in SETTINGS {
        let value = match s.kind {
            Kind::Int { max, .. } => max.to_string(),
            Kind::Path => "/x".into(),
            Kind::Level => "debug".into(),
        };
        let c = Config {
            allowed_annotations: SETTINGS.iter().map(|s| s.annotation()).collect(),
            ..Config::default()
        };
        let name = s.annotation();
        let changed = c
            .with_annotations([(name.as_str(), value.as_str())])
            .unwrap();
        assert_ne!(changed, c, "{} is not stored", s.key);
    }
}

#[test]
fn a_partial_file_keeps_the_other_defaults() {
    let c = Config::parse("[vm]\nvcpus = 4\n", Path::new("/c")).unwrap();
    let d = Config::default();
    assert_eq!(c.vm.vcpus, 4);
    assert_eq!(
        (c.vm.memory_mib, &c.timeouts),
        (d.vm.memory_mib, &d.timeouts)
    );
    assert_eq!(Config::parse("", Path::new("/c")).unwrap().vm, d.vm);
}

#[test]
fn unknown_keys_are_named_with_the_file() {
    let p = Path::new("/etc/hull/config.toml");
    for (text, key) in [
        ("[vm]\nmemroy_mib = 1\n", "vm.memroy_mib"),
        ("[network]\nx = 1\n", "network"),
        ("top = 1\n", "top"),
        ("[annotations]\nforbidden = []\n", "annotations.forbidden"),
    ] {
        let e = Config::parse(text, p).unwrap_err();
        assert_eq!(
            e,
            ConfigError::UnknownKey {
                path: p.into(),
                key: key.into()
            },
            "{text}"
        );
        assert_eq!(
            e.to_string(),
            format!("unknown key {key} in the config file /etc/hull/config.toml")
        );
    }
}

#[test]
fn bad_values_are_named_with_the_file() {
    let p = Path::new("/c.toml");
    for (text, want) in [
        (
            "[vm]\nmemory_mib = \"lots\"\n",
            "bad value for vm.memory_mib in the config file /c.toml: expected an integer from 128 to 32768",
        ),
        (
            "[vm]\nmemory_mib = 64\n",
            "bad value for vm.memory_mib in the config file /c.toml: 64 is out of range 128 to 32768",
        ),
        (
            "[vm]\nvcpus = -1\n",
            "bad value for vm.vcpus in the config file /c.toml: -1 is out of range 1 to 32",
        ),
        (
            "[vm]\nkernel = \"vmlinux\"\n",
            "bad value for vm.kernel in the config file /c.toml: \"vmlinux\" is not an absolute path",
        ),
        (
            "[log]\nlevel = \"loud\"\n",
            "bad value for log.level in the config file /c.toml: \"loud\" is not one of error, warn, info, debug",
        ),
        (
            "[timeouts]\nboot_secs = 0\n",
            "bad value for timeouts.boot_secs in the config file /c.toml: 0 is out of range 1 to 3600",
        ),
        (
            "vm = 3\n",
            "bad value for vm in the config file /c.toml: must be a table ([section])",
        ),
        (
            "[annotations]\nallowed = \"all\"\n",
            "bad value for annotations.allowed in the config file /c.toml: expected a list of annotation names",
        ),
    ] {
        assert_eq!(Config::parse(text, p).unwrap_err().to_string(), want);
    }
}

#[test]
fn malformed_files_give_the_line() {
    let e = Config::parse("[vm]\nvcpus = 2\nmemory_mib = \n", Path::new("/c.toml")).unwrap_err();
    match &e {
        ConfigError::Syntax { path, line, .. } => {
            assert_eq!((path.as_path(), *line), (Path::new("/c.toml"), 3), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("malformed config file /c.toml, line 3: "),
        "{e}"
    );
}

#[test]
fn which_file_and_whether_it_must_exist() {
    let flag = Path::new("/flag.toml");
    assert_eq!(
        config_path(Some(flag), Some("/env.toml".into())),
        (flag.to_path_buf(), true)
    );
    assert_eq!(
        config_path(None, Some("/env.toml".into())),
        (PathBuf::from("/env.toml"), true)
    );
    assert_eq!(
        config_path(None, Some("".into())),
        (PathBuf::from(DEFAULT_CONFIG_PATH), false)
    );
    assert_eq!(
        config_path(None, None),
        (PathBuf::from(DEFAULT_CONFIG_PATH), false)
    );
}

#[test]
fn loading_files() {
    let dir = TempDir::new("config-load");
    let missing = dir.path().join("missing.toml");
    assert_eq!(
        Config::load_file(&missing, false).unwrap(),
        Config::default()
    );
    let e = Config::load_file(&missing, true).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "cannot read the config file {}: ",
            missing.display()
        )),
        "{e}"
    );
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "[vm]\nvcpus = 3\n").unwrap();
    let c = Config::load(Some(&file)).unwrap();
    assert_eq!((c.vm.vcpus, c.source.as_deref()), (3, Some(file.as_path())));
}

#[test]
fn the_readme_documents_every_key_and_annotation() {
    let readme = include_str!("../../../README.md");
    for s in SETTINGS {
        let name = s.key.rsplit('.').next().unwrap_or(s.key);
        assert!(
            readme.contains(&format!("\n{name} = ")),
            "{} not in README",
            s.key
        );
        assert!(
            readme.contains(&format!("`{}`", s.annotation())),
            "{} not in README",
            s.annotation()
        );
    }
}
