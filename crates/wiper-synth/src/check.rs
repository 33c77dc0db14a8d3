//! Cheap refutation before proof: candidates are evaluated with
//! `ExprPool::eval` on a few pseudo-random machine states (and on every
//! counterexample Z3 returned for an earlier candidate of the same goal, as
//! in CEGIS), and only those that agree with the goal on all of them are
//! handed to the prover.

use wiper_qfbv::{Assignment, Env, ExprId, ExprPool, Value, VarId};
use wiper_sem::Loc;
use wiper_x86::Rng;

/// Random states every goal starts with.
pub(crate) const RANDOM_STATES: u64 = 6;
/// Most states per goal (random ones plus counterexamples).
pub(crate) const MAX_STATES: usize = 24;

/// A concrete machine state for evaluation: every variable and memory byte
/// gets a value derived from a seed (registers get edge values such as 0,
/// 1 and all ones a third of the time), except those a counterexample fixes.
#[derive(Clone, Debug)]
pub(crate) struct TestEnv {
    seed: u64,
    fixed: Option<Assignment>,
}

impl TestEnv {
    /// The state of seed `seed`.
    pub fn random(seed: u64) -> Self {
        TestEnv { seed, fixed: None }
    }

    /// A state agreeing with `cex` where it speaks.
    pub fn counterexample(seed: u64, cex: Assignment) -> Self {
        TestEnv {
            seed,
            fixed: Some(cex),
        }
    }
}

impl Env for TestEnv {
    fn bv(&self, var: VarId) -> Option<u64> {
        if let Some(v) = self.fixed.as_ref().and_then(|a| a.bvs.get(&var)) {
            return Some(*v);
        }
        let h = Rng::hash(self.seed ^ Rng::hash(var.index() as u64 + 1));
        Some(match h % 12 {
            0 => 0,
            1 => 1,
            2 => u64::MAX,
            3 => 0x8000_0000,
            4 => (h >> 40) & 0xff,
            _ => h >> 16,
        })
    }

    fn mem_byte(&self, var: VarId, addr: u32) -> Option<u8> {
        if let Some(b) = self
            .fixed
            .as_ref()
            .and_then(|a| a.mems.get(&var))
            .and_then(|m| m.bytes.get(&addr))
        {
            return Some(*b);
        }
        let h = Rng::hash(
            self.seed.rotate_left(17) ^ Rng::hash((var.index() as u64) << 32 | u64::from(addr)),
        );
        Some(h as u8)
    }
}

/// Whether two evaluated values are equal (memories extensionally, over the
/// bytes either wrote).
pub(crate) fn same(env: &TestEnv, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Bv { val: x, .. }, Value::Bv { val: y, .. }) => x == y,
        (Value::Mem(x), Value::Mem(y)) => {
            x.root() == y.root()
                && x.writes()
                    .keys()
                    .chain(y.writes().keys())
                    .all(|&a| x.read(env, a) == y.read(env, a))
        }
        _ => false,
    }
}

/// The test states of one goal and the goal's values on them.
pub(crate) struct Vectors {
    /// The states.
    pub envs: Vec<TestEnv>,
    /// Per state, the goal's value of each target (in `Spec::targets` order).
    pub goal: Vec<Vec<Option<Value>>>,
    /// The targets.
    pub targets: Vec<(Loc, ExprId)>,
    next_seed: u64,
}

impl Vectors {
    /// Random states for the targets, with the goal evaluated on them.
    pub fn new(pool: &ExprPool, targets: Vec<(Loc, ExprId)>, seed: u64) -> Self {
        let mut v = Vectors {
            envs: Vec::new(),
            goal: Vec::new(),
            targets,
            next_seed: seed,
        };
        for _ in 0..RANDOM_STATES {
            let s = v.seed();
            v.add(pool, TestEnv::random(s));
        }
        v
    }

    fn seed(&mut self) -> u64 {
        self.next_seed = Rng::hash(self.next_seed);
        self.next_seed
    }

    /// Adds a state (if there is room).
    pub fn add(&mut self, pool: &ExprPool, env: TestEnv) {
        if self.envs.len() >= MAX_STATES {
            return;
        }
        let vals = self
            .targets
            .iter()
            .map(|&(_, e)| pool.eval(e, &env).ok())
            .collect();
        self.envs.push(env);
        self.goal.push(vals);
    }

    /// Adds a state from a Z3 counterexample.
    pub fn add_counterexample(&mut self, pool: &ExprPool, cex: Assignment) {
        let s = self.seed();
        self.add(pool, TestEnv::counterexample(s, cex));
    }

    /// Whether the candidate's values (in target order) agree with the goal
    /// on every state.
    pub fn agree(&self, pool: &ExprPool, values: &[ExprId]) -> bool {
        for (env, goal) in self.envs.iter().zip(&self.goal) {
            for ((&(_, g), &c), want) in self.targets.iter().zip(values).zip(goal) {
                if g == c {
                    continue;
                }
                let Some(want) = want else { return false };
                match pool.eval(c, env) {
                    Ok(got) if same(env, want, &got) => {}
                    _ => return false,
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_refute_and_keep() {
        let mut p = ExprPool::new();
        let eax = p.var("eax", 32);
        let one = p.bv(1, 32);
        let two = p.bv(2, 32);
        let inc = p.add(eax, one);
        let dbl = p.mul(eax, two);
        let sh = p.shl(eax, one);
        let v = Vectors::new(&p, vec![(Loc::Reg(wiper_sem::Reg::Eax), dbl)], 7);
        assert!(v.agree(&p, &[sh]));
        assert!(!v.agree(&p, &[inc]));
        let m = p.mem_var("mem");
        let esp = p.var("esp", 32);
        let st = p.store(m, esp, eax);
        let four = p.bv(4, 32);
        let a4 = p.add(esp, four);
        let st2 = p.store(m, a4, eax);
        let v = Vectors::new(&p, vec![(Loc::Mem, st)], 1);
        assert!(v.agree(&p, &[st]));
        assert!(!v.agree(&p, &[st2]));
        assert!(!v.agree(&p, &[m]));
    }
}
