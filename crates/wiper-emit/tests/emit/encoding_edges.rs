//! The encoder at its edges: hand-made plans, instructions the encoder
//! refuses, branches the block encoder rewrites, an absolute target among the
//! new code's own addresses, long residuals and a block that loops on itself.

use iced_x86::Code;

use super::*;

/// The original power-O2's last `ret` (after `mov eax,edx` at 0x80490d5).
const RETURN: u64 = 0x80490d7;

#[test]
fn plans_whose_addresses_are_out_of_order_are_refused() {
    let (_, binary) = load("power-O2");
    let good = plan(&binary, 0).unwrap();
    let r = square_first(0, &binary);
    let message = "the plan's data, thunk and code addresses are out of order";
    let bad = [
        Plan {
            thunk_vaddr: good.code_vaddr + 16,
            ..good
        },
        Plan {
            data_vaddr: good.thunk_vaddr + 16,
            ..good
        },
    ];
    for plan in bad {
        let err = encode(&plan, &r).unwrap_err();
        assert_eq!(err, EmitError::Mismatch(message.to_string()), "{plan:?}");
    }
}

/// Thunks are packed from the start of the thunk area: two fit in 16 bytes,
/// not in 8.
#[test]
fn pc_thunks_of_two_registers_fill_a_16_byte_thunk_area() {
    let (bytes, binary) = load("pie_switch-O2");
    let r = usage_and_calls(&binary);
    let roomy = plan(&binary, 0).unwrap();
    let tight = Plan {
        code_vaddr: roomy.thunk_vaddr + 16,
        ..roomy
    };
    let encoded = encode(&tight, &r).unwrap();
    let thunk = tight.thunk_vaddr;
    let expected = vec![(Register::EAX, thunk), (Register::ECX, thunk + 8)];
    assert_eq!(encoded.thunks, expected);
    let step = symbol(&binary, "step");
    let output = write_elf(&bytes, &binary, &tight, &r, &encoded, step, "f").unwrap();
    let path = executable("pie-tight-thunks", &output);
    check_usage_and_calls(&run_binary(&path, &["3", "4", "5"], b"").unwrap());
    let cramped = Plan {
        code_vaddr: roomy.thunk_vaddr + 8,
        ..roomy
    };
    let message = "the plan leaves no room for the PC thunks";
    let err = encode(&cramped, &r).unwrap_err();
    assert_eq!(err, EmitError::Mismatch(message.to_string()));
}

