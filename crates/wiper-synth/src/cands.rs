//! Candidates read off the goal: the original instruction with static
//! operands folded into immediates or its address rewritten ("rewritten"),
//! and single instructions matched against the shape of one location's
//! formula ("direct": `mov r, imm`, `lea r, [b+i*s+d]`, `movzx`, `op r, imm`,
//! `mov [a], r`, `push`, `pop`, …). Every candidate is only a guess: the
//! verifier decides.

use iced_x86::{Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register};
use wiper_qfbv::{ExprId, ExprPool, Op, Sort};
use wiper_sem::{loc_var, Loc, Reg};

use crate::asm::{build, sized, Addr, Opnd};
use crate::spec::Spec;

/// Most rewritten forms of the original tried per goal.
const MAX_REWRITES: usize = 64;

/// The register `e` is the variable of.
pub(crate) fn var_reg(pool: &ExprPool, e: ExprId) -> Option<Reg> {
    match Loc::of_var(pool, pool.as_var(e)?)? {
        Loc::Reg(r) => Some(r),
        _ => None,
    }
}

/// `(register, coefficient)` of a scaled register term `r`, `r*c`, `r<<k`.
fn scaled_reg(pool: &ExprPool, e: ExprId) -> Option<(Reg, u32)> {
    if let Some(r) = var_reg(pool, e) {
        return Some((r, 1));
    }
    let args = pool.args(e);
    match pool.op(e) {
        Op::Mul => Some((var_reg(pool, args[0])?, pool.as_const(args[1])? as u32)),
        Op::Shl => {
            let k = pool.as_const(args[1])?;
            (k <= 3).then_some(())?;
            Some((var_reg(pool, args[0])?, 1 << k))
        }
        _ => None,
    }
}

/// An addressing form computing the 32-bit formula `e` (`c`, `r + c`,
/// `r + r2*s + c`, `r*s + c`, …) without stale registers.
pub(crate) fn decompose(pool: &ExprPool, e: ExprId, stale: u8) -> Option<Addr> {
    if pool.sort(e) != Sort::Bv(32) {
        return None;
    }
    let mut disp = 0u32;
    let mut terms: Vec<(Reg, u32)> = Vec::new();
    let mut stack = vec![e];
    let mut steps = 0;
    while let Some(x) = stack.pop() {
        steps += 1;
        if steps > 16 {
            return None;
        }
        match pool.op(x) {
            Op::Const { val, .. } => disp = disp.wrapping_add(val as u32),
            Op::Add => stack.extend_from_slice(pool.args(x)),
            _ => {
                let (r, k) = scaled_reg(pool, x)?;
                match terms.iter_mut().find(|t| t.0 == r) {
                    Some(t) => t.1 = t.1.wrapping_add(k),
                    None => terms.push((r, k)),
                }
            }
        }
    }
    terms.retain(|t| t.1 != 0);
    if terms.iter().any(|t| stale & 1 << t.0.index() != 0) {
        return None;
    }
    let addr = |base: Option<Reg>, index: Option<(Reg, u32)>| -> Option<Addr> {
        if let Some((r, s)) = index {
            if r == Reg::Esp || !matches!(s, 1 | 2 | 4 | 8) {
                return None;
            }
        }
        Some(Addr {
            base,
            index: index.map(|(r, s)| (r, s as u8)),
            disp,
        })
    };
    match terms.as_slice() {
        [] => addr(None, None),
        [(r, 1)] => addr(Some(*r), None),
        [(r, c @ (2 | 4 | 8))] => addr(None, Some((*r, *c))),
        [(r, c @ (3 | 5 | 9))] => addr(Some(*r), Some((*r, c - 1))),
        [(r1, 1), (r2, 1)] => {
            if *r2 == Reg::Esp {
                addr(Some(*r2), Some((*r1, 1)))
            } else {
                addr(Some(*r1), Some((*r2, 1)))
            }
        }
        [(r1, 1), (r2, c)] | [(r2, c), (r1, 1)] => addr(Some(*r1), Some((*r2, *c))),
        _ => None,
    }
}

