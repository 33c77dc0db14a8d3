//! Builds the harness: a minimal static ELF32 i386 executable, assembled here
//! with iced-x86, that runs the code under test once per input record.

use iced_x86::code_asm::*;
use iced_x86::IcedError;

use crate::layout::*;
use crate::OracleError;

/// i386 system call numbers used by the harness.
const SYS_EXIT: i32 = 1;
const SYS_READ: i32 = 3;
const SYS_WRITE: i32 = 4;
const SYS_SETITIMER: i32 = 104;
const SYS_RT_SIGRETURN: i32 = 173;
const SYS_RT_SIGACTION: i32 = 174;
const SYS_SIGALTSTACK: i32 = 186;
const SYS_SET_THREAD_AREA: i32 = 243;
/// `struct user_desc` flags: 32-bit, data, writable, limit in pages,
/// present, usable.
const USER_DESC_FLAGS: u32 = 0x51;
const EINTR: i32 = 4;

/// Signals caught by the harness: SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGVTALRM.
const CAUGHT_SIGNALS: [i32; 6] = [4, 5, 7, 8, 11, SIGVTALRM];
const SIGVTALRM: i32 = 26;
const ITIMER_VIRTUAL: i32 = 1;

const SA_SIGINFO: u32 = 0x4;
const SA_ONSTACK: u32 = 0x0800_0000;
const SA_RESTART: u32 = 0x1000_0000;
const SA_RESTORER: u32 = 0x0400_0000;

/// Offset of `uc_mcontext` in the ia32 `ucontext`.
const UC_MCONTEXT: i32 = 20;
/// Offsets in the ia32 `struct sigcontext`.
const SC_EDI: i32 = 16;
const SC_ESP: i32 = 28;
const SC_TRAPNO: i32 = 48;
const SC_ERR: i32 = 52;
const SC_EIP: i32 = 56;
const SC_EFLAGS: i32 = 64;
const SC_CR2: i32 = 84;
/// Offset of register `i` (`CpuState::regs` order) in `struct sigcontext`:
/// the context stores `edi esi ebp esp ebx edx ecx eax` from offset 16.
fn sc_reg(i: u32) -> i32 {
    SC_EDI + 4 * (7 - i as i32)
}

/// EFLAGS loaded for every state besides the caller's flags: reserved bit 1 and IF.
const EFLAGS_BASE: u32 = 0x202;

/// Knobs baked into one harness executable.
#[derive(Clone, Debug)]
pub(crate) struct HarnessConfig {
    /// CPU-time budget per state in milliseconds, 0 for none.
    pub timeout_ms: u32,
}

/// Absolute address as a memory displacement.
fn abs(addr: u32) -> AsmMemoryOperand {
    dword_ptr(addr)
}

/// Emits `mov ebx, code; jmp H_FAIL`.
fn fail(a: &mut CodeAssembler, code: u32) -> Result<(), IcedError> {
    a.mov(ebx, code)?;
    a.jmp(u64::from(H_FAIL))
}

/// Start-up: alternate signal stack, signal handlers, own stack; then the loop.
fn setup(a: &mut CodeAssembler, l: &Layout) -> Result<(), IcedError> {
    let mut bad_altstack = a.create_label();
    let mut bad_sigaction = a.create_label();
    a.mov(eax, SYS_SIGALTSTACK)?;
    a.mov(ebx, l.d_stack_t)?;
    a.xor(ecx, ecx)?;
    a.int(0x80)?;
    a.test(eax, eax)?;
    a.jnz(bad_altstack)?;
    for sig in CAUGHT_SIGNALS {
        a.mov(eax, SYS_RT_SIGACTION)?;
        a.mov(ebx, sig)?;
        a.mov(ecx, l.d_sigaction)?;
        a.xor(edx, edx)?;
        a.mov(esi, 8)?;
        a.int(0x80)?;
        a.test(eax, eax)?;
        a.jnz(bad_sigaction)?;
    }
    segments(a, l)?;
    a.mov(esp, l.hstack_top)?;
    a.jmp(u64::from(H_LOOP))?;
    a.set_label(&mut bad_altstack)?;
    fail(a, EXIT_SIGALTSTACK)?;
    a.set_label(&mut bad_sigaction)?;
    fail(a, EXIT_SIGACTION)
}

