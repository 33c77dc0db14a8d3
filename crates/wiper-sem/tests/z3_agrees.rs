//! The concrete evaluator and Z3 agree: for random instances of every
//! supported form and random states for them (`common/gen.rs`; every other
//! state of a division made to trap), [`execute`] gives the same registers,
//! flags (and undefined flags), `eip` and memory as evaluating the same
//! formulas with Z3 (location variables substituted by the state's values,
//! then `simplify`). Divide errors must agree too.
//!
//! `WIPER_Z3_STATES` sets the number of (instance, state) pairs per form
//! (default 12).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use iced_x86::Instruction;
use wiper_qfbv::{ExprId, ExprPool, Op, Z3Term, Z3Translator};
use wiper_sem::{
    execute, is_undefined_var, lift, supported_codes, ExecError, Flag, Lifted, Loc, MachineState,
    Value,
};
use wiper_x86::Rng;
use z3::ast::{Array, Ast, BV};

use common::gen::Instance;

/// The Z3 view of a machine state during one instruction. Memory is kept
/// as bytes; each formula sees a small Z3 array holding just the bytes its
/// loads and stores can touch (their addresses do not depend on memory).
struct Z3State {
    regs: [u32; 8],
    flags: [Option<bool>; 7],
    temps: BTreeMap<u8, u32>,
    eip: u32,
    mem: BTreeMap<u32, u8>,
    fs_base: u32,
    gs_base: u32,
}

/// Outcome of running the formulas through Z3.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done {
        regs: [u32; 8],
        flags: BTreeMap<Flag, bool>,
        undefined: BTreeSet<Flag>,
        eip: u32,
        mem: BTreeMap<u32, u8>,
    },
    DivideError,
}

fn bv(v: u64, w: u32) -> BV {
    BV::from_u64(v, w)
}

/// A Z3 value: a numeral, or an array with the addresses that may have been
/// stored to.
enum Z3Value {
    Bits(Option<u64>),
    Mem(Array, Vec<u32>),
}

impl Z3State {
    fn new(st: &MachineState) -> Self {
        Z3State {
            regs: st.regs,
            flags: st.flags.map(Some),
            temps: BTreeMap::new(),
            eip: st.eip,
            mem: st.mem.clone(),
            fs_base: st.fs_base,
            gs_base: st.gs_base,
        }
    }

    /// The substitution of bit-vector location variables of `e` by the state.
    fn bv_subst(&self, pool: &ExprPool, tr: &Z3Translator, e: ExprId) -> Vec<(BV, BV)> {
        let mut out = Vec::new();
        for v in pool.vars(e) {
            if is_undefined_var(pool, v) {
                continue;
            }
            let Some(Z3Term::Bv(b)) = tr.var_term(v) else {
                continue;
            };
            let value = match Loc::of_var(pool, v).expect("location variable") {
                Loc::Reg(r) => Some(bv(u64::from(self.regs[r.index()]), 32)),
                // An undefined flag stays a free constant.
                Loc::Flag(f) => self.flags[f.index()].map(|x| bv(u64::from(x), 1)),
                Loc::Temp(t) => Some(bv(u64::from(self.temps[&t.0]), 32)),
                Loc::Eip => Some(bv(u64::from(self.eip), 32)),
                Loc::FsBase => Some(bv(u64::from(self.fs_base), 32)),
                Loc::GsBase => Some(bv(u64::from(self.gs_base), 32)),
                Loc::Mem | Loc::Fpu => unreachable!(),
            };
            if let Some(value) = value {
                out.push((b.clone(), value));
            }
        }
        out
    }

