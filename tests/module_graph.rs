//! No import loops between the modules of a crate.
//!
//! For every crate (each `crates/*/src` and the root `src/`; its roots are
//! `src/lib.rs`, `src/main.rs` and the `path`s its manifest names) the
//! test finds the module tree from the `mod name;` declarations (a module
//! is a file `foo.rs` or a directory `foo/mod.rs`) and, in each module's
//! file, the paths that name modules of the same crate: `use crate::a::b`,
//! groups (`use crate::{a, b::c}`), `crate::a::f()` in code, and
//! `super::x` and `self::x` paths. A path names the deepest module it
//! reaches; what follows is an item of that module, so an item defined in
//! `lib.rs` or a `mod.rs` belongs to that module itself. Comments, string
//! literals and items under `#[cfg(test)]` (test code may use anything)
//! are ignored; an inline module (`mod m { .. }`) counts as part of its
//! file.
//!
//! **The loop.** A use of module `T` in module `M` where neither contains
//! the other is an edge between two siblings: at their lowest common
//! ancestor `P`, from the child of `P` that contains `M` to the child of
//! `P` that contains `T`. A use of an ancestor (a child using what its
//! parent or the crate root defines) or of a descendant (a parent using its
//! children) is no edge. The test fails when for some `P` the edges among
//! `P`'s children form a cycle (two or more children that reach each
//! other), and prints each such cycle with the uses that make it. So
//! `a::x` using `b` while `b` uses `a::y` is a loop between `a` and `b`,
//! and `a::x` using `a::y` while `a::y` uses `a::x` one between `x` and
//! `y`.
//!
//! `MODULE_GRAPH_EDGES=1 cargo test --test module_graph -- --nocapture`
//! prints every edge.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// A module's path from its crate root (empty for the root).
type ModPath = Vec<String>;

/// Reads a source file, `None` when there is none.
type Read<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// One module of a crate: its path and its file's code, with comments,
/// strings and `#[cfg(test)]` items blanked out.
struct Module {
    path: ModPath,
    code: String,
}

/// One use of a module by another, lifted to the siblings it joins.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    /// The common parent of the two siblings.
    parent: ModPath,
    /// The sibling that uses.
    from_child: String,
    /// The sibling that is used.
    to_child: String,
    /// The module whose file has the use.
    from: ModPath,
    /// The module it names.
    to: ModPath,
}

