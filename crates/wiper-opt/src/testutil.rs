//! Helpers for the passes' unit tests: residuals built from a few
//! instructions written with iced's code assembler, and listings to
//! compare with the expected output.

use iced_x86::code_asm::CodeAssembler;
use iced_x86::{ConditionCode, IcedError, Instruction};
use wiper_residual::{Block, Item, Label, Origin, Residual, Terminator};

use crate::effects::EffectsOf;

/// The instructions `f` assembles (32-bit code).
pub fn asm(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<Instruction> {
    let mut a = CodeAssembler::new(32).expect("32-bit assembler");
    f(&mut a).expect("valid instructions");
    a.instructions().to_vec()
}

/// A block labelled `label` of `instructions`, ending in `terminator`.
pub fn block(label: u32, instructions: Vec<Instruction>, terminator: Terminator) -> Block {
    Block {
        label: Label(label),
        items: instructions
            .into_iter()
            .map(|i| Item::Instr(i, Origin::Original(0)))
            .collect(),
        terminator,
    }
}

/// A jump to block `to`.
pub fn jump(to: u32) -> Terminator {
    Terminator::Jump(Label(to), Origin::Original(0))
}

/// A branch on `cc` to block `taken`, else to `not_taken`.
pub fn branch(cc: ConditionCode, taken: u32, not_taken: u32) -> Terminator {
    Terminator::Branch {
        cc,
        taken: Label(taken),
        not_taken: Label(not_taken),
        origin: Origin::Original(0),
    }
}

/// A residual of three blocks: L0 runs `instructions` and branches on
/// `cc` to L1, else to L2; both return.
pub fn two_way(instructions: Vec<Instruction>, cc: ConditionCode) -> Residual {
    let ret = || asm(|a| a.ret());
    diamond(instructions, cc, ret(), ret())
}

/// A residual of three blocks: L0 runs `entry` and branches on `cc` to L1,
/// else to L2; L1 runs `taken` and L2 `not_taken` (each should end in a
/// `ret`), then [`Terminator::Exit`].
pub fn diamond(
    entry: Vec<Instruction>,
    cc: ConditionCode,
    taken: Vec<Instruction>,
    not_taken: Vec<Instruction>,
) -> Residual {
    residual(vec![
        block(0, entry, branch(cc, 1, 2)),
        block(1, taken, Terminator::Exit),
        block(2, not_taken, Terminator::Exit),
    ])
}

/// A residual of `blocks`, entered at the first.
pub fn residual(blocks: Vec<Block>) -> Residual {
    Residual {
        entry: blocks.first().map(|b| b.label),
        blocks,
        data: Vec::new(),
        data_vaddr: 0,
        edx_dead_at_return: false,
    }
}

/// A residual of one block: `f`'s instructions (which should end in a
/// `ret`), then [`Terminator::Exit`].
pub fn function(f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Residual {
    residual(vec![block(0, asm(f), Terminator::Exit)])
}

/// `residual` as text (its `Display`): a label line per block, an item a
/// line, and the terminator (`jmp L1`, `je L1 else L2`, `exit`).
pub fn listing(residual: &Residual) -> String {
    residual.to_string()
}

/// The listing of `residual` after `pass` ran on it once with a fresh
/// [`EffectsOf`].
pub fn after<T>(
    mut residual: Residual,
    pass: impl FnOnce(&mut Residual, &mut EffectsOf) -> T,
) -> String {
    let mut calc = EffectsOf::for_residual(&residual);
    pass(&mut residual, &mut calc);
    listing(&residual)
}

/// Asserts that `pass`, run once on `residual` with a fresh [`EffectsOf`],
/// leaves its listing as it was: a near miss the pass must refuse.
pub fn assert_unchanged<T>(
    residual: Residual,
    pass: impl FnOnce(&mut Residual, &mut EffectsOf) -> T,
) {
    let before = listing(&residual);
    assert_eq!(
        after(residual, pass),
        before,
        "the pass changed a near miss"
    );
}
