//! The entry store of a whole process (`Start::Process` and
//! `Start::Main`): a command line fixed at specialization time, laid out
//! the way Linux lays it out, its strings and vectors in the residual's
//! data. docs/extraction.md has the model.

use wiper_elf::Binary;
use wiper_x86::abi;

use super::entry::{write_known, BufferRange, EntryStore};
use crate::state::{value_bytes, Base, Byte, Image, Known, Memory, Region, SVal, Store};
use crate::ProcessImage;

/// Auxiliary vector types (Linux's `<elf.h>`).
mod at {
    pub const NULL: u32 = 0;
    pub const PHDR: u32 = 3;
    pub const PHENT: u32 = 4;
    pub const PHNUM: u32 = 5;
    pub const PAGESZ: u32 = 6;
    pub const ENTRY: u32 = 9;
    pub const PLATFORM: u32 = 15;
    pub const HWCAP: u32 = 16;
    pub const CLKTCK: u32 = 17;
    pub const SECURE: u32 = 23;
    pub const RANDOM: u32 = 25;
    pub const EXECFN: u32 = 31;
}

/// The 16 bytes `AT_RANDOM` points to: fixed at specialization time (the
/// C library seeds its stack-protector canary and pointer guard from them).
const RANDOM_BYTES: [u8; 16] = *b"wiper:at_random!";

/// The residual's data as it is built, with the store entries for it.
struct DataBuilder {
    /// The bytes so far.
    data: Vec<u8>,
    /// Where the data will be (load-relative in a PIE).
    vaddr: u32,
    /// Whether the binary is position-independent.
    pie: bool,
    /// The store being built.
    store: Store,
    /// The strings and arrays placed so far.
    ranges: Vec<BufferRange>,
}

impl DataBuilder {
    /// The region of the data.
    fn region(&self) -> Region {
        if self.pie {
            Region::Of(Base::Load)
        } else {
            Region::Abs
        }
    }

    /// The address of the data byte at `offset` as a static value.
    fn address(&self, offset: usize) -> SVal {
        let addr = self.vaddr + offset as u32;
        if self.pie {
            SVal::Addr(Base::Load, addr)
        } else {
            SVal::Const(u64::from(addr))
        }
    }

    /// Places the constant `bytes` (aligned to 4) and makes them known;
    /// their address.
    fn place_bytes(&mut self, bytes: &[u8]) -> SVal {
        self.place(bytes.iter().map(|b| Byte::Const(*b)).collect())
    }

    /// Places the 32-bit `words` (aligned to 4) and makes them known;
    /// their address.
    fn place_words(&mut self, words: &[SVal]) -> SVal {
        self.place(words.iter().flat_map(|w| value_bytes(*w, 4)).collect())
    }

    /// Places `bytes` (aligned to 4, then zeros to the next multiple of 4,
    /// known too: `strlen` reads whole aligned words) and makes them
    /// known; their address. A byte of a load-relative address is not in
    /// the file's data: the residual writes it where code that is not
    /// specialized may read it.
    fn place(&mut self, mut bytes: Vec<Byte>) -> SVal {
        while bytes.len() % 4 != 0 {
            bytes.push(Byte::Const(0));
        }
        let offset = self.data.len();
        let region = self.region();
        let start = self.vaddr + offset as u32;
        for (i, b) in bytes.iter().enumerate() {
            let (in_file, synced) = match b {
                Byte::Const(c) => (*c, true),
                Byte::Part(..) => (0, false),
            };
            self.data.push(in_file);
            self.store
                .mem
                .insert((region, start + i as u32), Known { value: *b, synced });
        }
        self.ranges.push(BufferRange {
            arg: None,
            region,
            start,
            end: start + bytes.len() as u32,
        });
        self.address(offset)
    }

    /// Places each string with its NUL; their addresses.
    fn place_strings(&mut self, strings: &[Vec<u8>]) -> Vec<SVal> {
        strings
            .iter()
            .map(|s| {
                let mut bytes = s.clone();
                bytes.push(0);
                self.place_bytes(&bytes)
            })
            .collect()
    }
}

