//! The static store: what the specializer knows about the machine at one
//! program point, and whether the machine itself holds it yet.
//!
//! A location is either *dynamic* (its machine location holds its value) or
//! *known* (the value is a [`SVal`]); a known location is *synced* when the
//! residual code has also put the value in the machine location. The stack
//! pointer is special: its known value is always `stack + k`, and the
//! machine's `esp` is tracked separately as `stack + real_esp`, so stack
//! adjustments can be left out of the residual code and coalesced.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use wiper_sem::{Flag, Loc, Reg};

use crate::relations::{RelLoc, Relations};

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
    }

    /// Whether two stores have the same static part (see
    /// [`Store::hash_static`]).
    pub fn same_static(&self, other: &Store) -> bool {
        self.regs.map(|r| r.map(|k| k.value)) == other.regs.map(|r| r.map(|k| k.value))
            && self.flags.map(|f| f.map(|k| k.value)) == other.flags.map(|f| f.map(|k| k.value))
            && self.escaped == other.escaped
            && self.frame_regs.map(|m| m.is_some()) == other.frame_regs.map(|m| m.is_some())
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

/// Bytes per page of [`Memory`]: a multiple of 4, so an aligned word never
/// straddles two pages.
const PAGE: u32 = 32;

/// The known bytes of one aligned page of a region.
#[derive(Clone, Debug)]
struct Page {
    /// The known values, by offset in the page.
    values: [Option<Byte>; PAGE as usize],
    /// Bit `i`: byte `i` is known and synced.
    synced: u32,
    /// How many bytes are known (a page with none is dropped).
    known: u32,
    /// The hash of `values`, computed when first needed.
    hash: Cell<Option<u64>>,
}

impl Page {
    fn empty() -> Page {
        Page {
            values: [None; PAGE as usize],
            synced: 0,
            known: 0,
            hash: Cell::new(None),
        }
    }

    fn get(&self, i: usize) -> Option<Known<Byte>> {
        self.values[i].map(|value| Known {
            value,
            synced: self.synced & (1 << i) != 0,
        })
    }

    fn set(&mut self, i: usize, v: Option<Known<Byte>>) {
        let value = v.map(|k| k.value);
        if self.values[i] != value {
            self.known =
                self.known + u32::from(value.is_some()) - u32::from(self.values[i].is_some());
            self.values[i] = value;
            self.hash.set(None);
        }
        match v {
            Some(Known { synced: true, .. }) => self.synced |= 1 << i,
            _ => self.synced &= !(1 << i),
        }
    }

    /// The hash of the known values (not of their sync state).
    fn value_hash(&self) -> u64 {
        if let Some(h) = self.hash.get() {
            return h;
        }
        let mut h = FxHasher::default();
        self.values.hash(&mut h);
        let h = h.finish();
        self.hash.set(Some(h));
        h
    }
}

/// A page of a region: the region's rank in [`Region`]'s order in the
/// high half, the page's first offset in the low half (so keys sort like
/// `(region, offset)`).
type PageKey = u64;

/// Every region, in [`Region`]'s order.
const REGIONS: [Region; 6] = [
    Region::Abs,
    Region::Of(Base::Stack),
    Region::Of(Base::Entry),
    Region::Of(Base::Load),
    Region::Of(Base::Fs),
    Region::Of(Base::Gs),
];

/// The page key of the page starting at `base` in `region`.
fn page_key(region: Region, base: u32) -> PageKey {
    let rank = REGIONS.iter().position(|r| *r == region).expect("a region") as u64;
    rank << 32 | u64::from(base)
}

/// The region and the first offset of a page.
fn page_start(key: PageKey) -> (Region, u32) {
    (REGIONS[(key >> 32) as usize], key as u32)
}

/// The known bytes of memory, by `(region, offset)`, iterated in that
/// order. Stored as copy-on-write pages shared between the stores of a
/// path: cloning a store copies no bytes, and writing one copies one page.
#[derive(Clone, Default)]
pub struct Memory {
    /// Pages holding at least one known byte, sorted by key.
    pages: Rc<Vec<(PageKey, Rc<Page>)>>,
}

/// Splits a memory location into its page key and its index in the page.
fn page_of((region, off): (Region, u32)) -> (PageKey, usize) {
    (
        page_key(region, off & !(PAGE - 1)),
        (off & (PAGE - 1)) as usize,
    )
}

impl Memory {
    fn find(&self, key: PageKey) -> Result<usize, usize> {
        self.pages.binary_search_by(|(k, _)| k.cmp(&key))
    }

    /// The known byte at `loc`, if any.
    pub fn get(&self, loc: (Region, u32)) -> Option<Known<Byte>> {
        let (key, i) = page_of(loc);
        let p = self.find(key).ok()?;
        self.pages[p].1.get(i)
    }

    /// Whether the byte at `loc` is known.
    pub fn contains(&self, loc: (Region, u32)) -> bool {
        self.get(loc).is_some()
    }

    /// Sets the byte at `loc`: known (`Some`) or dynamic (`None`).
    pub fn set(&mut self, loc: (Region, u32), v: Option<Known<Byte>>) {
        let (key, i) = page_of(loc);
        let p = match self.find(key) {
            Ok(p) => p,
            Err(_) if v.is_none() => return,
            Err(p) => {
                Rc::make_mut(&mut self.pages).insert(p, (key, Rc::new(Page::empty())));
                p
            }
        };
        if self.pages[p].1.get(i) == v {
            return;
        }
        let pages = Rc::make_mut(&mut self.pages);
        let page = Rc::make_mut(&mut pages[p].1);
        page.set(i, v);
        if page.known == 0 {
            pages.remove(p);
        }
    }

    /// Makes the byte at `loc` known.
    pub fn insert(&mut self, loc: (Region, u32), v: Known<Byte>) {
        self.set(loc, Some(v));
    }

    /// Makes the byte at `loc` dynamic.
    pub fn remove(&mut self, loc: (Region, u32)) {
        self.set(loc, None);
    }

    /// Marks the byte at `loc` synced, if it is known.
    pub fn mark_synced(&mut self, loc: (Region, u32)) {
        if let Some(k) = self.get(loc) {
            self.set(loc, Some(Known { synced: true, ..k }));
        }
    }

    /// Every known byte, by increasing `(region, offset)`.
    pub fn iter(&self) -> impl Iterator<Item = ((Region, u32), Known<Byte>)> + '_ {
        self.pages.iter().flat_map(|(key, page)| {
            let (region, base) = page_start(*key);
            (0..PAGE as usize)
                .filter_map(move |i| page.get(i).map(|k| ((region, base + i as u32), k)))
        })
    }

    /// The memory with every known byte moved and changed by `f` (`None`
    /// drops it): a new map, for the rare rewrite of a whole store.
    pub fn remap(
        &self,
        mut f: impl FnMut((Region, u32), Known<Byte>) -> Option<((Region, u32), Known<Byte>)>,
    ) -> Memory {
        let mut out = Memory::default();
        for (loc, k) in self.iter() {
            if let Some((loc, k)) = f(loc, k) {
                out.insert(loc, k);
            }
        }
        out
    }

    /// Keeps only the known bytes `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut((Region, u32), Known<Byte>) -> bool) {
        let drop: Vec<(Region, u32)> = self
            .iter()
            .filter(|(loc, k)| !keep(*loc, *k))
            .map(|(loc, _)| loc)
            .collect();
        for loc in drop {
            self.remove(loc);
        }
    }

    /// Hashes the known values (not whether they are synced).
    pub fn hash_values<H: Hasher>(&self, h: &mut H) {
        self.pages.len().hash(h);
        for (key, page) in self.pages.iter() {
            key.hash(h);
            h.write_u64(page.value_hash());
        }
    }

    /// Whether both memories know the same values at the same locations.
    pub fn same_values(&self, other: &Memory) -> bool {
        Rc::ptr_eq(&self.pages, &other.pages)
            || self.pages.len() == other.pages.len()
                && self.pages.iter().zip(other.pages.iter()).all(|(a, b)| {
                    a.0 == b.0 && (Rc::ptr_eq(&a.1, &b.1) || a.1.values == b.1.values)
                })
    }

    /// The aligned 4-byte words (region, first offset) where the known
    /// values of the two memories differ, in increasing order; `None` when
    /// there are more than `limit`.
    pub fn diff_words(&self, other: &Memory, limit: usize) -> Option<Vec<(Region, u32)>> {
        let mut words: Vec<(Region, u32)> = Vec::new();
        let (a, b) = (&self.pages, &other.pages);
        let (mut i, mut j) = (0, 0);
        let none = Page::empty();
        while i < a.len() || j < b.len() {
            let (key, pa, pb) = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    i += 1;
                    j += 1;
                    if Rc::ptr_eq(&x.1, &y.1) || x.1.values == y.1.values {
                        continue;
                    }
                    (x.0, &*x.1, &*y.1)
                }
                (Some(x), Some(y)) if x.0 < y.0 => {
                    i += 1;
                    (x.0, &*x.1, &none)
                }
                (Some(x), None) => {
                    i += 1;
                    (x.0, &*x.1, &none)
                }
                (_, Some(y)) => {
                    j += 1;
                    (y.0, &none, &*y.1)
                }
                (None, None) => break,
            };
            for k in 0..PAGE as usize {
                if pa.values[k] != pb.values[k] {
                    let (region, base) = page_start(key);
                    let w = (region, base + (k as u32 & !3));
                    if words.last() != Some(&w) {
                        if words.len() == limit {
                            return None;
                        }
                        words.push(w);
                    }
                }
            }
        }
        Some(words)
    }
}

