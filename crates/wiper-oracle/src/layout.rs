//! Fixed addresses of the harness process and the byte layout of the records
//! exchanged with it over stdin/stdout.

/// Start of the scratch data window the caller's memory operands and stack use.
pub const SCRATCH_BASE: u32 = 0x3000_0000;
/// Default (and recommended) window length in bytes: one page.
pub const SCRATCH_SIZE: usize = 4096;
/// Largest window length a batch may use.
pub const MAX_SCRATCH_SIZE: usize = 0x1_0000;

/// Base address of the `gs` segment while code under test runs (a thread
/// pointer, as glibc and musl load into `gs`): below the window, so that
/// `gs:[d]` reaches window byte `d - 0x1000` and an offset into the window
/// never wraps around 4 GiB (an access across the end of a segment
/// faults).
pub const GS_BASE: u32 = SCRATCH_BASE - 0x1000;
/// Base address of the `fs` segment while code under test runs: below the
/// window too, apart from [`GS_BASE`] (`fs:[d]` reaches window byte
/// `d - 0x2000`).
pub const FS_BASE: u32 = SCRATCH_BASE - 0x2000;

/// Start of the landing zone: `LANDING_SIZE` bytes of `int3` around the code
/// under test. Control arriving at any `int3` byte of it is recorded as the
/// target address (see [`crate::is_landing_address`]).
pub const LANDING_BASE: u32 = 0x2000_0000;
/// Length of the landing zone in bytes.
pub const LANDING_SIZE: u32 = 0x2_0000;
/// Where the code under test is placed, in the middle of the landing zone so
/// that short (`rel8`) branches can reach landing addresses on both sides.
pub const CODE_BASE: u32 = LANDING_BASE + 0x1_0000;
/// Longest code under test.
pub const MAX_CODE_LEN: usize = 0x8000;
/// Length of the `jmp rel32` to the capture stub placed right after the code.
pub const FALLTHROUGH_JMP_LEN: u32 = 5;

/// Address just after the code under test: reaching it means the code fell
/// through (a `jmp rel32` to the fast capture stub sits there).
#[must_use]
pub fn fallthrough_address(code_len: usize) -> u32 {
    CODE_BASE + code_len as u32
}

/// Load address of the harness text segment (ELF headers first).
pub(crate) const TEXT_BASE: u32 = 0x0804_8000;
/// File and memory size of the harness text segment.
pub(crate) const TEXT_SIZE: u32 = 0x2000;
/// The harness code proper lies in `[HCODE_LO, HCODE_HI)`.
pub(crate) const HCODE_LO: u32 = TEXT_BASE + 0x1000;
pub(crate) const HCODE_HI: u32 = TEXT_BASE + TEXT_SIZE;
/// Fixed slots of the harness pieces (each assembled at its own address).
pub(crate) const H_SETUP: u32 = HCODE_LO;
pub(crate) const H_LOOP: u32 = HCODE_LO + 0x200;
pub(crate) const H_CAPTURE: u32 = HCODE_LO + 0x800;
pub(crate) const H_FINISH: u32 = HCODE_LO + 0x900;
pub(crate) const H_HANDLER: u32 = HCODE_LO + 0xa00;
pub(crate) const H_RESTORER: u32 = HCODE_LO + 0xc00;
pub(crate) const H_FAIL: u32 = HCODE_LO + 0xd00;
/// Slot boundaries, for size checks: `(start, end)` of each piece.
pub(crate) const H_SLOTS: [(u32, u32); 7] = [
    (H_SETUP, H_LOOP),
    (H_LOOP, H_CAPTURE),
    (H_CAPTURE, H_FINISH),
    (H_FINISH, H_HANDLER),
    (H_HANDLER, H_RESTORER),
    (H_RESTORER, H_FAIL),
    (H_FAIL, HCODE_HI),
];

/// Load address of the harness data segment.
pub(crate) const DATA_BASE: u32 = 0x0810_0000;

/// Magic number opening every input and output record (`"WIPR"`).
pub(crate) const MAGIC: u32 = 0x5250_4957;

/// Input record header: magic, sequence number, 8 registers, eflags, reserved.
pub(crate) const IN_HDR: u32 = 48;
/// Output record header: magic, seq, 8 registers, eflags, eip, kind, signo,
/// trapno, err, cr2, reserved up to 80 bytes.
pub(crate) const OUT_HDR: u32 = 80;
pub(crate) const IN_REGS: u32 = 8;
pub(crate) const IN_EFLAGS: u32 = 40;
pub(crate) const OUT_REGS: u32 = 8;
pub(crate) const OUT_EFLAGS: u32 = 40;
pub(crate) const OUT_EIP: u32 = 44;
pub(crate) const OUT_KIND: u32 = 48;
pub(crate) const OUT_SIGNO: u32 = 52;
pub(crate) const OUT_TRAPNO: u32 = 56;
pub(crate) const OUT_ERR: u32 = 60;
pub(crate) const OUT_CR2: u32 = 64;