/// The operands of `ins` as [`Opnd`]s (immediates at their operand width).
fn operands(ins: &Instruction) -> Option<Vec<Opnd>> {
    (0..ins.op_count())
        .map(|i| {
            Some(match ins.op_kind(i) {
                OpKind::Register => {
                    let r = ins.op_register(i);
                    (r.is_gpr8() || r.is_gpr16() || r.is_gpr32()).then_some(Opnd::R(r))?
                }
                OpKind::Memory => Opnd::M(Addr::of(ins)?, ins.memory_size().size() as u32 * 8),
                OpKind::Immediate8 => Opnd::I(ins.immediate(i) as u32 & 0xff),
                OpKind::Immediate16 | OpKind::Immediate8to16 => {
                    Opnd::I(ins.immediate(i) as u32 & 0xffff)
                }
                OpKind::Immediate32 | OpKind::Immediate8to32 => Opnd::I(ins.immediate(i) as u32),
                _ => return None,
            })
        })
        .collect()
}

/// The value of (a part of) a static register, if `r`'s full register is
/// listed in `statics`.
fn static_part(spec: &Spec, r: Register) -> Option<u32> {
    let full = Reg::from_iced(r)?;
    let v = spec.statics.iter().find(|s| s.0 == full)?.1;
    Some(match r.size() {
        4 => v,
        2 => v & 0xffff,
        _ if full.high_byte() == Some(r) => (v >> 8) & 0xff,
        _ => v & 0xff,
    })
}

/// Immediates of `width` bits worth trying.
fn immediates(spec: &Spec, width: u32, first: Option<u32>) -> Vec<Opnd> {
    let mut out: Vec<Opnd> = first.into_iter().map(Opnd::I).collect();
    for &(v, w) in &spec.consts {
        let v = if w == width {
            v
        } else if w == 32 && width < 32 && spec.statics.iter().any(|s| s.1 == v) {
            v & ((1u32 << width) - 1)
        } else {
            continue;
        };
        if !out.contains(&Opnd::I(v)) {
            out.push(Opnd::I(v));
        }
    }
    out
}

/// The original instruction with static register operands replaced by
/// immediates, memory operands replaced by immediates (when the goal shows
/// the loaded value is a constant) or re-addressed through registers that
/// are not stale, in every combination (at most [`MAX_REWRITES`]).
pub(crate) fn rewritten(pool: &ExprPool, spec: &Spec) -> Vec<Instruction> {
    let Some(ins) = spec.original else {
        return Vec::new();
    };
    let Some(ops) = operands(&ins) else {
        return Vec::new();
    };
    let mnemonic = ins.mnemonic();
    if matches!(mnemonic, Mnemonic::Lea) {
        return Vec::new();
    }
    let mut factory = InstructionInfoFactory::new();
    let info = factory.info(&ins);
    let mut alts: Vec<Vec<Opnd>> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let read_only = info.op_access(i as u32) == OpAccess::Read;
        let list = match *op {
            Opnd::R(r) => match Reg::from_iced(r) {
                Some(full) if spec.is_stale(full) && read_only => {
                    immediates(spec, r.size() as u32 * 8, static_part(spec, r))
                }
                _ => vec![*op],
            },
            Opnd::M(a, w) => {
                let mut list = Vec::new();
                if a.regs().all(|r| !spec.is_stale(r)) {
                    list.push(*op);
                }
                let writes = !read_only;
                for acc in &spec.accesses {
                    if acc.size * 8 != w || (writes && !acc.write) {
                        continue;
                    }
                    if let Some(na) = decompose(pool, acc.addr, spec.stale) {
                        if !list.contains(&Opnd::M(na, w)) {
                            list.push(Opnd::M(na, w));
                        }
                    }
                }
                if read_only {
                    list.extend(immediates(spec, w, None));
                }
                list
            }
            Opnd::I(_) => vec![*op],
        };
        alts.push(list);
    }
    let mut out = Vec::new();
    let mut choice = vec![0usize; ops.len()];
    if alts.iter().any(Vec::is_empty) {
        return extra_imul(spec, &ins, &ops);
    }
    loop {
        let picked: Vec<Opnd> = alts.iter().zip(&choice).map(|(l, &c)| l[c]).collect();
        if picked != ops {
            if let Some(new) = reshape(&ins, &picked) {
                if !out.contains(&new) {
                    out.push(new);
                }
            }
        }
        if out.len() >= MAX_REWRITES {
            break;
        }
        let mut i = ops.len();
        let done = loop {
            if i == 0 {
                break true;
            }
            i -= 1;
            choice[i] += 1;
            if choice[i] < alts[i].len() {
                break false;
            }
            choice[i] = 0;
        };
        if done {
            break;
        }
    }
    out.extend(extra_imul(spec, &ins, &ops));
    out
}

