//! The symbolic effect of a candidate sequence: each instruction is lifted
//! with `wiper_sem::lift` (cached), and its parts are composed one after the
//! other by substituting the current location values into the part's
//! formulas (a part's effects are a parallel assignment).
//!
//! Along the way the composition records what the verifier needs besides
//! the final values: every memory access (address formula, size, whether it
//! writes), whether a part can fault, and it refuses candidates that read a
//! *stale* register (one whose machine contents are not its value) before
//! writing it, transfer control, or are barriers.

use std::collections::HashMap;
use std::rc::Rc;

use iced_x86::{InstructionInfoFactory, OpAccess, Register};
use wiper_qfbv::{ExprId, ExprPool, VarId};
use wiper_sem::{is_undefined_var, lift, loc_var, Flag, Loc, Reg, Value};

/// A memory access of a candidate (or of the goal).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Access {
    /// The address, a formula over the state before the sequence.
    pub addr: ExprId,
    /// Bytes accessed.
    pub size: u32,
    /// Whether the access writes.
    pub write: bool,
}

/// What one variable of a part's formulas stands for.
#[derive(Copy, Clone, Debug)]
enum Slot {
    Reg(Reg),
    Flag(Flag),
    Mem,
    Temp(u8),
    Undefined(Flag),
}

/// A memory access of an instruction: `[base + index*scale + disp]`.
#[derive(Copy, Clone, Debug)]
struct MemUse {
    base: Option<Reg>,
    index: Option<Reg>,
    scale: u32,
    disp: u32,
    size: u32,
    write: bool,
}

/// One effect of a part, prepared for composition.
#[derive(Clone, Debug)]
struct Fx {
    dst: Loc,
    value: Option<ExprId>,
}

/// One part, prepared: its effects and the variables its formulas read.
#[derive(Clone, Debug)]
struct PartInfo {
    effects: Vec<Fx>,
    vars: Vec<(VarId, Slot)>,
    /// Registers the part reads (a mask by `Reg::index`).
    reads: u8,
}

/// An instruction lifted once and prepared for composition.
#[derive(Clone, Debug)]
pub(crate) struct LiftInfo {
    parts: Vec<PartInfo>,
    /// Memory accesses, as iced computes them.
    mem: Vec<MemUse>,
    /// Registers used to form addresses (mask).
    addr_regs: u8,
    /// Whether some part can raise #DE.
    pub faults: bool,
    /// Whether the instruction is unusable as a candidate (control transfer,
    /// barrier, a location the composition does not model).
    pub unusable: bool,
    /// Registers the instruction may write (mask).
    pub writes_regs: u8,
    /// Flags the instruction may write, defined or not (mask by `Flag::index`).
    pub writes_flags: u8,
    /// Whether it writes memory.
    pub writes_mem: bool,
    /// Registers it reads (mask), addresses included.
    pub reads_regs: u8,
    /// Flags it reads (mask).
    pub reads_flags: u8,
    /// Whether it reads memory.
    pub reads_mem: bool,
}

/// The symbolic machine state after a prefix of a candidate.
#[derive(Clone, Debug)]
pub(crate) struct SymState {
    /// Register values.
    pub regs: [ExprId; 8],
    /// Flag values (undefined flags are `?flag` variables).
    pub flags: [ExprId; 7],
    /// The memory.
    pub mem: ExprId,
    /// Memory accesses so far.
    pub accesses: Vec<Access>,
    /// Whether some instruction can fault (#DE).
    pub faults: bool,
    /// Stale registers not yet overwritten (mask).
    pub stale: u8,
    /// Flags whose undefined-value variable `?flag` an instruction of the
    /// candidate already used (mask): a later instruction gets a fresh one.
    pub undefined_used: u8,
    /// Number of instructions composed.
    pub len: usize,
}

/// Lifts and composes candidate instructions in one pool, with a cache of
/// prepared lifts.
#[derive(Default)]
pub(crate) struct Composer {
    cache: HashMap<iced_x86::Instruction, Option<Rc<LiftInfo>>>,
    info: Option<InstructionInfoFactory>,
}

impl Composer {
    /// The prepared lift of `ins`, or `None` if `wiper_sem` cannot lift it.
    pub fn info(
        &mut self,
        pool: &mut ExprPool,
        ins: &iced_x86::Instruction,
    ) -> Option<Rc<LiftInfo>> {
        if let Some(i) = self.cache.get(ins) {
            return i.clone();
        }
        let factory = self.info.get_or_insert_with(InstructionInfoFactory::new);
        let r = prepare(pool, factory, ins).map(Rc::new);
        self.cache.insert(*ins, r.clone());
        r
    }

    /// Forgets every prepared lift (when the pool is replaced).
    pub fn clear(&mut self) {
        self.cache.clear();
    }
}