/// `gs` and `fs` get segments based at [`GS_BASE`] and [`FS_BASE`]
/// (`set_thread_area`, then the selector of the entry the kernel chose).
fn segments(a: &mut CodeAssembler, l: &Layout) -> Result<(), IcedError> {
    let mut bad = a.create_label();
    for (desc, seg) in [(l.d_gs_desc, gs), (l.d_fs_desc, fs)] {
        a.mov(eax, SYS_SET_THREAD_AREA)?;
        a.mov(ebx, desc)?;
        a.int(0x80)?;
        a.test(eax, eax)?;
        a.jnz(bad)?;
        a.mov(eax, dword_ptr(desc))?; // entry_number
        a.shl(eax, 3)?;
        a.or(eax, 3)?; // GDT, ring 3
        a.mov(seg, ax)?;
    }
    let mut done = a.create_label();
    a.jmp(done)?;
    a.set_label(&mut bad)?;
    fail(a, EXIT_SET_THREAD_AREA)?;
    a.set_label(&mut done)?;
    a.nop()
}

/// Main loop: read a record, load the window, arm the timer, load the
/// registers and flags last (esp very last), and jump to the code under test.
fn main_loop(a: &mut CodeAssembler, l: &Layout, cfg: &HarnessConfig) -> Result<(), IcedError> {
    let mut read_more = a.create_label();
    let mut eof = a.create_label();
    let mut bad_read = a.create_label();
    let mut partial = a.create_label();
    let mut bad_timer = a.create_label();

    a.xor(edi, edi)?; // bytes of the record read so far
    a.set_label(&mut read_more)?;
    a.mov(eax, SYS_READ)?;
    a.xor(ebx, ebx)?;
    a.lea(ecx, ptr(edi + l.d_in))?;
    a.mov(edx, l.in_size)?;
    a.sub(edx, edi)?;
    a.int(0x80)?;
    a.cmp(eax, -EINTR)?;
    a.je(read_more)?;
    a.test(eax, eax)?;
    a.js(bad_read)?;
    a.jz(eof)?;
    a.add(edi, eax)?;
    a.cmp(edi, l.in_size)?;
    a.jb(read_more)?;

    // Window: copy the record's bytes, zero the rest of the mapped pages.
    a.cld()?;
    if l.mem_words > 0 {
        a.mov(esi, l.d_in + IN_HDR)?;
        a.mov(edi, SCRATCH_BASE)?;
        a.mov(ecx, l.mem_words)?;
        a.rep().movsd()?;
    }
    let tail_words = (l.scratch_map - l.mem_words * 4) / 4;
    if tail_words > 0 {
        a.mov(edi, SCRATCH_BASE + l.mem_words * 4)?;
        a.xor(eax, eax)?;
        a.mov(ecx, tail_words)?;
        a.rep().stosd()?;
    }
    // Echo magic and sequence number.
    a.mov(eax, abs(l.d_in))?;
    a.mov(abs(l.d_out), eax)?;
    a.mov(eax, abs(l.d_in + 4))?;
    a.mov(abs(l.d_out + 4), eax)?;
    if cfg.timeout_ms > 0 {
        a.mov(eax, SYS_SETITIMER)?;
        a.mov(ebx, ITIMER_VIRTUAL)?;
        a.mov(ecx, l.d_itimer)?;
        a.xor(edx, edx)?;
        a.int(0x80)?;
        a.test(eax, eax)?;
        a.jnz(bad_timer)?;
    }
    // popad frame: edi esi ebp (esp ignored) ebx edx ecx eax, then eflags.
    for reg in 0..8u32 {
        if reg == 4 {
            continue;
        }
        a.mov(eax, abs(l.d_in + IN_REGS + 4 * reg))?;
        a.mov(abs(l.d_load_frame + 4 * (7 - reg)), eax)?;
    }
    a.mov(eax, abs(l.d_in + IN_EFLAGS))?;
    a.and(eax, crate::flags::MASK)?;
    a.or(eax, EFLAGS_BASE)?;
    a.mov(abs(l.d_load_frame + 32), eax)?;
    a.mov(esp, l.d_load_frame)?;
    a.popad()?;
    a.popfd()?;
    a.mov(esp, abs(l.d_in + IN_REGS + 4 * 4))?;
    a.jmp(u64::from(CODE_BASE))?;

    a.set_label(&mut eof)?;
    a.test(edi, edi)?;
    a.jnz(partial)?;
    a.mov(eax, SYS_EXIT)?;
    a.xor(ebx, ebx)?;
    a.int(0x80)?;
    a.set_label(&mut bad_read)?;
    fail(a, EXIT_READ)?;
    a.set_label(&mut partial)?;
    fail(a, EXIT_PARTIAL)?;
    a.set_label(&mut bad_timer)?;
    fail(a, EXIT_SETITIMER)
}

