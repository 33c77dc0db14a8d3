//! The static spec parser (`--static` values, NUL-separated in the input):
//! a spec or a one-line error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let specs = wiper_fuzz::specs(data);
    match wiper::Spec::parse(&specs) {
        Err(e) => wiper_fuzz::one_line(&e),
        Ok(spec) => {
            let _ = format!("{:?}", spec.inner());
        }
    }
});
