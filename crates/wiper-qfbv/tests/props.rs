//! Property tests: simplification and substitution preserve concrete values on
//! random expressions and environments.

mod common;

use std::collections::HashMap;

use common::{Gen, BASES};
use proptest::prelude::*;
use wiper_qfbv::{ExprPool, Sort, Value};

const WIDTHS: [u32; 7] = [1, 3, 8, 16, 32, 33, 64];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn simplification_preserves_bitvector_values(seed in any::<u64>()) {
        let mut p = ExprPool::new();
        let mut g = Gen::new(seed, &WIDTHS);
        let w = g.width();
        let raw = g.bv(&mut p, w, 6);
        let simple = p.simplify(raw);
        for _ in 0..4 {
            let env = g.env(&p);
            let want = p.eval(raw, &env).unwrap();
            let got = p.eval(simple, &env).unwrap();
            prop_assert_eq!(
                &want, &got,
                "\nraw:    {}\nsimple: {}\nenv:    {}",
                p.display(raw), p.display(simple), env.display(&p)
            );
        }
    }

    #[test]
    fn simplification_preserves_memory_contents(seed in any::<u64>()) {
        let mut p = ExprPool::new();
        let mut g = Gen::new(seed, &WIDTHS);
        let raw = g.mem(&mut p, 6);
        let simple = p.simplify(raw);
        let env = g.env(&p);
        let (Value::Mem(a), Value::Mem(b)) =
            (p.eval(raw, &env).unwrap(), p.eval(simple, &env).unwrap())
        else {
            panic!("memory expressions evaluate to memories")
        };
        for base in BASES {
            for off in 0..16u64 {
                let addr = base.wrapping_add(off) as u32;
                prop_assert_eq!(
                    a.read(&env, addr), b.read(&env, addr),
                    "byte {:#x}\nraw:    {}\nsimple: {}", addr, p.display(raw), p.display(simple)
                );
            }
        }
    }

    #[test]
    fn simplification_is_idempotent(seed in any::<u64>()) {
        let mut p = ExprPool::new();
        let mut g = Gen::new(seed, &WIDTHS);
        let w = g.width();
        let raw = g.bv(&mut p, w, 6);
        let once = p.simplify(raw);
        prop_assert_eq!(p.simplify(once), once);
    }

    #[test]
    fn substitution_agrees_with_evaluation(seed in any::<u64>()) {
        let mut p = ExprPool::new();
        let mut g = Gen::new(seed, &WIDTHS);
        let w = g.width();
        let e = g.bv(&mut p, w, 6);
        let e = p.simplify(e);
        let env = g.env(&p);
        // Substitute constants for about half of the bit-vector variables.
        let mut map = HashMap::new();
        for v in p.vars(e) {
            if let (Sort::Bv(vw), Some(&val)) = (p.var_sort(v), env.bvs.get(&v)) {
                if g.below(2) == 0 {
                    map.insert(v, p.bv(val, vw));
                }
            }
        }
        let s = p.subst(e, &map).unwrap();
        for v in map.keys() {
            prop_assert!(!p.vars(s).contains(v));
        }
        prop_assert_eq!(p.eval(e, &env).unwrap(), p.eval(s, &env).unwrap());
    }
}
