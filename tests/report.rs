//! `wiper report`: the HTML page checked against the specializer's own
//! figures (computed independently through the library API), rendered in
//! headless Chromium when it is installed, and the command's errors.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::cases::{vm_case, Case};
use common::{assert_fails, path_arg, wiper};
use wiper_testkit::{scratch_file, testdata_bin};

/// README.md's main job (the first line of its first `sh` block, `wiper
/// compare BINARY --function F --static ... -- ARGS`) as a case: its
/// binary's file name, function and static specs.
fn readme_case() -> (String, String, Vec<String>) {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let block = readme.split("```sh\n").nth(1).expect("an sh block");
    let line = block.lines().next().expect("a first line");
    // `cargo run --release -- compare ARGS -- PROGRAM-ARGS`: the words
    // between `compare` and the next `--`.
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "compare").expect("compare") + 1;
    let end = at
        + words[at..]
            .iter()
            .position(|w| *w == "--")
            .unwrap_or(words.len() - at);
    let words = &words[..end];
    let binary = Path::new(words[at])
        .file_name()
        .expect("a file")
        .to_str()
        .expect("utf-8");
    let (mut function, mut statics) = (None, Vec::new());
    let mut it = words[at + 1..].iter();
    while let Some(w) = it.next() {
        match *w {
            "--function" | "-f" => function = it.next().map(|s| s.to_string()),
            "--static" => statics.extend(it.next().map(|s| s.to_string())),
            _ => {}
        }
    }
    (binary.to_owned(), function.expect("--function"), statics)
}

/// The interpreter case with polyvariance: `run_vm` of `interp-O2`
/// specialized to the factorial VM program (a differential-test case).
fn interpreter_case() -> (String, String, Vec<String>) {
    let Case {
        binary,
        function,
        statics,
        ..
    } = vm_case("O2", 1);
    (binary, function, statics)
}

/// Writes the report of a case with `wiper report` (with `--no-graphviz`
/// unless `graphviz`) and returns the page.
fn report_page(case: &(String, String, Vec<String>), graphviz: bool) -> (String, PathBuf) {
    let out = scratch_file("report.html", b"");
    let bin = testdata_bin(&case.0);
    let mut args = vec!["report", path_arg(&bin), "--function", &case.1];
    for s in &case.2 {
        args.extend(["--static", s.as_str()]);
    }
    args.extend(["-o", path_arg(&out)]);
    if !graphviz {
        args.push("--no-graphviz");
    }
    let run = wiper(&args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{args:?}: {stderr}");
    assert!(stderr.contains("report written to"), "{stderr}");
    (std::fs::read_to_string(&out).expect("the page"), out)
}

/// The opening tags (`<tr ...>`, `<div ...>`) of `html` with element
/// `name` that contain `marker`.
fn tags<'a>(html: &'a str, name: &str, marker: &str) -> Vec<&'a str> {
    html.split(&format!("<{name} "))
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .filter(|t| t.contains(marker))
        .collect()
}

/// The value of attribute `name` in a tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[at..].split('"').next()
}

/// The text of the element with `id` (up to the next tag).
fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id}"))
        + id.len()
        + 6;
    &html[at..at + html[at..].find('<').expect("a closing tag")]
}

/// Figures computed through the library API, independently of the page.
struct Figures {
    summary: wiper::Summary,
    stats: wiper_specialize::Stats,
    /// The listing's origin comments (`from 0x...`, ...), in order.
    origins: Vec<String>,
    /// Original instruction addresses.
    instructions: BTreeSet<u32>,
    /// Block starts that a branch of the function jumps back to.
    loop_heads: BTreeSet<u32>,
    /// The function's entry.
    entry: u32,
}

