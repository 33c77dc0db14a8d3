//! Judging wiper's decoding against GNU objdump: the listing, the notation
//! rules that make the two comparable ([`normalize`]), and the check of every
//! function of a binary ([`check_all_functions`]).

#![allow(dead_code)] // each test file uses its own part

mod eh;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use iced_x86::Instruction;
use wiper_elf::Binary;
use wiper_x86::format::InstructionPrinter;
use wiper_x86::{Disassembler, Function, Syntax};

/// Rewrites objdump's and wiper's notation into one form. Each rule is a pure
/// notation difference:
/// - `<symbol+off>` annotations are dropped and spaces collapsed;
/// - objdump's bare hex branch targets (`jmp 8049a20`, `xbegin 80bf824`) get a
///   `0x` prefix;
/// - objdump's `ds:0x804c010` for an absolute memory operand is `[0x804c010]`,
///   and `gs:0x14` (any other segment) is `gs:[0x14]`: wiper keeps the brackets
///   (see `wiper_x86::format`);
/// - objdump's `movs`/`stos`/`lods`/`scas`/`cmps` with `es:`/`ds:` operands are
///   the sized mnemonics `movsb`, `stosd`, ...;
/// - objdump's `eiz*1` pseudo-index and `+0x0` zero displacements are dropped;
/// - objdump's shift count `1` (the D1 encoding) is `0x1`;
/// - objdump prints no operand size for `mov` between the accumulator and an
///   absolute address (the `moffs` opcodes A0-A3), with or without a segment.
pub fn normalize(text: &str) -> String {
    let mut s = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => s.push(c),
            _ => {}
        }
    }
    let mut words: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if words.is_empty() {
        return String::new();
    }
    let branch =
        words[0].starts_with('j') || matches!(words[0].as_str(), "call" | "loop" | "xbegin");
    if branch && words.len() == 2 && words[1].chars().all(|c| c.is_ascii_hexdigit()) {
        words[1] = format!("0x{}", words[1]);
    }
    size_string_mnemonic(&mut words);
    let mut s = words.join(" ");
    for (from, to) in [("es:[", "["), ("ds:[", "["), ("+eiz*1", ""), ("+0x0]", "]")] {
        s = s.replace(from, to);
    }
    s = bracket_absolute(&s);
    let accumulator = ["al", "ax", "eax"]
        .iter()
        .any(|r| s.ends_with(&format!(",{r}")) || s.starts_with(&format!("mov {r},")));
    if words[0] == "mov" && accumulator {
        for size in ["DWORD PTR ", "BYTE PTR ", "WORD PTR "] {
            for seg in ["[0x", "es:[0x", "cs:[0x", "ss:[0x", "fs:[0x", "gs:[0x"] {
                s = s.replace(&format!("{size}{seg}"), seg);
            }
        }
    }
    if matches!(
        words[0].as_str(),
        "shl" | "shr" | "sar" | "sal" | "rol" | "ror" | "rcl" | "rcr"
    ) && s.ends_with(",1")
    {
        s.replace_range(s.len() - 1.., "0x1");
    }
    s
}

/// objdump's unsized string mnemonics (`stos DWORD PTR es:[edi],eax`) as
/// iced's sized ones (`stosd`), the size taken from the first `PTR` operand.
fn size_string_mnemonic(words: &mut [String]) {
    let at = usize::from(matches!(
        words[0].as_str(),
        "rep" | "repz" | "repnz" | "repe" | "repne"
    ));
    let Some(m) = words.get(at).cloned() else {
        return;
    };
    if !matches!(
        m.as_str(),
        "movs" | "stos" | "lods" | "scas" | "cmps" | "ins" | "outs"
    ) {
        return;
    }
    let size = words[at + 1..]
        .windows(2)
        .find(|w| w[1] == "PTR")
        .map(|w| w[0].rsplit(',').next().unwrap_or("").to_string());
    let suffix = match size.as_deref() {
        Some("BYTE") => "b",
        Some("WORD") => "w",
        Some("DWORD") => "d",
        _ => "",
    };
    words[at] = format!("{m}{suffix}");
}

