//! Concrete evaluation of expressions under an environment that gives
//! variable values, with the same SMT-LIB semantics as the Z3 translation.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::fx::FxHashMap;
use crate::{bv, ExprId, ExprPool, Op, Sort, VarId};

/// The value of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A bit-vector, `val` masked to `width` bits.
    Bv {
        /// The bits.
        val: u64,
        /// The width, 1..=64.
        width: u32,
    },
    /// A memory.
    Mem(MemValue),
}

impl Value {
    /// The bits of a bit-vector value, `None` for memory.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Bv { val, .. } => Some(*val),
            Value::Mem(_) => None,
        }
    }
}

/// A concrete memory: the memory variable it started from plus the bytes
/// written since. Bytes not written are read from the [`Env`]. Cheap to clone.
///
/// Equality is structural (same root, same written bytes), not extensional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemValue {
    root: VarId,
    writes: Arc<BTreeMap<u32, u8>>,
}

impl MemValue {
    /// The memory variable this memory was derived from by stores.
    pub fn root(&self) -> VarId {
        self.root
    }

    /// Bytes written on top of the root memory.
    pub fn writes(&self) -> &BTreeMap<u32, u8> {
        &self.writes
    }

    /// The byte at `addr`: a written byte, else the root's byte from `env`.
    pub fn read(&self, env: &(impl Env + ?Sized), addr: u32) -> Option<u8> {
        self.writes
            .get(&addr)
            .copied()
            .or_else(|| env.mem_byte(self.root, addr))
    }
}

/// Values of variables for [`ExprPool::eval`]. Return `None` for what is
/// unknown; evaluation then fails with an [`EvalError`] only if it needs it.
pub trait Env {
    /// Value of bit-vector variable `var` (extra high bits are masked off).
    fn bv(&self, var: VarId) -> Option<u64>;
    /// Byte at `addr` of memory variable `var`.
    fn mem_byte(&self, var: VarId, addr: u32) -> Option<u8>;
}

/// A sparse memory image: explicit bytes, and a policy for the others.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemImage {
    /// Known bytes.
    pub bytes: BTreeMap<u32, u8>,
    /// Value of every byte not in `bytes`; `None` makes reading one an error.
    pub default: Option<u8>,
}

impl MemImage {
    /// The byte at `addr` under this image's policy.
    pub fn read(&self, addr: u32) -> Option<u8> {
        self.bytes.get(&addr).copied().or(self.default)
    }
}

/// A concrete variable assignment: the plain [`Env`], and the form Z3
/// counterexamples take.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Values of bit-vector variables.
    pub bvs: BTreeMap<VarId, u64>,
    /// Images of memory variables.
    pub mems: BTreeMap<VarId, MemImage>,
}

impl Assignment {
    /// An empty assignment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets bit-vector variable `var` to `val`.
    pub fn set_bv(&mut self, var: VarId, val: u64) -> &mut Self {
        self.bvs.insert(var, val);
        self
    }

    /// Sets memory variable `var` to `image`.
    pub fn set_mem(&mut self, var: VarId, image: MemImage) -> &mut Self {
        self.mems.insert(var, image);
        self
    }

    /// Human-readable form using the variable names of `pool`, e.g.
    /// `eax = 0x5, mem = {[0x10] = 0x1}`.
    pub fn display(&self, pool: &ExprPool) -> String {
        let mut parts: Vec<String> = self
            .bvs
            .iter()
            .map(|(&v, val)| format!("{} = {val:#x}", pool.var_name(v)))
            .collect();
        for (&v, image) in &self.mems {
            let mut s = format!("{} = {{", pool.var_name(v));
            for (i, (addr, byte)) in image.bytes.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(s, "{sep}[{addr:#x}] = {byte:#x}");
            }
            if let Some(d) = image.default {
                let _ = write!(
                    s,
                    "{}else {d:#x}",
                    if image.bytes.is_empty() { "" } else { ", " }
                );
            }
            s.push('}');
            parts.push(s);
        }
        parts.join(", ")
    }
}

impl Env for Assignment {
    fn bv(&self, var: VarId) -> Option<u64> {
        self.bvs.get(&var).copied()
    }

