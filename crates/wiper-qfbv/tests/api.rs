//! Pool API: hash-consing, sort errors, variables, traversal helpers,
//! substitution and concrete evaluation.

use std::collections::HashMap;

use wiper_qfbv::{Assignment, EvalError, ExprPool, MemImage, Op, QfbvError, Sort, Value};

#[test]
fn equal_structures_get_equal_ids() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    let a = p.udiv(x, y);
    let b = p.udiv(x, y);
    assert_eq!(a, b);
    assert_ne!(a, p.udiv(y, x));
    assert_eq!(p.var("x", 32), x, "variables are interned by name");
    assert_eq!(p.op(a), Op::Udiv);
    assert_eq!(p.args(a), &[x, y]);
    assert_eq!(p.sort(a), Sort::Bv(32));
}

#[test]
fn checked_construction_reports_sort_errors() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let b = p.var("b", 8);
    let m = p.mem_var("m");
    assert_eq!(p.try_bv(1, 0), Err(QfbvError::BadWidth(0)));
    assert_eq!(p.try_bv(1, 65), Err(QfbvError::BadWidth(65)));
    let err = p.mk(Op::Add, &[x, b]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ill-sorted `bvadd`: operand widths 32 and 8 differ"
    );
    assert!(p.mk(Op::Extract { hi: 32, lo: 0 }, &[x]).is_err());
    assert!(p.mk(Op::Extract { hi: 3, lo: 4 }, &[x]).is_err());
    assert!(p.mk(Op::ZeroExt(16), &[x]).is_err());
    assert!(p.mk(Op::SignExt(65), &[x]).is_err());
    assert!(p.mk(Op::Concat, &[x, x, x]).is_err());
    let xx = p.concat(x, x);
    assert!(p.mk(Op::Concat, &[xx, b]).is_err(), "72 bits");
    assert!(
        p.mk(Op::Ite, &[x, x, x]).is_err(),
        "condition must be 1 bit"
    );
    assert!(
        p.mk(Op::Load(4), &[m, b]).is_err(),
        "address must be 32 bits"
    );
    assert!(p.mk(Op::Load(9), &[m, x]).is_err());
    assert!(p.mk(Op::Load(4), &[x, x]).is_err());
    let c = p.bv(1, 3);
    assert!(p.mk(Op::Store, &[m, x, c]).is_err(), "whole bytes only");
    assert!(p.mk(Op::Eq, &[m, m]).is_err(), "no memory equality terms");
    assert!(
        p.mk(
            Op::Const {
                val: 0x1ff,
                width: 8
            },
            &[]
        )
        .is_ok(),
        "mk masks constants"
    );
    assert!(p
        .mk_raw(
            Op::Const {
                val: 0x1ff,
                width: 8
            },
            &[]
        )
        .is_err());
    assert_eq!(
        p.try_var("x", Sort::Bv(16)),
        Err(QfbvError::VarSortConflict {
            name: "x".into(),
            existing: Sort::Bv(32),
            requested: Sort::Bv(16),
        })
    );
    let err = p.try_var("m", Sort::Bv(8)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "variable `m` already has sort mem, not bv8"
    );
}

#[test]
fn a_pool_is_empty_until_something_is_interned() {
    let mut p = ExprPool::new();
    assert!(p.is_empty());
    assert_eq!(p.len(), 0);
    p.var("x", 32);
    assert!(!p.is_empty());
    assert_eq!(p.len(), 1);
}

#[test]
fn fresh_variables_skip_names_already_taken() {
    let mut p = ExprPool::new();
    // The first candidate name is `t!N` for N the number of variables (here
    // 2), so declaring `t!2` makes the first candidate collide.
    p.var("a", 32);
    p.var("t!2", 32);
    let t = p.fresh_var("t", Sort::Bv(32));
    let name = p.var_name(p.as_var(t).expect("a variable")).to_owned();
    assert_ne!(name, "t!2");
    assert!(name.starts_with("t!"), "{name}");
    assert_eq!(p.declared_vars().count(), 3);
}

#[test]
#[should_panic(expected = "operand widths 32 and 8 differ")]
fn builders_panic_on_width_mismatch() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let b = p.var("b", 8);
    p.add(x, b);
}