impl PartialEq for Memory {
    fn eq(&self, other: &Memory) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Memory {}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use wiper_x86::Rng;

    use super::*;

    /// A location near a page boundary of some region, offsets wrapping
    /// around 0 (negative stack offsets).
    fn loc(rng: &mut Rng) -> (Region, u32) {
        let region = *rng.choose(&REGIONS);
        let off = rng.below(200).wrapping_sub(100);
        (region, off)
    }

    /// A random known byte.
    fn known(rng: &mut Rng) -> Known<Byte> {
        let value = match rng.below(3) {
            0 => Byte::Part(Base::Stack, rng.below(4), rng.below(4) as u8),
            _ => Byte::Const(rng.below(3) as u8),
        };
        Known {
            value,
            synced: rng.coin(),
        }
    }

    fn hash_of(m: &Memory) -> u64 {
        let mut h = FxHasher::default();
        m.hash_values(&mut h);
        h.finish()
    }

    /// The values of a reference map, without the sync state.
    fn values(r: &BTreeMap<(Region, u32), Known<Byte>>) -> BTreeMap<(Region, u32), Byte> {
        r.iter().map(|(k, v)| (*k, v.value)).collect()
    }

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

    #[test]
    fn memory_behaves_like_an_ordered_map() {
        let mut rng = Rng::new(7);
        let mut m = Memory::default();
        let mut reference: BTreeMap<(Region, u32), Known<Byte>> = BTreeMap::new();
        let mut snapshots = Vec::new();
        for step in 0..5000 {
            let loc = loc(&mut rng);
            match rng.below(4) {
                0 => {
                    m.remove(loc);
                    reference.remove(&loc);
                }
                1 => {
                    m.mark_synced(loc);
                    if let Some(k) = reference.get_mut(&loc) {
                        k.synced = true;
                    }
                }
                _ => {
                    let k = known(&mut rng);
                    m.insert(loc, k);
                    reference.insert(loc, k);
                }
            }
            assert_eq!(m.get(loc), reference.get(&loc).copied());
            assert_eq!(m.contains(loc), reference.contains_key(&loc));
            if step % 500 == 0 {
                // Clones share pages: later writes must not reach them.
                snapshots.push((m.clone(), reference.clone()));
            }
        }
        let all: Vec<_> = reference.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(m.iter().collect::<Vec<_>>(), all);
        for (snapshot, r) in &snapshots {
            let expected: Vec<_> = r.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(snapshot.iter().collect::<Vec<_>>(), expected);
        }
        m.retain(|(region, off), _| region != Region::Abs && off % 3 != 0);
        reference.retain(|(region, off), _| *region != Region::Abs && off % 3 != 0);
        let kept: Vec<_> = reference.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(m.iter().collect::<Vec<_>>(), kept);
    }

