//! The proofs are real: every sequence the synthesizer returns is run on the
//! processor (through `wiper-oracle`) from random machine states, and the
//! live registers, live flags and the memory window it leaves are compared
//! with the goal's formulas evaluated on the same states.
//!
//! Goals come from random instances (`wiper_sem::sample::instance`) of the
//! supported data-processing forms: memory operands are re-addressed to
//! `[esp+d]` or to `[ebp+d]` with `ebp` static as `esp+c` (so accesses land
//! in the oracle's window), a random half of the registers the instruction
//! reads are static (their value substituted into the formulas; on the CPU
//! they hold garbage, so a sequence that reads one is caught), and the live
//! registers and flags are random. Effects on dead registers are dropped, as
//! the specializer would.
//!
//! `cpu_random_goals` runs [`GOALS`] goals (seconds in a debug build);
//! `cpu_random_goals_long` (ignored) runs 3000 with the default budget
//! (`WIPER_SYNTH_SEED=N` picks another seed). `WIPER_SYNTH_SHOW_FAILED=1`
//! lists the goals left unsolved.

mod common;

use std::sync::Mutex;

use iced_x86::{
    Code, Decoder, DecoderOptions, Encoder, Instruction, InstructionInfoFactory, Mnemonic,
    OpAccess, OpKind, Register,
};
use wiper_oracle::{CpuState, Outcome, Rng, SCRATCH_BASE};
use wiper_qfbv::{Env, ExprId, ExprPool, Value, VarId};
use wiper_sem::sample;
use wiper_sem::{loc_var, supported_codes, Flag, Loc, Reg};
use wiper_synth::{CandidateKind, Goal, Synthesizer};

use common::{static_expr, text, Static};

/// Goals in the default run.
const GOALS: usize = 300;
/// States each solved goal is run from.
const STATES: usize = 24;
/// Bytes in the oracle's window (`esp` lands in its middle half).
const WINDOW: usize = 512;

/// One harness at a time (parallel harness processes slow each other down).
static ORACLE: Mutex<()> = Mutex::new(());

fn run(seq: &[Instruction], states: &[CpuState]) -> Vec<Outcome> {
    let _one = ORACLE.lock().unwrap_or_else(|e| e.into_inner());
    wiper_oracle::run_instructions(seq, states).expect("harness runs")
}

/// Forms the test draws from: data processing, stack and flag
/// instructions (no control transfers, string loops, divisions, barriers,
/// `pushf`/`popf`, or bit tests into memory).
fn codes() -> Vec<Code> {
    supported_codes()
        .iter()
        .copied()
        .filter(|c| {
            use Mnemonic as M;
            let m = c.mnemonic();
            !c.is_string_instruction()
                && !c.is_jcc_short_or_near()
                && !matches!(
                    m,
                    M::Jmp
                        | M::Call
                        | M::Ret
                        | M::Div
                        | M::Idiv
                        | M::Int
                        | M::Hlt
                        | M::Loop
                        | M::Loope
                        | M::Loopne
                        | M::Jecxz
                        | M::Pushfd
                        | M::Pushf
                        | M::Popfd
                        | M::Popf
                        | M::Nop
                        | M::Endbr32
                        | M::Bt
                        | M::Bts
                        | M::Btr
                        | M::Btc
                )
        })
        .collect()
}

/// Encodes and decodes `ins` (after its operands were edited).
fn normal(ins: &Instruction) -> Option<Instruction> {
    let mut e = Encoder::new(32);
    e.encode(ins, common::IP).ok()?;
    let b = e.take_buffer();
    let d = Decoder::with_ip(32, &b, common::IP, DecoderOptions::NONE).decode();
    (d.code() == ins.code() && d.len() == b.len()).then_some(d)
}

/// A random goal: the instance, the static registers and the live sets.
struct Case {
    ins: Instruction,
    statics: Vec<(Reg, Static)>,
    live_regs: u8,
    live_flags: u8,
    keep_dead_flag_effects: bool,
    /// Whether the goal names its original instruction (without it, only
    /// direct candidates, splitting and search can answer).
    hint: bool,
}

