//! Phase 1 of the graph build: the function's interface.
//!
//! Computes how many stack arguments the function reads, the stack slots
//! where its prologue saves callee-saved registers, and per call site the
//! callee's memory effects and argument slots in this function's terms. It
//! hands an [`Interface`] to the cell partition (these locations cut the
//! memory into cells) and to the later phases (call nodes and their uses).

use wiper_qfbv::Op;
use wiper_sem::{Loc, Reg, Value};
use wiper_x86::abi;

use super::CalleeInfo;
use crate::memory::{AbstractLoc, AccessKind};
use crate::program::Program;
use crate::stack::StackInfo;

/// What the function shows its callers and sees of its callees.
pub(super) struct Interface {
    /// Stack arguments the function accesses (at least one past every
    /// static buffer argument).
    pub nargs: u32,
    /// Per call site: the callee's memory effects in this function's terms
    /// (index = the callee's effect number; `None`: invisible here). An
    /// opaque callee has the one effect `Unknown`.
    pub mapped: Vec<Vec<Option<AbstractLoc>>>,
    /// Per call site: the argument slots an analysed callee reads.
    pub call_args: Vec<Vec<AbstractLoc>>,
    /// Register save slots (see [`crate::Analysis::save_slots`]).
    pub saves: Vec<i32>,
}

/// Computes the [`Interface`] of `program`.
pub(super) fn interface(
    program: &Program,
    stack: &StackInfo,
    callees: &[CalleeInfo],
    buffers: &[u32],
) -> Interface {
    let mapped = program
        .calls
        .iter()
        .enumerate()
        .map(|(i, _)| match &callees[i] {
            CalleeInfo::Opaque => vec![Some(AbstractLoc::Unknown)],
            CalleeInfo::Internal { nargs: cn, effects } => effects
                .iter()
                .map(|l| map_effect(*l, stack.callee_esp0[i], *cn))
                .collect(),
        })
        .collect();
    let call_args = program
        .calls
        .iter()
        .enumerate()
        .map(|(i, _)| match (&callees[i], stack.callee_esp0[i]) {
            (CalleeInfo::Internal { nargs: cn, .. }, Some(ce)) => (0..*cn)
                .map(|k| AbstractLoc::Stack {
                    offset: ce + abi::arg_offset(k) as i32,
                    size: 4,
                })
                .collect(),
            (CalleeInfo::Internal { nargs: cn, .. }, None) => {
                vec![AbstractLoc::StackAny; *cn as usize]
            }
            _ => Vec::new(),
        })
        .collect();
    Interface {
        nargs: arg_count(stack, buffers),
        mapped,
        call_args,
        saves: save_slots(program, stack),
    }
}

/// Stack arguments the function accesses, counting the static buffer
/// arguments too.
fn arg_count(stack: &StackInfo, buffers: &[u32]) -> u32 {
    let mut nargs = 0u32;
    for acc in &stack.accesses {
        for a in acc {
            if let AbstractLoc::Stack { offset, size } = a.loc {
                if offset >= 4 {
                    nargs = nargs.max((offset as u32 - 4) / 4 + 1);
                } else if i64::from(offset) + i64::from(size) > 4 {
                    nargs = nargs.max(1);
                }
            }
        }
    }
    for &k in buffers {
        nargs = nargs.max(k + 1);
    }
    nargs
}

/// Stack offsets where the entry block saves a callee-saved register
/// (`ebx`, `esi`, `edi`, `ebp`) it has not written yet: `push ebp`,
/// `mov [esp+0x30],esi`.
fn save_slots(program: &Program, stack: &StackInfo) -> Vec<i32> {
    let pool = &program.pool;
    let mut written: Vec<Reg> = Vec::new();
    let mut out = Vec::new();
    for p in &program.parts {
        if p.block != program.function.entry {
            break;
        }
        for e in &p.part.effects {
            if e.dst != Loc::Mem {
                continue;
            }
            let Value::Expr(x) = e.value else { continue };
            if pool.op(x) != Op::Store {
                continue;
            }
            let v = pool.args(x)[2];
            let reg = pool.as_var(v).and_then(|v| Loc::of_var(pool, v));
            if let Some(Loc::Reg(r)) = reg {
                if !abi::CALLEE_SAVED.contains(&r) || written.contains(&r) {
                    continue;
                }
                for a in &stack.accesses[p.id.index()] {
                    if let (AbstractLoc::Stack { offset, size: 4 }, AccessKind::Write) =
                        (a.loc, a.kind)
                    {
                        if offset < 0 {
                            out.push(offset);
                        }
                    }
                }
            }
        }
        for w in p.part.writes() {
            if let Loc::Reg(r) = w {
                written.push(r);
            }
        }
    }
    out
}

/// A callee's memory effect in the caller's terms (`None`: invisible to
/// the caller, e.g. the callee's own frame).
fn map_effect(loc: AbstractLoc, callee_esp0: Option<i32>, nargs: u32) -> Option<AbstractLoc> {
    match loc {
        AbstractLoc::Stack { offset, size } => {
            if i64::from(offset) + i64::from(size) <= 4 {
                return None;
            }
            Some(match callee_esp0 {
                Some(c) => AbstractLoc::Stack {
                    offset: c.wrapping_add(offset),
                    size,
                },
                None => AbstractLoc::StackAny,
            })
        }
        AbstractLoc::LocalAny => None,
        AbstractLoc::StackAny => match callee_esp0 {
            Some(_) if nargs == 0 => None,
            Some(c) => Some(AbstractLoc::Stack {
                offset: c + 4,
                size: 4 * nargs,
            }),
            None => Some(AbstractLoc::StackAny),
        },
        AbstractLoc::Global {
            read_only: true, ..
        }
        | AbstractLoc::GlobalAny {
            read_only: true, ..
        } => None,
        AbstractLoc::Global { .. } | AbstractLoc::GlobalAny { .. } | AbstractLoc::Unknown => {
            Some(loc)
        }
        AbstractLoc::Buffer { .. } | AbstractLoc::BufferAny { .. } => Some(AbstractLoc::Unknown),
    }
}
