//! The known bytes of memory: copy-on-write pages keyed by region and
//! offset, over an optional initial image of the program's writable memory.

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use super::{Base, Byte, FxHasher, Known, Region, SVal};

/// Bytes per page of [`Memory`]: a multiple of 4, so an aligned word never
/// straddles two pages.
const PAGE: u32 = 32;

/// The initial image of memory: what the program's writable segments hold
/// when it starts (the file's bytes, then zeros), known and held by the
/// machine until code overwrites them. A byte of the image is known to a
/// [`Memory`] that has the image unless it was set otherwise since.
#[derive(Debug, PartialEq, Eq)]
pub struct Image {
    /// The region the image lies in.
    region: Region,
    /// `(first offset, bytes)`, sorted and disjoint.
    ranges: Vec<(u32, Vec<u8>)>,
}

impl Image {
    /// The image of `ranges` (first offset, bytes) of `region`; ranges
    /// that overlap an earlier one are cut to what lies past it.
    pub fn new(region: Region, mut ranges: Vec<(u32, Vec<u8>)>) -> Image {
        ranges.sort_by_key(|(start, _)| *start);
        let mut out: Vec<(u32, Vec<u8>)> = Vec::new();
        for (start, bytes) in ranges {
            let end = start as u64 + bytes.len() as u64;
            let from = out.last().map_or(start as u64, |(s, b)| {
                (*s as u64 + b.len() as u64).max(start as u64)
            });
            if from < end {
                let skip = (from - start as u64) as usize;
                out.push((from as u32, bytes[skip..].to_vec()));
            }
        }
        Image {
            region,
            ranges: out,
        }
    }

    /// The image's byte at `loc`, if the image covers it.
    pub fn byte(&self, (region, off): (Region, u32)) -> Option<u8> {
        if region != self.region {
            return None;
        }
        let i = self.ranges.partition_point(|(start, _)| *start <= off);
        let (start, bytes) = self.ranges.get(i.checked_sub(1)?)?;
        bytes.get((off - start) as usize).copied()
    }

    /// Every byte of the image with its location, in increasing order.
    fn bytes(&self) -> impl Iterator<Item = ((Region, u32), u8)> + '_ {
        self.ranges.iter().flat_map(move |(start, bytes)| {
            bytes
                .iter()
                .enumerate()
                .map(move |(i, b)| ((self.region, start + i as u32), *b))
        })
    }
}

/// What a [`Memory`] holds for one byte of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    /// A known value set explicitly.
    Known(Known<Byte>),
    /// Nothing: the image's byte where the image covers it, else dynamic.
    Default,
    /// Dynamic although the image covers it (code overwrote it).
    Cleared,
}

/// The known bytes of one aligned page of a region.
#[derive(Clone, Debug)]
struct Page {
    /// The known values, by offset in the page.
    values: [Option<Byte>; PAGE as usize],
    /// Bit `i`: byte `i` is known and synced.
    synced: u32,
    /// Bit `i`: byte `i` is dynamic although the image covers it.
    cleared: u32,
    /// How many bytes are known (a page with none and nothing cleared is
    /// dropped).
    known: u32,
    /// The hash of `values` and `cleared`, computed when first needed.
    hash: Cell<Option<u64>>,
}

