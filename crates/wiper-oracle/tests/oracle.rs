//! Runs known instructions natively and checks the outcomes against results
//! computed by hand from the architectural definitions.

use wiper_oracle::iced_x86::code_asm::*;
use wiper_oracle::iced_x86::{Code, Instruction, Register, RepPrefixKind};
use wiper_oracle::{
    assemble, fallthrough_address, flags, is_landing_address, run_code, run_code_with,
    run_instructions, CpuState, Fault, OracleError, Outcome, Rng, RunOptions, CODE_BASE, EAX, EBX,
    ECX, EDI, EDX, ESI, ESP, LANDING_BASE, LANDING_SIZE, SCRATCH_BASE,
};

/// Values at the edges of carry, overflow, sign, parity and half-carry.
const EDGES: [u32; 16] = [
    0,
    1,
    2,
    0xf,
    0x10,
    0x7f,
    0x80,
    0xff,
    0x7fff_ffff,
    0x8000_0000,
    0x8000_0001,
    0xffff_fffe,
    0xffff_ffff,
    0x1234_5678,
    0xdead_beef,
    0x0000_8000,
];

fn even_parity(x: u32) -> bool {
    (x as u8).count_ones() % 2 == 0
}

/// Asserts that the flag `mask` of `out` equals `want`.
fn check_flag(out: &CpuState, mask: u32, want: bool, ctx: &str) {
    let name = flags::NAMES.iter().find(|(m, _)| *m == mask).unwrap().1;
    assert_eq!(out.flag(mask), want, "{name} wrong for {ctx}");
}

/// Asserts a clean fall-through for code of `code_len` bytes.
fn check_fallthrough(o: &Outcome, code_len: usize, ctx: &str) {
    assert_eq!(o.fault, None, "unexpected fault for {ctx}");
    assert_eq!(
        o.next_eip,
        fallthrough_address(code_len),
        "next_eip for {ctx}"
    );
}

/// Asserts that registers other than `changed` are as in `input`.
fn check_regs_kept(input: &CpuState, out: &CpuState, changed: &[usize], ctx: &str) {
    for r in wiper_x86::Reg::ALL {
        let (i, name) = (r.index(), r.name());
        if !changed.contains(&i) {
            assert_eq!(out.regs[i], input.regs[i], "{name} changed for {ctx}");
        }
    }
}

#[test]
fn add_eax_ebx_flags() {
    let code = assemble(|a| a.add(eax, ebx)).unwrap();
    let mut rng = Rng::new(1);
    let mut inputs = Vec::new();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for &x in &EDGES {
        for &y in &EDGES {
            pairs.push((x, y));
        }
    }
    for _ in 0..2000 {
        pairs.push((rng.interesting_u32(), rng.interesting_u32()));
    }
    for &(x, y) in &pairs {
        let mut s = CpuState::random(&mut rng, 256);
        s.regs[EAX] = x;
        s.regs[EBX] = y;
        inputs.push(s);
    }
    let outs = run_code(&code, &inputs).unwrap();
    assert_eq!(outs.len(), inputs.len());
    for (s, o) in inputs.iter().zip(&outs) {
        let (a, b) = (s.regs[EAX], s.regs[EBX]);
        let ctx = format!("add {a:#x}, {b:#x}");
        let r = a.wrapping_add(b);
        check_fallthrough(o, code.len(), &ctx);
        let out = &o.state;
        assert_eq!(out.regs[EAX], r, "{ctx}");
        check_regs_kept(s, out, &[EAX], &ctx);
        assert_eq!(out.mem, s.mem, "memory changed for {ctx}");
        check_flag(
            out,
            flags::CF,
            u64::from(a) + u64::from(b) > 0xffff_ffff,
            &ctx,
        );
        check_flag(out, flags::ZF, r == 0, &ctx);
        check_flag(out, flags::SF, r >> 31 == 1, &ctx);
        check_flag(out, flags::OF, ((a ^ r) & (b ^ r)) >> 31 == 1, &ctx);
        check_flag(out, flags::PF, even_parity(r), &ctx);
        check_flag(out, flags::AF, (a ^ b ^ r) & 0x10 != 0, &ctx);
        check_flag(out, flags::DF, s.flag(flags::DF), &ctx);
    }
}