fn figures(case: &(String, String, Vec<String>)) -> Figures {
    let binary = wiper::Binary::open(testdata_bin(&case.0)).expect("binary");
    let function = binary.function(&case.1).expect("function");
    let spec = wiper::Spec::parse(&case.2).expect("spec");
    let residual = wiper::specialize(&binary, &function, &spec).expect("specialized");
    let origins: Vec<String> = residual
        .listing()
        .lines()
        .filter(|l| l.starts_with("  "))
        .filter_map(|l| l.split("; ").nth(1))
        .filter(|c| !c.starts_with("pc thunk") && !c.starts_with("trap"))
        .map(|c| c.split(',').next().unwrap_or(c).to_owned())
        .collect();
    let cfg = wiper_x86::Disassembler::new(binary.elf())
        .function(function.entry())
        .expect("decoded");
    let loop_heads = cfg
        .blocks
        .values()
        .flat_map(|b| {
            let end = b.instructions.last().map_or(b.start, |i| i.ip32());
            b.successors.iter().filter_map(move |s| match s {
                wiper_x86::Successor::Jump(t) | wiper_x86::Successor::Taken(t) if *t <= end => {
                    Some(*t)
                }
                _ => None,
            })
        })
        .collect();
    Figures {
        summary: residual.summary(),
        stats: residual.stats().clone(),
        origins,
        instructions: cfg.instructions().map(|i| i.ip32()).collect(),
        loop_heads,
        entry: function.entry(),
    }
}

/// The page without its one varying figure, the time.
fn without_time(html: &str) -> String {
    let at = html.find("id=\"fig-time\">").expect("the time figure");
    let end = at + html[at..].find('<').expect("end of the time");
    format!("{}{}", &html[..at], &html[end..])
}

/// Checks a page against the library's figures; returns the residual
/// rows' origin addresses.
fn check_page(html: &str, f: &Figures, label: &str) -> BTreeSet<String> {
    let s = &f.summary;
    // The residual instructions: as many as the summary and the listing
    // count, in the listing's order, with the listing's origins, each
    // linked to an instruction of the original listing.
    let rows = tags(html, "tr", " data-r=\"");
    assert_eq!(rows.len(), s.residual_instructions, "{label}");
    assert_eq!(rows.len(), f.origins.len(), "{label}");
    let mut from = BTreeSet::new();
    for (i, (row, origin)) in rows.iter().zip(&f.origins).enumerate() {
        assert_eq!(attr(row, "data-r"), Some(i.to_string().as_str()), "{label}");
        let how = attr(row, "data-how").expect("data-how");
        let addr =
            attr(row, "data-from").unwrap_or_else(|| panic!("{label}: {row}: no origin link"));
        let word = origin.split(' ').next().expect("a kind");
        assert_eq!(how, word, "{label}: row {i}");
        assert!(
            origin.ends_with(&format!("0x{addr}")),
            "{label}: {origin} vs {addr}"
        );
        assert!(
            html.contains(&format!("id=\"o-{addr}\"")),
            "{label}: no original {addr}"
        );
        from.insert(addr.to_owned());
    }
    // The original instructions, each once.
    let originals: Vec<&str> = tags(html, "tr", " data-o=\"")
        .into_iter()
        .filter_map(|t| attr(t, "data-o"))
        .collect();
    let expected: Vec<String> = f.instructions.iter().map(|a| format!("{a:x}")).collect();
    assert_eq!(originals, expected, "{label}");
    assert_eq!(originals.len(), s.original_instructions, "{label}");
    // The figures.
    for (id, value) in [
        ("original-instructions", s.original_instructions),
        ("residual-instructions", s.residual_instructions),
        ("residual-bytes", s.residual_bytes as usize),
        ("reduced", s.reduced),
        ("proved", s.proved),
        ("fallbacks", s.fallbacks),
        ("materialized", f.stats.materialized),
        ("points", f.stats.points),
        ("restarts", f.stats.restarts),
    ] {
        assert_eq!(
            text_of(html, &format!("fig-{id}")),
            value.to_string(),
            "{label}: {id}"
        );
    }
    // Every residual block said to specialize a point starts an original
    // block; the first residual block, where the specialized function
    // starts, specializes nothing but the function's entry.
    let blocks: Vec<&str> = html.split("<div class=\"rblock\"").skip(1).collect();
    for block in &blocks {
        if let Some((_, rest)) = block.split_once("specializes <a href=\"#o-") {
            let addr = u32::from_str_radix(rest.split('"').next().unwrap(), 16).unwrap();
            assert!(
                html.contains(&format!("id=\"ob-{addr:x}\"")),
                "{label}: {addr:#x}"
            );
        }
    }
    if let Some((_, rest)) = blocks[0].split_once("specializes <a href=\"#o-") {
        assert!(
            rest.starts_with(&format!("{:x}\"", f.entry)),
            "{label}: {}",
            blocks[0]
        );
    }
    // Every specialization point is a copy of a block of the function
    // (neither case inlines a call), and copies of one block are told apart
    // by their static values.
    let blocks = tags(html, "div", "class=\"oblock");
    let copies: usize = blocks
        .iter()
        .map(|b| {
            attr(b, "data-copies")
                .expect("copies")
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    assert_eq!(copies, f.stats.points, "{label}");
    for block in html.split("<div class=\"oblock").skip(1) {
        let block = &block[..block.find("</div>").expect("end of block")];
        // Each copy's line: its label, then the values that set it apart.
        let lines: Vec<&str> = block
            .split("<li class=\"copy\">")
            .skip(1)
            .map(|l| l.split("</li>").next().unwrap_or(l))
            .map(|l| l.split_once(": ").map_or(l, |(_, values)| values))
            .collect();
        let distinct: HashSet<&&str> = lines.iter().collect();
        assert_eq!(
            distinct.len(),
            lines.len(),
            "{label}: copies alike in {block}"
        );
    }
    from
}

/// The number of copies the page gives the block at `start`.
fn copies_of(html: &str, start: u32) -> usize {
    let tag = tags(html, "div", &format!("id=\"ob-{start:x}\""));
    attr(tag[0], "data-copies")
        .expect("copies")
        .parse()
        .expect("a number")
}

/// Whether Graphviz's `dot` is on PATH.
fn have_dot() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join("dot").is_file())
}

