//! Locations: the eight 32-bit general registers, the seven modelled flags,
//! the temporaries of decoupled sequences, memory and EIP; and the formula
//! variable that stands for each of them.

use std::fmt;

use wiper_qfbv::{ExprId, ExprPool, Sort, VarId};

/// The 32-bit general registers: the machine model's one register type.
pub use wiper_x86::Reg;

/// A modelled EFLAGS bit. Each is a separate one-bit location.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// Carry flag.
    Cf,
    /// Parity flag (even parity of the result's low byte).
    Pf,
    /// Auxiliary carry flag (carry out of bit 3).
    Af,
    /// Zero flag.
    Zf,
    /// Sign flag.
    Sf,
    /// Overflow flag.
    Of,
    /// Direction flag (string instructions step down when set).
    Df,
}

impl Flag {
    /// All flags, in the order of [`crate::MachineState::flags`].
    pub const ALL: [Flag; 7] = [
        Flag::Cf,
        Flag::Pf,
        Flag::Af,
        Flag::Zf,
        Flag::Sf,
        Flag::Of,
        Flag::Df,
    ];

    /// The flag's bit in EFLAGS.
    pub fn eflags_bit(self) -> u32 {
        match self {
            Flag::Cf => 0x1,
            Flag::Pf => 0x4,
            Flag::Af => 0x10,
            Flag::Zf => 0x40,
            Flag::Sf => 0x80,
            Flag::Df => 0x400,
            Flag::Of => 0x800,
        }
    }

    /// Position in [`Flag::ALL`] and [`crate::MachineState::flags`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, also the name of the flag's formula variable.
    pub fn name(self) -> &'static str {
        ["cf", "pf", "af", "zf", "sf", "of", "df"][self.index()]
    }

    /// The flag's bit in iced's `RflagsBits` masks (for comparing footprints).
    pub fn rflags_bit(self) -> u32 {
        use iced_x86::RflagsBits as B;
        match self {
            Flag::Cf => B::CF,
            Flag::Pf => B::PF,
            Flag::Af => B::AF,
            Flag::Zf => B::ZF,
            Flag::Sf => B::SF,
            Flag::Of => B::OF,
            Flag::Df => B::DF,
        }
    }
}

/// A temporary: a 32-bit pseudo-register that holds a value between the parts
/// of one decoupled sequence and is dead after it. Printed `t0`, `t1`, …
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Temp(pub u8);

impl fmt::Display for Temp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

/// A location an instruction can read or write.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loc {
    /// A 32-bit general register.
    Reg(Reg),
    /// A one-bit flag.
    Flag(Flag),
    /// A temporary of a decoupled sequence.
    Temp(Temp),
    /// All of memory (one location: the binding-time analysis refines it).
    Mem,
    /// The instruction pointer; assigned only by parts that transfer control.
    Eip,
    /// The base address of the `fs` segment (read-only: writes to segment
    /// registers are unsupported).
    FsBase,
    /// The base address of the `gs` segment: the thread pointer of glibc
    /// and musl on i386.
    GsBase,
    /// Every other piece of machine state (x87, MMX, SSE and AVX registers,
    /// their control and status words, ...) as one location, which only
    /// opaque parts (instructions without formulas) read and write: it keeps
    /// them in order among themselves.
    Fpu,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Reg(r) => f.write_str(r.name()),
            Loc::Flag(fl) => f.write_str(fl.name()),
            Loc::Temp(t) => write!(f, "{t}"),
            Loc::Mem => f.write_str("mem"),
            Loc::Eip => f.write_str("eip"),
            Loc::Fpu => f.write_str("fpu"),
            Loc::FsBase => f.write_str("fs_base"),
            Loc::GsBase => f.write_str("gs_base"),
        }
    }
}

impl Loc {
    /// The sort of the location's formula variable.
    pub fn sort(self) -> Sort {
        match self {
            Loc::Reg(_) | Loc::Temp(_) | Loc::Eip | Loc::Fpu | Loc::FsBase | Loc::GsBase => {
                Sort::Bv(32)
            }
            Loc::Flag(_) => Sort::Bv(1),
            Loc::Mem => Sort::Mem,
        }
    }

    /// The location a formula variable name stands for (`"eax"`, `"zf"`,
    /// `"t3"`, `"mem"`, `"eip"`), or `None` for any other name (for example
    /// the [`undefined_var`] names).
    pub fn from_var_name(name: &str) -> Option<Loc> {
        if let Some(r) = Reg::ALL.iter().find(|r| r.name() == name) {
            return Some(Loc::Reg(*r));
        }
        if let Some(fl) = Flag::ALL.iter().find(|fl| fl.name() == name) {
            return Some(Loc::Flag(*fl));
        }
        match name {
            "mem" => return Some(Loc::Mem),
            "eip" => return Some(Loc::Eip),
            "fpu" => return Some(Loc::Fpu),
            "fs_base" => return Some(Loc::FsBase),
            "gs_base" => return Some(Loc::GsBase),
            _ => {}
        }
        let digits = name.strip_prefix('t')?;
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        digits.parse().ok().map(|n| Loc::Temp(Temp(n)))
    }

