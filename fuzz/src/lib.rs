//! What the fuzz targets share: the check that an error is one line.

/// Panics (a crash libFuzzer records) unless `e`'s message is one
/// non-empty line, as every wiper error promises.
pub fn one_line(e: &dyn std::fmt::Display) {
    let text = e.to_string();
    assert!(
        !text.is_empty() && !text.contains(['\n', '\r']),
        "an error message that is not one line: {text:?}"
    );
}

/// The UTF-8 text of `data` split at NUL bytes: several `--static` values
/// (a command-line argument holds no NUL, but may hold anything else).
pub fn specs(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split('\0')
        .map(str::to_owned)
        .collect()
}
