//! Calls: inlined, specialized as a clone, or kept; recursion and the
//! entry state of a clone.

use iced_x86::{Code, Instruction};
use wiper_residual::{Item, Origin};
use wiper_sem::{Flag, Reg};
use wiper_x86::abi;

use super::block::Next;
use super::exit::ret_slots;
use super::{Frame, Specializer, State, Stop, UNKNOWN_ARGS};
use crate::eval::SExpr;
use crate::function::InstrInfo;
use crate::state::{Base, Byte, Known, Region, SVal, Store, ABI_DIRECTION_FLAG};

impl Specializer<'_> {
    /// Bytes of stack arguments the function at `entry` reads (from the
    /// binding-time analysis; a generous bound if it fails).
    pub(super) fn arg_bytes(&mut self, entry: u32) -> u32 {
        *self.arg_counts.entry(entry).or_insert_with(|| {
            self.bta
                .arg_count(entry)
                .map(|n| abi::ARG_SIZE * n)
                .unwrap_or(UNKNOWN_ARGS)
        })
    }

    /// Control goes to address 0 (an undefined weak function, `call 0` or
    /// `jmp 0` at `addr`), where the original faults: the residual syncs
    /// everything into the machine and makes the same transfer (`code`).
    pub(super) fn fault_at_zero(
        &mut self,
        state: &mut State,
        addr: u32,
        code: Code,
        items: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        self.sync_all(state, addr, UNKNOWN_ARGS, items)?;
        let transfer = Instruction::with_branch(code, 0).expect("a direct transfer to 0");
        items.push(Item::Instr(transfer, Origin::Original(addr)));
        Ok(())
    }

    /// A call: inlined, specialized as a clone, or kept.
    pub(super) fn call(
        &mut self,
        state: &mut State,
        info: &InstrInfo,
        items: &mut Vec<Item>,
    ) -> Result<Next, Stop> {
        let ins = info.instruction;
        let addr = ins.ip32();
        let next = ins.next_ip32();
        let (post, ev) = self.evaluate(&state.store, info);
        let target = match ev.eip {
            Some(SExpr::Known(v)) => Some(self.code_addr(v, addr)?),
            _ => None,
        };
        if target == Some(0) {
            // `CallTarget::Absent`: the original faults here, and the code
            // after the call is what gcc compiled, not what runs. The
            // residual makes the same call, with the machine as the
            // original has it, and ends there.
            self.fault_at_zero(state, addr, Code::Call_rel32_32, items)?;
            return Ok(Next::Exit);
        }
        if target == Some(next) {
            // `call $+5` pushes its own end and goes on there (a way to read
            // `eip`; musl's `_start` calls `_start_c` right after it so):
            // nothing is called, but what it pushed is its return address.
            state.store = post;
            self.run.return_addresses.insert(next);
            return Ok(Next::Continue(next));
        }
        // A call the decoder found never returns (`exit`, `abort`,
        // `__stack_chk_fail`, ...) ends the block as a real call: nothing
        // after it is specialized, and its error paths are not worth
        // inlining. But in a whole program, on its spine (every call on the
        // way here never returns: `_start_c` calling `__libc_start_main`,
        // which calls `main` and then `exit`), such a call is the program
        // itself: it is inlined, within the inlining budget. Off the spine
        // (inside `main`) it is an error exit and stays a call. Code called
        // where no function symbol starts (`_init`) is inlined too.
        let returns = self.call_returns(state.func, addr)?;
        let whole = self.whole_program;
        let spine = whole && state.ctx.iter().all(|f| f.never_returns);
        let internal = target.filter(|t| {
            (returns || spine)
                && !self.kept.contains(t)
                && !self.binary.plt.contains_key(t)
                && (self.binary.function_at(*t).is_some_and(|s| s.addr == *t)
                    || (whole && self.binary.is_executable(*t))
                    || wiper_x86::pc_thunk_register(self.binary, *t).is_some())
                && self.function(*t).is_ok()
        });
        // In a whole program, off its spine, a call whose inlining cannot
        // pay calls the original code instead (see `inlining_pays`).
        let internal = internal.filter(|&t| !whole || spine || self.inlining_pays(state, &post, t));
        if let Some(t) = internal {
            let recursive = t == state.func || state.ctx.iter().any(|f| f.caller == t);
            // A recursive call is inlined when all its arguments are known
            // constants (the recursion then ends at specialization time), or
            // when some are known and the static state progressed since
            // every activation of `t` it is nested in: other known
            // arguments (`n` in `pow(x, n - 1)`), or other known bytes in
            // the frames above that activation (a parser's position in its
            // caller's frame, read through a pointer argument); up to the
            // inlining depth. Otherwise it becomes a call to a clone.
            let nargs = self.arg_bytes(t);
            let esp = post.esp();
            let key = arg_key(&post, esp, nargs);
            let args_known = key.iter().all(|b| matches!(b, Some(Byte::Const(_))));
            // In a whole program, a recursion that repeats after a dynamic
            // branch (musl's `free` through `nontrivial_free`) is under
            // dynamic control: unfolding it follows every path to the
            // depth bound, so it calls a clone instead.
            let dynamic_control = || {
                self.whole_program
                    && activations(state)
                        .iter()
                        .any(|a| a.func == t && a.dyn_at_entry != state.dyn_branches)
            };
            let progresses = || {
                key.iter().any(Option::is_some)
                    && !dynamic_control()
                    && activations(state)
                        .into_iter()
                        .filter(|a| a.func == t)
                        .all(|a| match a.entered_with {
                            Some(h) => h != recursion_fingerprint(&post, a.ret_slot, esp, nargs),
                            None => arg_key(&post, a.ret_slot, nargs) != key,
                        })
            };
            if state.ctx.len() < self.options.max_inline_depth
                && (!recursive || (args_known && !dynamic_control()) || progresses())
            {
                state.store = post;
                self.run.return_addresses.insert(next);
                state.ctx.push(Frame {
                    caller: state.func,
                    callee: t,
                    ret_slot: esp,
                    entered_with: recursion_fingerprint(&state.store, esp, esp, nargs),
                    dyn_at_entry: state.dyn_branches,
                    never_returns: !returns,
                    active_dyn_at_entry: state.active_dyn,
                });
                state.func = t;
                let times = self.times_at_entry(t, &state.store);
                let caller = std::mem::replace(&mut state.times, times);
                state.caller_times.push(caller);
                return Ok(Next::Continue(t));
            }
        }
        // A real call: everything into the machine.
        tracing::trace!(
            "{addr:#x}: call of {target:x?} stays a call (returns: {returns}, internal: {})",
            internal.is_some()
        );
        let args = match internal {
            Some(t) => self.arg_bytes(t),
            None => UNKNOWN_ARGS,
        };
        self.sync_all(state, addr, args, items)?;
        match internal {
            Some(t) => {
                // A clone specialized for what is known at the call.
                let mut clone = self.clone_state(state, t);
                clone.times = self.times_at_entry(t, &clone.store);
                let arrival = self.goto(clone, t)?;
                debug_assert!(arrival.glue.is_empty());
                items.push(Item::CallLabel(arrival.label, Origin::Original(addr)));
            }
            None => {
                let call = match target {
                    Some(t) if ins.code() != Code::Call_rel32_32 => {
                        Instruction::with_branch(Code::Call_rel32_32, u64::from(t)).expect("call")
                    }
                    _ => ins,
                };
                items.push(Item::Instr(call, Origin::Original(addr)));
            }
        }
        if !returns {
            return Ok(Next::Exit);
        }
        self.after_real_call(state, args);
        Ok(Next::Continue(next))
    }

    /// The store after a real call whose callee reads `args` bytes of stack
    /// arguments: `eax`, `ecx`, `edx` and the flags dynamic (the direction
    /// flag clear), the argument area (or, when the frame escaped, the
    /// frame) and known global memory forgotten.
    pub(super) fn after_real_call(&mut self, state: &mut State, args: u32) {
        for r in abi::CALLER_SAVED {
            state.store.set_dynamic(r, None);
        }
        state.store.flags = [None; 7];
        state.store.flags[Flag::Df.index()] = Some(ABI_DIRECTION_FLAG);
        let frame = state.store.escaped;
        if !frame {
            // The callee owns its argument area (but not the return
            // addresses of inlined calls).
            let esp = state.store.esp();
            let slots = ret_slots(state);
            // (Saved entry-frame addresses are saved registers: kept.)
            state.store.mem.retain(|(region, off), k| {
                region != Region::Of(Base::Stack)
                    || slots.contains(&off)
                    || off.wrapping_sub(esp) >= args
                    || matches!(k.value, Byte::Part(Base::Entry, ..))
            });
        }
        self.forget_reachable(state, frame);
    }

    /// An inlined callee's tail call through a pointer known only at run
    /// time (`jmp eax` with the stack at the callee's return address, musl's
    /// `f->write` in `__fwritex`): the residual calls the target in place
    /// of the return address, then goes on as after the callee's `ret`.
    /// `None` when the jump is not such a tail call.
    pub(super) fn inlined_tail_call(
        &mut self,
        state: &mut State,
        ins: &Instruction,
        items: &mut Vec<Item>,
    ) -> Result<Option<Next>, Stop> {
        let addr = ins.ip32();
        let Some(ret_slot) = state.ctx.last().map(|f| f.ret_slot) else {
            return Ok(None);
        };
        let esp = state.store.esp();
        let uses_esp = ins.memory_base() == iced_x86::Register::ESP
            || ins.memory_index() == iced_x86::Register::ESP
            || (ins.op0_kind() == iced_x86::OpKind::Register
                && ins.op0_register() == iced_x86::Register::ESP);
        if ins.code() != Code::Jmp_rm32 || esp != ret_slot || uses_esp {
            return Ok(None);
        }
        let Some(ret) = state.store.mem.word((Region::Of(Base::Stack), esp)) else {
            return Ok(None);
        };
        let back = self.code_addr(ret, addr)?;
        // The call pushes its own return address where the callee's was.
        for i in 0..4 {
            state
                .store
                .mem
                .remove((Region::Of(Base::Stack), esp.wrapping_add(i)));
        }
        state.store.set_reg(
            Reg::Esp,
            Some(crate::state::Known {
                value: SVal::Addr(Base::Stack, esp.wrapping_add(4)),
                synced: true,
            }),
        );
        let frame = state.ctx.pop().expect("an inlined call");
        state.func = frame.caller;
        state.active_dyn = frame.active_dyn_at_entry;
        state.times = state.caller_times.pop().flatten();
        self.sync_all(state, addr, UNKNOWN_ARGS, items)?;
        let mut call = *ins;
        call.set_code(Code::Call_rm32);
        items.push(Item::Instr(call, Origin::Original(addr)));
        self.after_real_call(state, UNKNOWN_ARGS);
        Ok(Some(Next::Continue(back)))
    }

    /// Whether specializing a call of `t` (off a whole program's spine)
    /// can pay, with `post` the store after the call instruction: the
    /// caller and its inlined callers have taken no dynamic branch
    /// (`State::active_dyn`; branches in callees that returned do not
    /// count), so the program still runs on what is known (its start-up,
    /// its option parsing); or, when the process's initial image is
    /// static, every argument is known (the stack
    /// arguments the binding-time analysis counts, or, for a callee
    /// without any, `eax`, `ecx` and `edx` where it reads them first, as
    /// gcc passes arguments to local functions). Otherwise the callee runs
    /// on what the input decides, and one shared original copy is smaller
    /// than a specialized copy at every call site. PC thunks are always
    /// specialized (a kept one would hand the residual's own address on).
    fn inlining_pays(&mut self, state: &State, post: &Store, t: u32) -> bool {
        if state.active_dyn == 0 || wiper_x86::pc_thunk_register(self.binary, t).is_some() {
            return true;
        }
        if !self.image_static {
            // With global memory dynamic (from `main` of a dynamically
            // linked program), what the callee reads there decides its
            // branches, whatever its arguments.
            return false;
        }
        let nargs = self.arg_bytes(t);
        let stack_known = arg_key(post, post.esp(), nargs).iter().all(Option::is_some);
        // Registers read before written at the entry (all of them when
        // the decoder could not follow the function: then none counts).
        let live_in = self
            .function(t)
            .ok()
            .and_then(|f| f.instrs.get(&t).map(|i| i.live_regs_in))
            .unwrap_or(u8::MAX);
        let reg_args: Vec<Reg> = abi::CALLER_SAVED
            .into_iter()
            .filter(|r| nargs == 0 && live_in != u8::MAX && live_in & (1 << r.index()) != 0)
            .collect();
        let regs_known = reg_args.iter().all(|&r| post.reg(r).is_some());
        (nargs > 0 || !reg_args.is_empty()) && stack_known && regs_known
    }

    /// Whether control may come back from the call at `addr` in the
    /// function at `func`: the decoder gave its block a fall-through.
    fn call_returns(&mut self, func: u32, addr: u32) -> Result<bool, crate::SpecializeError> {
        let f = self.function(func)?;
        let block = f
            .function
            .blocks
            .values()
            .find(|b| b.instructions.last().is_some_and(|i| i.ip32() == addr));
        Ok(block.map_or(true, |b| {
            b.successors
                .iter()
                .any(|s| matches!(s, wiper_x86::Successor::FallThrough(_)))
        }))
    }

    /// The entry state of a clone of `t` called from `state` (after
    /// everything was synced): what is known of the callee's arguments,
    /// the registers and global memory, relative to the callee's frame.
    pub(super) fn clone_state(&self, state: &State, t: u32) -> State {
        let shift = state.store.esp().wrapping_sub(4);
        let tr = |v: SVal| match v {
            SVal::Addr(Base::Stack, o) => SVal::Addr(Base::Stack, o.wrapping_sub(shift)),
            v => v,
        };
        let mut s = Store::entry();
        for r in Reg::ALL {
            // Stack addresses in registers (a frame pointer) are synced and
            // differ at every depth of a recursion: the clone does not need
            // them as static values.
            if r != Reg::Esp {
                let k = state
                    .store
                    .reg(r)
                    .filter(|k| !matches!(k.value, SVal::Addr(b, _) if b.is_frame()));
                s.set_reg(
                    r,
                    k.map(|k| Known {
                        value: tr(k.value),
                        synced: true,
                    }),
                );
            }
        }
        for ((region, off), k) in state.store.mem.iter() {
            let byte = match k.value {
                Byte::Part(b, o, i) => match tr(SVal::Addr(b, o)) {
                    SVal::Addr(b, o) => Byte::Part(b, o, i),
                    _ => unreachable!(),
                },
                b => b,
            };
            let known = Known {
                value: byte,
                synced: true,
            };
            match region {
                Region::Of(Base::Stack) => {
                    let rel = off.wrapping_sub(shift) as i32;
                    // The first eight arguments.
                    if (abi::arg_offset(0) as i32..abi::arg_offset(8) as i32).contains(&rel) {
                        s.mem.insert((region, rel as u32), known);
                    }
                }
                _ => {
                    s.mem.insert((region, off), known);
                }
            }
        }
        s.mem.inherit_image(&state.store.mem);
        s.gs_base = state.store.gs_base;
        s.tls_descriptor = state.store.tls_descriptor;
        s.escaped = true;
        State {
            store: s,
            func: t,
            ctx: Vec::new(),
            dyn_branches: state.dyn_branches,
            active_dyn: state.active_dyn,
            parent: state.parent,
            times: None,
            caller_times: Vec::new(),
            guarded: None,
        }
    }
}