/// Lifts `ins` and prepares its parts.
fn prepare(
    pool: &mut ExprPool,
    factory: &mut InstructionInfoFactory,
    ins: &iced_x86::Instruction,
) -> Option<LiftInfo> {
    let lifted = lift(pool, ins).ok()?;
    let mut out = LiftInfo {
        parts: Vec::new(),
        mem: Vec::new(),
        addr_regs: 0,
        faults: false,
        unusable: lifted.barrier().is_some() || lifted.is_rep_loop() || lifted.is_opaque(),
        writes_regs: 0,
        writes_flags: 0,
        writes_mem: false,
        reads_regs: 0,
        reads_flags: 0,
        reads_mem: false,
    };
    for part in &lifted.parts {
        out.faults |= part.fault.is_some();
        let mut effects = Vec::new();
        let mut roots = Vec::new();
        for e in &part.effects {
            match e.dst {
                Loc::Reg(r) => out.writes_regs |= 1 << r.index(),
                Loc::Flag(f) => out.writes_flags |= 1 << f.index(),
                Loc::Mem => out.writes_mem = true,
                Loc::Temp(_) => {}
                Loc::Eip | Loc::Fpu | Loc::FsBase | Loc::GsBase => out.unusable = true,
            }
            let value = match e.value {
                Value::Expr(x) => {
                    roots.push(x);
                    Some(x)
                }
                Value::Undefined => None,
            };
            effects.push(Fx { dst: e.dst, value });
        }
        let mut vars = Vec::new();
        let mut reads = 0u8;
        let mut seen: Vec<ExprId> = pool.subterms(&roots);
        seen.retain(|&s| pool.as_var(s).is_some());
        for s in seen {
            let v = pool.as_var(s).expect("variables only");
            let slot = match Loc::of_var(pool, v) {
                Some(Loc::Reg(r)) => {
                    reads |= 1 << r.index();
                    Slot::Reg(r)
                }
                Some(Loc::Flag(f)) => {
                    out.reads_flags |= 1 << f.index();
                    Slot::Flag(f)
                }
                Some(Loc::Mem) => {
                    out.reads_mem = true;
                    Slot::Mem
                }
                Some(Loc::Temp(t)) => Slot::Temp(t.0),
                Some(Loc::Eip | Loc::Fpu | Loc::FsBase | Loc::GsBase) => {
                    out.unusable = true;
                    continue;
                }
                None if is_undefined_var(pool, v) => {
                    match Flag::ALL
                        .iter()
                        .find(|f| pool.var_name(v) == format!("?{}", f.name()))
                    {
                        Some(&f) => Slot::Undefined(f),
                        None => {
                            out.unusable = true;
                            continue;
                        }
                    }
                }
                None => {
                    out.unusable = true;
                    continue;
                }
            };
            vars.push((v, slot));
        }
        out.reads_regs |= reads;
        out.parts.push(PartInfo {
            effects,
            vars,
            reads,
        });
    }
    let info = factory.info(ins);
    for m in info.used_memory() {
        let reg = |r: Register| -> Option<Option<Reg>> {
            if r == Register::None {
                Some(None)
            } else {
                Reg::from_iced(r).filter(|_| r.is_gpr32()).map(Some)
            }
        };
        let (Some(base), Some(index)) = (reg(m.base()), reg(m.index())) else {
            out.unusable = true;
            continue;
        };
        let write = !matches!(m.access(), OpAccess::Read | OpAccess::CondRead);
        let size = m.memory_size().size() as u32;
        if size == 0 || m.access() == OpAccess::NoMemAccess {
            continue;
        }
        for r in base.into_iter().chain(index) {
            out.addr_regs |= 1 << r.index();
        }
        out.mem.push(MemUse {
            base,
            index,
            scale: m.scale(),
            disp: m.displacement() as u32,
            size,
            write,
        });
    }
    out.reads_regs |= out.addr_regs;
    Some(out)
}

impl SymState {
    /// The state before any instruction: every location holds its variable.
    pub fn initial(pool: &mut ExprPool, stale: u8) -> SymState {
        SymState {
            regs: Reg::ALL.map(|r| loc_var(pool, Loc::Reg(r))),
            flags: Flag::ALL.map(|f| loc_var(pool, Loc::Flag(f))),
            mem: loc_var(pool, Loc::Mem),
            accesses: Vec::new(),
            faults: false,
            stale,
            undefined_used: 0,
            len: 0,
        }
    }

