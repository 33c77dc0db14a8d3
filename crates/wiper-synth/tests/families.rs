//! Each candidate family answers the goals it exists for: a goal that only
//! one family can answer cheaply, with the exact sequence and kind expected.
//! Losing a family (an operator arm, a register form, an operand rewrite)
//! changes the answer or its kind, so these tests fail; the CPU test's
//! overall solve rate would not notice.

mod common;

use common::{effects, one, text, Static};
use iced_x86::code_asm::{byte_ptr, ebx as asm_ebx};
use wiper_qfbv::{ExprId, ExprPool};
use wiper_sem::{loc_var, Loc, Reg};
use wiper_synth::{CandidateKind, Goal, Synthesizer};

/// Every register live, flags dead.
const ALL_REGS: u8 = 0xff;

/// The answer to `eax := value` (no original instruction, flags dead).
fn answer_eax(pool: &ExprPool, value: ExprId) -> (String, CandidateKind) {
    answer(pool, Reg::Eax, value)
}

/// The answer to `target := value` (no original instruction, flags dead),
/// checking that the proof holds and that the statistics count it under
/// its kind and no other.
fn answer(pool: &ExprPool, target: Reg, value: ExprId) -> (String, CandidateKind) {
    let mut synth = Synthesizer::new(2_000);
    let goal = Goal {
        effects: vec![(Loc::Reg(target), value)],
        live_regs: ALL_REGS,
        live_flags: 0,
        original: None,
        static_regs: &[],
    };
    let s = synth.synthesize_detailed(pool, &goal).expect("solvable");
    assert!(s.proof.holds(), "{:?}", s.proof);
    for kind in CandidateKind::ALL {
        let want = u64::from(kind == s.kind);
        assert_eq!(
            synth.stats().solved(kind),
            want,
            "{kind:?}: {:?}",
            synth.stats()
        );
    }
    (text(&s.instructions), s.kind)
}

/// The variable of register `r`.
fn reg(pool: &mut ExprPool, r: Reg) -> ExprId {
    loc_var(pool, Loc::Reg(r))
}

#[test]
fn rotate_by_a_constant_is_one_rol() {
    let mut p = ExprPool::new();
    let (eax, five) = (reg(&mut p, Reg::Eax), p.bv(5, 32));
    let v = p.rotl(eax, five);
    assert_eq!(
        answer_eax(&p, v),
        ("rol eax,5".to_owned(), CandidateKind::Direct)
    );
}

#[test]
fn a_new_second_byte_is_one_move_to_ah() {
    let mut p = ExprPool::new();
    let eax = reg(&mut p, Reg::Eax);
    // (eax[31:16] ++ 0x34) ++ eax[7:0], the form wiper-sem gives `mov ah, 0x34`.
    let (top, low, byte) = (p.extract(eax, 31, 16), p.extract(eax, 7, 0), p.bv(0x34, 8));
    let upper = p.concat(top, byte);
    let v = p.concat(upper, low);
    assert_eq!(
        answer_eax(&p, v),
        ("mov ah,34h".to_owned(), CandidateKind::Direct)
    );
}

#[test]
fn a_sum_of_two_other_registers_is_one_lea() {
    let mut p = ExprPool::new();
    let (ebx, ecx) = (reg(&mut p, Reg::Ebx), reg(&mut p, Reg::Ecx));
    let v = p.add(ebx, ecx);
    assert_eq!(
        answer_eax(&p, v),
        ("lea eax,[ebx+ecx]".to_owned(), CandidateKind::Direct)
    );
}

#[test]
fn xor_of_two_other_registers_is_found_by_the_search() {
    // Into ecx, not eax: the search must know which register each
    // instruction writes (eax is register 0, where shifting a bit either
    // way gives the same mask).
    let mut p = ExprPool::new();
    let (ebx, edx) = (reg(&mut p, Reg::Ebx), reg(&mut p, Reg::Edx));
    let v = p.xor(edx, ebx);
    assert_eq!(
        answer(&p, Reg::Ecx, v),
        ("mov ecx,edx; xor ecx,ebx".to_owned(), CandidateKind::Search)
    );
}

