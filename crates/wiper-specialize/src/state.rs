//! The static store: what the specializer knows about the machine at one
//! program point, and whether the machine itself holds it yet.
//!
//! A location is either *dynamic* (its machine location holds its value) or
//! *known* (the value is a [`SVal`]); a known location is *synced* when the
//! residual code has also put the value in the machine location. The stack
//! pointer is special: its known value is always `stack + k`, and the
//! machine's `esp` is tracked separately as `stack + real_esp`, so stack
//! adjustments can be left out of the residual code and coalesced.

use std::collections::BTreeMap;

use wiper_sem::{Flag, Loc, Reg};

/// A symbolic base: a specialization-time address is `base + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Base {
    /// The stack pointer at entry of the function being specialized.
    Stack,
    /// The load address of a position-independent executable.
    Load,
}

/// A static 32-bit (or narrower) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SVal {
    /// A constant (masked to its width).
    Const(u64),
    /// A specialization-time address (always 32 bits wide).
    Addr(Base, u32),
}

/// A memory region: absolute addresses, the stack frame (offsets from the
/// entry stack pointer) or the PIE image (offsets from the load base).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// Absolute addresses.
    Abs,
    /// Relative to a symbolic base.
    Of(Base),
}

impl Region {
    /// The region and offset of an address value.
    pub fn of(addr: SVal) -> (Region, u32) {
        match addr {
            SVal::Const(a) => (Region::Abs, a as u32),
            SVal::Addr(b, o) => (Region::Of(b), o),
        }
    }
}

/// A known byte of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Byte {
    /// A constant byte.
    Const(u8),
    /// Byte `index` (little-endian) of the address `base + offset`.
    Part(Base, u32, u8),
}

/// A known location: its value and whether the machine holds it too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Known<T> {
    /// The value.
    pub value: T,
    /// Whether the machine location holds the value.
    pub synced: bool,
}

/// The static store at one point of the residual program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Store {
    /// Registers (by [`Reg::index`]); `None` is dynamic. `esp` is always
    /// known (`stack + k`) and its `synced` flag is unused.
    pub regs: [Option<Known<SVal>>; 8],
    /// Flags (by [`Flag::index`]); `None` is dynamic.
    pub flags: [Option<Known<bool>>; 7],
    /// Known memory bytes; absent bytes are dynamic (the machine holds them)
    /// unless they lie in a read-only segment of the binary.
    pub mem: BTreeMap<(Region, u32), Known<Byte>>,
    /// The machine's `esp` as an offset from [`Base::Stack`].
    pub real_esp: u32,
    /// Whether a stack address has reached residual code (so an unknown
    /// pointer or a callee may reach the frame).
    pub escaped: bool,
    /// Copies: the dynamic 4-byte stack slot at this offset holds the same
    /// value as the dynamic register (the residual code just stored or
    /// loaded it). Not part of memo keys: cleared at specialization points.
    pub copies: Vec<(u32, Reg)>,
}

impl Store {
    /// The store at entry: everything dynamic but `esp = stack + 0`.
    pub fn entry() -> Store {
        let mut regs = [None; 8];
        regs[Reg::Esp.index()] = Some(Known {
            value: SVal::Addr(Base::Stack, 0),
            synced: true,
        });
        Store {
            regs,
            flags: [None; 7],
            mem: BTreeMap::new(),
            real_esp: 0,
            escaped: false,
            copies: Vec::new(),
        }
    }

    /// The static stack pointer's offset from the entry stack pointer.
    pub fn esp(&self) -> u32 {
        match self.regs[Reg::Esp.index()] {
            Some(Known {
                value: SVal::Addr(Base::Stack, k),
                ..
            }) => k,
            _ => unreachable!("esp is always stack-relative"),
        }
    }

    /// Whether the machine's esp equals the static one.
    pub fn esp_synced(&self) -> bool {
        self.real_esp == self.esp()
    }

    /// A register's known value.
    pub fn reg(&self, r: Reg) -> Option<Known<SVal>> {
        self.regs[r.index()]
    }

    /// A flag's known value.
    pub fn flag(&self, f: Flag) -> Option<Known<bool>> {
        self.flags[f.index()]
    }

    /// Sets a register (`None`: dynamic).
    pub fn set_reg(&mut self, r: Reg, v: Option<Known<SVal>>) {
        self.regs[r.index()] = v;
    }

    /// Marks a known register or flag as synced or not (nothing for a
    /// dynamic one, nor for esp, whose machine value is `real_esp`).
    pub fn set_synced(&mut self, loc: Loc, synced: bool) {
        match loc {
            Loc::Reg(r) if r != Reg::Esp => {
                if let Some(k) = &mut self.regs[r.index()] {
                    k.synced = synced;
                }
            }
            Loc::Flag(f) => {
                if let Some(k) = &mut self.flags[f.index()] {
                    k.synced = synced;
                }
            }
            _ => {}
        }
    }
}

/// Splits a known 32-bit (or narrower) value into its little-endian bytes.
pub fn value_bytes(v: SVal, nbytes: u32) -> Vec<Byte> {
    match v {
        SVal::Const(c) => (0..nbytes)
            .map(|i| Byte::Const((c >> (8 * i)) as u8))
            .collect(),
        SVal::Addr(b, o) => (0..nbytes).map(|i| Byte::Part(b, o, i as u8)).collect(),
    }
}

/// Joins little-endian bytes into a value, if they form one.
pub fn join_bytes(bytes: &[Byte]) -> Option<SVal> {
    if bytes.iter().all(|b| matches!(b, Byte::Const(_))) {
        let mut v = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            if let Byte::Const(c) = b {
                v |= u64::from(*c) << (8 * i);
            }
        }
        return Some(SVal::Const(v));
    }
    if bytes.len() == 4 {
        if let Byte::Part(b, o, 0) = bytes[0] {
            if bytes
                .iter()
                .enumerate()
                .all(|(i, x)| *x == Byte::Part(b, o, i as u8))
            {
                return Some(SVal::Addr(b, o));
            }
        }
    }
    None
}
