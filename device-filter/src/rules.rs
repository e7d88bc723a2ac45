//! `linux.resources.devices` entries, validated once into [`Rule`]s with the
//! kernel's encodings (`struct bpf_cgroup_dev_ctx`, include/uapi/linux/bpf.h).

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::FilterError;

/// `BPF_DEVCG_ACC_MKNOD`.
pub const ACC_MKNOD: u32 = 1;
/// `BPF_DEVCG_ACC_READ`.
pub const ACC_READ: u32 = 2;
/// `BPF_DEVCG_ACC_WRITE`.
pub const ACC_WRITE: u32 = 4;
pub const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;
/// `BPF_DEVCG_DEV_BLOCK`.
pub const DEV_BLOCK: u32 = 1;
/// `BPF_DEVCG_DEV_CHAR`.
pub const DEV_CHAR: u32 = 2;

/// One validated rule; `None` matches anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// [`DEV_BLOCK`] or [`DEV_CHAR`]; `None` for `a` (or no type, as runc).
    pub kind: Option<u32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits, never empty.
    pub access: u32,
}

fn invalid(index: usize, reason: impl Into<String>) -> FilterError {
    FilterError::InvalidRule {
        index,
        reason: reason.into(),
    }
}

/// A major or minor number: absent or -1 is the wildcard.
fn number(index: usize, what: &str, value: Option<i64>) -> Result<Option<u32>, FilterError> {
    match value {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| invalid(index, format!("{what} number {n} out of range"))),
    }
}

/// `rwm` letters to `ACC_*` bits.
pub fn parse_access(index: usize, access: Option<&str>) -> Result<u32, FilterError> {
    let text = access.unwrap_or("");
    if text.is_empty() {
        // As runc: a rule granting or denying nothing is a mistake.
        return Err(invalid(index, "empty access"));
    }
    text.chars().try_fold(0, |bits, c| match c {
        'r' => Ok(bits | ACC_READ),
        'w' => Ok(bits | ACC_WRITE),
        'm' => Ok(bits | ACC_MKNOD),
        _ => Err(invalid(index, format!("unknown access {c:?} in {text:?}"))),
    })
}

impl Rule {
    /// Validates `linux.resources.devices[index]`.
    pub fn parse(index: usize, rule: &LinuxDeviceCgroup) -> Result<Self, FilterError> {
        let kind = match rule.typ() {
            None | Some(LinuxDeviceType::A) => None,
            Some(LinuxDeviceType::B) => Some(DEV_BLOCK),
            Some(LinuxDeviceType::C) => Some(DEV_CHAR),
            Some(other) => {
                return Err(invalid(
                    index,
                    format!("type {:?} is not a, b or c", other.as_str()),
                ))
            }
        };
        Ok(Self {
            allow: rule.allow(),
            kind,
            major: number(index, "major", rule.major())?,
            minor: number(index, "minor", rule.minor())?,
            access: parse_access(index, rule.access().as_deref())?,
        })
    }

    /// Whether the rule is about this device (whatever the access).
    #[cfg(test)]
    pub fn matches(&self, kind: u32, major: u32, minor: u32) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
    }

    /// Matches every device.
    pub fn is_catch_all(&self) -> bool {
        self.kind.is_none() && self.major.is_none() && self.minor.is_none()
    }
}

/// The reference evaluation the program must agree with: each requested
/// bit is decided by the last rule matching the device that names it;
/// allowed when all are decided by allow rules. An empty request, or one
/// with bits the kernel does not define, is denied.
#[cfg(test)]
pub fn verdict(rules: &[Rule], kind: u32, major: u32, minor: u32, access: u32) -> bool {
    if access == 0 || access & !ACC_ALL != 0 {
        return false;
    }
    [ACC_MKNOD, ACC_READ, ACC_WRITE]
        .into_iter()
        .filter(|bit| access & bit != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| r.access & bit != 0 && r.matches(kind, major, minor))
                .is_some_and(|r| r.allow)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(json: &str) -> LinuxDeviceCgroup {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn parses_wildcards_types_and_access() {
        let r = Rule::parse(0, &cg(r#"{"allow":false,"access":"rwm"}"#)).unwrap();
        assert!(r.is_catch_all() && !r.allow && r.access == ACC_ALL);
        let r = Rule::parse(
            0,
            &cg(r#"{"allow":true,"type":"b","major":8,"minor":-1,"access":"mr"}"#),
        )
        .unwrap();
        assert_eq!(r.kind, Some(DEV_BLOCK));
        assert_eq!((r.major, r.minor), (Some(8), None));
        assert_eq!(r.access, ACC_MKNOD | ACC_READ);
        assert!(r.matches(DEV_BLOCK, 8, 17) && !r.matches(DEV_CHAR, 8, 17));
    }

    #[test]
    fn rejects_what_runc_rejects() {
        for (json, needle) in [
            (r#"{"allow":true,"type":"c","major":1}"#, "empty access"),
            (r#"{"allow":true,"access":""}"#, "empty access"),
            (r#"{"allow":true,"access":"rx"}"#, "unknown access"),
            (
                r#"{"allow":true,"type":"p","access":"r"}"#,
                "is not a, b or c",
            ),
            (
                r#"{"allow":true,"type":"u","access":"r"}"#,
                "is not a, b or c",
            ),
            (
                r#"{"allow":true,"major":-2,"access":"r"}"#,
                "major number -2",
            ),
            (
                r#"{"allow":true,"minor":4294967296,"access":"r"}"#,
                "minor number",
            ),
        ] {
            let e = Rule::parse(3, &cg(json)).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("rule 3"), "{json}: {e}");
        }
    }

    #[test]
    fn reference_decides_each_bit_by_its_last_rule() {
        let rules = [
            Rule::parse(0, &cg(r#"{"allow":true,"type":"c","access":"r"}"#)).unwrap(),
            Rule::parse(
                1,
                &cg(r#"{"allow":true,"type":"c","major":1,"access":"w"}"#),
            )
            .unwrap(),
            Rule::parse(
                2,
                &cg(r#"{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}"#),
            )
            .unwrap(),
        ];
        assert!(verdict(&rules, DEV_CHAR, 1, 5, ACC_READ | ACC_WRITE));
        assert!(!verdict(&rules, DEV_CHAR, 1, 3, ACC_READ | ACC_WRITE));
        assert!(verdict(&rules, DEV_CHAR, 1, 3, ACC_READ));
        assert!(!verdict(&rules, DEV_CHAR, 2, 0, ACC_WRITE));
        assert!(!verdict(&rules, DEV_BLOCK, 1, 5, ACC_READ));
        assert!(!verdict(&rules, DEV_CHAR, 1, 5, 0));
    }
}