    /// Evaluates `e` by substituting the state into its Z3 term.
    fn eval(&self, pool: &ExprPool, tr: &mut Z3Translator, e: ExprId) -> Z3Value {
        let term = tr.translate(pool, e);
        let subst = self.bv_subst(pool, tr, e);
        let bvs: Vec<(&BV, &BV)> = subst.iter().map(|(a, b)| (a, b)).collect();
        let numeral = |t: &BV| t.substitute(&bvs).simplify().as_u64();
        // Bytes that loads and stores may touch.
        let mut touched = BTreeSet::new();
        let mut stored = Vec::new();
        for s in pool.subterms(&[e]) {
            let (n, is_store) = match pool.op(s) {
                Op::Load(n) => (u32::from(n), false),
                Op::Store => (pool.width(pool.args(s)[2]) / 8, true),
                _ => continue,
            };
            let a = tr.translate(pool, pool.args(s)[1]);
            let a = numeral(a.bv()).expect("address is a numeral") as u32;
            for i in 0..n {
                touched.insert(a.wrapping_add(i));
                if is_store {
                    stored.push(a.wrapping_add(i));
                }
            }
        }
        let mut mems = Vec::new();
        if let Some(mv) = pool.lookup_var("mem") {
            if let Some(Z3Term::Mem(m)) = tr.var_term(mv) {
                // Unknown bytes come from a free array, so that every store shows.
                let mut small =
                    Array::new_const("unknown", &z3::Sort::bitvector(32), &z3::Sort::bitvector(8));
                for a in &touched {
                    if let Some(&b) = self.mem.get(a) {
                        small = small.store(&bv(u64::from(*a), 32), &bv(u64::from(b), 8));
                    }
                }
                mems.push((m.clone(), small));
            }
        }
        let mems: Vec<(&Array, &Array)> = mems.iter().map(|(a, b)| (a, b)).collect();
        match term {
            Z3Term::Bv(b) => {
                Z3Value::Bits(b.substitute(&bvs).substitute(&mems).simplify().as_u64())
            }
            Z3Term::Mem(m) => {
                let before = mems[0].1.simplify();
                let after = m.substitute(&bvs).substitute(&mems).simplify();
                // An untaken store (e.g. `rep` with ecx = 0) leaves the array as it was.
                let stored = if after == before { Vec::new() } else { stored };
                Z3Value::Mem(after, stored)
            }
        }
    }

    /// Runs the parts once; returns the eip assigned, or a divide error.
    fn run(
        &mut self,
        pool: &ExprPool,
        tr: &mut Z3Translator,
        lifted: &Lifted,
    ) -> Result<Option<u32>, ()> {
        let mut eip = None;
        for part in &lifted.parts {
            if let Some(c) = part.fault {
                if let Z3Value::Bits(Some(1)) = self.eval(pool, tr, c) {
                    return Err(());
                }
            }
            let mut news = Vec::new();
            for e in &part.effects {
                let new = match e.value {
                    Value::Undefined => None,
                    Value::Expr(x) => Some(self.eval(pool, tr, x)),
                };
                news.push((e.dst, new));
            }
            for (dst, new) in news {
                match (dst, new) {
                    (Loc::Flag(f), None) => self.flags[f.index()] = None,
                    (Loc::Flag(f), Some(Z3Value::Bits(v))) => {
                        self.flags[f.index()] = v.map(|v| v == 1)
                    }
                    (Loc::Reg(r), Some(Z3Value::Bits(Some(v)))) => self.regs[r.index()] = v as u32,
                    (Loc::Temp(x), Some(Z3Value::Bits(Some(v)))) => {
                        self.temps.insert(x.0, v as u32);
                    }
                    (Loc::Eip, Some(Z3Value::Bits(Some(v)))) => eip = Some(v as u32),
                    (Loc::Mem, Some(Z3Value::Mem(m, stored))) => {
                        for a in stored {
                            let b = m.select(&bv(u64::from(a), 32)).as_bv().unwrap();
                            let b = b.simplify().as_u64().expect("memory byte is a numeral");
                            self.mem.insert(a, b as u8);
                        }
                    }
                    (dst, _) => panic!("{}: no numeral for {dst}", lifted.original),
                }
            }
        }
        Ok(eip)
    }
}

/// Runs `lifted` through Z3.
fn z3_run(pool: &ExprPool, tr: &mut Z3Translator, lifted: &Lifted, st: &MachineState) -> Outcome {
    let mut z = Z3State::new(st);
    let ins = &lifted.original;
    let eip = loop {
        z.temps.clear();
        let Ok(eip) = z.run(pool, tr, lifted) else {
            return Outcome::DivideError;
        };
        let target = eip.unwrap_or(ins.next_ip32());
        if !(lifted.is_rep_loop() && target == ins.ip32()) {
            break target;
        }
    };
    let flags: BTreeMap<Flag, bool> = Flag::ALL
        .iter()
        .filter_map(|&f| z.flags[f.index()].map(|v| (f, v)))
        .collect();
    let undefined = Flag::ALL
        .iter()
        .filter(|f| z.flags[f.index()].is_none())
        .copied()
        .collect();
    Outcome::Done {
        regs: z.regs,
        flags,
        undefined,
        eip,
        mem: z.mem,
    }
}

