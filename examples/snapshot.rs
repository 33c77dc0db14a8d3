//! Using wiper from your own crate: specialize a function and print its
//! residual listing, and (under `cargo test`) snapshot-test that listing
//! with insta, so that a change in the residual code shows up in review.
//!
//! ```sh
//! cargo run --example snapshot -- testdata/bin/power-O2 power arg1=1 arg2=2
//! cargo test --example snapshot
//! ```

use std::process::ExitCode;

/// Specializes `function` of `binary` for the static `specs` and returns
/// the residual listing and the summary line.
fn residual_listing(
    binary: &str,
    function: &str,
    specs: &[&str],
) -> Result<(String, String), wiper::Error> {
    let binary = wiper::Binary::open(binary)?;
    let function = binary.function(function)?;
    let spec = wiper::Spec::parse(specs)?;
    let residual = wiper::specialize(&binary, &function, &spec)?;
    Ok((residual.listing(), residual.summary().to_string()))
}

/// `snapshot BINARY FUNCTION [SPEC...]`: prints the residual listing, and
/// the summary on stderr.
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, function, specs @ ..] = args.as_slice() else {
        eprintln!("usage: snapshot BINARY FUNCTION [SPEC...]");
        return ExitCode::from(2);
    };
    let specs: Vec<&str> = specs.iter().map(String::as_str).collect();
    match residual_listing(binary, function, &specs) {
        Ok((listing, summary)) => {
            print!("{listing}");
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("snapshot: error: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::residual_listing;

    /// The slides' `power(x, y, n)` for `y = 1, n = 2`: two multiplications
    /// by `x + 1`, no loop. The snapshot is `examples/snapshots/`.
    #[test]
    fn power_y1_n2() {
        let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/bin/power-O2");
        let (listing, _) = residual_listing(bin, "power", &["arg1=1", "arg2=2"]).unwrap();
        insta::assert_snapshot!("power_y1_n2", listing);
    }
}