#[test]
fn push_and_pop() {
    let mut rng = Rng::new(2);
    let inputs: Vec<CpuState> = (0..200).map(|_| CpuState::random(&mut rng, 512)).collect();

    let push = assemble(|a| a.push(eax)).unwrap();
    for (s, o) in inputs.iter().zip(run_code(&push, &inputs).unwrap()) {
        check_fallthrough(&o, push.len(), "push eax");
        let stack = s.regs[ESP] - 4;
        assert_eq!(o.state.regs[ESP], stack);
        check_regs_kept(s, &o.state, &[ESP], "push eax");
        assert_eq!(o.state.read_u32(stack), Some(s.regs[EAX]));
        let mut want = s.clone();
        want.write_u32(stack, s.regs[EAX]);
        assert_eq!(o.state.mem, want.mem, "only the pushed dword changes");
        assert_eq!(o.state.eflags, s.eflags);
    }

    let pop = assemble(|a| a.pop(ebx)).unwrap();
    for (s, o) in inputs.iter().zip(run_code(&pop, &inputs).unwrap()) {
        check_fallthrough(&o, pop.len(), "pop ebx");
        assert_eq!(o.state.regs[ESP], s.regs[ESP] + 4);
        assert_eq!(o.state.regs[EBX], s.read_u32(s.regs[ESP]).unwrap());
        check_regs_kept(s, &o.state, &[ESP, EBX], "pop ebx");
        assert_eq!(o.state.mem, s.mem);
    }

    let both = assemble(|a| {
        a.push(eax)?;
        a.pop(ebx)
    })
    .unwrap();
    for (s, o) in inputs.iter().zip(run_code(&both, &inputs).unwrap()) {
        check_fallthrough(&o, both.len(), "push eax; pop ebx");
        assert_eq!(o.state.regs[ESP], s.regs[ESP]);
        assert_eq!(o.state.regs[EBX], s.regs[EAX]);
        assert_eq!(o.state.read_u32(s.regs[ESP] - 4), Some(s.regs[EAX]));
    }
}

#[test]
fn call_rel32_lands_and_pushes_return_address() {
    let mut rng = Rng::new(3);
    for target in [LANDING_BASE + 0x40, CODE_BASE + 0x1000, CODE_BASE - 1] {
        let code = assemble(|a| a.call(u64::from(target))).unwrap();
        assert_eq!(code[0], 0xe8, "call rel32");
        assert_eq!(code.len(), 5);
        assert!(is_landing_address(target, code.len()));
        let inputs: Vec<CpuState> = (0..50).map(|_| CpuState::random(&mut rng, 256)).collect();
        for (s, o) in inputs.iter().zip(run_code(&code, &inputs).unwrap()) {
            assert_eq!(o.fault, None);
            assert_eq!(o.next_eip, target);
            let stack = s.regs[ESP] - 4;
            assert_eq!(o.state.regs[ESP], stack);
            assert_eq!(o.state.read_u32(stack), Some(fallthrough_address(5)));
            check_regs_kept(s, &o.state, &[ESP], "call");
            assert_eq!(o.state.eflags, s.eflags);
        }
    }
}

#[test]
fn ret_goes_where_the_stack_says() {
    let mut rng = Rng::new(4);
    for (imm, pop) in [(None, 4u32), (Some(8u32), 12)] {
        let code = assemble(|a| match imm {
            None => a.ret(),
            Some(n) => a.ret_1(n),
        })
        .unwrap();
        let mut inputs = Vec::new();
        for i in 0..100 {
            let mut s = CpuState::random(&mut rng, 256);
            let target = if i % 4 == 0 {
                fallthrough_address(code.len())
            } else {
                loop {
                    let t = LANDING_BASE + rng.below(LANDING_SIZE);
                    if is_landing_address(t, code.len()) {
                        break t;
                    }
                }
            };
            let stack = s.regs[ESP];
            s.write_u32(stack, target);
            inputs.push(s);
        }
        for (s, o) in inputs.iter().zip(run_code(&code, &inputs).unwrap()) {
            let target = s.read_u32(s.regs[ESP]).unwrap();
            assert_eq!(o.fault, None, "ret to {target:#x}");
            assert_eq!(o.next_eip, target);
            assert_eq!(o.state.regs[ESP], s.regs[ESP] + pop);
            check_regs_kept(s, &o.state, &[ESP], "ret");
            assert_eq!(o.state.mem, s.mem);
            assert_eq!(o.state.eflags, s.eflags);
        }
    }
}