/// The concrete evaluator's outcome, `None` when the state reads unknown memory.
fn exec_run(pool: &mut ExprPool, lifted: &Lifted, st: &MachineState) -> Option<Outcome> {
    match execute(pool, lifted, st) {
        Ok(x) => Some(Outcome::Done {
            regs: x.state.regs,
            flags: Flag::ALL
                .iter()
                .filter(|f| !x.undefined.contains(f))
                .map(|&f| (f, x.state.flag(f)))
                .collect(),
            undefined: x.undefined,
            eip: x.state.eip,
            mem: x.state.mem,
        }),
        Err(ExecError::DivideError { .. }) => Some(Outcome::DivideError),
        Err(ExecError::UnknownMemory(_)) => None,
        Err(e) => panic!("{}: {e}", lifted.original),
    }
}

fn check(pool: &mut ExprPool, tr: &mut Z3Translator, ins: &Instruction, st: &MachineState) -> bool {
    let lifted = lift(pool, ins).unwrap_or_else(|e| panic!("{ins}: {e}"));
    let Some(concrete) = exec_run(pool, &lifted, st) else {
        return false;
    };
    let symbolic = z3_run(pool, tr, &lifted, st);
    if concrete != symbolic {
        panic!(
            "{ins} ({:?}) from regs {:x?} flags {:?}: execute and Z3 disagree: {}",
            ins.code(),
            st.regs,
            st.flags,
            difference(&concrete, &symbolic)
        );
    }
    true
}

/// What differs between two outcomes, briefly.
fn difference(a: &Outcome, b: &Outcome) -> String {
    match (a, b) {
        (
            Outcome::Done {
                regs: r1,
                flags: f1,
                undefined: u1,
                eip: e1,
                mem: m1,
            },
            Outcome::Done {
                regs: r2,
                flags: f2,
                undefined: u2,
                eip: e2,
                mem: m2,
            },
        ) => {
            let mut out = Vec::new();
            if r1 != r2 {
                out.push(format!("regs {r1:x?} vs {r2:x?}"));
            }
            if f1 != f2 || u1 != u2 {
                out.push(format!(
                    "flags {f1:?} undefined {u1:?} vs {f2:?} undefined {u2:?}"
                ));
            }
            if e1 != e2 {
                out.push(format!("eip {e1:#x} vs {e2:#x}"));
            }
            let keys: BTreeSet<u32> = m1.keys().chain(m2.keys()).copied().collect();
            let bytes: Vec<String> = keys
                .into_iter()
                .filter(|k| m1.get(k) != m2.get(k))
                .take(8)
                .map(|k| format!("[{k:#x}] {:?} vs {:?}", m1.get(&k), m2.get(&k)))
                .collect();
            if !bytes.is_empty() {
                out.push(format!("memory {}", bytes.join(", ")));
            }
            out.join("; ")
        }
        _ => format!("{a:?} vs {b:?}").chars().take(300).collect(),
    }
}

#[test]
fn execute_agrees_with_z3_on_every_supported_form() {
    let per_form = common::count("WIPER_Z3_STATES", 12);
    let mut rng = Rng::new(0x5eed);
    let mut tr = Z3Translator::new();
    let mut pool = ExprPool::new();
    let mut starved = Vec::new();
    for code in supported_codes() {
        let mut done = 0;
        for _ in 0..per_form * 20 {
            if done == per_form {
                break;
            }
            let inst = Instance::generate(code, &mut rng).unwrap_or_else(|e| panic!("{e}"));
            // Every other state of a division traps.
            let mut cpu = inst.unchecked_state(&mut rng);
            if done % 2 == 1 {
                inst.make_division_trap(&mut cpu, &mut rng);
            }
            if inst.check_accesses(&cpu).is_err() {
                continue;
            }
            let st = common::to_machine(&cpu);
            if check(&mut pool, &mut tr, &inst.ins, &st) {
                done += 1;
            }
        }
        if done < per_form {
            starved.push(format!("{code:?}: {done}"));
        }
    }
    assert!(starved.is_empty(), "too few usable states: {starved:?}");
}