/// `ds:0x1234` (no brackets) as `[0x1234]`, `gs:0x14` as `gs:[0x14]`.
fn bracket_absolute(text: &str) -> String {
    let mut s = text.to_string();
    for seg in ["ds", "es", "cs", "ss", "fs", "gs"] {
        let pattern = format!("{seg}:0x");
        while let Some(at) = s.find(&pattern) {
            let start = at + 3;
            let end = s[start..]
                .find(|c: char| !(c.is_ascii_hexdigit() || c == 'x'))
                .map_or(s.len(), |e| start + e);
            let keep = if seg == "ds" {
                String::new()
            } else {
                format!("{seg}:")
            };
            s = format!("{}{keep}[{}]{}", &s[..at], &s[start..end], &s[end..]);
        }
    }
    s
}

/// Whether objdump's `text` is alignment padding (nop forms) or an unreachable
/// `hlt` after an exit system call.
pub fn is_padding(text: &str) -> bool {
    let n = normalize(text);
    n == "hlt"
        || n.starts_with("nop")
        || n == "xchg ax,ax"
        || n.starts_with("lea esi,[esi")
        || n.starts_with("lea edi,[edi")
        || n == "mov esi,esi"
        || n == "mov edi,edi"
        || n.starts_with("data16")
        || n.starts_with("cs nop")
}

/// Runs objdump's Intel listing over `path` (from `start` to `stop` when
/// given): address -> (text, whether the line is followed by another).
fn run_objdump(path: &Path, range: Option<(u32, u32)>) -> BTreeMap<u32, String> {
    let mut cmd = Command::new("objdump");
    cmd.args(["-d", "-M", "intel", "--no-show-raw-insn", "-w"]);
    if let Some((start, stop)) = range {
        cmd.arg(format!("--start-address={start:#x}"));
        cmd.arg(format!("--stop-address={stop:#x}"));
    }
    let out = cmd
        .arg(path)
        .output()
        .expect("objdump (binutils) must be installed");
    assert!(out.status.success(), "objdump failed on {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (addr, text) = l.split_once(":\t")?;
            let addr = u32::from_str_radix(addr.trim(), 16).ok()?;
            Some((addr, text.trim().to_string()))
        })
        .collect()
}

/// objdump's Intel listing of a binary's executable sections.
pub struct Objdump {
    path: PathBuf,
    /// Address -> instruction text, in objdump's linear sweep.
    pub listing: BTreeMap<u32, String>,
}

impl Objdump {
    /// The listing of `path`.
    pub fn of(path: &Path) -> Objdump {
        Objdump {
            path: path.to_path_buf(),
            listing: run_objdump(path, None),
        }
    }

    /// objdump's text for the instruction of `len` bytes at `addr`: from the
    /// listing when it starts an instruction of that length there; else
    /// objdump decodes exactly those bytes (its linear sweep can be out of
    /// step with the code after data or padding bytes, and it prints `fwait`
    /// and the next x87 instruction as one, `fstsw ax` for `fwait; fnstsw ax`).
    /// `None` when objdump sees no single instruction in those bytes.
    pub fn text(&self, addr: u32, len: u32) -> Option<String> {
        let next = self.listing.range(addr + 1..).next().map(|(&a, _)| a);
        if let (Some(text), Some(next)) = (self.listing.get(&addr), next) {
            if next - addr == len {
                return Some(text.clone());
            }
        }
        let alone = run_objdump(&self.path, Some((addr, addr + len)));
        match alone.into_iter().collect::<Vec<_>>().as_slice() {
            [(a, text)] if *a == addr => Some(text.clone()),
            _ => None,
        }
    }

    /// How wiper's text for `ins` differs from objdump's, or `None` when the two
    /// are the same after [`normalize`].
    pub fn mismatch(
        &self,
        printer: &mut InstructionPrinter<'_>,
        ins: &Instruction,
    ) -> Option<String> {
        let ours = normalize(&printer.format(ins));
        let theirs = self.text(ins.ip32(), ins.len() as u32);
        match theirs {
            Some(t) if normalize(&t) == ours => None,
            t => Some(format!(
                "wiper `{ours}`, objdump `{}`",
                t.map_or("(no instruction)".to_string(), |t| normalize(&t))
            )),
        }
    }

