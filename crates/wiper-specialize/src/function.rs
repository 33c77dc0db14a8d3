//! Per-function facts the specializer needs: each instruction with its
//! decoupled parts, and register/flag liveness (to drop dead locations from
//! memo keys and to tell Reduce what it may clobber).

use std::collections::{BTreeMap, HashMap};

use iced_x86::{FlowControl, Instruction, InstructionInfoFactory, OpAccess, Register};
use wiper_qfbv::ExprPool;
use wiper_sem::{lift, Lifted, Loc, Reg, Value};
use wiper_x86::{Function, Successor};

use crate::state::FxHashMap;
use crate::SpecializeError;

/// Every register.
pub const ALL_REGS: u8 = 0xff;
/// Every flag.
pub const ALL_FLAGS: u8 = 0x7f;

/// Registers whose bits above the low byte a caller may read after `ret`:
/// all but `ecx`, which the System V i386 ABI makes scratch (see
/// docs/specialization.md).
const WIDE_LIVE_AT_RETURN: u8 = ALL_REGS & !(1 << 1);

/// How an instruction uses the bits of registers above their low byte:
/// `(reads, kills, narrow)`: the registers whose upper bits it may read,
/// those whose all 32 bits it overwrites, and the register it only writes
/// the low 8 or 16 bits of, if it touches that register in no other way.
fn wide_uses(
    factory: &mut InstructionInfoFactory,
    ins: &Instruction,
    reads: u8,
) -> (u8, u8, Option<Reg>) {
    let info = factory.info(ins);
    let (mut low_byte_only, mut kills, mut narrow_writes, mut other) = (0u8, 0u8, 0u8, 0u8);
    let mut seen = 0u8;
    for used in info.used_registers() {
        let Some(reg) = Reg::from_iced(used.register()) else {
            continue;
        };
        let bit = 1u8 << reg.index();
        seen |= bit;
        let low_byte = matches!(
            used.register(),
            Register::AL | Register::CL | Register::DL | Register::BL
        );
        let narrow = low_byte || used.register().size() == 2;
        match used.access() {
            OpAccess::Write if used.register().size() == 4 => kills |= bit,
            OpAccess::Write if narrow => narrow_writes |= bit,
            OpAccess::Read | OpAccess::ReadWrite if low_byte => low_byte_only |= bit,
            _ => other |= bit,
        }
    }
    // A register the semantics read that iced shows only as a low byte (or
    // as a narrow write, whose kept bits pass through) is not read wide.
    let wide_reads = reads & !((low_byte_only | narrow_writes) & !other & !kills) | other;
    let free = narrow_writes & !other & !low_byte_only & !kills & seen;
    let narrow = Reg::ALL.into_iter().find(|r| free == 1 << r.index());
    (wide_reads, kills & !other, narrow)
}

/// Whether a part of `lifted` assigns a formula without variables.
fn writes_a_constant(pool: &ExprPool, lifted: &Lifted) -> bool {
    lifted
        .parts
        .iter()
        .flat_map(|p| &p.effects)
        .any(|e| match e.value {
            Value::Expr(x) => pool
                .subterms(&[x])
                .into_iter()
                .all(|s| pool.as_var(s).is_none()),
            Value::Undefined => false,
        })
}

/// One instruction of a function.
pub struct InstrInfo {
    /// The decoded instruction.
    pub instruction: Instruction,
    /// Its semantics.
    pub lifted: Lifted,
    /// The locations it reads before writing them ([`Lifted::reads`]).
    pub reads: Vec<Loc>,
    /// The locations it assigns ([`Lifted::writes`]).
    pub writes: Vec<Loc>,
    /// Registers live before it (bit = `Reg::index`).
    pub live_regs_in: u8,
    /// Flags live before it.
    pub live_flags_in: u8,
    /// Registers live after it.
    pub live_regs_out: u8,
    /// Flags live after it.
    pub live_flags_out: u8,
    /// Whether a block starts here (a specialization point).
    pub block_start: bool,
    /// A register this instruction writes only the low 8 or 16 bits of,
    /// without reading it, when no later instruction reads the bits it
    /// keeps (`mov cl, 0` with only `cl` read afterwards): the register's
    /// old value cannot matter, so a dynamic one may be taken as 0 and the
    /// result known.
    pub free_narrow_write: Option<Reg>,
    /// Whether a part assigns a value that reads no location (`test`
    /// clears CF and OF): that value is static whatever the inputs.
    pub writes_a_constant: bool,
}

/// A function prepared for specialization.
pub struct FunctionInfo {
    /// Its control-flow graph.
    pub function: Function,
    /// Its instructions by address.
    pub instrs: FxHashMap<u32, InstrInfo>,
}

fn mask_of(locs: impl Iterator<Item = Loc>) -> (u8, u8) {
    let (mut r, mut f) = (0u8, 0u8);
    for l in locs {
        match l {
            Loc::Reg(x) => r |= 1 << x.index(),
            Loc::Flag(x) => f |= 1 << x.index(),
            _ => {}
        }
    }
    (r, f)
}

impl InstrInfo {
    /// The flags it reads (bit = `Flag::index`).
    pub fn flags_read(&self) -> u8 {
        mask_of(self.reads.iter().copied()).1
    }
}