#[test]
fn a_byte_immediate_survives_the_rewrite_of_a_static_address() {
    let mut synth = Synthesizer::new(2_000);
    let ins = one(|a| a.add(byte_ptr(asm_ebx), 0x85));
    let mut pool = ExprPool::new();
    let (fx, hints) = effects(&mut pool, &ins, &[(Reg::Ebx, Static::Const(0x1000))]);
    let goal = Goal {
        effects: fx,
        live_regs: ALL_REGS & !(1 << Reg::Ebx.index()),
        live_flags: 0,
        original: Some(&ins),
        static_regs: &hints,
    };
    let s = synth.synthesize_detailed(&pool, &goal).expect("solvable");
    assert_eq!(
        (text(&s.instructions).as_str(), s.kind),
        ("add byte [1000h],85h", CandidateKind::Rewritten)
    );
}

#[test]
fn a_product_plus_a_third_register_takes_three_instructions() {
    let mut p = ExprPool::new();
    let (ebx, ecx, edx) = (
        reg(&mut p, Reg::Ebx),
        reg(&mut p, Reg::Ecx),
        reg(&mut p, Reg::Edx),
    );
    let prod = p.mul(ecx, edx);
    let v = p.add(prod, ebx);
    assert_eq!(
        answer_eax(&p, v),
        (
            "mov eax,ecx; imul eax,edx; add eax,ebx".to_owned(),
            CandidateKind::Search
        )
    );
}

#[test]
fn a_copy_of_another_register_is_one_direct_mov() {
    let mut p = ExprPool::new();
    let ebx = reg(&mut p, Reg::Ebx);
    assert_eq!(
        answer_eax(&p, ebx),
        ("mov eax,ebx".to_owned(), CandidateKind::Direct)
    );
}

#[test]
fn the_search_stops_at_the_length_it_is_given() {
    // `ecx * edx + ebx` takes three instructions (the test above); with
    // sequences of at most two there is no answer, and with three again
    // the same one.
    let mut p = ExprPool::new();
    let (ebx, ecx, edx) = (
        reg(&mut p, Reg::Ebx),
        reg(&mut p, Reg::Ecx),
        reg(&mut p, Reg::Edx),
    );
    let prod = p.mul(ecx, edx);
    let v = p.add(prod, ebx);
    let goal = Goal {
        effects: vec![(Loc::Reg(Reg::Eax), v)],
        live_regs: ALL_REGS,
        live_flags: 0,
        original: None,
        static_regs: &[],
    };
    let mut synth = Synthesizer::new(2_000);
    synth.set_max_length(2);
    let short = synth.synthesize_detailed(&p, &goal);
    assert!(
        short.as_ref().is_none_or(|s| s.instructions.len() <= 2),
        "{short:?}"
    );
    synth.set_max_length(3);
    let long = synth.synthesize_detailed(&p, &goal).expect("solvable");
    assert_eq!(long.instructions.len(), 3);
}

#[test]
fn candidate_kinds_have_distinct_names() {
    let names: Vec<&str> = CandidateKind::ALL.iter().map(|k| k.name()).collect();
    for (kind, name) in CandidateKind::ALL.iter().zip(&names) {
        assert_eq!(format!("{kind:?}").to_lowercase(), *name);
    }
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "{names:?}");
}

/// The answer to the goal of `ins` with `ecx` static (the divisor) and
/// `edx` replaced by `high` (0 after `xor edx,edx`, the sign of `eax`
/// after `cdq`), every register but `ecx` live.
fn division(ins: &iced_x86::Instruction, divisor: u32, signed: bool) -> (String, CandidateKind) {
    division_live(ins, divisor, signed, true)
}

/// The effects of the division `ins` with `divisor` static in its
/// register, after `cdq` when `signed` (`edx` the sign of `eax`), else
/// with `edx` 0.
fn division_effects(
    pool: &mut ExprPool,
    ins: &iced_x86::Instruction,
    (register, divisor): (Reg, u32),
    signed: bool,
) -> Vec<(wiper_sem::Loc, wiper_qfbv::ExprId)> {
    let high = if signed {
        let eax = reg(pool, Reg::Eax);
        let k = pool.bv(31, 32);
        pool.ashr(eax, k)
    } else {
        pool.bv(0, 32)
    };
    let d = pool.bv(u64::from(divisor), 32);
    wiper_synth::instruction_effects(pool, ins, &[(register, d), (Reg::Edx, high)])
        .expect("liftable")
}

