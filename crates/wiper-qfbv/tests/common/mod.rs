//! Deterministic random generator of well-sorted, *unsimplified* expressions
//! (built with `mk_raw`) and of matching environments, shared by the property
//! tests. Driven by a seed so proptest can replay failures.
#![allow(dead_code)]

use std::collections::BTreeMap;

use wiper_qfbv::{Assignment, ExprId, ExprPool, MemImage, Op, Sort};
use wiper_x86::Rng;

/// Every binary operator: first the ones whose operands and result share a width,
/// then `concat` and the comparisons.
#[allow(dead_code)] // not every test file that includes `common` uses it
pub const BINARY_OPS: [Op; 21] = [
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Udiv,
    Op::Urem,
    Op::Sdiv,
    Op::Srem,
    Op::And,
    Op::Or,
    Op::Xor,
    Op::Shl,
    Op::Lshr,
    Op::Ashr,
    Op::Rotl,
    Op::Rotr,
    Op::Concat,
    Op::Eq,
    Op::Ult,
    Op::Ule,
    Op::Slt,
    Op::Sle,
];

/// Address bases that make loads and stores collide often, including ones
/// whose multi-byte accesses wrap around 2^32.
pub const BASES: [u64; 4] = [0x1000, 0x1002, 0xffff_fffc, 0xffff_fffe];

/// Random expression generator (drawing from the machine model's one
/// generator, `wiper_x86::Rng`).
pub struct Gen {
    rng: Rng,
    /// Widths to draw from (extracts, extensions and loads add others).
    pub widths: Vec<u32>,
    /// Largest load/store size in bytes.
    pub max_bytes: u8,
    made: Vec<(u32, ExprId)>,
}

impl Gen {
    /// A generator for `seed` drawing widths from `widths`.
    pub fn new(seed: u64, widths: &[u32]) -> Self {
        Gen {
            rng: Rng::new(seed),
            widths: widths.to_vec(),
            max_bytes: 8,
            made: Vec::new(),
        }
    }

