//! [`Session`]: binding times for the specializer, one function and
//! context at a time, with the function models shared between them.

use std::collections::HashMap;
use std::rc::Rc;

use wiper_elf::Binary;

use crate::graph::{CalleeInfo, Input};
use crate::memory::{AbstractLoc, AccessKind};
use crate::spec::StaticInput;
use crate::{
    check_arg_range, slice, Analyzer, BtaError, Context, InstructionTimes, Model, StaticSpec,
};

/// Analyses the functions of one binary in the contexts a polyvariant
/// specializer meets. The pattern-independent model of a function (its
/// decoded and lifted instructions, stack offsets, dependence graph) is
/// built once and reused for every context; each context costs one slice.
///
/// Unlike [`crate::analyze`], a session does not let control dependences
/// make parts dynamic: wiper's specializer follows each side of a dynamic
/// branch with its own static store (its points are program point and
/// store), so a value that only static values define stays static on
/// every path. What control dependence would add is left to the online
/// step (docs/specialization.md).
pub struct Session<'a> {
    analyzer: Analyzer<'a>,
    /// Models of analysed functions, by entry and static buffer arguments.
    models: HashMap<(u32, Vec<u32>), Option<Rc<Model>>>,
}

impl<'a> Session<'a> {
    /// A session over `binary`, with nothing analysed yet.
    pub fn new(binary: &'a Binary) -> Self {
        Session {
            analyzer: Analyzer::new(binary, false),
            models: HashMap::new(),
        }
    }

    /// The model of the function at `entry` with the static buffers
    /// `buffers` (built on first use).
    fn model(&mut self, entry: u32, buffers: &[u32]) -> Result<Rc<Model>, BtaError> {
        if let Some(Some(m)) = self.models.get(&(entry, buffers.to_vec())) {
            return Ok(m.clone());
        }
        let an = &mut self.analyzer;
        an.in_progress.insert(entry);
        let model = an.build_model(entry, buffers, 0);
        an.in_progress.remove(&entry);
        self.models
            .insert((entry, buffers.to_vec()), model.as_ref().ok().cloned());
        model
    }

    /// The binding time of every instruction of the function at `entry`
    /// when it starts in `context`.
    pub fn times_in(
        &mut self,
        entry: u32,
        context: &Context,
    ) -> Result<InstructionTimes, BtaError> {
        let model = self.model(entry, &context.buffers)?;
        let result = self.analyzer.binding(&model, context.pattern);
        let binding = slice::binding_times(&model.built, &result.dynamic);
        Ok(InstructionTimes::from_parts(
            &model.program.instructions,
            &binding,
        ))
    }

    /// Checks `spec` against the function at `entry` as [`crate::analyze`]
    /// does (the function can be analysed, the arguments named exist),
    /// building the model the specializer's first context will use.
    pub fn check(&mut self, entry: u32, spec: &StaticSpec) -> Result<(), BtaError> {
        let nargs = self
            .model(entry, &Context::of_spec(spec).buffers)?
            .built
            .nargs;
        check_arg_range(spec.max_arg(), nargs)
    }

    /// How many 4-byte stack arguments the function at `entry` reads.
    pub fn arg_count(&mut self, entry: u32) -> Result<u32, BtaError> {
        // The arguments a function reads do not depend on which of them
        // point to static buffers: any model of it will do.
        let any = self
            .models
            .iter()
            .find_map(|((e, _), m)| m.as_ref().filter(|_| *e == entry));
        match any {
            Some(m) => Ok(m.built.nargs),
            None => Ok(self.model(entry, &[])?.built.nargs),
        }
    }

    /// The inputs of `spec` that the function at `entry` never reads: no
    /// part of it (and no call, which may pass the value to its callee)
    /// reads the stack argument or register before writing it. A register
    /// only saved by the prologue (`push ebx`) is not read. Conservatively,
    /// every stack argument counts as read when the frame's address
    /// escapes (a callee may read the arguments through it) or the
    /// function tail-calls a function it cannot analyse (which reads them in
    /// place), and every register reaching a call counts as read.
    pub fn unread_inputs(
        &mut self,
        entry: u32,
        spec: &StaticSpec,
    ) -> Result<Vec<StaticInput>, BtaError> {
        let model = self.model(entry, &Context::of_spec(spec).buffers)?;
        let args_escape = model.stack.escaped
            || model
                .program
                .calls
                .iter()
                .zip(&model.callees)
                .any(|(c, (_, info))| c.tail && matches!(info, CalleeInfo::Opaque));
        Ok(spec
            .entries
            .iter()
            .filter(|e| match e {
                StaticInput::Arg { index, .. } => {
                    !args_escape && !input_read(&model, Input::Arg(*index))
                }
                StaticInput::Reg { reg, .. } => !input_read(&model, Input::Reg(*reg)),
            })
            .cloned()
            .collect())
    }
}

/// Whether some part or call of `model` reads the entry value of `input`
/// (a part that only stores it into a register save slot does not).
fn input_read(model: &Model, input: Input) -> bool {
    use petgraph::visit::EdgeRef;
    let built = &model.built;
    let Some(&(_, node)) = built.entry_nodes.iter().find(|(i, _)| *i == input) else {
        return false;
    };
    if let Input::Reg(r) = input {
        if built
            .calls
            .iter()
            .any(|c| c.reg_defs[r.index()].contains(&node))
        {
            return true;
        }
    }
    let g = &built.graph.g;
    g.edges_directed(node, petgraph::Direction::Outgoing)
        .any(|e| match g[e.target()] {
            crate::Node::Part(p) if matches!(input, Input::Reg(_)) => !saves_only(model, p.index()),
            _ => true,
        })
}

/// Whether part `p` only stores into register save slots (`push ebx` in
/// the prologue).
fn saves_only(model: &Model, p: usize) -> bool {
    let accesses = &model.stack.accesses[p];
    !accesses.is_empty()
        && accesses.iter().all(|a| {
            a.kind == AccessKind::Write
                && matches!(a.loc, AbstractLoc::Stack { offset, size: 4 }
                    if model.built.save_slots.contains(&offset))
        })
}
