//! Binding times per instruction, in a specialization context: what the
//! specializer reads from the analysis.

use std::collections::HashMap;

use crate::spec::{StaticInput, StaticSpec, StaticValue};
use crate::{BindingTime, InstructionInfo, Pattern};

/// What is static when a function starts running at specialization time:
/// the context a [`crate::Session`] analyses it in. The specializer computes
/// one for every function it enters (from its static store at the entry),
/// so the analysis is polyvariant over the specializer's contexts at
/// function granularity; within a function it is monovariant, and the
/// specializer refines it online (see docs/specialization.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Context {
    /// The static registers and stack arguments at the entry.
    pub pattern: Pattern,
    /// Stack arguments that point to static buffers (their contents are
    /// static).
    pub buffers: Vec<u32>,
}

impl Context {
    /// The context `spec` gives its function: the static arguments and
    /// registers, and the arguments that point to static buffers.
    pub fn of_spec(spec: &StaticSpec) -> Context {
        let mut pattern = Pattern { regs: 0, args: 0 };
        let mut buffers = Vec::new();
        for e in &spec.entries {
            match e {
                StaticInput::Arg { index, value } => {
                    if *index < 64 {
                        pattern.args |= 1 << index;
                    }
                    if matches!(value, StaticValue::Pointer(_)) {
                        buffers.push(*index);
                    }
                }
                StaticInput::Reg { reg, .. } => pattern.regs |= 1 << reg.index(),
            }
        }
        Context { pattern, buffers }
    }
}

/// The binding time of a whole instruction: its parts' times combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstructionTime {
    /// Every part is Static (or the instruction has none).
    Static,
    /// Every part is Dynamic: the instruction reads no static location.
    Dynamic,
    /// Some part is Lifted, or the parts differ: static values must be
    /// folded into residual code (Reduce).
    Lifted,
}

/// The [`InstructionTime`] of every instruction of one analysed function.
#[derive(Debug, Clone, Default)]
pub struct InstructionTimes {
    by_address: HashMap<u32, InstructionTime>,
}

impl InstructionTimes {
    /// The times of `instructions`, whose parts have the times `binding`
    /// (indexed by [`crate::PartId`]).
    pub(crate) fn from_parts(instructions: &[InstructionInfo], binding: &[BindingTime]) -> Self {
        let by_address = instructions
            .iter()
            .map(|ins| {
                let times = ins.parts.clone().map(|p| &binding[p as usize]);
                (ins.address, combine(times))
            })
            .collect();
        InstructionTimes { by_address }
    }

    /// The time of the instruction at `address`, if the function has one
    /// there.
    pub fn at(&self, address: u32) -> Option<InstructionTime> {
        self.by_address.get(&address).copied()
    }
}

/// One instruction's time from its parts' times.
fn combine<'a>(times: impl Iterator<Item = &'a BindingTime>) -> InstructionTime {
    let (mut statics, mut dynamics, mut lifted) = (0, 0, 0);
    for t in times {
        match t {
            BindingTime::Static => statics += 1,
            BindingTime::Dynamic => dynamics += 1,
            BindingTime::Lifted(_) => lifted += 1,
        }
    }
    match (statics, dynamics, lifted) {
        (_, 0, 0) => InstructionTime::Static,
        (0, _, 0) => InstructionTime::Dynamic,
        _ => InstructionTime::Lifted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_combine_into_one_time() {
        let s = BindingTime::Static;
        let d = BindingTime::Dynamic;
        let l = BindingTime::Lifted(Vec::new());
        assert_eq!(combine([].iter()), InstructionTime::Static);
        assert_eq!(
            combine([s.clone(), s.clone()].iter()),
            InstructionTime::Static
        );
        assert_eq!(
            combine([d.clone(), d.clone()].iter()),
            InstructionTime::Dynamic
        );
        assert_eq!(
            combine([s.clone(), d.clone()].iter()),
            InstructionTime::Lifted
        );
        assert_eq!(combine([d, l].iter()), InstructionTime::Lifted);
    }
}