/// The residual's data and the entry store for a process with the
/// command line `image`, entered at its ELF entry point (`whole`:
/// `Start::Process`) or at `main` (`Start::Main`), the data placed at
/// `data_vaddr` (load-relative in a PIE).
pub(super) fn process_entry(
    binary: &Binary,
    image: &ProcessImage,
    whole: bool,
    data_vaddr: u32,
    pie: bool,
) -> (Vec<u8>, EntryStore) {
    let mut b = DataBuilder {
        data: Vec::new(),
        vaddr: data_vaddr,
        pie,
        store: Store::entry(),
        ranges: Vec::new(),
    };
    if whole {
        b.store.mem = Memory::with_image(initial_image(binary, pie));
    }
    let argv = b.place_strings(&image.argv);
    let envp = b.place_strings(&image.envp);
    let argc = SVal::Const(image.argv.len() as u64);
    let terminated = |v: &[SVal]| {
        v.iter()
            .copied()
            .chain([SVal::Const(0)])
            .collect::<Vec<_>>()
    };
    let stack: Vec<(u32, SVal)> = if whole {
        // Linux's registers at a process's entry are 0 (and held so).
        for r in wiper_sem::Reg::ALL {
            if r != wiper_sem::Reg::Esp {
                b.store.set_reg(
                    r,
                    Some(Known {
                        value: SVal::Const(0),
                        synced: true,
                    }),
                );
            }
        }
        let aux = auxiliary_vector(binary, &mut b, argv.first().copied());
        let words: Vec<SVal> = [argc]
            .into_iter()
            .chain(terminated(&argv))
            .chain(terminated(&envp))
            .chain(aux)
            .collect();
        (0..).step_by(4).zip(words).collect()
    } else {
        let argv_at = b.place_words(&terminated(&argv));
        let envp_at = b.place_words(&terminated(&envp));
        (0..)
            .map(abi::arg_offset)
            .zip([argc, argv_at, envp_at])
            .collect()
    };
    // The machine's stack holds the kernel's vectors, not these: unsynced.
    for (offset, value) in stack {
        write_known(&mut b.store, Region::Of(Base::Stack), offset, value, false);
    }
    let entry = EntryStore {
        store: b.store,
        buffer_ranges: b.ranges,
    };
    (b.data, entry)
}

/// The auxiliary vector (type and value pairs, `AT_NULL` last) a process
/// of `binary` sees: the program headers and the entry as Linux gives them
/// for this file, 4 KiB pages, no capability bits, not secure, the
/// platform `i686`, `AT_RANDOM`'s fixed bytes and `argv[0]` as the file
/// name. No `AT_SYSINFO`: the C library then enters the kernel with `int
/// 0x80`.
fn auxiliary_vector(binary: &Binary, b: &mut DataBuilder, argv0: Option<SVal>) -> Vec<SVal> {
    let c = |v: u32| SVal::Const(u64::from(v));
    let mut pairs = Vec::new();
    if let Some((phdr, phnum)) = program_headers(binary, b.pie) {
        pairs.push((at::PHDR, phdr));
        pairs.push((at::PHENT, c(32)));
        pairs.push((at::PHNUM, c(phnum)));
    }
    let entry = if b.pie {
        SVal::Addr(Base::Load, binary.entry)
    } else {
        c(binary.entry)
    };
    pairs.push((at::PAGESZ, c(4096)));
    pairs.push((at::ENTRY, entry));
    pairs.push((at::CLKTCK, c(100)));
    pairs.push((at::HWCAP, c(0)));
    pairs.push((at::SECURE, c(0)));
    let platform = b.place_bytes(b"i686\0");
    pairs.push((at::PLATFORM, platform));
    let random = b.place_bytes(&RANDOM_BYTES);
    pairs.push((at::RANDOM, random));
    if let Some(name) = argv0 {
        pairs.push((at::EXECFN, name));
    }
    pairs.push((at::NULL, c(0)));
    pairs.into_iter().flat_map(|(t, v)| [c(t), v]).collect()
}

/// Where the program headers are in memory (`AT_PHDR`, as Linux computes
/// it: the loaded segment whose file bytes hold them) and how many.
fn program_headers(binary: &Binary, pie: bool) -> Option<(SVal, u32)> {
    let file = binary.file_bytes();
    let phoff = u32::from_le_bytes(file.get(28..32)?.try_into().ok()?);
    let phnum = u16::from_le_bytes(file.get(44..46)?.try_into().ok()?);
    let seg = binary
        .segments
        .iter()
        .find(|s| s.offset <= phoff && phoff - s.offset < s.file_size)?;
    let addr = seg.vaddr + (phoff - seg.offset);
    let value = if pie {
        SVal::Addr(Base::Load, addr)
    } else {
        SVal::Const(u64::from(addr))
    };
    Some((value, u32::from(phnum)))
}