/// [`division`] with `edx` (the remainder) live or dead.
fn division_live(
    ins: &iced_x86::Instruction,
    divisor: u32,
    signed: bool,
    remainder: bool,
) -> (String, CandidateKind) {
    let mut pool = ExprPool::new();
    let fx = division_effects(&mut pool, ins, (Reg::Ecx, divisor), signed);
    let edx = 1u8 << Reg::Edx.index();
    let fx = fx
        .into_iter()
        .filter(|(l, _)| remainder || *l != wiper_sem::Loc::Reg(Reg::Edx))
        .collect();
    let mut live_regs = ALL_REGS & !(1 << Reg::Ecx.index());
    if !remainder {
        live_regs &= !edx;
    }
    let mut synth = Synthesizer::new(60_000);
    let goal = Goal {
        effects: fx,
        live_regs,
        live_flags: 0,
        original: Some(ins),
        static_regs: &[(Reg::Ecx, divisor)],
    };
    let s = synth.synthesize_detailed(&pool, &goal).expect("solvable");
    assert!(s.proof.holds(), "{:?}", s.proof);
    (text(&s.instructions), s.kind)
}

#[test]
fn unsigned_division_by_a_static_divisor_multiplies_by_a_magic_number() {
    let div = one(|a| a.div(iced_x86::code_asm::ecx));
    assert_eq!(
        division(&div, 10, false),
        (
            "mov ecx,eax; mov edx,0CCCCCCCDh; mul edx; mov eax,edx; shr eax,3; \
             imul edx,eax,0Ah; neg edx; add edx,ecx"
                .to_owned(),
            CandidateKind::Divide
        )
    );
    // A 33-bit magic number: the long form.
    let (seq, kind) = division(&div, 7, false);
    assert_eq!(kind, CandidateKind::Divide);
    assert!(seq.contains("mov edx,24924925h; mul edx"), "{seq}");
}

#[test]
fn signed_division_by_a_static_divisor_multiplies_by_a_magic_number() {
    // The quotient alone (`int / d`, the remainder dead).
    let idiv = one(|a| a.idiv(iced_x86::code_asm::ecx));
    for (d, magic) in [
        (7u32, "92492493h"),
        (10, "66666667h"),
        ((-3i32) as u32, "55555556h"),
    ] {
        let (seq, kind) = division_live(&idiv, d, true, false);
        assert_eq!(kind, CandidateKind::Divide, "{d}: {seq}");
        assert!(
            seq.contains(&format!("mov edx,{magic}; imul edx")),
            "{d}: {seq}"
        );
        assert!(!seq.contains("div"), "{seq}");
    }
    // A power of two: shifts.
    let (seq, kind) = division_live(&idiv, 8, true, false);
    assert_eq!(kind, CandidateKind::Divide);
    assert!(!seq.contains("mul") && !seq.contains("div"), "{seq}");
}

/// Divisors of every size, small primes, decimal powers, seconds in a day,
/// negative ones.
const DIVISORS: [u32; 21] = [
    3,
    5,
    6,
    7,
    9,
    10,
    11,
    12,
    13,
    25,
    60,
    100,
    641,
    1000,
    3600,
    86400,
    1_000_000,
    0x7fff_ffff,
    123_456_789,
    (-7i32) as u32,
    (-10i32) as u32,
];

#[test]
fn signed_remainder_is_proved_from_the_proved_quotient() {
    // `idiv` leaves both; the remainder `x - q*d` is proved once the
    // quotient is, with the quotient proved equal to the goal's as a lemma.
    let idiv = one(|a| a.idiv(iced_x86::code_asm::ecx));
    for d in DIVISORS.into_iter().chain([16, (-3i32) as u32]) {
        let (seq, kind) = division(&idiv, d, true);
        assert_eq!(kind, CandidateKind::Divide, "{d}: {seq}");
        assert!(!seq.contains("div"), "{seq}");
        assert!(seq.ends_with("neg edx; add edx,ecx"), "{d}: {seq}");
    }
}

#[test]
fn every_division_by_a_static_divisor_becomes_a_multiplication() {
    let div = one(|a| a.div(iced_x86::code_asm::ecx));
    let idiv = one(|a| a.idiv(iced_x86::code_asm::ecx));
    for d in DIVISORS {
        for (ins, signed) in [(&div, false), (&idiv, true)] {
            if !signed && d >= 1 << 31 {
                continue; // the unsigned quotient is 0 or 1: another answer
            }
            let (seq, kind) = division_live(ins, d, signed, false);
            assert_eq!(kind, CandidateKind::Divide, "{d} signed {signed}: {seq}");
            assert!(seq.contains("mul edx"), "{d} signed {signed}: {seq}");
        }
    }
}