/// `imul r, src` with `r` static: `imul r, src, value(r)`.
fn extra_imul(spec: &Spec, ins: &Instruction, ops: &[Opnd]) -> Vec<Instruction> {
    if ins.mnemonic() != Mnemonic::Imul || ops.len() != 2 {
        return Vec::new();
    }
    let (Opnd::R(d), src) = (ops[0], ops[1]) else {
        return Vec::new();
    };
    let Some(v) = static_part(spec, d) else {
        return Vec::new();
    };
    let src_ok = match src {
        Opnd::R(s) => Reg::from_iced(s).is_some_and(|s| !spec.is_stale(s)),
        Opnd::M(a, _) => a.regs().all(|r| !spec.is_stale(r)),
        Opnd::I(_) => false,
    };
    if !src_ok {
        return Vec::new();
    }
    build("Imul", &[Opnd::R(d), src, Opnd::I(v)])
        .into_iter()
        .collect()
}

/// The instruction `ins` with operands `ops`, adapting the form where an
/// immediate takes a register's or memory operand's place.
fn reshape(ins: &Instruction, ops: &[Opnd]) -> Option<Instruction> {
    let mn = format!("{:?}", ins.mnemonic());
    match (ins.mnemonic(), ops) {
        (Mnemonic::Imul, [d, Opnd::I(c)]) => build("Imul", &[*d, *d, Opnd::I(*c)]),
        (Mnemonic::Push, [Opnd::I(c)]) => build("Pushd", &[Opnd::I(*c)]),
        (Mnemonic::Movzx, [d @ Opnd::R(_), Opnd::I(c)]) => build("Mov", &[*d, Opnd::I(*c)]),
        (Mnemonic::Movsx, [d @ Opnd::R(_), Opnd::I(c)]) => {
            let from = match ins.op_kind(1) {
                OpKind::Register => ins.op_register(1).size() as u32 * 8,
                _ => ins.memory_size().size() as u32 * 8,
            };
            let v = if from < 32 && c >> (from - 1) & 1 == 1 {
                c | !((1u32 << from) - 1)
            } else {
                *c
            };
            build("Mov", &[*d, Opnd::I(v)])
        }
        _ => build(&mn, ops),
    }
}

