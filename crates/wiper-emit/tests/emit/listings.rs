//! Exact listings, checked by hand against the residual that made them.

use super::*;

/// A PIE residual: thunks, the residual's data and two symbols through
/// `call thunk; lea`, a call to a residual block, a jump to the original
/// code, labels at the entry and the branch and call targets, and a trap.
#[test]
fn listing_names_targets_addresses_and_origins() {
    let e = emit("pie_switch-O2", "step", table_and_calls);
    assert_eq!(e.run(&["3", "4", "5"]).stdout_str(), "26\n26\n");
    assert_eq!(e.run(&["9", "4", "5"]).stdout_str(), "-1\n0\n");
    insta::assert_snapshot!(listing(&e.binary, &e.encoded), @"
    ; 19 residual instructions, 73 bytes at 0x00005060, entry 0x00005060
    pc_thunk.ecx:
      00005020  e8 00 00 00 00     call   0x5025                            ; pc thunk ecx
      00005025  59                 pop    ecx                               ; pc thunk ecx
      00005026  c3                 ret                                      ; pc thunk ecx
    pc_thunk.edx:
      00005028  e8 00 00 00 00     call   0x502d                            ; pc thunk edx
      0000502d  5a                 pop    edx                               ; pc thunk edx
      0000502e  c3                 ret                                      ; pc thunk edx
    L0:
      00005060  e8 c3 ff ff ff     call   0x5028 <pc_thunk.edx>             ; materialized for 0x1290
      00005065  8d 92 c7 ef ff ff  lea    edx,[edx-0x1039]                  ; materialized for 0x1290, address 0x3ff4 <_GLOBAL_OFFSET_TABLE_>
      0000506b  8b 44 24 04        mov    eax,DWORD PTR [esp+0x4]           ; from 0x129b
      0000506f  3d 07 00 00 00     cmp    eax,0x7                           ; from 0x129b
      00005074  0f 87 06 c0 ff ff  ja     0x1080 <step.cold>                ; from 0x12a2
      0000507a  e8 a1 ff ff ff     call   0x5020 <pc_thunk.ecx>             ; materialized for 0x12a8
      0000507f  8d 49 db           lea    ecx,[ecx-0x25]                    ; materialized for 0x12a8, address 0x5000
      00005082  8b 04 81           mov    eax,DWORD PTR [ecx+eax*4]         ; from 0x12a8
      00005085  e8 12 00 00 00     call   0x509c <L2>                       ; glue 0x12af
      0000508a  85 c0              test   eax,eax                           ; from 0x12af
      0000508c  78 11              js     0x509f <L3>                       ; from 0x1234
      0000508e  e8 8d ff ff ff     call   0x5020 <pc_thunk.ecx>             ; materialized for 0x12d1
      00005093  8d 89 f7 ef ff ff  lea    ecx,[ecx-0x1009]                  ; materialized for 0x12d1, address 0x401c <calls>
      00005099  89 01              mov    DWORD PTR [ecx],eax               ; from 0x12d1
      0000509b  c3                 ret                                      ; from 0x12d1
    L2:
      0000509c  01 c0              add    eax,eax                           ; from 0x1300
      0000509e  c3                 ret                                      ; from 0x1300
    L3:
      0000509f  e8 7c ff ff ff     call   0x5020 <pc_thunk.ecx>             ; from 0x1080
      000050a4  8d 51 10           lea    edx,[ecx+0x10]                    ; from 0x1080
      000050a7  0f 0b              ud2                                      ; trap: the exit block could fall through
    ");
}

/// The only instruction of an empty exit block is its trap, at the start of
/// the code.
#[test]
fn listing_of_a_lone_trap() {
    let (_, binary) = load("power-O2");
    let p = plan(&binary, 0).unwrap();
    let r = residual(0, vec![block(0, Vec::new(), Terminator::Exit)]);
    let encoded = encode(&p, &r).unwrap();
    insta::assert_snapshot!(listing(&binary, &encoded), @"
    ; 0 residual instructions, 2 bytes at 0x0804b000, entry 0x0804b000
    L0:
      0804b000  0f 0b  ud2                                      ; trap: the exit block could fall through
    ");
}
