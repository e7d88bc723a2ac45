//! OCI mount options → mount(2) flags, propagation and data.

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
                // Not ours to act on in the guest.
                "defaults" | "nofail" | "auto" | "noauto" | "_netdev" | "tmpcopyup" | "idmap"
                | "ridmap" | "copy-symlink" => (0, 0),
                other => {
                    data.push(other);
                    (0, 0)
                }
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
}
