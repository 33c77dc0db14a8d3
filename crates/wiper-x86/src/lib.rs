//! Disassembly of IA-32 functions into control-flow graphs: the *decode* stage of wiper.
//!
//! [`Disassembler::function`] decodes a function by recursive descent from its entry
//! (iced-x86 in 32-bit mode) and cuts it into basic blocks whose [`Successor`]s say
//! how control leaves them: fall-through, jumps, conditional branches, jump-table
//! cases, calls (with their targets), tail calls and returns. Jumps through tables
//! (`switch`, computed `goto`) are resolved into one edge per entry when a value-range
//! analysis bounds the index on every path ([`jumptable`]); calls to functions
//! that never return (`exit`, `abort`, an `exit` system call) get no fall-through
//! edge, so code after them is not mistaken for part of the function.

pub mod abi;
pub mod callers;
pub mod callsites;
mod cfg;
pub mod format;
pub mod jumptable;
mod locate;
pub mod reach;
pub mod reg;
pub mod rng;
pub mod syscalls;
pub mod unwritten;

use std::collections::{BTreeMap, BTreeSet};

pub use iced_x86::Instruction;
use wiper_elf::Binary;

pub use callers::{CallerAnalysis, EdxAtReturn, EdxLive};
pub use format::{Format, Syntax};
pub use jumptable::JumpTable;
pub use locate::{find_main, main_from_start, pc_thunk_register, resolve_function};
pub use reg::{Reg, GPR16, GPR32, GPR8};
pub use rng::Rng;
pub use unwritten::unwritten_objects;

/// `; did you mean `a`, `b`?` for a non-empty list of names.
fn did_you_mean(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!("; did you mean {}?", quoted.join(", "))
}

/// Why a function could not be decoded. Each message is one line and names the address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `--function NAME` names no function symbol (and it is not a `main`
    /// found from `_start`); the closest names follow, if any are close.
    #[error("unknown function `{name}`: no function symbol of that name{}", did_you_mean(.suggestions))]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// Function and PLT names close to it, closest first (at most 3).
        suggestions: Vec<String>,
    },
    /// A function given as an address that is not the address of code.
    #[error("address {0:#x} is outside the executable segments")]
    NotExecutable(u32),
    /// A `--function` argument that is neither a name nor a hex address.
    #[error("invalid function address `{0}`: expected a name or 0x followed by hex digits")]
    BadAddress(String),
    /// Bytes that are not a valid IA-32 instruction.
    #[error("undecodable instruction bytes at {addr:#x}: {bytes}")]
    Invalid {
        /// Address of the first byte.
        addr: u32,
        /// Up to 8 bytes in hex.
        bytes: String,
    },
    /// An instruction that runs past the end of its segment's file image.
    #[error("instruction at {0:#x} runs past the end of its segment")]
    Truncated(u32),
    /// A branch or call whose target is not code.
    #[error("{what} at {from:#x} targets {to:#x}, outside the executable segments")]
    BadTarget {
        /// "jump" or "call".
        what: &'static str,
        /// Address of the branch.
        from: u32,
        /// Its target.
        to: u32,
    },
    /// Two decoded instructions overlap (a jump into the middle of an
    /// instruction), other than an instruction and itself without some of its
    /// prefixes (see [`Function`]).
    #[error("overlapping instructions: {0:#x} lies inside the instruction at {1:#x}")]
    Overlap(u32, u32),
    /// The function grew past [`MAX_INSTRUCTIONS`].
    #[error("function at {0:#x} has more than {MAX_INSTRUCTIONS} instructions")]
    TooLarge(u32),
}

/// Upper bound on the instructions of one function, against runaway decoding of data.
pub const MAX_INSTRUCTIONS: usize = 200_000;

/// The target of a call or tail call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTarget {
    /// A function in the binary, by entry address.
    Function(u32),
    /// A PLT stub: an imported function (or a glibc IFUNC), by stub address and name.
    Import {
        /// Address of the PLT stub.
        addr: u32,
        /// Name of the function it jumps to.
        name: String,
    },
    /// A register or memory operand.
    Indirect,
    /// A direct call to address 0, where nothing is mapped: an undefined weak
    /// function, which the linker resolves to 0 (glibc's static
    /// `__libc_start_main` calls `__pthread_initialize_minimal` so). The program
    /// tests the function's address first; executing the call would fault,
    /// so it does not return: the code after it is reached only by other
    /// edges (when the call ends a function, what follows is padding or the
    /// next function, as the `.eh_frame` ranges show).
    Absent,
}

/// How control can leave a basic block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Successor {
    /// Straight on into the block at this address (the next block starts at a branch
    /// target, or a call returned).
    FallThrough(u32),
    /// Unconditional direct jump.
    Jump(u32),
    /// Conditional branch, condition true.
    Taken(u32),
    /// Conditional branch, condition false (the next instruction).
    NotTaken(u32),
    /// One entry of a resolved jump table: switch case `index` goes to `target`.
    Case {
        /// Index into the table (the switch value minus its lowest case).
        index: u32,
        /// Where that entry jumps.
        target: u32,
    },
    /// A call; when the callee returns, a [`Successor::FallThrough`] edge follows.
    Call(CallTarget),
    /// A jump to another function, which returns to our caller.
    TailCall(CallTarget),
    /// `ret`.
    Return,
    /// An indirect jump whose targets are unknown.
    IndirectJump,
    /// Execution stops: `hlt`, `ud2`, `int3`, or an `exit` system call.
    Halt,
}

