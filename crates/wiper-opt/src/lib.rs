//! Residual optimizer: cleans up the residual code the specializer
//! produces before it is encoded.
//!
//! The specializer emits residual code instruction by instruction, so values
//! that the original kept in its stack frame stay there, and moves pile up
//! between stores and loads. Passes, all over the residual control-flow
//! graph:
//! 0. **Control-flow cleanup** ([`cfg`](mod@cfg)): jump threading, merging of
//!    straight-line blocks, removal of unreachable ones.
//! 1. **Stack-slot promotion** ([`frame`], [`promote`]): frame slots
//!    accessed only as whole 4-byte `[esp+d]` operands move into free
//!    registers, and byte slots into free byte registers (after dword
//!    constant stores over byte slots are split into byte stores). When
//!    slots that loops access are left in memory, a callee-saved register
//!    the residual does not use is **borrowed** ([`borrow`]: saved with
//!    `push` on entry, restored before `ret`) and promotion runs again.
//! 2. **Copy propagation** ([`cleanup`]): reads of a copied register read
//!    the original. Then **affine value numbering** ([`affine`]), local to
//!    a block: recomputations of a value a register already holds go, and
//!    sums, scalings and offsets of one value become one `lea`, `shl` or
//!    `imul` from a register that holds it.
//! 3. **Dead-code elimination** ([`cleanup`]): items whose results are never
//!    read go.
//! 4. **Peepholes** ([`address`], [`stack`], [`peephole`]): address
//!    computations folded into memory operands, merged stack-pointer
//!    adjustments, values passed through the stack as moves, register
//!    swaps, two-address arithmetic, redundant `test`s, folded loads and
//!    address arithmetic.
//! 5. **Frame elimination** ([`unframe`]): when only register saves and
//!    stack-pointer adjustments are left of the frame (saves of registers
//!    the code changes become a `push`/`pop` pair).
//! 6. **Saved registers freed** ([`scratch`]): a callee-saved register
//!    saved in a scratch register only to hold temporaries swaps roles with
//!    it. **Repeated zero tests** ([`branches`]): a branch on `r == 0` right
//!    after one on the same `r` is decided; then passes 0 and 2 to 4 again.
//! 7. **Constants** ([`constants`]) and **closed loops** ([`counted`]):
//!    known register values fold into immediates and decide branches, and
//!    counted loops (a self-loop, or a rotated loop of two blocks) that
//!    only add constants become their closed form,
//!    and self-loops with a known small trip count are unrolled
//!    ([`unroll`]); a branch around `mov r,k` taken when `r == k` becomes
//!    the move ([`branches`], the shape a closed `while (c) c--` leaves);
//!    they alternate with passes 0 and 2 to 4 while they change things.
//! 8. **Register moves** ([`moves`]) and **loop headers** ([`tails`]):
//!    from here on the clean-up (passes 2 to 4) also re-emits each run of
//!    register copies, swaps and additions in a block as the fewest
//!    instructions that leave the same values (a parallel assignment), and
//!    a rotated loop's small header is copied into the body block that
//!    jumps to it where that makes the loop shorter (the loop is then one
//!    block); then pass 7 again. Last, callee-saved registers saved by
//!    `push`/`pop` (borrowed ones included) give way to caller-saved
//!    registers free over their live ranges ([`pushed`]).
//! 9. **Offset folding** ([`offsets`]) and **powers** ([`powers`]), with
//!    the peepholes: pointer increments move into the displacements of the
//!    loads that follow, and chains of products become square-and-multiply.
//!
//! Passes 2 to 4 repeat until nothing changes, before and after 5. Assumptions (see
//! docs/specialization.md): at a `ret` the flags are dead (the i386 System V
//! ABI does not preserve them) and so are the function's own frame below the
//! entry stack pointer and its incoming arguments above it (the callee owns
//! them: a promoted argument's stores go, see [`frame`]); everything else a
//! caller can see stays live, memory reached through pointers or absolute
//! addresses included.
//!
//! [`optimize_observed`] runs the same passes in the same order and shows
//! the residual to an observer after each one (by the names in
//! [`PASS_NAMES`]); the processor tests check every intermediate residual.

