//! Prints `docs/semantics.md`: `cargo run -p wiper-sem --example semantics_table > docs/semantics.md`.

fn main() {
    print!("{}", wiper_sem::table::semantics_markdown());
}