#[test]
fn variables_and_helpers() {
    let mut p = ExprPool::new();
    let x = p.var("x", 32);
    let y = p.var("y", 32);
    let m = p.mem_var("m");
    let vx = p.as_var(x).unwrap();
    assert_eq!(p.var_name(vx), "x");
    assert_eq!(p.var_sort(vx), Sort::Bv(32));
    assert_eq!(p.var_expr(vx), x);
    assert_eq!(p.lookup_var("m"), p.as_var(m));
    assert_eq!(p.lookup_var("nope"), None);
    let f1 = p.fresh_var("base", Sort::Bv(32));
    let f2 = p.fresh_var("base", Sort::Bv(32));
    assert_ne!(f1, f2);
    assert_eq!(p.declared_vars().count(), 5);
    let s = p.add(x, y);
    let l = p.load(m, s, 4);
    let e = p.mul(l, s);
    let vars: Vec<&str> = p.vars(e).into_iter().map(|v| p.var_name(v)).collect();
    assert_eq!(vars, ["x", "y", "m"]);
    assert_eq!(p.size(e), 6, "x, y, m, x+y, load, mul");
    assert_eq!(p.depth(e), 3);
    assert_eq!(p.depth(x), 0);
    assert_eq!(p.trunc(x, 8), p.extract(x, 7, 0));
    assert_eq!(p.subterms(&[s]), vec![x, y, s]);
}

#[test]
fn deep_expressions_do_not_overflow_the_stack() {
    let mut p = ExprPool::new();
    let mut e = p.var("x", 32);
    let y = p.var("y", 32);
    for _ in 0..25_000 {
        e = p.xor(e, y);
        e = p.mul(e, y);
    }
    assert_eq!(p.depth(e), 50_000);
    let mut env = Assignment::new();
    env.set_bv(p.lookup_var("x").unwrap(), 3)
        .set_bv(p.lookup_var("y").unwrap(), 1);
    assert!(p.eval(e, &env).is_ok());
    let one = p.bv(1, 32);
    let map = HashMap::from([(p.lookup_var("y").unwrap(), one)]);
    let s = p.subst(e, &map).unwrap();
    let x = p.var("x", 32);
    // (((x ^ 1) * 1) ^ 1) ... an even number of times is x.
    assert_eq!(s, x);
}

#[test]
fn substitution_folds_static_values() {
    let mut p = ExprPool::new();
    let eax = p.var("eax", 32);
    let ebx = p.var("ebx", 32);
    let s = p.add(eax, ebx);
    let two = p.bv(2, 32);
    let e = p.mul(s, two);
    let map = HashMap::from([(p.as_var(ebx).unwrap(), p.bv(5, 32))]);
    let r = p.subst(e, &map).unwrap();
    assert_eq!(p.display(r).to_string(), "(eax + 0x5) * 0x2");
    let map = HashMap::from([
        (p.as_var(eax).unwrap(), p.bv(1, 32)),
        (p.as_var(ebx).unwrap(), p.bv(5, 32)),
    ]);
    let r = p.subst(e, &map).unwrap();
    assert_eq!(p.as_const(r), Some(12));
    // Unchanged sub-terms keep their ids.
    let other = p.var("ecx", 32);
    let map = HashMap::from([(p.as_var(other).unwrap(), two)]);
    assert_eq!(p.subst(e, &map).unwrap(), e);
    // Sort mismatches are errors.
    let b = p.bv(1, 8);
    let map = HashMap::from([(p.as_var(eax).unwrap(), b)]);
    assert!(p.subst(e, &map).is_err());
}

#[test]
fn replacing_a_sub_term() {
    let mut p = ExprPool::new();
    let eax = p.var("eax", 32);
    let ebx = p.var("ebx", 32);
    let s = p.add(eax, ebx);
    let three = p.bv(3, 32);
    let e = p.mul(s, three);
    let e = p.sub(ebx, e);
    // The sum becomes a constant and what contains it is folded again.
    let two = p.bv(2, 32);
    let r = p.replace(e, s, two).unwrap();
    assert_eq!(p.display(r).to_string(), "ebx - 0x6");
    // A term that does not occur leaves the expression as it is.
    let other = p.var("ecx", 32);
    assert_eq!(p.replace(e, other, two).unwrap(), e);
    // Every occurrence is replaced, the variables inside the old term too.
    let r = p.replace(e, s, ebx).unwrap();
    assert!(!p.vars(r).contains(&p.as_var(eax).unwrap()));
    // Sort mismatches are errors.
    let b = p.bv(1, 8);
    assert!(p.replace(e, s, b).is_err());
}

