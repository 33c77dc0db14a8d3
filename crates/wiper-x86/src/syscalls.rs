//! Linux's i386 system calls, as far as wiper relies on them: the number
//! is in `eax`, the arguments in `ebx`, `ecx`, `edx`, `esi`, `edi`, `ebp`;
//! the kernel returns a value in `eax` and changes no other register; and,
//! for the calls listed here, the only user memory it writes is given by
//! [`memory_written`]. A call not listed may write anything.

use crate::Reg;

/// `exit`.
pub const SYS_EXIT: u32 = 1;
/// `exit_group`.
pub const SYS_EXIT_GROUP: u32 = 252;

/// The argument registers, in order.
pub const ARGS: [Reg; 6] = [Reg::Ebx, Reg::Ecx, Reg::Edx, Reg::Esi, Reg::Edi, Reg::Ebp];

/// How many bytes the kernel may write through a pointer argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    /// A fixed number of bytes (a structure).
    Fixed(u32),
    /// As many bytes as argument `k` (0-based) says.
    Arg(usize),
    /// Argument `k` times a fixed element size.
    ArgTimes(usize, u32),
}

/// One range of user memory a system call may write: at the pointer in
/// argument `pointer` (none when it is null), `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The argument holding the address (0-based: `ebx` is 0).
    pub pointer: usize,
    /// How many bytes.
    pub size: Size,
}

/// Shorthand for the table.
const fn w(pointer: usize, size: Size) -> Written {
    Written { pointer, size }
}

/// The user memory system call `number` may write, given the values of
/// its argument registers ([`ARGS`]; `None` where not known) where the
/// answer depends on one (`ioctl`'s and `fcntl64`'s command, `modify_ldt`'s
/// function): `Some(vec![])`
/// for a call that writes none, `None` for one that may write anything
/// (not listed, or a command not listed). Sizes are the kernel's i386
/// structures (`struct stat64` is 96 bytes, `struct termios` 36).
pub fn memory_written(number: u32, args: [Option<u32>; 6]) -> Option<Vec<Written>> {
    use Size::{Arg, ArgTimes, Fixed};
    Some(match number {
        // exit, write, open, close, unlink, lseek, getpid, access, kill,
        // rename, mkdir, rmdir, dup, brk, umask, dup2, getppid, munmap,
        // chmod, fchmod, mprotect, writev, mmap2, getuid32 ... getegid32,
        // lchown32, fchown32, chown32, gettid, tkill, exit_group,
        // set_tid_address, tgkill, openat, fchmodat, utimensat,
        // utimensat_time64.
        1
        | 4
        | 5
        | 6
        | 10
        | 15
        | 19
        | 20
        | 33
        | 37
        | 38
        | 39
        | 40
        | 41
        | 45
        | 60
        | 63
        | 64
        | 91
        | 94
        | 125
        | 146
        | 192
        | 198..=202
        | 207
        | 212
        | 224
        | 238
        | 252
        | 258
        | 270
        | 295
        | 306
        | 320
        | 412 => Vec::new(),
        3 => vec![w(1, Arg(2))],                      // read(fd, buf, count)
        42 => vec![w(0, Fixed(8))],                   // pipe(fds)
        54 => return ioctl_written(args[1]?),         // ioctl(fd, request, arg)
        78 => vec![w(0, Fixed(8)), w(1, Fixed(8))],   // gettimeofday(tv, tz)
        85 => vec![w(1, Arg(2))],                     // readlink(path, buf, size)
        106..=108 => vec![w(1, Fixed(64))],           // stat, lstat, fstat
        114 => vec![w(1, Fixed(4)), w(3, Fixed(72))], // wait4(pid, status, options, rusage)
        122 => vec![w(0, Fixed(390))],                // uname(buf)
        140 => vec![w(3, Fixed(8))],                  // _llseek(fd, hi, lo, result, whence)
        141 | 220 => vec![w(1, Arg(2))],              // getdents(64)(fd, dirp, count)
        162 => vec![w(1, Fixed(8))],                  // nanosleep(req, rem)
        168 => vec![w(0, ArgTimes(1, 8))],            // poll(fds, nfds, timeout)
        174 => vec![w(2, Fixed(20))],                 // rt_sigaction(sig, act, oact, 8)
        175 => vec![w(2, Arg(3))],                    // rt_sigprocmask(how, set, oset, size)
        183 => vec![w(0, Arg(1))],                    // getcwd(buf, size)
        186 => vec![w(1, Fixed(12))],                 // sigaltstack(ss, old)
        191 => vec![w(1, Fixed(8))],                  // ugetrlimit(resource, rlim)
        195..=197 => vec![w(1, Fixed(96))],           // stat64, lstat64, fstat64
        221 => return fcntl_written(args[1]?),        // fcntl64(fd, cmd, arg)
        // modify_ldt(func, ptr, bytecount): 1 and 0x11 write the LDT, 0 and 2
        // read it into `ptr`.
        123 if matches!(args[0]?, 1 | 0x11) => Vec::new(),
        123 if matches!(args[0]?, 0 | 2) => vec![w(1, Arg(2))],
        243 => vec![w(0, Fixed(4))],   // set_thread_area(u_info)
        265 => vec![w(1, Fixed(8))],   // clock_gettime(clock, tp)
        300 => vec![w(2, Fixed(96))],  // fstatat64(dirfd, path, buf, flags)
        340 => vec![w(3, Fixed(16))],  // prlimit64(pid, res, new, old)
        355 => vec![w(0, Arg(1))],     // getrandom(buf, len, flags)
        383 => vec![w(4, Fixed(256))], // statx(dirfd, path, flags, mask, buf)
        403 => vec![w(1, Fixed(16))],  // clock_gettime64(clock, tp)
        _ => return None,
    })
}