    fn mem_byte(&self, var: VarId, addr: u32) -> Option<u8> {
        self.mems.get(&var)?.read(addr)
    }
}

/// Why evaluation failed: it needed something the environment does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// A bit-vector variable has no value.
    #[error("variable `{0}` has no value")]
    UnboundVar(String),
    /// A byte of a memory variable has no value.
    #[error("byte {addr:#x} of memory `{mem}` has no value")]
    UnknownByte {
        /// Name of the memory variable.
        mem: String,
        /// The address read.
        addr: u32,
    },
}

impl ExprPool {
    /// Evaluates `e` under `env`. Evaluation is demand-driven: only the taken
    /// branch of an `ite` is evaluated, so unknown values in the other branch
    /// do no harm. Each shared sub-term is evaluated once.
    pub fn eval(&self, e: ExprId, env: &(impl Env + ?Sized)) -> Result<Value, EvalError> {
        let mut memo: FxHashMap<ExprId, Value> = FxHashMap::default();
        let mut stack = vec![e];
        while let Some(&top) = stack.last() {
            if memo.contains_key(&top) {
                stack.pop();
                continue;
            }
            let args = self.args(top);
            let needed = match self.op(top) {
                Op::Ite => match memo.get(&args[0]).and_then(Value::as_u64) {
                    None => &args[..1],
                    Some(1) => &args[1..2],
                    Some(_) => &args[2..],
                },
                _ => args,
            };
            let before = stack.len();
            stack.extend(needed.iter().copied().filter(|a| !memo.contains_key(a)));
            if stack.len() == before {
                let v = self.eval_node(top, &memo, env)?;
                memo.insert(top, v);
                stack.pop();
            }
        }
        Ok(memo.remove(&e).expect("root evaluated"))
    }

    /// Evaluates one node whose needed operands are in `memo`.
    fn eval_node(
        &self,
        e: ExprId,
        memo: &FxHashMap<ExprId, Value>,
        env: &(impl Env + ?Sized),
    ) -> Result<Value, EvalError> {
        let args = self.args(e);
        let bits = |i: usize| memo[&args[i]].as_u64().expect("bit-vector operand");
        let mem = |i: usize| match &memo[&args[i]] {
            Value::Mem(m) => m.clone(),
            Value::Bv { .. } => unreachable!("memory operand is a bit-vector"),
        };
        let unknown_byte = |m: &MemValue, addr: u32| EvalError::UnknownByte {
            mem: self.var_name(m.root).to_owned(),
            addr,
        };
        let val = match self.op(e) {
            Op::Var(v) => match self.var_sort(v) {
                Sort::Mem => {
                    return Ok(Value::Mem(MemValue {
                        root: v,
                        writes: Arc::default(),
                    }))
                }
                Sort::Bv(w) => {
                    env.bv(v)
                        .ok_or_else(|| EvalError::UnboundVar(self.var_name(v).to_owned()))?
                        & bv::mask(w)
                }
            },
            Op::Ite => {
                let branch = if bits(0) == 1 { args[1] } else { args[2] };
                return Ok(memo[&branch].clone());
            }
            Op::Load(n) => {
                let (m, addr) = (mem(0), bits(1) as u32);
                let mut v = 0u64;
                for i in 0..u32::from(n) {
                    let a = addr.wrapping_add(i);
                    let byte = m.read(env, a).ok_or_else(|| unknown_byte(&m, a))?;
                    v |= u64::from(byte) << (8 * i);
                }
                v
            }
            Op::Store => {
                let (mut m, addr, v) = (mem(0), bits(1) as u32, bits(2));
                let writes = Arc::make_mut(&mut m.writes);
                for i in 0..self.width(args[2]) / 8 {
                    writes.insert(addr.wrapping_add(i), (v >> (8 * i)) as u8);
                }
                return Ok(Value::Mem(m));
            }
            op => {
                let vals: Vec<(u64, u32)> = (0..args.len())
                    .map(|i| (bits(i), self.width(args[i])))
                    .collect();
                bv::apply(op, &vals).expect("pure bit-vector operator")
            }
        };
        Ok(Value::Bv {
            val,
            width: self.width(e),
        })
    }
}
