//! Generates `docs/semantics.md` from the code: the representation choices,
//! every decoupling rule with the sequence [`crate::lift`] actually produces
//! for an example, the pseudo-instructions, and the table of supported forms
//! (from [`crate::supported_codes`] and [`crate::barrier_codes`], with the
//! flags each form writes and leaves undefined, read off lifted samples).
//!
//! `cargo run -p wiper-sem --example semantics_table > docs/semantics.md`
//! regenerates the file; a test fails when the committed file differs.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use iced_x86::{Code, Decoder, DecoderOptions};
use wiper_qfbv::ExprPool;
use wiper_x86::Rng;

use crate::display::part_lines;
use crate::loc::{is_undefined_var, Flag, Loc};
use crate::part::{Lifted, Value};
use crate::sample;
use crate::{barrier_codes, lift, supported_codes};

/// The command that regenerates the document.
pub const COMMAND: &str = "cargo run -p wiper-sem --example semantics_table > docs/semantics.md";

/// Address the examples are decoded at.
const EXAMPLE_IP: u32 = 0x0804_9000;

/// Samples per form for the flag columns.
const SAMPLES: usize = 64;

/// The hand-written part of the document (representation choices).
const INTRO: &str = r#"wiper knows an IA-32 instruction only through the **decoupled sequence**
`wiper_sem::lift` makes of it: a list of *parts*, each a single-assignment
instruction that assigns one location, or one result together with the flags
computed from it. Each part's effects are QFBV formulas (crate `wiper-qfbv`)
over the values the locations had *before the part*; the effects of one part
form a parallel assignment. `wiper lift BINARY --function NAME` prints them.

## Locations

* the eight 32-bit registers `eax` … `edi` (formula variables of 32 bits;
  `al`, `ah`, `ax`, … are bit ranges of them, so writing `al` is
  `eax := eax[31:8] ++ v` and reads `eax`);
* the flags `cf pf af zf sf of df`, each a one-bit location;
* temporaries `t0`, `t1`, … (32 bits) that live within one sequence only;
* memory `mem`, one array from 32-bit linear addresses to bytes: `cs`,
  `ds`, `es` and `ss` are flat, and an operand through `fs` or `gs` adds
  that segment's base to its offset (`mov eax, gs:0x14` is
  `eax := load32(mem, gs_base + 0x14)`; `lea` ignores segments);
* the segment bases `fs_base` and `gs_base` (32 bits), which instructions
  read but never write (a write to a segment register is unsupported);
  glibc and musl keep the thread pointer in `gs`. The CPU conformance suite
  puts one generated memory operand in eight through `gs` or `fs` (the
  oracle's harness gives both segments a base);
* `eip`, assigned only by a part that transfers control. A sequence without
  such a part falls through to the next instruction;
* `fpu`, every other piece of machine state (x87, MMX, SSE and AVX
  registers, control and status words) as one location, which only opaque
  parts read and write.

## Representation choices

* **Temporaries.** Where no IA-32 instruction expresses a part (the value of
  an operand must survive a part that changes a register it depends on), the
  part writes or reads a temporary and is a *pseudo-instruction* (its
  `native` is `None`). Parts that are real instructions carry them in
  `Part::native` for re-encoding.
* **Undefined flags.** A flag the Intel manual leaves undefined on every input
  is `Value::Undefined`. A flag undefined on some inputs only (OF after
  `shl eax, cl` unless the count is 0 or 1, CF after `shl al, cl` by 8 or
  more, AF after a non-zero shift by `cl`) gets an `ite` formula that reaches
  the free variable `?of` (`?cf`, …) on exactly those inputs. The evaluator
  reports such a flag as undefined (`Executed::undefined`) when its value
  depends on that variable; Z3 treats it as an unknown value.
* **Registers are never undefined.** `bsf`/`bsr` with a zero source leave
  the destination unchanged (the manual says undefined; Intel and AMD
  processors leave it unchanged, AMD documents it, and the CPU conformance
  test checks it on the test machine).
* **Division traps.** `div`/`idiv` raise #DE when the divisor is 0 or the
  quotient does not fit. The first part of their sequence carries that
  condition as a 1-bit formula in `Part::fault`; `execute` returns
  `ExecError::DivideError` instead of taking the part's effects.
* **Barriers.** `int 0x80`, `call DWORD PTR gs:0x10` (glibc's and musl's
  system calls through the kernel's vsyscall entry, which the thread's
  control block holds; any `call` through a `gs` operand), `hlt`, `ud2` and
  `int3` lift to a single part without effects, marked `Part::barrier`
  (`Barrier::Syscall`, `Barrier::Halt` for the three that stop the process
  with a signal); so does a write to `fs` or `gs` (`mov gs, edx`: the C
  library installing its thread pointer), `Barrier::SegmentBase`. Their
  effect is outside the model: later stages must treat a barrier as reading
  and writing everything. `execute` refuses them (`ExecError::Barrier`).
* **Opaque instructions.** Every other instruction that falls through (x87,
  SSE, `cpuid`, `rdtsc`, `rcl`, BCD adjustments, ...) lifts to one part
  marked `Part::opaque`, without formulas for its results but with its
  footprint, from iced-x86's instruction info: `Opaque::inputs` are the
  formulas of what it reads (registers, flags, `fpu`, a `loadN(mem, a)` per
  memory chunk of at most 8 bytes); each location it writes gets an effect
  whose formula reaches a fresh *opaque-value* variable (`eax'`, `zf'`,
  `fpu'`, `mem0_64'`), so the bits a partial write keeps (`fnstsw ax`:
  `eax := eax[31:16] ++ ax'`) and the addresses it stores at are formulas
  like any other; `esp` moves by iced's stack-pointer increment (`pushfd`:
  `esp := esp - 0x4`). Registers, flags and memory it writes in part or
  conditionally are inputs too (their old values may survive); every
  opaque part reads and writes `fpu`, which keeps them in order among
  themselves. Later stages emit it as it is, after putting its known inputs
  in the machine. `execute` refuses it (`ExecError::Opaque`). The CPU test
  `tests/opaque.rs` checks, per form, that every location the processor
  changes is written and that the written locations depend on nothing but
  the inputs. What cannot be passed through this way stays
  `unsupported instruction <mnemonic> at <address>: <reason>`: control
  transfers without semantics (far jumps and calls, `int n` other than
  `int 0x80`, ...), `rep` string instructions without semantics, writes to
  segment registers, 16-bit addressing, vector-indexed memory and memory
  operands of unknown size (`xsave`).
