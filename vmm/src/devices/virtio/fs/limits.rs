//! The passthrough file system holds one O_PATH descriptor per inode the
//! guest knows, so a share with many files needs far more than the usual
//! soft limit of 1024 open files.

/// What hull-vmm asks for (the kernel's default `fs.nr_open`).
const WANTED: libc::rlim_t = 1 << 20;

/// Raises RLIMIT_NOFILE: to [`WANTED`] when allowed (root with
/// CAP_SYS_RESOURCE), else the soft limit to the hard one. Returns the soft
/// limit now in force.
pub fn raise_fd_limit() -> u64 {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `cur` is a valid out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) } != 0 {
        return 0;
    }
    let both = libc::rlimit {
        rlim_cur: WANTED.max(cur.rlim_cur),
        rlim_max: WANTED.max(cur.rlim_max),
    };
    // SAFETY: a valid rlimit value.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &both) } == 0 {
        return both.rlim_cur;
    }
    let soft = libc::rlimit {
        rlim_cur: cur.rlim_max,
        rlim_max: cur.rlim_max,
    };
    // SAFETY: a valid rlimit value (soft up to the existing hard limit).
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &soft) } == 0 {
        return soft.rlim_cur;
    }
    cur.rlim_cur
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_reaches_at_least_the_hard_limit() {
        let mut before = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: valid out-pointer.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut before) };
        assert!(super::raise_fd_limit() >= before.rlim_max);
    }
}