    /// The state after one more instruction, or `None` if the instruction is
    /// unusable or reads a stale register.
    pub fn step(&self, pool: &mut ExprPool, info: &LiftInfo) -> Option<SymState> {
        if info.unusable || info.addr_regs & self.stale != 0 {
            return None;
        }
        let k = self.len;
        let used = self.undefined_used;
        let mut next = self.clone();
        next.len += 1;
        next.faults |= info.faults;
        for m in &info.mem {
            let mut a = pool.bv(u64::from(m.disp), 32);
            if let Some(b) = m.base {
                a = pool.add(self.regs[b.index()], a);
            }
            if let Some(i) = m.index {
                let s = pool.bv(u64::from(m.scale), 32);
                let scaled = pool.mul(self.regs[i.index()], s);
                a = pool.add(a, scaled);
            }
            next.accesses.push(Access {
                addr: a,
                size: m.size,
                write: m.write,
            });
        }
        let mut temps: HashMap<u8, ExprId> = HashMap::new();
        for part in &info.parts {
            if part.reads & next.stale != 0 {
                return None;
            }
            let mut map: HashMap<VarId, ExprId> = HashMap::with_capacity(part.vars.len());
            for &(v, slot) in &part.vars {
                let to = match slot {
                    Slot::Reg(r) => next.regs[r.index()],
                    Slot::Flag(f) => next.flags[f.index()],
                    Slot::Mem => next.mem,
                    Slot::Temp(t) => *temps.get(&t)?,
                    Slot::Undefined(f) => {
                        next.undefined_used |= 1 << f.index();
                        undefined_at(pool, f, k, used)?
                    }
                };
                if pool.var_expr(v) != to {
                    map.insert(v, to);
                }
            }
            let mut news = Vec::with_capacity(part.effects.len());
            for fx in &part.effects {
                let value = match (fx.value, fx.dst) {
                    (Some(x), _) if map.is_empty() => x,
                    (Some(x), _) => pool.subst(x, &map).ok()?,
                    (None, Loc::Flag(f)) => {
                        next.undefined_used |= 1 << f.index();
                        undefined_at(pool, f, k, used)?
                    }
                    (None, _) => return None,
                };
                news.push((fx.dst, value));
            }
            for (dst, value) in news {
                match dst {
                    Loc::Reg(r) => {
                        next.regs[r.index()] = value;
                        next.stale &= !(1 << r.index());
                    }
                    Loc::Flag(f) => next.flags[f.index()] = value,
                    Loc::Mem => next.mem = value,
                    Loc::Temp(t) => {
                        temps.insert(t.0, value);
                    }
                    Loc::Eip | Loc::Fpu | Loc::FsBase | Loc::GsBase => return None,
                }
            }
        }
        Some(next)
    }
}

/// The undefined value a flag gets from the `k`-th instruction of a
/// candidate: `?flag` (the name the goal's formulas use for the original
/// instruction's undefined values) for the first instruction that leaves
/// the flag undefined, a fresh `?flag@k` for later ones (`used` is the mask
/// of flags whose `?flag` is taken). Sharing the name with the goal is
/// sound: a proof for every value of `?flag` covers whatever value the
/// processor picks; two instructions of one candidate must not share it.
/// `None` if the name is taken by a variable of another sort.
fn undefined_at(pool: &mut ExprPool, f: Flag, k: usize, used: u8) -> Option<ExprId> {
    let name = if used & 1 << f.index() == 0 {
        format!("?{}", f.name())
    } else {
        format!("?{}@{k}", f.name())
    };
    pool.try_var(&name, wiper_qfbv::Sort::Bv(1)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::{build, Opnd};

    /// The undefined-value variables `flag` mentions after `st`.
    fn undefined_of(pool: &ExprPool, st: &SymState, flag: Flag) -> Vec<VarId> {
        pool.vars(st.flags[flag.index()])
            .into_iter()
            .filter(|&v| is_undefined_var(pool, v))
            .collect()
    }

    /// Each instruction of a candidate that leaves a flag undefined gets
    /// its own undefined value: the first the goal's `?flag`, later ones
    /// fresh variables. Two instructions sharing one would let a proof
    /// assume the processor picks the same value twice. Both ways a flag
    /// becomes undefined: as a whole (`imul`'s SF) and inside a formula
    /// (OF of a shift by `cl`, defined only for a count of 1).
    #[test]
    fn each_instruction_s_undefined_flags_are_its_own() {
        use iced_x86::Register::{CL, EAX, EBX, ECX, EDX, ESI};
        let imul: Vec<Vec<Opnd>> = [EBX, ECX, ESI].map(|r| vec![Opnd::R(r)]).to_vec();
        let shl: Vec<Vec<Opnd>> = [EAX, EBX, EDX]
            .map(|r| vec![Opnd::R(r), Opnd::R(CL)])
            .to_vec();
        let cases = [(Flag::Sf, "Imul", imul), (Flag::Of, "Shl", shl)];
        for (flag, mn, operands) in cases {
            let mut pool = ExprPool::new();
            let mut composer = Composer::default();
            let mut st = SymState::initial(&mut pool, 0);
            let mut seen: Vec<VarId> = Vec::new();
            for (k, ops) in operands.iter().enumerate() {
                let ins = build(mn, ops.as_slice()).expect("encodable");
                let info = composer.info(&mut pool, &ins).expect("liftable");
                st = st.step(&mut pool, &info).expect("composable");
                let new: Vec<VarId> = undefined_of(&pool, &st, flag)
                    .into_iter()
                    .filter(|v| !seen.contains(v))
                    .collect();
                assert_eq!(new.len(), 1, "{mn} #{k}: {new:?} after {seen:?}");
                let want = if k == 0 {
                    format!("?{}", flag.name())
                } else {
                    format!("?{}@{k}", flag.name())
                };
                assert_eq!(pool.var_name(new[0]), want);
                seen.extend(new);
            }
        }
    }
}
