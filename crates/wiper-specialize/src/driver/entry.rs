//! The entry store: what the spec makes known when the function starts,
//! and where the static buffers are laid out in the residual's data.

use wiper_bta::{StaticInput, StaticSpec, StaticValue};
use wiper_x86::abi;

use crate::state::{value_bytes, Base, Byte, Known, Region, SVal, Store};

/// A static buffer of the spec, placed in the residual's data.
struct StaticBuffer {
    /// The stack argument that points to it.
    arg: u32,
    /// Its offset in the data.
    offset: u32,
    /// Its contents.
    bytes: Vec<u8>,
}

/// The static buffers of a spec laid out in the residual's data, each
/// aligned to 16 bytes, in the order of the spec.
pub(super) struct DataLayout {
    /// The residual's data: every buffer's bytes.
    pub(super) data: Vec<u8>,
    /// Where each buffer is.
    buffers: Vec<StaticBuffer>,
}

impl DataLayout {
    /// Lays out the buffers the pointer arguments of `spec` point to.
    pub(super) fn new(spec: &StaticSpec) -> Self {
        let mut data = Vec::new();
        let mut buffers = Vec::new();
        for e in &spec.entries {
            if let StaticInput::Arg {
                index,
                value: StaticValue::Pointer(buf),
            } = e
            {
                while data.len() % 16 != 0 {
                    data.push(0);
                }
                buffers.push(StaticBuffer {
                    arg: *index,
                    offset: data.len() as u32,
                    bytes: buf.bytes(),
                });
                data.extend(buf.bytes());
            }
        }
        DataLayout { data, buffers }
    }
}

/// Where a static buffer lives while specializing: the bytes
/// `start..end` of `region`. Static buffers are never written through
/// unknown pointers (an assumption), so their bytes stay known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BufferRange {
    /// The stack argument that points to it (none for the strings and
    /// vectors of a process's command line).
    pub(super) arg: Option<u32>,
    /// The region (absolute, or load-relative in a PIE).
    pub(super) region: Region,
    /// The first byte.
    pub(super) start: u32,
    /// Past the last byte.
    pub(super) end: u32,
}

impl BufferRange {
    /// Whether the byte `off` of `region` is in the buffer.
    pub(super) fn contains(&self, region: Region, off: u32) -> bool {
        self.region == region && off >= self.start && off < self.end
    }
}

/// The specializer's knowledge at the function's entry.
pub(super) struct EntryStore {
    /// The static arguments and registers, the pointers to the static
    /// buffers and the buffers' bytes.
    pub(super) store: Store,
    /// Where the static buffers are.
    pub(super) buffer_ranges: Vec<BufferRange>,
}

/// The store at the entry of the function for the static inputs of `spec`,
/// its buffers laid out by `layout` in data placed at `data_vaddr` (in a
/// PIE, relative to the load address).
pub(super) fn entry_store(
    spec: &StaticSpec,
    layout: &DataLayout,
    data_vaddr: u32,
    pie: bool,
) -> EntryStore {
    let mut store = Store::entry();
    let region_of_data = if pie {
        Region::Of(Base::Load)
    } else {
        Region::Abs
    };
    for e in &spec.entries {
        match e {
            StaticInput::Arg {
                index,
                value: StaticValue::Int(v),
            } => write_known(
                &mut store,
                Region::Of(Base::Stack),
                abi::arg_offset(*index),
                SVal::Const(u64::from(*v)),
                false,
            ),
            StaticInput::Arg { .. } => {}
            StaticInput::Reg { reg, value } => store.set_reg(
                *reg,
                Some(Known {
                    value: SVal::Const(u64::from(*value)),
                    synced: false,
                }),
            ),
        }
    }
    let mut buffer_ranges = Vec::new();
    for buf in &layout.buffers {
        let addr = data_vaddr + buf.offset;
        let value = if pie {
            SVal::Addr(Base::Load, addr)
        } else {
            SVal::Const(u64::from(addr))
        };
        write_known(
            &mut store,
            Region::Of(Base::Stack),
            abi::arg_offset(buf.arg),
            value,
            false,
        );
        for (i, b) in buf.bytes.iter().enumerate() {
            store.mem.insert(
                (region_of_data, addr + i as u32),
                Known {
                    value: Byte::Const(*b),
                    synced: true,
                },
            );
        }
        buffer_ranges.push(BufferRange {
            arg: Some(buf.arg),
            region: region_of_data,
            start: addr,
            end: addr + buf.bytes.len() as u32,
        });
    }
    EntryStore {
        store,
        buffer_ranges,
    }
}

/// Writes the 4-byte `value` at `off` of `region` as known bytes.
pub(super) fn write_known(store: &mut Store, region: Region, off: u32, value: SVal, synced: bool) {
    for (i, b) in value_bytes(value, 4).into_iter().enumerate() {
        store
            .mem
            .insert((region, off + i as u32), Known { value: b, synced });
    }
}
