//! The benchmark cases: one table of families, each run at -O0, -O1 and -O2.

use std::path::{Path, PathBuf};

/// A benchmarked function with its static inputs and its driver's arguments.
///
/// The drivers are `testdata/bench/FAMILY.c`, built into
/// `testdata/bin/bench/FAMILY-O0`, `-O1`, `-O2` (the original function) and
/// `FAMILY-hand` (the function specialized by hand in C, `gcc -m32 -O2`).
/// Each is run as `BIN REPS DYNARGS...`: it calls the function `REPS` times
/// on fixed inputs and prints an accumulator.
#[derive(Debug)]
pub struct Family {
    /// The driver's name (`testdata/bench/NAME.c`).
    pub name: &'static str,
    /// The function to specialize.
    pub function: &'static str,
    /// The style of code it stands for, in a few words.
    pub style: &'static str,
    /// The `--static` specs (as for `wiper specialize`).
    pub statics: &'static [&'static str],
    /// The driver's arguments after `REPS`.
    pub dynargs: &'static [&'static str],
    /// How many calls the driver makes.
    pub reps: u32,
    /// Whether the function is an interpreter specialized to a static program.
    pub interpreter: bool,
}

/// Every family, in report order.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "power",
        function: "power",
        style: "a loop multiplying by x + y, static trip count",
        statics: &["arg1=3", "arg2=5"],
        dynargs: &["7"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "prod",
        function: "prod",
        style: "a loop adding x + y, static trip count",
        statics: &["arg1=2", "arg2=8"],
        dynargs: &["7"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "abn",
        function: "abn",
        style: "a local array indexed by a static index",
        statics: &["arg2=3"],
        dynargs: &["10", "20"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "nested",
        function: "nested",
        style: "nested loops, the outer bound static",
        statics: &["arg0=4"],
        dynargs: &["6"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "pow_rec",
        function: "pow_rec",
        style: "recursion on a static exponent",
        statics: &["arg1=6"],
        dynargs: &["3"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "dispatch",
        function: "dispatch",
        style: "a switch (jump table) on a static selector",
        statics: &["arg0=9"],
        dynargs: &["5", "9"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "sum_array",
        function: "sum_array",
        style: "a loop over an array of static length",
        statics: &["arg1=8"],
        dynargs: &["1", "2", "3", "4", "5", "6", "7", "8"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "vm_fact",
        function: "run_vm",
        style: "switch-dispatched stack VM, a loop program",
        statics: &["arg0=@i32:1,1,2,6,10,13,7,8,5,7,12,11,3,9,0"],
        dynargs: &["12"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "vm_square",
        function: "run_vm",
        style: "switch-dispatched stack VM, a straight-line program",
        statics: &["arg0=@i32:2,6,5,1,1,3,0"],
        dynargs: &["1234"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "bf_echo",
        function: "bf",
        style: "Brainfuck, brackets scanned at run time",
        statics: &["arg0=@str:,[.,]"],
        dynargs: &["hello,world"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "bf_nested",
        function: "bf",
        style: "Brainfuck, nested loops",
        statics: &["arg0=@str:,[>-[>+<-]<-]>>."],
        dynargs: &["#"],
        reps: 3,
        interpreter: true,
    },
    // The wider benchmark (issue 14): one family per style.
    Family {
        name: "cgvm_fib",
        function: "cg_run",
        style: "computed-goto VM (labels as values), operand stack in memory",
        statics: &["arg0=@bytes:0100010102060b110d0909070803090c050a0a00"],
        dynargs: &["30"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "bf_table",
        function: "bf_table",
        style: "Brainfuck with a bracket table precomputed into a local array",
        statics: &["arg0=@str:,[[->++<]>.[-]<,]"],
        dynargs: &["wiper"],
        reps: 10,
        interpreter: true,
    },
    Family {
        name: "bf_reverse",
        function: "bf",
        style:
            "Brainfuck, brackets scanned at run time, unbalanced loops (head dynamic after them)",
        statics: &["arg0=@str:>,[>,]<[.<]"],
        dynargs: &["hello,world"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "expr",
        function: "eval_expr",
        style: "recursive-descent evaluator over a static expression string",
        statics: &["arg0=@str:(x + 3) * (y - x) + 2 * x * x - 7 * y + 100"],
        dynargs: &["5", "9"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "regex",
        function: "re_match",
        style: "Kernighan-Pike backtracking matcher, static pattern",
        statics: &["arg0=@str:ab*c.*z$"],
        dynargs: &["xyabbbcqqz"],
        reps: 200,
        interpreter: true,
    },
    Family {
        name: "fmt",
        function: "fmt",
        style: "printf-like varargs formatter, static format",
        statics: &["arg1=@str:x: %d, y: %x, s: %s, %d%%"],
        dynargs: &["-17", "255", "hello", "42"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "matvec",
        function: "matvec",
        style: "matrix-vector product, static matrix and sizes, dynamic vector and output pointers",
        statics: &["arg0=@i32:2,0,1,-1,0,3,0,0,5,1,1,-7", "arg1=3", "arg2=4"],
        dynargs: &["1", "2", "3", "4"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "isort",
        function: "isort",
        style: "insertion sort, static size",
        statics: &["arg1=8"],
        dynargs: &["5", "3", "-1", "8", "0", "2", "2", "7"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "bsearch",
        function: "bsearch_tab",
        style: "binary search over a static table",
        statics: &[
            "arg0=@i32:-50,-7,0,3,8,13,21,34,55,89,144,233,377,610,987,1597",
            "arg1=16",
        ],
        dynargs: &["5"],
        reps: 200,
        interpreter: false,
    },
    Family {
        name: "modpow",
        function: "modpow",
        style: "square and multiply, static exponent and modulus",
        statics: &["arg1=12345", "arg2=65521"],
        dynargs: &["7"],
        reps: 200,
        interpreter: false,
    },
];

/// The optimization levels of the original binaries.
pub const LEVELS: [&str; 3] = ["O0", "O1", "O2"];

/// One benchmark case: a family at one optimization level.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The family.
    pub family: &'static Family,
    /// `O0`, `O1` or `O2`.
    pub level: &'static str,
}

impl Case {
    /// The case's name, `FAMILY-LEVEL`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.family.name, self.level)
    }

    /// The original binary in `dir`.
    pub fn original(&self, dir: &Path) -> PathBuf {
        dir.join(self.name())
    }

    /// The hand-specialized binary in `dir`.
    pub fn hand(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}-hand", self.family.name))
    }

    /// The driver's arguments: `REPS DYNARGS...`.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![self.family.reps.to_string()];
        args.extend(self.family.dynargs.iter().map(|a| a.to_string()));
        args
    }
}

/// Every case whose name contains `filter` (all of them without one), in
/// report order.
pub fn cases(filter: Option<&str>) -> Vec<Case> {
    FAMILIES
        .iter()
        .flat_map(|family| LEVELS.iter().map(move |&level| Case { family, level }))
        .filter(|c| filter.map_or(true, |f| c.name().contains(f)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_three_cases_and_filters() {
        assert_eq!(cases(None).len(), 63);
        let names: Vec<String> = cases(Some("vm_")).iter().map(Case::name).collect();
        assert_eq!(
            names,
            [
                "vm_fact-O0",
                "vm_fact-O1",
                "vm_fact-O2",
                "vm_square-O0",
                "vm_square-O1",
                "vm_square-O2",
                "cgvm_fib-O0",
                "cgvm_fib-O1",
                "cgvm_fib-O2"
            ]
        );
        assert!(cases(Some("nothing")).is_empty());
        let c = cases(Some("bf_nested-O1"))[0];
        assert_eq!(c.args(), ["3", "#"]);
        assert_eq!(c.hand(Path::new("d")), Path::new("d/bf_nested-hand"));
    }
}
