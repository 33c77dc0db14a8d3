//! The crates form a pipeline in which data flows one way: no crate depends
//! (through `[dependencies]`) on a later stage, the support crates for tests
//! are only ever dev-dependencies of stages, the tools (shared by the command
//! line and the tests) depend on no wiper crate and no stage depends on them,
//! and every dependency is declared once, in the workspace. Tests may use later stages as judges (the optimizer's
//! processor tests encode their residuals with `wiper-emit`), so
//! dev-dependencies are only checked for being workspace ones.
//!
//! `cargo tree -e normal -p CRATE` shows the same graph; this test keeps it
//! from drifting.

use std::collections::BTreeMap;
use std::path::Path;

/// The library crates in pipeline order: a crate may depend only on crates
/// before it. (`wiper-qfbv` is the formula language the semantics are
/// written in; `wiper-synth` is the synthesizer Reduce calls.)
const STAGES: &[&str] = &[
    "wiper-elf",
    "wiper-x86",
    "wiper-qfbv",
    "wiper-sem",
    "wiper-synth",
    "wiper-bta",
    "wiper-residual",
    "wiper-specialize",
    "wiper-opt",
    "wiper-emit",
];

/// Crates that exist for tests: they may depend on stages, and only
/// dev-dependencies may name them.
const SUPPORT: &[&str] = &["wiper-oracle", "wiper-testkit"];

/// Crates outside the pipeline that the `wiper` command line (a normal
/// dependency) and the support crates share: `wiper-run` runs programs for
/// `compare`, `check` and the tests. A tool depends on no wiper crate, and
/// no stage depends on a tool (the pipeline never runs programs).
const TOOLS: &[&str] = &["wiper-run"];

/// The entries of a manifest's dependency tables: table name -> (crate,
/// whether it says `workspace = true`).
fn dependencies(manifest: &str) -> BTreeMap<String, Vec<(String, bool)>> {
    let mut tables: BTreeMap<String, Vec<(String, bool)>> = BTreeMap::new();
    let mut table = String::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            table = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        if !table.ends_with("dependencies") || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let (name, workspace) = match key.strip_suffix(".workspace") {
            Some(name) => (name, value.trim() == "true"),
            None => (key, value.replace(' ', "").contains("workspace=true")),
        };
        tables
            .entry(table.clone())
            .or_default()
            .push((name.to_string(), workspace));
    }
    tables
}

fn manifests() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![(
        "wiper".to_string(),
        std::fs::read_to_string(root.join("Cargo.toml")).unwrap(),
    )];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        out.push((name, text));
    }
    out.sort();
    out
}

#[test]
fn no_crate_depends_on_a_later_stage() {
    let mut wrong = Vec::new();
    for (name, manifest) in manifests() {
        if name == "wiper" {
            // The command line may use every stage and tool, but the
            // support crates only in its tests.
            let deps = dependencies(&manifest);
            for (dep, _) in deps.get("dependencies").into_iter().flatten() {
                if SUPPORT.contains(&dep.as_str()) {
                    wrong.push(format!(
                        "wiper -> {dep} (test support, not a dev-dependency)"
                    ));
                }
            }
            continue;
        }
        let at = STAGES.iter().position(|s| *s == name);
        let tool = TOOLS.contains(&name.as_str());
        assert!(
            at.is_some() || tool || SUPPORT.contains(&name.as_str()),
            "crate {name} is neither a stage, a tool nor a support crate: place it in STAGES, TOOLS or SUPPORT"
        );
        let deps = dependencies(&manifest);
        for (dep, _) in deps.get("dependencies").into_iter().flatten() {
            let dep_at = STAGES.iter().position(|s| s == dep);
            match (at, dep_at) {
                _ if tool && dep.starts_with("wiper-") => wrong.push(format!(
                    "{name} -> {dep} (a tool depends on no wiper crate)"
                )),
                _ if at.is_some() && TOOLS.contains(&dep.as_str()) => {
                    wrong.push(format!("{name} -> {dep} (a stage never runs programs)"))
                }
                (Some(a), Some(d)) if d >= a => wrong.push(format!("{name} -> {dep} (later)")),
                _ if SUPPORT.contains(&dep.as_str()) && at.is_some() => wrong.push(format!(
                    "{name} -> {dep} (test support, not a dev-dependency)"
                )),
                _ => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies against the pipeline: {wrong:?}"
    );
}

#[test]
fn every_dependency_comes_from_the_workspace() {
    let root =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let declared: Vec<String> = dependencies(&root)
        .get("workspace.dependencies")
        .into_iter()
        .flatten()
        .map(|(n, _)| n.clone())
        .collect();
    assert!(
        declared.len() > 10,
        "workspace dependencies not found: {declared:?}"
    );
    let mut wrong = Vec::new();
    for (name, manifest) in manifests() {
        for (table, deps) in dependencies(&manifest) {
            if table == "workspace.dependencies" {
                continue;
            }
            for (dep, workspace) in deps {
                if !workspace {
                    wrong.push(format!("{name} [{table}] {dep}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies not taken from [workspace.dependencies]: {wrong:?}"
    );
}

#[test]
fn the_manifest_reader_sees_both_forms() {
    let deps = dependencies(
        "[dependencies]\na.workspace = true\nb = { workspace = true, features = [\"x\"] }\nc = \"1\"\n[lints]\nd = 1\n",
    );
    assert_eq!(
        deps["dependencies"],
        vec![
            ("a".to_string(), true),
            ("b".to_string(), true),
            ("c".to_string(), false)
        ]
    );
    assert_eq!(deps.len(), 1);
}
