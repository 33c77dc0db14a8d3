//! Block-local recompaction of register moves: a run of register-only
//! instructions (copies, `xchg`, additions and scalings, and at most one
//! other operation) is re-emitted as the fewest instructions that leave the
//! same values in the registers read after it.
//!
//! A *run* is a maximal sequence of items of a block, each one of `mov
//! r,s`, `mov r,imm`, `xchg r,s`, `add`, `sub` (of a register or an
//! immediate), `inc`, `dec`, `neg`, `lea r,[b+i*k+d]`, `shl r,imm`, `imul
//! r,s,imm` and `xor r,r` on 32-bit registers other than `esp` (the
//! *linear* ones), with at most one *opaque* instruction (`imul r,s`,
//! `and`, `or`, `xor`, `shr`, `sar`, `rol`, `ror` of a register or an
//! immediate, `not`), each reading no flag and leaving the flags it writes
//! dead. Over a run every register holds a [`forms::Linear`] form: an
//! integer combination, plus a constant (modulo 2^32), of the registers'
//! values when the run starts and of the opaque instruction's result. The
//! registers live after the run whose form is not their own entry value
//! are the run's *destinations*; what the run leaves in dead registers
//! does not matter.
//!
//! The opaque instruction runs first, on any register that holds its first
//! operand at the run's start or gets it by one instruction, with a
//! register holding its second operand (`mov eax,ecx; mov ecx,ebp; imul
//! eax,ebp; mov ebp,eax; xchg ebp,ecx` is `imul ecx,ebp`). The destinations
//! are then computed as a parallel assignment ([`plan`]): each step
//! computes one destination by a single instruction from what the
//! registers hold at that point (`mov`, `lea`, an `add`, `sub`, `inc`,
//! `dec` or `neg` in place when the flags are free, `mov` of a constant),
//! chosen so that every destination left stays computable in one
//! instruction. When none can go without destroying a value another still
//! needs (a cycle), `xchg` puts one destination's value (or one it can be
//! computed from in place) where it belongs, or else a `mov` saves a value
//! into a scratch register that is dead after the run and holds nothing
//! needed.
//!
//! The run is replaced when the new code has fewer items than the run
//! without its dead items (dead-code elimination removes those) and as
//! many that compute (not copies, swaps or constant loads: the pass removes
//! moves, it does not merge arithmetic); of the plans tried, the one with
//! fewer items, then bytes, is taken. A zero test right after the run
//! counts as gone when the new code ends by computing its register in
//! place (so that the peephole can drop it). The new code is checked to
//! leave every live register's form before it goes in.
//!
//! Flags: every instruction of a run leaves them dead, so flags live after
//! the run come from before it; then the run has no opaque instruction and
//! the new code writes no flag (`lea`, `mov`, `xchg` only). A rotated
//! loop's two blocks, made one by [`crate::tails`], typically hold such a
//! run: the Fibonacci step `dec edx; mov ecx,eax; mov eax,esi; mov
//! esi,edx; mov edx,ecx; xchg eax,esi; add edx,esi; mov ecx,eax; mov
//! eax,esi; mov esi,edx; mov edx,ecx` before `test ecx,ecx` is `dec edx;
//! xchg eax,esi; add esi,eax; mov ecx,edx`, and once copy propagation has
//! the test read `edx`, `xchg eax,esi; add esi,eax; dec edx`.

mod forms;
mod plan;

use iced_x86::{Encoder, Instruction, Mnemonic, OpKind};
use wiper_residual::{Item, Origin, Residual};

use crate::effects::{zero_test, Effects, EffectsOf, Locs, ALL_FLAGS, ALL_REGS};
use crate::liveness::liveness;
use forms::{entry_forms, gpr, interpret, is_opaque, step, Linear, Opaque, ATOM, ESP};
use plan::{one_step, plan, Task};

/// What an item can be in a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A linear instruction.
    Linear,
    /// An instruction that may be a run's [`Opaque`] one.
    Opaque,
    /// Neither: it ends runs.
    Other,
}

/// What `item` (with effects `fx`, and `live` live after it) can be in a
/// run: only register instructions that read no flag and leave the flags
/// they write dead.
fn kind(item: &Item, fx: &Effects, live: Locs) -> Kind {
    let Item::Instr(ins, _) = item else {
        return Kind::Other;
    };
    if fx.side_effect
        || fx.uses & !ALL_REGS != 0
        || fx.defs & !(ALL_REGS | ALL_FLAGS) != 0
        || fx.defs & ALL_FLAGS & live != 0
    {
        return Kind::Other;
    }
    if interpret(&mut entry_forms(), ins).is_some() {
        Kind::Linear
    } else if is_opaque(ins) {
        Kind::Opaque
    } else {
        Kind::Other
    }
}

