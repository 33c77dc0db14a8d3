//! Lifting: one decoded instruction to its decoupled sequence of parts with
//! QFBV formulas. Dispatch is by mnemonic; each family lives in its own
//! module and builds parts through [`Seq`].

mod arith;
mod bits;
mod control;
mod data;
mod exchange;
pub(crate) mod flags;
mod muldiv;
mod opaque;
mod shift;
mod stack;
mod string;

use iced_x86::{Instruction, Mnemonic, OpKind, Register};
use wiper_qfbv::ExprPool;

use crate::codes::is_liftable;
use crate::decouple::{set_flag, Seq};
use crate::loc::Flag;
use crate::part::{Barrier, Lifted};
use crate::SemError;

/// Lifts `ins` (decoded in 32-bit mode) to its decoupled sequence, building
/// the formulas in `pool`.
///
/// A form outside [`crate::supported_codes`] and [`crate::barrier_codes`]
/// (and a supported form with 16-bit addressing or a `repne` prefix on
/// `movs`/`stos`/`lods`) becomes one opaque part ([`crate::Opaque`]) when it
/// falls through; it fails with [`SemError::Unsupported`], naming the
/// reason, when it cannot be passed through (a control transfer, `int`
/// other than `int 0x80`, a write to a segment register other than `fs`
/// and `gs`, ...). A write to `fs` or `gs` is a
/// [`crate::Barrier::SegmentBase`]. A `call`
/// through a `gs`-relative pointer (`call DWORD PTR gs:0x10`) is a system
/// call: a [`crate::Barrier::Syscall`], like `int 0x80`.
pub fn lift(pool: &mut ExprPool, ins: &Instruction) -> Result<Lifted, SemError> {
    if ins.is_invalid() {
        return Err(SemError::Invalid { addr: ins.ip32() });
    }
    let mut seq = Seq::new(pool, ins);
    if ins.mnemonic() == Mnemonic::Int && ins.immediate8() != 0x80 {
        return Err(unsupported(
            ins,
            "only `int 0x80` (a Linux system call) is supported",
        ));
    }
    if ins.mnemonic() == Mnemonic::Mov
        && ins.op0_kind() == iced_x86::OpKind::Register
        && matches!(ins.op0_register(), Register::FS | Register::GS)
    {
        seq.barrier(Barrier::SegmentBase);
        return Ok(Lifted {
            original: *ins,
            parts: seq.finish(),
        });
    }
    if !is_liftable(ins.code()) || !supported_form(ins) {
        opaque::lift(&mut seq).map_err(|reason| unsupported(ins, &reason))?;
        return Ok(Lifted {
            original: *ins,
            parts: seq.finish(),
        });
    }
    use Mnemonic as M;
    match ins.mnemonic() {
        M::Add | M::Adc | M::Sub | M::Sbb | M::Cmp => arith::add_sub(&mut seq),
        M::And | M::Or | M::Xor | M::Test => arith::logic(&mut seq),
        M::Inc | M::Dec | M::Neg | M::Not => arith::unary(&mut seq),
        M::Mov | M::Movzx | M::Movsx | M::Lea => data::mov(&mut seq),
        M::Cbw | M::Cwde | M::Cwd | M::Cdq => data::convert(&mut seq),
        M::Bswap => data::bswap(&mut seq),
        M::Setb
        | M::Seto
        | M::Setno
        | M::Setae
        | M::Sete
        | M::Setne
        | M::Setbe
        | M::Seta
        | M::Sets
        | M::Setns
        | M::Setp
        | M::Setnp
        | M::Setl
        | M::Setge
        | M::Setle
        | M::Setg => data::setcc(&mut seq),
        M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmove
        | M::Cmovne
        | M::Cmovbe
        | M::Cmova
        | M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => data::cmovcc(&mut seq),
        M::Xchg => exchange::xchg(&mut seq),
        M::Xadd => exchange::xadd(&mut seq),
        M::Cmpxchg => exchange::cmpxchg(&mut seq),
        M::Mul | M::Imul | M::Div | M::Idiv => muldiv::lift(&mut seq),
        M::Rol | M::Ror | M::Shl | M::Shr | M::Sar => shift::shift(&mut seq),
        M::Shld | M::Shrd => shift::double(&mut seq),
        M::Bt | M::Bts | M::Btr | M::Btc => bits::bit_test(&mut seq),
        M::Bsf | M::Bsr => bits::bit_scan(&mut seq),
        // glibc's and musl's system calls: `call DWORD PTR gs:0x10`, the
        // kernel's vsyscall entry that the thread's control block holds.
        M::Call if seq.is_mem(0) && ins.memory_segment() == Register::GS => {
            seq.barrier(Barrier::Syscall)
        }
        M::Jmp | M::Call | M::Ret | M::Jecxz => control::transfer(&mut seq),
        M::Push | M::Pop | M::Leave => stack::lift(&mut seq),
        M::Movsb | M::Movsw | M::Movsd => string::lift(&mut seq),
        M::Stosb | M::Stosw | M::Stosd | M::Lodsb | M::Lodsw | M::Lodsd => string::lift(&mut seq),
        M::Scasb | M::Scasw | M::Scasd | M::Cmpsb | M::Cmpsw | M::Cmpsd => string::lift(&mut seq),
        M::Nop | M::Endbr32 => {}
        M::Cld | M::Std | M::Clc | M::Stc | M::Cmc => flag_instruction(&mut seq),
        M::Int => seq.barrier(Barrier::Syscall),
        M::Hlt | M::Ud2 | M::Int3 => seq.barrier(Barrier::Halt),
        _ if ins.is_jcc_short_or_near() => control::transfer(&mut seq),
        m => unreachable!("supported code {:?} with mnemonic {m:?}", ins.code()),
    }
    Ok(Lifted {
        original: *ins,
        parts: seq.finish(),
    })
}

