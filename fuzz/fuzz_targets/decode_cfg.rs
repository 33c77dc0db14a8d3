//! Load, find the functions, and decode each into a control-flow graph
//! (jump tables included) and a listing: a CFG or a one-line
//! `DecodeError`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wiper_x86::{format, Disassembler, Syntax};

/// Functions decoded per input (a seed has up to a few hundred).
const MOST_FUNCTIONS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Ok(binary) = wiper_elf::Binary::parse(data.to_vec()) else {
        return;
    };
    let _ = wiper_x86::find_main(&binary);
    let mut dis = Disassembler::new(&binary);
    let starts = dis.discover_functions();
    for &entry in starts.iter().take(MOST_FUNCTIONS) {
        match dis.function(entry) {
            Err(e) => wiper_fuzz::one_line(&e),
            Ok(f) => {
                let _ = format::listing(&binary, &f, Syntax::Intel);
            }
        }
    }
    for name in ["main", "0x0", "nosuch"] {
        if let Err(e) = wiper_x86::resolve_function(&binary, name) {
            wiper_fuzz::one_line(&e);
        }
    }
});