/// The runs of a block whose items are of the kinds `kinds`, as index
/// ranges: maximal sequences of linear items and at most one opaque one.
fn runs(kinds: &[Kind]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut opaque = false;
    for (k, &kind) in kinds.iter().enumerate() {
        match (kind, start) {
            (Kind::Other, Some(s)) => {
                out.push((s, k));
                start = None;
            }
            (Kind::Other, None) => {}
            (_, None) => {
                start = Some(k);
                opaque = kind == Kind::Opaque;
            }
            (Kind::Opaque, Some(s)) if opaque => {
                out.push((s, k));
                start = Some(k);
            }
            (Kind::Opaque, Some(_)) => opaque = true,
            (Kind::Linear, Some(_)) => {}
        }
    }
    if let Some(s) = start {
        out.push((s, kinds.len()));
    }
    out
}

/// Recompacts every run of register moves in `residual` that gets shorter
/// (see the module docs); returns how many runs it rewrote.
pub fn run(residual: &mut Residual, calc: &mut EffectsOf) -> usize {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut encoder = Encoder::new(32);
    let mut rewritten = 0;
    for ((block, fx), out) in residual.blocks.iter_mut().zip(&fx).zip(&live.live_out) {
        let kinds: Vec<Kind> = block
            .items
            .iter()
            .zip(fx)
            .zip(out)
            .map(|((item, e), &l)| kind(item, e, l))
            .collect();
        // From the last run, so that replacing one keeps the indices of
        // those before it.
        for (start, end) in runs(&kinds).into_iter().rev() {
            let run = Run {
                items: &block.items[start..end],
                fx: &fx[start..end],
                live_end: out[end - 1],
                next: block.items.get(end),
            };
            if let Some(code) = recompact(&run, calc, &mut encoder) {
                block.items.splice(start..end, code);
                rewritten += 1;
            }
        }
    }
    rewritten
}

/// A run of a block.
struct Run<'a> {
    /// Its items.
    items: &'a [Item],
    /// Their effects.
    fx: &'a [Effects],
    /// What is live after its last item.
    live_end: Locs,
    /// The item right after it, if any.
    next: Option<&'a Item>,
}

/// The instructions of `items` (which are all instructions).
fn instructions(items: &[Item]) -> Vec<Instruction> {
    items
        .iter()
        .filter_map(|item| match item {
            Item::Instr(ins, _) => Some(*ins),
            _ => None,
        })
        .collect()
}

/// The instructions of `run` that dead-code elimination would keep (those
/// that write something read later): the code the new one must beat, so
/// that the pass fires only where it does more than that elimination.
fn kept(run: &Run<'_>) -> Vec<Instruction> {
    let mut live = run.live_end;
    let mut stays = vec![false; run.items.len()];
    for (k, e) in run.fx.iter().enumerate().rev() {
        if e.defs & live != 0 {
            stays[k] = true;
            live = (live & !e.kills) | e.uses;
        }
    }
    let items: Vec<Item> = run
        .items
        .iter()
        .zip(stays)
        .filter(|(_, s)| *s)
        .map(|(item, _)| item.clone())
        .collect();
    instructions(&items)
}

/// Instructions of new code, each with its origin.
type Code = Vec<(Origin, Instruction)>;

/// What a run computes: the forms it leaves, its opaque instruction (with
/// its origin, and the origin of the value of its first operand), and
/// where each register's value was computed (copies and swaps pass their
/// source's origin on; `None` for an entry value).
struct Effect {
    regs: [Linear; 8],
    opaque: Option<(Opaque, Origin, Option<Origin>)>,
    origin: [Option<Origin>; 8],
}