fn case(rng: &mut Rng, sampler: &mut Rng, codes: &[Code]) -> Option<Case> {
    let code = codes[rng.below(codes.len() as u32) as usize];
    let mut ins = sample::instance(code, common::IP as u32, sampler);
    let mut statics: Vec<(Reg, Static)> = Vec::new();
    let has_mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    let frame = rng.chance(1, 2);
    if has_mem && ins.mnemonic() != Mnemonic::Lea || ins.mnemonic() == Mnemonic::Leave {
        let disp = rng.range(0, 64) as i32 - 32;
        if ins.mnemonic() != Mnemonic::Leave {
            ins.set_memory_base(if frame { Register::EBP } else { Register::ESP });
            ins.set_memory_index(Register::None);
            ins.set_memory_index_scale(1);
            ins.set_memory_displacement32(disp as u32);
            ins.set_memory_displ_size(1);
            ins = normal(&ins)?;
        }
        if frame || ins.mnemonic() == Mnemonic::Leave {
            let c = (rng.range(0, 64) as i32 - 32) as u32 & !3;
            statics.push((Reg::Ebp, Static::EspPlus(c)));
        }
    }
    // Static registers among those read.
    let mut factory = InstructionInfoFactory::new();
    let mut read: Vec<Reg> = Vec::new();
    for u in factory.info(&ins).used_registers() {
        if !matches!(
            u.access(),
            OpAccess::Read | OpAccess::ReadWrite | OpAccess::CondRead | OpAccess::ReadCondWrite
        ) {
            continue;
        }
        if let Some(r) = Reg::from_iced(u.register()) {
            if r != Reg::Esp && !read.contains(&r) {
                read.push(r);
            }
        }
    }
    for r in read {
        if statics.iter().any(|s| s.0 == r) || !rng.chance(1, 2) {
            continue;
        }
        let v = match rng.below(4) {
            0 => rng.below(4),
            1 => rng.below(64),
            2 => 1 << rng.below(32),
            _ => rng.next_u32(),
        };
        statics.push((r, Static::Const(v)));
    }
    let live_flags = match rng.below(4) {
        0 => 0,
        1 => 0x7f,
        _ => rng.below(128) as u8,
    };
    Some(Case {
        ins,
        statics,
        live_regs: rng.next_u32() as u8,
        live_flags,
        keep_dead_flag_effects: rng.chance(1, 2),
        hint: !rng.chance(1, 4),
    })
}

/// The machine state of an oracle state, as formula variables.
struct CpuEnv<'a> {
    pool: &'a ExprPool,
    s: &'a CpuState,
}

impl Env for CpuEnv<'_> {
    fn bv(&self, var: VarId) -> Option<u64> {
        match Loc::from_var_name(self.pool.var_name(var))? {
            Loc::Reg(r) => Some(u64::from(self.s.regs[r.index()])),
            Loc::Flag(f) => Some(u64::from(self.s.eflags & f.eflags_bit() != 0)),
            _ => None,
        }
    }

    fn mem_byte(&self, _var: VarId, addr: u32) -> Option<u8> {
        self.s.read_u8(addr)
    }
}

/// Differences between the processor's result and the goal on one state.
fn compare(pool: &mut ExprPool, goal: &Goal, input: &CpuState, out: &Outcome) -> Vec<String> {
    let reg_vars = Reg::ALL.map(|r| loc_var(pool, Loc::Reg(r)));
    let flag_vars = Flag::ALL.map(|f| loc_var(pool, Loc::Flag(f)));
    let mem_var = loc_var(pool, Loc::Mem);
    let pool = &*pool;
    let env = CpuEnv { pool, s: input };
    let mut diffs = Vec::new();
    if let Some(f) = &out.fault {
        return vec![format!("fault {f:?}")];
    }
    let value = |l: Loc, var: ExprId| goal.effects.iter().find(|e| e.0 == l).map_or(var, |e| e.1);
    for r in Reg::ALL {
        let l = Loc::Reg(r);
        let listed = goal.effects.iter().any(|e| e.0 == l);
        if goal.live_regs & 1 << r.index() == 0 && r != Reg::Esp && !listed {
            continue;
        }
        let var = reg_vars[r.index()];
        let want = pool.eval(value(l, var), &env).expect("registers evaluate");
        let got = out.state.regs[r.index()];
        if want.as_u64() != Some(u64::from(got)) {
            diffs.push(format!(
                "{}: cpu {got:#x}, goal {:#x}",
                r.name(),
                want.as_u64().unwrap_or(0)
            ));
        }
    }
    for f in Flag::ALL {
        if goal.live_flags & 1 << f.index() == 0 {
            continue;
        }
        let var = flag_vars[f.index()];
        // A flag the goal leaves undefined on this state evaluates to an
        // error: any value is right.
        let Ok(want) = pool.eval(value(Loc::Flag(f), var), &env) else {
            continue;
        };
        let got = out.state.eflags & f.eflags_bit() != 0;
        if want.as_u64() != Some(u64::from(got)) {
            diffs.push(format!(
                "{}: cpu {}, goal {:?}",
                f.name(),
                u8::from(got),
                want.as_u64()
            ));
        }
    }
    match pool.eval(value(Loc::Mem, mem_var), &env) {
        Ok(Value::Mem(m)) => {
            for (i, &got) in out.state.mem.iter().enumerate() {
                let addr = SCRATCH_BASE + i as u32;
                let want = m.read(&env, addr);
                if want != Some(got) {
                    diffs.push(format!("mem[{addr:#x}]: cpu {got:#04x}, goal {want:?}"));
                }
            }
            let end = SCRATCH_BASE + out.state.mem.len() as u32;
            if m.writes()
                .keys()
                .any(|&a| !(SCRATCH_BASE..end).contains(&a))
            {
                diffs.push("goal writes outside the window".to_owned());
            }
        }
        other => diffs.push(format!("memory does not evaluate: {other:?}")),
    }
    diffs
}

