//! The concrete view: runs a lifted instruction on a [`MachineState`] with
//! the formula evaluator of `wiper-qfbv`, part by part, following the
//! branch back of `rep` string instructions until they are done.

use std::collections::{BTreeMap, BTreeSet};

use wiper_qfbv::{Env, EvalError, ExprId, ExprPool, VarId};

use crate::loc::{is_undefined_var, Flag, Loc, Reg};
use crate::part::{Barrier, Lifted, Part, Value};

/// A concrete machine state: what the modelled locations hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MachineState {
    /// `eax`…`edi`, indexed by [`Reg::index`].
    pub regs: [u32; 8],
    /// The flags, indexed by [`Flag::index`] (`Flag::ALL` order).
    pub flags: [bool; 7],
    /// The instruction pointer.
    pub eip: u32,
    /// The known memory bytes; reading any other byte is an error.
    pub mem: BTreeMap<u32, u8>,
    /// The base address of the `fs` segment.
    pub fs_base: u32,
    /// The base address of the `gs` segment (the thread pointer).
    pub gs_base: u32,
}

impl MachineState {
    /// The value of register `r`.
    pub fn reg(&self, r: Reg) -> u32 {
        self.regs[r.index()]
    }

    /// The value of flag `f`.
    pub fn flag(&self, f: Flag) -> bool {
        self.flags[f.index()]
    }
}

/// The result of [`execute`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// The state after the instruction; `eip` is where control goes next (the
    /// fall-through address or the branch target).
    pub state: MachineState,
    /// Flags whose final value is undefined; their value in `state` is
    /// meaningless.
    pub undefined: BTreeSet<Flag>,
}

/// Why [`execute`] could not run an instruction to completion.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The instruction reads a memory byte the state does not give.
    #[error("memory byte {0:#x} is unknown")]
    UnknownMemory(u32),
    /// `div`/`idiv` by zero or with a quotient too large: the processor raises #DE.
    #[error("divide error (#DE) at {addr:#x}")]
    DivideError {
        /// Address of the instruction.
        addr: u32,
    },
    /// The instruction is a barrier (system call, `hlt`): its effect is not
    /// modelled.
    #[error("{barrier:?} barrier at {addr:#x} is not executed")]
    Barrier {
        /// Which barrier.
        barrier: Barrier,
        /// Address of the instruction.
        addr: u32,
    },
    /// The instruction is opaque: wiper has no formulas for its results.
    #[error("opaque instruction at {addr:#x} is not executed")]
    Opaque {
        /// Address of the instruction.
        addr: u32,
    },
    /// A register, memory or `eip` would receive a value computed from an
    /// undefined flag.
    #[error("{loc} at {addr:#x} depends on an undefined value")]
    UndefinedValue {
        /// The location.
        loc: Loc,
        /// Address of the instruction.
        addr: u32,
    },
    /// A `rep` instruction ran [`MAX_REP_ITERATIONS`] iterations without finishing.
    #[error("rep instruction at {addr:#x} exceeds {MAX_REP_ITERATIONS} iterations")]
    IterationLimit {
        /// Address of the instruction.
        addr: u32,
    },
}

/// How many iterations [`execute`] runs a `rep` string instruction before
/// giving up with [`ExecError::IterationLimit`].
pub const MAX_REP_ITERATIONS: u64 = 1 << 20;

/// The evaluation environment: the current state plus the temporaries and
/// the flags made undefined so far.
struct Machine<'a> {
    pool: &'a ExprPool,
    state: MachineState,
    temps: BTreeMap<u8, u32>,
    undefined: BTreeSet<Flag>,
    /// Values tried for undefined variables (see [`Machine::eval`]).
    forced: BTreeMap<VarId, u64>,
}

impl Env for Machine<'_> {
    fn bv(&self, var: VarId) -> Option<u64> {
        if let Some(&v) = self.forced.get(&var) {
            return Some(v);
        }
        match Loc::of_var(self.pool, var)? {
            Loc::Reg(r) => Some(u64::from(self.state.reg(r))),
            Loc::Flag(f) if self.undefined.contains(&f) => None,
            Loc::Flag(f) => Some(u64::from(self.state.flag(f))),
            Loc::Temp(t) => self.temps.get(&t.0).map(|&v| u64::from(v)),
            Loc::Eip => Some(u64::from(self.state.eip)),
            Loc::FsBase => Some(u64::from(self.state.fs_base)),
            Loc::GsBase => Some(u64::from(self.state.gs_base)),
            Loc::Mem | Loc::Fpu => None,
        }
    }

    fn mem_byte(&self, _var: VarId, addr: u32) -> Option<u8> {
        self.state.mem.get(&addr).copied()
    }
}

/// A new value computed by a part, not yet committed.
enum New {
    Bits(u64),
    Bytes(BTreeMap<u32, u8>),
    Undefined,
}

/// Why evaluating one formula failed.
enum Fail {
    /// It needs an undefined flag or an undefined-value variable.
    Undefined,
    /// A hard error.
    Error(ExecError),
}