impl FunctionInfo {
    /// Lifts every instruction of `function` and computes liveness; `edx`
    /// is dead after its returns when `edx_dead_at_return` (no caller reads
    /// it: [`wiper_x86::CallerAnalysis::edx_at_return`]).
    pub fn new(
        pool: &mut ExprPool,
        function: Function,
        edx_dead_at_return: bool,
    ) -> Result<FunctionInfo, SpecializeError> {
        let live_at_return = if edx_dead_at_return {
            ALL_REGS & !(1 << Reg::Edx.index())
        } else {
            ALL_REGS
        };
        let mut instrs = FxHashMap::default();
        // Per instruction: (reads, writes) masks.
        let mut uses: HashMap<u32, (u8, u8, u8, u8)> = HashMap::new();
        // Per instruction: (wide reads, wide kills, narrow write).
        let mut wide: HashMap<u32, (u8, u8, Option<Reg>)> = HashMap::new();
        let mut factory = InstructionInfoFactory::new();
        for block in function.blocks.values() {
            for (i, ins) in block.instructions.iter().enumerate() {
                let lifted = lift(pool, ins).map_err(|e| SpecializeError::Unsupported {
                    address: ins.ip32(),
                    reason: e.to_string(),
                })?;
                let reads: Vec<Loc> = lifted.reads(pool).into_iter().collect();
                let writes_a_constant = writes_a_constant(pool, &lifted);
                let writes: Vec<Loc> = lifted.writes().into_iter().collect();
                let (mut rr, mut rf) = mask_of(reads.iter().copied());
                let (mut wr, mut wf) = mask_of(writes.iter().copied());
                let (mut wide_r, mut wide_k, narrow) = wide_uses(&mut factory, ins, rr);
                match ins.flow_control() {
                    FlowControl::Call | FlowControl::IndirectCall => {
                        // The callee may read any register (regparm, static
                        // conventions) and never reads flags.
                        rr = ALL_REGS;
                        wr = 0;
                        wf = ALL_FLAGS;
                        rf = 0;
                        (wide_r, wide_k) = (ALL_REGS, 0);
                    }
                    // A barrier (`int 0x80`, `mov gs, edx`) may read any
                    // register.
                    _ if lifted.barrier().is_some() => {
                        rr = ALL_REGS;
                        wr = 0;
                        (wide_r, wide_k) = (ALL_REGS, 0);
                    }
                    FlowControl::Interrupt => {
                        rr = ALL_REGS;
                        wr = 0;
                        (wide_r, wide_k) = (ALL_REGS, 0);
                    }
                    _ => {}
                }
                uses.insert(ins.ip32(), (rr, rf, wr, wf));
                wide.insert(ins.ip32(), (wide_r, wide_k, narrow));
                instrs.insert(
                    ins.ip32(),
                    InstrInfo {
                        instruction: *ins,
                        lifted,
                        reads,
                        writes,
                        live_regs_in: 0,
                        live_flags_in: 0,
                        live_regs_out: 0,
                        live_flags_out: 0,
                        block_start: i == 0,
                        free_narrow_write: None,
                        writes_a_constant,
                    },
                );
            }
        }
        // Backward dataflow over blocks to a fixpoint: live registers, live
        // flags, registers whose upper bits are live.
        let mut live_in: BTreeMap<u32, (u8, u8, u8)> =
            function.blocks.keys().map(|a| (*a, (0, 0, 0))).collect();
        loop {
            let mut changed = false;
            for (start, block) in function.blocks.iter().rev() {
                let (mut r, mut f, mut w) = (0u8, 0u8, 0u8);
                for s in &block.successors {
                    let (sr, sf, sw) = match s {
                        Successor::FallThrough(a)
                        | Successor::Jump(a)
                        | Successor::Taken(a)
                        | Successor::NotTaken(a)
                        | Successor::Case { target: a, .. } => live_in
                            .get(a)
                            .copied()
                            .unwrap_or((ALL_REGS, ALL_FLAGS, ALL_REGS)),
                        Successor::Call(_) => (0, 0, 0),
                        // Callers may rely on any register (static functions
                        // with interprocedural register allocation), never on
                        // flags; on the upper bits of `ecx` they cannot; on
                        // `edx` when no caller reads it after the call.
                        Successor::Return => {
                            (live_at_return, 0, WIDE_LIVE_AT_RETURN & live_at_return)
                        }
                        Successor::TailCall(_) => (ALL_REGS, 0, ALL_REGS),
                        Successor::IndirectJump => (ALL_REGS, ALL_FLAGS, ALL_REGS),
                        Successor::Halt => (0, 0, 0),
                    };
                    r |= sr;
                    f |= sf;
                    w |= sw;
                }
                for ins in block.instructions.iter().rev() {
                    let (rr, rf, wr, wf) = uses[&ins.ip32()];
                    let (wide_r, wide_k, narrow) = wide[&ins.ip32()];
                    let info = instrs.get_mut(&ins.ip32()).expect("lifted");
                    if info.lifted.is_rep_loop() {
                        // A `rep` step is followed by the next step: what
                        // the instruction reads is live after it too.
                        r |= rr;
                        f |= rf;
                        w |= wide_r;
                    }
                    info.live_regs_out = r;
                    info.live_flags_out = f;
                    info.free_narrow_write = narrow.filter(|n| w & (1 << n.index()) == 0);
                    r = (r & !wr) | rr;
                    f = (f & !wf) | rf;
                    w = (w & !wide_k) | wide_r;
                    info.live_regs_in = r;
                    info.live_flags_in = f;
                }
                let entry = live_in.get_mut(start).expect("block");
                if *entry != (r, f, w) {
                    *entry = (r, f, w);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        Ok(FunctionInfo { function, instrs })
    }
}