/// Interprets `items` (a run) from the entry forms.
fn effect(items: &[Item]) -> Option<Effect> {
    let mut regs = entry_forms();
    let mut opaque = None;
    let mut origin: [Option<Origin>; 8] = [None; 8];
    for item in items {
        let Item::Instr(ins, o) = item else {
            return None;
        };
        let before = (regs, origin);
        if interpret(&mut regs, ins).is_none() {
            let op = Opaque::of(ins, &regs)?;
            let first = gpr(ins.op0_register()).and_then(|r| origin[r]);
            op.step(&mut regs, ins)?;
            opaque = Some((op, *o, first));
        }
        let source = |k: u32| match ins.op_kind(k) {
            OpKind::Register => gpr(ins.op_register(k)),
            _ => None,
        };
        let copied = match ins.mnemonic() {
            Mnemonic::Mov | Mnemonic::Xchg => source(1).zip(source(0)),
            _ => None,
        };
        for r in (0..8).filter(|&r| regs[r] != before.0[r]) {
            origin[r] = match copied {
                Some((s, d)) if r == d => before.1[s].or(Some(*o)),
                Some((s, d)) if r == s => before.1[d].or(Some(*o)),
                _ => Some(*o),
            };
        }
    }
    Some(Effect {
        regs,
        opaque,
        origin,
    })
}

/// The shorter code for `run`, with origins, if there is one.
fn recompact(run: &Run<'_>, calc: &mut EffectsOf, encoder: &mut Encoder) -> Option<Vec<Item>> {
    if run.items.len() == 1 && run.next.and_then(zero_test).is_none() {
        return None; // one instruction is as short as it gets
    }
    let effect = effect(run.items)?;
    let flags_free = run.live_end & ALL_FLAGS == 0;
    let live = |r: usize| r != ESP && run.live_end & (1 << r) != 0;
    let tested = run
        .next
        .and_then(zero_test)
        .and_then(gpr)
        .filter(|&t| live(t) && effect.regs[t] != Linear::entry(t));
    let fallback = run.items[0].origin();
    let mut best: Option<(Score, Code)> = None;
    for (prefix, start) in starts(&effect, flags_free) {
        let pending: Vec<(usize, Linear)> = (0..8)
            .filter(|&r| live(r) && effect.regs[r] != start[r])
            .map(|r| (r, effect.regs[r]))
            .collect();
        let task = Task {
            pending: &pending,
            protected: std::array::from_fn(|r| r == ESP || (live(r) && start[r] == effect.regs[r])),
            flags_free,
        };
        for defer in [tested, None] {
            let Some(rest) = plan(&task, start, defer) else {
                continue;
            };
            let code: Code = prefix
                .iter()
                .copied()
                .chain(
                    rest.into_iter()
                        .map(|(d, ins)| (effect.origin[d].unwrap_or(fallback), ins)),
                )
                .collect();
            let ins: Vec<Instruction> = code.iter().map(|c| c.1).collect();
            let score = score(&ins, tested, encoder);
            if best.as_ref().map_or(true, |b| score < b.0) {
                best = Some((score, code));
            }
        }
    }
    let (new_score, code) = best?;
    let ins: Vec<Instruction> = code.iter().map(|c| c.1).collect();
    let kept = kept(run);
    if new_score.0 >= score(&kept, tested, encoder).0 || arithmetic(&ins) < arithmetic(&kept) {
        return None;
    }
    let op = effect.opaque.as_ref().map(|o| &o.0);
    if !leaves_forms(&ins, op, &effect.regs, run.live_end, calc) {
        // The plan is checked, not trusted: a run the planner gets wrong
        // (seen on random functions whose runs mix two-register `lea`s with
        // swaps) stays as it was.
        return None;
    }
    Some(code.into_iter().map(|(o, i)| Item::Instr(i, o)).collect())
}

/// Where the parallel assignment of a run may start, with the code before
/// it: at the run's entry with no code, for a run without an opaque
/// instruction; else after that instruction, run on each register that
/// holds its first operand at the entry, or that holds its result at the
/// end and gets the first operand by one instruction, with a register
/// holding its second operand.
fn starts(effect: &Effect, flags_free: bool) -> Vec<(Code, [Linear; 8])> {
    let entry = entry_forms();
    let Some((op, origin, first_origin)) = effect.opaque else {
        return vec![(Vec::new(), entry)];
    };
    let mut out = Vec::new();
    // Homes worth trying: where the first operand is, and where the
    // result goes.
    let homes =
        (0..8).filter(|&r| r != ESP && (entry[r] == op.first || effect.regs[r].coeffs[ATOM] != 0));
    for r in homes {
        let mut prefix = Vec::new();
        if entry[r] != op.first {
            let Some(ins) = one_step(r, op.first, &entry, flags_free).into_iter().next() else {
                continue;
            };
            prefix.push((first_origin.unwrap_or(origin), ins));
        }
        let mut regs = entry;
        regs[r] = op.first;
        let second = match op.second {
            None => None,
            Some(f) => match (0..8).find(|&s| s != ESP && regs[s] == f) {
                Some(s) => Some(s),
                None => continue,
            },
        };
        let renamed = op.on(r, second);
        if interpret(&mut regs.clone(), &renamed).is_some() {
            continue; // `xor r,r` is no longer opaque
        }
        prefix.push((origin, renamed));
        regs[r] = Linear::entry(ATOM);
        out.push((prefix, regs));
    }
    out
}