#[test]
fn memory_substitution() {
    let mut p = ExprPool::new();
    let m = p.mem_var("m");
    let a = p.var("a", 32);
    let v = p.var("v", 32);
    let l = p.load(m, a, 4);
    let s = p.store(m, a, v);
    let map = HashMap::from([(p.as_var(m).unwrap(), s)]);
    assert_eq!(p.subst(l, &map).unwrap(), v);
}

fn env_with_memory(p: &ExprPool) -> Assignment {
    let mut env = Assignment::new();
    let bytes = [
        (0x100u32, 0x11u8),
        (0x101, 0x22),
        (0x102, 0x33),
        (0x103, 0x44),
        (0xffff_ffff, 0x99),
        (0, 0x88),
    ]
    .into_iter()
    .collect();
    env.set_mem(
        p.lookup_var("m").unwrap(),
        MemImage {
            bytes,
            default: None,
        },
    );
    env
}

#[test]
fn eval_loads_little_endian_with_wrap_around() {
    let mut p = ExprPool::new();
    let m = p.mem_var("m");
    let env = env_with_memory(&p);
    let a = p.bv(0x100, 32);
    let l = p.load(m, a, 4);
    assert_eq!(
        p.eval(l, &env).unwrap(),
        Value::Bv {
            val: 0x4433_2211,
            width: 32
        }
    );
    let a = p.bv(0xffff_ffff, 32);
    let l = p.load(m, a, 2);
    assert_eq!(p.eval(l, &env).unwrap().as_u64(), Some(0x8899));
}

#[test]
fn eval_stores_then_loads() {
    let mut p = ExprPool::new();
    let m = p.mem_var("m");
    let v = p.var("v", 16);
    let a = p.bv(0x101, 32);
    let s = p.store(m, a, v);
    let b = p.bv(0x100, 32);
    let l = p.mk_raw(Op::Load(4), &[s, b]).unwrap();
    let mut env = env_with_memory(&p);
    env.set_bv(p.lookup_var("v").unwrap(), 0xbeef);
    assert_eq!(p.eval(l, &env).unwrap().as_u64(), Some(0x44be_ef11));
    let Value::Mem(mv) = p.eval(s, &env).unwrap() else {
        panic!()
    };
    assert_eq!(mv.root(), p.lookup_var("m").unwrap());
    assert_eq!(mv.writes().len(), 2);
    assert_eq!(mv.read(&env, 0x102), Some(0xbe));
}

#[test]
fn eval_reports_what_is_missing() {
    let mut p = ExprPool::new();
    let m = p.mem_var("m");
    let x = p.var("x", 32);
    let env = env_with_memory(&p);
    assert_eq!(p.eval(x, &env), Err(EvalError::UnboundVar("x".into())));
    let a = p.bv(0x102, 32);
    let l = p.load(m, a, 4);
    let err = p.eval(l, &env).unwrap_err();
    assert_eq!(
        err,
        EvalError::UnknownByte {
            mem: "m".into(),
            addr: 0x104
        }
    );
    assert_eq!(err.to_string(), "byte 0x104 of memory `m` has no value");
}

#[test]
fn eval_only_takes_the_chosen_branch() {
    let mut p = ExprPool::new();
    let c = p.var("c", 1);
    let x = p.var("x", 32);
    let unknown = p.var("unknown", 32);
    let e = p.ite(c, x, unknown);
    let mut env = Assignment::new();
    env.set_bv(p.lookup_var("c").unwrap(), 1)
        .set_bv(p.lookup_var("x").unwrap(), 0x1_0000_0007);
    assert_eq!(
        p.eval(e, &env).unwrap().as_u64(),
        Some(7),
        "values are masked to the width"
    );
    env.set_bv(p.lookup_var("c").unwrap(), 0);
    assert!(p.eval(e, &env).is_err());
}

#[test]
fn assignment_display() {
    let mut p = ExprPool::new();
    p.var("x", 32);
    p.mem_var("m");
    let env = {
        let mut e = env_with_memory(&p);
        e.set_bv(p.lookup_var("x").unwrap(), 5);
        e
    };
    let text = env.display(&p);
    assert!(
        text.starts_with("x = 0x5, m = {[0x0] = 0x88, [0x100] = 0x11"),
        "{text}"
    );
}