mod address;
mod affine;
mod borrow;
mod branches;
mod build;
mod cfg;
mod cleanup;
mod constants;
mod counted;
mod effects;
mod frame;
mod liveness;
mod moves;
mod offsets;
mod peephole;
mod powers;
mod promote;
mod pushed;
mod pushes;
mod saves;
mod scratch;
mod settest;
mod sink;
mod stack;
mod subsumed;
mod tails;
mod unframe;
mod unroll;
mod widen;

#[cfg(test)]
mod testutil;

use wiper_residual::Residual;
use wiper_x86::abi;

/// What [`optimize`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OptStats {
    /// Stack slots moved into registers.
    pub promoted_slots: usize,
    /// Of those, byte slots (moved into a byte register).
    pub promoted_byte_slots: usize,
    /// Whether the stack frame was removed.
    pub unframed: bool,
    /// Conditional branches that became jumps because the branch before
    /// them had already tested the same register against zero.
    pub decided_branches: usize,
    /// Callee-saved registers whose temporaries moved to a scratch register.
    pub freed_registers: usize,
    /// Items and branches rewritten by constant propagation.
    pub folded_constants: usize,
    /// Counted self-loops replaced by their closed form.
    pub closed_loops: usize,
    /// Self-loops with a known trip count made straight-line.
    pub unrolled_loops: usize,
    /// Recomputations removed and writes strength-reduced by [`affine`].
    pub affine_rewrites: usize,
    /// Runs of register moves re-emitted shorter by [`moves`].
    pub recompacted_runs: usize,
    /// Loop headers copied into the body that jumps to them ([`tails`]).
    pub duplicated_headers: usize,
    /// Residual items before.
    pub items_before: usize,
    /// Residual items after.
    pub items_after: usize,
}

/// Optimizes `residual` in place.
pub fn optimize(residual: &mut Residual) -> OptStats {
    optimize_observed(residual, |_, _| {})
}

/// What one more round of control-flow simplification and clean-up
/// (copies, affine values, moves, dead code, peepholes) would make of
/// `residual`, or `None` when it would change nothing. [`optimize`] ends
/// with the clean-up its last passes called for, so its output gives
/// `None`; the processor tests check that, so a skipped clean-up round is
/// noticed even when it leaves the code correct.
pub fn left_to_clean(residual: &Residual) -> Option<Residual> {
    let mut again = residual.clone();
    let mut calc = effects::EffectsOf::for_residual(&again);
    simplify_and_clean(&mut again, &mut calc);
    (again != *residual).then_some(again)
}

/// Control-flow simplification, then [`clean_up`] with moves recompacted,
/// unobserved: the passes that follow the optimizer's last rewrites.
fn simplify_and_clean(residual: &mut Residual, calc: &mut effects::EffectsOf) {
    cfg::simplify(residual);
    let mut rewrites = Rewrites {
        recompact: true,
        ..Rewrites::default()
    };
    clean_up(residual, calc, &mut |_, _| {}, &mut rewrites);
}

/// Names of the passes [`optimize_observed`] reports, in no particular
/// order (each may run many times).
pub const PASS_NAMES: &[&str] = &[
    "cfg",
    "split_word_stores",
    "dead_slots",
    "promote",
    "borrow",
    "copies",
    "affine",
    "moves",
    "dead",
    "overwritten_parts",
    "address",
    "stack",
    "saves",
    "pushes",
    "peephole",
    "offsets",
    "powers",
    "unframe",
    "scratch",
    "pushed",
    "widen",
    "sink",
    "branches",
    "threads",
    "subsumed",
    "settest",
    "known_values",
    "tails",
    "constants",
    "unroll_distances",
    "counted",
    "unroll",
];