    /// Every direct branch and call objdump lists: (target, address).
    pub fn branch_targets(&self) -> BTreeSet<(u32, u32)> {
        self.listing
            .iter()
            .filter_map(|(&at, text)| {
                let mut words = text.split_whitespace();
                let m = words.next()?;
                let branch = m.starts_with('j') || matches!(m, "call" | "loop" | "xbegin");
                let target = words.next()?;
                let target = branch.then(|| u32::from_str_radix(target, 16).ok())??;
                Some((target, at))
            })
            .collect()
    }

    /// objdump's instructions in `[lo, hi)` that wiper did not decode (`ours`:
    /// the start and end of every decoded instruction) and that are not
    /// padding: they start outside every decoded instruction and do not run
    /// into one (objdump out of step over padding bytes), and are not nop
    /// forms or zero bytes.
    pub fn undecoded(
        &self,
        binary: &Binary,
        ours: &BTreeMap<u32, u32>,
        lo: u32,
        hi: u32,
    ) -> Vec<(u32, String)> {
        let covered = |a: u32| {
            ours.range(..=a)
                .next_back()
                .is_some_and(|(_, &end)| a < end)
        };
        let mut missed = Vec::new();
        let listed: Vec<(u32, &String)> =
            self.listing.range(lo..hi).map(|(&a, t)| (a, t)).collect();
        for (i, &(addr, text)) in listed.iter().enumerate() {
            if covered(addr) || is_padding(text) {
                continue;
            }
            let end = listed.get(i + 1).map_or(hi, |&(a, _)| a);
            let runs_into_ours = ours.range(addr + 1..end).next().is_some();
            let zeros = binary
                .read(addr, end - addr)
                .is_some_and(|b| b.iter().all(|&x| x == 0));
            if !runs_into_ours && !zeros {
                missed.push((addr, text.clone()));
            }
        }
        missed
    }
}

/// The start and end of every instruction of `f`.
pub fn extents(f: &Function) -> BTreeMap<u32, u32> {
    f.instructions()
        .map(|i| (i.ip32(), i.next_ip32()))
        .collect()
}

/// Why an instruction objdump lists inside a function symbol was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unreached {
    /// Code after a call the decoder takes as never returning: gcc compiles
    /// what follows a call of a function not declared `noreturn` (`return
    /// luaL_error(...)`).
    AfterNoReturn,
    /// Code after `hlt` (which faults in user mode) or an exit system call.
    AfterHalt,
    /// A landing pad, or code after one: entered by the unwinder, which no
    /// branch reaches (read from `.eh_frame` and `.gcc_except_table`).
    LandingPad,
    /// Code of a function with a table jump the decoder leaves unresolved,
    /// which may lead there (docs/limitations.md explains each).
    BehindTable,
    /// Code no direct branch in the whole listing leads to, after an
    /// instruction that does not fall into it: dead code (glibc's assembly
    /// has some).
    Unreferenced,
    /// None of these.
    Unexplained,
}

/// What checking the functions of one binary against objdump found.
#[derive(Default, Debug)]
pub struct Findings {
    pub functions: usize,
    pub instructions: usize,
    /// Functions that do not decode, with the error.
    pub errors: Vec<String>,
    /// Instructions whose text differs from objdump's, or where objdump
    /// starts none.
    pub mismatches: Vec<String>,
    /// Instructions objdump lists inside a function symbol that wiper did not
    /// reach (and that are not padding), by why.
    pub unreached: BTreeMap<Unreached, Vec<String>>,
    /// Indirect `jmp`s in the shapes of jump tables ([`is_table_jump`]), by
    /// address: whether wiper resolved its table.
    pub table_jumps: BTreeMap<u32, bool>,
    /// Jump-table targets where objdump's listing starts no instruction.
    pub stray_targets: Vec<String>,
}

