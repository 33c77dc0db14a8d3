//! Opaque parts (instructions without formulas, passed through) against the
//! processor, and the instructions that stay errors.
//!
//! An opaque part promises a footprint: what it reads ([`Opaque::inputs`])
//! and what it writes (its effects). Later stages rely on both: a location
//! written but not listed would keep a stale static value; one read but not
//! listed would not be materialized before the instruction runs. The CPU
//! judges both, for a list of forms wiper has no formulas for:
//!
//! * **writes**: on every state, each register, modelled flag and window
//!   byte the processor changed is among the part's writes (a byte: inside
//!   one of the chunks its memory effect stores, at the address the store's
//!   formula gives in that state); `esp` ends where its formula says;
//! * **reads** (forms that touch no x87/SSE register, whose state the
//!   harness neither sets nor resets between states, and not `cpuid`, which
//!   also reports the core it runs on): each state is run
//!   again with every register, flag and window byte outside the part's
//!   inputs replaced by random values; the locations the part writes must
//!   end the same (flags it leaves undefined excepted).

mod common;

use std::collections::BTreeSet;

use iced_x86::{Code, Decoder, DecoderOptions};
use wiper_oracle::{CpuState, Rng, FS_BASE, GS_BASE, SCRATCH_BASE};
use wiper_qfbv::{Env, ExprId, ExprPool, Op, VarId};
use wiper_sem::{lift, Flag, Lifted, Loc, Reg, SemError, Value};

use common::gen::Instance;
use common::run_code;

/// Forms without formulas that the generator places and the processor runs:
/// rotates through carry, BCD adjustments, `lahf`/`sahf`, `cpuid`,
/// `cmpxchg8b`, `popcnt`, bit-manipulation, x87 loads and stores, SSE2 moves
/// and conversions.
const CPU_FORMS: &[Code] = &[
    Code::Rcl_rm32_imm8,
    Code::Rcr_rm8_CL,
    Code::Rcl_rm16_1,
    Code::Daa,
    Code::Das,
    Code::Aaa,
    Code::Aas,
    Code::Aam_imm8,
    Code::Aad_imm8,
    Code::Lahf,
    Code::Sahf,
    Code::Cpuid,
    Code::Cmpxchg8b_m64,
    Code::Popcnt_r32_rm32,
    Code::Tzcnt_r32_rm32,
    Code::Lzcnt_r32_rm32,
    Code::Movbe_r32_m32,
    Code::Movbe_m32_r32,
    Code::Pushad,
    Code::Popad,
    Code::Pushfd,
    Code::Fild_m32int,
    Code::Fild_m64int,
    Code::Fstp_m64fp,
    Code::Fistp_m32int,
    Code::Fnstcw_m2byte,
    Code::Fldcw_m2byte,
    Code::Fnstsw_AX,
    Code::Fnstsw_m2byte,
    Code::Fstp_m80fp,
    Code::Fnstenv_m28byte,
    Code::Movsd_xmm_xmmm64,
    Code::Movsd_xmmm64_xmm,
    Code::Cvttsd2si_r32_xmmm64,
    Code::Movd_rm32_xmm,
    Code::Movdqu_xmmm128_xmm,
    Code::Movdqu_xmm_xmmm128,
];

/// States per form.
const STATES: usize = 200;

/// An environment over an oracle state: registers, flags, the harness's
/// segment bases and window bytes.
struct StateEnv<'a> {
    pool: &'a ExprPool,
    state: &'a CpuState,
}

impl Env for StateEnv<'_> {
    fn bv(&self, var: VarId) -> Option<u64> {
        match Loc::of_var(self.pool, var)? {
            Loc::Reg(r) => Some(u64::from(self.state.regs[r.index()])),
            Loc::Flag(f) => Some(u64::from(self.state.eflags & f.eflags_bit() != 0)),
            Loc::FsBase => Some(u64::from(FS_BASE)),
            Loc::GsBase => Some(u64::from(GS_BASE)),
            _ => None,
        }
    }

    fn mem_byte(&self, _var: VarId, addr: u32) -> Option<u8> {
        let i = addr.wrapping_sub(SCRATCH_BASE) as usize;
        self.state.mem.get(i).copied()
    }
}

/// The value of a 32-bit formula in `state`.
fn eval(pool: &ExprPool, e: ExprId, state: &CpuState) -> Option<u32> {
    let v = pool.eval(e, &StateEnv { pool, state }).ok()?;
    v.as_u64().map(|v| v as u32)
}