fn random_goals(goals: usize, budget: Option<usize>, seed: u64) {
    let codes = codes();
    let mut rng = Rng::new(seed);
    let mut sampler = Rng::new(seed ^ 0x5eed);
    let mut synth = Synthesizer::new(2000);
    if let Some(b) = budget {
        synth.set_budget(b);
    }
    let mut solved = 0usize;
    let mut tried = 0usize;
    let mut failures: Vec<String> = Vec::new();
    let mut by_kind = [0usize; 7];
    while tried < goals {
        let Some(c) = case(&mut rng, &mut sampler, &codes) else {
            continue;
        };
        let mut pool = ExprPool::new();
        let subst: Vec<(Reg, ExprId)> = c
            .statics
            .iter()
            .map(|&(r, s)| (r, static_expr(&mut pool, s)))
            .collect();
        let Some(fx) = wiper_synth::instruction_effects(&mut pool, &c.ins, &subst) else {
            continue;
        };
        tried += 1;
        let mut live_regs = c.live_regs;
        for (r, _) in &c.statics {
            if !fx.iter().any(|(l, _)| *l == Loc::Reg(*r)) {
                live_regs &= !(1 << r.index());
            }
        }
        let effects: Vec<(Loc, ExprId)> = fx
            .into_iter()
            .filter(|(l, _)| match l {
                Loc::Reg(r) => live_regs & 1 << r.index() != 0 || *r == Reg::Esp,
                Loc::Flag(f) => c.keep_dead_flag_effects || c.live_flags & 1 << f.index() != 0,
                _ => true,
            })
            .collect();
        let hints: Vec<(Reg, u32)> = c
            .statics
            .iter()
            .map(|&(r, s)| (r, if let Static::Const(v) = s { v } else { 0 }))
            .collect();
        let goal = Goal {
            effects,
            live_regs,
            live_flags: c.live_flags,
            original: c.hint.then_some(&c.ins),
            static_regs: &hints,
        };
        let Some(s) = synth.synthesize_detailed(&pool, &goal) else {
            if std::env::var_os("WIPER_SYNTH_SHOW_FAILED").is_some() {
                eprintln!(
                    "unsolved: {}{} with {:?} (live regs {live_regs:#x}, flags {:#x})",
                    text(&[c.ins]),
                    if c.hint { "" } else { " (no hint)" },
                    c.statics,
                    c.live_flags
                );
            }
            continue;
        };
        solved += 1;
        by_kind[s.kind.index()] += 1;
        let states: Vec<CpuState> = (0..STATES)
            .map(|_| CpuState::random(&mut rng, WINDOW))
            .collect();
        let outs = if s.instructions.is_empty() {
            states
                .iter()
                .map(|st| Outcome {
                    state: st.clone(),
                    next_eip: 0,
                    fault: None,
                })
                .collect()
        } else {
            run(&s.instructions, &states)
        };
        for (st, out) in states.iter().zip(&outs) {
            let d = compare(&mut pool, &goal, st, out);
            if !d.is_empty() {
                failures.push(format!(
                    "{}{} with {:?} (live regs {:#x}, flags {:#x}) -> {} [{}]:\n    {}",
                    text(&[c.ins]),
                    if c.hint { "" } else { " (no hint)" },
                    c.statics,
                    live_regs,
                    c.live_flags,
                    text(&s.instructions),
                    s.kind.name(),
                    d.join("\n    ")
                ));
                break;
            }
        }
    }
    let st = synth.stats();
    eprintln!(
        "{tried} goals, {solved} solved; by kind: {}; {st:?}",
        CandidateKind::ALL
            .iter()
            .map(|k| format!("{} {}", k.name(), by_kind[k.index()]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} wrong sequences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Observed 266 of 300 goals solved (89%) on 2026-12-03; the floor, 75%
    // of the goals, is 85% of that.
    assert!(
        solved * 4 >= tried * 3,
        "only {solved} of {tried} goals solved"
    );
}

#[test]
fn cpu_random_goals() {
    random_goals(GOALS, Some(300), 0x0cc5_2015);
}

#[test]
#[ignore = "long: 3000 goals with the default budget"]
fn cpu_random_goals_long() {
    let seed = std::env::var("WIPER_SYNTH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0b5e_55ed);
    random_goals(3000, None, seed);
}
