//! Function ranges from the call-frame information in `.eh_frame`.
//!
//! gcc emits one FDE (frame description entry) per function, stripped or
//! not, so the FDEs' initial locations are function starts in binaries
//! without symbols (angr, Ghidra and ddisasm use them the same way). The
//! format is the LSB's `.eh_frame` (DWARF call frame information with GNU
//! augmentations): a sequence of length-prefixed CIEs and FDEs; an FDE's
//! address range is encoded as its CIE's `R` augmentation says
//! (`DW_EH_PE_*`, on i386 usually pc-relative signed 4-byte).

use crate::Binary;

/// The code range one FDE describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdeRange {
    /// First address.
    pub start: u32,
    /// Length in bytes.
    pub len: u32,
}

/// `DW_EH_PE_omit`: no value.
const PE_OMIT: u8 = 0xff;

/// A cursor over the bytes of `.eh_frame`, which knows each byte's address
/// (for pc-relative values).
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    vaddr: u32,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn fixed(&mut self, n: usize) -> Option<u64> {
        let s = self.bytes.get(self.pos..self.pos + n)?;
        self.pos += n;
        Some(s.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b)))
    }

    fn uleb(&mut self) -> Option<u64> {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
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
            if shift < 64 {
                v |= i64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    v |= -1 << shift;
                }
                return Some(v);
            }
        }
    }

    fn cstr(&mut self) -> Option<&[u8]> {
        let rest = self.bytes.get(self.pos..)?;
        let n = rest.iter().position(|&b| b == 0)?;
        self.pos += n + 1;
        Some(&rest[..n])
    }

    /// A value in pointer encoding `enc`; `apply` adds the pc-relative base
    /// (false for an FDE's length, which is encoded without it).
    fn encoded(&mut self, enc: u8, apply: bool) -> Option<u32> {
        if enc == PE_OMIT {
            return None;
        }
        let field = self.vaddr.wrapping_add(self.pos as u32);
        let raw = match enc & 0x0f {
            0x00 | 0x03 => self.fixed(4)?,
            0x01 => self.uleb()?,
            0x02 => self.fixed(2)?,
            0x04 => self.fixed(8)?,
            0x09 => self.sleb()? as u64,
            0x0a => self.fixed(2)? as i16 as i64 as u64,
            0x0b => self.fixed(4)? as i32 as i64 as u64,
            0x0c => self.fixed(8)?,
            _ => return None,
        } as u32;
        match (enc & 0x70, apply) {
            (_, false) | (0x00, true) => Some(raw),
            (0x10, true) => Some(raw.wrapping_add(field)),
            _ => None, // textrel, datarel, funcrel, aligned: not used for code on i386
        }
    }
}

/// The FDE pointer encoding a CIE gives (its `R` augmentation), or `None`
/// when the CIE cannot be read.
fn cie_encoding(c: &mut Cursor<'_>) -> Option<u8> {
    let version = c.u8()?;
    let aug = c.cstr()?.to_vec();
    if aug.windows(2).any(|w| w == b"eh") {
        c.fixed(4)?;
    }
    c.uleb()?; // code alignment
    c.sleb()?; // data alignment
    if version == 1 {
        c.u8()?;
    } else {
        c.uleb()?;
    }
    let mut enc = 0x00;
    if aug.first() != Some(&b'z') {
        return Some(enc);
    }
    c.uleb()?; // augmentation data length
    for &ch in &aug[1..] {
        match ch {
            b'L' => {
                c.u8()?;
            }
            b'P' => {
                let p = c.u8()?;
                c.encoded(p, true)?;
            }
            b'R' => enc = c.u8()?,
            b'S' | b'B' | b'G' => {}
            _ => return None,
        }
    }
    Some(enc)
}

/// Every FDE's range in the `.eh_frame` bytes `bytes` loaded at `vaddr`.
/// Reading stops at the terminator, the end, or the first entry that
/// cannot be read.
pub(crate) fn fde_ranges(bytes: &[u8], vaddr: u32) -> Vec<FdeRange> {
    let mut out = Vec::new();
    let mut c = Cursor {
        bytes,
        pos: 0,
        vaddr,
    };
    while let Some(len) = c.fixed(4) {
        if len == 0 || len == 0xffff_ffff {
            break;
        }
        let body = c.pos;
        let next = body + len as usize;
        let Some(id) = c.fixed(4) else { break };
        if id != 0 {
            // The CIE pointer counts back from its own field to the CIE's
            // length; the CIE's body starts after length and id.
            let Some(cie) = body.checked_sub(id as usize) else {
                break;
            };
            let mut cc = Cursor {
                bytes,
                pos: cie + 8,
                vaddr,
            };
            let range = cie_encoding(&mut cc).and_then(|enc| {
                let start = c.encoded(enc, true)?;
                let len = c.encoded(enc, false)?;
                Some(FdeRange { start, len })
            });
            if let Some(r) = range {
                out.push(r);
            }
        }
        if next > bytes.len() {
            break;
        }
        c.pos = next;
    }
    out
}

impl Binary {
    /// The code ranges of the `.eh_frame` FDEs that lie in executable
    /// segments and are not empty, sorted by start: one per function gcc
    /// compiled with unwind information, symbols or not. Empty when the
    /// file has no `.eh_frame` section.
    pub fn unwind_ranges(&self) -> Vec<FdeRange> {
        let Some(sec) = self.section(".eh_frame") else {
            return Vec::new();
        };
        let Some(bytes) = self.section_bytes(sec) else {
            return Vec::new();
        };
        let mut ranges: Vec<FdeRange> = fde_ranges(&bytes, sec.addr)
            .into_iter()
            .filter(|r| r.len > 0 && self.is_executable(r.start))
            .collect();
        ranges.sort_by_key(|r| (r.start, r.len));
        ranges.dedup();
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_and_encodings() {
        let mut c = Cursor {
            bytes: &[0xe5, 0x8e, 0x26, 0x7f, 0x80, 0x7f, 0xfc, 0xff, 0xff, 0xff],
            pos: 0,
            vaddr: 0x1000,
        };
        assert_eq!(c.uleb(), Some(624_485));
        assert_eq!(c.sleb(), Some(-1));
        assert_eq!(c.sleb(), Some(-128));
        // pc-relative sdata4 at 0x1006: -4 + 0x1006.
        assert_eq!(c.encoded(0x1b, true), Some(0x1002));
        assert_eq!(c.encoded(0x1b, true), None, "past the end");
    }
}