/// Single instructions matched against one location's goal formula.
pub(crate) fn direct(pool: &mut ExprPool, spec: &Spec) -> Vec<Instruction> {
    let mut out: Vec<Instruction> = Vec::new();
    let mut add = |i: Option<Instruction>| {
        if let Some(i) = i {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    };
    let ok = |r: Reg| !spec.is_stale(r);
    for r in Reg::ALL {
        if spec.changed_regs & 1 << r.index() == 0 {
            continue;
        }
        let Some(v) = spec.reg_goal[r.index()] else {
            continue;
        };
        for i in register_forms(pool, spec, r, v) {
            add(Some(i));
        }
    }
    // Push and pop.
    let esp = loc_var(pool, Loc::Reg(Reg::Esp));
    let esp_goal = spec.reg_goal[Reg::Esp.index()].unwrap_or(esp);
    let m4 = pool.bv(0xffff_fffc, 32);
    let p4 = pool.bv(4, 32);
    let below = pool.add(esp, m4);
    let above = pool.add(esp, p4);
    let mem = loc_var(pool, Loc::Mem);
    if esp_goal == below && pool.op(spec.mem_goal) == Op::Store {
        let a = pool.args(spec.mem_goal).to_vec();
        if a[0] == mem && a[1] == below && pool.sort(a[2]) == Sort::Bv(32) {
            if let Some(c) = pool.as_const(a[2]) {
                add(build("Pushd", &[Opnd::I(c as u32)]));
            } else if let Some(s) = var_reg(pool, a[2]).filter(|&s| ok(s)) {
                add(build("Push", &[Opnd::R(s.to_iced())]));
            }
        }
    }
    if esp_goal == above {
        let top = pool.load(mem, esp, 4);
        for r in Reg::ALL {
            if r != Reg::Esp && spec.reg_goal[r.index()] == Some(top) {
                add(build("Pop", &[Opnd::R(r.to_iced())]));
            }
        }
    }
    if spec.mem_changed {
        for i in store_forms(pool, spec) {
            add(Some(i));
        }
    }
    out
}

/// Candidates for register `r := v`.
fn register_forms(pool: &mut ExprPool, spec: &Spec, r: Reg, v: ExprId) -> Vec<Instruction> {
    let mem = loc_var(pool, Loc::Mem);
    let pool: &ExprPool = pool;
    let g = RegGoal {
        pool,
        spec,
        r,
        d: Opnd::R(r.to_iced()),
        v,
        op: pool.op(v),
        args: pool.args(v).to_vec(),
        mem,
    };
    let mut out: Vec<Option<Instruction>> = Vec::new();
    g.value_forms(&mut out);
    g.extend_forms(&mut out);
    g.low_part_forms(&mut out);
    g.high_byte_forms(&mut out);
    g.unary_forms(&mut out);
    g.binary_forms(&mut out);
    out.into_iter().flatten().collect()
}

/// The goal `r := v` that `register_forms`' helpers share.
struct RegGoal<'a> {
    pool: &'a ExprPool,
    spec: &'a Spec,
    /// The register written.
    r: Reg,
    /// `r` as an operand.
    d: Opnd,
    /// Its new value.
    v: ExprId,
    /// The operator of `v`.
    op: Op,
    /// The arguments of `v`.
    args: Vec<ExprId>,
    /// The memory variable.
    mem: ExprId,
}