#[test]
fn instructions_the_encoder_refuses_are_named_by_their_origin() {
    let (_, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let origin = 0x80490a4;
    let alone = |ins: Instruction| {
        let item = Item::Instr(ins, Origin::Reduced(origin));
        residual(0, vec![block(0, vec![item], Terminator::Exit)])
    };
    // rax does not exist in 32-bit code.
    let wide = Instruction::with2(Code::Mov_r64_imm64, Register::RAX, 1u64).unwrap();
    let err = encode(&p, &alone(wide)).unwrap_err();
    let message = "The instruction can only be used in 64-bit mode".to_string();
    assert_eq!(err, EmitError::Instruction { origin, message });
    let near16 = Instruction::with_branch(Code::Jmp_rel16, 0x90a0).unwrap();
    let err = encode(&p, &alone(near16)).unwrap_err();
    let message = "only direct branches with a 32-bit target are supported".to_string();
    assert_eq!(err, EmitError::Instruction { origin, message });
}

/// Fake IPs never capture an absolute branch target, even one among the
/// addresses the new code itself will have.
#[test]
fn an_absolute_branch_into_the_new_code_keeps_its_target() {
    let (_, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let target = p.code_vaddr + 1;
    let call = Instruction::with_branch(Code::Call_rel32_32, u64::from(target)).unwrap();
    let mut code = vec![Item::Instr(call, Origin::Original(0x80490a0))];
    code.extend(ret());
    let r = residual(0, vec![block(0, code, Terminator::Exit)]);
    let encoded = encode(&p, &r).unwrap();
    assert_eq!(encoded.lines[0].instruction.near_branch32(), target);
}

#[test]
fn a_long_residual_runs() {
    let e = emit("power-O2", "power", |_, _| {
        let code = asm(|a| {
            a.mov(eax, 0)?;
            for _ in 0..50 {
                a.inc(eax)?;
            }
            a.ret()
        });
        residual(0, vec![block(0, items(code, 0x80490a0), Terminator::Exit)])
    });
    assert_eq!(e.run(&["0", "0", "0"]).stdout_str(), "50\n");
    assert_eq!(e.encoded.instruction_count, 52);
}

/// A `loop` to the original code has only a rel8 form: the block encoder
/// rewrites it into several instructions. Here 40 bytes of code come before
/// it, and every line still shows its own item's origin.
#[test]
fn a_rewritten_loop_after_other_code_keeps_every_origin() {
    // power(x, y, n) = n - 1 == 0 ? 77 : 1 (in the original code).
    let e = emit("power-O2", "power", |_, _| {
        let filler = asm(|a| {
            for _ in 0..8 {
                a.mov(eax, 0x1111_1111)?;
            }
            Ok(())
        });
        let mut code = items(filler, 0x80490a0);
        code.extend(items(asm(|a| a.mov(ecx, dword_ptr(esp + 12))), 0x80490b0));
        let lp = Instruction::with_branch(Code::Loop_rel8_32_ECX, RETURN_ONE).unwrap();
        code.push(Item::Instr(lp, Origin::Fallback(0x80490c6)));
        code.extend(return_77());
        residual(0, vec![block(0, code, Terminator::Exit)])
    });
    assert_eq!(e.run(&["1", "1", "1"]).stdout_str(), "77\n");
    assert_eq!(e.run(&["1", "1", "2"]).stdout_str(), "1\n");
    let origins: Vec<Origin> = e.encoded.lines.iter().map(|l| l.origin.unwrap()).collect();
    let rewritten = origins.len() - 11;
    assert!(rewritten > 1, "{:?}", e.encoded.lines);
    let mut expected = vec![Origin::Original(0x80490a0); 8];
    expected.push(Origin::Original(0x80490b0));
    expected.extend(vec![Origin::Fallback(0x80490c6); rewritten]);
    expected.extend([Origin::Original(0x80490c8); 2]);
    assert_eq!(origins, expected);
}

#[test]
fn two_rewritten_loops_in_a_row_are_refused() {
    let (_, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let lp = Instruction::with_branch(Code::Loop_rel8_32_ECX, RETURN_ONE).unwrap();
    let item = Item::Instr(lp, Origin::Fallback(0x80490c6));
    let r = residual(
        0,
        vec![block(0, vec![item.clone(), item], Terminator::Exit)],
    );
    let message = "two consecutive rewritten short branches are not supported";
    let err = encode(&p, &r).unwrap_err();
    assert_eq!(err, EmitError::Encode(message.to_string()));
}

/// A block that jumps to itself is emitted once, and its jump goes back to
/// its start.
#[test]
fn a_block_that_jumps_to_itself_is_laid_out_once() {
    // power(x, y, n) = 3 n: L1 adds 3 and counts down to the original `ret`.
    let e = emit("power-O2", "power", |_, _| {
        let setup = asm(|a| {
            a.mov(ecx, dword_ptr(esp + 12))?;
            a.xor(eax, eax)
        });
        let mut body = items(
            asm(|a| {
                a.add(eax, 3)?;
                a.dec(ecx)
            }),
            0x80490c0,
        );
        let je = Instruction::with_branch(Code::Je_rel32_32, RETURN).unwrap();
        body.push(Item::Instr(je, Origin::Original(0x80490c6)));
        residual(
            0,
            vec![
                block(0, items(setup, 0x80490a0), jump(1)),
                block(1, body, jump(1)),
            ],
        )
    });
    assert_eq!(e.run(&["0", "0", "4"]).stdout_str(), "12\n");
    // setup, body and the jmp back, each once.
    assert_eq!(e.encoded.instruction_count, 2 + 3 + 1);
    assert_eq!(layout(&e), vec![0, 1]);
    let back = e.encoded.lines.last().unwrap();
    assert_eq!(
        back.instruction.near_branch32(),
        e.encoded.labels[&Label(1)]
    );
}

/// A PIE residual with more instructions than its code's link-time address
/// (pie_switch-O2's code starts at 0x5060), and a `loop` the block encoder
/// rewrites after more bytes of code than that: fake IPs and instruction
/// starts must not count below address 0.
#[test]
fn a_pie_residual_longer_than_its_code_address_runs() {
    const COUNT: usize = 21_000;
    let e = emit("pie_switch-O2", "step", |_, b| {
        let code = asm(|a| {
            a.xor(eax, eax)?;
            for _ in 0..COUNT {
                a.inc(eax)?;
            }
            a.mov(ecx, 1)
        });
        let mut code = items(code, 0x1290);
        let cold = u64::from(symbol(b, "step.cold"));
        let lp = Instruction::with_branch(Code::Loop_rel8_32_ECX, cold).unwrap();
        code.push(Item::Instr(lp, Origin::Fallback(0x12a2)));
        code.extend(ret());
        residual(0, vec![block(0, code, Terminator::Exit)])
    });
    assert!(e.encoded.code_size() > e.plan.code_vaddr);
    assert_eq!(
        e.run(&["0", "0", "0"]).stdout_str(),
        format!("{COUNT}\n0\n")
    );
}