/// `text` with comments, string literals and character literals blanked
/// out (lifetimes stay).
fn strip(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let ident = |k: usize| c[k].is_alphanumeric() || c[k] == '_';
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < c.len() {
        let next = |k: usize| c.get(i + k).copied();
        let raw_start = c[i] == 'r'
            && matches!(next(1), Some('"' | '#'))
            && (i == 0 || !ident(i - 1) || (c[i - 1] == 'b' && (i == 1 || !ident(i - 2))));
        if c[i] == '/' && next(1) == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if c[i] == '/' && next(1) == Some('*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if raw_start {
            let hashes = c[i + 1..].iter().take_while(|&&h| h == '#').count();
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat('#').take(hashes))
                .collect();
            i += 2 + hashes;
            while i < c.len() && !c[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if c[i] == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += if c[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if c[i] == '\'' && next(1) == Some('\\') {
            i += 2;
            while i < c.len() && c[i] != '\'' {
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else if c[i] == '\'' && next(2) == Some('\'') {
            i += 3;
            out.push_str("' '");
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// The index just past the item that starts at `from` in `code`: through
/// its first `;`, or through the `}` that closes its first `{`, whichever
/// comes first; further attributes (`#[..]`) before it belong to it.
fn item_end(code: &[char], from: usize) -> usize {
    let mut i = from;
    let mut depth = 0usize;
    let mut brackets = 0usize;
    while i < code.len() {
        match code[i] {
            '[' => brackets += 1,
            ']' => brackets = brackets.saturating_sub(1),
            ';' if depth == 0 && brackets == 0 => return i + 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// `code` (already stripped) with every item under `#[cfg(test)]` blanked
/// out.
fn without_tests(code: &str) -> String {
    let mut c: Vec<char> = code.chars().collect();
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + marker.len() <= c.len() {
        if c[i..].starts_with(&marker) {
            let end = item_end(&c, i + marker.len());
            for ch in &mut c[i..end] {
                if *ch != '\n' {
                    *ch = ' ';
                }
            }
            i = end;
        } else {
            i += 1;
        }
    }
    c.into_iter().collect()
}

/// The tokens of stripped code: identifiers, `::`, and single characters.
fn tokens(code: &str) -> Vec<String> {
    let c: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        if c[i].is_alphanumeric() || c[i] == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(c[start..i].iter().collect());
        } else if c[i] == ':' && c.get(i + 1) == Some(&':') {
            out.push("::".to_string());
            i += 2;
        } else {
            if !c[i].is_whitespace() {
                out.push(c[i].to_string());
            }
            i += 1;
        }
    }
    out
}

/// The names of the file modules `code` declares (`mod name;`).
fn declared_modules(code: &str) -> Vec<String> {
    let t = tokens(code);
    t.windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";")
        .map(|w| w[1].clone())
        .collect()
}

/// Parses the use tree at `t[*i]` under `prefix` (`a::b`, `a::{b, c::d}`,
/// `a::*`, `a::b as c`), pushing the paths it names onto `out`.
fn use_tree(t: &[String], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    while *i < t.len() {
        let tok = &t[*i];
        if tok == "{" {
            *i += 1;
            while *i < t.len() && t[*i] != "}" {
                use_tree(t, i, path.clone(), out);
                // Past a rename (`b as c`) to the next tree.
                while *i < t.len() && t[*i] != "," && t[*i] != "}" {
                    *i += 1;
                }
                if *i < t.len() && t[*i] == "," {
                    *i += 1;
                }
            }
            *i += 1;
            return;
        }
        if tok == "*" {
            path.push(tok.clone());
            *i += 1;
            break;
        }
        let is_ident = tok.chars().all(|ch| ch.is_alphanumeric() || ch == '_');
        if !is_ident {
            break;
        }
        path.push(tok.clone());
        *i += 1;
        if t.get(*i).map(String::as_str) != Some("::") {
            break;
        }
        *i += 1;
    }
    out.push(path);
}

/// Every path in stripped code that starts with `crate`, `super` or
/// `self` (followed by `::`), groups expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    let t = tokens(code);
    let mut out = Vec::new();
    for k in 0..t.len() {
        let starts = matches!(t[k].as_str(), "crate" | "super" | "self")
            && t.get(k + 1).map(String::as_str) == Some("::")
            && (k == 0 || t[k - 1] != "::");
        if starts {
            let mut i = k;
            use_tree(&t, &mut i, Vec::new(), &mut out);
        }
    }
    out
}

/// The names the `use` declarations of stripped code bring in, with the
/// paths they stand for (a rename's new name; not globs), each path as
/// written.
fn imports_of(code: &str) -> Vec<(String, Vec<String>)> {
    let t = tokens(code);
    let mut out = Vec::new();
    for k in 0..t.len() {
        if t[k] != "use" || (k > 0 && t[k - 1] == "::") {
            continue;
        }
        let mut i = k + 1;
        let mut trees = Vec::new();
        use_tree(&t, &mut i, Vec::new(), &mut trees);
        for path in trees {
            let mut named = path.clone();
            if named.last().is_some_and(|s| s == "self") {
                named.pop();
            }
            match named.last() {
                Some(name) if name != "*" => out.push((name.clone(), path)),
                _ => {}
            }
        }
    }
    out
}

/// A crate's modules and what each module's `use` declarations import.
struct Crate {
    known: BTreeSet<ModPath>,
    /// Per module: imported name -> the path it stands for (from that
    /// module).
    imports: HashMap<ModPath, HashMap<String, Vec<String>>>,
}

impl Crate {
    /// The crate of these modules.
    fn new(modules: &[Module]) -> Self {
        let known: BTreeSet<ModPath> = modules.iter().map(|m| m.path.clone()).collect();
        let mut imports: HashMap<ModPath, HashMap<String, Vec<String>>> = HashMap::new();
        for m in modules {
            for (name, mut path) in imports_of(&m.code) {
                // `use child::X` in a module means `self::child::X`; other
                // bare paths name other crates.
                let mut child = m.path.clone();
                child.push(path[0].clone());
                if known.contains(&child) {
                    path.insert(0, "self".to_string());
                }
                if matches!(path[0].as_str(), "crate" | "self" | "super") {
                    imports
                        .entry(m.path.clone())
                        .or_default()
                        .insert(name, path);
                }
            }
        }
        Crate { known, imports }
    }

    /// The deepest module that `raw` (a path in module `from`) reaches,
    /// following imports (re-exports) of the modules it passes, or `None`
    /// if it leaves the crate.
    fn resolve(&self, from: &[String], raw: &[String], depth: usize) -> Option<ModPath> {
        let (first, rest) = raw.split_first()?;
        let mut at: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.to_vec(),
            "super" => from.split_last()?.1.to_vec(),
            _ => return None,
        };
        let mut rest = rest;
        while rest.first().is_some_and(|s| s == "super") {
            at.pop()?;
            rest = &rest[1..];
        }
        for seg in rest.iter().filter(|s| *s != "self" && *s != "*") {
            let mut next = at.clone();
            next.push(seg.clone());
            if self.known.contains(&next) {
                at = next;
                continue;
            }
            let import = self.imports.get(&at).and_then(|names| names.get(seg));
            if let (Some(path), true) = (import, depth < 8) {
                return self.resolve(&at, path, depth + 1).or(Some(at));
            }
            break;
        }
        Some(at)
    }
}

/// The modules of the crate whose root file is `root`.
fn modules(root: &Path, read: Read<'_>) -> Vec<Module> {
    let mut out = Vec::new();
    let mut work: Vec<(ModPath, PathBuf)> = vec![(Vec::new(), root.to_path_buf())];
    while let Some((path, file)) = work.pop() {
        let text = read(&file).unwrap_or_else(|| panic!("no module file {}", file.display()));
        let code = without_tests(&strip(&text));
        let parent = file.parent().expect("a file in a directory");
        let dir = if path.is_empty() || file.file_name().is_some_and(|n| n == "mod.rs") {
            parent.to_path_buf()
        } else {
            parent.join(file.file_stem().expect("a file name"))
        };
        for name in declared_modules(&code) {
            let flat = dir.join(format!("{name}.rs"));
            let file = match read(&flat) {
                Some(_) => flat,
                None => dir.join(&name).join("mod.rs"),
            };
            let mut child = path.clone();
            child.push(name);
            work.push((child, file));
        }
        out.push(Module { path, code });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// The sibling edges of the crate's module uses (see the module docs).
fn edges(modules: &[Module]) -> Vec<Edge> {
    let krate = Crate::new(modules);
    let mut out = BTreeSet::new();
    for m in modules {
        for raw in paths(&m.code) {
            let Some(to) = krate.resolve(&m.path, &raw, 0) else {
                continue;
            };
            let common = m.path.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common == m.path.len() || common == to.len() {
                continue; // an ancestor, a descendant or itself
            }
            out.insert(Edge {
                parent: m.path[..common].to_vec(),
                from_child: m.path[common].clone(),
                to_child: to[common].clone(),
                from: m.path.clone(),
                to,
            });
        }
    }
    out.into_iter().collect()
}

/// The cycles among siblings: per parent, each set of two or more
/// children that reach each other, with the edges inside it.
fn cycles(edges: &[Edge]) -> Vec<Vec<Edge>> {
    let mut by_parent: BTreeMap<&ModPath, Vec<&Edge>> = BTreeMap::new();
    for e in edges {
        by_parent.entry(&e.parent).or_default().push(e);
    }
    let mut out = Vec::new();
    for group in by_parent.values() {
        let mut next: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        for e in group {
            next.entry(&e.from_child).or_default().insert(&e.to_child);
        }
        let reach = |start: &str| -> BTreeSet<String> {
            let mut seen = BTreeSet::new();
            let mut work = vec![start.to_string()];
            while let Some(n) = work.pop() {
                for &s in next.get(n.as_str()).into_iter().flatten() {
                    if seen.insert(s.to_string()) {
                        work.push(s.to_string());
                    }
                }
            }
            seen
        };
        let reaches: BTreeMap<&str, BTreeSet<String>> =
            next.keys().map(|&n| (n, reach(n))).collect();
        let mut done = BTreeSet::new();
        for (&n, r) in &reaches {
            if done.contains(n) || !r.contains(n) {
                continue;
            }
            let component: BTreeSet<&str> = reaches
                .iter()
                .filter(|(m, rm)| r.contains(**m) && rm.contains(n))
                .map(|(m, _)| *m)
                .collect();
            done.extend(component.iter().copied());
            let inside = group
                .iter()
                .filter(|e| {
                    component.contains(e.from_child.as_str())
                        && component.contains(e.to_child.as_str())
                })
                .map(|e| (*e).clone())
                .collect();
            out.push(inside);
        }
    }
    out
}

/// A module path as Rust writes it.
fn show(path: &[String]) -> String {
    std::iter::once("crate")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("::")
}

/// One cycle as text: the siblings, then each use that joins them.
fn describe(cycle: &[Edge]) -> String {
    let members: BTreeSet<&str> = cycle
        .iter()
        .flat_map(|e| [e.from_child.as_str(), e.to_child.as_str()])
        .collect();
    let mut s = format!(
        "loop among the children of {}: {:?}\n",
        show(&cycle[0].parent),
        members
    );
    for e in cycle {
        s += &format!("  {} uses {}\n", show(&e.from), show(&e.to));
    }
    s
}

/// The cycles of the crate rooted at `root`, described.
fn crate_cycles(root: &Path, read: Read<'_>) -> Vec<String> {
    cycles(&edges(&modules(root, read)))
        .iter()
        .map(|c| describe(c))
        .collect()
}

/// The crate roots of the package in `dir`: `src/lib.rs`, `src/main.rs`
/// and every `path = "….rs"` of its manifest.
fn crate_roots(dir: &Path) -> Vec<PathBuf> {
    let mut roots: BTreeSet<PathBuf> = ["src/lib.rs", "src/main.rs"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect();
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a manifest");
    for line in manifest.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        if key.trim() == "path" && value.ends_with(".rs") {
            roots.insert(dir.join(value));
        }
    }
    roots.into_iter().collect()
}

#[test]
fn no_module_imports_a_sibling_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut packages = vec![root.to_path_buf()];
    for entry in std::fs::read_dir(root.join("crates")).expect("crates/") {
        packages.push(entry.expect("an entry").path());
    }
    packages.sort();
    let read = |p: &Path| std::fs::read_to_string(p).ok();
    let mut found = Vec::new();
    let mut crates = 0;
    for package in packages {
        for crate_root in crate_roots(&package) {
            crates += 1;
            if std::env::var_os("MODULE_GRAPH_EDGES").is_some() {
                for e in edges(&modules(&crate_root, &read)) {
                    println!(
                        "{}: {} -> {}",
                        crate_root.display(),
                        show(&e.from),
                        show(&e.to)
                    );
                }
            }
            for cycle in crate_cycles(&crate_root, &read) {
                found.push(format!("{}: {cycle}", crate_root.display()));
            }
        }
    }
    assert!(crates >= 14, "only {crates} crates found");
    assert!(found.is_empty(), "import loops:\n{}", found.join("\n"));
}

/// A crate of inline files: `a` and `b` use each other (`b` through its
/// child `inner`); the uses of the root, of a parent, in comments,
/// strings and test code make no loop.
#[test]
fn the_finder_finds_a_loop_and_only_that() {
    let files: HashMap<PathBuf, String> = [
        (
            "lib.rs",
            "mod a; mod b; mod c;\n#[cfg(test)]\nmod t;\npub struct Root;",
        ),
        (
            "a.rs",
            "use crate::b::X; use crate::Root; // use crate::c::Y\n/// [`crate::c`]\npub fn g() {}",
        ),
        ("b/mod.rs", "mod inner;\npub struct X;\nuse super::{c::{self, Z}, Root};"),
        ("b/inner.rs", "use super::X;\npub fn f() { crate::a::g() }"),
        (
            "c.rs",
            "const S: &str = \"crate::a::g\";\nconst C: char = '{';\n#[cfg(test)]\nmod tests { use crate::a::*; }\npub struct Z;",
        ),
    ]
    .into_iter()
    .map(|(f, s)| (PathBuf::from("/x").join(f), s.to_string()))
    .collect();
    let read = |p: &Path| files.get(p).cloned();
    let found = crate_cycles(Path::new("/x/lib.rs"), &read);
    assert_eq!(
        found,
        vec!["loop among the children of crate: {\"a\", \"b\"}\n  \
             crate::a uses crate::b\n  crate::b::inner uses crate::a\n"
            .to_string()]
    );
    // Without the child's use of `a`, no loop: `b` using `c` is one way.
    let mut files = files;
    files.insert("/x/b/inner.rs".into(), "use super::X;".to_string());
    let read = |p: &Path| files.get(p).cloned();
    assert_eq!(
        crate_cycles(Path::new("/x/lib.rs"), &read),
        Vec::<String>::new()
    );
}

/// A name the root re-exports from `p` is `p`'s: `q` using it while `p`
/// uses `q` is a loop.
#[test]
fn a_re_export_is_followed_to_its_module() {
    let files: HashMap<PathBuf, String> = [
        ("lib.rs", "mod p; mod q; pub use p::P; use std::fmt;"),
        ("p.rs", "use crate::q::Q; pub struct P;"),
        ("q.rs", "use crate::{fmt, P}; pub struct Q;"),
    ]
    .into_iter()
    .map(|(f, s)| (PathBuf::from("/y").join(f), s.to_string()))
    .collect();
    let read = |p: &Path| files.get(p).cloned();
    assert_eq!(
        crate_cycles(Path::new("/y/lib.rs"), &read),
        vec!["loop among the children of crate: {\"p\", \"q\"}\n  \
             crate::p uses crate::q\n  crate::q uses crate::p\n"
            .to_string()]
    );
}

/// Use trees with groups, `self`, globs and renames.
#[test]
fn use_trees_are_expanded() {
    let code = "use crate::{a::{self, b as c}, d::*}; fn f() { super::super::e::g(); self.x; }";
    let want: Vec<Vec<&str>> = vec![
        vec!["crate", "a", "self"],
        vec!["crate", "a", "b"],
        vec!["crate", "d", "*"],
        vec!["super", "super", "e", "g"],
    ];
    assert_eq!(paths(code), want);
    let krate = Crate {
        known: [vec![], vec!["e".to_string()], vec!["m".to_string()]]
            .into_iter()
            .collect(),
        imports: HashMap::new(),
    };
    let from = vec!["m".to_string(), "n".to_string()];
    let raw: Vec<String> = want[3].iter().map(|s| s.to_string()).collect();
    assert_eq!(krate.resolve(&from, &raw, 0), Some(vec!["e".to_string()]));
}
