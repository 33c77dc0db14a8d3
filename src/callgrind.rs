//! Counting executed instructions with valgrind's callgrind: how to run it,
//! and reading its output (the whole run's instructions, and those executed
//! by the calls to one function from outside it). `wiper-bench` and
//! `wiper compare` both count this way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};

/// valgrind's arguments for a callgrind run that writes its counts to
/// `out_file`, in the form [`external_calls`] and [`total`] read; the
/// program and its arguments follow.
pub fn valgrind_args(out_file: &Path) -> Vec<String> {
    vec![
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out_file.display()),
        "--compress-strings=no".to_owned(),
        "--compress-pos=no".to_owned(),
        "--dump-instr=yes".to_owned(),
    ]
}

/// The `valgrind` program found on `PATH`, if there is one.
pub fn valgrind() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("valgrind"))
        .find(|p| p.is_file())
}

/// The instructions a program executed under callgrind, and the run itself.
#[derive(Clone, Debug)]
pub struct Counted {
    /// How the run ended and what it printed.
    pub outcome: wiper_run::Outcome,
    /// Instructions executed by the whole run (callgrind's `Ir` total).
    pub total: u64,
    /// The calls into the target function and their instructions.
    pub function: CallCost,
}

/// Runs `program` with `args` and `stdin` under `valgrind`'s callgrind
/// (killed after `timeout`) and counts its instructions, in total and in
/// the calls of `target`. Callgrind's output goes to a temporary file,
/// removed afterwards.
pub fn count(
    valgrind: &Path,
    program: &Path,
    args: &[&str],
    stdin: &[u8],
    target: &Target,
    timeout: Duration,
) -> Result<Counted> {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out_file =
        std::env::temp_dir().join(format!("wiper-callgrind-{}-{n}.out", std::process::id()));
    let mut argv = valgrind_args(&out_file);
    argv.push(program.display().to_string());
    argv.extend(args.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let outcome = wiper_run::run(&wiper_run::Invocation {
        path: valgrind,
        argv0: None,
        args: &argv,
        stdin,
        env: &[],
        timeout,
    })
    .with_context(|| format!("cannot run {}", valgrind.display()));
    let text = std::fs::read_to_string(&out_file);
    let _ = std::fs::remove_file(&out_file);
    let outcome = outcome?;
    let text = text.with_context(|| format!("no callgrind output for {}", program.display()))?;
    Ok(Counted {
        outcome,
        total: total(&text)?,
        function: external_calls(&text, target)?,
    })
}

/// The instructions executed by the whole run: the first number of the
/// `summary:` (or else `totals:`) line of callgrind's output `text`.
pub fn total(text: &str) -> Result<u64> {
    let events = text.lines().find_map(|l| l.strip_prefix("events:"));
    if events.and_then(|e| e.split_whitespace().next()) != Some("Ir") {
        bail!("the callgrind output has no Ir event");
    }
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .or_else(|| text.lines().find_map(|l| l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| anyhow!("no summary: or totals: line in the callgrind output"))
}

/// What counts as "the function" among callgrind's function names.
///
/// Callgrind names a function by its symbol when it can read the symbols and
/// otherwise by its address (`0x080491c0`); it appends `'2`, `'3`, ... to
/// recursive activations. The function is its `name`, any name starting with
/// `name.` (`power.specialized`, `run_vm.cold`), and any address in `ranges`.
#[derive(Clone, Debug)]
pub struct Target {
    /// The function's symbol name.
    pub name: String,
    /// Address ranges `[start, end)` that belong to the function.
    pub ranges: Vec<(u32, u32)>,
}

impl Target {
    /// The function `name` starting at `entry` in `binary`: its symbols
    /// named `name` or `name.*` (`power.specialized` in a residual binary,
    /// `run_vm.cold`) and its entry byte.
    pub fn of_function(binary: &wiper_elf::Binary, name: &str, entry: u32) -> Target {
        let prefix = format!("{name}.");
        let mut ranges: Vec<(u32, u32)> = binary
            .symbols
            .iter()
            .filter(|s| s.is_code() && (s.name == name || s.name.starts_with(&prefix)))
            .map(|s| (s.addr, s.addr.saturating_add(s.size.max(1))))
            .collect();
        ranges.push((entry, entry.saturating_add(1)));
        Target {
            name: name.to_owned(),
            ranges,
        }
    }

    /// Whether callgrind's function name `fn_name` is the function.
    pub fn matches(&self, fn_name: &str) -> bool {
        let base = strip_recursion(fn_name);
        if base == self.name
            || base
                .strip_prefix(self.name.as_str())
                .is_some_and(|rest| rest.starts_with('.'))
        {
            return true;
        }
        // "0x08049000" or "0x08049000 [PLT]".
        let word = base.split(' ').next().unwrap_or("");
        word.strip_prefix("0x")
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .is_some_and(|a| self.ranges.iter().any(|&(s, e)| s <= a && a < e))
    }
}

/// `name'2` -> `name`: callgrind's suffix for recursive activations.
fn strip_recursion(name: &str) -> &str {
    match name.rsplit_once('\'') {
        Some((base, level)) if !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()) => {
            base
        }
        _ => name,
    }
}

/// The calls into a function from outside it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCost {
    /// Number of calls.
    pub calls: u64,
    /// Instructions executed by them (inclusive cost, `Ir`).
    pub instructions: u64,
}