/// Fall-through stub: save esp first, then registers and flags with pushes
/// into a save frame, and fill the output header.
fn capture(a: &mut CodeAssembler, l: &Layout) -> Result<(), IcedError> {
    a.mov(abs(l.d_save_esp), esp)?;
    a.mov(esp, l.d_save_frame + 36)?;
    a.pushfd()?;
    a.pushad()?;
    a.mov(esp, l.hstack_top)?;
    a.cld()?;
    for reg in 0..8u32 {
        let src = if reg == 4 {
            l.d_save_esp
        } else {
            l.d_save_frame + 4 * (7 - reg)
        };
        a.mov(eax, abs(src))?;
        a.mov(abs(l.d_out + OUT_REGS + 4 * reg), eax)?;
    }
    a.mov(eax, abs(l.d_save_frame + 32))?;
    a.mov(abs(l.d_out + OUT_EFLAGS), eax)?;
    a.mov(abs(l.d_out + OUT_EIP), l.code_end())?;
    a.mov(abs(l.d_out + OUT_KIND), KIND_FALLTHROUGH)?;
    for off in [OUT_SIGNO, OUT_TRAPNO, OUT_ERR, OUT_CR2] {
        a.mov(abs(l.d_out + off), 0u32)?;
    }
    a.jmp(u64::from(H_FINISH))
}

/// Common tail: copy the window into the output record, write it, loop.
fn finish(a: &mut CodeAssembler, l: &Layout) -> Result<(), IcedError> {
    let mut write_more = a.create_label();
    let mut bad_write = a.create_label();
    a.cld()?;
    if l.mem_words > 0 {
        a.mov(esi, SCRATCH_BASE)?;
        a.mov(edi, l.d_out + OUT_HDR)?;
        a.mov(ecx, l.mem_words)?;
        a.rep().movsd()?;
    }
    a.xor(edi, edi)?; // bytes written so far
    a.set_label(&mut write_more)?;
    a.mov(eax, SYS_WRITE)?;
    a.mov(ebx, 1)?;
    a.lea(ecx, ptr(edi + l.d_out))?;
    a.mov(edx, l.out_size)?;
    a.sub(edx, edi)?;
    a.int(0x80)?;
    a.cmp(eax, -EINTR)?;
    a.je(write_more)?;
    a.test(eax, eax)?;
    a.jle(bad_write)?;
    a.add(edi, eax)?;
    a.cmp(edi, l.out_size)?;
    a.jb(write_more)?;
    a.jmp(u64::from(H_LOOP))?;
    a.set_label(&mut bad_write)?;
    fail(a, EXIT_WRITE)
}

/// `SA_SIGINFO` handler on the alternate stack: copy the interrupted context
/// into the output header, then make `rt_sigreturn` resume at the common tail
/// on the harness stack. A virtual-timer tick inside the harness is ignored;
/// any other signal there is a harness bug and ends the process.
fn handler(a: &mut CodeAssembler, l: &Layout) -> Result<(), IcedError> {
    let mut not_harness = a.create_label();
    let mut done = a.create_label();
    a.mov(eax, dword_ptr(esp + 12))?; // ucontext *
    a.add(eax, UC_MCONTEXT)?;
    a.mov(ecx, dword_ptr(eax + SC_EIP))?;
    a.cmp(ecx, HCODE_LO)?;
    a.jb(not_harness)?;
    a.cmp(ecx, HCODE_HI)?;
    a.jae(not_harness)?;
    a.cmp(dword_ptr(esp + 4), SIGVTALRM)?;
    a.je(done)?;
    fail(a, EXIT_SIGNAL_IN_HARNESS)?;

    a.set_label(&mut not_harness)?;
    for reg in 0..8u32 {
        a.mov(edx, dword_ptr(eax + sc_reg(reg)))?;
        a.mov(abs(l.d_out + OUT_REGS + 4 * reg), edx)?;
    }
    a.mov(edx, dword_ptr(eax + SC_EFLAGS))?;
    a.mov(abs(l.d_out + OUT_EFLAGS), edx)?;
    a.mov(abs(l.d_out + OUT_EIP), ecx)?;
    a.mov(abs(l.d_out + OUT_KIND), KIND_SIGNAL)?;
    a.mov(edx, dword_ptr(esp + 4))?;
    a.mov(abs(l.d_out + OUT_SIGNO), edx)?;
    for (sc, out) in [
        (SC_TRAPNO, OUT_TRAPNO),
        (SC_ERR, OUT_ERR),
        (SC_CR2, OUT_CR2),
    ] {
        a.mov(edx, dword_ptr(eax + sc))?;
        a.mov(abs(l.d_out + out), edx)?;
    }
    a.mov(dword_ptr(eax + SC_EIP), H_FINISH)?;
    a.mov(dword_ptr(eax + SC_ESP), l.hstack_top)?;
    a.mov(dword_ptr(eax + SC_EFLAGS), EFLAGS_BASE)?;
    a.set_label(&mut done)?;
    a.ret()
}

