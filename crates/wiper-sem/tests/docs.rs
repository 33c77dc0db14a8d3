//! `docs/semantics.md` is generated from the code and must never go stale.

use std::path::Path;

#[test]
fn semantics_doc_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/semantics.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = wiper_sem::table::semantics_markdown();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || committed.lines().count().min(generated.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "{} is stale (first difference at line {line}); regenerate it with `{}`",
            path.display(),
            wiper_sem::table::COMMAND
        );
    }
}