/// The pool's normal form of `x >> 4` (and of an unsigned `x / 16`) has no
/// constant 4: the count comes from the extraction.
#[test]
fn high_bits_extracted_are_one_shr() {
    let mut p = ExprPool::new();
    let eax = reg(&mut p, Reg::Eax);
    let x = p.extract(eax, 31, 4);
    let v = p.zext(x, 32);
    assert_eq!(
        answer_eax(&p, v),
        ("shr eax,4".to_owned(), CandidateKind::Search)
    );
}

/// Likewise `x & 0xf` (and an unsigned `x % 16`): the mask comes from the
/// extraction's width.
#[test]
fn low_bits_extracted_are_one_and() {
    let mut p = ExprPool::new();
    let eax = reg(&mut p, Reg::Eax);
    let x = p.extract(eax, 3, 0);
    let v = p.zext(x, 32);
    assert_eq!(
        answer_eax(&p, v),
        ("and eax,0Fh".to_owned(), CandidateKind::Direct)
    );
}

/// The same mask into another register (the remainder of `div` by 16 in
/// `edx`).
#[test]
fn low_bits_into_another_register_are_a_copy_and_an_and() {
    let mut p = ExprPool::new();
    let eax = reg(&mut p, Reg::Eax);
    let x = p.extract(eax, 3, 0);
    let v = p.zext(x, 32);
    assert_eq!(
        answer(&p, Reg::Edx, v),
        ("mov edx,eax; and edx,0Fh".to_owned(), CandidateKind::Search)
    );
}

/// The answer to the goal of `div r` / `idiv r` with `r` static (`d`) and
/// `edx` zero or the sign of `eax`, every register live but `r`, under
/// the pipeline's proof timeout (2 s).
fn division_by(
    (r, operand): (Reg, iced_x86::code_asm::AsmRegister32),
    d: u32,
    signed: bool,
) -> Option<(String, CandidateKind)> {
    let ins = if signed {
        one(|a| a.idiv(operand))
    } else {
        one(|a| a.div(operand))
    };
    let mut pool = ExprPool::new();
    let fx = division_effects(&mut pool, &ins, (r, d), signed);
    let mut synth = Synthesizer::new(2_000);
    let goal = Goal {
        effects: fx,
        live_regs: ALL_REGS & !(1 << r.index()),
        live_flags: 0,
        original: Some(&ins),
        static_regs: &[(r, d)],
    };
    let s = synth.synthesize_detailed(&pool, &goal)?;
    assert!(s.proof.holds(), "{:?}", s.proof);
    Some((text(&s.instructions), s.kind))
}

/// The dividend is kept in the one register the goal frees, the divisor's
/// (here `esi`), not in `ecx`, which is live.
#[test]
fn a_division_keeps_the_dividend_in_a_free_register() {
    for signed in [false, true] {
        let (seq, kind) =
            division_by((Reg::Esi, iced_x86::code_asm::esi), 10, signed).expect("solvable");
        assert_eq!(kind, CandidateKind::Divide, "{seq}");
        assert!(seq.starts_with("mov esi,eax; "), "{seq}");
        assert!(!seq.contains("ecx"), "{seq}");
    }
}

/// A 32-bit quotient of a register by a constant (a goal built from
/// formulas, not from `div`, whose dividend is 64 bits wide) is a
/// division too, when `edx` and a register for the dividend are free.
#[test]
fn a_32_bit_division_by_a_constant_multiplies_by_a_magic_number() {
    let mut p = ExprPool::new();
    let (eax, ten) = (reg(&mut p, Reg::Eax), p.bv(10, 32));
    let q = p.udiv(eax, ten);
    let goal = Goal {
        effects: vec![(Loc::Reg(Reg::Eax), q)],
        live_regs: ALL_REGS & !(1 << Reg::Edx.index() | 1 << Reg::Ecx.index()),
        live_flags: 0,
        original: None,
        static_regs: &[],
    };
    let s = Synthesizer::new(2_000)
        .synthesize_detailed(&p, &goal)
        .expect("solvable");
    let seq = text(&s.instructions);
    assert!(s.proof.holds(), "{seq}: {:?}", s.proof);
    assert_eq!(s.kind, CandidateKind::Divide, "{seq}");
    assert!(seq.contains("mov edx,0CCCCCCCDh; mul edx"), "{seq}");
}
