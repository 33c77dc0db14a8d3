//! The warnings found while specializing: a static integer used as an
//! address, and a static buffer read past its end (see
//! [`crate::Warning`]). They are noted on every evaluation of the final run
//! (a restart forgets those of the run before), once per instruction and
//! input, and change nothing else.

use wiper_bta::{StaticInput, StaticValue};

use super::Specializer;
use crate::eval::Evaluated;
use crate::state::Region;
use crate::warnings::input_text;
use crate::Warning;

/// How far (in bytes) an address may be from a static integer to count as
/// derived from it (a field or element offset), and from a static buffer's
/// end to count as a read past it.
const NEAR: i64 = 0x1_0000;

/// Most warnings one run notes.
const MAX_WARNINGS: usize = 32;

impl Specializer<'_> {
    /// Notes the warnings the evaluation `ev` of the instruction at `at`
    /// shows: accesses at constant addresses that the binary does not map
    /// near a static integer's value, reads past a static buffer's end.
    pub(super) fn note_warnings(&mut self, at: u32, ev: &Evaluated) {
        let reads = ev.known_reads.iter().map(|r| (*r, false));
        let writes = (ev.known_writes.iter().chain(&ev.dyn_known_writes)).map(|w| (*w, true));
        let accesses: Vec<_> = reads.chain(writes).collect();
        for ((region, off, size), write) in accesses {
            if !write {
                if let Some(w) = self.past_end(at, region, off, size) {
                    self.note(w);
                    continue;
                }
            }
            if let Some(w) = self.integer_address(at, region, off, size, write) {
                self.note(w);
            }
        }
    }

    /// Adds `w` unless the run has one of its kind for the same instruction
    /// and input already.
    fn note(&mut self, w: Warning) {
        let key = |w: &Warning| match w {
            Warning::IntegerAsAddress { input, at, .. } => Some((0, *at, input.clone())),
            Warning::ReadPastEnd { input, at, .. } => Some((1, *at, input.clone())),
            _ => None,
        };
        let k = key(&w);
        let warnings = &mut self.run.warnings;
        if warnings.len() < MAX_WARNINGS && !warnings.iter().any(|x| key(x) == k) {
            warnings.push(w);
        }
    }

    /// A read of `size` bytes at `off` of `region` that starts after the
    /// end of a static buffer (within [`NEAR`] bytes, and not inside another
    /// buffer). A read that only straddles the end is not one: string
    /// functions read whole aligned words (or 16-byte blocks) around the
    /// terminating NUL.
    fn past_end(&self, at: u32, region: Region, off: u32, size: u32) -> Option<Warning> {
        let buffer = self
            .buffer_ranges
            .iter()
            .filter(|b| b.region == region && b.start <= off)
            .max_by_key(|b| b.start)?;
        let end = i64::from(off) + i64::from(size);
        let inside_other = self
            .buffer_ranges
            .iter()
            .any(|b| b.region == region && b.start <= off && end <= i64::from(b.end));
        let start = i64::from(off);
        let buffer_end = i64::from(buffer.end);
        if inside_other || start < buffer_end || start >= buffer_end + NEAR {
            return None;
        }
        let input =
            self.spec.entries.iter().find(
                |e| matches!(e, StaticInput::Arg { index, .. } if Some(*index) == buffer.arg),
            )?;
        Some(Warning::ReadPastEnd {
            input: input_text(input),
            at,
            offset: off - buffer.start,
            size,
            len: buffer.end - buffer.start,
        })
    }

    /// An access at a constant address the binary does not map (nor the
    /// residual's data), within [`NEAR`] bytes of a static integer input's
    /// value: the nearest such input.
    fn integer_address(
        &self,
        at: u32,
        region: Region,
        off: u32,
        size: u32,
        write: bool,
    ) -> Option<Warning> {
        if region != Region::Abs || (!self.pie && self.binary.segment_at(off).is_some()) {
            return None;
        }
        let data = &self.data_range;
        if data.0 == region && off >= data.1 && i64::from(off) < i64::from(data.2) + NEAR {
            return None;
        }
        let (input, arg) = self
            .spec
            .entries
            .iter()
            .filter_map(|e| {
                let (value, arg) = match e {
                    StaticInput::Arg {
                        index,
                        value: StaticValue::Int(v),
                    } => (*v, Some(*index)),
                    StaticInput::Reg { value, .. } => (*value, None),
                    StaticInput::Arg { .. } => return None,
                };
                let distance = (i64::from(off) - i64::from(value)).abs();
                (distance <= NEAR).then_some((distance, e, arg))
            })
            .min_by_key(|(d, ..)| *d)
            .map(|(_, e, arg)| (input_text(e), arg))?;
        Some(Warning::IntegerAsAddress {
            input,
            arg,
            at,
            address: off,
            size,
            write,
        })
    }
}