/// The footprint of a lifted opaque instruction, read off its part.
struct Footprint {
    reads: BTreeSet<Loc>,
    writes: BTreeSet<Loc>,
    undefined: BTreeSet<Flag>,
    /// `(address formula, bytes)` of every stored chunk.
    stores: Vec<(ExprId, u32)>,
    /// `(address formula, bytes)` of every loaded chunk among the inputs.
    loads: Vec<(ExprId, u32)>,
    /// `esp`'s formula, if written.
    esp: Option<ExprId>,
}

fn footprint(pool: &ExprPool, lifted: &Lifted) -> Footprint {
    assert_eq!(lifted.parts.len(), 1, "one opaque part");
    let part = &lifted.parts[0];
    let opaque = part.opaque.as_ref().expect("an opaque part");
    let mut fp = Footprint {
        reads: lifted.reads(pool),
        writes: lifted.writes(),
        undefined: BTreeSet::new(),
        stores: Vec::new(),
        loads: Vec::new(),
        esp: None,
    };
    for e in &part.effects {
        // Every register value is 32 bits wide, every flag 1 bit.
        match (e.dst, e.value) {
            (Loc::Reg(r), Value::Expr(x)) => assert_eq!(pool.width(x), 32, "{r:?}'s value"),
            (Loc::Flag(f), Value::Expr(x)) => assert_eq!(pool.width(x), 1, "{f:?}'s value"),
            _ => {}
        }
        match (e.dst, e.value) {
            (Loc::Flag(f), Value::Undefined) => {
                fp.undefined.insert(f);
            }
            (Loc::Reg(Reg::Esp), Value::Expr(x)) => fp.esp = Some(x),
            (Loc::Mem, Value::Expr(mut x)) => {
                while pool.op(x) == Op::Store {
                    let a = pool.args(x);
                    fp.stores.push((a[1], pool.width(a[2]) / 8));
                    x = a[0];
                }
            }
            _ => {}
        }
    }
    for &i in &opaque.inputs {
        for s in pool.subterms(&[i]) {
            if let Op::Load(n) = pool.op(s) {
                fp.loads.push((pool.args(s)[1], u32::from(n)));
            }
        }
    }
    fp
}

/// Whether window byte `i` lies in one of `chunks` (evaluated in `state`).
fn covered(pool: &ExprPool, chunks: &[(ExprId, u32)], state: &CpuState, i: usize) -> bool {
    let addr = SCRATCH_BASE + i as u32;
    chunks
        .iter()
        .any(|&(a, n)| eval(pool, a, state).is_some_and(|a| addr.wrapping_sub(a) < n))
}

/// Locations the processor changed that the footprint does not write.
fn unlisted_writes(
    pool: &ExprPool,
    fp: &Footprint,
    before: &CpuState,
    after: &CpuState,
) -> Vec<String> {
    let mut out = Vec::new();
    for r in Reg::ALL {
        let (b, a) = (before.regs[r.index()], after.regs[r.index()]);
        if r == Reg::Esp {
            let expected = fp.esp.map_or(Some(b), |e| eval(pool, e, before));
            if expected != Some(a) {
                out.push(format!("esp {b:#x} -> {a:#x}, formula says {expected:x?}"));
            }
        } else if a != b && !fp.writes.contains(&Loc::Reg(r)) {
            out.push(format!("{} changed", r.name()));
        }
    }
    for f in Flag::ALL {
        let bit = f.eflags_bit();
        if (before.eflags ^ after.eflags) & bit != 0 && !fp.writes.contains(&Loc::Flag(f)) {
            out.push(format!("{} changed", f.name()));
        }
    }
    for (i, (b, a)) in before.mem.iter().zip(&after.mem).enumerate() {
        if a != b && !covered(pool, &fp.stores, before, i) {
            out.push(format!("mem[{:#x}] changed", SCRATCH_BASE + i as u32));
        }
    }
    out
}

