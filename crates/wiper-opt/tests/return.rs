//! What `ret` reads: `edx` only unless the residual says no caller reads it.

use iced_x86::{Code, Instruction, Register};
use wiper_residual::{Block, Item, Label, Origin, Residual, Terminator};

/// `mov edx, 7; mov eax, 1; ret`, optimized.
fn optimized(edx_dead_at_return: bool) -> Vec<Item> {
    let ins = |i: Instruction| Item::Instr(i, Origin::Original(0x1000));
    let mut residual = Residual {
        entry: Some(Label(0)),
        blocks: vec![Block {
            label: Label(0),
            items: vec![
                ins(Instruction::with2(Code::Mov_r32_imm32, Register::EDX, 7).unwrap()),
                ins(Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 1).unwrap()),
                ins(Instruction::with(Code::Retnd)),
            ],
            terminator: Terminator::Exit,
        }],
        edx_dead_at_return,
        ..Residual::default()
    };
    wiper_opt::optimize(&mut residual);
    residual.blocks.remove(0).items
}

#[test]
fn edx_is_live_at_ret_unless_no_caller_reads_it() {
    assert_eq!(optimized(false).len(), 3);
    let items = optimized(true);
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().all(|i| !matches!(i,
        Item::Instr(ins, _) if ins.op_count() > 0 && ins.op0_register() == Register::EDX)));
}
