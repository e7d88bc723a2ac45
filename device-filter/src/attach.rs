//! Loading the device program and attaching it to a cgroup v2 directory
//! with the raw bpf(2) syscall (libc has no wrapper).
//!
//! As runc: attached with `BPF_F_ALLOW_MULTI` (parents' programs keep
//! running too); on a later call (`update`), a single program already
//! attached to the cgroup is swapped atomically (`BPF_F_REPLACE`), several
//! are detached after the new one is attached — never a moment without a
//! filter.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::{BpfInsn, FilterError};

// bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 1 << 1;
const BPF_F_REPLACE: u32 = 1 << 2;

/// The workspace's licence; the program calls no GPL-only helper.
const LICENSE: &CStr = c"Apache-2.0";
/// Programs a cgroup holds at most per attach type (`BPF_CGROUP_MAX_PROGS`).
const MAX_ATTACHED: usize = 64;
/// Verifier log kept when a load fails.
const LOG_SIZE_BYTES: usize = 64 * 1024;
/// Every `union bpf_attr` passed is this large, zero past the fields set:
/// the kernel takes any size whose tail is zero, and writes query results
/// at fixed offsets.
const ATTR_SIZE_BYTES: usize = 256;

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    tail: [u8; ATTR_SIZE_BYTES - 64],
}

#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    tail: [u8; ATTR_SIZE_BYTES - 20],
}

#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    tail: [u8; ATTR_SIZE_BYTES - 28],
}

#[repr(C)]
struct GetFdAttr {
    prog_id: u32,
    tail: [u8; ATTR_SIZE_BYTES - 4],
}

const _: () = assert!(std::mem::size_of::<ProgLoadAttr>() == ATTR_SIZE_BYTES);
const _: () = assert!(std::mem::size_of::<AttachAttr>() == ATTR_SIZE_BYTES);
const _: () = assert!(std::mem::size_of::<QueryAttr>() == ATTR_SIZE_BYTES);
const _: () = assert!(std::mem::size_of::<GetFdAttr>() == ATTR_SIZE_BYTES);

/// bpf(cmd, attr, ATTR_SIZE_BYTES).
///
/// # Safety
/// `attr` must be the attribute struct of `cmd`, every pointer in it valid
/// for what the kernel reads or writes through it during the call.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: the caller's contract; `attr` is ATTR_SIZE_BYTES long.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, ATTR_SIZE_BYTES) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// Takes ownership of a descriptor a bpf call returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel returned a fresh descriptor (bpf(2) fds fit c_int).
    unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }
}

fn load_once(prog: &[BpfInsn], log: Option<&mut [u8]>) -> io::Result<OwnedFd> {
    let (log_level, log_size, log_buf) = match log {
        Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
        None => (0, 0, 0),
    };
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        log_level,
        log_size,
        log_buf,
        kern_version: 0,
        prog_flags: 0,
        prog_name: *b"hull_devices\0\0\0\0",
        tail: [0; ATTR_SIZE_BYTES - 64],
    };
    // SAFETY: PROG_LOAD attributes; the instructions, licence and log
    // buffer outlive the call and the sizes given are theirs.
    unsafe { bpf(BPF_PROG_LOAD, &mut attr) }.map(owned)
}

/// Loads the program; on failure, loads it again for the verifier's log.
fn load(prog: &[BpfInsn]) -> Result<OwnedFd, FilterError> {
    load_once(prog, None).map_err(|source| {
        let mut buf = vec![0u8; LOG_SIZE_BYTES];
        let _ = load_once(prog, Some(&mut buf));
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        FilterError::Load {
            source,
            log: String::from_utf8_lossy(&buf[..end]).into_owned(),
        }
    })
}

/// Ids of the device programs attached to the cgroup itself (not those
/// inherited from its parents).
fn attached_ids(cgroup: &File) -> io::Result<Vec<u32>> {
    let mut ids = [0u32; MAX_ATTACHED];
    let mut attr = QueryAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: MAX_ATTACHED as u32,
        tail: [0; ATTR_SIZE_BYTES - 28],
    };
    // SAFETY: PROG_QUERY attributes; `ids` holds `prog_cnt` ids and
    // outlives the call.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }?;
    let count = (attr.prog_cnt as usize).min(MAX_ATTACHED);
    Ok(ids[..count].to_vec())
}

fn prog_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = GetFdAttr {
        prog_id: id,
        tail: [0; ATTR_SIZE_BYTES - 4],
    };
    // SAFETY: PROG_GET_FD_BY_ID attributes, no pointers.
    unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) }.map(owned)
}

/// PROG_ATTACH, or PROG_DETACH (`flags` unused).
fn attach_cmd(
    cmd: libc::c_long,
    cgroup: &File,
    prog: &OwnedFd,
    flags: u32,
    replace: Option<&OwnedFd>,
) -> io::Result<()> {
    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: flags,
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
        tail: [0; ATTR_SIZE_BYTES - 20],
    };
    // SAFETY: PROG_ATTACH/PROG_DETACH attributes, descriptors only.
    unsafe { bpf(cmd, &mut attr) }.map(drop)
}

/// Loads `prog` (from [`super::compile`]) and makes it the device filter
/// of the cgroup v2 directory `cgroup_dir`, replacing the one attached by
/// an earlier call.
pub fn attach(cgroup_dir: &Path, prog: &[BpfInsn]) -> Result<(), FilterError> {
    let err = |what: &'static str| {
        move |source: io::Error| FilterError::Cgroup {
            path: cgroup_dir.to_path_buf(),
            what,
            source,
        }
    };
    let cgroup = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(cgroup_dir)
        .map_err(err("open"))?;
    let new = load(prog)?;
    let old = attached_ids(&cgroup)
        .map_err(err("query attached programs"))?
        .into_iter()
        .map(prog_fd_by_id)
        .collect::<io::Result<Vec<_>>>()
        .map_err(err("open an attached program"))?;
    if let [only] = old.as_slice() {
        let flags = BPF_F_ALLOW_MULTI | BPF_F_REPLACE;
        return attach_cmd(BPF_PROG_ATTACH, &cgroup, &new, flags, Some(only))
            .map_err(err("replace the device program"));
    }
    attach_cmd(BPF_PROG_ATTACH, &cgroup, &new, BPF_F_ALLOW_MULTI, None)
        .map_err(err("attach the device program"))?;
    for prog in &old {
        attach_cmd(BPF_PROG_DETACH, &cgroup, prog, 0, None)
            .map_err(err("detach an earlier device program"))?;
    }
    Ok(())
}

/// Ids of the programs attached to the cgroup (tests).
#[cfg(test)]
pub fn attached(cgroup_dir: &Path) -> io::Result<Vec<u32>> {
    attached_ids(&File::open(cgroup_dir)?)
}

/// Whether this host lets us load a device program at all (tests).
#[cfg(test)]
pub fn can_load() -> bool {
    let mov_r0_1 = BpfInsn {
        code: 0xb4,
        regs: 0,
        off: 0,
        imm: 1,
    };
    let exit = BpfInsn {
        code: 0x95,
        regs: 0,
        off: 0,
        imm: 0,
    };
    load_once(&[mov_r0_1, exit], None).is_ok()
}

/// Loads the program into the kernel (its verifier) and drops it (tests).
#[cfg(test)]
pub fn verify(prog: &[BpfInsn]) -> Result<(), FilterError> {
    load(prog).map(drop)
}
