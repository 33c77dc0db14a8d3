//! Per-function facts the specializer needs: each instruction with its
//! decoupled parts, and register/flag liveness (to drop dead locations from
//! memo keys and to tell Reduce what it may clobber).

use std::collections::{BTreeMap, HashMap};

use iced_x86::{FlowControl, Instruction};
use wiper_qfbv::ExprPool;
use wiper_sem::{lift, Lifted, Loc};
use wiper_x86::{Function, Successor};

use crate::state::FxHashMap;
use crate::SpecializeError;

/// Every register.
pub const ALL_REGS: u8 = 0xff;
/// Every flag.
pub const ALL_FLAGS: u8 = 0x7f;

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
    /// Lifts every instruction of `function` and computes liveness.
    pub fn new(pool: &mut ExprPool, function: Function) -> Result<FunctionInfo, SpecializeError> {
        let mut instrs = FxHashMap::default();
        // Per instruction: (reads, writes) masks.
        let mut uses: HashMap<u32, (u8, u8, u8, u8)> = HashMap::new();
        for block in function.blocks.values() {
            for (i, ins) in block.instructions.iter().enumerate() {
                let lifted = lift(pool, ins).map_err(|e| SpecializeError::Unsupported {
                    address: ins.ip32(),
                    reason: e.to_string(),
                })?;
                let reads: Vec<Loc> = lifted.reads(pool).into_iter().collect();
                let writes: Vec<Loc> = lifted.writes().into_iter().collect();
                let (mut rr, mut rf) = mask_of(reads.iter().copied());
                let (mut wr, mut wf) = mask_of(writes.iter().copied());
                match ins.flow_control() {
                    FlowControl::Call | FlowControl::IndirectCall => {
                        // The callee may read any register (regparm, static
                        // conventions) and never reads flags.
                        rr = ALL_REGS;
                        wr = 0;
                        wf = ALL_FLAGS;
                        rf = 0;
                    }
                    FlowControl::Interrupt => {
                        rr = ALL_REGS;
                        wr = 0;
                    }
                    _ => {}
                }
                uses.insert(ins.ip32(), (rr, rf, wr, wf));
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
                    },
                );
            }
        }
        // Backward dataflow over blocks to a fixpoint.
        let mut live_in: BTreeMap<u32, (u8, u8)> =
            function.blocks.keys().map(|a| (*a, (0, 0))).collect();
        loop {
            let mut changed = false;
            for (start, block) in function.blocks.iter().rev() {
                let (mut r, mut f) = (0u8, 0u8);
                for s in &block.successors {
                    let (sr, sf) = match s {
                        Successor::FallThrough(a)
                        | Successor::Jump(a)
                        | Successor::Taken(a)
                        | Successor::NotTaken(a)
                        | Successor::Case { target: a, .. } => {
                            live_in.get(a).copied().unwrap_or((ALL_REGS, ALL_FLAGS))
                        }
                        Successor::Call(_) => (0, 0),
                        // Callers may rely on any register (static functions
                        // with interprocedural register allocation), never on
                        // flags.
                        Successor::Return | Successor::TailCall(_) => (ALL_REGS, 0),
                        Successor::IndirectJump => (ALL_REGS, ALL_FLAGS),
                        Successor::Halt => (0, 0),
                    };
                    r |= sr;
                    f |= sf;
                }
                for ins in block.instructions.iter().rev() {
                    let (rr, rf, wr, wf) = uses[&ins.ip32()];
                    let info = instrs.get_mut(&ins.ip32()).expect("lifted");
                    info.live_regs_out = r;
                    info.live_flags_out = f;
                    r = (r & !wr) | rr;
                    f = (f & !wf) | rf;
                    info.live_regs_in = r;
                    info.live_flags_in = f;
                }
                let entry = live_in.get_mut(start).expect("block");
                if *entry != (r, f) {
                    *entry = (r, f);
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