#[test]
fn jz_taken_and_not_taken() {
    let mut rng = Rng::new(5);
    // Short forward, short backward and near targets.
    for target in [CODE_BASE + 0x30, CODE_BASE - 0x20, LANDING_BASE + 0x10] {
        let code = assemble(|a| a.je(u64::from(target))).unwrap();
        let inputs: Vec<CpuState> = (0..100).map(|_| CpuState::random(&mut rng, 64)).collect();
        for (s, o) in inputs.iter().zip(run_code(&code, &inputs).unwrap()) {
            assert_eq!(o.fault, None);
            let want = if s.flag(flags::ZF) {
                target
            } else {
                fallthrough_address(code.len())
            };
            assert_eq!(o.next_eip, want, "jz {target:#x}, ZF={}", s.flag(flags::ZF));
            assert_eq!(o.state, *s, "jz changes nothing");
        }
    }
}

#[test]
fn div_by_zero_faults_and_batch_continues() {
    let code = assemble(|a| a.div(ecx)).unwrap();
    // (edx, eax, ecx): fine, zero, fine, overflow, zero, fine.
    let cases = [
        (0, 100, 7),
        (0, 100, 0),
        (3, 0x1234_5678, 0x10),
        (5, 0, 5),
        (0xffff_ffff, 0xffff_ffff, 0),
        (0x0fff_ffff, 0xffff_ffff, 0xffff_ffff),
    ];
    let inputs: Vec<CpuState> = cases
        .iter()
        .map(|&(d, a, c)| {
            let mut s = CpuState::new();
            s.regs[EDX] = d;
            s.regs[EAX] = a;
            s.regs[ECX] = c;
            s
        })
        .collect();
    let outs = run_code(&code, &inputs).unwrap();
    assert_eq!(outs.len(), cases.len());
    for ((s, o), &(d, a, c)) in inputs.iter().zip(&outs).zip(&cases) {
        let dividend = (u64::from(d) << 32) | u64::from(a);
        let ctx = format!("div {dividend:#x} / {c:#x}");
        let quotient = dividend.checked_div(u64::from(c));
        match quotient {
            Some(q) if q <= u64::from(u32::MAX) => {
                check_fallthrough(o, code.len(), &ctx);
                assert_eq!(o.state.regs[EAX], q as u32, "{ctx}");
                assert_eq!(o.state.regs[EDX], (dividend % u64::from(c)) as u32, "{ctx}");
                check_regs_kept(s, &o.state, &[EAX, EDX], &ctx);
            }
            _ => {
                assert_eq!(o.fault, Some(Fault::DivideError), "{ctx}");
                assert_eq!(o.next_eip, CODE_BASE, "faulting instruction for {ctx}");
                assert_eq!(o.state.regs, s.regs, "a fault leaves registers for {ctx}");
            }
        }
    }
}

/// Byte-by-byte reference for `rep movsb`.
fn movsb_reference(s: &CpuState) -> CpuState {
    let mut r = s.clone();
    let step: u32 = if s.flag(flags::DF) { u32::MAX } else { 1 };
    while r.regs[ECX] != 0 {
        let b = r.read_u8(r.regs[ESI]).unwrap();
        r.write_bytes(r.regs[EDI], &[b]);
        r.regs[ESI] = r.regs[ESI].wrapping_add(step);
        r.regs[EDI] = r.regs[EDI].wrapping_add(step);
        r.regs[ECX] -= 1;
    }
    r
}

#[test]
fn rep_movsb_both_directions() {
    let code = assemble(|a| a.rep().movsb()).unwrap();
    let mut rng = Rng::new(6);
    let mut inputs = Vec::new();
    for df in [false, true] {
        for n in (0..64).chain([255, 256]) {
            let mut s = CpuState::random(&mut rng, 1024);
            s.set_flag(flags::DF, df);
            s.regs[ECX] = n;
            if df {
                s.regs[ESI] = SCRATCH_BASE + 0x1ff;
                s.regs[EDI] = SCRATCH_BASE + 0x3ff;
            } else {
                s.regs[ESI] = SCRATCH_BASE + 0x100;
                s.regs[EDI] = SCRATCH_BASE + 0x200;
            }
            inputs.push(s);
        }
    }
    for (s, o) in inputs.iter().zip(run_code(&code, &inputs).unwrap()) {
        let ctx = format!("rep movsb n={} DF={}", s.regs[ECX], s.flag(flags::DF));
        check_fallthrough(&o, code.len(), &ctx);
        let want = movsb_reference(s);
        assert_eq!(o.state.regs, want.regs, "{ctx}");
        assert_eq!(o.state.mem, want.mem, "{ctx}");
        assert_eq!(o.state.eflags, s.eflags, "{ctx}");
    }
}