/// A basic block: straight-line instructions, entered at the top, left at the bottom.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Address of the first instruction.
    pub start: u32,
    /// Decoded instructions in address order.
    pub instructions: Vec<Instruction>,
    /// How control leaves the block.
    pub successors: Vec<Successor>,
    /// The jump table behind the block's final indirect jump, when resolved.
    pub jump_table: Option<JumpTable>,
}

impl Block {
    /// Address one past the last byte.
    pub fn end(&self) -> u32 {
        self.instructions
            .last()
            .map_or(self.start, |i| i.next_ip32())
    }

    /// Addresses of blocks in the same function that control can reach next.
    pub fn local_successors(&self) -> impl Iterator<Item = u32> + '_ {
        self.successors.iter().filter_map(|s| match s {
            Successor::FallThrough(a)
            | Successor::Jump(a)
            | Successor::Taken(a)
            | Successor::NotTaken(a)
            | Successor::Case { target: a, .. } => Some(*a),
            _ => None,
        })
    }
}

/// A function's control-flow graph.
///
/// Its instructions do not overlap, with one exception: an instruction and the
/// same instruction without some of its leading prefixes, decoded from inside
/// it (glibc jumps over a `lock` prefix: `je 1f; lock; 1: cmpxchg ...`). The
/// two are in different blocks, end at the same address, and a block starts
/// there, so both fall through to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// Symbol name, when the binary has one.
    pub name: Option<String>,
    /// Entry address.
    pub entry: u32,
    /// Basic blocks by start address.
    pub blocks: BTreeMap<u32, Block>,
}

impl Function {
    /// How many bytes from the entry the function's own instructions cover
    /// without a gap: what may be overwritten at the entry without touching
    /// alignment padding or whatever code follows a short function.
    pub fn entry_run(&self) -> u32 {
        let mut end = self.entry;
        for ins in self.instructions().skip_while(|i| i.ip32() < self.entry) {
            if ins.ip32() != end {
                break;
            }
            end = ins.next_ip32();
        }
        end - self.entry
    }

    /// Number of instructions in all blocks.
    pub fn instruction_count(&self) -> usize {
        self.blocks.values().map(|b| b.instructions.len()).sum()
    }

    /// Every instruction, in address order (of their first bytes).
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.blocks.values().flat_map(|b| b.instructions.iter())
    }

    /// Bytes of arguments the function's `ret N` pops (the largest `N`; 0 when
    /// it returns with plain `ret`, the caller popping them).
    pub fn popped_on_return(&self) -> u32 {
        self.instructions()
            .filter(|i| i.mnemonic() == iced_x86::Mnemonic::Ret && i.op_count() == 1)
            .map(|i| u32::from(i.immediate16()))
            .max()
            .unwrap_or(0)
    }

    /// Whether some path through the function returns to its caller; `returns` says
    /// whether a tail-called function does.
    pub fn may_return(&self, mut returns: impl FnMut(&CallTarget) -> bool) -> bool {
        self.blocks
            .values()
            .flat_map(|b| &b.successors)
            .any(|s| match s {
                Successor::Return | Successor::IndirectJump => true,
                Successor::TailCall(t) => returns(t),
                _ => false,
            })
    }
}

/// Decodes functions of one binary, caching what it learns (which functions return).
pub struct Disassembler<'a> {
    binary: &'a Binary,
    /// Functions known to return (or not).
    returns: BTreeMap<u32, bool>,
    /// Functions being decoded: assumed to return, the safe guess for recursion.
    in_progress: BTreeSet<u32>,
    /// End of the `.eh_frame` range starting at each function start.
    unwind_ends: BTreeMap<u32, u32>,
    /// Bytes of arguments functions pop on return (`ret N`).
    pops: BTreeMap<u32, u32>,
    /// Per function entry, targets of its indirect jumps learnt from
    /// outside ([`Disassembler::add_known_target`]).
    known_targets: BTreeMap<u32, BTreeSet<u32>>,
}

impl<'a> Disassembler<'a> {
    /// A disassembler for `binary`.
    pub fn new(binary: &'a Binary) -> Self {
        Disassembler {
            binary,
            returns: BTreeMap::new(),
            in_progress: BTreeSet::new(),
            unwind_ends: binary
                .unwind_ranges()
                .iter()
                .map(|r| (r.start, r.start.wrapping_add(r.len)))
                .collect(),
            pops: BTreeMap::new(),
            known_targets: BTreeMap::new(),
        }
    }

