//! The static input specification, shared by the binding-time analysis and
//! the specializer: which inputs of a function are known at specialization
//! time, and their values.
//!
//! Forms (one per `--static` value):
//!
//! | form | meaning |
//! |---|---|
//! | `argN=INT` | the Nth 32-bit cdecl stack argument (0-based, at `[esp+4+4N]` on entry) |
//! | `argN=@str:TEXT` | a pointer argument to the bytes of TEXT and a NUL |
//! | `argN=@i32:1,2,3` | a pointer argument to 32-bit little-endian integers |
//! | `argN=@bytes:HEX` | a pointer argument to the given bytes (pairs of hex digits) |
//! | `REG=INT` | a register at entry: `eax`, `ecx`, `edx`, `ebx`, `ebp`, `esi`, `edi` |
//!
//! `INT` is decimal (optionally negative) or `0x` hex, and must fit 32 bits.
//! For a pointer argument the pointer value is a specialization-time address
//! and the pointee's contents are static. Read-only data of the binary is
//! static without being named; everything else is dynamic.

use std::fmt;
use std::str::FromStr;

use wiper_sem::Reg;

/// Why a static spec could not be parsed. Displays as one line naming the
/// spec: ``invalid static spec `arg-1=3`: argument index must be a non-negative integer``
/// (control characters and line separators in the spec, which a
/// command-line argument may hold, are shown escaped: `\n`, `\r`, `\u{2028}`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid static spec `{}`: {}", escaped(.spec), escaped(.reason))]
pub struct SpecError {
    /// The spec as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

/// `text` with every control character and line or paragraph separator
/// escaped as Rust writes it, so that it prints on one line.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

/// Contents of the memory a static pointer argument points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Buffer {
    /// The bytes of a string, including the terminating NUL.
    Str(Vec<u8>),
    /// 32-bit integers (stored little-endian).
    I32(Vec<i32>),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl Buffer {
    /// The buffer's contents as bytes, as they are laid out in memory.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            Buffer::Str(b) | Buffer::Bytes(b) => b.clone(),
            Buffer::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// The value of a static argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticValue {
    /// A 32-bit integer (negative numbers in two's complement).
    Int(u32),
    /// A pointer to a buffer whose contents are static; the pointer itself is
    /// a specialization-time address.
    Pointer(Buffer),
}

/// One static input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaticInput {
    /// The `index`th 32-bit stack argument (`[esp+4+4*index]` at entry).
    Arg {
        /// 0-based argument number.
        index: u32,
        /// Its value.
        value: StaticValue,
    },
    /// A register's value at entry (never `esp`: the stack pointer is always
    /// static, as a symbolic address).
    Reg {
        /// The register.
        reg: Reg,
        /// Its value.
        value: u32,
    },
}

/// Every static input of a function; the inputs not listed are dynamic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaticSpec {
    /// The static inputs, in the order given; no input appears twice.
    pub entries: Vec<StaticInput>,
}

impl StaticSpec {
    /// Parses several spec strings (each one [`StaticInput`]) into a spec,
    /// rejecting an input given twice.
    pub fn parse_all<S: AsRef<str>>(specs: &[S]) -> Result<StaticSpec, SpecError> {
        let mut spec = StaticSpec::default();
        for s in specs {
            let s = s.as_ref();
            let input: StaticInput = s.parse()?;
            spec.push(input).map_err(|reason| SpecError {
                spec: s.to_owned(),
                reason,
            })?;
        }
        Ok(spec)
    }

    /// Adds an input; an input already present is an error (its message).
    pub fn push(&mut self, input: StaticInput) -> Result<(), String> {
        let dup = self.entries.iter().any(|e| match (e, &input) {
            (StaticInput::Arg { index: a, .. }, StaticInput::Arg { index: b, .. }) => a == b,
            (StaticInput::Reg { reg: a, .. }, StaticInput::Reg { reg: b, .. }) => a == b,
            _ => false,
        });
        if dup {
            let name = match &input {
                StaticInput::Arg { index, .. } => format!("arg{index}"),
                StaticInput::Reg { reg, .. } => reg.name().to_owned(),
            };
            return Err(format!("{name} is given more than once"));
        }
        self.entries.push(input);
        Ok(())
    }

    /// The static value of argument `index`, if it is static.
    pub fn arg(&self, index: u32) -> Option<&StaticValue> {
        self.entries.iter().find_map(|e| match e {
            StaticInput::Arg { index: i, value } if *i == index => Some(value),
            _ => None,
        })
    }

    /// The static value of register `reg` at entry, if it is static.
    pub fn reg(&self, reg: Reg) -> Option<u32> {
        self.entries.iter().find_map(|e| match e {
            StaticInput::Reg { reg: r, value } if *r == reg => Some(*value),
            _ => None,
        })
    }

    /// The highest argument index named, if any.
    pub fn max_arg(&self) -> Option<u32> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                StaticInput::Arg { index, .. } => Some(*index),
                StaticInput::Reg { .. } => None,
            })
            .max()
    }
}