/// The known bytes of the `nargs` bytes of stack arguments above the return
/// address slot `ret_slot` (`None` for a dynamic byte).
fn arg_key(store: &Store, ret_slot: u32, nargs: u32) -> Vec<Option<Byte>> {
    (4..4 + nargs)
        .map(|i| {
            store
                .mem
                .get((Region::Of(Base::Stack), ret_slot.wrapping_add(i)))
                .map(|k| k.value)
        })
        .collect()
}

/// A fingerprint of the static state a recursive call of a function with
/// `nargs` bytes of arguments depends on, taken as seen from an activation
/// of it whose return address slot is `above`: the known stack bytes above
/// that slot (the callers' frames and the activation's arguments) and the
/// arguments of the call whose return address slot is `ret_slot`. An
/// activation records it when it is entered (`above == ret_slot`); a
/// nested call of the same function with an equal fingerprint would repeat
/// it. Order-independent, so the memory's iteration order does not matter.
pub(super) fn recursion_fingerprint(store: &Store, above: u32, ret_slot: u32, nargs: u32) -> u64 {
    use std::hash::{Hash, Hasher};
    let one = |x: &dyn Fn(&mut std::collections::hash_map::DefaultHasher)| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        x(&mut h);
        h.finish()
    };
    let mut sum = one(&|h| arg_key(store, ret_slot, nargs).hash(h));
    for ((region, off), k) in store.mem.iter() {
        if region == Region::Of(Base::Stack) && off.wrapping_sub(above) as i32 > 3 {
            sum = sum.wrapping_add(one(&|h| (off, k.value).hash(h)));
        }
    }
    sum
}

