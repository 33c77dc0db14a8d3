//! String instructions `movs`, `stos`, `lods`, `scas`, `cmps` (byte, word,
//! doubleword), with and without `rep`/`repe`/`repne`.
//!
//! Without a prefix, one part moves or compares and one part steps each
//! index register: `lea esi,[esi±n]` (pseudo: `+n` when DF is 0, `-n` when
//! it is 1). For example `movsd` → `mov DWORD PTR es:[edi],DWORD PTR [esi];
//! lea esi,[esi±0x4]; lea edi,[edi±0x4]`.
//!
//! With a prefix the sequence is **one iteration**, a loop in the CFG sense:
//! every part is guarded by `ecx != 0` (printed `if ecx: …`; the location
//! keeps its value when `ecx` is 0), then `if ecx: lea ecx,[ecx-0x1]`
//! decrements the count, and a last part `jrep`/`jrepe`/`jrepne <self>` sets
//! `eip := ite(ecx != 0 [&& zf | && !zf], <this instruction>, <next>)`. The
//! instruction thus branches back to itself until it is done;
//! [`crate::execute`] follows that edge and gives the complete effect.

use iced_x86::{Code, Instruction, MemoryOperand, Mnemonic, Register};
use wiper_qfbv::ExprId;

use super::flags;
use crate::decouple::{set, Seq};
use crate::loc::{loc_var, Loc, Reg};
use crate::part::{Effect, Value};

/// The string operation.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Op {
    Movs,
    Stos,
    Lods,
    Scas,
    Cmps,
}

/// Entry point for the string instructions.
pub(super) fn lift(seq: &mut Seq) {
    use Mnemonic as M;
    let op = match seq.ins.mnemonic() {
        M::Movsb | M::Movsw | M::Movsd => Op::Movs,
        M::Stosb | M::Stosw | M::Stosd => Op::Stos,
        M::Lodsb | M::Lodsw | M::Lodsd => Op::Lods,
        M::Scasb | M::Scasw | M::Scasd => Op::Scas,
        _ => Op::Cmps,
    };
    let w = 8 * seq.ins.memory_size().size() as u32;
    let s = Strings {
        rep: seq.ins.has_rep_prefix() || seq.ins.has_repne_prefix(),
        w,
    };
    s.lift(seq, op);
}

/// Lifting state of one string instruction.
struct Strings {
    /// Whether a `rep`/`repe`/`repne` prefix is present.
    rep: bool,
    /// Element width in bits.
    w: u32,
}

/// `[esi]`, or `es:[edi]`, for native parts.
fn index_mem(reg: Register) -> MemoryOperand {
    let seg = if reg == Register::EDI {
        Register::ES
    } else {
        Register::None
    };
    MemoryOperand::with_base_displ_bcst_seg(reg, 0, false, seg)
}

impl Strings {
    /// The accumulator of the element width.
    fn acc(&self) -> Register {
        match self.w {
            8 => Register::AL,
            16 => Register::AX,
            _ => Register::EAX,
        }
    }

