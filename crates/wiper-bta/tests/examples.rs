//! The slides' examples: `prod` (static y and n), `power` (static y and n)
//! and `a + b[n]` (static v), classified listings held as snapshots, and
//! the slides' classification of `prod` checked part by part.

mod common;

use common::{bt, run};
use wiper_bta::{AbstractLoc, BindingTime, StaticRead};

fn listing(bin: &str, function: &str, spec: &str) -> String {
    let (b, a) = run(bin, function, spec);
    wiper_bta::render::listing(&b, &a)
}

#[test]
fn snapshots() {
    for opt in ["O0", "O2"] {
        let cases = [
            ("prod", "prod", "arg1=1 arg2=3"),
            ("power", "power", "arg1=1 arg2=2"),
            ("abn", "abn", "arg1=1"),
        ];
        for (prog, f, spec) in cases {
            let bin = format!("{prog}-{opt}");
            insta::assert_snapshot!(format!("{prog}_{opt}"), listing(&bin, f, spec));
        }
    }
}

/// Slides 17-24: `prod(x, y, n)` with y and n static. x and p are dynamic,
/// the loop counter n and its branch static, `x + y` Lifted (y folded in).
#[test]
fn prod_o0_has_the_slides_classification() {
    let (_, a) = run("prod-O0", "prod", "arg1=1 arg2=3");
    let s = |addr, i| bt(&a, addr, i).clone();
    // push ebp: the stack pointer move is static, the saved (unknown) ebp dynamic.
    assert_eq!(s(0x08049020, 0), BindingTime::Static);
    assert_eq!(s(0x08049020, 1), BindingTime::Dynamic);
    // p = 0
    assert_eq!(s(0x08049026, 0), BindingTime::Static);
    // mov edx, x: dynamic; mov eax, y: static
    assert_eq!(s(0x0804902f, 0), BindingTime::Dynamic);
    assert_eq!(s(0x08049032, 0), BindingTime::Static);
    // add eax, edx: x + y, Lifted with y (in eax)
    assert_eq!(
        s(0x08049035, 0),
        BindingTime::Lifted(vec![StaticRead::Reg(wiper_sem::Reg::Eax)])
    );
    // add [ebp-4], eax: p += ..., dynamic
    assert_eq!(s(0x08049037, 0), BindingTime::Dynamic);
    // n--, test, jne: static (the loop is unrolled at specialization time)
    for addr in [0x0804903a, 0x0804903d, 0x08049040, 0x08049043, 0x08049045] {
        assert_eq!(s(addr, 0), BindingTime::Static, "{addr:#x}");
    }
    // return p: dynamic
    assert_eq!(s(0x08049047, 0), BindingTime::Dynamic);
    // the stack pointer stays static through the epilogue
    assert_eq!(s(0x0804904a, 0), BindingTime::Static);
    assert_eq!(s(0x0804904c, 1), BindingTime::Static);
}

/// Slides 30-33: in `a + b[n]` with v static the initialization loop of b
/// is static; the load `b[n]` with a dynamic n is Lifted: it reads the
/// static array (which the specializer must therefore materialize).
#[test]
fn abn_b_of_n_is_lifted_with_the_array() {
    for opt in ["O0", "O1", "O2"] {
        let (_, a) = run(&format!("abn-{opt}"), "abn", "arg1=1");
        let loads: Vec<usize> = a
            .parts
            .iter()
            .filter(|p| {
                a.accesses[p.id.index()].iter().any(|x| {
                    matches!(x.loc, AbstractLoc::StackAny | AbstractLoc::LocalAny)
                        && x.kind == wiper_bta::AccessKind::Read
                })
            })
            .map(|p| p.id.index())
            .collect();
        assert_eq!(loads.len(), 1, "{opt}: one load of b[n]");
        match &a.binding[loads[0]] {
            BindingTime::Lifted(reads) => assert!(
                reads.iter().any(|r| matches!(
                    r,
                    StaticRead::Mem(
                        AbstractLoc::Stack { .. } | AbstractLoc::StackAny | AbstractLoc::LocalAny
                    )
                )),
                "{opt}: {reads:?}"
            ),
            other => panic!("{opt}: b[n] is {other:?}"),
        }
        // Every store into b is static.
        for (i, acc) in a.accesses.iter().enumerate() {
            let stores_b = acc.iter().any(|x| {
                x.kind != wiper_bta::AccessKind::Read
                    && (matches!(x.loc, AbstractLoc::Stack { offset, .. } if offset < -8)
                        || matches!(x.loc, AbstractLoc::StackAny | AbstractLoc::LocalAny))
            });
            if stores_b {
                assert_eq!(
                    a.binding[i],
                    BindingTime::Static,
                    "{opt}: {}",
                    a.parts[i].part.text
                );
            }
        }
    }
}

/// `power(x, y, n)` with y and n static: `x + y` Lifted, the multiply
/// dynamic, the loop control static, at every -O level.
#[test]
fn power_keeps_loop_control_static() {
    for opt in ["O0", "O1", "O2"] {
        let (_, a) = run(&format!("power-{opt}"), "power", "arg1=1 arg2=2");
        for b in common::conditional_branches(&a) {
            assert_eq!(
                a.binding[b],
                BindingTime::Static,
                "{opt}: {}",
                a.parts[b].part.text
            );
        }
        let imul = common::parts_with(&a, "imul");
        assert!(!imul.is_empty());
        for p in imul {
            assert!(!a.binding[p].is_static(), "{opt}: imul is dynamic");
        }
        assert!(
            a.binding
                .iter()
                .any(|b| matches!(b, BindingTime::Lifted(_))),
            "{opt}: x + y is lifted"
        );
        assert!(common::exit_dynamic(&a, "eax"));
    }
}