impl Page {
    fn empty() -> Page {
        Page {
            values: [None; PAGE as usize],
            synced: 0,
            cleared: 0,
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

    fn slot(&self, i: usize) -> Slot {
        match self.get(i) {
            Some(k) => Slot::Known(k),
            None if self.cleared & (1 << i) != 0 => Slot::Cleared,
            None => Slot::Default,
        }
    }

    fn set(&mut self, i: usize, slot: Slot) {
        let value = match slot {
            Slot::Known(k) => Some(k.value),
            _ => None,
        };
        let cleared = slot == Slot::Cleared;
        if self.values[i] != value || (self.cleared & (1 << i) != 0) != cleared {
            self.known =
                self.known + u32::from(value.is_some()) - u32::from(self.values[i].is_some());
            self.values[i] = value;
            self.cleared = (self.cleared & !(1 << i)) | (u32::from(cleared) << i);
            self.hash.set(None);
        }
        match slot {
            Slot::Known(Known { synced: true, .. }) => self.synced |= 1 << i,
            _ => self.synced &= !(1 << i),
        }
    }

    /// Whether the page holds nothing (and can be dropped).
    fn is_empty(&self) -> bool {
        self.known == 0 && self.cleared == 0
    }

    /// Whether both pages know the same values and clear the same bytes.
    fn same_values(&self, other: &Page) -> bool {
        self.values == other.values && self.cleared == other.cleared
    }

    /// The hash of the known values and cleared bytes (not of the sync
    /// state).
    fn value_hash(&self) -> u64 {
        if let Some(h) = self.hash.get() {
            return h;
        }
        let mut h = FxHasher::default();
        self.values.hash(&mut h);
        self.cleared.hash(&mut h);
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
///
/// With an [`Image`], every byte the image covers is known (a synced
/// constant) until it is set otherwise; [`Memory::iter`] lists only the
/// bytes set explicitly, and [`Memory::retain`] asks about the image's
/// bytes too.
#[derive(Clone, Default)]
pub struct Memory {
    /// Pages holding at least one known or cleared byte, sorted by key.
    pages: Rc<Vec<(PageKey, Rc<Page>)>>,
    /// The initial image, until a [`Memory::retain`] drops all of it.
    image: Option<Rc<Image>>,
}

/// Splits a memory location into its page key and its index in the page.
fn page_of((region, off): (Region, u32)) -> (PageKey, usize) {
    (
        page_key(region, off & !(PAGE - 1)),
        (off & (PAGE - 1)) as usize,
    )
}

impl Memory {
    /// A memory that knows the bytes of `image` and nothing else.
    pub fn with_image(image: Image) -> Memory {
        Memory {
            pages: Rc::default(),
            image: Some(Rc::new(image)),
        }
    }

    /// Whether the initial image still holds where it was not overwritten.
    pub fn has_image(&self) -> bool {
        self.image.is_some()
    }

    fn find(&self, key: PageKey) -> Result<usize, usize> {
        self.pages.binary_search_by(|(k, _)| k.cmp(&key))
    }

    /// The image's byte at `loc` as a known, synced byte.
    fn image_byte(&self, loc: (Region, u32)) -> Option<Known<Byte>> {
        let b = self.image.as_ref()?.byte(loc)?;
        Some(Known {
            value: Byte::Const(b),
            synced: true,
        })
    }

    /// The page slot of `loc`.
    fn slot(&self, loc: (Region, u32)) -> Slot {
        let (key, i) = page_of(loc);
        match self.find(key) {
            Ok(p) => self.pages[p].1.slot(i),
            Err(_) => Slot::Default,
        }
    }

    /// The known byte at `loc`, if any.
    pub fn get(&self, loc: (Region, u32)) -> Option<Known<Byte>> {
        match self.slot(loc) {
            Slot::Known(k) => Some(k),
            Slot::Cleared => None,
            Slot::Default => self.image_byte(loc),
        }
    }

    /// The 32-bit value of the 4 bytes from `loc`, when all are known and
    /// form one (a constant, or the four bytes of one address).
    pub fn word(&self, (region, off): (Region, u32)) -> Option<SVal> {
        let bytes: Option<Vec<Byte>> = (0..4)
            .map(|i| self.get((region, off.wrapping_add(i))).map(|k| k.value))
            .collect();
        super::join_bytes(&bytes?)
    }

    /// Whether the byte at `loc` is known.
    pub fn contains(&self, loc: (Region, u32)) -> bool {
        self.get(loc).is_some()
    }

    /// Sets the byte at `loc`: known (`Some`) or dynamic (`None`).
    pub fn set(&mut self, loc: (Region, u32), v: Option<Known<Byte>>) {
        let image = self.image_byte(loc);
        let slot = match v {
            // The machine holds the image's byte again.
            Some(k) if Some(k) == image => Slot::Default,
            Some(k) => Slot::Known(k),
            None if image.is_some() => Slot::Cleared,
            None => Slot::Default,
        };
        let (key, i) = page_of(loc);
        let p = match self.find(key) {
            Ok(p) => p,
            Err(_) if slot == Slot::Default => return,
            Err(p) => {
                Rc::make_mut(&mut self.pages).insert(p, (key, Rc::new(Page::empty())));
                p
            }
        };
        if self.pages[p].1.slot(i) == slot {
            return;
        }
        let pages = Rc::make_mut(&mut self.pages);
        let page = Rc::make_mut(&mut pages[p].1);
        page.set(i, slot);
        if page.is_empty() {
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

    /// Every byte set explicitly (not the image's), by increasing
    /// `(region, offset)`.
    pub fn iter(&self) -> impl Iterator<Item = ((Region, u32), Known<Byte>)> + '_ {
        self.pages.iter().flat_map(|(key, page)| {
            let (region, base) = page_start(*key);
            (0..PAGE as usize)
                .filter_map(move |i| page.get(i).map(|k| ((region, base + i as u32), k)))
        })
    }

    /// The bytes of the image that code overwrote, in increasing order.
    fn cleared(&self) -> impl Iterator<Item = (Region, u32)> + '_ {
        self.pages.iter().flat_map(|(key, page)| {
            let (region, base) = page_start(*key);
            (0..PAGE as usize)
                .filter(move |i| page.cleared & (1 << i) != 0)
                .map(move |i| (region, base + i as u32))
        })
    }

    /// The memory with every byte set explicitly moved and changed by `f`
    /// (`None` drops it), and the image as it is: a new map, for the rare
    /// rewrite of a whole store. `f` must not move a byte the image covers.
    pub fn remap(
        &self,
        mut f: impl FnMut((Region, u32), Known<Byte>) -> Option<((Region, u32), Known<Byte>)>,
    ) -> Memory {
        let mut out = Memory {
            pages: Rc::default(),
            image: self.image.clone(),
        };
        for loc in self.cleared() {
            out.remove(loc);
        }
        for (loc, k) in self.iter() {
            match f(loc, k) {
                Some((to, k)) => {
                    debug_assert!(to == loc || out.image_byte(loc).is_none());
                    out.insert(to, k);
                }
                None => out.remove(loc),
            }
        }
        out
    }

    /// Takes over the image of `from` and the bytes it overwrote (for a
    /// store built anew from another one's known bytes).
    pub fn inherit_image(&mut self, from: &Memory) {
        self.image = from.image.clone();
        for loc in from.cleared() {
            if self.slot(loc) == Slot::Default {
                self.remove(loc);
            }
        }
    }

    /// Keeps only the known bytes `keep` accepts, the image's included;
    /// when it accepts none of the image's, the image is dropped.
    pub fn retain(&mut self, mut keep: impl FnMut((Region, u32), Known<Byte>) -> bool) {
        let drop: Vec<(Region, u32)> = self
            .iter()
            .filter(|(loc, k)| !keep(*loc, *k))
            .map(|(loc, _)| loc)
            .collect();
        for loc in drop {
            self.remove(loc);
        }
        let Some(image) = self.image.clone() else {
            return;
        };
        let mut kept_any = false;
        let mut forget = Vec::new();
        for (loc, b) in image.bytes() {
            if self.slot(loc) != Slot::Default {
                continue;
            }
            let k = Known {
                value: Byte::Const(b),
                synced: true,
            };
            if keep(loc, k) {
                kept_any = true;
            } else {
                forget.push(loc);
            }
        }
        if kept_any {
            for loc in forget {
                self.remove(loc);
            }
            return;
        }
        // Nothing of the image is known any more: the cleared marks go too.
        let cleared: Vec<(Region, u32)> = self.cleared().collect();
        self.image = None;
        for loc in cleared {
            let (key, i) = page_of(loc);
            if let Ok(p) = self.find(key) {
                let pages = Rc::make_mut(&mut self.pages);
                let page = Rc::make_mut(&mut pages[p].1);
                page.set(i, Slot::Default);
                if page.is_empty() {
                    pages.remove(p);
                }
            }
        }
    }

    /// Hashes the known values (not whether they are synced).
    pub fn hash_values<H: Hasher>(&self, h: &mut H) {
        self.image.is_some().hash(h);
        self.pages.len().hash(h);
        for (key, page) in self.pages.iter() {
            key.hash(h);
            h.write_u64(page.value_hash());
        }
    }

    /// Whether both memories know the same values at the same locations.
    pub fn same_values(&self, other: &Memory) -> bool {
        self.image.is_some() == other.image.is_some()
            && (Rc::ptr_eq(&self.pages, &other.pages)
                || self.pages.len() == other.pages.len()
                    && self.pages.iter().zip(other.pages.iter()).all(|(a, b)| {
                        a.0 == b.0 && (Rc::ptr_eq(&a.1, &b.1) || a.1.same_values(&b.1))
                    }))
    }

    /// The aligned 4-byte words (region, first offset) where the known
    /// values of the two memories differ, in increasing order; `None` when
    /// there are more than `limit` (or only one has the image).
    pub fn diff_words(&self, other: &Memory, limit: usize) -> Option<Vec<(Region, u32)>> {
        if self.image.is_some() != other.image.is_some() {
            return None;
        }
        let mut words: Vec<(Region, u32)> = Vec::new();
        let (a, b) = (&self.pages, &other.pages);
        let (mut i, mut j) = (0, 0);
        let none = Page::empty();
        while i < a.len() || j < b.len() {
            let (key, pa, pb) = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.0 == y.0 => {
                    i += 1;
                    j += 1;
                    if Rc::ptr_eq(&x.1, &y.1) || x.1.same_values(&y.1) {
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
                let bit = 1 << k;
                if pa.values[k] != pb.values[k] || pa.cleared & bit != pb.cleared & bit {
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
        let same_image = match (&self.image, &other.image) {
            (Some(a), Some(b)) => Rc::ptr_eq(a, b) || a == b,
            (a, b) => a.is_none() && b.is_none(),
        };
        same_image && self.iter().eq(other.iter()) && self.cleared().eq(other.cleared())
    }
}

impl Eq for Memory {}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
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

    /// One random change at a random location, to `m` and to the
    /// `reference` map alike (a removal, a sync or a write of `known`'s
    /// byte); the location.
    fn random_step(
        rng: &mut Rng,
        m: &mut Memory,
        reference: &mut BTreeMap<(Region, u32), Known<Byte>>,
        known: impl FnOnce(&mut Rng, (Region, u32)) -> Known<Byte>,
    ) -> (Region, u32) {
        let loc = loc(rng);
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
                let k = known(rng, loc);
                m.insert(loc, k);
                reference.insert(loc, k);
            }
        }
        loc
    }

    #[test]
    fn memory_behaves_like_an_ordered_map() {
        let mut rng = Rng::new(7);
        let mut m = Memory::default();
        let mut reference: BTreeMap<(Region, u32), Known<Byte>> = BTreeMap::new();
        let mut snapshots = Vec::new();
        for step in 0..5000 {
            let loc = random_step(&mut rng, &mut m, &mut reference, |rng, _| known(rng));
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

    /// A known byte, often one that equals the image's byte at `loc`
    /// (synced or not).
    fn known_over(rng: &mut Rng, image: &Image, loc: (Region, u32)) -> Known<Byte> {
        match (image.byte(loc), rng.below(3)) {
            (Some(b), 0) => Known {
                value: Byte::Const(b),
                synced: rng.coin(),
            },
            _ => known(rng),
        }
    }

    /// With an image, memory behaves like a map that starts with the
    /// image's bytes (synced) and is changed byte by byte; a retain that
    /// keeps none of the image's bytes drops it, and one that keeps some
    /// keeps them.
    #[test]
    fn memory_with_an_image_behaves_like_a_map_that_starts_with_it() {
        let mut rng = Rng::new(5);
        for round in 0..40 {
            let ranges = vec![
                (rng.below(40), vec![1, 2, 3, 0, 0, 7, 9]),
                (30, (0..40).map(|i| i as u8).collect()),
            ];
            let image = Image::new(Region::Abs, ranges);
            let mut reference: BTreeMap<(Region, u32), Known<Byte>> = image
                .bytes()
                .map(|(loc, b)| {
                    let k = Known {
                        value: Byte::Const(b),
                        synced: true,
                    };
                    (loc, k)
                })
                .collect();
            let mut m = Memory::with_image(image);
            let image = m.image.clone().expect("an image");
            for _ in 0..400 {
                let loc = random_step(&mut rng, &mut m, &mut reference, |rng, loc| {
                    known_over(rng, &image, loc)
                });
                assert_eq!(m.get(loc), reference.get(&loc).copied(), "{loc:?}");
            }
            let copy = m.remap(|loc, k| Some((loc, k)));
            let mut inherited = Memory::default();
            for (loc, k) in m.iter() {
                inherited.insert(loc, k);
            }
            inherited.inherit_image(&m);
            for loc in reference.keys() {
                assert_eq!(copy.get(*loc), m.get(*loc));
                assert_eq!(inherited.get(*loc), m.get(*loc));
            }
            assert!(copy.same_values(&m) && inherited.same_values(&m));
            let keep_none = round % 2 == 0;
            let keep = |(region, off): (Region, u32), _| {
                region != Region::Abs || (!keep_none && off % 2 == 0)
            };
            m.retain(keep);
            reference.retain(|loc, k| keep(*loc, *k));
            assert_eq!(m.has_image(), !keep_none);
            for off in 0..200u32 {
                let loc = (Region::Abs, off.wrapping_sub(100));
                assert_eq!(m.get(loc), reference.get(&loc).copied(), "{loc:?}");
            }
        }
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
