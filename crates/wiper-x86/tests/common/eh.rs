//! Landing pads from a binary's unwind tables: the code the C++/`-fexceptions`
//! unwinder enters (cleanups of `__attribute__((cleanup))` in glibc's stdio),
//! which no branch reaches. Read from `.eh_frame` (each FDE's LSDA pointer)
//! and `.gcc_except_table` (each LSDA's call-site table), as the unwinder
//! does (LSB 5.0, "Exception Frames"; the Itanium C++ ABI's LSDA).

use std::collections::BTreeSet;

use wiper_elf::Binary;

const OMIT: u8 = 0xff;

/// A cursor over the memory image.
struct Reader<'a> {
    binary: &'a Binary,
    at: u32,
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = self.binary.read(self.at, 1)?[0];
        self.at += 1;
        Some(b)
    }

    fn fixed(&mut self, n: u32) -> Option<u64> {
        let b = self.binary.read(self.at, n)?;
        self.at += n;
        Some(b.iter().rev().fold(0, |v, &x| (v << 8) | u64::from(x)))
    }

    fn uleb(&mut self) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
    }

    fn sleb(&mut self) -> Option<i64> {
        let (mut v, mut shift) = (0i64, 0);
        loop {
            let b = self.u8()?;
            v |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1 << shift;
                }
                return Some(v);
            }
        }
    }

    /// A pointer in DWARF encoding `enc` (`DW_EH_PE_*`); pc-relative ones
    /// are relative to where they are stored.
    fn pointer(&mut self, enc: u8) -> Option<u32> {
        let field = self.at;
        let v = match enc & 0x0f {
            0x00 | 0x03 => self.fixed(4)?,
            0x01 => self.uleb()?,
            0x02 => self.fixed(2)?,
            0x09 => self.sleb()? as u64,
            0x0a => self.fixed(2)? as i16 as i64 as u64,
            0x0b => self.fixed(4)? as i32 as i64 as u64,
            _ => return None,
        } as u32;
        match enc & 0x70 {
            0x00 => Some(v),
            0x10 => Some(v.wrapping_add(field)),
            _ => None,
        }
    }
}

/// The landing pads of every function with an LSDA.
pub fn landing_pads(binary: &Binary) -> BTreeSet<u32> {
    let mut pads = BTreeSet::new();
    let Some(section) = binary.section(".eh_frame") else {
        return pads;
    };
    let end = section.addr + section.size;
    let mut at = section.addr;
    while at + 4 <= end {
        let mut r = Reader { binary, at };
        let Some(len) = r.fixed(4) else { break };
        if len == 0 || len == 0xffff_ffff {
            break;
        }
        let next = r.at + len as u32;
        let id_at = r.at;
        if let Some(id) = r.fixed(4).filter(|&id| id != 0) {
            if let Some((begin, lsda)) = fde_lsda(&mut r, id_at - id as u32) {
                pads.extend(lsda_pads(binary, lsda, begin).unwrap_or_default());
            }
        }
        at = next;
    }
    pads
}

/// What a CIE says about its FDEs: the encodings of their pointers and of
/// their LSDA pointer (when they have one).
fn cie_encodings(binary: &Binary, cie: u32) -> Option<(u8, Option<u8>)> {
    let mut r = Reader {
        binary,
        at: cie + 8,
    };
    let version = r.u8()?;
    let mut aug = Vec::new();
    loop {
        match r.u8()? {
            0 => break,
            c => aug.push(c),
        }
    }
    r.uleb()?;
    r.sleb()?;
    if version == 1 {
        r.u8()?;
    } else {
        r.uleb()?;
    }
    if aug.first() != Some(&b'z') {
        return Some((0, None));
    }
    r.uleb()?;
    let (mut fde_enc, mut lsda_enc) = (0, None);
    for c in &aug[1..] {
        match c {
            b'L' => lsda_enc = Some(r.u8()?),
            b'R' => fde_enc = r.u8()?,
            b'P' => {
                let enc = r.u8()?;
                r.pointer(enc & 0x7f)?;
            }
            _ => {}
        }
    }
    Some((fde_enc, lsda_enc))
}

/// The function start and LSDA address of the FDE `r` is in (after its CIE
/// pointer), when it has an LSDA.
fn fde_lsda(r: &mut Reader<'_>, cie: u32) -> Option<(u32, u32)> {
    let (fde_enc, lsda_enc) = cie_encodings(r.binary, cie)?;
    let begin = r.pointer(fde_enc)?;
    r.pointer(fde_enc & 0x0f)?;
    r.uleb()?;
    let enc = lsda_enc.filter(|&e| e != OMIT)?;
    let lsda = r.pointer(enc)?;
    (lsda != 0).then_some((begin, lsda))
}

/// The landing pads of the LSDA at `lsda` of the function at `begin`.
fn lsda_pads(binary: &Binary, lsda: u32, begin: u32) -> Option<Vec<u32>> {
    let mut r = Reader { binary, at: lsda };
    let lpstart_enc = r.u8()?;
    let lpstart = if lpstart_enc == OMIT {
        begin
    } else {
        r.pointer(lpstart_enc)?
    };
    if r.u8()? != OMIT {
        r.uleb()?;
    }
    let cs_enc = r.u8()?;
    let cs_len = r.uleb()? as u32;
    let end = r.at + cs_len;
    let mut pads = Vec::new();
    while r.at < end {
        r.pointer(cs_enc)?;
        r.pointer(cs_enc)?;
        let pad = r.pointer(cs_enc)?;
        r.uleb()?;
        if pad != 0 {
            pads.push(lpstart.wrapping_add(pad));
        }
    }
    Some(pads)
}
