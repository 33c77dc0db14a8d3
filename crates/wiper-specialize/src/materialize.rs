//! Materialization: residual code that writes a known value into its machine
//! location (a register, flags, memory bytes, the stack pointer), without
//! changing any other location the residual program relies on.

use iced_x86::{Code, Instruction, MemoryOperand, Register};
use wiper_residual::{Item, Origin};
use wiper_sem::{Flag, Reg};

use crate::state::{Base, Byte, Known, Region, SVal, Store};
use crate::SpecializeError;

fn ins2(code: Code, a: impl Into<Op2>, b: impl Into<Op2>) -> Instruction {
    let r = match (a.into(), b.into()) {
        (Op2::R(x), Op2::R(y)) => Instruction::with2(code, x, y),
        (Op2::R(x), Op2::M(m)) => Instruction::with2(code, x, m),
        (Op2::M(m), Op2::R(y)) => Instruction::with2(code, m, y),
        (Op2::R(x), Op2::I(i)) => Instruction::with2(code, x, i),
        (Op2::M(m), Op2::I(i)) => Instruction::with2(code, m, i),
        _ => unreachable!("unsupported operand combination"),
    };
    r.expect("valid instruction")
}

enum Op2 {
    R(Register),
    M(MemoryOperand),
    I(u32),
}

impl From<Register> for Op2 {
    fn from(r: Register) -> Self {
        Op2::R(r)
    }
}
impl From<MemoryOperand> for Op2 {
    fn from(m: MemoryOperand) -> Self {
        Op2::M(m)
    }
}
impl From<u32> for Op2 {
    fn from(i: u32) -> Self {
        Op2::I(i)
    }
}

/// `[esp + disp]`.
pub fn esp_mem(disp: i32) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::ESP, i64::from(disp))
}

/// `lea esp,[esp+delta]`: moves the machine stack pointer without touching
/// the flags.
pub fn lea_esp(delta: i32) -> Instruction {
    ins2(Code::Lea_r32_m, Register::ESP, esp_mem(delta))
}

/// Collects residual items for one original instruction.
pub struct Emitter<'a> {
    /// The items emitted so far.
    pub items: &'a mut Vec<Item>,
    /// The original address they are for.
    pub address: u32,
    /// Number of materializing instructions emitted.
    pub materialized: usize,
}

impl<'a> Emitter<'a> {
    /// An emitter appending to `items` for the original instruction at
    /// `address`.
    pub fn new(items: &'a mut Vec<Item>, address: u32) -> Self {
        Emitter {
            items,
            address,
            materialized: 0,
        }
    }

    fn push(&mut self, i: Instruction) {
        self.items
            .push(Item::Instr(i, Origin::Materialized(self.address)));
        self.materialized += 1;
    }

    /// Emits an instruction with an explicit origin.
    pub fn emit(&mut self, i: Instruction, origin: Origin) {
        self.items.push(Item::Instr(i, origin));
    }

    /// Moves the machine stack pointer to `stack + target`.
    pub fn set_real_esp(&mut self, store: &mut Store, target: u32) {
        if store.real_esp != target {
            let delta = target.wrapping_sub(store.real_esp) as i32;
            self.items
                .push(Item::Instr(lea_esp(delta), Origin::Glue(self.address)));
            store.real_esp = target;
        }
    }

    /// Lowers the machine stack pointer to `stack + floor` if it is above:
    /// keeps every live frame byte at or above the machine's `esp`.
    pub fn lower_real_esp(&mut self, store: &mut Store, floor: u32) {
        if (floor as i32) < (store.real_esp as i32) {
            self.set_real_esp(store, floor);
        }
    }

    /// Writes a register's known value into it.
    pub fn register(&mut self, store: &mut Store, r: Reg) {
        let Some(k) = store.reg(r) else { return };
        if r == Reg::Esp {
            let esp = store.esp();
            self.set_real_esp(store, esp);
            return;
        }
        if k.synced {
            return;
        }
        self.value_into(store, r.to_iced(), k.value);
        store.set_reg(
            r,
            Some(Known {
                value: k.value,
                synced: true,
            }),
        );
    }