    /// Records that control reaches `target` inside the function at
    /// `entry` (an indirect jump's target that a caller of the decoder
    /// knows, such as a specializer evaluating `goto *table[i]` with a
    /// static `i`): later decodings of the function start there too, if
    /// the function may hold it. Whether it was new.
    pub fn add_known_target(&mut self, entry: u32, target: u32) -> bool {
        self.known_targets.entry(entry).or_default().insert(target)
    }

    /// The targets recorded for the function at `entry`.
    pub(crate) fn known_targets(&self, entry: u32) -> Vec<u32> {
        self.known_targets
            .get(&entry)
            .map(|t| t.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The end of the `.eh_frame` range that starts at `entry`, if any: the
    /// end of the function's main body as the compiler recorded it.
    pub(crate) fn unwind_end(&self, entry: u32) -> Option<u32> {
        self.unwind_ends.get(&entry).copied()
    }

    /// The binary being decoded.
    pub fn binary(&self) -> &'a Binary {
        self.binary
    }

    /// Decodes the function starting at `entry` into its control-flow graph.
    pub fn function(&mut self, entry: u32) -> Result<Function, DecodeError> {
        self.in_progress.insert(entry);
        let result = cfg::build(self, entry);
        self.in_progress.remove(&entry);
        result
    }

    /// Whether a call to `target` may come back (false for `exit`, `abort`, ...).
    pub fn call_returns(&mut self, target: &CallTarget) -> bool {
        match target {
            CallTarget::Indirect => true,
            CallTarget::Absent => false,
            CallTarget::Import { name, .. } => !is_noreturn_name(name),
            CallTarget::Function(addr) => self.function_returns(*addr),
        }
    }

    fn function_returns(&mut self, addr: u32) -> bool {
        if let Some(&known) = self.returns.get(&addr) {
            return known;
        }
        if self.in_progress.contains(&addr) {
            return true;
        }
        if let Some(sym) = self.binary.function_at(addr) {
            if is_noreturn_name(&sym.name) {
                self.returns.insert(addr, false);
                return false;
            }
        }
        let returns = match self.function(addr) {
            Ok(f) => {
                self.pops.insert(addr, f.popped_on_return());
                f.may_return(|t| self.call_returns(t))
            }
            Err(_) => true,
        };
        self.returns.insert(addr, returns);
        returns
    }

    /// How many bytes of arguments the function at `addr` pops when it returns
    /// (`ret N`; 0 for the usual caller-pops convention); `None` while it is
    /// being decoded, or when it does not decode.
    pub(crate) fn callee_pops(&mut self, addr: u32) -> Option<u32> {
        if let Some(&p) = self.pops.get(&addr) {
            return Some(p);
        }
        if self.in_progress.contains(&addr) {
            return None;
        }
        let p = self.function(addr).ok()?.popped_on_return();
        self.pops.insert(addr, p);
        Some(p)
    }

    /// Entry addresses of all functions: function symbols, the starts of the
    /// `.eh_frame` FDEs (one per function gcc compiled, stripped or not), the
    /// entry point, `main`, and every direct call target reachable from them.
    pub fn discover_functions(&mut self) -> Vec<u32> {
        let binary = self.binary;
        let mut seen: BTreeSet<u32> = binary.function_symbol_addrs().into_iter().collect();
        seen.extend(binary.unwind_ranges().iter().map(|r| r.start));
        if binary.is_executable(binary.entry) {
            seen.insert(binary.entry);
        }
        if let Some(main) = find_main(binary) {
            seen.insert(main);
        }
        self.reachable_from(seen)
    }

    /// Entry addresses of `roots` and of every function reachable from them
    /// by direct calls and tail calls, in address order (a function that
    /// does not decode is listed, and its callees are not followed).
    pub fn reachable_from(&mut self, roots: impl IntoIterator<Item = u32>) -> Vec<u32> {
        let mut seen: BTreeSet<u32> = roots.into_iter().collect();
        let mut work: Vec<u32> = seen.iter().copied().collect();
        while let Some(addr) = work.pop() {
            let Ok(f) = self.function(addr) else { continue };
            for s in f.blocks.values().flat_map(|b| &b.successors) {
                if let Successor::Call(CallTarget::Function(t))
                | Successor::TailCall(CallTarget::Function(t)) = s
                {
                    if seen.insert(*t) {
                        work.push(*t);
                    }
                }
            }
        }
        seen.into_iter().collect()
    }
}

/// Functions known never to return, by name (libc and the kernel interface).
pub fn is_noreturn_name(name: &str) -> bool {
    const NAMES: &[&str] = &[
        "exit",
        "_exit",
        "_Exit",
        "abort",
        "__assert_fail",
        "__assert_perror_fail",
        "__stack_chk_fail",
        "__stack_chk_fail_local",
        "__libc_start_main",
        "__libc_fatal",
        "__fortify_fail",
        "__chk_fail",
        "longjmp",
        "_longjmp",
        "siglongjmp",
        "__longjmp_chk",
        "pthread_exit",
        "err",
        "errx",
        "verr",
        "verrx",
        "__cxa_throw",
        "_Unwind_Resume",
    ];
    NAMES.contains(&name)
}