/// `OUT_KIND` value: the fall-through stub captured the state.
pub(crate) const KIND_FALLTHROUGH: u32 = 0;
/// `OUT_KIND` value: the signal handler captured the state.
pub(crate) const KIND_SIGNAL: u32 = 1;

/// Harness exit codes for its own failures (anything else is the code under test's doing).
pub(crate) const EXIT_SIGALTSTACK: u32 = 90;
pub(crate) const EXIT_SIGACTION: u32 = 91;
pub(crate) const EXIT_READ: u32 = 92;
pub(crate) const EXIT_PARTIAL: u32 = 93;
pub(crate) const EXIT_WRITE: u32 = 94;
pub(crate) const EXIT_SIGNAL_IN_HARNESS: u32 = 95;
pub(crate) const EXIT_SETITIMER: u32 = 96;
pub(crate) const EXIT_SET_THREAD_AREA: u32 = 97;

const PAGE: u32 = 0x1000;
const ALTSTACK_SIZE: u32 = 0x1_0000;
const HSTACK_SIZE: u32 = 0x4000;

/// Rounds `x` up to a multiple of `to` (a power of two).
pub(crate) fn align_up(x: u32, to: u32) -> u32 {
    (x + to - 1) & !(to - 1)
}

/// Sizes and addresses that depend on the code length and the window length of a batch.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Bytes of the code under test.
    pub code_len: u32,
    /// Window bytes transferred per state.
    pub mem_len: u32,
    /// `mem_len` in dwords, rounded up.
    pub mem_words: u32,
    /// Mapped window size (page multiple, 0 for an empty window).
    pub scratch_map: u32,
    /// Bytes of one input record.
    pub in_size: u32,
    /// Bytes of one output record.
    pub out_size: u32,
    /// `struct sigaction` for `rt_sigaction`.
    pub d_sigaction: u32,
    /// `stack_t` for `sigaltstack`.
    pub d_stack_t: u32,
    /// `struct itimerval` armed before each state.
    pub d_itimer: u32,
    /// Where the fall-through stub saves `esp` first.
    pub d_save_esp: u32,
    /// `pushad`+`pushfd` target (9 dwords) of the fall-through stub.
    pub d_save_frame: u32,
    /// `popad`+`popfd` source (9 dwords) built from the input record.
    pub d_load_frame: u32,
    /// `struct user_desc` for `set_thread_area` (16 bytes), for `gs`.
    pub d_gs_desc: u32,
    /// The same for `fs`.
    pub d_fs_desc: u32,
    /// Input record buffer.
    pub d_in: u32,
    /// Output record buffer.
    pub d_out: u32,
    /// Alternate signal stack.
    pub d_altstack: u32,
    /// Alternate signal stack size.
    pub altstack_size: u32,
    /// Top of the harness's own stack.
    pub hstack_top: u32,
    /// Size of the data segment.
    pub data_size: u32,
}

impl Layout {
    /// The layout for `code_len` bytes of code and `mem_len` window bytes
    /// (both already checked against their maxima).
    pub fn new(code_len: usize, mem_len: usize) -> Self {
        let code_len = code_len as u32;
        let mem_len = mem_len as u32;
        let mem_words = mem_len.div_ceil(4);
        let scratch_map = align_up(mem_len, PAGE);
        let in_size = IN_HDR + mem_words * 4;
        let out_size = OUT_HDR + mem_words * 4;
        let d_sigaction = DATA_BASE;
        let d_stack_t = DATA_BASE + 0x20;
        let d_itimer = DATA_BASE + 0x30;
        let d_save_esp = DATA_BASE + 0x40;
        let d_save_frame = DATA_BASE + 0x60;
        let d_load_frame = DATA_BASE + 0xa0;
        let d_gs_desc = DATA_BASE + 0xd0;
        let d_fs_desc = DATA_BASE + 0xe0;
        let d_in = DATA_BASE + 0x100;
        let d_out = align_up(d_in + in_size, 64);
        let d_altstack = align_up(d_out + out_size, PAGE);
        let hstack = d_altstack + ALTSTACK_SIZE;
        let hstack_top = hstack + HSTACK_SIZE;
        Self {
            code_len,
            mem_len,
            mem_words,
            scratch_map,
            in_size,
            out_size,
            d_sigaction,
            d_stack_t,
            d_itimer,
            d_save_esp,
            d_save_frame,
            d_load_frame,
            d_gs_desc,
            d_fs_desc,
            d_in,
            d_out,
            d_altstack,
            altstack_size: ALTSTACK_SIZE,
            hstack_top,
            data_size: hstack_top - DATA_BASE,
        }
    }

    /// First byte after the code under test.
    pub fn code_end(&self) -> u32 {
        CODE_BASE + self.code_len
    }
}