    /// `reg := value` (flags untouched).
    fn value_into(&mut self, store: &mut Store, reg: Register, value: SVal) {
        match value {
            SVal::Const(c) => self.push(ins2(Code::Mov_r32_imm32, reg, c as u32)),
            SVal::Addr(Base::Stack, k) => {
                let d = k.wrapping_sub(store.real_esp) as i32;
                self.push(ins2(Code::Lea_r32_m, reg, esp_mem(d)));
            }
            SVal::Addr(Base::Load, k) => {
                self.items.push(Item::Address {
                    reg,
                    addr: k,
                    origin: Origin::Materialized(self.address),
                });
                self.materialized += 1;
            }
            // wiper-sem adds a segment base only to the addresses of memory
            // accesses, so no register or memory value is relative to one;
            // entry-relative values are always in the machine already (the
            // instructions that compute them are emitted).
            SVal::Addr(Base::Fs | Base::Gs | Base::Entry, _) => {
                unreachable!("materializing {value:?}, which only the machine holds")
            }
        }
    }

    /// Writes the known values of the flags in `mask` that are unsynced.
    pub fn flags(&mut self, store: &mut Store, mask: u8) {
        let mut clear = 0u32;
        let mut set = 0u32;
        for f in Flag::ALL {
            if mask & (1 << f.index()) == 0 {
                continue;
            }
            if let Some(k) = store.flag(f) {
                if !k.synced {
                    clear |= f.eflags_bit();
                    if k.value {
                        set |= f.eflags_bit();
                    }
                    store.flags[f.index()] = Some(Known {
                        value: k.value,
                        synced: true,
                    });
                }
            }
        }
        if clear == 0 {
            return;
        }
        // pushfd; and [esp],~clear; or [esp],set; popfd: only the flags
        // change, and only below the machine's esp is written.
        self.push(Instruction::with(Code::Pushfd));
        self.push(ins2(Code::And_rm32_imm32, esp_mem(0), !clear));
        if set != 0 {
            self.push(ins2(Code::Or_rm32_imm32, esp_mem(0), set));
        }
        self.push(Instruction::with(Code::Popfd));
    }

    /// Writes every unsynced known register but `esp`.
    pub fn all_registers(&mut self, store: &mut Store) {
        self.registers_except(store, Reg::Esp);
    }

    /// Writes every unsynced known register but `esp` and `skip` (a
    /// register no later code reads).
    pub fn registers_except(&mut self, store: &mut Store, skip: Reg) {
        for r in Reg::ALL {
            if r != Reg::Esp && r != skip {
                self.register(store, r);
            }
        }
    }