impl RegGoal<'_> {
    /// Whether register `x` may be read (it is not stale).
    fn ok(&self, x: Reg) -> bool {
        !self.spec.is_stale(x)
    }

    /// The address and bit width of `e` if it is a load from memory.
    fn load_at(&self, e: ExprId) -> Option<(Addr, u32)> {
        let pool = self.pool;
        match pool.op(e) {
            Op::Load(n) if pool.args(e)[0] == self.mem => Some((
                decompose(pool, pool.args(e)[1], self.spec.stale)?,
                u32::from(n) * 8,
            )),
            _ => None,
        }
    }

    /// The readable register (part) `e` is.
    fn part(&self, e: ExprId) -> Option<Register> {
        reg_part(self.pool, e).filter(|s| Reg::from_iced(*s).is_some_and(|x| self.ok(x)))
    }

    /// Whether `e` is `r` itself.
    fn is_r(&self, e: ExprId) -> bool {
        var_reg(self.pool, e) == Some(self.r)
    }

    /// Whole-register values: a constant, a register copy, an address
    /// (`add`/`sub`/`inc`/`dec`/`lea`) and a 32-bit load.
    fn value_forms(&self, out: &mut Vec<Option<Instruction>>) {
        let (pool, spec, r, d, v) = (self.pool, self.spec, self.r, self.d, self.v);
        if let Some(c) = pool.as_const(v) {
            if c == 0 {
                out.push(build("Xor", &[d, d]));
            }
            out.push(build("Mov", &[d, Opnd::I(c as u32)]));
        }
        if let Some(s) = var_reg(pool, v).filter(|&s| self.ok(s)) {
            out.push(build("Mov", &[d, Opnd::R(s.to_iced())]));
        }
        if let Some(a) = decompose(pool, v, spec.stale) {
            if a.base == Some(r) && a.index.is_none() {
                let c = a.disp;
                out.push(build("Add", &[d, Opnd::I(c)]));
                out.push(build("Sub", &[d, Opnd::I(c.wrapping_neg())]));
                if c == 1 {
                    out.push(build("Inc", &[d]));
                }
                if c == u32::MAX {
                    out.push(build("Dec", &[d]));
                }
            }
            if a.disp == 0 && a.base == Some(r) {
                if let Some((i, 1)) = a.index {
                    out.push(build("Add", &[d, Opnd::R(i.to_iced())]));
                }
            }
            if a.disp == 0 && a.index == Some((r, 1)) {
                if let Some(b) = a.base {
                    out.push(build("Add", &[d, Opnd::R(b.to_iced())]));
                }
            }
            out.push(build("Lea", &[d, Opnd::M(a, 32)]));
        }
        if let Some((a, 32)) = self.load_at(v) {
            out.push(build("Mov", &[d, Opnd::M(a, 32)]));
        }
    }

    /// Extensions of a narrow load or register part, and `and` for the low
    /// bits of `r` itself.
    fn extend_forms(&self, out: &mut Vec<Option<Instruction>>) {
        let (pool, r, d, op) = (self.pool, self.r, self.d, self.op);
        if !matches!(op, Op::ZeroExt(32) | Op::SignExt(32)) {
            return;
        }
        let mn = if matches!(op, Op::ZeroExt(_)) {
            "Movzx"
        } else {
            "Movsx"
        };
        let x = self.args[0];
        if let Some((a, w @ (8 | 16))) = self.load_at(x) {
            out.push(build(mn, &[d, Opnd::M(a, w)]));
        }
        if let Some(src) = self.part(x) {
            out.push(build(mn, &[d, Opnd::R(src)]));
        }
        // `and r, 2^k-1` for the low bits of r itself.
        if mn == "Movzx"
            && pool.op(x)
                == (Op::Extract {
                    hi: pool.width(x) - 1,
                    lo: 0,
                })
            && var_reg(pool, pool.args(x)[0]) == Some(r)
        {
            let mask = (1u64 << pool.width(x)) - 1;
            out.push(build("And", &[d, Opnd::I(mask as u32)]));
        }
    }

    /// A write of the low byte or word.
    fn low_part_forms(&self, out: &mut Vec<Option<Instruction>>) {
        let (pool, r) = (self.pool, self.r);
        if self.op != Op::Concat {
            return;
        }
        let (hi, lo) = (self.args[0], self.args[1]);
        let w = pool.width(lo);
        if pool.op(hi) == (Op::Extract { hi: 31, lo: w }) && self.is_r(pool.args(hi)[0]) {
            if let Some(dn) = sized(r, w) {
                let dn = Opnd::R(dn);
                if let Some(c) = pool.as_const(lo) {
                    out.push(build("Mov", &[dn, Opnd::I(c as u32)]));
                }
                if let Some(src) = self.part(lo) {
                    out.push(build("Mov", &[dn, Opnd::R(src)]));
                }
                if let Some((a, aw)) = self.load_at(lo) {
                    if aw == w {
                        out.push(build("Mov", &[dn, Opnd::M(a, w)]));
                    }
                }
            }
        }
    }

    /// A write of the high byte: (r[31:16] ++ x) ++ r[7:0].
    fn high_byte_forms(&self, out: &mut Vec<Option<Instruction>>) {
        let (pool, r, args) = (self.pool, self.r, &self.args);
        if !(self.op == Op::Concat && pool.width(args[1]) == 8 && pool.op(args[0]) == Op::Concat) {
            return;
        }
        let (top, x, low) = (pool.args(args[0])[0], pool.args(args[0])[1], args[1]);
        let keeps = |e: ExprId, hi: u32, lo: u32| {
            pool.op(e) == (Op::Extract { hi, lo }) && self.is_r(pool.args(e)[0])
        };
        if pool.width(x) == 8 && keeps(top, 31, 16) && keeps(low, 7, 0) {
            if let Some(h) = r.high_byte() {
                if let Some(c) = pool.as_const(x) {
                    out.push(build("Mov", &[Opnd::R(h), Opnd::I(c as u32)]));
                }
                if let Some(src) = self.part(x) {
                    out.push(build("Mov", &[Opnd::R(h), Opnd::R(src)]));
                }
                if let Some((a, 8)) = self.load_at(x) {
                    out.push(build("Mov", &[Opnd::R(h), Opnd::M(a, 8)]));
                }
            }
        }
    }

    /// `not` and `neg` of `r` itself.
    fn unary_forms(&self, out: &mut Vec<Option<Instruction>>) {
        match self.op {
            Op::Not if self.is_r(self.args[0]) => out.push(build("Not", &[self.d])),
            Op::Neg if self.is_r(self.args[0]) => out.push(build("Neg", &[self.d])),
            _ => {}
        }
    }

    /// Binary operations on `r` itself, with a constant, register or memory
    /// source; `imul` from another source; shifts by `cl`.
    fn binary_forms(&self, out: &mut Vec<Option<Instruction>>) {
        let (pool, d, op) = (self.pool, self.d, self.op);
        if !(self.args.len() == 2 && pool.sort(self.v) == Sort::Bv(32)) {
            return;
        }
        let (a, b) = (self.args[0], self.args[1]);
        let Some(mn) = binary_mnemonic(op) else {
            return;
        };
        let shift = matches!(mn, "Shl" | "Shr" | "Sar" | "Rol" | "Ror");
        let commutes = op.is_commutative();
        for (x, y) in [(a, b), (b, a)] {
            if !self.is_r(x) || (x == b && !commutes) {
                continue;
            }
            if let Some(c) = pool.as_const(y) {
                let c = c as u32;
                if mn == "Imul" {
                    out.push(build("Imul", &[d, d, Opnd::I(c)]));
                } else {
                    out.push(build(mn, &[d, Opnd::I(c)]));
                }
            } else if let Some(s) = var_reg(pool, y).filter(|&s| self.ok(s)) {
                if !shift {
                    out.push(build(mn, &[d, Opnd::R(s.to_iced())]));
                }
            } else if let Some((at, 32)) = self.load_at(y) {
                if !shift {
                    out.push(build(mn, &[d, Opnd::M(at, 32)]));
                }
            }
        }
        if op == Op::Mul {
            self.imul_forms(out);
        }
        if shift {
            self.shift_by_cl_forms(mn, out);
        }
    }

    /// `imul r, src, c` with another source (register or memory).
    fn imul_forms(&self, out: &mut Vec<Option<Instruction>>) {
        let (pool, d) = (self.pool, self.d);
        let (a, b) = (self.args[0], self.args[1]);
        if let Some(c) = pool.as_const(b) {
            if let Some(s) = var_reg(pool, a).filter(|&s| self.ok(s) && s != self.r) {
                out.push(build("Imul", &[d, Opnd::R(s.to_iced()), Opnd::I(c as u32)]));
            }
            if let Some((at, 32)) = self.load_at(a) {
                out.push(build("Imul", &[d, Opnd::M(at, 32), Opnd::I(c as u32)]));
            }
        }
    }

    /// Shifts and rotates of `r` by a count computed from ecx.
    fn shift_by_cl_forms(&self, mn: &str, out: &mut Vec<Option<Instruction>>) {
        let pool = self.pool;
        let (a, b) = (self.args[0], self.args[1]);
        if self.is_r(a)
            && self.r != Reg::Ecx
            && self.ok(Reg::Ecx)
            && pool.as_const(b).is_none()
            && pool
                .vars(b)
                .iter()
                .all(|&v| Loc::of_var(pool, v) == Some(Loc::Reg(Reg::Ecx)))
        {
            out.push(build(mn, &[self.d, Opnd::R(Register::CL)]));
        }
    }
}

