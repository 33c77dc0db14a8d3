//! Odd input never panics: random (often ill-formed) goals, variables whose
//! names clash with location names at other sorts, static `esp`, duplicate
//! hints, and originals of every supported form (branches, string loops,
//! divisions, barriers) all give an answer or `None`.

mod common;

use wiper_oracle::Rng;
use wiper_qfbv::{ExprId, ExprPool, Op, Sort};
use wiper_sem::sample;
use wiper_sem::{barrier_codes, loc_var, supported_codes, Flag, Loc, Reg, Temp};
use wiper_synth::{Goal, Synthesizer};

/// A random expression of width `w` (or memory) over locations and a few
/// foreign variables.
fn expr(p: &mut ExprPool, rng: &mut Rng, sort: Sort, depth: u32) -> ExprId {
    let Sort::Bv(w) = sort else {
        let m = loc_var(p, Loc::Mem);
        if depth == 0 || rng.chance(1, 3) {
            return m;
        }
        let a = expr(p, rng, Sort::Bv(32), depth - 1);
        let vw = 8 * (1 + rng.below(4));
        let v = expr(p, rng, Sort::Bv(vw), depth - 1);
        return p.store(m, a, v);
    };
    if depth == 0 || rng.chance(1, 4) {
        return match (rng.below(4), w) {
            (0, 32) => loc_var(p, Loc::Reg(Reg::ALL[rng.below(8) as usize])),
            (1, 1) => loc_var(p, Loc::Flag(Flag::ALL[rng.below(7) as usize])),
            (2, _) => p.var(&format!("x{w}"), w),
            _ => p.bv(u64::from(rng.next_u32()), w),
        };
    }
    let a = expr(p, rng, Sort::Bv(w), depth - 1);
    let b = expr(p, rng, Sort::Bv(w), depth - 1);
    let op = [
        Op::Add,
        Op::Sub,
        Op::Mul,
        Op::And,
        Op::Or,
        Op::Xor,
        Op::Shl,
        Op::Lshr,
        Op::Ashr,
        Op::Udiv,
        Op::Srem,
        Op::Rotl,
    ][rng.below(12) as usize];
    match rng.below(5) {
        0 if w <= 32 && w % 8 == 0 => {
            let m = expr(p, rng, Sort::Mem, depth - 1);
            let a = expr(p, rng, Sort::Bv(32), depth - 1);
            p.load(m, a, (w / 8) as u8)
        }
        1 if w > 1 => {
            let c = expr(p, rng, Sort::Bv(1), depth - 1);
            p.ite(c, a, b)
        }
        2 if w == 32 => {
            let n = expr(p, rng, Sort::Bv(8), depth - 1);
            p.zext(n, 32)
        }
        _ => p.mk(op, &[a, b]).expect("well sorted"),
    }
}

#[test]
fn random_goals_never_panic() {
    let mut rng = Rng::new(0x0dd);
    let mut sampler = Rng::new(0x0dd);
    let mut codes: Vec<_> = supported_codes().to_vec();
    codes.extend(barrier_codes());
    let mut synth = Synthesizer::new(500);
    synth.set_budget(60);
    synth.set_max_length(2);
    for _ in 0..150 {
        let mut pool = ExprPool::new();
        let mut effects = Vec::new();
        for _ in 0..rng.below(4) {
            let loc = match rng.below(6) {
                0 => Loc::Mem,
                1 => Loc::Flag(Flag::ALL[rng.below(7) as usize]),
                2 if rng.chance(1, 4) => Loc::Temp(Temp(0)),
                3 if rng.chance(1, 4) => Loc::Eip,
                _ => Loc::Reg(Reg::ALL[rng.below(8) as usize]),
            };
            // Mostly the right sort, sometimes not.
            let sort = if rng.chance(1, 8) {
                [Sort::Bv(1), Sort::Bv(8), Sort::Bv(32), Sort::Mem][rng.below(4) as usize]
            } else {
                loc.sort()
            };
            let e = expr(&mut pool, &mut rng, sort, 3);
            effects.push((loc, e));
        }
        let code = codes[rng.below(codes.len() as u32) as usize];
        let ins = sample::instance(code, 0x0804_9000, &mut sampler);
        let statics: Vec<(Reg, u32)> = (0..rng.below(4))
            .map(|_| (Reg::ALL[rng.below(8) as usize], rng.next_u32()))
            .collect();
        let goal = Goal {
            effects,
            live_regs: rng.next_u32() as u8,
            live_flags: rng.next_u32() as u8,
            original: rng.chance(2, 3).then_some(&ins),
            static_regs: &statics,
        };
        let _ = synth.synthesize(&mut pool, &goal);
    }
    let s = synth.stats();
    assert_eq!(s.goals, 150);
    assert_eq!(s.goals_solved + s.goals_failed, 150);
}

