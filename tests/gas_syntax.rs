//! `--syntax gas` listings are GNU as input: the AT&T listing of original
//! functions (`wiper disasm --syntax gas`) and of residual code (`wiper
//! specialize --emit asm --syntax gas`) is assembled with `as --32`, linked
//! at the listing's addresses with `ld`, and every instruction's bytes are
//! compared with the encoding the listing shows. Skipped, with a message,
//! where binutils is not installed.
//!
//! Two encodings have no AT&T spelling, so GNU as picks a shorter one for
//! the same instruction: a SIB byte without an index (gcc's padding `lea
//! 0x0(%esi,%eiz,1),%esi`) and a 32-bit immediate that fits in 8 bits.
//! Where the bytes differ, the test requires that: the assembled bytes are
//! shorter, decode to an instruction the printer prints the same way, and
//! the difference is one of these two.

use std::collections::BTreeSet;
use std::process::Command;

use iced_x86::{Decoder, DecoderOptions, OpKind};
use wiper::commands;
use wiper_testkit::{scratch_file, testdata_bin};
use wiper_x86::format::TextFormatter;
use wiper_x86::Syntax;

/// One instruction line of a listing.
#[derive(Debug)]
struct Line {
    address: u32,
    bytes: Vec<u8>,
    /// The instruction as printed, without a `<symbol>` after a target.
    text: String,
}

/// The instruction lines of a `disasm` or `--emit asm` listing in AT&T
/// syntax: `  ADDRESS  BYTES  TEXT [<symbol>] [# comment]`.
fn lines(listing: &str) -> Vec<Line> {
    listing
        .lines()
        .filter(|l| l.starts_with("  ") && !l.trim_start().starts_with("->"))
        .filter_map(|l| {
            let mut words = l.split_whitespace().peekable();
            let address = u32::from_str_radix(words.next()?, 16).ok()?;
            let mut bytes = Vec::new();
            while let Some(w) = words.peek() {
                match (w.len(), u8::from_str_radix(w, 16)) {
                    (2, Ok(b)) => bytes.push(b),
                    _ => break,
                }
                words.next();
            }
            let rest: Vec<&str> = words.collect();
            let rest = rest.join(" ");
            let text = rest.split(" #").next()?.trim();
            let text = match text.rfind(" <") {
                Some(i) if text.ends_with('>') => &text[..i],
                _ => text,
            };
            Some(Line {
                address,
                bytes,
                text: text.to_owned(),
            })
        })
        .collect()
}

/// The GNU as source for `lines`: each instruction at its address (`.org`
/// from the first) under a label `L_ADDR`, and direct branches to an
/// address of the listing aimed at its label, so that GNU as chooses the
/// branch sizes itself.
fn source(lines: &[Line]) -> String {
    let base = lines[0].address;
    let addresses: BTreeSet<u32> = lines.iter().map(|l| l.address).collect();
    let mut src = String::from(".text\n");
    for l in lines {
        let mut text = l.text.clone();
        if let Some((head, target)) = text.rsplit_once(' ') {
            let branch = head
                .trim_start_matches("{load} ")
                .starts_with(['j', 'c', 'l']);
            let target = target
                .strip_prefix("0x")
                .and_then(|t| u32::from_str_radix(t, 16).ok());
            if let Some(t) = target.filter(|t| branch && addresses.contains(t)) {
                text = format!("{head} L_{t:x}");
            }
        }
        src.push_str(&format!(
            ".org {:#x}\nL_{:x}: {text}\n",
            l.address - base,
            l.address
        ));
    }
    src
}