/// Sums the `calls=` lines of the callgrind output `text` whose callee is
/// `target` and whose caller is not: the number of calls and their inclusive
/// `Ir` cost. Accepts compressed names (`fn=(3) name`, `fn=(3)`) and any
/// `positions:` line; the first event must be `Ir`.
pub fn external_calls(text: &str, target: &Target) -> Result<CallCost> {
    let mut positions = 1;
    let mut saw_events = false;
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut caller: Option<&str> = None;
    let mut callee: Option<&str> = None;
    let mut pending_calls: Option<u64> = None;
    let mut total = CallCost::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        let at = || format!("callgrind output line {}", n + 1);
        if let Some(calls) = pending_calls.take() {
            // The line after `calls=`: positions, then the inclusive costs.
            let cost = match line.split_whitespace().nth(positions) {
                Some(v) => v
                    .parse::<u64>()
                    .map_err(|_| anyhow!("{}: bad cost", at()))?,
                None => 0,
            };
            let caller = caller.ok_or_else(|| anyhow!("{}: calls= outside a function", at()))?;
            let callee = callee.ok_or_else(|| anyhow!("{}: calls= without cfn=", at()))?;
            if target.matches(callee) && !target.matches(caller) {
                total.calls += calls;
                total.instructions += cost;
            }
            continue;
        }
        if let Some(p) = line.strip_prefix("positions:") {
            positions = p.split_whitespace().count();
        } else if let Some(e) = line.strip_prefix("events:") {
            if e.split_whitespace().next() != Some("Ir") {
                bail!("{}: the first event is not Ir", at());
            }
            saw_events = true;
        } else if let Some(name) = line.strip_prefix("fn=") {
            caller = Some(resolve(&mut names, name));
            callee = None;
        } else if let Some(name) = line.strip_prefix("cfn=") {
            callee = Some(resolve(&mut names, name));
        } else if let Some(c) = line.strip_prefix("calls=") {
            let count = c.split_whitespace().next().and_then(|v| v.parse().ok());
            pending_calls = Some(count.ok_or_else(|| anyhow!("{}: bad calls= line", at()))?);
        }
    }
    if !saw_events {
        bail!("no events: line in the callgrind output");
    }
    if pending_calls.is_some() {
        bail!("the callgrind output ends after a calls= line");
    }
    Ok(total)
}

