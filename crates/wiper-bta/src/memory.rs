//! Abstract memory locations: what the analysis knows about the address of a
//! load or store, and which of them may alias (see `docs/bta.md`).

use std::fmt;

/// Where a memory access may go, as far as the analysis can tell.
///
/// Stack offsets are relative to the stack pointer at function entry
/// (`esp0`): the return address is at `[esp0]`, argument N at
/// `[esp0+4+4N]`, locals below `esp0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AbstractLoc {
    /// `size` bytes at `esp0 + offset`.
    Stack {
        /// Offset from the entry stack pointer.
        offset: i32,
        /// Number of bytes.
        size: u32,
    },
    /// Somewhere in the stack (`esp0` plus a value the analysis does not
    /// know): may be any stack byte.
    StackAny,
    /// Somewhere in the function's own frame below `esp0`: `esp0 + c + i`
    /// with a negative `c` and an index `i` the analysis does not know (a
    /// local array indexed by a variable; C's bounds keep the access inside
    /// the array, so it never reaches the return address or the arguments).
    LocalAny,
    /// `size` bytes at a constant address in the binary's image.
    Global {
        /// The address.
        addr: u32,
        /// Number of bytes.
        size: u32,
        /// Whether the address is in read-only data (`Binary::is_read_only`).
        read_only: bool,
    },
    /// A constant address in the binary's image plus an unknown index
    /// (`table[i]`): any byte of the same kind (read-only or writable).
    GlobalAny {
        /// The constant part of the address.
        base: u32,
        /// Whether `base` is in read-only data.
        read_only: bool,
    },
    /// `size` bytes at `offset` into the buffer of a static pointer
    /// argument (`argN=@...`).
    Buffer {
        /// The argument whose pointee this is.
        arg: u32,
        /// Offset into the buffer.
        offset: i32,
        /// Number of bytes.
        size: u32,
    },
    /// Somewhere in the buffer of static pointer argument `arg`.
    BufferAny {
        /// The argument whose pointee this is.
        arg: u32,
    },
    /// An address the analysis cannot place: may be any writable global,
    /// any buffer, any byte of memory outside the binary, and any stack
    /// byte if the frame's address escaped. Never read-only data for a
    /// store (a store there would fault).
    Unknown,
}

impl AbstractLoc {
    /// Whether two accesses may touch a common byte. `escaped` says whether
    /// the function's stack frame escaped (some stack address left the
    /// registers and stack slots the analysis tracks), in which case
    /// [`AbstractLoc::Unknown`] may also be any stack byte.
    pub fn may_alias(&self, other: &AbstractLoc, escaped: bool) -> bool {
        use AbstractLoc::*;
        let overlap =
            |a: i64, an: u32, b: i64, bn: u32| a < b + i64::from(bn) && b < a + i64::from(an);
        match (*self, *other) {
            (Unknown, Unknown) => true,
            (Unknown, x) | (x, Unknown) => match x {
                Stack { .. } | StackAny | LocalAny => escaped,
                Global { read_only, .. } | GlobalAny { read_only, .. } => !read_only,
                Buffer { .. } | BufferAny { .. } => true,
                Unknown => true,
            },
            (
                Stack {
                    offset: a,
                    size: an,
                },
                Stack {
                    offset: b,
                    size: bn,
                },
            ) => overlap(i64::from(a), an, i64::from(b), bn),
            (StackAny, Stack { .. } | StackAny | LocalAny)
            | (Stack { .. } | LocalAny, StackAny) => true,
            (LocalAny, LocalAny) => true,
            (LocalAny, Stack { offset, .. }) | (Stack { offset, .. }, LocalAny) => offset < 0,
            (Stack { .. } | StackAny | LocalAny, _) | (_, Stack { .. } | StackAny | LocalAny) => {
                false
            }
            (
                Global {
                    addr: a, size: an, ..
                },
                Global {
                    addr: b, size: bn, ..
                },
            ) => overlap(i64::from(a), an, i64::from(b), bn),
            (
                Global { read_only: r, .. } | GlobalAny { read_only: r, .. },
                GlobalAny { read_only: s, .. },
            )
            | (GlobalAny { read_only: r, .. }, Global { read_only: s, .. }) => r == s,
            (Global { .. } | GlobalAny { .. }, _) | (_, Global { .. } | GlobalAny { .. }) => false,
            (
                Buffer {
                    arg: a,
                    offset: ao,
                    size: an,
                },
                Buffer {
                    arg: b,
                    offset: bo,
                    size: bn,
                },
            ) => a == b && overlap(i64::from(ao), an, i64::from(bo), bn),
            (Buffer { arg: a, .. } | BufferAny { arg: a }, BufferAny { arg: b })
            | (BufferAny { arg: a }, Buffer { arg: b, .. }) => a == b,
        }
    }