/// Whether binutils' `as` and `ld` run here.
fn binutils() -> bool {
    ["as", "ld"].iter().all(|tool| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Assembles `src` with `as --32` and links it at `base` into raw bytes.
fn assemble(name: &str, src: &str, base: u32) -> Vec<u8> {
    let s = scratch_file(&format!("{name}.s"), src.as_bytes());
    let o = s.with_extension("o");
    let bin = s.with_extension("bin");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("run binutils");
        assert!(
            out.status.success(),
            "{name}: {cmd:?} failed:\n{}\nsource:\n{src}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("as").args(["--32", "-o"]).arg(&o).arg(&s));
    run(Command::new("ld")
        .args(["-m", "elf_i386", "--oformat", "binary", "-Ttext"])
        .arg(format!("{base:#x}"))
        .arg("-o")
        .arg(&bin)
        .arg(&o));
    std::fs::read(&bin).expect("read assembled bytes")
}

/// `text` with every run of spaces made one, as [`lines`] reads it.
fn one_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `ins` has a 32-bit immediate that fits in 8 bits (GNU as
/// encodes it in the short form).
fn long_small_immediate(ins: &iced_x86::Instruction) -> bool {
    (0..ins.op_count()).any(|i| {
        ins.op_kind(i) == OpKind::Immediate32 && i8::try_from(ins.immediate32() as i32).is_ok()
    })
}

/// Whether the encoding `bytes` of `ins` has a SIB byte without an index
/// and a base other than `esp` (which needs no SIB).
fn needless_sib(ins: &iced_x86::Instruction, bytes: &[u8]) -> bool {
    let memory = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    memory
        && ins.memory_index() == iced_x86::Register::None
        && ins.memory_base() != iced_x86::Register::ESP
        && bytes
            .windows(2)
            .any(|w| w[0] & 0x07 == 0x04 && w[0] >> 6 != 3 && (w[1] >> 3) & 7 == 4)
}

/// Whether `ins` moves between the accumulator (`al`, `ax`, `eax`) and an
/// absolute address (no base, no index) in the general form: GNU as picks
/// the shorter `moffs` form (`a1` for `mov 0x80ec430,%eax`).
fn accumulator_moffs(ins: &iced_x86::Instruction) -> bool {
    use iced_x86::Register as R;
    let acc = |i: u32| {
        ins.op_kind(i) == OpKind::Register && matches!(ins.op_register(i), R::AL | R::AX | R::EAX)
    };
    let absolute = |i: u32| {
        ins.op_kind(i) == OpKind::Memory
            && ins.memory_base() == R::None
            && ins.memory_index() == R::None
    };
    ins.mnemonic() == iced_x86::Mnemonic::Mov
        && ((acc(0) && absolute(1)) || (absolute(0) && acc(1)))
}

/// Assembles the listing and compares every instruction's bytes; returns
/// how many instructions matched byte for byte.
fn round_trip(name: &str, listing: &str) -> usize {
    let lines = lines(listing);
    assert!(lines.len() > 3, "{name}: no listing:\n{listing}");
    let base = lines[0].address;
    let got = assemble(name, &source(&lines), base);
    let mut printer = TextFormatter::new(Syntax::Gas);
    let mut same = 0;
    for l in &lines {
        let at = (l.address - base) as usize;
        let theirs = got.get(at..at + l.bytes.len()).unwrap_or_default();
        if theirs == l.bytes {
            same += 1;
            continue;
        }
        let decode =
            |b: &[u8]| Decoder::with_ip(32, b, u64::from(l.address), DecoderOptions::NONE).decode();
        let ours = decode(&l.bytes);
        let as_ins = decode(&got[at..]);
        let mut text = String::new();
        printer.format(&as_ins, &mut text);
        let explained = long_small_immediate(&ours)
            || needless_sib(&ours, &l.bytes)
            || accumulator_moffs(&ours);
        assert!(
            as_ins.len() < l.bytes.len() && explained && l.text == one_space(&text),
            "{name}: `{}` at {:#x}: listing {:02x?}, GNU as {:02x?} (`{text}`)",
            l.text,
            l.address,
            l.bytes,
            &got[at..(at + as_ins.len()).min(got.len())]
        );
    }
    same
}

#[test]
fn gas_listings_assemble_to_their_bytes() {
    if !binutils() {
        eprintln!("skipped: GNU as and ld (binutils) are not installed");
        return;
    }
    let originals = [
        ("power-O2", "power"),
        ("prod-O0", "prod"),
        ("calls-O2", "main"),
        ("canary-O2", "checksum"),
        ("fpu-O2", "main"),
        ("interp-O2", "main"),
        ("libc_demo-O2", "main"),
        ("libc_demo-pie", "main"),
        ("pie_switch-O2", "main"),
    ];
    let (mut same, mut total) = (0, 0);
    for (binary, function) in originals {
        let listing = commands::disasm(
            &testdata_bin(binary),
            function,
            Syntax::Gas,
            Default::default(),
        )
        .unwrap();
        same += round_trip(&format!("{binary}-{function}"), &listing);
        total += lines(&listing).len();
    }
    let residuals: [(&str, &str, &[&str]); 5] = [
        ("power-O2", "power", &["arg1=1", "arg2=2"]),
        ("power-O2", "power", &["arg1=1"]),
        ("pie_switch-O2", "main", &["arg0=2"]),
        ("libc_demo-O0", "main", &["arg0=2"]),
        ("loops-O1", "main", &["arg0=2"]),
    ];
    for (binary, function, statics) in residuals {
        let b = wiper::Binary::open(testdata_bin(binary)).unwrap();
        let f = b.function(function).unwrap();
        let r = wiper::specialize(&b, &f, &wiper::Spec::parse(statics).unwrap()).unwrap();
        let listing = r.listing_in(Syntax::Gas);
        same += round_trip(&format!("{binary}-{function}-residual"), &listing);
        total += lines(&listing).len();
    }
    eprintln!("{same} of {total} instructions assembled to the same bytes");
    assert!(
        same * 100 >= total * 95,
        "only {same} of {total} byte for byte"
    );
}

/// The printer writes what GNU as needs where its default encoding differs:
/// no empty index (`0xc(%esp)`, not `0xc(%esp,)`), `{load}` for the
/// register form with the destination in ModRM's reg field, `{disp8}` and
/// `{disp32}` for a longer displacement than needed.
#[test]
fn gas_spellings() {
    let mut printer = TextFormatter::new(Syntax::Gas);
    let text = |bytes: &[u8], printer: &mut TextFormatter| {
        let ins = Decoder::new(32, bytes, DecoderOptions::NONE).decode();
        let mut s = String::new();
        printer.format(&ins, &mut s);
        s
    };
    assert_eq!(
        text(&[0x8b, 0x54, 0x24, 0x0c], &mut printer),
        "mov    0xc(%esp), %edx"
    );
    assert_eq!(
        text(&[0x8b, 0xd1], &mut printer),
        "{load} mov    %ecx, %edx"
    );
    assert_eq!(text(&[0x89, 0xca], &mut printer), "mov    %ecx, %edx");
    assert_eq!(
        text(&[0x8d, 0x76, 0x00], &mut printer),
        "{disp8} lea    (%esi), %esi"
    );
    assert_eq!(
        text(&[0x8d, 0xb6, 0, 0, 0, 0], &mut printer),
        "{disp32} lea    (%esi), %esi"
    );
    assert_eq!(
        text(&[0x8b, 0x45, 0x08], &mut printer),
        "mov    0x8(%ebp), %eax"
    );
}