#[test]
fn two_instruction_sequence_adds_64_bits() {
    let code = assemble(|a| {
        a.add(eax, ebx)?;
        a.adc(ecx, edx)
    })
    .unwrap();
    let mut rng = Rng::new(7);
    let inputs: Vec<CpuState> = (0..1000).map(|_| CpuState::random(&mut rng, 128)).collect();
    for (s, o) in inputs.iter().zip(run_code(&code, &inputs).unwrap()) {
        let x = (u64::from(s.regs[ECX]) << 32) | u64::from(s.regs[EAX]);
        let y = (u64::from(s.regs[EDX]) << 32) | u64::from(s.regs[EBX]);
        let (sum, carry) = x.overflowing_add(y);
        let ctx = format!("{x:#x} + {y:#x}");
        check_fallthrough(&o, code.len(), &ctx);
        assert_eq!(o.state.regs[EAX], sum as u32, "{ctx}");
        assert_eq!(o.state.regs[ECX], (sum >> 32) as u32, "{ctx}");
        check_regs_kept(s, &o.state, &[EAX, ECX], &ctx);
        check_flag(&o.state, flags::CF, carry, &ctx);
        let hi = (sum >> 32) as u32;
        check_flag(&o.state, flags::ZF, hi == 0, &ctx);
        check_flag(&o.state, flags::SF, hi >> 31 == 1, &ctx);
        let overflow = (x as i64).checked_add(y as i64).is_none();
        check_flag(&o.state, flags::OF, overflow, &ctx);
    }
}

#[test]
fn twenty_thousand_states_in_one_batch() {
    let code = assemble(|a| a.xor(eax, ebx)).unwrap();
    let mut rng = Rng::new(8);
    let inputs: Vec<CpuState> = (0..20_000)
        .map(|_| CpuState::random(&mut rng, 4096))
        .collect();
    let outs = run_code(&code, &inputs).unwrap();
    assert_eq!(outs.len(), inputs.len());
    for (s, o) in inputs.iter().zip(&outs) {
        check_fallthrough(o, code.len(), "xor");
        let r = s.regs[EAX] ^ s.regs[EBX];
        assert_eq!(o.state.regs[EAX], r);
        check_flag(&o.state, flags::CF, false, "xor");
        check_flag(&o.state, flags::OF, false, "xor");
        check_flag(&o.state, flags::ZF, r == 0, "xor");
        check_flag(&o.state, flags::PF, even_parity(r), "xor");
        assert_eq!(o.state.mem, s.mem);
    }
}

#[test]
fn indirect_jump_lands_or_faults() {
    let code = assemble(|a| a.jmp(eax)).unwrap();
    let mut rng = Rng::new(9);
    let mut inputs = Vec::new();
    for i in 0..200 {
        let mut s = CpuState::random(&mut rng, 64);
        s.regs[EAX] = if i % 10 == 0 {
            0x1234 // unmapped
        } else {
            loop {
                let t = LANDING_BASE + rng.below(LANDING_SIZE);
                if is_landing_address(t, code.len()) {
                    break t;
                }
            }
        };
        inputs.push(s);
    }
    for (s, o) in inputs.iter().zip(run_code(&code, &inputs).unwrap()) {
        let t = s.regs[EAX];
        assert_eq!(o.next_eip, t);
        if t == 0x1234 {
            assert!(
                matches!(
                    o.fault,
                    Some(Fault::PageFault {
                        address: 0x1234,
                        ..
                    })
                ),
                "{:?}",
                o.fault
            );
        } else {
            assert_eq!(o.fault, None);
            assert_eq!(o.state, *s);
        }
    }
}

#[test]
fn memory_faults_report_the_address() {
    let code = assemble(|a| a.mov(eax, dword_ptr(ebx))).unwrap();
    let mut inputs = Vec::new();
    for addr in [
        SCRATCH_BASE + 8,
        0x1000,
        SCRATCH_BASE + 0xffe,
        SCRATCH_BASE + 12,
    ] {
        let mut s = CpuState::new();
        s.write_u32(SCRATCH_BASE + 8, 0xcafe_f00d);
        s.write_u32(SCRATCH_BASE + 12, 0x0bad_cafe);
        s.regs[EBX] = addr;
        inputs.push(s);
    }
    let outs = run_code(&code, &inputs).unwrap();
    assert_eq!(outs[0].state.regs[EAX], 0xcafe_f00d);
    assert!(matches!(
        outs[1].fault,
        Some(Fault::PageFault { address: 0x1000, error_code }) if error_code & 2 == 0
    ));
    assert_eq!(outs[1].next_eip, CODE_BASE);
    // A dword straddling the end of the one-page window.
    assert!(matches!(
        outs[2].fault,
        Some(Fault::PageFault { address, .. }) if address == SCRATCH_BASE + 0x1000
    ));
    assert_eq!(outs[3].state.regs[EAX], 0x0bad_cafe);
    assert_eq!(outs[3].fault, None);
}