/// The two-operand instruction computing `op`, if any.
fn binary_mnemonic(op: Op) -> Option<&'static str> {
    match op {
        Op::Add => Some("Add"),
        Op::Sub => Some("Sub"),
        Op::And => Some("And"),
        Op::Or => Some("Or"),
        Op::Xor => Some("Xor"),
        Op::Mul => Some("Imul"),
        Op::Shl => Some("Shl"),
        Op::Lshr => Some("Shr"),
        Op::Ashr => Some("Sar"),
        Op::Rotl => Some("Rol"),
        Op::Rotr => Some("Ror"),
        _ => None,
    }
}

/// The register (part) `e` is: `r`, `r[7:0]`, `r[15:8]`, `r[15:0]`.
fn reg_part(pool: &ExprPool, e: ExprId) -> Option<Register> {
    if let Some(r) = var_reg(pool, e) {
        return Some(r.to_iced());
    }
    let Op::Extract { hi, lo } = pool.op(e) else {
        return None;
    };
    let r = var_reg(pool, pool.args(e)[0])?;
    match (hi, lo) {
        (7, 0) => sized(r, 8),
        (15, 0) => sized(r, 16),
        (15, 8) => r.high_byte(),
        _ => None,
    }
}

/// Candidates for a memory goal `store(mem, a, v)`.
fn store_forms(pool: &mut ExprPool, spec: &Spec) -> Vec<Instruction> {
    let ok = |x: Reg| !spec.is_stale(x);
    let mem = loc_var(pool, Loc::Mem);
    let g = spec.mem_goal;
    if pool.op(g) != Op::Store || pool.args(g)[0] != mem {
        return Vec::new();
    }
    let (a, v) = (pool.args(g)[1], pool.args(g)[2]);
    let w = pool.width(v);
    let Some(at) = decompose(pool, a, spec.stale) else {
        return Vec::new();
    };
    let m = Opnd::M(at, w);
    let mut out = Vec::new();
    if let Some(c) = pool.as_const(v) {
        out.push(build("Mov", &[m, Opnd::I(c as u32)]));
    }
    if let Some(s) = reg_part(pool, v).filter(|s| Reg::from_iced(*s).is_some_and(ok)) {
        if s.size() as u32 * 8 == w {
            out.push(build("Mov", &[m, Opnd::R(s)]));
        }
    }
    // Read-modify-write of the same bytes.
    let n = (w / 8) as u8;
    let old = pool.load(mem, a, n);
    let args = pool.args(v).to_vec();
    match pool.op(v) {
        Op::Not if args[0] == old => out.push(build("Not", &[m])),
        Op::Neg if args[0] == old => out.push(build("Neg", &[m])),
        op @ (Op::Add | Op::Sub | Op::And | Op::Or | Op::Xor) => {
            let mn = match op {
                Op::Add => "Add",
                Op::Sub => "Sub",
                Op::And => "And",
                Op::Or => "Or",
                _ => "Xor",
            };
            for (x, y) in [(args[0], args[1]), (args[1], args[0])] {
                if x != old || (y == args[0] && !op.is_commutative()) {
                    continue;
                }
                if let Some(c) = pool.as_const(y) {
                    out.push(build(mn, &[m, Opnd::I(c as u32)]));
                } else if let Some(s) =
                    reg_part(pool, y).filter(|s| Reg::from_iced(*s).is_some_and(ok))
                {
                    if s.size() as u32 * 8 == w {
                        out.push(build(mn, &[m, Opnd::R(s)]));
                    }
                }
            }
        }
        _ => {}
    }
    out.into_iter().flatten().collect()
}