impl Findings {
    /// How many table jumps wiper resolved.
    pub fn resolved_tables(&self) -> usize {
        self.table_jumps.values().filter(|&&r| r).count()
    }

    /// The unreached instructions of one kind.
    pub fn unreached(&self, why: Unreached) -> &[String] {
        self.unreached.get(&why).map_or(&[], Vec::as_slice)
    }
}

/// How control leaves a decoded instruction, for what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaves {
    /// Into the next instruction (also a call that returns).
    FallsThrough,
    /// A call that does not return.
    NoReturn,
    Halts,
    /// Elsewhere (a jump, a return).
    Elsewhere,
}

/// How control leaves each instruction of `f`.
fn leaves(f: &Function) -> impl Iterator<Item = (u32, Leaves)> + '_ {
    use wiper_x86::Successor;
    f.blocks.values().flat_map(|b| {
        let last = b.instructions.len() - 1;
        b.instructions.iter().enumerate().map(move |(i, ins)| {
            let next = ins.next_ip32();
            let how = if i < last
                || b.successors.iter().any(|s| {
                    matches!(s, Successor::FallThrough(a) | Successor::NotTaken(a) if *a == next)
                }) {
                Leaves::FallsThrough
            } else if b.successors == [Successor::Halt] {
                Leaves::Halts
            } else if b.successors.iter().any(|s| matches!(s, Successor::Call(_))) {
                Leaves::NoReturn
            } else {
                Leaves::Elsewhere
            };
            (ins.ip32(), how)
        })
    })
}

/// Whether `jump` (an instruction of `f`) is an indirect jump through a
/// table, by its shape: its target is a 32-bit word read at `table + 4 *
/// index` (`jmp [eax*4+T]`), perhaps plus a register (PIC: `add eax,[ebx+
/// eax*4+T]; jmp eax`, `mov ecx,[esi+eax*4+T]; add ecx,esi; jmp ecx`), read
/// in the straight-line code before the jump (up to 16 instructions, no
/// branch between). An indirect tail call through a function pointer (`mov
/// eax,[esi+0x10]; ...; jmp eax`) is not one.
pub fn is_table_jump(f: &Function, jump: &Instruction) -> bool {
    use iced_x86::{FlowControl, Mnemonic, OpKind, Register};
    let scaled = |i: &Instruction| {
        (0..i.op_count()).any(|k| i.op_kind(k) == OpKind::Memory)
            && i.memory_index() != Register::None
            && i.memory_index_scale() == 4
    };
    if jump.mnemonic() != Mnemonic::Jmp {
        return false;
    }
    match jump.op0_kind() {
        OpKind::Memory => return scaled(jump),
        OpKind::Register => {}
        _ => return false,
    }
    let by_address: BTreeMap<u32, &Instruction> = f.instructions().map(|i| (i.ip32(), i)).collect();
    let mut sought = vec![jump.op0_register().full_register32()];
    let mut at = jump.ip32();
    for _ in 0..16 {
        let Some((_, &ins)) = by_address.range(..at).next_back() else {
            return false;
        };
        if ins.next_ip32() != at || ins.flow_control() != FlowControl::Next {
            return false;
        }
        at = ins.ip32();
        let writes = ins.op_count() > 0 && ins.op0_kind() == OpKind::Register;
        let dest = ins.op0_register().full_register32();
        if !writes || !sought.contains(&dest) {
            continue;
        }
        if scaled(ins) && matches!(ins.mnemonic(), Mnemonic::Mov | Mnemonic::Add) {
            return true;
        }
        match (ins.mnemonic(), ins.op1_kind()) {
            (Mnemonic::Add, OpKind::Register) => sought.push(ins.op1_register().full_register32()),
            (Mnemonic::Mov, OpKind::Register) => {
                sought.retain(|&r| r != dest);
                sought.push(ins.op1_register().full_register32());
            }
            _ => sought.retain(|&r| r != dest),
        }
        if sought.is_empty() {
            return false;
        }
    }
    false
}