/// Whether `code` (with `op` its opaque instruction, if any) leaves `want`
/// in every register live in `live_end`, and writes no flag when a flag is
/// live there.
fn leaves_forms(
    code: &[Instruction],
    op: Option<&Opaque>,
    want: &[Linear; 8],
    live_end: Locs,
    calc: &mut EffectsOf,
) -> bool {
    let mut regs = entry_forms();
    for ins in code {
        let fx = calc.instruction(ins, None);
        if fx.side_effect
            || fx.defs & ALL_FLAGS & live_end != 0
            || step(&mut regs, ins, op).is_none()
        {
            return false;
        }
    }
    (0..8).all(|r| r == ESP || live_end & (1 << r) == 0 || regs[r] == want[r])
}

/// How many instructions of `code` compute (all but copies, swaps and
/// constant loads). A run is only replaced by code that computes as much:
/// the pass removes moves and never merges arithmetic, which would hide an
/// `add` of a register that holds a constant from constant folding, or an
/// `add` of an offset from the offset folding.
fn arithmetic(code: &[Instruction]) -> usize {
    code.iter()
        .filter(|ins| !matches!(ins.mnemonic(), Mnemonic::Mov | Mnemonic::Xchg))
        .count()
}

/// How good code for a run is: items, then bytes (lower is better). A
/// zero test of `tested` after the run counts as gone (one item less) when
/// the code ends by computing that register in place with the flags.
type Score = (usize, usize);