    /// The location `var` of `pool` stands for, if it is a location variable.
    pub fn of_var(pool: &ExprPool, var: VarId) -> Option<Loc> {
        let loc = Loc::from_var_name(pool.var_name(var))?;
        (pool.var_sort(var) == loc.sort()).then_some(loc)
    }
}

/// The formula variable of `loc`: registers are 32-bit variables named
/// `eax`…`edi`, flags 1-bit variables `cf`, `pf`, `af`, `zf`, `sf`, `of`, `df`,
/// temporaries 32-bit `t0`, `t1`, …, memory the memory variable `mem`, EIP a
/// 32-bit `eip`, the segment bases 32-bit `fs_base` and `gs_base`, the other
/// machine state a 32-bit `fpu` (a token: no part computes with its value). In a part's formulas it means the location's value before
/// the part.
pub fn loc_var(pool: &mut ExprPool, loc: Loc) -> ExprId {
    match loc {
        Loc::Mem => pool.mem_var("mem"),
        Loc::Temp(t) => pool.var(&t.to_string(), 32),
        _ => {
            let w = loc.sort().width().expect("bit-vector location");
            pool.var(&loc.to_string(), w)
        }
    }
}

/// Prefix of the names of *undefined-value* variables (`?cf`, `?of`, …).
pub const UNDEFINED_PREFIX: char = '?';

/// The variable `?<flag>`: "whatever value the processor leaves in the flag".
///
/// A flag that is undefined on some inputs only (e.g. OF after `shl eax, cl`,
/// undefined unless the count is 0 or 1) gets a formula that yields this
/// variable on those inputs, e.g. `ite(cl & 0x1f == 0, of, ite(… == 1, …, ?of))`.
/// It is a free variable, so Z3 treats the value as unknown; the evaluator
/// reports the flag as undefined when the formula reaches it. A flag undefined
/// on every input is [`crate::Value::Undefined`] instead.
pub fn undefined_var(pool: &mut ExprPool, flag: Flag) -> ExprId {
    pool.var(&format!("{UNDEFINED_PREFIX}{}", flag.name()), 1)
}

/// Whether `var` is an undefined-value variable ([`undefined_var`]).
pub fn is_undefined_var(pool: &ExprPool, var: VarId) -> bool {
    pool.var_name(var).starts_with(UNDEFINED_PREFIX)
}

/// Suffix of the names of *opaque-value* variables (`eax'`, `zf'`, `mem0_64'`).
pub const OPAQUE_SUFFIX: char = '\'';

/// The variable `<name>'` of `width` bits: "the value an opaque instruction
/// computes" for the location `name` (`eax`, `ax`, `zf`, `fpu`, or `memK`
/// for its K-th stored chunk of N bits: `memK_N`). Like an [`undefined_var`] it is free (Z3
/// treats it as unknown), but it is not undefined: the processor computes
/// it, wiper has no formula for it ([`crate::Opaque`]).
pub fn opaque_var(pool: &mut ExprPool, name: &str, width: u32) -> ExprId {
    pool.var(&format!("{name}{OPAQUE_SUFFIX}"), width)
}

/// Whether `var` is an opaque-value variable ([`opaque_var`]).
pub fn is_opaque_var(pool: &ExprPool, var: VarId) -> bool {
    pool.var_name(var).ends_with(OPAQUE_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let mut pool = ExprPool::new();
        let mut locs: Vec<Loc> = Reg::ALL.iter().map(|&r| Loc::Reg(r)).collect();
        locs.extend(Flag::ALL.iter().map(|&f| Loc::Flag(f)));
        locs.extend([
            Loc::Temp(Temp(0)),
            Loc::Temp(Temp(12)),
            Loc::Mem,
            Loc::Eip,
            Loc::Fpu,
            Loc::FsBase,
            Loc::GsBase,
        ]);
        for loc in locs {
            let v = loc_var(&mut pool, loc);
            let var = pool.as_var(v).unwrap();
            assert_eq!(Loc::of_var(&pool, var), Some(loc), "{loc}");
        }
        assert_eq!(Loc::from_var_name("t01"), None);
        assert_eq!(Loc::from_var_name("?cf"), None);
        let u = undefined_var(&mut pool, Flag::Of);
        assert!(is_undefined_var(&pool, pool.as_var(u).unwrap()));
        let o = opaque_var(&mut pool, "ax", 16);
        let o = pool.as_var(o).unwrap();
        assert!(is_opaque_var(&pool, o) && !is_undefined_var(&pool, o));
        assert_eq!(Loc::of_var(&pool, o), None);
        // Neither a location's variable nor an undefined value is opaque.
        let eax = loc_var(&mut pool, Loc::Reg(Reg::Eax));
        assert!(!is_opaque_var(&pool, pool.as_var(eax).unwrap()));
        assert!(!is_opaque_var(&pool, pool.as_var(u).unwrap()));
    }

    #[test]
    fn eflags_bits() {
        assert_eq!(Flag::Of.eflags_bit(), 0x800);
    }
}