#[test]
fn report_pages_agree_with_the_specializer() {
    for (case, interpreter) in [(readme_case(), false), (interpreter_case(), true)] {
        let f = figures(&case);
        for graphviz in [false, true] {
            let label = format!("{} {} graphviz={graphviz}", case.0, case.1);
            let (html, _) = report_page(&case, graphviz);
            check_page(&html, &f, &label);
            if graphviz && have_dot() {
                assert!(html.contains("<svg"), "{label}: no graph");
                for a in &f.instructions {
                    assert!(
                        html.contains(&format!("id=\"a_g_{a:x}\"")),
                        "{label}: {a:#x} not in the graph"
                    );
                }
            } else {
                assert!(!html.contains("<svg"), "{label}");
                assert!(html.contains("class=\"nograph\""), "{label}");
            }
            if graphviz && !have_dot() {
                eprintln!("dot is not on PATH: the graph of the page is not checked");
            }
            // The same input gives the same page, but for the time.
            let (again, _) = report_page(&case, graphviz);
            assert_eq!(without_time(&again), without_time(&html), "{label}");
            if interpreter {
                // The interpreter's loop is specialized once per VM
                // instruction: a loop head has several copies.
                let most = f.loop_heads.iter().map(|&h| copies_of(&html, h)).max();
                assert!(most > Some(1), "{label}: loop heads {:x?}", f.loop_heads);
            }
        }
    }
}

/// Headless Chromium, if installed: `/usr/bin/chromium` or `chromium` on
/// PATH.
fn chromium() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/chromium");
    if fixed.is_file() {
        return Some(fixed);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file())
}