* **`rep` string instructions** are a loop in the CFG sense: the sequence is
  one iteration, every part guarded by `ecx != 0` (the location keeps its
  value when `ecx` is 0), then `ecx` is decremented and a last part
  `jrep`/`jrepe`/`jrepne` sets `eip` back to the instruction itself while
  iterations remain (for `repe`/`repne` also while ZF is 1/0), else to the
  next instruction. `execute` follows the edge back (up to
  `MAX_REP_ITERATIONS`), so its result is the complete effect of the
  instruction, as the processor's.
* **Footprints** (`Part::reads`/`writes`, `Lifted::reads`/`writes`) are read
  off the formulas: the free location variables and the assigned locations.
  A store reads `mem` (the rest of memory flows through); a partial register
  write reads the full register. `Lifted::reads` are the locations read before
  being written in the sequence, temporaries excluded.
* **Identity effects are dropped**: an effect that assigns a location its own
  value (e.g. flags of `shl eax, 0`) is not listed.
"#;

/// The pseudo-instructions, for the document.
const PSEUDO: &str = r#"Parts that are no IA-32 instruction are printed in the same layout:

| text | meaning |
|---|---|
| `mov t0,op` / `mov op,t0` | copy to or from a temporary (zero-extended to 32 bits; narrower operands take its low bits) |
| `jmp t0` | `eip := t0` |
| `mov DWORD PTR es:[edi],DWORD PTR [esi]` | memory-to-memory move of `movs` |
| `cmp BYTE PTR [esi],BYTE PTR es:[edi]` | flags of `[esi] - [edi]` (`cmps`) |
| `lea esi,[esi±0x4]` | `esi := df ? esi - 4 : esi + 4` (string index step) |
| `if ecx: …` | the part, guarded: locations keep their value when `ecx` is 0 (`rep` iteration) |
| `jrep a` / `jrepe a` / `jrepne a` | `eip := ecx != 0 [&& zf / && !zf] ? a : next` (`a` is the instruction itself) |
| `umulhi t0,eax,s` / `smulhi t0,eax,s` | `t0 :=` high half of the unsigned/signed product `eax * s`; CF = OF = the product does not fit the low half; SF ZF AF PF undefined |
| `mullo eax,s` | `eax :=` low half of `eax * s`, no flags |
| `udivr t0,edx:eax,s` / `sdivr …` | `t0 :=` remainder of `edx:eax / s` (unsigned/signed); all six status flags undefined; #DE condition |
| `udivq eax,edx:eax,s` / `sdivq …` | `eax :=` quotient of `edx:eax / s` |
| `cmove d,s` / `cmovne a,d` | conditional moves of `cmpxchg` where no `cmov` form exists (byte operands, memory destination) |
"#;

