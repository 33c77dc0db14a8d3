//! The system-call table (`wiper_x86::syscalls::memory_written`) judged by
//! the kernel: each call runs for real (`int 0x80` under wiper-oracle's
//! harness) on a scratch window filled with a pattern, and every byte it
//! changed must lie in a range the table gives for those arguments; a call
//! the table says writes nothing must change nothing.

use wiper_oracle::{assemble, run_code, CpuState, EAX, EBP, EBX, ECX, EDI, EDX, ESI, SCRATCH_BASE};
use wiper_x86::syscalls::{memory_written, Size, ARGS};

/// Where the buffers go in the window (4 KiB).
const BUF: u32 = SCRATCH_BASE + 0x400;
const BUF2: u32 = SCRATCH_BASE + 0x800;
/// A NUL-terminated path in the window.
const PATH: u32 = SCRATCH_BASE + 0xc00;
/// A `struct timespec` of 1 ns in the window (for `nanosleep`).
const TIMESPEC: u32 = SCRATCH_BASE + 0xd00;
const FILL: u8 = 0xa5;

/// The registers of the call: `eax` the number, then the arguments.
fn run_syscall(number: u32, args: [u32; 6]) -> Vec<u8> {
    let mut state = CpuState::new();
    state.mem.fill(FILL);
    let at = |a: u32| (a - SCRATCH_BASE) as usize;
    state.mem[at(PATH)..at(PATH) + 2].copy_from_slice(b"/\0");
    state.mem[at(TIMESPEC)..at(TIMESPEC) + 8].copy_from_slice(&[0, 0, 0, 0, 1, 0, 0, 0]);
    state.regs[EAX] = number;
    for (reg, value) in [EBX, ECX, EDX, ESI, EDI, EBP].into_iter().zip(args) {
        state.regs[reg] = value;
    }
    let code = assemble(|a| a.int(0x80)).expect("int 0x80");
    let out = run_code(&code, &[state]).expect("the harness runs");
    assert_eq!(out[0].fault, None, "system call {number}");
    out[0].state.mem.clone()
}

/// The address ranges the table says system call `number` may write with
/// `args`.
fn ranges(number: u32, args: [u32; 6]) -> Vec<(u32, u32)> {
    let table = memory_written(number, args.map(Some)).expect("a listed call");
    assert_eq!(ARGS.len(), 6);
    table
        .iter()
        .filter(|w| args[w.pointer] != 0)
        .map(|w| {
            let len = match w.size {
                Size::Fixed(n) => n,
                Size::Arg(k) => args[k],
                Size::ArgTimes(k, n) => args[k] * n,
            };
            (args[w.pointer], args[w.pointer] + len)
        })
        .collect()
}

#[test]
fn the_kernel_writes_only_where_the_table_says() {
    const AT_FDCWD: u32 = -100i32 as u32;
    let calls: [(&str, u32, [u32; 6]); 19] = [
        ("getpid", 20, [0; 6]),
        ("pipe", 42, [BUF, 0, 0, 0, 0, 0]),
        ("ioctl TIOCGWINSZ", 54, [2, 0x5413, BUF, 0, 0, 0]),
        ("gettimeofday", 78, [BUF, BUF2, 0, 0, 0, 0]),
        ("readlink", 85, [PATH, BUF, 64, 0, 0, 0]),
        ("wait4", 114, [-1i32 as u32, BUF, 1, BUF2, 0, 0]),
        ("uname", 122, [BUF, 0, 0, 0, 0, 0]),
        ("nanosleep", 162, [TIMESPEC, BUF, 0, 0, 0, 0]),
        ("rt_sigaction", 174, [10, 0, BUF, 8, 0, 0]),
        ("rt_sigprocmask", 175, [0, 0, BUF, 8, 0, 0]),
        ("getcwd", 183, [BUF, 256, 0, 0, 0, 0]),
        ("ugetrlimit", 191, [3, BUF, 0, 0, 0, 0]),
        ("stat64", 195, [PATH, BUF, 0, 0, 0, 0]),
        ("fstat64", 197, [2, BUF, 0, 0, 0, 0]),
        ("clock_gettime", 265, [1, BUF, 0, 0, 0, 0]),
        ("fstatat64", 300, [AT_FDCWD, PATH, BUF, 0, 0, 0]),
        ("prlimit64", 340, [0, 3, 0, BUF, 0, 0]),
        ("getrandom", 355, [BUF, 32, 0, 0, 0, 0]),
        ("statx", 383, [AT_FDCWD, PATH, 0, 0x7ff, BUF, 0]),
    ];
    let mut wrote = 0;
    for (name, number, args) in calls {
        let allowed = ranges(number, args);
        let mem = run_syscall(number, args);
        for (i, &b) in mem.iter().enumerate() {
            let addr = SCRATCH_BASE + i as u32;
            let at_input =
                [PATH, PATH + 1].contains(&addr) || (TIMESPEC..TIMESPEC + 8).contains(&addr);
            if b == FILL || at_input {
                continue;
            }
            wrote += 1;
            assert!(
                allowed.iter().any(|&(lo, hi)| (lo..hi).contains(&addr)),
                "{name} ({number}) wrote {addr:#x}, outside {allowed:x?}"
            );
        }
    }
    // The calls did write (the test is not vacuous).
    assert!(wrote > 500, "only {wrote} bytes written");
}
