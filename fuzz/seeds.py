#!/usr/bin/env python3
"""Builds the committed seed corpus of the fuzz targets from testdata.

    python3 fuzz/seeds.py        # from the repository root or fuzz/

seeds/binaries: testdata binaries, the inputs of elf_load, decode_cfg and
specialize (one small gcc -m32 binary per function of the specialize
target's cases, a PIE, a dynamic binary, a real Debian one); seeds/specs:
the --static values of docs/usage.md and the tests, NUL-separated, the
inputs of spec_parse. The output is the same on every run.
"""

import pathlib
import shutil

FUZZ = pathlib.Path(__file__).resolve().parent
TESTDATA = FUZZ.parent / "testdata"

BINARIES = [
    "bin/power-O2", "bin/prod-O0", "bin/abn-O1", "bin/switch-O2",
    "bin/switch-O0", "bin/interp-O2", "bin/loops-O1", "bin/recursion-O2",
    "bin/calls-O2", "bin/fill-O1", "bin/wide-O2", "bin/fpu-O2",
    "bin/pie_switch-O2", "bin/libc_demo-dyn", "real/debian/bzip2",
]

SPECS = [
    ["arg1=1", "arg2=2"],
    ["arg1=3", "arg2=5"],
    ["arg1=-2"],
    ["arg2=0x8"],
    ["arg0=2", "arg1=1", "arg2=10"],
    ["arg0=@i32:1,1,2,6,10,13,7,8,5,7,12,11,3,9,0"],
    ["arg0=@str:abracadabra"],
    ["arg0=@str:banana", "arg1=97"],
    ["arg0=@bytes:00ff10"],
    ["eax=1", "ecx=0xffffffff", "edx=-2147483648"],
    ["ebx=7", "ebp=0", "esi=3", "edi=4"],
    ["arg1=x"],
    ["arg9=1", "arg9=2"],
]


def main():
    out = FUZZ / "seeds"
    shutil.rmtree(out, ignore_errors=True)
    (out / "binaries").mkdir(parents=True)
    (out / "specs").mkdir()
    for name in BINARIES:
        shutil.copyfile(TESTDATA / name, out / "binaries" / name.replace("/", "_"))
    for i, specs in enumerate(SPECS):
        (out / "specs" / f"spec{i:02}").write_bytes("\0".join(specs).encode())


if __name__ == "__main__":
    main()
