//! [`Residual::verify`]: the shape the optimizer and the emitter rely on.

use std::collections::HashSet;

use iced_x86::{ConditionCode, FlowControl};

use crate::{Item, Label, Residual, Terminator};

/// How a residual breaks the shape [`Residual::verify`] checks. Every
/// message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResidualError {
    /// The residual names no entry block.
    #[error("the residual program has no entry block")]
    NoEntry,
    /// A terminator, call or the entry names a label no block has.
    #[error("residual block {0} is referenced but not defined")]
    UnknownLabel(Label),
    /// Two blocks share a label.
    #[error("residual block {0} is defined twice")]
    DuplicateLabel(Label),
    /// A `Branch` terminator without a condition.
    #[error("the branch ending residual block {0} has no condition code")]
    NoCondition(Label),
    /// An item other than a block's last one leaves the block (a `ret`, a
    /// jump).
    #[error("item {index} of residual block {label} ({item}) leaves the block in the middle")]
    LeavesEarly {
        /// The block.
        label: Label,
        /// The item's index in it.
        index: usize,
        /// The item, as text.
        item: String,
    },
    /// A block whose last item leaves (a `ret`, a jump) ends in a jump or
    /// branch that can never run.
    #[error("residual block {label} ends in {item} but its terminator is {terminator}, not exit")]
    DeadTerminator {
        /// The block.
        label: Label,
        /// Its last item, as text.
        item: String,
        /// Its terminator, as text.
        terminator: String,
    },
}

/// Whether an item transfers control away for good: a return, a direct or
/// indirect jump. (A conditional branch into the original code, such as a
/// fallback `loop`, continues with the next item when not taken.)
fn leaves(item: &Item) -> bool {
    match item {
        Item::Instr(ins, _) => matches!(
            ins.flow_control(),
            FlowControl::Return | FlowControl::UnconditionalBranch | FlowControl::IndirectBranch
        ),
        Item::Address { .. } | Item::CallLabel(..) => false,
    }
}

impl Residual {
    /// Checks the residual's shape: an entry block; unique labels; every
    /// label a terminator, a call or the entry names is defined; every
    /// branch has a condition; items are straight-line (only a block's last
    /// item may leave it); a block
    /// whose last item leaves ends in [`Terminator::Exit`].
    ///
    /// An `Exit` block whose last item does not leave is allowed: the
    /// emitter puts a trap after it (a call to a function that does not
    /// return, for example).
    pub fn verify(&self) -> Result<(), ResidualError> {
        let entry = self.entry.ok_or(ResidualError::NoEntry)?;
        let mut defined = HashSet::new();
        for block in &self.blocks {
            if !defined.insert(block.label) {
                return Err(ResidualError::DuplicateLabel(block.label));
            }
        }
        let known = |l: Label| {
            if defined.contains(&l) {
                Ok(())
            } else {
                Err(ResidualError::UnknownLabel(l))
            }
        };
        known(entry)?;
        for block in &self.blocks {
            for l in block.successors() {
                known(l)?;
            }
            if let Terminator::Branch { cc, .. } = block.terminator {
                if cc == ConditionCode::None {
                    return Err(ResidualError::NoCondition(block.label));
                }
            }
            let last = block.items.len().saturating_sub(1);
            for (index, item) in block.items.iter().enumerate() {
                if leaves(item) && index < last {
                    return Err(ResidualError::LeavesEarly {
                        label: block.label,
                        index,
                        item: item.to_string(),
                    });
                }
            }
            match block.items.last() {
                Some(item) if leaves(item) && block.terminator != Terminator::Exit => {
                    return Err(ResidualError::DeadTerminator {
                        label: block.label,
                        item: item.to_string(),
                        terminator: block.terminator.to_string(),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use iced_x86::{Code, Instruction, Register};

    use super::*;
    use crate::{Block, Origin};

    fn instr(ins: Instruction) -> Item {
        Item::Instr(ins, Origin::Original(0x1000))
    }

    fn ret() -> Item {
        instr(Instruction::with(Code::Retnd))
    }

    fn mov() -> Item {
        instr(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 1).unwrap())
    }

    fn jump(to: u32) -> Terminator {
        Terminator::Jump(Label(to), Origin::Glue(0x1000))
    }

    fn block(label: u32, items: Vec<Item>, terminator: Terminator) -> Block {
        Block {
            label: Label(label),
            items,
            terminator,
        }
    }

    fn residual(blocks: Vec<Block>) -> Residual {
        Residual {
            entry: blocks.first().map(|b| b.label),
            blocks,
            ..Residual::default()
        }
    }

    #[test]
    fn a_well_formed_residual_passes() {
        let r = residual(vec![
            block(
                0,
                vec![mov(), Item::CallLabel(Label(2), Origin::Glue(0))],
                jump(1),
            ),
            block(1, vec![mov()], Terminator::Exit),
            block(2, vec![ret()], Terminator::Exit),
        ]);
        assert_eq!(r.verify(), Ok(()));
    }

    #[test]
    fn each_broken_shape_is_named() {
        let branch = |cc| Terminator::Branch {
            cc,
            taken: Label(0),
            not_taken: Label(0),
            origin: Origin::Glue(0),
        };
        let jmp = instr(Instruction::with_branch(Code::Jmp_rel32_32, 0x2000).unwrap());
        let cases = [
            (Residual::default(), "no entry block"),
            (
                residual(vec![block(0, vec![], jump(7))]),
                "L7 is referenced",
            ),
            (
                residual(vec![
                    block(0, vec![], Terminator::Exit),
                    block(0, vec![], Terminator::Exit),
                ]),
                "L0 is defined twice",
            ),
            (
                residual(vec![block(0, vec![], branch(ConditionCode::None))]),
                "no condition",
            ),
            (
                residual(vec![block(0, vec![ret(), mov()], Terminator::Exit)]),
                "item 0 of residual block L0 (ret)",
            ),
            (
                residual(vec![block(0, vec![jmp, mov()], Terminator::Exit)]),
                "item 0 of residual block L0 (jmp",
            ),
            (
                residual(vec![block(0, vec![ret()], jump(0))]),
                "ends in ret but its terminator is jmp L0",
            ),
        ];
        for (r, message) in cases {
            let e = r.verify().expect_err(message).to_string();
            assert!(e.contains(message), "{e:?} does not say {message:?}");
        }
        let good = residual(vec![block(0, vec![], branch(ConditionCode::e))]);
        assert_eq!(good.verify(), Ok(()));
        // A conditional branch into the original code falls through when
        // not taken (a fallback `loop`, say).
        let jne = instr(Instruction::with_branch(Code::Jne_rel32_32, 0x2000).unwrap());
        let good = residual(vec![block(0, vec![jne, ret()], Terminator::Exit)]);
        assert_eq!(good.verify(), Ok(()));
    }
}
