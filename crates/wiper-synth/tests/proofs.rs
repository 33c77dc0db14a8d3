//! Only what Z3 proves is offered as proved. Each goal here is built so that
//! its cheapest candidates (`mov eax, 0` and kin) agree with it on every
//! random test state and are wrong on one input, the witness: the only
//! thing between them and the residual is Z3's verdict. A sequence the
//! synthesizer returns must carry a proof that holds, and must compute the
//! goal's value at the witness on the processor (wiper-oracle), which is
//! independent of both the synthesizer and Z3.

mod common;

use iced_x86::Instruction;
use wiper_oracle::CpuState;
use wiper_qfbv::{ExprId, ExprPool};
use wiper_sem::{loc_var, Loc, Reg};
use wiper_synth::{Goal, Synthesizer};

/// `eax := [test(eax)]` as a 32-bit 0 or 1, flags dead.
fn flag_goal(pool: &mut ExprPool, test: impl FnOnce(&mut ExprPool, ExprId) -> ExprId) -> ExprId {
    let eax = loc_var(pool, Loc::Reg(Reg::Eax));
    let hit = test(pool, eax);
    let (one, zero) = (pool.bv(1, 32), pool.bv(0, 32));
    pool.ite(hit, one, zero)
}

/// Runs `seq` on the processor from a state with `eax = witness` and
/// returns `eax` after it.
fn eax_after(seq: &[Instruction], witness: u32) -> u32 {
    let mut state = CpuState::new();
    state.regs[Reg::Eax.index()] = witness;
    let out = wiper_oracle::run_instructions(seq, &[state]).expect("the oracle runs");
    let outcome = out.into_iter().next().expect("one outcome");
    assert!(
        outcome.fault.is_none(),
        "{seq:?} faults: {:?}",
        outcome.fault
    );
    outcome.state.regs[Reg::Eax.index()]
}

/// Synthesizes `eax := value` (all registers live, flags dead) and checks
/// whatever comes back: a proof that holds, and the right `eax` at
/// `witness` on the processor, where the goal is 1.
fn check_offer(synth: &mut Synthesizer, pool: &ExprPool, value: ExprId, witness: u32) {
    let goal = Goal {
        effects: vec![(Loc::Reg(Reg::Eax), value)],
        live_regs: 0xff,
        live_flags: 0,
        original: None,
        static_regs: &[],
    };
    if let Some(s) = synth.synthesize_detailed(pool, &goal) {
        assert!(
            s.proof.holds(),
            "offered `{}` with verdicts {:?}",
            common::text(&s.instructions),
            s.proof.verdicts
        );
        assert_eq!(
            eax_after(&s.instructions, witness),
            1,
            "offered `{}` as proved, but it is wrong at the witness",
            common::text(&s.instructions)
        );
    }
}

/// `eax == 0x12345678`: no random test state hits the constant, so
/// `xor eax, eax` survives evaluation; Z3 refutes it quickly.
#[test]
fn a_refuted_candidate_is_never_offered_as_proved() {
    let witness = 0x1234_5678;
    let mut pool = ExprPool::new();
    let value = flag_goal(&mut pool, |p, eax| {
        let k = p.bv(u64::from(witness), 32);
        p.eq(eax, k)
    });
    let mut synth = Synthesizer::new(2_000);
    check_offer(&mut synth, &pool, value, witness);
    assert!(
        synth.stats().proofs_refuted >= 1,
        "the goal must make Z3 refute a candidate: {:?}",
        synth.stats()
    );
}

/// `mix(eax) == mix(witness)` for a well-mixed bijection: refuting a
/// constant candidate means inverting the mixer, which Z3 cannot do in
/// 50 ms (it took about a minute when this test was written), so the
/// verdicts are `Unknown`.
#[test]
fn an_undecided_candidate_is_never_offered_as_proved() {
    let witness = 0x00c0_ffee;
    let mut pool = ExprPool::new();
    let value = flag_goal(&mut pool, |p, eax| {
        let m = mix(p, eax);
        let k = p.bv(u64::from(mix_value(witness)), 32);
        p.eq(m, k)
    });
    let mut synth = Synthesizer::new(50);
    check_offer(&mut synth, &pool, value, witness);
    assert!(
        synth.stats().proofs_unknown >= 1,
        "the goal must leave Z3 undecided: {:?}",
        synth.stats()
    );
}

/// Two rounds of `lowbias32` as a formula.
fn mix(p: &mut ExprPool, x: ExprId) -> ExprId {
    let mut e = x;
    for _ in 0..2 {
        for (shift, k) in [(16, 0x7feb_352d), (15, 0x846c_a68b)] {
            let s = p.bv(shift, 32);
            let sh = p.lshr(e, s);
            e = p.xor(e, sh);
            let k = p.bv(k, 32);
            e = p.mul(e, k);
        }
        let s = p.bv(16, 32);
        let sh = p.lshr(e, s);
        e = p.xor(e, sh);
    }
    e
}

/// [`mix`] on a concrete value.
fn mix_value(mut x: u32) -> u32 {
    for _ in 0..2 {
        x ^= x >> 16;
        x = x.wrapping_mul(0x7feb_352d);
        x ^= x >> 15;
        x = x.wrapping_mul(0x846c_a68b);
        x ^= x >> 16;
    }
    x
}
