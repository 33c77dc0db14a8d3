//! Warnings of meaning: a spec that is probably not what the user meant.
//! They never change the residual (or make specialization fail); the
//! specializer only reports them in [`crate::Specialization::warnings`].
//!
//! Two are found while specializing (by the driver, on the final run): a
//! static integer used as an address ([`Warning::IntegerAsAddress`]) and a
//! static buffer read past its end ([`Warning::ReadPastEnd`]). The others
//! come from the binary ([`binary_warnings`]): an input the function never
//! reads (the binding-time analysis's dependence graph), a function nothing
//! calls, and call sites that pass other constants than the spec
//! (`wiper_x86::callsites`). docs/usage.md ("Warnings") says what each
//! catches and what it does not.

use std::fmt;

use wiper_bta::{StaticInput, StaticSpec, StaticValue};
use wiper_elf::Binary;
use wiper_x86::{callsites, find_main, Disassembler};

/// One warning about the spec or the function; its `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Warning {
    /// A memory access at `at` whose address is a constant that lies in no
    /// segment of the binary (nor in the static buffers) and derives from
    /// the static integer input `input`: the integer is used as a pointer.
    IntegerAsAddress {
        /// The input as a spec writes it (`arg1=5`, `ebx=0x10`).
        input: String,
        /// Whether the input is a stack argument (a pointer spec would do).
        arg: Option<u32>,
        /// The accessing instruction.
        at: u32,
        /// The address accessed.
        address: u32,
        /// Bytes accessed.
        size: u32,
        /// A store (else a load).
        write: bool,
    },
    /// A static input the function (and its callees) never reads.
    UnreadInput {
        /// The input as a spec writes it.
        input: String,
        /// The function's name.
        function: String,
    },
    /// A read at `at` of a static buffer that goes past its end.
    ReadPastEnd {
        /// The input (`arg0=@i32:1,2,3`, long ones shortened).
        input: String,
        /// The reading instruction.
        at: u32,
        /// The first byte read, from the buffer's start.
        offset: u32,
        /// Bytes read.
        size: u32,
        /// The buffer's length in bytes.
        len: u32,
    },
    /// No direct call or jump in the binary reaches the function and its
    /// address is stored nowhere in the code or data: the residual code
    /// (which runs when the function is called) never runs.
    NeverCalled {
        /// The function's name.
        function: String,
        /// Its entry.
        entry: u32,
    },
    /// A direct call of the function stores another constant in a static
    /// argument's slot than the spec gives it.
    OtherConstant {
        /// The argument number.
        arg: u32,
        /// The spec's value.
        spec: u32,
        /// The constant the call passes.
        passed: u32,
        /// The `call` instruction.
        site: u32,
        /// The calling function's name.
        caller: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::IntegerAsAddress {
                input,
                arg,
                at,
                address,
                size,
                write,
            } => {
                let what = if *write { "store to" } else { "load from" };
                write!(
                    f,
                    "static {input} is used as an address at {at:#x} ({size}-byte {what} {address:#x}, \
                     which the binary does not map)"
                )?;
                if let Some(k) = arg {
                    write!(f, "; did you mean arg{k}=@i32:... or arg{k}=@str:...?")?;
                }
                Ok(())
            }
            Warning::UnreadInput { input, function } => write!(
                f,
                "static {input} is never read: {function} and its callees do not read it before writing it, \
                 so the spec changes nothing"
            ),
            Warning::ReadPastEnd {
                input,
                at,
                offset,
                size,
                len,
            } => write!(
                f,
                "static {input} is read past its end at {at:#x} ({size} bytes at offset {offset}; it has \
                 {len} bytes); the residual reads what follows it"
            ),
            Warning::NeverCalled { function, entry } => write!(
                f,
                "nothing in the binary calls {function}: no direct call or jump reaches {entry:#x} and \
                 its address is stored nowhere, so the residual code would never run"
            ),
            Warning::OtherConstant {
                arg,
                spec,
                passed,
                site,
                caller,
            } => write!(
                f,
                "the call at {site:#x} in {caller} passes arg{arg}={}, not the static arg{arg}={}; \
                 the residual ignores what callers pass",
                int_text(*passed),
                int_text(*spec)
            ),
        }
    }
}

/// An integer as a spec writes it: small ones in signed decimal, others in
/// hex.
fn int_text(v: u32) -> String {
    let s = v as i32;
    if (-4096..=4096).contains(&s) {
        s.to_string()
    } else {
        format!("{v:#x}")
    }
}

/// The longest input text a warning prints (a long buffer is shortened).
const INPUT_TEXT: usize = 48;

/// `input` as a spec writes it, shortened with `...` past
/// [`INPUT_TEXT`] characters.
pub(crate) fn input_text(input: &StaticInput) -> String {
    let text = input.to_string();
    if text.chars().count() <= INPUT_TEXT {
        return text;
    }
    let mut short: String = text.chars().take(INPUT_TEXT).collect();
    short.push_str("...");
    short
}

/// The warnings that come from the binary, not from specializing: inputs
/// the function never reads (`session`'s analysis), a function nothing
/// calls, and direct calls that pass other constants than the spec.
pub(crate) fn binary_warnings(
    binary: &Binary,
    entry: u32,
    spec: &StaticSpec,
    session: &mut wiper_bta::Session<'_>,
) -> Vec<Warning> {
    let name = |a: u32| binary.name_of(a).unwrap_or_else(|| format!("fn_{a:x}"));
    let function = name(entry);
    let mut out: Vec<Warning> = session
        .unread_inputs(entry, spec)
        .unwrap_or_default()
        .iter()
        .map(|i| Warning::UnreadInput {
            input: input_text(i),
            function: function.clone(),
        })
        .collect();
    let mut dis = Disassembler::new(binary);
    let is_root = entry == binary.entry || find_main(binary) == Some(entry);
    if !is_root && !callsites::is_referenced(&mut dis, entry) {
        out.push(Warning::NeverCalled {
            function: function.clone(),
            entry,
        });
    }
    // A recursive call is specialized with the rest of the function.
    for call in callsites::direct_calls(&mut dis, entry)
        .into_iter()
        .filter(|c| c.caller != entry)
    {
        for &(arg, passed, _) in &call.constants {
            if let Some(StaticValue::Int(v)) = spec.arg(arg) {
                if *v != passed {
                    out.push(Warning::OtherConstant {
                        arg,
                        spec: *v,
                        passed,
                        site: call.site,
                        caller: name(call.caller),
                    });
                }
            }
        }
    }
    out
}