/// An activation of a function on the inlining stack.
struct Activation {
    /// The function's entry.
    func: u32,
    /// Stack offset of its return address slot.
    ret_slot: u32,
    /// The fingerprint of its static state on entry (`None` for the
    /// outermost function, which was not entered by an inlined call).
    entered_with: Option<u64>,
    /// The path's dynamic branches when it was entered (0 for the
    /// outermost function).
    dyn_at_entry: u32,
}

/// The activations on the inlining stack of `state`, outermost first: each
/// function with the stack offset of its return address slot.
fn activations(state: &State) -> Vec<Activation> {
    // Frame i is the call from `ctx[i].caller` into the next frame's caller
    // (the running function for the last frame).
    let callees = state
        .ctx
        .iter()
        .skip(1)
        .map(|f| f.caller)
        .chain(std::iter::once(state.func));
    let root = state.ctx.first().map_or(state.func, |f| f.caller);
    std::iter::once((root, 0, None, 0))
        .chain(
            callees
                .zip(state.ctx.iter())
                .map(|(func, f)| (func, f.ret_slot, Some(f.entered_with), f.dyn_at_entry)),
        )
        .map(|(func, ret_slot, entered_with, dyn_at_entry)| Activation {
            func,
            ret_slot,
            entered_with,
            dyn_at_entry,
        })
        .collect()
}