/// The [`Score`] of `code`.
fn score(code: &[Instruction], tested: Option<usize>, encoder: &mut Encoder) -> Score {
    let bytes = code
        .iter()
        .map(|ins| encoder.encode(ins, 0).unwrap_or(16))
        .sum();
    let folds = match (code.last(), tested) {
        (Some(last), Some(t)) => {
            matches!(
                last.mnemonic(),
                Mnemonic::Add | Mnemonic::Sub | Mnemonic::Inc | Mnemonic::Dec | Mnemonic::Neg
            ) && last.op0_kind() == OpKind::Register
                && gpr(last.op0_register()) == Some(t)
        }
        _ => false,
    };
    (code.len() - usize::from(folds), bytes)
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::Terminator;

    use crate::testutil::{after, asm, block, branch, function, listing, residual};

    /// The listing after [`super::run`].
    fn moved(r: wiper_residual::Residual) -> String {
        after(r, super::run)
    }

    /// A loop block `body` while not zero, and a `ret`.
    fn self_loop(body: Vec<iced_x86::Instruction>) -> wiper_residual::Residual {
        residual(vec![
            block(1, body, branch(Cc::ne, 1, 2)),
            block(2, asm(|a| a.ret()), Terminator::Exit),
        ])
    }

    /// Constants are forms: a constant moved through a register it does
    /// not stay in is loaded where it ends.
    #[test]
    fn constants_moved_around_are_loaded_where_they_end() {
        let f = function(|a| {
            a.mov(eax, 5)?;
            a.mov(ebx, eax)?;
            a.mov(eax, 1)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          mov eax,1
          mov ebx,5
          ret
          exit
        ");
    }

    /// Near miss of the opaque instruction moved to the register that
    /// holds its operand: `and eax,imm32` in its accumulator encoding
    /// names `eax` by its opcode, so it cannot run on `ebx`; with the
    /// general encoding it can.
    #[test]
    fn an_opaque_instruction_with_a_fixed_register_stays() {
        use iced_x86::{Code, Instruction, Register};
        use wiper_residual::{Item, Origin};
        let with_and = |code| {
            let and = Instruction::with2(code, Register::EAX, 0x1234_5678u32).expect("and");
            let mut f = function(|a| {
                a.mov(eax, ebx)?;
                a.mov(ebx, eax)?;
                a.mov(eax, 0)?;
                a.ret()
            });
            f.blocks[0]
                .items
                .insert(1, Item::Instr(and, Origin::Original(0)));
            moved(f)
        };
        insta::assert_snapshot!(with_and(Code::And_EAX_imm32) + &with_and(Code::And_rm32_imm32), @"
        L0:
          mov eax,ebx
          and eax,12345678h
          mov ebx,eax
          mov eax,0
          ret
          exit
        L0:
          and ebx,12345678h
          mov eax,0
          ret
          exit
        ");
    }

    /// A shift by a constant is a scaling: `edx` gets `eax*4` through the
    /// dead `ecx`, which one `lea` computes.
    #[test]
    fn a_shifted_copy_becomes_a_scaled_lea() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.shl(ecx, 2)?;
            a.mov(edx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          lea edx,[eax*4]
          ret
          exit
        ");
    }

    /// A three-register rotation through `ecx` (dead after): two swaps.
    #[test]
    fn a_rotation_becomes_swaps() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.mov(ebx, edx)?;
            a.mov(edx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          xchg ebx,eax
          xchg ebx,edx
          ret
          exit
        ");
    }

    /// The Fibonacci loop of issue 14 (its two blocks made one by
    /// [`crate::tails`]) through the whole optimizer: `eax, esi := esi,
    /// eax+esi` is a swap and an `add`; the counter `edx` (tested through
    /// its copy `ecx`) steps last, so that its `dec` sets the flags of the
    /// branch.
    #[test]
    fn the_fibonacci_step_is_a_swap_an_addition_and_the_count() {
        let mut r = self_loop(asm(|a| {
            a.dec(edx)?;
            a.mov(ecx, eax)?;
            a.mov(eax, esi)?;
            a.mov(esi, edx)?;
            a.mov(edx, ecx)?;
            a.xchg(eax, esi)?;
            a.add(edx, esi)?;
            a.mov(ecx, eax)?;
            a.mov(eax, esi)?;
            a.mov(esi, edx)?;
            a.mov(edx, ecx)?;
            a.test(ecx, ecx)
        }));
        crate::optimize(&mut r);
        insta::assert_snapshot!(listing(&r), @"
        L1:
          xchg esi,eax
          add esi,eax
          dec edx
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// The register a zero test after the run reads is computed last, in
    /// place.
    #[test]
    fn the_tested_register_is_computed_last() {
        let r = self_loop(asm(|a| {
            a.dec(edx)?;
            a.xchg(eax, esi)?;
            a.add(esi, eax)?;
            a.test(edx, edx)
        }));
        insta::assert_snapshot!(moved(r), @"
        L1:
          xchg esi,eax
          add esi,eax
          dec edx
          test edx,edx
          jne L1 else L2
        L2:
          ret
          exit
        ");
    }

    /// `eax, ebx := ebx+edx, eax+edx` through `ecx`: a cycle with computed
    /// values is a swap and two additions.
    #[test]
    fn a_cycle_of_sums_is_a_swap_and_additions() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.mov(eax, ebx)?;
            a.add(eax, edx)?;
            a.mov(ebx, ecx)?;
            a.add(ebx, edx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          xchg ecx,eax
          lea eax,[edx+ebx]
          lea ebx,[ecx+edx]
          ret
          exit
        ");
    }

    /// Near miss: `adc` reads the carry of the `cmp` before the run, so
    /// the new code writes no flag: `lea`, not `add`.
    #[test]
    fn live_flags_get_flag_free_code() {
        let f = function(|a| {
            a.cmp(edi, ebp)?;
            a.mov(ecx, eax)?;
            a.mov(eax, esi)?;
            a.lea(ecx, ptr(ecx + esi))?;
            a.mov(esi, ecx)?;
            a.adc(edx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          cmp edi,ebp
          xchg esi,eax
          lea esi,[eax+esi]
          adc edx,0
          ret
          exit
        ");
    }

    /// Every register is live after the run (`ecx` is read after it, as
    /// it was before): no scratch register, so a swap breaks the cycle.
    #[test]
    fn without_a_free_register_a_cycle_is_a_swap() {
        let f = function(|a| {
            a.xchg(eax, ebx)?;
            a.inc(eax)?;
            a.xchg(eax, ebx)?;
            a.xchg(eax, ebx)?;
            a.inc(ebx)?;
            a.test(ecx, ecx)?;
            a.setne(dl)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          xchg ebx,eax
          inc eax
          inc ebx
          test ecx,ecx
          setne dl
          ret
          exit
        ");
    }

    /// `eax, ebx := eax+ebx, eax-ebx`: no instruction computes one of them
    /// without losing what the other needs, but after a swap the
    /// difference is one `sub`, and the sum is the difference plus twice
    /// what `eax` holds then.
    #[test]
    fn a_sum_and_a_difference_are_computed_around_a_swap() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.add(eax, ebx)?;
            a.sub(ecx, ebx)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          xchg eax,ebx
          sub ebx,eax
          lea eax,[ebx+eax*2]
          ret
          exit
        ");
    }

    /// The factorial loop: `imul` on a copy, moved back through a swap,
    /// runs on the register that holds its first operand.
    #[test]
    fn an_opaque_instruction_runs_where_its_operand_is() {
        let mut r = self_loop(asm(|a| {
            a.mov(eax, ecx)?;
            a.mov(ecx, ebp)?;
            a.imul_2(eax, ebp)?;
            a.mov(ebp, eax)?;
            a.xchg(ebp, ecx)?;
            a.dec(ebp)
        }));
        let exit = asm(|a| a.mov(eax, ecx))[0];
        let origin = wiper_residual::Origin::Original(0);
        r.blocks[1]
            .items
            .insert(0, wiper_residual::Item::Instr(exit, origin));
        insta::assert_snapshot!(moved(r), @"
        L1:
          imul ecx,ebp
          dec ebp
          jne L1 else L2
        L2:
          mov eax,ecx
          ret
          exit
        ");
    }

    /// The opaque instruction may run where its result goes, after one
    /// instruction that brings its first operand there: `esi` (read at
    /// `ret`) must keep its value, so `imul` runs on `ebx`, not on `esi`.
    #[test]
    fn an_opaque_instruction_runs_where_its_result_goes() {
        let f = function(|a| {
            a.mov(ecx, esi)?;
            a.imul_2(ecx, edx)?;
            a.mov(ebx, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          mov ebx,esi
          imul ebx,edx
          ret
          exit
        ");
    }

    /// `eax, ebx := eax-ebx, ebx-eax`: each difference is a `sub` in place
    /// that destroys what the other needs, and no swap helps; a copy of
    /// `eax` in the dead `ecx` does.
    #[test]
    fn a_cycle_of_differences_saves_a_value_in_a_scratch_register() {
        let f = function(|a| {
            a.mov(ecx, eax)?;
            a.sub(ecx, ebx)?;
            a.sub(ebx, eax)?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          mov ecx,eax
          sub eax,ebx
          sub ebx,ecx
          ret
          exit
        ");
    }

    /// Near miss: merging arithmetic is not this pass's job (`add ecx,4;
    /// add ecx,eax` stays for constant and offset folding).
    #[test]
    fn arithmetic_is_not_merged() {
        let f = function(|a| {
            a.mov(ecx, edx)?;
            a.add(ecx, 4)?;
            a.add(ecx, eax)?;
            a.mov(eax, ecx)?;
            a.ret()
        });
        insta::assert_snapshot!(moved(f), @"
        L0:
          mov ecx,edx
          add ecx,4
          add ecx,eax
          mov eax,ecx
          ret
          exit
        ");
    }

    /// The new code's instruction takes the origin of the instruction that
    /// computed its value (the `add`, the second), not that of an
    /// instruction after it that left the value alone.
    #[test]
    fn new_code_keeps_the_origin_of_what_computed_its_value() {
        use wiper_residual::{Item, Origin};
        let mut f = function(|a| {
            a.mov(ecx, ebx)?;
            a.add(ecx, 5)?;
            a.mov(eax, ecx)?;
            a.mov(edx, 7)?;
            a.ret()
        });
        for (k, item) in f.blocks[0].items.iter_mut().enumerate() {
            if let Item::Instr(_, o) = item {
                *o = Origin::Original(k as u32 + 1);
            }
        }
        let mut calc = crate::effects::EffectsOf::for_residual(&f);
        super::run(&mut f, &mut calc);
        let listing = crate::testutil::listing(&f);
        let Some(Item::Instr(first, origin)) = f.blocks[0].items.first() else {
            panic!("no instruction: {listing}");
        };
        assert_eq!(first.to_string(), "lea eax,[ebx+5]", "{listing}");
        assert_eq!(*origin, Origin::Original(2), "{listing}");
    }
}