impl fmt::Display for StaticSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.entries.is_empty() {
            return f.write_str("none");
        }
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl fmt::Display for StaticInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaticInput::Reg { reg, value } => write!(f, "{}={}", reg.name(), IntText(*value)),
            StaticInput::Arg { index, value } => {
                write!(f, "arg{index}=")?;
                match value {
                    StaticValue::Int(v) => write!(f, "{}", IntText(*v)),
                    StaticValue::Pointer(Buffer::Str(b)) => {
                        let text = &b[..b.len().saturating_sub(1)];
                        write!(f, "@str:{}", String::from_utf8_lossy(text))
                    }
                    StaticValue::Pointer(Buffer::I32(v)) => {
                        let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                        write!(f, "@i32:{}", items.join(","))
                    }
                    StaticValue::Pointer(Buffer::Bytes(b)) => {
                        f.write_str("@bytes:")?;
                        b.iter().try_for_each(|x| write!(f, "{x:02x}"))
                    }
                }
            }
        }
    }
}

/// An integer as a spec writes it: small ones in signed decimal, others in hex.
struct IntText(u32);

impl fmt::Display for IntText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0 as i32;
        if (-0x10000..0x10000).contains(&s) {
            write!(f, "{s}")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

/// Parses a 32-bit integer: decimal, `-` decimal, or `0x` hex (also `-0x`).
/// Values from -2^31 to 2^32-1 fit; negatives are two's complement.
pub fn parse_int(text: &str) -> Result<u32, String> {
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let parsed = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("`{text}` is not an integer (decimal or 0x hex)"));
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if body.is_empty() || !body.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("`{text}` is not an integer (decimal or 0x hex)"));
        }
        body.parse::<u64>().ok()
    };
    let out_of_range = || format!("`{text}` does not fit in 32 bits");
    let v = parsed.ok_or_else(out_of_range)?;
    if neg {
        if v > 1 << 31 {
            return Err(out_of_range());
        }
        Ok((v as u32).wrapping_neg())
    } else {
        u32::try_from(v).map_err(|_| out_of_range())
    }
}

fn parse_buffer(text: &str) -> Result<Buffer, String> {
    let Some((kind, body)) = text.split_once(':') else {
        return Err(format!(
            "pointer value `@{text}` needs a kind: @str:TEXT, @i32:1,2,3 or @bytes:HEX"
        ));
    };
    match kind {
        "str" => {
            let mut b = body.as_bytes().to_vec();
            b.push(0);
            Ok(Buffer::Str(b))
        }
        "i32" => {
            if body.is_empty() {
                return Err("empty i32 list".to_owned());
            }
            let mut items = Vec::new();
            for (i, item) in body.split(',').enumerate() {
                if item.is_empty() {
                    return Err(format!("empty element {i} in i32 list"));
                }
                let v = parse_int(item)?;
                let signed = item.starts_with('-');
                if !signed && v > i32::MAX as u32 && !item.starts_with("0x") {
                    return Err(format!("`{item}` does not fit in a 32-bit signed integer"));
                }
                items.push(v as i32);
            }
            Ok(Buffer::I32(items))
        }
        "bytes" => {
            if body.is_empty() {
                return Err("empty byte string".to_owned());
            }
            if body.len() % 2 != 0 || !body.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "`{body}` is not a byte string: expected pairs of hex digits"
                ));
            }
            let bytes = (0..body.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&body[i..i + 2], 16).expect("hex digits"))
                .collect();
            Ok(Buffer::Bytes(bytes))
        }
        other => Err(format!(
            "unknown pointer kind `{other}`: expected str, i32 or bytes"
        )),
    }
}

fn parse_input(spec: &str) -> Result<StaticInput, String> {
    let Some((name, value)) = spec.split_once('=') else {
        return Err("expected NAME=VALUE (argN=INT, argN=@str:TEXT, argN=@i32:LIST, argN=@bytes:HEX or REG=INT)".to_owned());
    };
    if value.is_empty() {
        return Err(format!("no value for `{name}`"));
    }
    if let Some(index) = name.strip_prefix("arg") {
        if index.is_empty() || !index.chars().all(|c| c.is_ascii_digit()) {
            return Err("argument index must be a non-negative integer".to_owned());
        }
        if index.len() > 1 && index.starts_with('0') {
            return Err("argument index must be written without leading zeros".to_owned());
        }
        let index: u32 = index
            .parse()
            .map_err(|_| "argument index is too large".to_owned())?;
        if index > 1023 {
            return Err("argument index is too large (at most 1023)".to_owned());
        }
        let value = match value.strip_prefix('@') {
            Some(buf) => StaticValue::Pointer(parse_buffer(buf)?),
            None => StaticValue::Int(parse_int(value)?),
        };
        return Ok(StaticInput::Arg { index, value });
    }
    let lower = name.to_ascii_lowercase();
    if lower == "esp" {
        return Err(
            "esp cannot be given: the stack pointer is always static, as a symbolic address"
                .to_owned(),
        );
    }
    match Reg::ALL.iter().find(|r| r.name() == lower) {
        Some(&reg) => {
            if value.starts_with('@') {
                return Err(format!(
                    "a register cannot be a pointer to static data; give {name} an integer"
                ));
            }
            Ok(StaticInput::Reg {
                reg,
                value: parse_int(value)?,
            })
        }
        None => {
            let names: Vec<&str> = Reg::ALL
                .iter()
                .filter(|&&r| r != Reg::Esp)
                .map(|r| r.name())
                .collect();
            Err(format!(
                "unknown input `{name}`: expected argN or one of {}",
                names.join(", ")
            ))
        }
    }
}

