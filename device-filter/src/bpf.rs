//! The device rules as an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`.
//!
//! The program reads `struct bpf_cgroup_dev_ctx { u32 access_type; u32
//! major; u32 minor; }` (`access_type` = access bits << 16 | device type)
//! and keeps the access bits not yet decided in r3. It walks the rules from
//! the last to the first; a rule matching the device either clears the bits
//! it allows (all clear: return 1) or, naming a bit still undecided,
//! returns 0. Bits left at the end are denied. A catch-all `rwm` deny ends
//! the walk (the rules before it are dead, and the verifier refuses
//! unreachable instructions).
//!
//! Each test loads its field afresh from the context into a scratch
//! register: had the program kept type, major and minor in registers, the
//! verifier would learn their values on every matching path and carry them
//! to the next rules, and its state count would explode (about 1000 rules
//! already exceeded its limit of a million instructions processed).

use oci_spec::runtime::LinuxDeviceCgroup;

use super::rules::{Rule, ACC_ALL};
use super::FilterError;

/// `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInsn {
    pub code: u8,
    /// dst register in the low nibble, src in the high one.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

/// Rules compiled at most. The verifier walks the program depth first and
/// keeps each branch not taken for later, up to 8192
/// (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`); a rule leaves up to three behind. Real
/// lists hold tens of rules.
pub const MAX_RULES: usize = 2048;

// Instruction classes, sizes, modes and operations (include/uapi/linux/bpf*.h).
pub const CLASS_LDX: u8 = 0x01;
pub const CLASS_ALU: u8 = 0x04;
pub const CLASS_JMP: u8 = 0x05;
pub const CLASS_JMP32: u8 = 0x06;
pub const CLASS_ALU64: u8 = 0x07;
pub const SIZE_W: u8 = 0x00;
pub const MODE_MEM: u8 = 0x60;
pub const SRC_K: u8 = 0x00;
pub const SRC_X: u8 = 0x08;
pub const OP_AND: u8 = 0x50;
pub const OP_RSH: u8 = 0x70;
pub const OP_MOV: u8 = 0xb0;
pub const OP_JEQ: u8 = 0x10;
pub const OP_JNE: u8 = 0x50;
pub const OP_EXIT: u8 = 0x90;

const R0: u8 = 0;
/// The context on entry, then scratch.
const R1: u8 = 1;
/// Access bits not decided yet.
const R_PENDING: u8 = 3;
/// The context.
const R_CTX: u8 = 6;

