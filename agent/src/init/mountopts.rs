//! OCI mount options → mount(2) flags, propagation and data.

/// `MS_NOSYMFOLLOW` (linux/mount.h; not in every libc crate version).
pub const MS_NOSYMFOLLOW: libc::c_ulong = 256;

/// A parsed option list.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MountOpts {
    pub flags: libc::c_ulong,
    /// `bind` or `rbind`.
    pub bind: bool,
    pub recursive: bool,
    pub propagation: libc::c_ulong,
    /// Everything that is not a flag, for the file system.
    pub data: String,
    /// Recursive attributes (`rro`, `rnosuid`, …): set and cleared
    /// `MOUNT_ATTR_*` bits, applied with `mount_setattr(AT_RECURSIVE)`.
    pub rec_set: u64,
    pub rec_clear: u64,
    /// `tmpcopyup`: a tmpfs gets what the directory it covers held.
    pub tmpcopyup: bool,
}

/// `mount_setattr`'s attribute bits (linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    pub const ATIME_MASK: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// The recursive options runc knows: name → (set, clear) attribute bits.
fn recursive(opt: &str) -> Option<(u64, u64)> {
    use attr::*;
    Some(match opt {
        "rro" => (RDONLY, 0),
        "rrw" => (0, RDONLY),
        "rnosuid" => (NOSUID, 0),
        "rsuid" => (0, NOSUID),
        "rnodev" => (NODEV, 0),
        "rdev" => (0, NODEV),
        "rnoexec" => (NOEXEC, 0),
        "rexec" => (0, NOEXEC),
        "rnodiratime" => (NODIRATIME, 0),
        "rdiratime" => (0, NODIRATIME),
        "rrelatime" => (RELATIME, ATIME_MASK),
        "rnorelatime" => (0, ATIME_MASK),
        "rnoatime" => (NOATIME, ATIME_MASK),
        "ratime" => (0, ATIME_MASK),
        "rstrictatime" => (STRICTATIME, ATIME_MASK),
        "rnostrictatime" => (0, ATIME_MASK),
        "rnosymfollow" => (NOSYMFOLLOW, 0),
        "rsymfollow" => (0, NOSYMFOLLOW),
        _ => return None,
    })
}

impl MountOpts {
    pub fn parse(options: &[String]) -> Self {
        let mut o = MountOpts::default();
        let mut data: Vec<&str> = Vec::new();
        for opt in options {
            let (set, clear): (libc::c_ulong, libc::c_ulong) = match opt.as_str() {
                "ro" => (libc::MS_RDONLY, 0),
                "rw" => (0, libc::MS_RDONLY),
                "nosuid" => (libc::MS_NOSUID, 0),
                "suid" => (0, libc::MS_NOSUID),
                "nodev" => (libc::MS_NODEV, 0),
                "dev" => (0, libc::MS_NODEV),
                "noexec" => (libc::MS_NOEXEC, 0),
                "exec" => (0, libc::MS_NOEXEC),
                "sync" => (libc::MS_SYNCHRONOUS, 0),
                "async" => (0, libc::MS_SYNCHRONOUS),
                "noatime" => (libc::MS_NOATIME, 0),
                "atime" => (0, libc::MS_NOATIME),
                "nodiratime" => (libc::MS_NODIRATIME, 0),
                "diratime" => (0, libc::MS_NODIRATIME),
                "relatime" => (libc::MS_RELATIME, 0),
                "norelatime" => (0, libc::MS_RELATIME),
                "strictatime" => (libc::MS_STRICTATIME, 0),
                "dirsync" => (libc::MS_DIRSYNC, 0),
                "nostrictatime" => (0, libc::MS_STRICTATIME),
                "iversion" => (libc::MS_I_VERSION, 0),
                "noiversion" => (0, libc::MS_I_VERSION),
                "lazytime" => (libc::MS_LAZYTIME, 0),
                "nolazytime" => (0, libc::MS_LAZYTIME),
                "mand" => (libc::MS_MANDLOCK, 0),
                "nomand" => (0, libc::MS_MANDLOCK),
                "silent" => (libc::MS_SILENT, 0),
                "loud" => (0, libc::MS_SILENT),
                "remount" => (libc::MS_REMOUNT, 0),
                "nosymfollow" => (MS_NOSYMFOLLOW, 0),
                "symfollow" => (0, MS_NOSYMFOLLOW),
                "bind" => {
                    o.bind = true;
                    (0, 0)
                }
                "rbind" => {
                    o.bind = true;
                    o.recursive = true;
                    (0, 0)
                }
                "private" => (0, o.set_propagation(libc::MS_PRIVATE, false)),
                "rprivate" => (0, o.set_propagation(libc::MS_PRIVATE, true)),
                "shared" => (0, o.set_propagation(libc::MS_SHARED, false)),
                "rshared" => (0, o.set_propagation(libc::MS_SHARED, true)),
                "slave" => (0, o.set_propagation(libc::MS_SLAVE, false)),
                "rslave" => (0, o.set_propagation(libc::MS_SLAVE, true)),
                "unbindable" => (0, o.set_propagation(libc::MS_UNBINDABLE, false)),
                "runbindable" => (0, o.set_propagation(libc::MS_UNBINDABLE, true)),
                "tmpcopyup" => {
                    o.tmpcopyup = true;
                    (0, 0)
                }
                "notmpcopyup" => {
                    o.tmpcopyup = false;
                    (0, 0)
                }
                // fstab words with no mount(2) meaning (the host refuses
                // idmap, ridmap and copy-symlink before the guest sees them).
                "defaults" | "nofail" | "auto" | "noauto" | "_netdev" => (0, 0),
                other => match recursive(other) {
                    Some((set, clear)) => {
                        o.rec_set = (o.rec_set & !clear) | set;
                        o.rec_clear |= clear;
                        (0, 0)
                    }
                    None => {
                        data.push(other);
                        (0, 0)
                    }
                },
            };
            o.flags = (o.flags | set) & !clear;
        }
        o.data = data.join(",");
        o
    }

    fn set_propagation(&mut self, kind: libc::c_ulong, recursive: bool) -> libc::c_ulong {
        self.propagation = kind | if recursive { libc::MS_REC } else { 0 };
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOpts {
        MountOpts::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_binds() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
        let o = parse(&["rbind", "ro", "rprivate"]);
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, libc::MS_RDONLY);
        assert_eq!(o.propagation, libc::MS_PRIVATE | libc::MS_REC);
        assert_eq!(parse(&["ro", "rw"]).flags, 0);
    }

    #[test]
    fn runc_table_and_recursive_attributes() {
        let o = parse(&["nostrictatime", "lazytime", "nosymfollow", "rro", "rnoexec"]);
        assert_eq!(o.flags, libc::MS_LAZYTIME | MS_NOSYMFOLLOW);
        assert_eq!(o.rec_set, attr::RDONLY | attr::NOEXEC);
        assert!(o.data.is_empty());
        let o = parse(&["rro", "rrw", "rnoatime"]);
        assert_eq!(o.rec_set, attr::NOATIME);
        assert_eq!(o.rec_clear, attr::RDONLY | attr::ATIME_MASK);
        for p in [
            "shared",
            "rshared",
            "slave",
            "rslave",
            "private",
            "unbindable",
        ] {
            assert_ne!(parse(&[p]).propagation, 0, "{p}");
        }
    }
}
