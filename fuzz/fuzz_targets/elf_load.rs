//! The loader on arbitrary bytes: a `Binary` or a one-line `ElfError`,
//! never a panic; and what later stages ask of a loaded binary.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match wiper_elf::Binary::parse(data.to_vec()) {
        Err(e) => wiper_fuzz::one_line(&e),
        Ok(binary) => {
            let _ = binary.unwind_ranges();
            let _ = binary.read(binary.entry, 16);
            let _ = binary.bytes_from(binary.entry);
            for section in &binary.sections {
                let _ = binary.section_bytes(section);
            }
            for symbol in binary.symbols.iter().take(64) {
                let _ = binary.read_u32(symbol.addr);
                let _ = binary.name_of(symbol.addr);
                let _ = binary.function_containing(symbol.addr);
            }
            let _ = binary.function_symbol_addrs();
        }
    }
});
