//! The entry store: what the spec makes known when the function starts,
//! and where the static buffers are laid out in the residual's data.

use crate::state::{value_bytes, Known, Region, SVal, Store};

pub(super) fn write_known(store: &mut Store, region: Region, off: u32, value: SVal, synced: bool) {
    for (i, b) in value_bytes(value, 4).into_iter().enumerate() {
        store
            .mem
            .insert((region, off + i as u32), Known { value: b, synced });
    }
}