/// The DOM of `page` after its script ran, dumped by headless Chromium
/// (killed if it does not finish in time: then the test fails).
fn rendered(chromium: &Path, page: &Path) -> String {
    let scratch = scratch_file("unused", b"");
    let profile = scratch.parent().expect("a directory").join("profile");
    std::fs::create_dir_all(&profile).expect("a profile directory");
    let url = format!(
        "file://{}",
        page.canonicalize().expect("the page").display()
    );
    let user_data = format!("--user-data-dir={}", profile.display());
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        &user_data,
        "--dump-dom",
        &url,
    ];
    let outcome = wiper_run::run(&wiper_run::Invocation {
        path: chromium,
        argv0: None,
        args: &args,
        stdin: b"",
        env: &[],
        timeout: Duration::from_secs(180),
    })
    .expect("run chromium");
    match outcome {
        wiper_run::Outcome::Finished(run) => {
            assert_eq!(run.status.code(), Some(0), "chromium: {}", run.stderr_str());
            run.stdout_str()
        }
        other => panic!("chromium did not finish: {other}"),
    }
}

#[test]
fn report_pages_load_in_chromium_and_their_map_finds_every_target() {
    let Some(chromium) = chromium() else {
        eprintln!("chromium is not installed: skipping the rendering test");
        return;
    };
    for case in [readme_case(), interpreter_case()] {
        let f = figures(&case);
        for graphviz in [false, true] {
            let label = format!("{} {} graphviz={graphviz}", case.0, case.1);
            let (html, path) = report_page(&case, graphviz);
            let from = check_page(&html, &f, &label);
            let dom = rendered(&chromium, &path);
            let check = tags(&dom, "div", "id=\"check\"");
            assert_eq!(check.len(), 1, "{label}: no #check in the rendered page");
            let get = |name: &str| {
                attr(check[0], name).unwrap_or_else(|| panic!("{label}: no {name} in {}", check[0]))
            };
            assert_eq!(get("data-ready"), "1", "{label}: the script did not finish");
            assert_eq!(
                get("data-errors"),
                "0",
                "{label}: {}",
                get("data-error-text")
            );
            let n = f.summary.residual_instructions.to_string();
            assert_eq!(get("data-residual-instructions"), n, "{label}");
            assert_eq!(get("data-linked"), n, "{label}");
            assert_eq!(
                get("data-original-instructions"),
                f.summary.original_instructions.to_string(),
                "{label}"
            );
            assert_eq!(
                get("data-mapped-originals"),
                from.len().to_string(),
                "{label}"
            );
            let cells = if html.contains("<svg") {
                f.instructions.len()
            } else {
                0
            };
            assert_eq!(get("data-svg-cells"), cells.to_string(), "{label}");
        }
    }
}

#[test]
fn a_missing_binary_is_one_error_line() {
    let out = scratch_file("report.html", b"");
    assert_fails(
        &[
            "report",
            "/nonexistent/binary",
            "-f",
            "power",
            "--static",
            "arg1=1",
            "-o",
            path_arg(&out),
        ],
        "cannot read /nonexistent/binary: no such file",
    );
}

#[test]
fn the_page_never_overwrites_the_input() {
    let original = std::fs::read(testdata_bin("power-O2")).expect("power-O2");
    let input = scratch_file("power-O2", &original);
    for output in [
        input.clone(),
        input.parent().unwrap().join(".").join("power-O2"),
    ] {
        assert_fails(
            &[
                "report",
                path_arg(&input),
                "-f",
                "power",
                "--static",
                "arg1=1",
                "-o",
                path_arg(&output),
            ],
            "refusing to overwrite the input binary",
        );
        assert_eq!(std::fs::read(&input).expect("the input"), original);
    }
}

#[test]
fn bad_specs_and_a_missing_output_are_errors() {
    let bin = testdata_bin("power-O2");
    let out = scratch_file("report.html", b"");
    assert_fails(
        &[
            "report",
            path_arg(&bin),
            "-f",
            "power",
            "--static",
            "arg-1=3",
            "-o",
            path_arg(&out),
        ],
        "invalid static spec",
    );
    let run = wiper(&["report", path_arg(&bin), "-f", "power"]);
    assert_eq!(run.status.code(), Some(2));
}