/// A function name, resolving callgrind's name compression: `(id) name`
/// defines `id`, `(id)` refers to it.
fn resolve<'a>(names: &mut HashMap<&'a str, &'a str>, field: &'a str) -> &'a str {
    let field = field.trim();
    let Some(rest) = field.strip_prefix('(') else {
        return field;
    };
    let Some((id, name)) = rest.split_once(')') else {
        return field;
    };
    let name = name.trim();
    if name.is_empty() {
        names.get(id).copied().unwrap_or(field)
    } else {
        names.insert(id, name);
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str, ranges: &[(u32, u32)]) -> Target {
        Target {
            name: name.to_owned(),
            ranges: ranges.to_vec(),
        }
    }

    const HEADER: &str =
        "# callgrind format\nversion: 1\npositions: instr line\nevents: Ir\nsummary: 1000\n\n";

    #[test]
    fn hex_names_and_recursion() {
        // An original binary without readable symbols: main (0x08049000)
        // calls pow_rec (0x080490a0) twice, which recurses into itself.
        let text = format!(
            "{HEADER}fn=0x08049000\n0x8049000 0 5\ncfn=0x080490a0\ncalls=2 0x80490a0 0\n0x8049010 0 300\n\
             cfn=0x080491c0\ncalls=1 0x80491c0 0\n0x8049020 0 40\n\
             fn=0x080490a0\n0x80490a0 0 20\ncfn=0x080490a0'2\ncalls=10 0x80490a0 0\n0x80490b0 0 250\n\
             fn=0x080490a0'2\n0x80490a0 0 200\ncfn=0x080490a0'2\ncalls=8 0x80490a0 0\n0x80490b0 0 180\n"
        );
        let cost = external_calls(&text, &target("pow_rec", &[(0x080490a0, 0x080490f0)])).unwrap();
        assert_eq!(
            cost,
            CallCost {
                calls: 2,
                instructions: 300
            }
        );
    }

    #[test]
    fn tail_jump_to_specialized() {
        // A residual binary: power's entry jumps to power.specialized, which
        // callgrind shows as a call from power; a clone inside the residual
        // code without a symbol is named by its address.
        let text = format!(
            "{HEADER}fn=main\n0x8049000 0 5\ncfn=power\ncalls=200 0x80490a0 0\n0x8049045 0 2000\n\
             cfn=print_int\ncalls=1 0x80491c0 0\n0x804904f 0 88\n\
             fn=power\n0x80490a0 0 200\ncfn=power.specialized\ncalls=200 0x804b000 0\n0x80490a0 0 1800\n\
             fn=power.specialized\n0x804b000 0 1400\ncfn=0x0804b040\ncalls=200 0x804b040 0\n0x804b010 0 400\n\
             fn=0x0804b040\n0x804b040 0 400\ncfn=power.specialized'2\ncalls=1 0x804b000 0\n0x804b050 0 7\n"
        );
        let t = target(
            "power",
            &[(0x080490a0, 0x080490d0), (0x0804b000, 0x0804b100)],
        );
        let cost = external_calls(&text, &t).unwrap();
        assert_eq!(
            cost,
            CallCost {
                calls: 200,
                instructions: 2000
            }
        );
        // Without the residual code's range the clone counts as outside.
        let cost = external_calls(&text, &target("power", &[(0x080490a0, 0x080490d0)])).unwrap();
        assert_eq!(cost.calls, 201);
    }

    #[test]
    fn compressed_names_and_one_position() {
        let text = "events: Ir\nfn=(1) main\n3 5\ncfn=(2) bf\ncalls=3 7\n4 900\n\
                    fn=(2)\n7 300\ncfn=(3) bf_out\ncalls=3 9\n8 30\nfn=(1)\ncfn=(2)\ncalls=1 7\n5 10\n";
        let cost = external_calls(text, &target("bf", &[])).unwrap();
        assert_eq!(
            cost,
            CallCost {
                calls: 4,
                instructions: 910
            }
        );
    }

    #[test]
    fn names() {
        let t = target("run_vm", &[(0x100, 0x180)]);
        for yes in [
            "run_vm",
            "run_vm'2",
            "run_vm.cold",
            "run_vm.specialized'3",
            "0x00000100",
            "0x0000017f [PLT]",
        ] {
            assert!(t.matches(yes), "{yes}");
        }
        for no in [
            "run_vm2",
            "main",
            "0x00000180",
            "(below main)",
            "0xzz",
            "run_vm'",
        ] {
            assert!(!t.matches(no), "{no}");
        }
    }

    #[test]
    fn totals() {
        assert_eq!(total(&format!("{HEADER}fn=main\n1 2 3\n")).unwrap(), 1000);
        assert_eq!(total("events: Ir Dr\nfn=main\ntotals: 77 5\n").unwrap(), 77);
        assert!(total("events: Dr\nsummary: 5\n").is_err());
        assert!(total("events: Ir\nfn=main\n").is_err());
    }

    #[test]
    fn bad_input_is_an_error() {
        let t = target("f", &[]);
        assert!(external_calls("fn=main\n", &t).is_err());
        assert!(external_calls("events: Dr\n", &t).is_err());
        assert!(external_calls("events: Ir\nfn=main\ncfn=f\ncalls=x 1\n1 2\n", &t).is_err());
        assert!(external_calls("events: Ir\nfn=main\ncfn=f\ncalls=1 1\n", &t).is_err());
        assert!(external_calls("events: Ir\ncalls=1 1\n1 2\n", &t).is_err());
    }
}
