//! Finding functions: by name, by address, and `main` of a stripped glibc binary.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Mnemonic, OpKind, Register};
use wiper_elf::Binary;

use crate::{DecodeError, Reg};

/// Instructions of `_start` examined when looking for `main`.
const START_SCAN: usize = 48;

/// Resolves a `--function` argument: a function symbol name, or `0x` and a hex address.
///
/// `main` is found from `_start` when the binary has no symbol for it.
pub fn resolve_function(binary: &Binary, spec: &str) -> Result<u32, DecodeError> {
    if let Some(hex) = spec.strip_prefix("0x").or_else(|| spec.strip_prefix("0X")) {
        let addr =
            u32::from_str_radix(hex, 16).map_err(|_| DecodeError::BadAddress(spec.to_string()))?;
        if !binary.is_executable(addr) {
            return Err(DecodeError::NotExecutable(addr));
        }
        return Ok(addr);
    }
    if let Some(sym) = binary.functions_named(spec).first() {
        return Ok(sym.addr);
    }
    if spec == "main" {
        if let Some(addr) = find_main(binary) {
            return Ok(addr);
        }
    }
    Err(DecodeError::UnknownFunction {
        name: spec.to_string(),
        suggestions: closest_names(binary, spec),
    })
}

/// Up to three function or PLT names closest to `name` by edit distance
/// (ignoring case), each at most a quarter of the longer name's length away;
/// closest first, ties by name.
fn closest_names(binary: &Binary, name: &str) -> Vec<String> {
    let wanted = name.to_lowercase();
    let mut scored: Vec<(usize, String)> = binary
        .symbols
        .iter()
        .filter(|s| s.is_code())
        .map(|s| s.name.clone())
        .chain(binary.plt.values().cloned())
        .filter_map(|candidate| {
            let d = edit_distance(&wanted, &candidate.to_lowercase());
            let limit = wanted.chars().count().max(candidate.chars().count()) / 4;
            (d <= limit.max(1)).then_some((d, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Levenshtein distance between `a` and `b`, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// The address of `main`: its symbol, or else [`main_from_start`].
pub fn find_main(binary: &Binary) -> Option<u32> {
    match binary.functions_named("main").first() {
        Some(sym) => Some(sym.addr),
        None => main_from_start(binary),
    }
}

/// The first argument `_start` passes to `__libc_start_main`, which is `main`:
/// glibc's i386 `_start` pushes it last before that call, as a constant, a register
/// loaded with a constant, or a GOT slot (PIE). Calls to pc thunks are stepped over.
pub fn main_from_start(binary: &Binary) -> Option<u32> {
    let bytes = binary.bytes_from(binary.entry)?;
    let mut decoder = Decoder::with_ip(32, bytes, binary.entry as u64, DecoderOptions::NONE);
    let mut regs = [None::<u32>; 8];
    let mut last_push = None;
    for ins in decoder.iter().take(START_SCAN) {
        if ins.is_invalid() {
            return None;
        }
        let reg_slot = |r: Register| Reg::from_iced(r).map(Reg::index);
        match (ins.mnemonic(), ins.op0_kind()) {
            (Mnemonic::Mov, OpKind::Register) if ins.op1_kind() == OpKind::Immediate32 => {
                if let Some(i) = reg_slot(ins.op0_register()) {
                    regs[i] = Some(ins.immediate32());
                }
            }
            (Mnemonic::Lea, OpKind::Register) if ins.memory_base() == Register::EBX => {
                if let Some(i) = reg_slot(ins.op0_register()) {
                    regs[i] = binary
                        .got
                        .map(|g| g.wrapping_add(ins.memory_displacement32()));
                }
            }
            (Mnemonic::Push, OpKind::Immediate32 | OpKind::Immediate8to32) => {
                last_push = Some(ins.immediate32to64() as u32);
            }
            (Mnemonic::Push, OpKind::Register) => {
                last_push = reg_slot(ins.op0_register()).and_then(|i| regs[i]);
            }
            (Mnemonic::Push, OpKind::Memory) => {
                last_push = match (ins.memory_base(), ins.memory_index()) {
                    (Register::EBX, Register::None) => binary
                        .got
                        .and_then(|g| binary.read_u32(g.wrapping_add(ins.memory_displacement32()))),
                    (Register::None, Register::None) => {
                        binary.read_u32(ins.memory_displacement32())
                    }
                    _ => None,
                };
            }
            (Mnemonic::Call, OpKind::NearBranch32) if is_pc_thunk(binary, ins.near_branch32()) => {}
            _ if matches!(
                ins.flow_control(),
                FlowControl::Call | FlowControl::IndirectCall
            ) =>
            {
                return last_push.filter(|&m| binary.is_executable(m));
            }
            _ if ins.flow_control() != FlowControl::Next => return None,
            _ => {}
        }
    }
    None
}

/// Whether `addr` holds `mov reg, [esp]; ret`: gcc's `__x86.get_pc_thunk.*`.
fn is_pc_thunk(binary: &Binary, addr: u32) -> bool {
    pc_thunk_register(binary, addr).is_some()
}

/// The register a pc thunk at `addr` (`mov reg, [esp]; ret`) loads with its
/// return address, if `addr` holds one.
pub(crate) fn pc_thunk_register(binary: &Binary, addr: u32) -> Option<Register> {
    let b = binary.read(addr, 4)?;
    let is_thunk = b[0] == 0x8b && b[1] & 0xc7 == 0x04 && b[2] == 0x24 && b[3] == 0xc3;
    let number = usize::from((b[1] >> 3) & 7);
    is_thunk.then_some(crate::GPR32[number])
}

#[cfg(test)]
mod tests {
    use super::edit_distance;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("power", "power"), 0);
        assert_eq!(edit_distance("powr", "power"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("eval_poly", "evalpoly"), 1);
    }
}