/// Runs `pass` on `residual`, then shows the result to `observe` under
/// `name` (one of [`PASS_NAMES`]). In debug builds the result is checked
/// with [`Residual::verify`] first: a pass that breaks the residual's shape
/// panics with its name.
fn step<T>(
    residual: &mut Residual,
    observe: &mut dyn FnMut(&str, &Residual),
    name: &'static str,
    pass: impl FnOnce(&mut Residual) -> T,
) -> T {
    let out = pass(residual);
    #[cfg(debug_assertions)]
    if let Err(e) = residual.verify() {
        panic!("optimizer pass {name} broke the residual: {e}\n{residual}");
    }
    observe(name, residual);
    out
}

/// [`optimize`], calling `observe(pass_name, residual)` after every pass
/// it runs (also when the pass changed nothing), with the residual as
/// that pass left it; `pass_name` is one of [`PASS_NAMES`]. This is the
/// one definition of the pass order: [`optimize`] is this with an
/// observer that does nothing. Tests use it to check each intermediate
/// residual, so that a failure names the pass that broke the code.
pub fn optimize_observed(
    residual: &mut Residual,
    mut observe: impl FnMut(&str, &Residual),
) -> OptStats {
    let observe: &mut dyn FnMut(&str, &Residual) = &mut observe;
    let count = |r: &Residual| r.blocks.iter().map(|b| b.items.len()).sum::<usize>();
    let items_before = count(residual);
    step(residual, observe, "cfg", cfg::simplify);
    let mut calc = effects::EffectsOf::for_residual(residual);
    step(residual, observe, "split_word_stores", |r| {
        if let Some(f) = frame::analyze(r) {
            frame::split_word_stores(r, &f);
        }
    });
    // Dead stores to frame slots go first, so that they do not hold
    // registers the promotion could give to live slots.
    step(residual, observe, "dead_slots", |r| {
        if let Some(f) = frame::analyze(r) {
            cleanup::eliminate_dead(r, &mut calc, Some(&f.slot_of));
        }
    });
    let mut rewrites = Rewrites::default();
    let (mut promoted_slots, mut promoted_byte_slots) =
        promote_slots(residual, &mut calc, observe, &mut rewrites);
    // Slots that loops still access in memory may take a callee-saved
    // register the residual does not use, saved around the function.
    // One register at a time, while the promotion takes them.
    for _ in 0..abi::CALLEE_SAVED.len() {
        let borrowed = step(residual, observe, "borrow", |r| {
            frame::analyze(r).is_some_and(|f| borrow::borrow_saved_register(r, &f, &mut calc))
        });
        if !borrowed {
            break;
        }
        let (words, bytes) = promote_slots(residual, &mut calc, observe, &mut rewrites);
        promoted_slots += words;
        promoted_byte_slots += bytes;
        if words == 0 {
            break;
        }
    }
    let unframed = step(residual, observe, "unframe", |r| {
        frame::analyze(r).is_some_and(|f| unframe::eliminate_frame(r, &f, &mut calc))
    });
    if unframed {
        clean_up(residual, &mut calc, observe, &mut rewrites);
    }
    // The save is looked for in the entry block.
    step(residual, observe, "cfg", cfg::simplify);
    let freed_registers = step(residual, observe, "scratch", |r| {
        scratch::free_saved_registers(r, &mut calc)
    });
    if freed_registers > 0 {
        clean_up(residual, &mut calc, observe, &mut rewrites);
    }
    let decided_branches = step(residual, observe, "branches", |r| {
        branches::decide_repeated_tests(r, &mut calc)
    });
    if decided_branches > 0 {
        step(residual, observe, "cfg", cfg::simplify);
        clean_up(residual, &mut calc, observe, &mut rewrites);
    }
    // Constants and closed loops, then register moves recompacted (after
    // the constants, which fold more of the code as the specializer wrote
    // it) and loop headers copied where that pays, then constants and
    // closed loops again for what those changed.
    let mut folding = fold_and_close(residual, &mut calc, observe, &mut rewrites);
    rewrites.recompact = true;
    let loops = paying_loops(residual);
    let duplicated_headers = step(residual, observe, "tails", |r| tails::duplicate(r, &loops));
    if duplicated_headers > 0 {
        step(residual, observe, "cfg", cfg::simplify);
    }
    let moves_before = rewrites.moves;
    clean_up(residual, &mut calc, observe, &mut rewrites);
    if duplicated_headers > 0 || rewrites.moves > moves_before {
        let again = fold_and_close(residual, &mut calc, observe, &mut rewrites);
        folding.folded += again.folded;
        folding.closed += again.closed;
        folding.unrolled += again.unrolled;
    }
    // Saves by push and pop, the registers lent to slots among them, give
    // way to caller-saved registers that the closed loops left free.
    // Byte moves and byte arithmetic whose register's upper bits are dead
    // write it whole, so that the saves of registers only their low bytes
    // served can go.
    // Values read on one path only then move onto it, next to the code
    // that reads them.
    let widened = step(residual, observe, "widen", |r| {
        widen::widen_byte_moves(r, &mut calc)
    });
    let sunk = step(residual, observe, "sink", |r| sink::sink(r, &mut calc));
    if widened + sunk > 0 {
        clean_up(residual, &mut calc, observe, &mut rewrites);
    }
    let pushed = step(residual, observe, "pushed", |r| {
        pushed::free_pushed_registers(r, &mut calc)
    });
    settle(residual, &mut calc, observe, &mut rewrites);
    OptStats {
        promoted_slots,
        promoted_byte_slots,
        unframed,
        decided_branches,
        freed_registers: freed_registers + pushed,
        folded_constants: folding.folded,
        closed_loops: folding.closed,
        unrolled_loops: folding.unrolled,
        affine_rewrites: rewrites.affine,
        recompacted_runs: rewrites.moves,
        duplicated_headers,
        items_before,
        items_after: count(residual),
    }
}

