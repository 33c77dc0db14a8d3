//! The static store: what the specializer knows about the machine at one
//! program point, and whether the machine itself holds it yet.
//!
//! A location is either *dynamic* (its machine location holds its value) or
//! *known* (the value is a [`SVal`]); a known location is *synced* when the
//! residual code has also put the value in the machine location. The stack
//! pointer is special: its known value is always `stack + k`, and the
//! machine's `esp` is tracked separately as `stack + real_esp`, so stack
//! adjustments can be left out of the residual code and coalesced.

use std::hash::{Hash, Hasher};

use wiper_sem::{Flag, Loc, Reg};

mod memory;

use crate::relations::{RelLoc, Relations};
pub use memory::{Image, Memory};

pub use wiper_qfbv::{FxHashMap, FxHasher};

/// A symbolic base: a specialization-time address is `base + offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Base {
    /// The stack pointer at entry of the function being specialized; while
    /// its stack is realigned (`and esp, -16`), the realigned stack pointer
    /// instead (see [`Base::Entry`]).
    Stack,
    /// While the stack is realigned: the stack pointer at entry, whose
    /// distance from the realigned one is unknown. Its frame (return
    /// address, arguments, registers saved before the realignment) is
    /// reached through registers that held entry-relative addresses when the
    /// stack was realigned (`ebp`, or the `ecx` gcc saves). Values relative
    /// to it cannot be rebuilt from `esp`, so the machine always holds them.
    Entry,
    /// The load address of a position-independent executable.
    Load,
    /// The base of the `fs` segment.
    Fs,
    /// The base of the `gs` segment: the thread pointer (glibc and musl keep
    /// the thread's control block there: the stack-protector canary at
    /// `gs:0x14`, the vsyscall entry at `gs:0x10`). Only memory addresses
    /// are relative to it; no register holds such a value.
    Gs,
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
/// entry stack pointer), the PIE image (offsets from the load base) or the
/// memory of an `fs`/`gs` segment (offsets from its base).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    /// Absolute addresses.
    Abs,
    /// Relative to a symbolic base.
    Of(Base),
}

impl Base {
    /// Whether an address with this base is in the function's own stack
    /// (the frame, or the entry frame while the stack is realigned).
    pub fn is_frame(self) -> bool {
        matches!(self, Base::Stack | Base::Entry)
    }
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

/// The direction flag at a function's entry and after a call returns:
/// what the ABI says, and the machine holds it.
pub const ABI_DIRECTION_FLAG: Known<bool> = Known {
    value: wiper_x86::abi::DIRECTION_FLAG_AT_CALLS,
    synced: true,
};

/// The static store at one point of the residual program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    /// Registers (by [`Reg::index`]); `None` is dynamic. `esp` is always
    /// known (`stack + k`) and its `synced` flag is unused.
    pub regs: [Option<Known<SVal>>; 8],
    /// Flags (by [`Flag::index`]); `None` is dynamic.
    pub flags: [Option<Known<bool>>; 7],
    /// Known memory bytes; absent bytes are dynamic (the machine holds them)
    /// unless they lie in a read-only segment of the binary.
    pub mem: Memory,
    /// The machine's `esp` as an offset from [`Base::Stack`].
    pub real_esp: u32,
    /// Whether a stack address has reached memory or code the specializer
    /// does not follow (so an unknown pointer or a callee may reach the
    /// frame).
    pub escaped: bool,
    /// Dynamic registers (by [`Reg::index`]) that may hold an address in
    /// the frame (a residual value computed from a stack address, `buf +
    /// i`), each with the stack offset it was computed from: a load or
    /// store through one may reach the frame. The offsets are hints (the
    /// window of a guarded store); memo keys compare only which registers
    /// are marked.
    pub frame_regs: [Option<u32>; 8],
    /// Copies: the dynamic 4-byte stack slot at this offset holds the same
    /// value as the dynamic register (the residual code just stored or
    /// loaded it). Not part of memo keys: cleared at specialization points.
    pub copies: Vec<(u32, Reg)>,
    /// Static differences between dynamic locations. Not part of memo
    /// keys: a point specialized with some relations is reached from
    /// stores where they hold.
    pub rels: Relations,
    /// The thread pointer: the `gs` segment's base when it is known (after
    /// the C library installed its own, `mov gs, edx` after
    /// `set_thread_area`); `None` while it is the symbolic [`Base::Gs`].
    pub gs_base: Option<SVal>,
    /// The base address in the descriptor the last `set_thread_area` (or
    /// `modify_ldt`) installed, when known: what a `mov gs` then selects.
    pub tls_descriptor: Option<SVal>,
}

