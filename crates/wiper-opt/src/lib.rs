//! Residual optimizer: cleans up the residual code the specializer
//! produces before it is encoded.
//!
//! The specializer emits residual code instruction by instruction, so values
//! that the original kept in its stack frame stay there, and moves pile up
//! between stores and loads. Passes, all over the residual control-flow
//! graph:
//! 0. **Control-flow cleanup** ([`cfg`]): jump threading, merging of
//!    straight-line blocks, removal of unreachable ones.
//! 1. **Stack-slot promotion** ([`frame`], [`promote`]): frame slots
//!    accessed only as whole 4-byte `[esp+d]` operands move into free
//!    registers, and byte slots into free byte registers (after dword
//!    constant stores over byte slots are split into byte stores).
//! 2. **Copy propagation** ([`cleanup`]): reads of a copied register read
//!    the original. Then **affine value numbering** ([`affine`]), local to
//!    a block: recomputations of a value a register already holds go, and
//!    sums, scalings and offsets of one value become one `lea`, `shl` or
//!    `imul` from a register that holds it.
//! 3. **Dead-code elimination** ([`cleanup`]): items whose results are never
//!    read go.
//! 4. **Peepholes** ([`peephole`]): register swaps, two-address
//!    arithmetic, redundant `test`s, folded loads and address arithmetic.
//! 5. **Frame elimination** ([`unframe`]): when only register saves and
//!    stack-pointer adjustments are left of the frame (saves of registers
//!    the code changes become a `push`/`pop` pair).
//! 6. **Saved registers freed** ([`scratch`]): a callee-saved register
//!    saved in a scratch register only to hold temporaries swaps roles with
//!    it. **Repeated zero tests** ([`branches`]): a branch on `r == 0` right
//!    after one on the same `r` is decided; then passes 0 and 2 to 4 again.
//! 7. **Constants** ([`constants`]) and **closed loops** ([`counted`]):
//!    known register values fold into immediates and decide branches, and
//!    counted self-loops that only add constants become their closed form,
//!    and self-loops with a known small trip count are unrolled
//!    ([`unroll`]); they alternate with passes 0 and 2 to 4 while they
//!    change things.
//! 8. **Offset folding** ([`offsets`]) and **powers** ([`powers`]), with
//!    the peepholes: pointer increments move into the displacements of the
//!    loads that follow, and chains of products become square-and-multiply.
//!
//! Passes 2 to 4 repeat until nothing changes, before and after 5. Assumptions (see
//! docs/specialization.md): at a `ret` the flags are dead (the i386 System V
//! ABI does not preserve them) and so is the function's own frame below the
//! entry stack pointer; everything else a caller can see stays live.

pub mod affine;
pub mod branches;
pub mod cfg;
pub mod cleanup;
pub mod constants;
pub mod counted;
pub mod effects;
pub mod frame;
pub mod liveness;
pub mod offsets;
pub mod peephole;
pub mod powers;
pub mod promote;
pub mod scratch;
pub mod unframe;
pub mod unroll;

use wiper_emit::Residual;

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
    /// Residual items before.
    pub items_before: usize,
    /// Residual items after.
    pub items_after: usize,
}

/// Optimizes `residual` in place.
pub fn optimize(residual: &mut Residual) -> OptStats {
    let count = |r: &Residual| r.blocks.iter().map(|b| b.items.len()).sum::<usize>();
    let items_before = count(residual);
    cfg::simplify(residual);
    let mut calc = effects::EffectsOf::for_residual(residual);
    if let Some(f) = frame::analyze(residual) {
        frame::split_word_stores(residual, &f);
    }
    // Dead stores to frame slots go first, so that they do not hold
    // registers the promotion could give to live slots.
    if let Some(f) = frame::analyze(residual) {
        cleanup::eliminate_dead(residual, &mut calc, Some(&f.slot_of));
    }
    // Promotion and clean-up repeat while slots move: copies removed in one
    // round free registers for the next.
    let (mut promoted_slots, mut promoted_byte_slots, mut affine_rewrites) = (0, 0, 0);
    for _ in 0..4 {
        let (words, bytes) = frame::analyze(residual)
            .map(|f| promote::promote(residual, &f, &mut calc))
            .unwrap_or((0, 0));
        promoted_slots += words;
        promoted_byte_slots += bytes;
        affine_rewrites += clean_up(residual, &mut calc);
        if words == 0 {
            break;
        }
        if let Some(f) = frame::analyze(residual) {
            cleanup::eliminate_dead(residual, &mut calc, Some(&f.slot_of));
        }
    }
    let unframed =
        frame::analyze(residual).is_some_and(|f| unframe::eliminate_frame(residual, &f, &mut calc));
    if unframed {
        affine_rewrites += clean_up(residual, &mut calc);
    }
    cfg::simplify(residual); // the save is looked for in the entry block
    let freed_registers = scratch::free_saved_registers(residual, &mut calc);
    if freed_registers > 0 {
        affine_rewrites += clean_up(residual, &mut calc);
    }
    let decided_branches = branches::decide_repeated_tests(residual, &mut calc);
    if decided_branches > 0 {
        cfg::simplify(residual);
        affine_rewrites += clean_up(residual, &mut calc);
    }
    // Constants and closed loops feed each other: a closed inner loop
    // leaves its counter known, which may close the loop around it.
    let (mut folded_constants, mut closed_loops, mut unrolled_loops) = (0, 0, 0);
    for _ in 0..8 {
        let folded = constants::propagate(residual, &mut calc)
            + unroll::decide_distances(residual, &mut calc);
        let closed = counted::close_loops(residual, &mut calc);
        let unrolled = unroll::unroll_loops(residual, &mut calc);
        if folded + closed + unrolled == 0 {
            break;
        }
        folded_constants += folded;
        closed_loops += closed;
        unrolled_loops += unrolled;
        cfg::simplify(residual);
        affine_rewrites += clean_up(residual, &mut calc);
    }
    OptStats {
        promoted_slots,
        promoted_byte_slots,
        unframed,
        decided_branches,
        freed_registers,
        folded_constants,
        closed_loops,
        unrolled_loops,
        affine_rewrites,
        items_before,
        items_after: count(residual),
    }
}

/// Copy propagation, affine value numbering, dead-code elimination and
/// peepholes until nothing changes (at most 16 rounds); returns the affine
/// rewrites.
fn clean_up(residual: &mut Residual, calc: &mut effects::EffectsOf) -> usize {
    let mut affine_rewrites = 0;
    for _ in 0..16 {
        let copied = cleanup::propagate_copies(residual, calc);
        let reduced = affine::run(residual, calc);
        let removed = cleanup::eliminate_dead(residual, calc, None)
            | cleanup::eliminate_overwritten_parts(residual, calc);
        let rewritten = peephole::run(residual, calc)
            | offsets::fold_offsets(residual, calc)
            | powers::shorten_power_chains(residual, calc);
        affine_rewrites += reduced;
        if !copied && reduced == 0 && !removed && !rewritten {
            break;
        }
    }
    affine_rewrites
}