/// What [`fold_and_close`] did.
struct Folding {
    /// Items and branches rewritten by constant propagation.
    folded: usize,
    /// Counted loops closed.
    closed: usize,
    /// Loops unrolled.
    unrolled: usize,
}

/// Constant propagation, closed counted loops and unrolled loops, with
/// [`clean_up`] after each round that changed something, until a round
/// changes nothing (at most 8 rounds). Constants and closed loops feed
/// each other: a closed inner loop leaves its counter known, which may
/// close the loop around it.
fn fold_and_close(
    residual: &mut Residual,
    calc: &mut effects::EffectsOf,
    observe: &mut dyn FnMut(&str, &Residual),
    rewrites: &mut Rewrites,
) -> Folding {
    let mut out = Folding {
        folded: 0,
        closed: 0,
        unrolled: 0,
    };
    for _ in 0..8 {
        let folded = step(residual, observe, "constants", |r| {
            constants::propagate(r, calc)
        }) + step(residual, observe, "unroll_distances", |r| {
            unroll::decide_distances(r, calc)
        });
        let closed = step(residual, observe, "counted", |r| {
            counted::close_loops(r, calc)
        });
        // (closed loops leave `if (c != k) c = k`)
        let folded = folded
            + step(residual, observe, "known_values", |r| {
                branches::set_known_values(r, calc)
            })
            + step(residual, observe, "threads", |r| {
                branches::thread_repeated_tests(r, calc)
            })
            + step(residual, observe, "subsumed", |r| {
                subsumed::drop_subsumed_zero_tests(r, calc)
            })
            + step(residual, observe, "settest", |r| {
                settest::fold_set_and_test(r, calc)
            });
        let unrolled = step(residual, observe, "unroll", |r| {
            unroll::unroll_loops(r, calc)
        });
        if folded + closed + unrolled == 0 {
            break;
        }
        out.folded += folded;
        out.closed += closed;
        out.unrolled += unrolled;
        step(residual, observe, "cfg", cfg::simplify);
        clean_up(residual, calc, observe, rewrites);
    }
    out
}

/// Control-flow simplification and [`clean_up`] in turn until neither
/// changes the code (at most 4 rounds): the last passes leave blocks that
/// their clean-up emptied, and branches whose arms then meet.
fn settle(
    residual: &mut Residual,
    calc: &mut effects::EffectsOf,
    observe: &mut dyn FnMut(&str, &Residual),
    rewrites: &mut Rewrites,
) {
    for _ in 0..4 {
        let before = residual.clone();
        step(residual, observe, "cfg", cfg::simplify);
        clean_up(residual, calc, observe, rewrites);
        if *residual == before {
            break;
        }
    }
}

