//! OCI bundles for the tests: a busybox rootfs (Debian's busybox-static,
//! one binary plus a symlink per applet) and a config.json built from a
//! small description.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Where the static busybox comes from (overridable with HULL_BUSYBOX).
pub fn busybox() -> PathBuf {
    std::env::var_os("HULL_BUSYBOX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/bin/busybox"))
}

/// Creates `dir/rootfs` with busybox and its applets, /etc/passwd and group.
pub fn busybox_rootfs(dir: &Path) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in [
        "bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "etc",
        "root",
        "home/user",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).expect("mkdir in rootfs");
    }
    let bb = rootfs.join("bin/busybox");
    std::fs::copy(busybox(), &bb).expect("copy busybox (install busybox-static)");
    // The source, not the fresh copy: a copy still open for writing in a
    // child forked meanwhile by another test would be ETXTBSY.
    let list = std::process::Command::new(busybox())
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n",
    )
    .expect("passwd");
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nuser:x:1000:\n").expect("group");
    let _ = std::fs::set_permissions(
        rootfs.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    );
    rootfs
}

/// What a test bundle's config.json says.
pub struct Spec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub readonly: bool,
    pub terminal: bool,
    /// Namespaces; the default is runc spec's (pid, ipc, uts, mount, network).
    pub namespaces: Vec<&'static str>,
    /// Merged into the config.json last (objects key by key; anything else,
    /// arrays included, replaces what is there).
    pub patch: Value,
}

/// Deep-merges `patch` into `base`.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

impl Spec {
    pub fn new(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into(), "TERM=xterm".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "hull-test".into(),
            readonly: false,
            terminal: false,
            namespaces: vec!["pid", "ipc", "uts", "mount", "network"],
            patch: Value::Null,
        }
    }

    /// The config.json, shaped like `runc spec`'s default.
    pub fn config(&self) -> Value {
        let caps = json!([
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_SETUID",
            "CAP_SETGID"
        ]);
        let mut config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": self.terminal,
                "user": {"uid": self.uid, "gid": self.gid},
                "args": self.args,
                "env": self.env,
                "cwd": self.cwd,
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": self.readonly},
            "hostname": self.hostname,
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                 "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs",
                 "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {
                "namespaces": self.namespaces.iter().map(|n| json!({"type": n})).collect::<Vec<_>>(),
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
                "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
            }
        });
        if !self.patch.is_null() {
            merge(&mut config, &self.patch);
        }
        config
    }
}

/// A bundle directory: `dir/rootfs` (busybox) and `dir/config.json`.
pub fn busybox_bundle(dir: &Path, spec: &Spec) -> PathBuf {
    busybox_rootfs(dir);
    write_config(dir, spec);
    dir.to_path_buf()
}

/// (Re)writes the bundle's config.json.
pub fn write_config(dir: &Path, spec: &Spec) {
    let text = serde_json::to_string_pretty(&spec.config()).expect("serialize config");
    std::fs::write(dir.join("config.json"), text).expect("write config.json");
}