#[test]
fn endless_loop_times_out_and_batch_continues() {
    let code = assemble(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.test(eax, eax)?;
        a.jnz(top)
    })
    .unwrap();
    let inputs: Vec<CpuState> = [0u32, 1, 0]
        .iter()
        .map(|&v| {
            let mut s = CpuState::new();
            s.regs[EAX] = v;
            s
        })
        .collect();
    let outs = run_code_with(&code, &inputs, &RunOptions::with_timeout_ms(50)).unwrap();
    check_fallthrough(&outs[0], code.len(), "eax=0");
    assert_eq!(outs[1].fault, Some(Fault::Timeout));
    check_fallthrough(&outs[2], code.len(), "eax=0 after a timeout");
}

#[test]
fn exit_syscall_kills_only_its_state() {
    let code = assemble(|a| a.int(0x80)).unwrap();
    // getpid (20) is harmless; exit (1) ends the process.
    let inputs: Vec<CpuState> = [20u32, 1, 20, 20]
        .iter()
        .map(|&n| {
            let mut s = CpuState::new();
            s.regs[EAX] = n;
            s.regs[EBX] = 7;
            s
        })
        .collect();
    let outs = run_code(&code, &inputs).unwrap();
    assert_eq!(outs.len(), 4);
    assert!(matches!(outs[1].fault, Some(Fault::ProcessDied { .. })));
    for i in [0, 2, 3] {
        check_fallthrough(&outs[i], code.len(), "getpid");
        assert!(outs[i].state.regs[EAX] > 0, "a pid");
    }
}

#[test]
fn traps_are_classified() {
    let mut s = CpuState::new();
    s.set_flag(flags::OF, true);
    for (code, want) in [
        (assemble(|a| a.ud2()).unwrap(), Fault::InvalidOpcode),
        (assemble(|a| a.int3()).unwrap(), Fault::Breakpoint),
        (
            assemble(|a| a.hlt()).unwrap(),
            Fault::GeneralProtection { error_code: 0 },
        ),
    ] {
        let o = &run_code(&code, std::slice::from_ref(&s)).unwrap()[0];
        assert_eq!(o.fault.as_ref(), Some(&want));
        assert_eq!(o.next_eip, CODE_BASE);
        assert_eq!(o.state, s);
    }
}

#[test]
fn odd_and_empty_windows() {
    // 10-byte window: the store lands at the end of the window.
    let code = assemble(|a| a.mov(dword_ptr(esi), eax)).unwrap();
    let mut s = CpuState::with_mem_len(10);
    s.regs[ESI] = SCRATCH_BASE + 6;
    s.regs[EAX] = 0x4433_2211;
    let o = &run_code(&code, &[s]).unwrap()[0];
    assert_eq!(o.fault, None);
    assert_eq!(o.state.mem, [0, 0, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44]);

    // No window at all: pure register code.
    let code = assemble(|a| a.sub(eax, ebx)).unwrap();
    let mut s = CpuState::with_mem_len(0);
    s.regs[EAX] = 5;
    s.regs[EBX] = 7;
    let o = &run_code(&code, &[s]).unwrap()[0];
    assert_eq!(o.state.regs[EAX], (-2i32) as u32);
    assert!(o.state.flag(flags::CF | flags::SF));
}

#[test]
fn edi_is_written_by_stosd_through_instructions_api() {
    let ins = [
        Instruction::with2(Code::Mov_r32_rm32, Register::EAX, Register::EDX).unwrap(),
        Instruction::with_stosd(32, RepPrefixKind::None).unwrap(),
    ];
    let mut s = CpuState::new();
    s.regs[EDX] = 0xabcd_ef01;
    s.regs[EDI] = SCRATCH_BASE + 0x20;
    let o = &run_instructions(&ins, &[s]).unwrap()[0];
    assert_eq!(o.fault, None);
    assert_eq!(o.state.read_u32(SCRATCH_BASE + 0x20), Some(0xabcd_ef01));
    assert_eq!(o.state.regs[EDI], SCRATCH_BASE + 0x24);
}