/// The rotated loops whose header copy into the body pays
/// ([`tails::paying`], with the control-flow cleanup and [`clean_up`] as
/// the passes that follow; they run on copies of `residual`, unobserved).
fn paying_loops(residual: &Residual) -> Vec<(wiper_residual::Label, wiper_residual::Label)> {
    let loops = tails::rotated_loops(residual);
    if loops.is_empty() {
        return loops;
    }
    let mut calc = effects::EffectsOf::for_residual(residual);
    tails::paying(residual, &loops, |r| simplify_and_clean(r, &mut calc))
}

/// What [`clean_up`] rewrote, summed over its calls.
#[derive(Default)]
struct Rewrites {
    /// Affine rewrites ([`affine::run`]).
    affine: usize,
    /// Runs of register moves recompacted ([`moves::run`]).
    moves: usize,
    /// Whether [`moves::run`] runs.
    recompact: bool,
}

/// Stack-slot promotion and clean-up, repeated while slots move (copies
/// removed in one round free registers for the next; at most 4 rounds);
/// returns the slots promoted and the byte slots among them.
fn promote_slots(
    residual: &mut Residual,
    calc: &mut effects::EffectsOf,
    observe: &mut dyn FnMut(&str, &Residual),
    rewrites: &mut Rewrites,
) -> (usize, usize) {
    let (mut promoted_slots, mut promoted_byte_slots) = (0, 0);
    for _ in 0..4 {
        let (words, bytes) = step(residual, observe, "promote", |r| {
            frame::analyze(r)
                .map(|f| promote::promote(r, &f, calc))
                .unwrap_or((0, 0))
        });
        promoted_slots += words;
        promoted_byte_slots += bytes;
        clean_up(residual, calc, observe, rewrites);
        if words == 0 {
            break;
        }
        step(residual, observe, "dead_slots", |r| {
            if let Some(f) = frame::analyze(r) {
                cleanup::eliminate_dead(r, calc, Some(&f.slot_of));
            }
        });
    }
    (promoted_slots, promoted_byte_slots)
}