/// `state` with every register, flag and window byte outside the inputs
/// of `fp` random.
fn perturbed(pool: &ExprPool, fp: &Footprint, state: &CpuState, rng: &mut Rng) -> CpuState {
    let mut s = state.clone();
    for r in Reg::ALL {
        if r != Reg::Esp && !fp.reads.contains(&Loc::Reg(r)) {
            s.regs[r.index()] = rng.next_u32();
        }
    }
    for f in Flag::ALL {
        if f != Flag::Df && !fp.reads.contains(&Loc::Flag(f)) && rng.coin() {
            s.eflags ^= f.eflags_bit();
        }
    }
    for i in 0..s.mem.len() {
        if !covered(pool, &fp.loads, state, i) {
            s.mem[i] = rng.next_u32() as u8;
        }
    }
    s
}

/// Where the runs of `state` and its perturbed twin differ among the
/// locations `fp` writes (undefined flags excepted).
fn read_differences(
    pool: &ExprPool,
    fp: &Footprint,
    a: &CpuState,
    b: &CpuState,
    before: &CpuState,
) -> Vec<String> {
    let mut out = Vec::new();
    for r in Reg::ALL {
        if fp.writes.contains(&Loc::Reg(r)) && a.regs[r.index()] != b.regs[r.index()] {
            out.push(format!("{} depends on a location not read", r.name()));
        }
    }
    for f in Flag::ALL {
        let defined = fp.writes.contains(&Loc::Flag(f)) && !fp.undefined.contains(&f);
        if defined && (a.eflags ^ b.eflags) & f.eflags_bit() != 0 {
            out.push(format!("{} depends on a location not read", f.name()));
        }
    }
    for i in 0..a.mem.len() {
        if covered(pool, &fp.stores, before, i) && a.mem[i] != b.mem[i] {
            out.push(format!("stored byte {i:#x} depends on a location not read"));
        }
    }
    out
}

/// Whether the instruction touches an x87, MMX or SSE register (state the
/// harness does not control).
fn uses_vector_or_x87_state(code: Code) -> bool {
    let name = format!("{code:?}");
    name.starts_with('F') || name.contains("mm") || name.contains("Xmm")
}

#[test]
fn opaque_footprints_match_cpu() {
    let mut rng = Rng::new(0x0ba9);
    let mut failures = Vec::new();
    let mut checked = 0;
    for &code in CPU_FORMS {
        let inst = match Instance::generate(code, &mut rng) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{code:?}: {e}"));
                continue;
            }
        };
        let mut pool = ExprPool::new();
        let lifted = lift(&mut pool, &inst.ins).unwrap_or_else(|e| panic!("{code:?}: {e}"));
        assert!(
            lifted.is_opaque(),
            "{code:?} has formulas: not a test of opaque parts"
        );
        let fp = footprint(&pool, &lifted);
        // Random states (the fixed edge-value variants are for operands of
        // at most 32 bits).
        let states: Vec<CpuState> = (0..STATES)
            .map(|_| inst.state(&mut rng).expect("a valid state"))
            .collect();
        let outcomes = run_code(&inst.bytes, &states).expect("the oracle runs");
        for (s, o) in states.iter().zip(&outcomes) {
            assert!(o.fault.is_none(), "`{}` faulted: {:?}", inst.text, o.fault);
            for d in unlisted_writes(&pool, &fp, s, &o.state) {
                failures.push(format!("`{}`: {d}", inst.text));
            }
        }
        // `cpuid` also reads which core it runs on (leaf 1's `ebx` holds its
        // APIC id): no location a twin run could hold fixed.
        if !uses_vector_or_x87_state(code) && code != Code::Cpuid {
            let twins: Vec<CpuState> = states
                .iter()
                .map(|s| perturbed(&pool, &fp, s, &mut rng))
                .collect();
            let again = run_code(&inst.bytes, &twins).expect("the oracle runs");
            for ((s, a), b) in states.iter().zip(&outcomes).zip(&again) {
                if b.fault.is_some() {
                    continue; // a perturbed operand the processor refuses
                }
                for d in read_differences(&pool, &fp, &a.state, &b.state, s) {
                    failures.push(format!("`{}`: {d}", inst.text));
                }
            }
        }
        checked += 1;
    }
    failures.sort();
    failures.dedup();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(checked, CPU_FORMS.len());
}

/// Lifts the bytes `code` decoded at 0x8049000.
fn lift_bytes(code: &[u8]) -> Result<Lifted, SemError> {
    let ins = Decoder::with_ip(32, code, 0x0804_9000, DecoderOptions::NONE).decode();
    lift(&mut ExprPool::new(), &ins)
}