/// A decoupling rule: an example encoding and what the rule says.
const RULES: &[(&[u8], &str)] = &[
    (&[0x50], "`push r`: decrement `esp`, then store"),
    (&[0x6a, 0x10], "`push imm`: likewise"),
    (&[0x54], "`push esp`: the operand is read first (the old `esp` is pushed)"),
    (&[0xff, 0x74, 0x24, 0x04], "`push m`: the operand is read first (its address may use `esp`)"),
    (&[0x5b], "`pop r`: load, then increment `esp`"),
    (&[0x5c], "`pop esp`: one part, `esp` gets the loaded value"),
    (&[0x8f, 0x44, 0x24, 0x08], "`pop m`: the address of `m` is computed after the increment, as the processor does"),
    (&[0xc9], "`leave`"),
    (&[0xe8, 0x00, 0x01, 0x00, 0x00], "`call rel32`: push the return address, jump"),
    (&[0xff, 0xd0], "`call r` (not `esp`)"),
    (&[0xff, 0x54, 0x24, 0x04], "`call m` / `call esp`: the target is read before the push"),
    (&[0xc3], "`ret`"),
    (&[0xc2, 0x08, 0x00], "`ret imm16`"),
    (&[0x87, 0xc8], "`xchg r,r`"),
    (&[0x87, 0x03], "`xchg m,r`: the memory operand is read first, so its address uses the old registers"),
    (&[0x0f, 0xc1, 0x03], "`xadd d,s`: `add` with its flags, the old destination through a temporary (`xadd r,r` on one register is just `add`)"),
    (&[0x0f, 0xb1, 0x0b], "`cmpxchg d,s`: compare, conditional store, conditional load of the accumulator"),
    (&[0x0f, 0xb0, 0xd1], "`cmpxchg` of bytes (no byte `cmov`: pseudo-instructions)"),
    (&[0xf7, 0xe1], "`mul r/m32` (likewise 16-bit, and `imul` with `smulhi`)"),
    (&[0xf6, 0xe1], "`mul r/m8` writes `ax` only: one part"),
    (&[0xf7, 0xf9], "`idiv r/m32` (likewise `div` with `udivr`/`udivq`, and 16-bit)"),
    (&[0x99], "`cdq` writes `edx` only: one part (likewise `cwd`, `cbw`, `cwde`)"),
    (&[0xa5], "`movsd`"),
    (&[0xac], "`lodsb`"),
    (&[0xf3, 0xab], "`rep stosd`: one guarded iteration and the branch back"),
    (&[0xf3, 0xa6], "`repe cmpsb`"),
    (&[0xf2, 0xae], "`repne scasb`"),
    (&[0xcd, 0x80], "`int 0x80`: barrier"),
    (&[0xf4], "`hlt`: barrier"),
];

/// What a form does to the flags, over many samples.
#[derive(Default)]
struct FlagUse {
    written: BTreeSet<Flag>,
    always_undefined: BTreeSet<Flag>,
    sometimes_undefined: BTreeSet<Flag>,
    min_parts: usize,
    max_parts: usize,
}

/// Flags written by `lifted`, and those undefined on all or some inputs.
fn flag_use(pool: &ExprPool, lifted: &Lifted) -> (BTreeSet<Flag>, BTreeSet<Flag>, BTreeSet<Flag>) {
    let (mut written, mut always, mut sometimes) = Default::default();
    for p in &lifted.parts {
        for e in &p.effects {
            let Loc::Flag(f) = e.dst else { continue };
            BTreeSet::insert(&mut written, f);
            match e.value {
                Value::Undefined => {
                    BTreeSet::insert(&mut always, f);
                }
                Value::Expr(x) => {
                    if pool.vars(x).into_iter().any(|v| is_undefined_var(pool, v)) {
                        BTreeSet::insert(&mut sometimes, f);
                    }
                }
            }
        }
    }
    (written, always, sometimes)
}

fn names(set: &BTreeSet<Flag>) -> String {
    if set.is_empty() {
        "—".to_owned()
    } else {
        set.iter().map(|f| f.name()).collect::<Vec<_>>().join(" ")
    }
}