/// What `ioctl` with `request` writes through its third argument.
fn ioctl_written(request: u32) -> Option<Vec<Written>> {
    Some(match request {
        0x5401 => vec![w(2, Size::Fixed(36))], // TCGETS: struct termios
        0x5413 => vec![w(2, Size::Fixed(8))],  // TIOCGWINSZ: struct winsize
        _ => return None,
    })
}

/// What `fcntl64` with `cmd` writes: nothing for the descriptor and status
/// flag commands and `F_DUPFD(_CLOEXEC)`.
fn fcntl_written(cmd: u32) -> Option<Vec<Written>> {
    match cmd {
        0..=4 | 1030 => Some(Vec::new()),
        _ => None,
    }
}

/// Whether system call `number` may come back: all but `exit` and
/// `exit_group`.
pub fn returns(number: u32) -> bool {
    !matches!(number, SYS_EXIT | SYS_EXIT_GROUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_memory_follows_the_arguments() {
        assert_eq!(memory_written(4, [None; 6]), Some(vec![]));
        assert_eq!(memory_written(3, [None; 6]), Some(vec![w(1, Size::Arg(2))]));
        assert_eq!(
            memory_written(54, [None; 6]),
            None,
            "ioctl needs its request"
        );
        assert_eq!(
            memory_written(54, [None, Some(0x5413), None, None, None, None]),
            Some(vec![w(2, Size::Fixed(8))])
        );
        assert_eq!(
            memory_written(54, [None, Some(0x5402), None, None, None, None]),
            None,
            "TCSETS is not listed"
        );
        assert_eq!(
            memory_written(221, [None, Some(1), None, None, None, None]),
            Some(vec![])
        );
        assert_eq!(
            memory_written(221, [None, Some(5), None, None, None, None]),
            None,
            "F_GETLK writes a lock"
        );
        assert_eq!(
            memory_written(102, [None; 6]),
            None,
            "socketcall is not listed"
        );
        let ldt = |func| memory_written(123, [Some(func), None, None, None, None, None]);
        assert_eq!(ldt(1), Some(vec![]));
        assert_eq!(ldt(0), Some(vec![w(1, Size::Arg(2))]));
        assert_eq!(ldt(7), None);
        assert!(!returns(SYS_EXIT_GROUP) && returns(3));
    }
}