/// Offsets of the context's fields, in bytes.
const CTX_ACCESS_TYPE: i16 = 0;
const CTX_MAJOR: i16 = 4;
const CTX_MINOR: i16 = 8;
/// The device type's bits of `access_type`.
const TYPE_MASK: u32 = 0xffff;
const ACCESS_SHIFT: u32 = 16;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> BpfInsn {
    BpfInsn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// `dst = *(u32 *)(src + off)`.
fn load_u32(dst: u8, src: u8, off: i16) -> BpfInsn {
    insn(CLASS_LDX | SIZE_W | MODE_MEM, dst, src, off, 0)
}

/// 32-bit `dst op= imm` (the upper half is zeroed).
fn alu32_imm(op: u8, dst: u8, imm: u32) -> BpfInsn {
    insn(CLASS_ALU | op | SRC_K, dst, 0, 0, imm as i32)
}

fn mov32_reg(dst: u8, src: u8) -> BpfInsn {
    insn(CLASS_ALU | OP_MOV | SRC_X, dst, src, 0, 0)
}

fn mov64_reg(dst: u8, src: u8) -> BpfInsn {
    insn(CLASS_ALU64 | OP_MOV | SRC_X, dst, src, 0, 0)
}

/// `if (u32)dst op imm goto pc + 1 + off`.
fn jmp32_imm(op: u8, dst: u8, imm: u32, off: i16) -> BpfInsn {
    insn(CLASS_JMP32 | op | SRC_K, dst, 0, off, imm as i32)
}

fn exit() -> BpfInsn {
    insn(CLASS_JMP | OP_EXIT, 0, 0, 0, 0)
}

/// `return verdict`.
fn ret(verdict: bool) -> [BpfInsn; 2] {
    [alu32_imm(OP_MOV, R0, u32::from(verdict)), exit()]
}

/// A rule's instructions; `Skip` jumps to the block's end (the next rule).
enum Step {
    Insn(BpfInsn),
    Skip { op: u8, reg: u8, imm: u32 },
}

/// Skips the rule unless the scratch register holds `imm`.
fn skip_unless_equal(imm: u32) -> Step {
    Step::Skip {
        op: OP_JNE,
        reg: R1,
        imm,
    }
}

/// One rule's block, and whether it always returns (the rules before it
/// can never run).
fn block(rule: &Rule) -> (Vec<BpfInsn>, bool) {
    let mut steps = Vec::new();
    if let Some(kind) = rule.kind {
        steps.push(Step::Insn(load_u32(R1, R_CTX, CTX_ACCESS_TYPE)));
        steps.push(Step::Insn(alu32_imm(OP_AND, R1, TYPE_MASK)));
        steps.push(skip_unless_equal(kind));
    }
    for (offset, want) in [(CTX_MAJOR, rule.major), (CTX_MINOR, rule.minor)] {
        if let Some(number) = want {
            steps.push(Step::Insn(load_u32(R1, R_CTX, offset)));
            steps.push(skip_unless_equal(number));
        }
    }
    let ends = rule.is_catch_all() && !rule.allow && rule.access == ACC_ALL;
    if rule.allow {
        steps.push(Step::Insn(alu32_imm(OP_AND, R_PENDING, !rule.access)));
        steps.push(Step::Skip {
            op: OP_JNE,
            reg: R_PENDING,
            imm: 0,
        });
    } else if rule.access != ACC_ALL {
        // Undecided bits are never 0 here, so an `rwm` deny needs no test.
        steps.push(Step::Insn(mov32_reg(R1, R_PENDING)));
        steps.push(Step::Insn(alu32_imm(OP_AND, R1, rule.access)));
        steps.push(Step::Skip {
            op: OP_JEQ,
            reg: R1,
            imm: 0,
        });
    }
    steps.extend(ret(rule.allow).map(Step::Insn));
    let len = steps.len();
    let insns = steps
        .into_iter()
        .enumerate()
        .map(|(i, step)| match step {
            Step::Insn(insn) => insn,
            // A block is a few instructions: the offset always fits.
            Step::Skip { op, reg, imm } => jmp32_imm(op, reg, imm, (len - i - 1) as i16),
        })
        .collect();
    (insns, ends)
}

/// Compiles `linux.resources.devices` (with any defaults already appended,
/// see [`crate::with_runc_defaults`]) into a device cgroup program.
pub fn compile(rules: &[LinuxDeviceCgroup]) -> Result<Vec<BpfInsn>, FilterError> {
    if rules.len() > MAX_RULES {
        return Err(FilterError::TooManyRules {
            count: rules.len(),
            max: MAX_RULES,
        });
    }
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| Rule::parse(i, r))
        .collect::<Result<Vec<_>, _>>()?;
    let mut prog = vec![
        mov64_reg(R_CTX, R1),
        load_u32(R_PENDING, R_CTX, CTX_ACCESS_TYPE),
        alu32_imm(OP_RSH, R_PENDING, ACCESS_SHIFT),
        // Asking for nothing is not asking for something allowed.
        jmp32_imm(OP_JNE, R_PENDING, 0, 2),
    ];
    prog.extend(ret(false));
    for rule in rules.iter().rev() {
        let (insns, ends) = block(rule);
        prog.extend(insns);
        if ends {
            return Ok(prog);
        }
    }
    prog.extend(ret(false));
    Ok(prog)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::interp;
    use crate::rules::{self, ACC_MKNOD, ACC_READ, ACC_WRITE, DEV_BLOCK, DEV_CHAR};
    use crate::with_runc_defaults;

    const KINDS: [u32; 3] = [DEV_BLOCK, DEV_CHAR, 3];
    const NUMBERS: [u32; 6] = [0, 1, 3, 5, 136, u32::MAX];

    pub fn engine_rules(config: &str) -> Vec<LinuxDeviceCgroup> {
        let spec: oci_spec::runtime::Spec = serde_json::from_str(config).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let resources = linux.resources().as_ref().unwrap();
        resources.devices().clone().unwrap()
    }

    /// The program's verdict equals the reference's for every request of
    /// a grid around the rules' numbers.
    fn check(rules: &[LinuxDeviceCgroup]) -> Vec<BpfInsn> {
        let prog = compile(rules).unwrap();
        let parsed: Vec<Rule> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::parse(i, r).unwrap())
            .collect();
        let mut numbers: Vec<u32> = NUMBERS.to_vec();
        numbers.extend(parsed.iter().flat_map(|r| [r.major, r.minor]).flatten());
        for kind in KINDS {
            for &major in &numbers {
                for &minor in &numbers {
                    for access in 0..=(ACC_ALL + 1) {
                        let want = rules::verdict(&parsed, kind, major, minor, access);
                        let access_type = (access << 16) | kind;
                        let got = interp::run(&prog, access_type, major, minor);
                        assert_eq!(
                            got,
                            u64::from(want),
                            "type {kind} {major}:{minor} access {access:#b} with {:?}",
                            rules.iter().map(|r| r.to_string()).collect::<Vec<_>>()
                        );
                    }
                }
            }
        }
        prog
    }

    fn allowed(prog: &[BpfInsn], kind: u32, major: u32, minor: u32, access: u32) -> bool {
        interp::run(prog, (access << 16) | kind, major, minor) == 1
    }

    #[test]
    fn docker_rules_and_runc_defaults() {
        let rules = engine_rules(include_str!(
            "../../tests/fixtures/engines/docker-config.json"
        ));
        let prog = check(&rules);
        assert!(allowed(&prog, DEV_CHAR, 1, 5, ACC_READ | ACC_WRITE));
        assert!(
            !allowed(&prog, DEV_CHAR, 10, 229, ACC_READ),
            "fuse is denied"
        );
        assert!(!allowed(&prog, DEV_BLOCK, 8, 0, ACC_READ));
        let (_, with_defaults) = with_runc_defaults(&[], &rules);
        let prog = check(&with_defaults);
        assert!(
            allowed(&prog, DEV_BLOCK, 8, 0, ACC_MKNOD),
            "runc allows any mknod"
        );
        assert!(allowed(&prog, DEV_CHAR, 136, 7, ACC_WRITE));
        assert!(!allowed(&prog, DEV_CHAR, 10, 229, ACC_READ));
    }

    #[test]
    fn podman_and_containerd_rules() {
        let podman = engine_rules(include_str!(
            "../../tests/fixtures/engines/podman-config.json"
        ));
        let prog = check(&podman);
        assert!(!allowed(&prog, DEV_CHAR, 1, 3, ACC_READ));
        let (_, with_defaults) = with_runc_defaults(&[], &podman);
        assert!(allowed(
            &check(&with_defaults),
            DEV_CHAR,
            1,
            3,
            ACC_READ | ACC_WRITE
        ));
        let containerd = engine_rules(include_str!(
            "../../tests/fixtures/engines/containerd-config.json"
        ));
        let prog = check(&containerd);
        assert!(allowed(&prog, DEV_CHAR, 136, 0, ACC_READ));
        check(&with_runc_defaults(&[], &containerd).1);
    }

    pub fn from_json(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hand_written_rule_lists() {
        for json in [
            "[]",
            r#"[{"allow":true,"access":"rwm"}]"#,
            r#"[{"allow":true,"type":"a","access":"rwm"},{"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"access":"r"},{"allow":true,"type":"c","minor":3,"access":"w"}]"#,
            r#"[{"allow":true,"type":"b","major":-1,"minor":-1,"access":"m"},{"allow":false,"access":"r"}]"#,
            r#"[{"allow":true,"type":"c","major":4294967295,"minor":4294967295,"access":"rw"}]"#,
            r#"[{"allow":false,"access":"rwm"},{"allow":false,"access":"rwm"}]"#,
        ] {
            check(&from_json(json));
        }
        assert!(matches!(
            compile(&from_json(r#"[{"allow":true,"type":"c","access":"rwx"}]"#)),
            Err(FilterError::InvalidRule { index: 0, .. })
        ));
    }

    #[test]
    fn rules_before_a_deny_all_are_not_emitted() {
        let deny_all = r#"{"allow":false,"access":"rwm"}"#;
        let many = format!(r#"[{{"allow":true,"type":"c","major":1,"access":"rwm"}},{deny_all}]"#);
        let alone = format!("[{deny_all}]");
        assert_eq!(
            compile(&from_json(&many)).unwrap(),
            compile(&from_json(&alone)).unwrap()
        );
    }

    /// A small deterministic generator (xorshift) of rule lists.
    pub fn random_rules(seed: &mut u64, count: usize) -> Vec<LinuxDeviceCgroup> {
        let mut next = |n: u64| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed % n
        };
        (0..count)
            .map(|_| {
                let typ =
                    ["", r#""type":"a","#, r#""type":"b","#, r#""type":"c","#][next(4) as usize];
                let major =
                    ["", r#""major":1,"#, r#""major":5,"#, r#""major":-1,"#][next(4) as usize];
                let minor = ["", r#""minor":3,"#, r#""minor":0,"#][next(3) as usize];
                let access = ["r", "w", "m", "rw", "rm", "wm", "rwm"][next(7) as usize];
                let allow = next(2) == 0;
                serde_json::from_str(&format!(
                    r#"{{{typ}{major}{minor}"allow":{allow},"access":"{access}"}}"#
                ))
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn random_rule_lists_agree_with_the_reference() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for round in 0..300 {
            let count = round % 9;
            check(&random_rules(&mut seed, count));
        }
    }
}