/// Signal return trampoline (`SA_RESTORER`).
fn restorer(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(eax, SYS_RT_SIGRETURN)?;
    a.int(0x80)
}

/// `exit(ebx)`.
fn fail_exit(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.mov(eax, SYS_EXIT)?;
    a.int(0x80)?;
    a.ud2()
}

/// Assembles one harness piece at its fixed address.
fn piece(
    addr: u32,
    f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(32)?;
    f(&mut a)?;
    a.assemble(u64::from(addr))
}

/// One `PT_LOAD` segment: bytes are fully file-backed (`p_filesz == p_memsz`),
/// which keeps every kernel's ELF loader happy.
struct Segment {
    vaddr: u32,
    flags: u32,
    bytes: Vec<u8>,
}

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;
const PT_LOAD: u32 = 1;
const PT_GNU_STACK: u32 = 0x6474_e551;
const EHDR_SIZE: u32 = 52;
const PHDR_SIZE: u32 = 32;

/// Builds the complete harness executable for `code` (placed at `CODE_BASE`).
pub(crate) fn build_elf(
    code: &[u8],
    l: &Layout,
    cfg: &HarnessConfig,
) -> Result<Vec<u8>, OracleError> {
    let pieces: [(u32, Vec<u8>); 7] = [
        (H_SETUP, piece(H_SETUP, |a| setup(a, l))?),
        (H_LOOP, piece(H_LOOP, |a| main_loop(a, l, cfg))?),
        (H_CAPTURE, piece(H_CAPTURE, |a| capture(a, l))?),
        (H_FINISH, piece(H_FINISH, |a| finish(a, l))?),
        (H_HANDLER, piece(H_HANDLER, |a| handler(a, l))?),
        (H_RESTORER, piece(H_RESTORER, restorer)?),
        (H_FAIL, piece(H_FAIL, fail_exit)?),
    ];

    // Text: ELF headers, then the pieces at their slots.
    let mut text = vec![0u8; TEXT_SIZE as usize];
    for ((addr, bytes), (start, end)) in pieces.iter().zip(H_SLOTS) {
        debug_assert_eq!(*addr, start);
        assert!(
            addr + bytes.len() as u32 <= end,
            "harness piece at {addr:#x} is {} bytes, its slot ends at {end:#x}",
            bytes.len()
        );
        let off = (addr - TEXT_BASE) as usize;
        text[off..off + bytes.len()].copy_from_slice(bytes);
    }

    // Data: initialised structures; buffers and stacks stay zero.
    let mut data = vec![0u8; l.data_size as usize];
    let mut put = |addr: u32, v: u32| {
        let o = (addr - DATA_BASE) as usize;
        data[o..o + 4].copy_from_slice(&v.to_le_bytes());
    };
    put(l.d_sigaction, H_HANDLER);
    put(
        l.d_sigaction + 4,
        SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_RESTORER,
    );
    put(l.d_sigaction + 8, H_RESTORER);
    // sa_mask (8 bytes) stays empty.
    put(l.d_stack_t, l.d_altstack);
    put(l.d_stack_t + 4, 0);
    put(l.d_stack_t + 8, l.altstack_size);
    // user_desc: entry_number -1 (the kernel picks one), base, limit
    // 0xfffff pages, flags.
    for (desc, base) in [(l.d_gs_desc, GS_BASE), (l.d_fs_desc, FS_BASE)] {
        put(desc, u32::MAX);
        put(desc + 4, base);
        put(desc + 8, 0xf_ffff);
        put(desc + 12, USER_DESC_FLAGS);
    }
    // itimerval: it_interval = 0, it_value = timeout.
    put(l.d_itimer + 8, cfg.timeout_ms / 1000);
    put(l.d_itimer + 12, (cfg.timeout_ms % 1000) * 1000);

    // Landing zone: int3 everywhere, the code at CODE_BASE, then `jmp capture`.
    let mut landing = vec![0xccu8; LANDING_SIZE as usize];
    let code_off = (CODE_BASE - LANDING_BASE) as usize;
    landing[code_off..code_off + code.len()].copy_from_slice(code);
    let jmp_at = l.code_end();
    let rel = H_CAPTURE.wrapping_sub(jmp_at + FALLTHROUGH_JMP_LEN);
    let j = code_off + code.len();
    landing[j] = 0xe9;
    landing[j + 1..j + 5].copy_from_slice(&rel.to_le_bytes());

    let mut segments = vec![
        Segment {
            vaddr: TEXT_BASE,
            flags: PF_R | PF_X,
            bytes: text,
        },
        Segment {
            vaddr: DATA_BASE,
            flags: PF_R | PF_W,
            bytes: data,
        },
        Segment {
            vaddr: LANDING_BASE,
            flags: PF_R | PF_X,
            bytes: landing,
        },
    ];
    if l.scratch_map > 0 {
        segments.push(Segment {
            vaddr: SCRATCH_BASE,
            flags: PF_R | PF_W,
            bytes: vec![0; l.scratch_map as usize],
        });
    }
    Ok(write_elf(H_SETUP, segments))
}