/// The lines `wiper lift` prints for the bytes `code`.
fn lines(code: &[u8]) -> String {
    let ins = Decoder::with_ip(32, code, 0x0804_9000, DecoderOptions::NONE).decode();
    let mut pool = ExprPool::new();
    let lifted = lift(&mut pool, &ins).expect("lifts");
    lifted
        .parts
        .iter()
        .flat_map(|p| wiper_sem::display::part_lines(&pool, p, 200))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn opaque_parts_show_their_footprint() {
    // fild QWORD PTR [esp+0x8]; fstp QWORD PTR [esp]; fnstsw ax; fucomip; cpuid
    insta::assert_snapshot!(lines(&[0xdf, 0x6c, 0x24, 0x08]), @"
    fild   QWORD PTR [esp+0x8]          opaque, reads esp, load64(mem, esp + 0x8), fpu
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0xdd, 0x1c, 0x24]), @"
    fstp   QWORD PTR [esp]              opaque, reads esp, fpu
                                        mem := store64(mem, esp, mem0_64')
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0xdf, 0xe0]), @"
    fnstsw ax                           opaque, reads eax, fpu
                                        eax := eax[31:16] ++ ax'
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0xdf, 0xe9]), @"
    fucomip st,st(1)                    opaque, reads cf, pf, zf, fpu
                                        cf := cf'
                                        pf := pf'
                                        af := 0x0:1
                                        zf := zf'
                                        sf := 0x0:1
                                        of := 0x0:1
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0x0f, 0xa2]), @"
    cpuid                               opaque, reads eax, ecx, fpu
                                        eax := eax'
                                        ecx := ecx'
                                        edx := edx'
                                        ebx := ebx'
                                        fpu := fpu'
    ");
    // popad and enter 16,1 (if they are opaque): esp moves by iced's
    // increment, the other registers they write get opaque values.
    insta::assert_snapshot!(lines(&[0x61]), @"
    popad                               opaque, reads esp, load32(mem, esp), load32(mem, esp + 0x4), load32(mem, esp + 0x8), load32(mem, esp + 0x10), load32(mem, esp + 0x14), load32(mem, esp + 0x18), load32(mem, esp + 0x1c), fpu
                                        eax := eax'
                                        ecx := ecx'
                                        edx := edx'
                                        ebx := ebx'
                                        esp := esp + 0x20
                                        ebp := ebp'
                                        esi := esi'
                                        edi := edi'
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0xc8, 0x10, 0x00, 0x01]), @"
    enter  0x10,0x1                     opaque, reads esp, ebp, fpu
                                        esp := esp - 0x18
                                        ebp := ebp'
                                        mem := store32(store32(mem, esp - 0x4, mem0_32'), esp - 0x8, mem1_32')
                                        fpu := fpu'
    ");
    // fld TBYTE PTR [esp+4]: a 10-byte operand is read as 8 bytes and 2.
    insta::assert_snapshot!(lines(&[0xdb, 0x6c, 0x24, 0x04]), @"
    fld    TBYTE PTR [esp+0x4]          opaque, reads esp, load64(mem, esp + 0x4), load16(mem, esp + 0xc), fpu
                                        fpu := fpu'
    ");
    // fld DWORD PTR gs:[eax], fld DWORD PTR fs:[eax]: addressed from the
    // segment's base.
    insta::assert_snapshot!(lines(&[0x65, 0xd9, 0x00]), @"
    fld    DWORD PTR gs:[eax]           opaque, reads eax, load32(mem, eax + gs_base), fpu
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0x64, 0xd9, 0x00]), @"
    fld    DWORD PTR fs:[eax]           opaque, reads eax, load32(mem, eax + fs_base), fpu
                                        fpu := fpu'
    ");
    // pause (rep nop) and rep cpuid: a repeat prefix on an instruction
    // that is not a string instruction passes through.
    insta::assert_snapshot!(lines(&[0xf3, 0x90]), @"
    pause                               opaque, reads fpu
                                        fpu := fpu'
    ");
    insta::assert_snapshot!(lines(&[0xf3, 0x0f, 0xa2]), @"
    cpuid                               opaque, reads eax, ecx, fpu
                                        eax := eax'
                                        ecx := ecx'
                                        edx := edx'
                                        ebx := ebx'
                                        fpu := fpu'
    ");
    // pushfd: esp moves by iced's stack-pointer increment.
    insta::assert_snapshot!(lines(&[0x9c]), @"
    pushfd                              opaque, reads esp, cf, pf, af, zf, sf, of, df, fpu
                                        esp := esp - 0x4
                                        mem := store32(mem, esp - 0x4, mem0_32')
                                        fpu := fpu'
    ");
}

#[test]
fn what_cannot_be_passed_through_is_an_error_with_its_reason() {
    // (bytes, the mnemonic the error names, its reason)
    let cases: [(&[u8], &str, &str); 8] = [
        (&[0x8e, 0xd8], "mov", "it writes the segment register ds"),
        (&[0xcd, 0x21], "int", "only `int 0x80`"),
        (&[0xf3, 0x6c], "rep insb", "a repeated string instruction"),
        (
            &[0xea, 0, 0, 0, 0, 0x23, 0],
            "jmp far",
            "it transfers control",
        ),
        (&[0x67, 0xdb, 0x00], "fild", "16-bit addressing"),
        // A form that has semantics (`mov eax,[bx+si]`, `mov eax,[bx]`),
        // with 16-bit addressing.
        (&[0x67, 0x8b, 0x00], "mov", "16-bit addressing"),
        (&[0x67, 0x8b, 0x07], "mov", "16-bit addressing"),
        (
            &[0x0f, 0xae, 0x20],
            "xsave",
            "a memory operand of unknown size",
        ),
    ];
    for (code, mnemonic, reason) in cases {
        let e = lift_bytes(code).expect_err(reason);
        let text = e.to_string();
        assert!(
            matches!(e, SemError::Unsupported { .. }) && text.contains(reason),
            "{mnemonic}: {text}"
        );
        // The one-line error names the instruction as objdump would.
        let named = format!("unsupported instruction {mnemonic} at 0x8049000: ");
        assert!(text.starts_with(&named), "{text}");
    }
}

/// String instructions with and without `rep` have semantics; `repne`
/// means something only on the compares.
#[test]
fn string_instructions_lift_with_their_repeat_prefixes() {
    for code in [
        &[0xa5][..],
        &[0xf3, 0xa5],
        &[0xf3, 0xab],
        &[0xaa],
        &[0xf3, 0xa6],
        &[0xf2, 0xae],
    ] {
        let lifted = lift_bytes(code).unwrap_or_else(|e| panic!("{code:x?}: {e}"));
        assert!(!lifted.is_opaque(), "{code:x?} is opaque");
    }
    // The parts of `rep movsw` name their operands' width.
    insta::assert_snapshot!(lines(&[0x66, 0xf3, 0xa5]), @"
    if ecx: mov    WORD PTR es:[edi],WORD PTR [esi]  mem := (ecx == 0x0) ? mem : store16(mem, edi, load16(mem, esi))
    if ecx: lea    esi,[esi±0x2]        esi := (ecx == 0x0) ? esi : (df ? (esi - 0x2) : (esi + 0x2))
    if ecx: lea    edi,[edi±0x2]        edi := (ecx == 0x0) ? edi : (df ? (edi - 0x2) : (edi + 0x2))
    if ecx: lea    ecx,[ecx-0x1]        ecx := (ecx == 0x0) ? ecx : (ecx - 0x1)
    jrep   0x8049000                    eip := (ecx == 0x0) ? 0x8049003 : 0x8049000
    ");
    // Without `rep`, `stosw` and `lodsw` are native word moves.
    insta::assert_snapshot!(lines(&[0x66, 0xab]), @"
    mov    WORD PTR [edi],ax            mem := store16(mem, edi, eax[15:0])
    lea    edi,[edi±0x2]                edi := df ? (edi - 0x2) : (edi + 0x2)
    ");
    insta::assert_snapshot!(lines(&[0x66, 0xad]), @"
    mov    ax,WORD PTR [esi]            eax := eax[31:16] ++ load16(mem, esi)
    lea    esi,[esi±0x2]                esi := df ? (esi - 0x2) : (esi + 0x2)
    ");
    // `repne movsd` is refused.
    assert!(lift_bytes(&[0xf2, 0xa5]).is_err() || lift_bytes(&[0xf2, 0xa5]).unwrap().is_opaque());
}

#[test]
fn traps_are_barriers() {
    for code in [&[0x0f, 0x0b][..], &[0xcc], &[0xf4]] {
        let l = lift_bytes(code).expect("lifts");
        assert_eq!(l.barrier(), Some(wiper_sem::Barrier::Halt), "{code:x?}");
    }
}