impl FromStr for StaticInput {
    type Err = SpecError;

    fn from_str(s: &str) -> Result<Self, SpecError> {
        parse_input(s).map_err(|reason| SpecError {
            spec: s.to_owned(),
            reason,
        })
    }
}

impl FromStr for StaticSpec {
    type Err = SpecError;

    /// Parses whitespace-separated inputs (`"arg1=1 arg2=3"`).
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let parts: Vec<&str> = s.split_whitespace().collect();
        StaticSpec::parse_all(&parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        s.parse::<StaticInput>().unwrap_err().to_string()
    }

    /// Found by fuzzing: a spec holding a carriage return or a newline (a
    /// command-line argument may) printed on two lines; it is escaped.
    #[test]
    fn errors_stay_on_one_line_whatever_the_spec_holds() {
        assert_eq!(
            err("arg=\r"),
            "invalid static spec `arg=\\r`: argument index must be a non-negative integer"
        );
        for spec in [
            "arg1=1\n2",
            "arg1=@i32:1,\r\n",
            "e\u{2028}x=1",
            "arg0=@bytes:0\u{85}",
        ] {
            let e = err(spec);
            assert_eq!(e.lines().count(), 1, "{e:?}");
            assert!(!e.contains(['\r', '\n', '\u{85}', '\u{2028}']), "{e:?}");
        }
        // Printable text, quotes and backslashes included, is kept as given.
        assert!(err("arg0=@i32:'\\\"").contains("`arg0=@i32:'\\\"`"));
    }

    #[test]
    fn forms() {
        assert_eq!(
            "arg1=3".parse::<StaticInput>().unwrap(),
            StaticInput::Arg {
                index: 1,
                value: StaticValue::Int(3)
            }
        );
        assert_eq!(
            "arg0=-1".parse::<StaticInput>().unwrap(),
            StaticInput::Arg {
                index: 0,
                value: StaticValue::Int(0xffff_ffff)
            }
        );
        assert_eq!(
            "ecx=0x10".parse::<StaticInput>().unwrap(),
            StaticInput::Reg {
                reg: Reg::Ecx,
                value: 16
            }
        );
        assert_eq!(
            "arg2=@str:hi".parse::<StaticInput>().unwrap(),
            StaticInput::Arg {
                index: 2,
                value: StaticValue::Pointer(Buffer::Str(b"hi\0".to_vec()))
            }
        );
        assert_eq!(
            "arg0=@i32:1,-2,0x10".parse::<StaticInput>().unwrap(),
            StaticInput::Arg {
                index: 0,
                value: StaticValue::Pointer(Buffer::I32(vec![1, -2, 16]))
            }
        );
        assert_eq!(
            "arg0=@bytes:00ff".parse::<StaticInput>().unwrap(),
            StaticInput::Arg {
                index: 0,
                value: StaticValue::Pointer(Buffer::Bytes(vec![0, 255]))
            }
        );
        let spec: StaticSpec = "arg1=1 arg2=3 edi=-5".parse().unwrap();
        assert_eq!(spec.to_string(), "arg1=1, arg2=3, edi=-5");
        assert_eq!(spec.max_arg(), Some(2));
    }

    #[test]
    fn errors_are_precise() {
        assert_eq!(
            err("arg-1=3"),
            "invalid static spec `arg-1=3`: argument index must be a non-negative integer"
        );
        assert_eq!(
            err("arg0=@i32:1,,2"),
            "invalid static spec `arg0=@i32:1,,2`: empty element 1 in i32 list"
        );
        assert!(err("foo=1").contains("unknown input `foo`"));
        assert!(err("esp=1").contains("always static"));
        assert!(err("arg1").contains("expected NAME=VALUE"));
        assert!(err("arg1=0x1g").contains("not an integer"));
        assert!(err("arg1=4294967296").contains("does not fit"));
        assert!(err("arg1=-2147483649").contains("does not fit"));
        assert!(err("arg1=@bytes:abc").contains("pairs of hex"));
        assert!(err("arg1=@foo:1").contains("unknown pointer kind"));
        let dup = StaticSpec::parse_all(&["arg1=1", "arg1=2"]).unwrap_err();
        assert_eq!(
            dup.to_string(),
            "invalid static spec `arg1=2`: arg1 is given more than once"
        );
    }
}