/// The flag and part columns of `code`.
fn analyse(pool: &mut ExprPool, rng: &mut Rng, code: Code) -> FlagUse {
    let mut u = FlagUse {
        min_parts: usize::MAX,
        ..FlagUse::default()
    };
    let mut always_in_all: Option<BTreeSet<Flag>> = None;
    for _ in 0..SAMPLES {
        let ins = sample::instance(code, EXAMPLE_IP, rng);
        let lifted = lift(pool, &ins).expect("supported forms lift");
        let (w, a, s) = flag_use(pool, &lifted);
        u.written.extend(&w);
        u.sometimes_undefined.extend(&s);
        u.sometimes_undefined.extend(&a);
        // Undefined on every input: undefined in every sample that writes it.
        let a_here: BTreeSet<Flag> = w.iter().filter(|f| a.contains(f)).copied().collect();
        always_in_all = Some(match always_in_all {
            None => a_here,
            Some(prev) => prev
                .into_iter()
                .filter(|f| a_here.contains(f) || !w.contains(f))
                .collect(),
        });
        u.min_parts = u.min_parts.min(lifted.parts.len());
        u.max_parts = u.max_parts.max(lifted.parts.len());
    }
    u.always_undefined = always_in_all.unwrap_or_default();
    u.sometimes_undefined = &u.sometimes_undefined - &u.always_undefined;
    u
}

/// The whole document.
pub fn semantics_markdown() -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "# IA-32 semantics in wiper\n");
    let _ = writeln!(
        w,
        "<!-- Generated from the code by `{COMMAND}`; do not edit by hand. \
         The test `semantics_doc_is_current` (crates/wiper-sem/tests/docs.rs) \
         fails when this file differs from the generated text. -->\n"
    );
    let _ = writeln!(w, "{INTRO}");
    let _ = writeln!(w, "## Decoupling rules\n");
    let _ = writeln!(
        w,
        "Each rule with the sequence `lift` produces for an example (decoded at \
         `{EXAMPLE_IP:#x}`), each part followed by its formulas. Every other \
         supported instruction is a single part: the instruction itself, \
         assigning its result and the flags computed from it (`cmp`, `test`: \
         flags only; `jcc`: `eip := ite(cc, target, next)`).\n"
    );
    let mut pool = ExprPool::new();
    for (bytes, rule) in RULES {
        let ins = Decoder::with_ip(32, bytes, u64::from(EXAMPLE_IP), DecoderOptions::NONE).decode();
        let lifted = lift(&mut pool, &ins).expect("example lifts");
        let _ = writeln!(w, "* {rule}:\n");
        let _ = writeln!(w, "  ```text");
        let _ = writeln!(w, "  {}", crate::text::instruction(&ins));
        for p in &lifted.parts {
            for line in part_lines(&pool, p, 160) {
                let _ = writeln!(w, "  {line}");
            }
        }
        let _ = writeln!(w, "  ```\n");
    }
    let _ = writeln!(w, "## Pseudo-instructions\n");
    let _ = writeln!(w, "{PSEUDO}");
    let codes = supported_codes();
    let barriers = barrier_codes();
    let _ = writeln!(w, "## Supported instruction forms\n");
    let _ = writeln!(
        w,
        "{} forms (iced-x86 `Code`s) from `wiper_sem::supported_codes()`, plus {} \
         barrier forms from `barrier_codes()`. String forms are supported with \
         and without `rep` (`repe`/`repne` for `cmps`/`scas`). Anything else, and \
         supported forms with 16-bit addressing or `repne` on `movs`/`stos`/`lods`, \
         is an opaque part when it can be passed through (see Opaque instructions \
         above), else `unsupported instruction <mnemonic> at <address>: <reason>`.\n",
        codes.len(),
        barriers.len()
    );
    let _ = writeln!(
        w,
        "Columns: the number of parts (over {SAMPLES} random instances; it varies \
         with the operands and the `rep` prefix); the flags the form assigns; those \
         undefined whenever the form assigns them; those undefined on some inputs \
         only (e.g. depending on a shift count).\n"
    );
    let _ = writeln!(
        w,
        "| code | instruction | opcode | parts | flags written | undefined (whenever written) | undefined on some inputs |"
    );
    let _ = writeln!(w, "|---|---|---|---|---|---|---|");
    let mut rng = Rng::new(0x7ab1e);
    for code in codes.into_iter().chain(barriers) {
        let u = analyse(&mut pool, &mut rng, code);
        let parts = if u.min_parts == u.max_parts {
            u.min_parts.to_string()
        } else {
            format!("{}–{}", u.min_parts, u.max_parts)
        };
        let info = code.op_code();
        let _ = writeln!(
            w,
            "| `{code:?}` | `{}` | `{}` | {parts} | {} | {} | {} |",
            info.instruction_string(),
            info.op_code_string(),
            names(&u.written),
            names(&u.always_undefined),
            names(&u.sometimes_undefined),
        );
    }
    out
}