impl Store {
    /// The store at entry: everything dynamic but `esp = stack + 0` and
    /// the direction flag, which the ABI has clear at every call.
    pub fn entry() -> Store {
        let mut regs = [None; 8];
        regs[Reg::Esp.index()] = Some(Known {
            value: SVal::Addr(Base::Stack, 0),
            synced: true,
        });
        let mut flags = [None; 7];
        flags[Flag::Df.index()] = Some(ABI_DIRECTION_FLAG);
        Store {
            regs,
            flags,
            mem: Memory::default(),
            real_esp: 0,
            escaped: false,
            frame_regs: [None; 8],
            copies: Vec::new(),
            rels: Relations::default(),
            gs_base: None,
            tls_descriptor: None,
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

    /// Sets a register (`None`: dynamic). A known value clears the
    /// register's frame mark; a register made dynamic keeps it, and one
    /// that held a frame address gets it (its machine value is that
    /// address): a value computed elsewhere sets the mark with
    /// [`Store::set_dynamic`].
    pub fn set_reg(&mut self, r: Reg, v: Option<Known<SVal>>) {
        let old = std::mem::replace(&mut self.regs[r.index()], v);
        let mark = &mut self.frame_regs[r.index()];
        match (v, old) {
            (Some(_), _) => *mark = None,
            (
                None,
                Some(Known {
                    value: SVal::Addr(b, k),
                    ..
                }),
            ) if b.is_frame() => *mark = Some(k),
            (None, _) => {}
        }
    }

    /// Makes a register dynamic with a value computed from a frame address
    /// at stack offset `frame` (`Some`), or from anything else (`None`).
    pub fn set_dynamic(&mut self, r: Reg, frame: Option<u32>) {
        self.regs[r.index()] = None;
        self.frame_regs[r.index()] = frame;
    }

    /// The stack offset a dynamic register's frame address was computed
    /// from, if it may hold one (see [`Store::frame_regs`]).
    pub fn frame_reg(&self, r: Reg) -> Option<u32> {
        self.frame_regs[r.index()]
    }

    /// Whether any of `regs` holds a frame address, known or dynamic.
    pub fn holds_frame_address(&self, regs: &[Reg]) -> bool {
        regs.iter().any(|&r| {
            self.frame_reg(r).is_some()
                || matches!(self.reg(r), Some(k) if matches!(k.value, SVal::Addr(b, _) if b.is_frame()))
        })
    }

    /// Marks a known register or flag as synced or not (nothing for a
    /// dynamic one, nor for esp, whose machine value is `real_esp`). A
    /// register whose entry-relative value ([`Base::Entry`]) the machine no
    /// longer holds is forgotten instead: nothing could rebuild it.
    pub fn set_synced(&mut self, loc: Loc, synced: bool) {
        match loc {
            Loc::Reg(r) if r != Reg::Esp => {
                if let Some(k) = &mut self.regs[r.index()] {
                    k.synced = synced;
                    if let (false, SVal::Addr(Base::Entry, _)) = (synced, k.value) {
                        self.set_reg(r, None);
                    }
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

    /// Hashes the static part of the store (what memo keys compare):
    /// the known values of registers, flags and memory, `escaped` and
    /// which registers hold frame addresses;
    /// not whether they are synced, nor the machine's esp, nor copies.
    pub fn hash_static<H: Hasher>(&self, h: &mut H) {
        self.regs.map(|r| r.map(|k| k.value)).hash(h);
        self.flags.map(|f| f.map(|k| k.value)).hash(h);
        self.mem.hash_values(h);
        self.escaped.hash(h);
        self.frame_regs.map(|m| m.is_some()).hash(h);
        (self.gs_base, self.tls_descriptor).hash(h);
    }

    /// Whether two stores have the same static part (see
    /// [`Store::hash_static`]).
    pub fn same_static(&self, other: &Store) -> bool {
        self.regs.map(|r| r.map(|k| k.value)) == other.regs.map(|r| r.map(|k| k.value))
            && self.flags.map(|f| f.map(|k| k.value)) == other.flags.map(|f| f.map(|k| k.value))
            && self.escaped == other.escaped
            && self.frame_regs.map(|m| m.is_some()) == other.frame_regs.map(|m| m.is_some())
            && (self.gs_base, self.tls_descriptor) == (other.gs_base, other.tls_descriptor)
            && self.mem.same_values(&other.mem)
    }
}

impl Store {
    /// The static part of the store (what memo keys compare) as printable
    /// `(location, value)` pairs, in a fixed order: the known registers
    /// (`esp` too), the known flags, the known memory by aligned 4-byte word
    /// (`[esp0-0x8]`, `[0x804c010]`, a word only partly known shows `??`
    /// for its dynamic bytes), `frame escaped` when a stack address has
    /// reached residual code, the dynamic registers holding frame
    /// addresses, then the relations between dynamic locations
    /// (`edi`, `= [esp0+0x10] + 0xc`), which memo entries also differ in.
    /// Two stores with the same static part and relations give the same
    /// pairs, and two that differ in either different ones.
    pub fn static_summary(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in Reg::ALL {
            if let Some(k) = self.reg(r) {
                out.push((r.name().to_owned(), sval_text(k.value)));
            }
        }
        for f in Flag::ALL {
            if let Some(k) = self.flag(f) {
                out.push((f.name().to_owned(), u8::from(k.value).to_string()));
            }
        }
        let mut word: Option<KnownWord> = None;
        for ((region, off), k) in self.mem.iter() {
            let key = (region, off & !3);
            if word.as_ref().is_some_and(|(w, _)| *w != key) {
                out.extend(word.take().map(word_text));
            }
            let (_, bytes) = word.get_or_insert((key, [None; 4]));
            bytes[(off & 3) as usize] = Some(k.value);
        }
        out.extend(word.map(word_text));
        if let Some(b) = self.gs_base {
            out.push(("gs base".to_owned(), sval_text(b)));
        }
        if self.escaped {
            out.push(("frame escaped".to_owned(), "yes".to_owned()));
        }
        for r in Reg::ALL
            .into_iter()
            .filter(|&r| self.frame_reg(r).is_some())
        {
            out.push((r.name().to_owned(), "a frame address".to_owned()));
        }
        out.extend(self.rels.describe(|loc| match loc {
            RelLoc::Reg(r) => r.name().to_owned(),
            RelLoc::Word(o) => format!("[{}]", base_text(Base::Stack, o)),
        }));
        out
    }
}

/// An aligned 4-byte word of memory (its region and first offset) and its
/// known bytes.
type KnownWord = ((Region, u32), [Option<Byte>; 4]);

/// `base+0x10` or `base-0x10` for a symbolic base (`esp0` for the entry
/// stack pointer, as `wiper bta` writes it).
fn base_text(base: Base, off: u32) -> String {
    let name = match base {
        Base::Stack => "esp0",
        Base::Entry => "entry_esp0",
        Base::Load => "load",
        Base::Fs => "fs",
        Base::Gs => "gs",
    };
    match off as i32 {
        0 => name.to_owned(),
        o if o < 0 => format!("{name}-{:#x}", o.unsigned_abs()),
        o => format!("{name}+{o:#x}"),
    }
}

/// A static value as text: small constants in decimal, others in hex,
/// addresses as their base and offset.
fn sval_text(v: SVal) -> String {
    match v {
        SVal::Const(c) if c < 10 => c.to_string(),
        SVal::Const(c) => format!("{c:#x}"),
        SVal::Addr(b, o) => base_text(b, o),
    }
}

/// One aligned word of known memory as a `(location, value)` pair: the
/// value when its four bytes form one, else its bytes in address order.
fn word_text(((region, off), bytes): KnownWord) -> (String, String) {
    let location = match region {
        Region::Abs => format!("[{off:#x}]"),
        Region::Of(b) => format!("[{}]", base_text(b, off)),
    };
    let whole: Option<Vec<Byte>> = bytes.iter().copied().collect();
    if let Some(v) = whole.as_deref().and_then(join_bytes) {
        return (location, sval_text(v));
    }
    let parts: Vec<String> = bytes
        .iter()
        .map(|b| match b {
            None => "??".to_owned(),
            Some(Byte::Const(c)) => format!("{c:02x}"),
            Some(Byte::Part(b, o, i)) => format!("byte{i}({})", base_text(*b, *o)),
        })
        .collect();
    (location, parts.join(" "))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_summary_prints_every_static_location() {
        fn known<T>(value: T) -> Known<T> {
            Known {
                value,
                synced: false,
            }
        }
        let mut s = Store::entry();
        s.set_reg(Reg::Ecx, Some(known(SVal::Const(3))));
        s.set_reg(
            Reg::Esi,
            Some(known(SVal::Addr(Base::Stack, (-8i32) as u32))),
        );
        s.flags[Flag::Zf.index()] = Some(known(true));
        for (i, b) in value_bytes(SVal::Const(0x1234), 4).into_iter().enumerate() {
            s.mem.insert((Region::Abs, 0x804c010 + i as u32), known(b));
        }
        s.mem.insert(
            (Region::Of(Base::Stack), (-3i32) as u32),
            known(Byte::Const(7)),
        );
        s.escaped = true;
        let text: Vec<String> = s
            .static_summary()
            .into_iter()
            .map(|(l, v)| format!("{l}={v}"))
            .collect();
        assert_eq!(
            text,
            [
                "ecx=3",
                "esp=esp0",
                "esi=esp0-0x8",
                "zf=1",
                // The ABI's clear direction flag, known from the entry.
                "df=0",
                "[0x804c010]=0x1234",
                "[esp0-0x4]=?? 07 ?? ??",
                "frame escaped=yes",
            ]
        );
        // Sync states are not part of the static store.
        let mut synced = s.clone();
        synced.set_synced(Loc::Reg(Reg::Ecx), true);
        assert_eq!(synced.static_summary(), s.static_summary());
    }
}