    #[test]
    fn static_comparison_ignores_sync_state_and_history() {
        let mut rng = Rng::new(11);
        for _ in 0..200 {
            let mut reference = BTreeMap::new();
            for _ in 0..rng.below(40) {
                reference.insert(loc(&mut rng), known(&mut rng));
            }
            // The same values, written in another order with other sync
            // states, after writing and removing other bytes.
            let mut a = Memory::default();
            for (loc, k) in &reference {
                a.insert(*loc, *k);
            }
            let mut b = Memory::default();
            for _ in 0..10 {
                b.insert(loc(&mut rng), known(&mut rng));
            }
            b.retain(|_, _| false);
            for (loc, k) in reference.iter().rev() {
                b.insert(
                    *loc,
                    Known {
                        synced: !k.synced,
                        ..*k
                    },
                );
            }
            assert!(a.same_values(&b));
            assert_eq!(hash_of(&a), hash_of(&b));
            assert_eq!(a.diff_words(&b, 4), Some(vec![]));
        }
    }

    #[test]
    fn diff_words_lists_the_words_that_differ() {
        let mut rng = Rng::new(3);
        for _ in 0..500 {
            let mut ra = BTreeMap::new();
            for _ in 0..rng.below(30) {
                ra.insert(loc(&mut rng), known(&mut rng));
            }
            let mut rb = ra.clone();
            for _ in 0..rng.below(4) {
                let loc = loc(&mut rng);
                match rng.below(2) {
                    0 => rb.remove(&loc),
                    _ => rb.insert(loc, known(&mut rng)),
                };
            }
            let (a, b) = (
                ra.iter().fold(Memory::default(), |mut m, (l, k)| {
                    m.insert(*l, *k);
                    m
                }),
                rb.iter().fold(Memory::default(), |mut m, (l, k)| {
                    m.insert(*l, *k);
                    m
                }),
            );
            let (va, vb) = (values(&ra), values(&rb));
            let mut words: Vec<(Region, u32)> = va
                .keys()
                .chain(vb.keys())
                .filter(|l| va.get(l) != vb.get(l))
                .map(|(r, o)| (*r, o & !3))
                .collect();
            words.sort();
            words.dedup();
            assert_eq!(a.same_values(&b), words.is_empty());
            for limit in 0..4 {
                let expected = (words.len() <= limit).then(|| words.clone());
                assert_eq!(a.diff_words(&b, limit), expected);
            }
        }
    }
}