    /// Whether the location is one exact byte range (a store to it
    /// overwrites every byte).
    pub fn is_exact(&self) -> bool {
        matches!(
            self,
            AbstractLoc::Stack { .. } | AbstractLoc::Global { .. } | AbstractLoc::Buffer { .. }
        )
    }
}

fn signed_hex(v: i32) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("+{v:#x}")
    }
}

fn size_prefix(size: u32, body: String) -> String {
    match size {
        1 => format!("byte {body}"),
        2 => format!("word {body}"),
        4 => body,
        8 => format!("qword {body}"),
        n => format!("{body}:{n}"),
    }
}

impl fmt::Display for AbstractLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match *self {
            AbstractLoc::Stack { offset, size } => {
                let body = if offset == 0 {
                    "[esp0]".to_owned()
                } else {
                    format!("[esp0{}]", signed_hex(offset))
                };
                size_prefix(size, body)
            }
            AbstractLoc::StackAny => "[esp0+?]".to_owned(),
            AbstractLoc::LocalAny => "[esp0-?]".to_owned(),
            AbstractLoc::Global { addr, size, .. } => size_prefix(size, format!("[{addr:#x}]")),
            AbstractLoc::GlobalAny { base, .. } => format!("[{base:#x}+?]"),
            AbstractLoc::Buffer { arg, offset, size } => {
                let body = if offset == 0 {
                    format!("[@arg{arg}]")
                } else {
                    format!("[@arg{arg}{}]", signed_hex(offset))
                };
                size_prefix(size, body)
            }
            AbstractLoc::BufferAny { arg } => format!("[@arg{arg}+?]"),
            AbstractLoc::Unknown => "[?]".to_owned(),
        };
        f.write_str(&s)
    }
}

/// One memory access of a part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Access {
    /// Where it goes.
    pub loc: AbstractLoc,
    /// Load or store.
    pub kind: AccessKind,
}

/// Whether an [`Access`] reads or writes, and how surely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// A load.
    Read,
    /// A store that always happens (overwrites its bytes when the location
    /// is exact).
    Write,
    /// A store that may not happen (a guarded `rep` iteration, `cmpxchg`),
    /// or whose exact bytes are not known: never overwrites for sure.
    MayWrite,
}

#[cfg(test)]
mod tests {
    use super::AbstractLoc::*;

    #[test]
    fn aliasing() {
        let a = Stack {
            offset: -8,
            size: 4,
        };
        let b = Stack {
            offset: -6,
            size: 2,
        };
        let c = Stack {
            offset: -4,
            size: 4,
        };
        assert!(a.may_alias(&b, false));
        assert!(!a.may_alias(&c, false));
        assert!(!Unknown.may_alias(&a, false));
        assert!(Unknown.may_alias(&a, true));
        assert!(StackAny.may_alias(&c, false));
        let ro = Global {
            addr: 0x100,
            size: 4,
            read_only: true,
        };
        assert!(!Unknown.may_alias(&ro, true));
        assert!(GlobalAny {
            base: 0x104,
            read_only: true
        }
        .may_alias(&ro, false));
        assert!(Unknown.may_alias(&BufferAny { arg: 0 }, false));
        assert!(!BufferAny { arg: 0 }.may_alias(&BufferAny { arg: 1 }, false));
        assert_eq!(a.to_string(), "[esp0-0x8]");
        assert_eq!(b.to_string(), "word [esp0-0x6]");
        assert_eq!(
            Buffer {
                arg: 1,
                offset: 4,
                size: 1
            }
            .to_string(),
            "byte [@arg1+0x4]"
        );
    }
}