/// Checks every function wiper finds in `path` (symbols, entry, `main`,
/// call targets) against objdump. Each instruction is judged once, however
/// many functions share it.
pub fn check_all_functions(path: &Path) -> Findings {
    let binary = Binary::open(path).unwrap();
    let reference = Objdump::of(path);
    let mut printer = InstructionPrinter::new(&binary, Syntax::Intel);
    let mut dis = Disassembler::new(&binary);
    let mut found = Findings::default();
    let mut judged = BTreeSet::new();
    let mut decoded = BTreeMap::new();
    let mut left = BTreeMap::new();
    // Symbols of functions with an unresolved table jump.
    let mut behind_tables = Vec::new();
    for entry in dis.discover_functions() {
        let name = binary
            .name_of(entry)
            .unwrap_or_else(|| format!("fn_{entry:x}"));
        let f = match dis.function(entry) {
            Ok(f) => f,
            Err(e) => {
                found.errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        found.functions += 1;
        for ins in f.instructions() {
            found.instructions += 1;
            if !judged.insert(ins.ip32()) {
                continue;
            }
            if let Some(m) = reference.mismatch(&mut printer, ins) {
                found
                    .mismatches
                    .push(format!("{name} at {:#x}: {m}", ins.ip32()));
            }
        }
        for block in f.blocks.values() {
            let last = block.instructions.last().expect("blocks are not empty");
            if is_table_jump(&f, last) {
                found
                    .table_jumps
                    .insert(last.ip32(), block.jump_table.is_some());
                if block.jump_table.is_none() {
                    let symbols = [
                        binary.function_at(entry),
                        binary.function_containing(last.ip32()),
                    ];
                    behind_tables.extend(
                        symbols
                            .into_iter()
                            .flatten()
                            .map(|s| (s.addr, s.addr + s.size)),
                    );
                }
            }
            for t in block.jump_table.iter().flat_map(|t| &t.targets) {
                if !reference.listing.contains_key(t) {
                    found
                        .stray_targets
                        .push(format!("{name}: table at {:#x} -> {t:#x}", last.ip32()));
                }
            }
        }
        decoded.extend(extents(&f));
        left.extend(leaves(&f));
    }
    let pads = eh::landing_pads(&binary);
    let targets = reference.branch_targets();
    // Code of one symbol may be decoded as part of another function (gcc's
    // `f.cold` parts are entered from `f`).
    let mut ranges = BTreeSet::new();
    for sym in binary.symbols.iter().filter(|s| s.is_code() && s.size > 0) {
        if !ranges.insert((sym.addr, sym.size)) {
            continue;
        }
        for (addr, text) in reference.undecoded(&binary, &decoded, sym.addr, sym.addr + sym.size) {
            // The decoded instruction before it, and where the gap starts.
            let before = decoded.range(..addr).next_back().map(|(&a, &end)| (a, end));
            let gap = before.map_or(sym.addr, |(_, end)| end.max(sym.addr));
            let gap_end = decoded
                .range(addr..)
                .next()
                .map_or(sym.addr + sym.size, |(&a, _)| a.min(sym.addr + sym.size));
            let why = if pads.range(gap..=addr).next().is_some() {
                Unreached::LandingPad
            } else {
                match before.map(|(a, _)| left[&a]) {
                    Some(Leaves::NoReturn) => Unreached::AfterNoReturn,
                    Some(Leaves::Halts) => Unreached::AfterHalt,
                    _ if behind_tables
                        .iter()
                        .any(|&(lo, hi)| (lo..hi).contains(&addr)) =>
                    {
                        Unreached::BehindTable
                    }
                    Some(Leaves::Elsewhere)
                        if !targets
                            .range((gap, 0)..(gap_end, 0))
                            .any(|&(_, from)| !(gap..gap_end).contains(&from)) =>
                    {
                        Unreached::Unreferenced
                    }
                    _ => Unreached::Unexplained,
                }
            };
            found
                .unreached
                .entry(why)
                .or_default()
                .push(format!("{}: {addr:#x} `{text}`", sym.name));
        }
    }
    found
}