/// The initial image of the writable segments: their file bytes, then
/// zeros to their memory size.
fn initial_image(binary: &Binary, pie: bool) -> Image {
    let region = if pie {
        Region::Of(Base::Load)
    } else {
        Region::Abs
    };
    let ranges = binary
        .segments
        .iter()
        .filter(|s| s.perms.write)
        .filter_map(|s| Some((s.vaddr, binary.read(s.vaddr, s.mem_size)?)))
        .collect();
    Image::new(region, ranges)
}

#[cfg(test)]
mod tests {
    use wiper_testkit::testdata_bin;

    use super::*;

    /// The NUL-terminated string at `addr` of the data that starts at
    /// `vaddr`.
    fn string(data: &[u8], vaddr: u32, addr: SVal) -> &[u8] {
        let SVal::Const(a) = addr else {
            panic!("{addr:?}")
        };
        let start = (a as u32 - vaddr) as usize;
        let len = data[start..].iter().position(|&b| b == 0).unwrap();
        &data[start..start + len]
    }

    /// The stack at a process's entry is Linux's: `argc`, the `argv`
    /// pointers and a null, the `envp` pointers and a null, the auxiliary
    /// vector to `AT_NULL`; the strings are in the data; the registers are
    /// 0 and the writable image is known.
    #[test]
    fn a_process_starts_with_linux_s_stack() {
        let binary = wiper_elf::Binary::open(&testdata_bin("libc_demo-O2")).unwrap();
        let image = ProcessImage {
            argv: vec![b"demo".to_vec(), b"-x".to_vec()],
            envp: vec![b"A=1".to_vec()],
        };
        let vaddr = 0x0900_0000;
        let (data, entry) = process_entry(&binary, &image, true, vaddr, false);
        let store = &entry.store;
        let stack = |i: u32| store.mem.word((Region::Of(Base::Stack), 4 * i)).unwrap();
        assert_eq!(stack(0), SVal::Const(2));
        assert_eq!(string(&data, vaddr, stack(1)), b"demo");
        assert_eq!(string(&data, vaddr, stack(2)), b"-x");
        assert_eq!(stack(3), SVal::Const(0));
        assert_eq!(string(&data, vaddr, stack(4)), b"A=1");
        assert_eq!(stack(5), SVal::Const(0));
        let mut aux = std::collections::BTreeMap::new();
        let mut i = 6;
        while stack(i) != SVal::Const(0) {
            aux.insert(stack(i), stack(i + 1));
            i += 2;
        }
        let c = |v: u32| SVal::Const(u64::from(v));
        assert_eq!(aux[&c(at::PAGESZ)], c(4096));
        assert_eq!(aux[&c(at::ENTRY)], c(binary.entry));
        let file = binary.file_bytes();
        let phnum = u16::from_le_bytes([file[44], file[45]]);
        assert_eq!(aux[&c(at::PHNUM)], c(u32::from(phnum)));
        assert_eq!(aux[&c(at::PHENT)], c(32));
        assert_eq!(string(&data, vaddr, aux[&c(at::EXECFN)]), b"demo");
        let SVal::Const(random) = aux[&c(at::RANDOM)] else {
            panic!()
        };
        let at = (random as u32 - vaddr) as usize;
        assert_eq!(data[at..at + 16], RANDOM_BYTES);
        assert!(!aux.contains_key(&c(32)), "no AT_SYSINFO");
        for r in wiper_sem::Reg::ALL
            .into_iter()
            .filter(|&r| r != wiper_sem::Reg::Esp)
        {
            assert_eq!(store.reg(r).map(|k| k.value), Some(SVal::Const(0)), "{r:?}");
        }
        let writable = binary.segments.iter().find(|s| s.perms.write).unwrap();
        let first = binary.read(writable.vaddr, 1).unwrap()[0];
        assert_eq!(
            store
                .mem
                .get((Region::Abs, writable.vaddr))
                .map(|k| k.value),
            Some(Byte::Const(first))
        );
    }
}
