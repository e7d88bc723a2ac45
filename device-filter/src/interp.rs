//! A tiny interpreter of the emitted instructions (tests only), strict the
//! way the kernel's verifier is on what the emitter uses: every instruction
//! reachable, forward jumps only, no reads of unset registers, loads only
//! from the context at its three aligned fields, exit with r0 set.

use super::bpf::*;

/// Address the context pointer (r1) holds in the interpreter.
const CTX_ADDR: u64 = 0x1000;
const CTX_SIZE_BYTES: u64 = 12;

/// Checks the control flow graph as the verifier's `check_cfg` does:
/// targets in range, no loops, nothing unreachable, no falling off the end.
pub fn check_cfg(prog: &[BpfInsn]) {
    assert!(!prog.is_empty(), "empty program");
    let mut reached = vec![false; prog.len()];
    reached[0] = true;
    for (pc, i) in prog.iter().enumerate() {
        if !reached[pc] {
            panic!("unreachable instruction {pc}: {i:?}");
        }
        let class = i.code & 0x07;
        let is_jump = class == CLASS_JMP || class == CLASS_JMP32;
        if is_jump && i.code & 0xf0 == OP_EXIT {
            continue;
        }
        if is_jump {
            assert!(i.off >= 0, "backward jump at {pc}");
            let target = pc + 1 + i.off as usize;
            assert!(target < prog.len(), "jump out of the program at {pc}");
            reached[target] = true;
        }
        assert!(pc + 1 < prog.len(), "falls off the end at {pc}");
        reached[pc + 1] = true;
    }
}

/// Runs the program on one request; returns r0.
pub fn run(prog: &[BpfInsn], access_type: u32, major: u32, minor: u32) -> u64 {
    check_cfg(prog);
    let ctx: [u32; 3] = [access_type, major, minor];
    let mut regs: [Option<u64>; 11] = [None; 11];
    let mut is_ctx = [false; 11];
    regs[1] = Some(CTX_ADDR);
    is_ctx[1] = true;
    let mut pc = 0;
    loop {
        let i = prog[pc];
        let (dst, src) = ((i.regs & 0x0f) as usize, (i.regs >> 4) as usize);
        assert!(dst < 10 && src < 11, "bad register at {pc}");
        let (at, set) = (pc, regs);
        let read = |r: usize| set[r].unwrap_or_else(|| panic!("r{r} read unset at {at}"));
        let class = i.code & 0x07;
        pc += 1;
        match class {
            CLASS_LDX => {
                assert_eq!(i.code, CLASS_LDX | SIZE_W | MODE_MEM, "load kind");
                assert!(is_ctx[src], "load through a non-context pointer");
                let addr = read(src) + i.off as u64;
                let off = addr - CTX_ADDR;
                assert!(
                    off < CTX_SIZE_BYTES && off.is_multiple_of(4),
                    "bad ctx offset {off}"
                );
                regs[dst] = Some(u64::from(ctx[off as usize / 4]));
                is_ctx[dst] = false;
            }
            CLASS_ALU64 => {
                // Only the context pointer's copy into a callee-saved register.
                assert_eq!(i.code, CLASS_ALU64 | OP_MOV | SRC_X, "alu64 kind");
                regs[dst] = Some(read(src));
                is_ctx[dst] = is_ctx[src];
            }
            CLASS_ALU => {
                let operand = if i.code & SRC_X != 0 {
                    assert!(!is_ctx[src], "pointer as an operand");
                    read(src) as u32
                } else {
                    i.imm as u32
                };
                let value = match i.code & 0xf0 {
                    OP_MOV => operand,
                    OP_AND => read(dst) as u32 & operand,
                    OP_RSH => {
                        assert!(operand < 32, "shift by {operand}");
                        (read(dst) as u32) >> operand
                    }
                    op => panic!("alu op {op:#x} not interpreted"),
                };
                assert!(
                    !is_ctx[dst] || i.code & 0xf0 == OP_MOV,
                    "pointer arithmetic"
                );
                regs[dst] = Some(u64::from(value));
                is_ctx[dst] = false;
            }
            CLASS_JMP | CLASS_JMP32 => {
                let op = i.code & 0xf0;
                if op == OP_EXIT {
                    assert_eq!(class, CLASS_JMP, "exit is a 64-bit jump");
                    assert!(!is_ctx[0], "returns a pointer");
                    return read(0);
                }
                assert!(!is_ctx[dst], "compares a pointer");
                let (left, right) = if class == CLASS_JMP32 {
                    let right = if i.code & SRC_X != 0 {
                        read(src) as u32
                    } else {
                        i.imm as u32
                    };
                    (u64::from(read(dst) as u32), u64::from(right))
                } else {
                    let right = if i.code & SRC_X != 0 {
                        read(src)
                    } else {
                        i64::from(i.imm) as u64
                    };
                    (read(dst), right)
                };
                let taken = match op {
                    OP_JEQ => left == right,
                    OP_JNE => left != right,
                    op => panic!("jump op {op:#x} not interpreted"),
                };
                if taken {
                    pc += i.off as usize;
                }
            }
            class => panic!("instruction class {class:#x} not interpreted"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_about_control_flow() {
        let exit = BpfInsn {
            code: CLASS_JMP | OP_EXIT,
            regs: 0,
            off: 0,
            imm: 0,
        };
        let mov0 = BpfInsn {
            code: CLASS_ALU | OP_MOV | SRC_K,
            regs: 0,
            off: 0,
            imm: 7,
        };
        assert_eq!(run(&[mov0, exit], 0, 0, 0), 7);
        let dead = std::panic::catch_unwind(|| check_cfg(&[mov0, exit, mov0, exit]));
        assert!(dead.is_err(), "an unreachable instruction must be refused");
        let unset = std::panic::catch_unwind(|| run(&[exit], 0, 0, 0));
        assert!(unset.is_err(), "r0 unset at exit must be refused");
    }
}