/// The error for an instruction wiper can neither lift nor pass through.
fn unsupported(ins: &Instruction, reason: &str) -> SemError {
    SemError::Unsupported {
        mnemonic: crate::text::mnemonic(ins),
        addr: ins.ip32(),
        reason: reason.to_owned(),
    }
}

/// Restrictions on supported codes: 32-bit addressing, no `fs`/`gs`
/// override on string instructions, and `rep` prefixes only where they
/// mean something.
fn supported_form(ins: &Instruction) -> bool {
    let memory_ok = (0..ins.op_count()).all(|i| match ins.op_kind(i) {
        OpKind::Memory => {
            let gpr32 = |r: Register| r == Register::None || r.is_gpr32();
            gpr32(ins.memory_base()) && gpr32(ins.memory_index())
        }
        _ => true,
    });
    // String instructions address `[esi]` and `es:[edi]` flat.
    let string_segment_ok = !ins.is_string_instruction()
        || !matches!(ins.segment_prefix(), Register::FS | Register::GS);
    let compares = matches!(
        ins.mnemonic(),
        Mnemonic::Cmpsb
            | Mnemonic::Cmpsw
            | Mnemonic::Cmpsd
            | Mnemonic::Scasb
            | Mnemonic::Scasw
            | Mnemonic::Scasd
    );
    let rep_ok = !ins.is_string_instruction() || compares || !ins.has_repne_prefix();
    memory_ok && string_segment_ok && rep_ok
}

/// `cld`, `std`, `clc`, `stc`, `cmc`.
fn flag_instruction(seq: &mut Seq) {
    let (flag, value) = match seq.ins.mnemonic() {
        Mnemonic::Cld => (Flag::Df, Some(false)),
        Mnemonic::Std => (Flag::Df, Some(true)),
        Mnemonic::Clc => (Flag::Cf, Some(false)),
        Mnemonic::Stc => (Flag::Cf, Some(true)),
        _ => (Flag::Cf, None),
    };
    let v = match value {
        Some(b) => seq.pool.bit(b),
        None => {
            let cf = seq.flag(Flag::Cf);
            seq.pool.not(cf)
        }
    };
    seq.whole(vec![set_flag(flag, v)]);
}
