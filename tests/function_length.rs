//! No function in the library crates or the command line is longer than
//! `LIMIT` lines (the project's rule: small and clear). The scan is textual:
//! a `fn` item starts a function, the first line at its indentation that
//! is a lone `}` ends it. Generated tables would be listed in `EXEMPT`.
//! `cargo test --test function_length -- --nocapture` prints the longest.

use std::path::{Path, PathBuf};

/// Lines a function may have, its signature and closing brace included.
const LIMIT: usize = 150;

/// Functions allowed to be longer (file, name), with the reason.
const EXEMPT: &[(&str, &str)] = &[];

/// One function: its length, file, name and first line.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Function {
    lines: usize,
    file: String,
    name: String,
    line: usize,
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The name of the function a line declares, if it declares one with a body.
fn function_name(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for prefix in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "unsafe ",
        "async ",
    ] {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// Every function of `text` with a body, measured.
fn functions(file: &str, text: &str) -> Vec<Function> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = function_name(line) else {
            continue;
        };
        // A declaration without a body (in a trait) ends in `;` before any `{`.
        let body = lines[i..]
            .iter()
            .find(|l| l.contains('{') || l.trim_end().ends_with(';'));
        if !matches!(body, Some(l) if l.contains('{')) {
            continue;
        }
        let indent = &line[..line.len() - line.trim_start().len()];
        let close = format!("{indent}}}");
        let Some(end) = lines[i..].iter().position(|l| l.trim_end() == close) else {
            continue;
        };
        out.push(Function {
            lines: end + 1,
            file: file.to_string(),
            name: name.to_string(),
            line: i + 1,
        });
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).expect("crates/") {
        let src = krate.expect("crate directory").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    let mut all: Vec<Function> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).expect("readable source file");
            let name = f.strip_prefix(root).unwrap_or(f).display().to_string();
            functions(&name, &text)
        })
        .collect();
    all.sort_by(|a, b| b.cmp(a));
    assert!(
        all.len() > 1_000,
        "the scan found only {} functions",
        all.len()
    );
    for f in all.iter().take(10) {
        println!("{:4} lines  {}:{}  {}", f.lines, f.file, f.line, f.name);
    }
    let long: Vec<String> = all
        .iter()
        .filter(|f| f.lines > LIMIT)
        .filter(|f| {
            !EXEMPT
                .iter()
                .any(|(file, name)| f.file == *file && f.name == *name)
        })
        .map(|f| format!("{}:{} {} ({} lines)", f.file, f.line, f.name, f.lines))
        .collect();
    assert!(
        long.is_empty(),
        "functions over {LIMIT} lines:\n{}",
        long.join("\n")
    );
}