impl Machine<'_> {
    /// Evaluates `e`, classifying failures. When `e` reads undefined values
    /// (undefined flags, undefined-value variables), it is evaluated under
    /// every assignment of them: if all agree (e.g. `~(count == 1) & ?of` with
    /// a count of 1), that is the value, else it is undefined.
    fn eval(&mut self, e: ExprId) -> Result<wiper_qfbv::Value, Fail> {
        match self.eval_once(e) {
            Err(Fail::Undefined) => {}
            r => return r,
        }
        let unknown: Vec<VarId> = self
            .pool
            .vars(e)
            .into_iter()
            .filter(|&v| self.is_undefined(v))
            .collect();
        if unknown.len() > 4 {
            return Err(Fail::Undefined);
        }
        let mut seen = None;
        for bits in 0..1u64 << unknown.len() {
            self.forced = unknown
                .iter()
                .enumerate()
                .map(|(i, &v)| (v, (bits >> i) & 1))
                .collect();
            let r = self.eval_once(e);
            self.forced.clear();
            let v = r?;
            match &seen {
                None => seen = Some(v),
                Some(s) if *s == v => {}
                Some(_) => return Err(Fail::Undefined),
            }
        }
        Ok(seen.expect("at least one assignment"))
    }

    /// Whether variable `v` currently has no defined value.
    fn is_undefined(&self, v: VarId) -> bool {
        if is_undefined_var(self.pool, v) {
            return true;
        }
        matches!(Loc::of_var(self.pool, v), Some(Loc::Flag(f)) if self.undefined.contains(&f))
    }

    /// One evaluation of `e`.
    fn eval_once(&self, e: ExprId) -> Result<wiper_qfbv::Value, Fail> {
        self.pool.eval(e, self).map_err(|err| match err {
            EvalError::UnknownByte { addr, .. } => Fail::Error(ExecError::UnknownMemory(addr)),
            EvalError::UnboundVar(name) => {
                let var = self.pool.lookup_var(&name).expect("declared");
                assert!(
                    self.is_undefined(var),
                    "wiper-sem: `{name}` read before it was assigned"
                );
                Fail::Undefined
            }
        })
    }

    /// Runs one part; returns the `eip` it assigns, if any.
    fn run(&mut self, part: &Part) -> Result<Option<u32>, ExecError> {
        let addr = part.origin;
        if let Some(barrier) = part.barrier {
            return Err(ExecError::Barrier { barrier, addr });
        }
        if part.opaque.is_some() {
            return Err(ExecError::Opaque { addr });
        }
        if let Some(c) = part.fault {
            match self.eval(c) {
                Ok(v) if v.as_u64() == Some(0) => {}
                Ok(_) => return Err(ExecError::DivideError { addr }),
                Err(Fail::Error(e)) => return Err(e),
                Err(Fail::Undefined) => {
                    return Err(ExecError::UndefinedValue {
                        loc: Loc::Eip,
                        addr,
                    })
                }
            }
        }
        let mut news = Vec::with_capacity(part.effects.len());
        for e in &part.effects {
            let new = match e.value {
                Value::Undefined => New::Undefined,
                Value::Expr(x) => match self.eval(x) {
                    Ok(wiper_qfbv::Value::Bv { val, .. }) => New::Bits(val),
                    Ok(wiper_qfbv::Value::Mem(m)) => New::Bytes(m.writes().clone()),
                    Err(Fail::Error(err)) => return Err(err),
                    Err(Fail::Undefined) => New::Undefined,
                },
            };
            if matches!(new, New::Undefined) && !matches!(e.dst, Loc::Flag(_)) {
                return Err(ExecError::UndefinedValue { loc: e.dst, addr });
            }
            news.push((e.dst, new));
        }
        let mut eip = None;
        for (dst, new) in news {
            match (dst, new) {
                (Loc::Flag(f), New::Undefined) => {
                    self.undefined.insert(f);
                }
                (Loc::Flag(f), New::Bits(v)) => {
                    self.undefined.remove(&f);
                    self.state.flags[f.index()] = v != 0;
                }
                (Loc::Reg(r), New::Bits(v)) => self.state.regs[r.index()] = v as u32,
                (Loc::Temp(t), New::Bits(v)) => {
                    self.temps.insert(t.0, v as u32);
                }
                (Loc::Eip, New::Bits(v)) => eip = Some(v as u32),
                (Loc::Mem, New::Bytes(bytes)) => self.state.mem.extend(bytes),
                (dst, _) => unreachable!("ill-sorted effect on {dst}"),
            }
        }
        Ok(eip)
    }
}

/// Runs a lifted instruction with the concrete evaluator.
///
/// Parts run in order, each a parallel assignment. `eip` ends as the target
/// of the last control-transferring part, or the fall-through address when
/// no part assigned it. A `rep` string instruction whose last part sends
/// control back to itself is run again until it falls through, so the result
/// is the complete effect of the instruction. Memory bytes absent from
/// `state.mem` read as [`ExecError::UnknownMemory`]; stores may go anywhere.
pub fn execute(
    pool: &mut ExprPool,
    lifted: &Lifted,
    state: &MachineState,
) -> Result<Executed, ExecError> {
    let me = lifted.original.ip32();
    let next = lifted.original.next_ip32();
    let mut m = Machine {
        pool,
        state: state.clone(),
        temps: BTreeMap::new(),
        undefined: BTreeSet::new(),
        forced: BTreeMap::new(),
    };
    let mut iterations = 0u64;
    loop {
        m.temps.clear();
        let mut eip = None;
        for part in &lifted.parts {
            if let Some(e) = m.run(part)? {
                eip = Some(e);
            }
        }
        let target = eip.unwrap_or(next);
        if lifted.is_rep_loop() && target == me {
            iterations += 1;
            if iterations >= MAX_REP_ITERATIONS {
                return Err(ExecError::IterationLimit { addr: me });
            }
            continue;
        }
        m.state.eip = target;
        return Ok(Executed {
            state: m.state,
            undefined: m.undefined,
        });
    }
}
