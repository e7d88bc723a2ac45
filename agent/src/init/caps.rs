//! Linux capabilities by OCI name: bounding set, capset, ambient set.

use agent_protocol::container::CAPABILITIES as NAMES;
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

use super::{check, InitError, Result};

/// A set of capabilities as a 64-bit mask (`None`: the empty set). A
/// capability this agent has no number for is an error (a typo in a
/// config.json is refused when it is parsed).
fn mask(set: Option<&Capabilities>) -> Result<u64> {
    set.into_iter().flatten().try_fold(0u64, |m, cap| {
        let name = format!("CAP_{cap}");
        let bit = NAMES
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| InitError::Msg(format!("unknown capability {name}")))?;
        Ok(m | (1u64 << bit))
    })
}

/// The highest capability the running kernel knows.
fn last_cap() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(NAMES.len() - 1)
}

/// Drops from the bounding set everything not listed.
pub fn drop_bounding(keep: Option<&Capabilities>) -> Result<()> {
    let keep = mask(keep)?;
    for cap in 0..=last_cap() {
        if keep & (1u64 << cap) == 0 {
            // SAFETY: prctl with plain integer arguments (nix's prctl module
            // has no PR_CAPBSET_DROP).
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            check(rc, || {
                format!("drop capability {cap} from the bounding set")
            })?;
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Sets effective/permitted/inheritable, then raises the ambient set.
pub fn apply(c: &LinuxCapabilities) -> Result<()> {
    let (eff, perm, inh) = (
        mask(c.effective().as_ref())?,
        mask(c.permitted().as_ref())?,
        mask(c.inheritable().as_ref())?,
    );
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [0, 1].map(|i| CapData {
        effective: (eff >> (32 * i)) as u32,
        permitted: (perm >> (32 * i)) as u32,
        inheritable: (inh >> (32 * i)) as u32,
    });
    // SAFETY: capset (not in nix) with a v3 header and two data structs, as
    // the ABI says.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    check(rc as libc::c_int, || "capset".into())?;
    let ambient = mask(c.ambient().as_ref())?;
    for (cap, name) in NAMES.iter().enumerate() {
        if ambient & (1u64 << cap) != 0 {
            // SAFETY: prctl with plain integer arguments (nix's prctl module
            // has no PR_CAP_AMBIENT).
            let rc = unsafe {
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                )
            };
            check(rc, || format!("raise ambient capability {name}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_bits() {
        use oci_spec::runtime::Capability;
        let set: Capabilities = [Capability::Chown, Capability::Kill].into();
        assert_eq!(mask(Some(&set)).unwrap(), 0b100001);
        let set: Capabilities = [Capability::CheckpointRestore].into();
        assert_eq!(mask(Some(&set)).unwrap(), 1 << 40);
        assert_eq!(mask(None).unwrap(), 0);
    }
}