/// Copy propagation, affine value numbering, recompaction of register
/// moves (once `rewrites.recompact` is set), dead-code elimination and
/// peepholes until nothing changes (at most 16 rounds); adds the affine
/// and move rewrites to `rewrites`.
fn clean_up(
    residual: &mut Residual,
    calc: &mut effects::EffectsOf,
    observe: &mut dyn FnMut(&str, &Residual),
    rewrites: &mut Rewrites,
) {
    for _ in 0..16 {
        let copied = step(residual, observe, "copies", |r| {
            cleanup::propagate_copies(r, calc)
        });
        let reduced = step(residual, observe, "affine", |r| affine::run(r, calc));
        let recompacted = match rewrites.recompact {
            true => step(residual, observe, "moves", |r| moves::run(r, calc)),
            false => 0,
        };
        let removed = step(residual, observe, "dead", |r| {
            cleanup::eliminate_dead(r, calc, None)
        }) | step(residual, observe, "overwritten_parts", |r| {
            cleanup::eliminate_overwritten_parts(r, calc)
        });
        let rewritten = step(residual, observe, "address", |r| {
            address::fold_addresses(r, calc)
        }) | step(residual, observe, "stack", stack::run)
            | step(residual, observe, "saves", |r| {
                saves::drop_local_saves(r, calc) > 0
            })
            | step(residual, observe, "pushes", |r| {
                pushes::move_pushes(r, calc) > 0
            })
            | step(residual, observe, "peephole", |r| peephole::run(r, calc))
            | step(residual, observe, "offsets", |r| {
                offsets::fold_offsets(r, calc)
            })
            | step(residual, observe, "powers", |r| {
                powers::shorten_power_chains(r, calc)
            });
        rewrites.affine += reduced;
        rewrites.moves += recompacted;
        if !copied && reduced == 0 && recompacted == 0 && !removed && !rewritten {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;
    use iced_x86::ConditionCode as Cc;
    use wiper_residual::{Residual, Terminator};

    use crate::testutil::{asm, block, branch, jump, listing, residual};

    /// A dword slot that a loop adds `eax` to while `ecx` counts down and
    /// `edx` is read: every caller-saved register is busy in the loop and
    /// the callee-saved ones are live at `ret`, so the slot gets a
    /// register only once one is borrowed.
    fn crowded_loop() -> Residual {
        residual(vec![
            block(
                0,
                asm(|a| {
                    a.sub(esp, 4)?;
                    a.mov(dword_ptr(esp), 0)
                }),
                jump(1),
            ),
            block(
                1,
                asm(|a| {
                    a.add(dword_ptr(esp), eax)?;
                    a.add(eax, edx)?;
                    a.dec(ecx)
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(
                2,
                asm(|a| {
                    a.mov(eax, dword_ptr(esp))?;
                    a.add(esp, 4)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ])
    }

    /// `[>+<-]` in L1, then L2 rotates `esi`, `ebx` and `edi` through
    /// `ecx` (dead after), which the recompaction of moves rewrites, so
    /// that constants and closed loops run again.
    fn closed_then_rotated() -> Residual {
        residual(vec![
            block(0, asm(|a| a.mov(eax, 1)), jump(1)),
            block(
                1,
                asm(|a| {
                    a.inc(dl)?;
                    a.dec(cl)
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(
                2,
                asm(|a| {
                    a.mov(ecx, esi)?;
                    a.mov(esi, ebx)?;
                    a.mov(ebx, edi)?;
                    a.mov(edi, ecx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ])
    }

    /// A walk from `eax` to `ecx = eax+8` by 4, laid out rotated: L0 jumps
    /// to the header L2 (`cmp eax,ecx`), which branches to the body L1 or
    /// out; L1 jumps back to L2.
    fn rotated_walk() -> Residual {
        let mut r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.mov(edx, eax)?;
                    a.lea(ecx, ptr(eax + 12))
                }),
                jump(2),
            ),
            block(
                1,
                asm(|a| {
                    a.add(ebx, dword_ptr(eax))?;
                    a.mov(edx, eax)
                }),
                jump(2),
            ),
            block(
                2,
                asm(|a| {
                    a.lea(eax, ptr(edx + 4))?;
                    a.cmp(eax, ecx)
                }),
                branch(Cc::ne, 1, 3),
            ),
            block(3, asm(|a| a.ret()), Terminator::Exit),
        ]);
        r.edx_dead_at_return = true;
        r
    }

    /// A walk of known length (`ecx = eax+8`) as a self-loop, then L2
    /// rotates `esi`, `ebx` and `edi` through `ecx` (dead after).
    fn walk_then_rotated() -> Residual {
        residual(vec![
            block(0, asm(|a| a.lea(ecx, ptr(eax + 8))), jump(1)),
            block(
                1,
                asm(|a| {
                    a.add(edx, dword_ptr(eax))?;
                    a.add(eax, 4)?;
                    a.cmp(eax, ecx)
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(
                2,
                asm(|a| {
                    a.mov(ecx, esi)?;
                    a.mov(esi, ebx)?;
                    a.mov(ebx, edi)?;
                    a.mov(edi, ecx)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ])
    }

    /// The slot is counted as promoted when the promotion that takes it
    /// runs after a callee-saved register was borrowed.
    #[test]
    fn a_slot_promoted_after_borrowing_a_register_is_counted() {
        let mut r = crowded_loop();
        let stats = crate::optimize(&mut r);
        let listing = listing(&r);
        assert!(
            listing.contains("push ebx") && !listing.contains("[esp]"),
            "{listing}"
        );
        assert_eq!(stats.promoted_slots, 1, "{listing}");
    }

    /// A byte slot is counted as a promoted byte slot when the promotion
    /// that takes it runs after a callee-saved register was borrowed: `al`
    /// and `edx` are read and `ecx` counts in the loop, `esi` and `edi`
    /// have no low byte, so only the borrowed `ebx` can hold the byte.
    #[test]
    fn a_byte_slot_promoted_after_borrowing_a_register_is_counted() {
        let mut r = residual(vec![
            block(
                0,
                asm(|a| {
                    a.sub(esp, 4)?;
                    a.mov(byte_ptr(esp), 0)
                }),
                jump(1),
            ),
            block(
                1,
                asm(|a| {
                    a.add(byte_ptr(esp), al)?;
                    a.add(eax, edx)?;
                    a.dec(ecx)
                }),
                branch(Cc::ne, 1, 2),
            ),
            block(
                2,
                asm(|a| {
                    a.movzx(eax, byte_ptr(esp))?;
                    a.add(esp, 4)?;
                    a.ret()
                }),
                Terminator::Exit,
            ),
        ]);
        let stats = crate::optimize(&mut r);
        let listing = listing(&r);
        assert!(
            listing.contains("push ebx") && !listing.contains("[esp]"),
            "{listing}"
        );
        assert_eq!(
            (stats.promoted_slots, stats.promoted_byte_slots),
            (1, 1),
            "{listing}"
        );
    }

    /// `pushed` runs on cleaned code after `widen`: the byte load into
    /// `dl` becomes `movzx edx`, which leaves `inc edx` dead; until the
    /// clean-up removes it, its read of `edx` keeps `edx` busy over `edi`'s
    /// work (and `eax` is returned, `ecx` read), so `edi` and its save stay.
    #[test]
    fn a_register_a_widened_byte_frees_takes_over_a_pushed_one() {
        let mut r = crate::testutil::function(|a| {
            a.push(edi)?;
            a.mov(edi, dword_ptr(esi + 4))?;
            a.imul_2(edi, edi)?;
            a.mov(dword_ptr(esi + 8), edi)?;
            a.inc(edx)?;
            a.mov(dl, byte_ptr(esi))?;
            a.mov(byte_ptr(ecx), dl)?;
            a.pop(edi)?;
            a.ret()
        });
        r.edx_dead_at_return = true;
        crate::optimize(&mut r);
        insta::assert_snapshot!(listing(&r), @"
        L0:
          mov edx,[esi+4]
          imul edx,edx
          mov [esi+8],edx
          movzx edx,byte [esi]
          mov [ecx],dl
          ret
          exit
        ");
    }

    /// A loop closed before the recompaction of moves stays counted when
    /// constants and closed loops run again after it.
    #[test]
    fn a_loop_closed_before_moves_are_recompacted_is_counted() {
        let mut r = closed_then_rotated();
        let stats = crate::optimize(&mut r);
        assert_eq!(
            (stats.closed_loops, stats.recompacted_runs),
            (1, 1),
            "{}",
            listing(&r)
        );
    }

    /// A walk unrolled before the recompaction of moves stays counted
    /// when constants and closed loops run again after it.
    #[test]
    fn a_walk_unrolled_before_moves_are_recompacted_is_counted() {
        let mut r = walk_then_rotated();
        let stats = crate::optimize(&mut r);
        assert_eq!(
            (stats.unrolled_loops, stats.recompacted_runs),
            (1, 1),
            "{}",
            listing(&r)
        );
    }

    /// The rotated walk becomes a self-loop once its header is copied into
    /// the body; the entry then meets the old header, which fixes the
    /// turns (two), and the loop is unrolled: constants and loops run
    /// again after the copy.
    #[test]
    fn a_rotated_walk_is_unrolled_once_its_header_is_copied() {
        let mut r = rotated_walk();
        let stats = crate::optimize(&mut r);
        insta::assert_snapshot!(listing(&r), @"
        L0:
          add ebx,[eax+4]
          add ebx,[eax+8]
          lea eax,[eax+0Ch]
          ret
          exit
        ");
        assert_eq!((stats.duplicated_headers, stats.unrolled_loops), (1, 1));
    }
}