    /// Writes the unsynced known bytes of `[off, off+len)` in `region`.
    pub fn memory(
        &mut self,
        store: &mut Store,
        region: Region,
        off: u32,
        len: u32,
    ) -> Result<(), SpecializeError> {
        let mut i = 0;
        while i < len {
            let a = off.wrapping_add(i);
            match store.mem.get((region, a)) {
                Some(k) if !k.synced => {
                    self.memory_at(store, region, a)?;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    /// Writes every unsynced known byte of the regions `pick` accepts.
    pub fn all_memory(
        &mut self,
        store: &mut Store,
        pick: impl Fn(Region, u32) -> bool,
    ) -> Result<(), SpecializeError> {
        let keys: Vec<(Region, u32)> = store
            .mem
            .iter()
            .filter(|(k, v)| !v.synced && pick(k.0, k.1))
            .map(|(k, _)| k)
            .collect();
        for (region, a) in keys {
            if store.mem.get((region, a)).is_some_and(|k| !k.synced) {
                self.memory_at(store, region, a)?;
            }
        }
        Ok(())
    }

    /// Writes the unsynced group of bytes around `(region, a)`: a whole
    /// 4-byte value when the bytes form one, else single bytes (a byte of
    /// an address whose other bytes were overwritten is that byte of the
    /// address, computed and shifted down).
    fn memory_at(
        &mut self,
        store: &mut Store,
        region: Region,
        a: u32,
    ) -> Result<(), SpecializeError> {
        let byte = store.mem.get((region, a)).expect("a known byte").value;
        let (start, value, width, shift) = match byte {
            Byte::Part(b, o, idx) => {
                let start = a.wrapping_sub(u32::from(idx));
                let all = (0..4).all(|i| {
                    store
                        .mem
                        .get((region, start.wrapping_add(i)))
                        .map(|k| k.value)
                        == Some(Byte::Part(b, o, i as u8))
                });
                if all {
                    (start, SVal::Addr(b, o), 4, 0)
                } else {
                    (a, SVal::Addr(b, o), 1, 8 * u32::from(idx))
                }
            }
            Byte::Const(c) => {
                // The whole aligned word when its 4 bytes are constants,
                // else this byte alone.
                match store.mem.word((region, a & !3)) {
                    Some(v @ SVal::Const(_)) => (a & !3, v, 4, 0),
                    _ => (a, SVal::Const(u64::from(c)), 1, 0),
                }
            }
        };
        if region == Region::Of(Base::Stack) {
            // The byte must end up at or above the machine's esp (nothing
            // below it is safe, and the scratch pushes use it).
            self.lower_real_esp(store, start);
        }
        self.store_value(store, region, start, value, width, shift);
        for i in 0..width {
            store.mem.mark_synced((region, start.wrapping_add(i)));
        }
        Ok(())
    }

    /// `mov [region+off], value` for 4 bytes, or for 1 byte: the value
    /// shifted right by `shift` bits.
    fn store_value(
        &mut self,
        store: &mut Store,
        region: Region,
        off: u32,
        value: SVal,
        width: u32,
        shift: u32,
    ) {
        let needs_scratch = matches!(value, SVal::Addr(..)) || region == Region::Of(Base::Load);
        if !needs_scratch {
            let c = match value {
                SVal::Const(c) => c as u32,
                _ => unreachable!(),
            };
            let mem = self.operand(store, region, off);
            let code = if width == 4 {
                Code::Mov_rm32_imm32
            } else {
                Code::Mov_rm8_imm8
            };
            let i = if width == 4 {
                ins2(code, mem, c)
            } else {
                Instruction::with2(code, mem, c & 0xff).expect("valid")
            };
            self.push(i);
            return;
        }
        // push eax; [eax := base for a load-relative destination]; value
        // into a scratch; store; pop eax. Only bytes below esp change.
        let scratch = Register::EAX;
        let value_reg = Register::ECX;
        self.push(Instruction::with1(Code::Push_r32, scratch).expect("valid"));
        self.push(Instruction::with1(Code::Push_r32, value_reg).expect("valid"));
        store.real_esp = store.real_esp.wrapping_sub(8);
        self.value_into(store, value_reg, value);
        let mem = match region {
            Region::Of(Base::Load) => {
                self.items.push(Item::Address {
                    reg: scratch,
                    addr: off,
                    origin: Origin::Materialized(self.address),
                });
                MemoryOperand::with_base_displ(scratch, 0)
            }
            _ => self.operand(store, region, off),
        };
        if width == 4 {
            self.push(ins2(Code::Mov_rm32_r32, mem, value_reg));
        } else {
            if shift > 0 {
                // The byte through the stack (`shr` would change flags):
                // push ecx; mov cl, [esp + shift/8]; lea esp, [esp+4].
                self.push(Instruction::with1(Code::Push_r32, value_reg).expect("valid"));
                self.push(ins2(
                    Code::Mov_r8_rm8,
                    Register::CL,
                    esp_mem((shift / 8) as i32),
                ));
                self.push(lea_esp(4));
            }
            self.push(ins2(Code::Mov_rm8_r8, mem, Register::CL));
        }
        self.push(Instruction::with1(Code::Pop_r32, value_reg).expect("valid"));
        self.push(Instruction::with1(Code::Pop_r32, scratch).expect("valid"));
        store.real_esp = store.real_esp.wrapping_add(8);
    }

    /// A memory operand for a stack, absolute or segment-relative location.
    fn operand(&self, store: &Store, region: Region, off: u32) -> MemoryOperand {
        let in_segment = |segment| {
            let none = Register::None;
            MemoryOperand::new(none, none, 1, i64::from(off), 4, false, segment)
        };
        match region {
            Region::Of(Base::Stack) => esp_mem(off.wrapping_sub(store.real_esp) as i32),
            Region::Abs => MemoryOperand::with_displ(u64::from(off), 4),
            Region::Of(Base::Fs) => in_segment(Register::FS),
            Region::Of(Base::Gs) => in_segment(Register::GS),
            Region::Of(Base::Entry) => {
                unreachable!("entry-frame bytes are always written when they are known")
            }
            Region::Of(Base::Load) => unreachable!("load-relative operands need a base register"),
        }
    }
}