    pub fn next(&mut self) -> u64 {
        self.rng.next_u64()
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    pub fn width(&mut self) -> u32 {
        let ws = self.widths.clone();
        self.pick(&ws)
    }

    /// A value likely to hit corner cases at width `w`.
    pub fn interesting(&mut self, w: u32) -> u64 {
        let m = u64::MAX >> (64 - w);
        let msb = 1u64 << (w - 1);
        let r = self.next();
        let choices = [
            0,
            1,
            2,
            m,
            msb,
            msb - 1,
            u64::from(w - 1),
            u64::from(w),
            u64::from(w) + 1,
            r,
            r & 0xff,
            m - 1,
        ];
        self.pick(&choices) & m
    }

    fn raw(p: &mut ExprPool, op: Op, args: &[ExprId]) -> ExprId {
        p.mk_raw(op, args)
            .unwrap_or_else(|e| panic!("generator built ill-sorted {op:?}: {e}"))
    }

    fn konst(&mut self, p: &mut ExprPool, w: u32) -> ExprId {
        let v = self.interesting(w);
        Self::raw(p, Op::Const { val: v, width: w }, &[])
    }

    fn leaf(&mut self, p: &mut ExprPool, w: u32) -> ExprId {
        if self.chance(40) {
            self.konst(p, w)
        } else {
            let name = format!("{}{w}", self.pick(&["x", "y", "z"]));
            p.var(&name, w)
        }
    }

    /// A 32-bit address: base (+ small offset) most of the time.
    pub fn addr(&mut self, p: &mut ExprPool, depth: u32) -> ExprId {
        if depth > 0 && self.chance(15) {
            return self.bv(p, 32, depth - 1);
        }
        let base = match self.below(4) {
            0 => p.var("p", 32),
            1 => p.var("q", 32),
            _ => {
                let b = self.pick(&BASES);
                Self::raw(p, Op::Const { val: b, width: 32 }, &[])
            }
        };
        let off = self.below(10);
        if off == 0 {
            return base;
        }
        let c = Self::raw(
            p,
            Op::Const {
                val: off,
                width: 32,
            },
            &[],
        );
        Self::raw(p, Op::Add, &[base, c])
    }

    /// A memory expression.
    pub fn mem(&mut self, p: &mut ExprPool, depth: u32) -> ExprId {
        if depth == 0 || self.chance(25) {
            let name = self.pick(&["m0", "m0", "m1"]);
            return p.mem_var(name);
        }
        if self.chance(15) {
            let c = self.bv(p, 1, depth - 1);
            let a = self.mem(p, depth - 1);
            let b = self.mem(p, depth - 1);
            return Self::raw(p, Op::Ite, &[c, a, b]);
        }
        let m = self.mem(p, depth - 1);
        let a = self.addr(p, depth - 1);
        let n = self.sizes();
        let v = self.bv(p, 8 * u32::from(n), depth - 1);
        Self::raw(p, Op::Store, &[m, a, v])
    }

    fn sizes(&mut self) -> u8 {
        let all = [1u8, 2, 4, 8, 3];
        let ok: Vec<u8> = all.into_iter().filter(|&n| n <= self.max_bytes).collect();
        self.pick(&ok)
    }

    /// A bit-vector expression of width `w`.
    pub fn bv(&mut self, p: &mut ExprPool, w: u32, depth: u32) -> ExprId {
        let e = self.bv_node(p, w, depth);
        self.made.push((w, e));
        e
    }

    fn reuse(&mut self, w: u32) -> Option<ExprId> {
        let same: Vec<ExprId> = self.made.iter().filter(|m| m.0 == w).map(|m| m.1).collect();
        (!same.is_empty()).then(|| self.pick(&same))
    }

    fn bv_node(&mut self, p: &mut ExprPool, w: u32, depth: u32) -> ExprId {
        if depth == 0 || self.chance(15) {
            return self.leaf(p, w);
        }
        if self.chance(10) {
            if let Some(e) = self.reuse(w) {
                return e;
            }
        }
        let d = depth - 1;
        // The same-width arithmetic and bitwise operators.
        const BIN: &[Op] = BINARY_OPS.split_at(15).0;
        loop {
            match self.below(13) {
                0 => {
                    let op = self.pick(&[Op::Not, Op::Neg]);
                    let a = self.bv(p, w, d);
                    return Self::raw(p, op, &[a]);
                }
                1 | 2 => {
                    let op = self.pick(BIN);
                    let a = self.bv(p, w, d);
                    let b = if self.chance(50) {
                        self.konst(p, w)
                    } else {
                        self.bv(p, w, d)
                    };
                    return Self::raw(p, op, &[a, b]);
                }
                3 => {
                    // x op x, x op ~x, (x op c1) op c2 and friends.
                    let op = self.pick(BIN);
                    let a = self.bv(p, w, d);
                    let b = match self.below(3) {
                        0 => a,
                        1 => Self::raw(p, Op::Not, &[a]),
                        _ => {
                            let c = self.konst(p, w);
                            let inner = Self::raw(p, op, &[a, c]);
                            let c2 = self.konst(p, w);
                            return Self::raw(p, op, &[inner, c2]);
                        }
                    };
                    return Self::raw(p, op, &[a, b]);
                }
                4 => {
                    let sw = if self.chance(50) {
                        self.width().max(w)
                    } else {
                        w + self.below(u64::from(65 - w)) as u32
                    };
                    let lo = self.below(u64::from(sw - w + 1)) as u32;
                    let a = self.bv(p, sw, d);
                    return Self::raw(p, Op::Extract { hi: lo + w - 1, lo }, &[a]);
                }
                5 if w >= 2 => {
                    let wl = 1 + self.below(u64::from(w - 1)) as u32;
                    let h = self.bv(p, w - wl, d);
                    let l = self.bv(p, wl, d);
                    return Self::raw(p, Op::Concat, &[h, l]);
                }
                6 if w >= 2 => {
                    let from = 1 + self.below(u64::from(w - 1)) as u32;
                    let op = if self.chance(50) {
                        Op::ZeroExt(w)
                    } else {
                        Op::SignExt(w)
                    };
                    let a = self.bv(p, from, d);
                    return Self::raw(p, op, &[a]);
                }
                7 => {
                    let c = self.bv(p, 1, d);
                    let t = self.bv(p, w, d);
                    let e = if self.chance(20) { t } else { self.bv(p, w, d) };
                    return Self::raw(p, Op::Ite, &[c, t, e]);
                }
                8 | 9 if w == 1 => {
                    let op = self.pick(&[Op::Eq, Op::Ult, Op::Ule, Op::Slt, Op::Sle]);
                    let ow = self.width();
                    let a = self.bv(p, ow, d);
                    let b = if self.chance(50) {
                        self.konst(p, ow)
                    } else {
                        self.bv(p, ow, d)
                    };
                    return Self::raw(p, op, &[a, b]);
                }
                10 | 11 if w % 8 == 0 && w / 8 <= u32::from(self.max_bytes) => {
                    let m = self.mem(p, d);
                    let a = self.addr(p, d);
                    return Self::raw(p, Op::Load((w / 8) as u8), &[m, a]);
                }
                12 => return self.leaf(p, w),
                _ => continue,
            }
        }
    }

    /// Values for every variable of `p`: bases for `p`/`q`, corner cases for
    /// the others, and memories with bytes around every base plus a default.
    pub fn env(&mut self, p: &ExprPool) -> Assignment {
        let mut env = Assignment::new();
        let vars: Vec<_> = p.declared_vars().collect();
        for v in vars {
            match p.var_sort(v) {
                Sort::Bv(w) if matches!(p.var_name(v), "p" | "q") && w == 32 => {
                    let b = self.pick(&BASES);
                    env.set_bv(v, b);
                }
                Sort::Bv(w) => {
                    let val = self.interesting(w);
                    env.set_bv(v, val);
                }
                Sort::Mem => {
                    let mut bytes = BTreeMap::new();
                    for &b in &BASES {
                        for off in 0..24u64 {
                            let a = (b.wrapping_add(off) & 0xffff_ffff) as u32;
                            if self.chance(70) {
                                bytes.insert(a, self.next() as u8);
                            }
                        }
                    }
                    let default = Some(self.next() as u8);
                    env.set_mem(v, MemImage { bytes, default });
                }
            }
        }
        env
    }
}