#[test]
fn clashing_variable_names_are_refused_not_fatal() {
    let mut synth = Synthesizer::new(500);
    // A caller pool where `t0` and `?cf@1` are bytes and `eax` is memory.
    let mut pool = ExprPool::new();
    let t0 = pool.var("t0", 8);
    let odd = pool.var("?cf@1", 8);
    let sum = pool.add(t0, odd);
    let goal = Goal {
        effects: vec![(Loc::Reg(Reg::Eax), pool.zext(sum, 32))],
        live_regs: 0xff,
        live_flags: 0,
        original: None,
        static_regs: &[],
    };
    assert_eq!(synth.synthesize(&mut pool, &goal), None);
    let mut other = ExprPool::new();
    let m = other.mem_var("eax");
    let a = other.bv(0, 32);
    let l = other.load(m, a, 4);
    let goal = Goal {
        effects: vec![(Loc::Reg(Reg::Ebx), l)],
        live_regs: 0xff,
        live_flags: 0,
        original: None,
        static_regs: &[],
    };
    assert_eq!(synth.synthesize(&mut other, &goal), None);
    // The synthesizer still works afterwards.
    let ins = common::one(|a| a.add(iced_x86::code_asm::eax, iced_x86::code_asm::ebx));
    let mut p = ExprPool::new();
    let (fx, hints) = common::effects(&mut p, &ins, &[(Reg::Ebx, common::Static::Const(2))]);
    let goal = Goal {
        effects: fx,
        live_regs: 0xf7,
        live_flags: 0x7f,
        original: Some(&ins),
        static_regs: &hints,
    };
    let seq = synth.synthesize(&mut p, &goal).expect("solvable");
    assert_eq!(common::text(&seq), "add eax,2");
}

/// What cannot be a candidate has no effects to give: a barrier (`int
/// 0x80`, `hlt`, `ud2`, `int3`: its part has no formulas), a `rep` string
/// loop (its parts are one iteration), a control transfer and an opaque
/// instruction all give `None`, not a short list of effects that would
/// make them look like instructions that do little.
#[test]
fn barriers_loops_transfers_and_opaque_instructions_have_no_effects() {
    use iced_x86::code_asm::{dword_ptr, eax, esp};
    let mut sampler = Rng::new(0xba5);
    let mut refused: Vec<iced_x86::Instruction> = barrier_codes()
        .into_iter()
        .map(|code| sample::instance(code, 0x0804_9000, &mut sampler))
        .collect();
    refused.extend([
        common::one(|a| a.rep().movsb()),
        common::one(|a| a.rep().stosd()),
        common::one(|a| a.repe().cmpsb()),
        common::one(|a| a.jmp(eax)),
        common::one(|a| a.call(dword_ptr(esp))),
        common::one(|a| a.ret()),
        common::one(|a| a.cpuid()),
    ]);
    assert!(refused.len() >= 10, "{refused:?}");
    for ins in &refused {
        let mut pool = ExprPool::new();
        assert_eq!(
            wiper_synth::instruction_effects(&mut pool, ins, &[]),
            None,
            "{}",
            common::text(&[*ins])
        );
    }
    // The same forms without the prefix, or the jump's target as data, do
    // have effects.
    for ins in [
        common::one(|a| a.movsb()),
        common::one(|a| a.stosd()),
        common::one(|a| a.mov(eax, dword_ptr(esp))),
    ] {
        let mut pool = ExprPool::new();
        let fx = wiper_synth::instruction_effects(&mut pool, &ins, &[]);
        assert!(
            fx.is_some_and(|fx| !fx.is_empty()),
            "{}",
            common::text(&[ins])
        );
    }
}