    /// `BYTE PTR`/`WORD PTR`/`DWORD PTR`.
    fn ptr(&self) -> &'static str {
        match self.w {
            8 => "BYTE PTR",
            16 => "WORD PTR",
            _ => "DWORD PTR",
        }
    }

    /// The element at the address in `reg`.
    fn element(&self, seq: &mut Seq, reg: Reg) -> ExprId {
        let a = seq.var(Loc::Reg(reg));
        seq.load(a, self.w)
    }

    /// With `rep`: `ecx == 0`, under which every location keeps its value.
    fn guard(&self, seq: &mut Seq, effects: Vec<Effect>) -> Vec<Effect> {
        if !self.rep {
            return effects;
        }
        let ecx = seq.var(Loc::Reg(Reg::Ecx));
        let zero = seq.pool.zero(32);
        let done = seq.pool.eq(ecx, zero);
        effects
            .into_iter()
            .map(|e| match e.value {
                Value::Expr(v) => {
                    let old = loc_var(seq.pool, e.dst);
                    set(e.dst, seq.pool.ite(done, old, v))
                }
                Value::Undefined => e,
            })
            .collect()
    }

    /// Appends a part: native without `rep`, `if ecx: ` pseudo with it.
    fn emit(&self, seq: &mut Seq, text: String, nat: Option<Instruction>, fx: Vec<Effect>) {
        let fx = self.guard(seq, fx);
        if self.rep {
            seq.part(format!("if ecx: {text}"), None, fx);
        } else {
            match nat {
                Some(n) => seq.native(n, fx),
                None => seq.part(text, None, fx),
            }
        }
    }

    /// `lea reg,[reg±n]`: steps an index register by the element size,
    /// down when DF is set.
    fn step(&self, seq: &mut Seq, reg: Reg) {
        let r = seq.var(Loc::Reg(reg));
        let df = seq.flag(crate::Flag::Df);
        let n = u64::from(self.w / 8);
        let k = seq.pool.bv(n, 32);
        let up = seq.pool.add(r, k);
        let down = seq.pool.sub(r, k);
        let v = seq.pool.ite(df, down, up);
        let name = reg.name();
        let text = crate::text::pseudo("lea", &[name, &format!("[{name}±{n:#x}]")]);
        self.emit(seq, text, None, vec![set(Loc::Reg(reg), v)]);
    }

    fn lift(&self, seq: &mut Seq, op: Op) {
        let acc = self.acc();
        let acc_text = crate::text::register(acc);
        let ptr = self.ptr();
        let (src, dst) = (format!("{ptr} [esi]"), format!("{ptr} es:[edi]"));
        let by_w = |codes: [Code; 3]| match self.w {
            8 => codes[0],
            16 => codes[1],
            _ => codes[2],
        };
        match op {
            Op::Movs => {
                let v = self.element(seq, Reg::Esi);
                let edi = seq.var(Loc::Reg(Reg::Edi));
                let e = seq.store(edi, v);
                let text = crate::text::pseudo("mov", &[&dst, &src]);
                self.emit(seq, text, None, vec![e]);
            }
            Op::Stos => {
                let v = seq.get_reg(acc);
                let edi = seq.var(Loc::Reg(Reg::Edi));
                let e = seq.store(edi, v);
                let code = by_w([Code::Mov_rm8_r8, Code::Mov_rm16_r16, Code::Mov_rm32_r32]);
                let n = Instruction::with2(code, index_mem(Register::EDI), acc).expect("valid");
                let text = crate::text::pseudo("mov", &[&dst, &acc_text]);
                self.emit(seq, text, Some(n), vec![e]);
            }
            Op::Lods => {
                let v = self.element(seq, Reg::Esi);
                let e = seq.set_reg(acc, v);
                let code = by_w([Code::Mov_r8_rm8, Code::Mov_r16_rm16, Code::Mov_r32_rm32]);
                let n = Instruction::with2(code, acc, index_mem(Register::ESI)).expect("valid");
                let text = crate::text::pseudo("mov", &[&acc_text, &src]);
                self.emit(seq, text, Some(n), vec![e]);
            }
            Op::Scas => {
                let a = seq.get_reg(acc);
                let m = self.element(seq, Reg::Edi);
                let (_, fx) = flags::sub(seq.pool, a, m, None);
                let code = by_w([Code::Cmp_r8_rm8, Code::Cmp_r16_rm16, Code::Cmp_r32_rm32]);
                let n = Instruction::with2(code, acc, index_mem(Register::EDI)).expect("valid");
                let text = crate::text::pseudo("cmp", &[&acc_text, &dst]);
                self.emit(seq, text, Some(n), fx);
            }
            Op::Cmps => {
                let a = self.element(seq, Reg::Esi);
                let b = self.element(seq, Reg::Edi);
                let (_, fx) = flags::sub(seq.pool, a, b, None);
                let text = crate::text::pseudo("cmp", &[&src, &dst]);
                self.emit(seq, text, None, fx);
            }
        }
        if matches!(op, Op::Movs | Op::Lods | Op::Cmps) {
            self.step(seq, Reg::Esi);
        }
        if matches!(op, Op::Movs | Op::Stos | Op::Scas | Op::Cmps) {
            self.step(seq, Reg::Edi);
        }
        if self.rep {
            self.repeat(seq, op);
        }
    }

    /// The count decrement and the branch back.
    fn repeat(&self, seq: &mut Seq, op: Op) {
        let ecx = seq.var(Loc::Reg(Reg::Ecx));
        let one = seq.pool.bv(1, 32);
        let dec = seq.pool.sub(ecx, one);
        self.emit(
            seq,
            crate::text::pseudo("lea", &["ecx", "[ecx-0x1]"]),
            None,
            vec![set(Loc::Reg(Reg::Ecx), dec)],
        );
        let ecx = seq.var(Loc::Reg(Reg::Ecx));
        let zero = seq.pool.zero(32);
        let mut more = seq.pool.ne(ecx, zero);
        let compares = matches!(op, Op::Scas | Op::Cmps);
        let name = if !compares {
            "jrep"
        } else {
            let zf = seq.flag(crate::Flag::Zf);
            let (zf, name) = if seq.ins.has_repne_prefix() {
                (seq.pool.not(zf), "jrepne")
            } else {
                (zf, "jrepe")
            };
            more = seq.pool.and(more, zf);
            name
        };
        let me = seq.ins.ip32();
        let this = seq.pool.bv(u64::from(me), 32);
        let next = seq.pool.bv(u64::from(seq.ins.next_ip32()), 32);
        let v = seq.pool.ite(more, this, next);
        seq.pseudo(name, &[&format!("{me:#x}")], vec![set(Loc::Eip, v)]);
    }
}