#[test]
fn bad_batches_are_rejected() {
    let code = assemble(|a| a.nop()).unwrap();
    let r = run_code(
        &code,
        &[CpuState::with_mem_len(16), CpuState::with_mem_len(32)],
    );
    assert!(matches!(
        r,
        Err(OracleError::MemorySizeMismatch { index: 1, .. })
    ));
    assert!(run_code(&code, &[]).unwrap().is_empty());
    assert!(matches!(
        run_code(&vec![0x90; 0x9000], &[CpuState::new()]),
        Err(OracleError::CodeTooLong { .. })
    ));
}

#[test]
fn only_documented_flags_are_loaded() {
    // TF, AC, NT, ID etc. in the input must not take effect (TF would trap, AC
    // would make the misaligned load fault).
    let code = assemble(|a| a.mov(eax, dword_ptr(esi + 1))).unwrap();
    let mut s = CpuState::new();
    s.eflags = u32::MAX;
    s.regs[ESI] = SCRATCH_BASE + 0x10;
    s.write_u32(SCRATCH_BASE + 0x11, 0x1234_5678);
    let o = &run_code(&code, &[s]).unwrap()[0];
    check_fallthrough(o, code.len(), "misaligned load with all flags set");
    assert_eq!(o.state.regs[EAX], 0x1234_5678);
    assert_eq!(o.state.eflags, flags::MASK);
}

#[test]
fn garbage_esp_and_memory_indirect_call() {
    // call [esi]: target read from the window, esp points nowhere, so the
    // push faults; with a valid esp the call lands.
    let code = assemble(|a| a.call(dword_ptr(esi))).unwrap();
    let target = LANDING_BASE + 0x123;
    let mut good = CpuState::new();
    good.regs[ESI] = SCRATCH_BASE + 0x40;
    good.write_u32(SCRATCH_BASE + 0x40, target);
    let mut bad = good.clone();
    bad.regs[ESP] = 0x10;
    let outs = run_code(&code, &[bad.clone(), good.clone()]).unwrap();
    assert!(
        matches!(outs[0].fault, Some(Fault::PageFault { address: 0xc, error_code }) if error_code & 2 != 0),
        "{:?}",
        outs[0].fault
    );
    assert_eq!(outs[0].state.regs, bad.regs);
    assert_eq!(outs[1].fault, None);
    assert_eq!(outs[1].next_eip, target);
    assert_eq!(
        outs[1].state.read_u32(good.regs[ESP] - 4),
        Some(fallthrough_address(code.len()))
    );
}

/// `gs` and `fs` are based below the window: `mov eax, gs:[d]` reads the
/// window at `GS_BASE + d`, a store through `fs` writes at `FS_BASE + d`,
/// and `lea` ignores the segment.
#[test]
fn gs_and_fs_are_based_in_the_window() {
    use wiper_oracle::iced_x86::MemoryOperand;
    use wiper_oracle::{FS_BASE, GS_BASE};
    let operand = |base: Register, displacement: i64, segment: Register| {
        MemoryOperand::new(base, Register::None, 1, displacement, 4, false, segment)
    };
    let load = Instruction::with2(
        Code::Mov_r32_rm32,
        Register::EAX,
        operand(Register::None, 0x1008, Register::GS),
    )
    .unwrap();
    let store = Instruction::with2(
        Code::Mov_rm32_r32,
        operand(Register::ECX, 4, Register::FS),
        Register::EBX,
    )
    .unwrap();
    let lea = Instruction::with2(
        Code::Lea_r32_m,
        Register::EDX,
        operand(Register::ECX, 4, Register::GS),
    )
    .unwrap();
    let mut s = CpuState::new();
    let at = (GS_BASE + 0x1008 - SCRATCH_BASE) as usize;
    s.mem[at..at + 4].copy_from_slice(&0x1122_3344u32.to_le_bytes());
    s.regs[ECX] = 0x2020;
    s.regs[EBX] = 0xcafe_f00d;
    let out = run_instructions(&[load, store, lea], &[s]).unwrap();
    let o = &out[0];
    assert_eq!(o.fault, None);
    assert_eq!(o.state.regs[EAX], 0x1122_3344);
    assert_eq!(o.state.read_u32(FS_BASE + 0x2024), Some(0xcafe_f00d));
    assert_eq!(o.state.regs[EDX], 0x2024);
}
