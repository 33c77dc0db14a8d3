//! Printers: a compact infix form (`eax + 0x1`) for people and an SMT-LIB-like
//! form (`(bvadd eax #x00000001)`) for debugging.
//!
//! Output size stays linear in the DAG size, never in the tree size: a
//! non-leaf sub-term used more than once is printed once and let-bound
//! (`let %3 = …; …` / `(let ((%3 …)) …)`). On top of that every piece, and
//! the whole output, is cut at [`Printer::max_len`] bytes (marked `…`).

use std::fmt;

use crate::fx::FxHashMap;
use crate::{ExprId, ExprPool, Op};

/// Which notation a [`Printer`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Infix: `(eax + 0x1) & 0xff:8`, `x[7:0]`, `zext32(al)`, `load32(mem, esp)`.
    /// Constants of width other than 32 carry `:width`.
    Infix,
    /// SMT-LIB-like s-expressions; memory operators print as `(loadN m a)` and
    /// `(storeN m a v)` with N in bytes, comparisons keep their `bv1` result.
    Smt,
}

/// Prints expressions in a [`Syntax`], at most `max_len` bytes (plus `…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Printer {
    /// The notation.
    pub syntax: Syntax,
    /// Cap on the output length (and on every let-bound piece), in bytes.
    pub max_len: usize,
}

impl Default for Printer {
    fn default() -> Self {
        Printer {
            syntax: Syntax::Infix,
            max_len: 4096,
        }
    }
}

/// A rendered sub-term and whether it needs parentheses as an infix operand.
struct Piece {
    text: String,
    compound: bool,
}

/// Cuts `s` to at most `max` bytes (at a character boundary), marking the cut
/// with `…`.
fn cap(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut i = max;
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        s.truncate(i);
        s.push('…');
    }
    s
}

impl Printer {
    /// The infix printer with the default cap.
    pub fn infix() -> Self {
        Self::default()
    }

    /// The SMT-LIB-like printer with the default cap.
    pub fn smt() -> Self {
        Printer {
            syntax: Syntax::Smt,
            ..Self::default()
        }
    }

    /// The same printer with another length cap.
    pub fn with_max_len(self, max_len: usize) -> Self {
        Printer { max_len, ..self }
    }

    /// Renders `e`.
    pub fn print(&self, pool: &ExprPool, e: ExprId) -> String {
        let order = pool.subterms(&[e]);
        let mut uses: FxHashMap<ExprId, usize> = FxHashMap::default();
        for &s in &order {
            for &a in pool.args(s) {
                *uses.entry(a).or_default() += 1;
            }
        }
        let mut pieces: FxHashMap<ExprId, Piece> = FxHashMap::default();
        let mut lets: Vec<(String, String)> = Vec::new();
        for &s in &order {
            let args: Vec<&Piece> = pool.args(s).iter().map(|a| &pieces[a]).collect();
            let piece = match self.syntax {
                Syntax::Infix => infix(pool, s, &args),
                Syntax::Smt => smt(pool, s, &args),
            };
            let text = cap(piece.text, self.max_len);
            let shared = uses.get(&s).copied().unwrap_or(0) > 1 && pool.op(s).arity() > 0;
            let piece = if shared && s != e {
                let name = format!("%{}", lets.len() + 1);
                lets.push((name.clone(), text));
                Piece {
                    text: name,
                    compound: false,
                }
            } else {
                Piece {
                    text,
                    compound: piece.compound,
                }
            };
            pieces.insert(s, piece);
        }
        let body = pieces.remove(&e).expect("root printed").text;
        let mut out = String::new();
        match self.syntax {
            Syntax::Infix => {
                for (name, text) in &lets {
                    out += &format!("let {name} = {text}; ");
                    if out.len() > self.max_len {
                        break;
                    }
                }
                out += &body;
            }
            Syntax::Smt => {
                for (name, text) in &lets {
                    out += &format!("(let (({name} {text})) ");
                    if out.len() > self.max_len {
                        break;
                    }
                }
                out += &body;
                out += &")".repeat(lets.len());
            }
        }
        cap(out, self.max_len)
    }
}

/// An infix constant: hex, with `:width` unless the width is 32.
fn infix_const(val: u64, width: u32) -> String {
    if width == 32 {
        format!("{val:#x}")
    } else {
        format!("{val:#x}:{width}")
    }
}