/// Lays the segments out page by page and writes the ELF and program headers
/// into the start of the first segment (which must begin at file offset 0).
fn write_elf(entry: u32, mut segments: Vec<Segment>) -> Vec<u8> {
    const PAGE: u32 = 0x1000;
    let phnum = segments.len() as u32 + 1;
    let mut offsets = Vec::with_capacity(segments.len());
    let mut off = 0u32;
    for s in &segments {
        debug_assert_eq!(s.vaddr % PAGE, 0);
        offsets.push(off);
        off = align_up(off + s.bytes.len() as u32, PAGE);
    }

    let mut hdr = Vec::with_capacity((EHDR_SIZE + phnum * PHDR_SIZE) as usize);
    hdr.extend_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1, 0]);
    hdr.extend_from_slice(&[0; 8]);
    let h16 = |h: &mut Vec<u8>, v: u16| h.extend_from_slice(&v.to_le_bytes());
    let h32 = |h: &mut Vec<u8>, v: u32| h.extend_from_slice(&v.to_le_bytes());
    h16(&mut hdr, 2); // ET_EXEC
    h16(&mut hdr, 3); // EM_386
    h32(&mut hdr, 1); // EV_CURRENT
    h32(&mut hdr, entry);
    h32(&mut hdr, EHDR_SIZE); // e_phoff
    h32(&mut hdr, 0); // e_shoff
    h32(&mut hdr, 0); // e_flags
    h16(&mut hdr, EHDR_SIZE as u16);
    h16(&mut hdr, PHDR_SIZE as u16);
    h16(&mut hdr, phnum as u16);
    h16(&mut hdr, 40); // e_shentsize
    h16(&mut hdr, 0); // e_shnum
    h16(&mut hdr, 0); // e_shstrndx
    for (s, &o) in segments.iter().zip(&offsets) {
        let len = s.bytes.len() as u32;
        for v in [PT_LOAD, o, s.vaddr, s.vaddr, len, len, s.flags, PAGE] {
            h32(&mut hdr, v);
        }
    }
    // A non-executable stack also keeps READ_IMPLIES_EXEC off, so the data
    // window and harness data are not executable.
    for v in [PT_GNU_STACK, 0, 0, 0, 0, 0, PF_R | PF_W, 16] {
        h32(&mut hdr, v);
    }
    assert!(hdr.len() <= (H_SETUP - TEXT_BASE) as usize);
    segments[0].bytes[..hdr.len()].copy_from_slice(&hdr);

    let mut file = vec![0u8; off as usize];
    for (s, &o) in segments.iter().zip(&offsets) {
        file[o as usize..o as usize + s.bytes.len()].copy_from_slice(&s.bytes);
    }
    file
}