/// Renders one node in infix notation from its operands' pieces.
fn infix(pool: &ExprPool, e: ExprId, args: &[&Piece]) -> Piece {
    let operand = |i: usize| -> String {
        let p = args[i];
        if p.compound {
            format!("({})", p.text)
        } else {
            p.text.clone()
        }
    };
    let atom = |text: String| Piece {
        text,
        compound: false,
    };
    let op = pool.op(e);
    let sym = match op {
        Op::Const { val, width } => return atom(infix_const(val, width)),
        Op::Var(v) => return atom(pool.var_name(v).to_owned()),
        Op::Not => return atom(format!("~{}", operand(0))),
        Op::Neg => return atom(format!("-{}", operand(0))),
        Op::Extract { hi, lo } => return atom(format!("{}[{hi}:{lo}]", operand(0))),
        Op::ZeroExt(w) => return atom(format!("zext{w}({})", args[0].text)),
        Op::SignExt(w) => return atom(format!("sext{w}({})", args[0].text)),
        Op::Rotl | Op::Rotr => {
            let f = if op == Op::Rotl { "rotl" } else { "rotr" };
            return atom(format!("{f}({}, {})", args[0].text, args[1].text));
        }
        Op::Load(n) => {
            return atom(format!(
                "load{}({}, {})",
                8 * u32::from(n),
                args[0].text,
                args[1].text
            ))
        }
        Op::Store => {
            let bits = pool.width(pool.args(e)[2]);
            return atom(format!(
                "store{bits}({}, {}, {})",
                args[0].text, args[1].text, args[2].text
            ));
        }
        Op::Ite => {
            return Piece {
                text: format!("{} ? {} : {}", operand(0), operand(1), operand(2)),
                compound: true,
            }
        }
        Op::Add => {
            // `x + 0xfffffffc` reads better as `x - 0x4`.
            let w = pool.width(e);
            match pool.as_const(pool.args(e)[1]) {
                Some(c) if w > 1 && crate::bv::msb(c, w) => {
                    let m = infix_const(c.wrapping_neg() & crate::bv::mask(w), w);
                    return Piece {
                        text: format!("{} - {m}", operand(0)),
                        compound: true,
                    };
                }
                _ => "+",
            }
        }
        Op::Sub => "-",
        Op::Mul => "*",
        Op::Udiv => "/u",
        Op::Urem => "%u",
        Op::Sdiv => "/s",
        Op::Srem => "%s",
        Op::And => "&",
        Op::Or => "|",
        Op::Xor => "^",
        Op::Shl => "<<",
        Op::Lshr => ">>u",
        Op::Ashr => ">>s",
        Op::Concat => "++",
        Op::Eq => "==",
        Op::Ult => "<u",
        Op::Ule => "<=u",
        Op::Slt => "<s",
        Op::Sle => "<=s",
    };
    Piece {
        text: format!("{} {sym} {}", operand(0), operand(1)),
        compound: true,
    }
}

/// Renders one node as an SMT-LIB-like s-expression.
fn smt(pool: &ExprPool, e: ExprId, args: &[&Piece]) -> Piece {
    let op = pool.op(e);
    let head = match op {
        Op::Const { val, width } => {
            let text = if width % 4 == 0 {
                format!("#x{val:0digits$x}", digits = (width / 4) as usize)
            } else {
                format!("#b{val:0width$b}", width = width as usize)
            };
            return Piece {
                text,
                compound: false,
            };
        }
        Op::Var(v) => {
            return Piece {
                text: pool.var_name(v).to_owned(),
                compound: false,
            }
        }
        Op::Extract { hi, lo } => format!("(_ extract {hi} {lo})"),
        Op::ZeroExt(w) | Op::SignExt(w) => {
            format!("(_ {} {})", op.name(), w - pool.width(pool.args(e)[0]))
        }
        Op::Load(n) => format!("load{n}"),
        Op::Store => format!("store{}", pool.width(pool.args(e)[2]) / 8),
        _ => op.name().to_owned(),
    };
    let mut text = format!("({head}");
    for a in args {
        text.push(' ');
        text.push_str(&a.text);
    }
    text.push(')');
    Piece {
        text,
        compound: false,
    }
}

/// An expression paired with its pool and a printer, for `{}` formatting.
struct Shown<'a> {
    pool: &'a ExprPool,
    expr: ExprId,
    printer: Printer,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.printer.print(self.pool, self.expr))
    }
}

impl ExprPool {
    /// `e` in infix notation with the default [`Printer`] (4096 bytes).
    pub fn display(&self, e: ExprId) -> impl fmt::Display + '_ {
        Shown {
            pool: self,
            expr: e,
            printer: Printer::infix(),
        }
    }

    /// `e` in the SMT-LIB-like notation with the default cap.
    pub fn display_smt(&self, e: ExprId) -> impl fmt::Display + '_ {
        Shown {
            pool: self,
            expr: e,
            printer: Printer::smt(),
        }
    }
}
