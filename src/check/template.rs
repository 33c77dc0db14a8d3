//! The argument templates of `wiper check`: what each program argument (and
//! standard input) is, how random values of it are drawn, how small domains
//! are enumerated, and how a value becomes the argument's bytes.

use anyhow::{anyhow, Result};
use wiper_x86::rng::Rng;

/// The longest string or byte sequence a template may ask for.
const MAX_LEN: usize = 1 << 20;

/// The edge values `{int}` favours.
const INT_EDGES: [i64; 5] = [0, 1, -1, i32::MIN as i64, i32::MAX as i64];

/// One template word: a literal or a generated value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Template {
    /// The word itself (any word that is not `{...}`).
    Literal(String),
    /// `{int}` (`lo` and `hi` are `i32::MIN` and `i32::MAX`, drawn with
    /// edge values and small numbers favoured) or `{int:LO..HI}` (inclusive).
    Int {
        /// The smallest value.
        lo: i64,
        /// The largest value.
        hi: i64,
        /// Whether this is `{int}`.
        any: bool,
    },
    /// `{str:ALPHABET:LO..HI}`: LO to HI characters of the alphabet.
    Str {
        /// The characters, in the order "simpler first" (shrinking
        /// replaces characters by earlier ones).
        alphabet: Vec<char>,
        /// The shortest length.
        lo: usize,
        /// The longest length.
        hi: usize,
    },
    /// `{bytes:LO..HI}` (standard input only): LO to HI random bytes.
    Bytes {
        /// The shortest length.
        lo: usize,
        /// The longest length.
        hi: usize,
    },
}

/// A generated value of a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// The value of a literal (nothing to generate).
    Fixed,
    /// An integer.
    Int(i64),
    /// A sequence: indices into a string's alphabet, or bytes.
    Seq(Vec<u32>),
}

/// `LO..HI` as two numbers, or why not.
fn range<T: std::str::FromStr + PartialOrd + Copy>(text: &str) -> Result<(T, T), String> {
    let (lo, hi) = text
        .split_once("..")
        .ok_or_else(|| format!("expected a range LO..HI, found `{text}`"))?;
    let num = |s: &str, which: &str| {
        if s.is_empty() {
            return Err(format!("missing {which} bound in `{text}`"));
        }
        s.parse::<T>()
            .map_err(|_| format!("{which} bound `{s}` is not a valid number"))
    };
    let (lo, hi) = (num(lo, "lower")?, num(hi, "upper")?);
    if lo > hi {
        return Err(format!(
            "empty range `{text}`: the lower bound is above the upper"
        ));
    }
    Ok((lo, hi))
}

/// A length range, bounded by [`MAX_LEN`].
fn length_range(text: &str) -> Result<(usize, usize), String> {
    let (lo, hi) = range::<usize>(text)?;
    if hi > MAX_LEN {
        return Err(format!("length {hi} is over the limit of {MAX_LEN}"));
    }
    Ok((lo, hi))
}

impl Template {
    /// Parses one template word; `stdin` allows `{bytes:LO..HI}`. A word
    /// that starts with `{` and ends with `}` must be a valid placeholder.
    pub fn parse(word: &str, stdin: bool) -> Result<Template> {
        let Some(inner) = word.strip_prefix('{').and_then(|w| w.strip_suffix('}')) else {
            return Ok(Template::Literal(word.to_owned()));
        };
        let (kind, rest) = match inner.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (inner, None),
        };
        let parsed = match (kind, rest) {
            ("int", None) => Ok(Template::Int {
                lo: i64::from(i32::MIN),
                hi: i64::from(i32::MAX),
                any: true,
            }),
            ("int", Some(r)) => {
                range::<i64>(r).map(|(lo, hi)| Template::Int { lo, hi, any: false })
            }
            ("str", Some(r)) => match r.rsplit_once(':') {
                None => Err("expected {str:ALPHABET:LO..HI}".to_owned()),
                Some(("", _)) => Err("the alphabet is empty".to_owned()),
                Some((alphabet, lengths)) => length_range(lengths).map(|(lo, hi)| Template::Str {
                    alphabet: alphabet.chars().collect(),
                    lo,
                    hi,
                }),
            },
            ("bytes", Some(r)) if stdin => {
                length_range(r).map(|(lo, hi)| Template::Bytes { lo, hi })
            }
            ("bytes", _) if !stdin => Err("{bytes:LO..HI} is only for --stdin".to_owned()),
            _ => Err(format!(
                "expected {{int}}, {{int:LO..HI}}, {{str:ALPHABET:LO..HI}}{}",
                if stdin { " or {bytes:LO..HI}" } else { "" }
            )),
        };
        parsed.map_err(|why| anyhow!("invalid template `{word}`: {why}"))
    }

    /// The number of values of an enumerable domain (`{int:LO..HI}`), if
    /// it has at most `limit`.
    pub fn small_domain(&self, limit: u64) -> Option<u64> {
        match *self {
            Template::Int { lo, hi, any: false } => {
                let size = u64::try_from(i128::from(hi) - i128::from(lo) + 1).ok()?;
                (size <= limit).then_some(size)
            }
            _ => None,
        }
    }

    /// The `i`th value of a small domain (see [`Template::small_domain`]).
    pub fn nth(&self, i: u64) -> Value {
        match *self {
            Template::Int { lo, .. } => Value::Int(lo + i as i64),
            _ => Value::Fixed,
        }
    }

    /// A random value.
    pub fn draw(&self, rng: &mut Rng) -> Value {
        match self {
            Template::Literal(_) => Value::Fixed,
            Template::Int { any: true, .. } => Value::Int(match rng.below(8) {
                0 | 1 => *rng.choose(&INT_EDGES),
                2..=4 => i64::from(rng.below(33)) - 16,
                5 => i64::from(rng.below(2001)) - 1000,
                _ => i64::from(rng.interesting_u32() as i32),
            }),
            Template::Int { lo, hi, .. } => {
                let size = (i128::from(*hi) - i128::from(*lo) + 1) as u128;
                Value::Int(if rng.below(4) == 0 {
                    *rng.choose(&[*lo, *hi, 0.clamp(*lo, *hi)])
                } else {
                    (i128::from(*lo) + (u128::from(rng.next_u64()) % size) as i128) as i64
                })
            }
            Template::Str { alphabet, lo, hi } => {
                let n = alphabet.len() as u32;
                let len = draw_len(rng, *lo, *hi);
                Value::Seq((0..len).map(|_| rng.below(n)).collect())
            }
            Template::Bytes { lo, hi } => {
                let len = draw_len(rng, *lo, *hi);
                Value::Seq((0..len).map(|_| rng.below(256)).collect())
            }
        }
    }

    /// The bytes of `value` as this template's argument or input.
    pub fn render(&self, value: &Value) -> Vec<u8> {
        match (self, value) {
            (Template::Literal(text), _) => text.clone().into_bytes(),
            (Template::Int { .. }, Value::Int(v)) => v.to_string().into_bytes(),
            (Template::Str { alphabet, .. }, Value::Seq(items)) => items
                .iter()
                .map(|&i| alphabet[i as usize])
                .collect::<String>()
                .into_bytes(),
            (Template::Bytes { .. }, Value::Seq(items)) => items.iter().map(|&b| b as u8).collect(),
            _ => unreachable!("a value drawn from another template"),
        }
    }

    /// The shortest length of a sequence template (0 for others).
    pub fn min_len(&self) -> usize {
        match *self {
            Template::Str { lo, .. } | Template::Bytes { lo, .. } => lo,
            _ => 0,
        }
    }
}

/// A length in `lo..=hi`.
fn draw_len(rng: &mut Rng, lo: usize, hi: usize) -> usize {
    lo + rng.below((hi - lo + 1) as u32) as usize
}

/// The templates of one `check`: the program's arguments, then standard
/// input if it is generated. A generated input is one [`Value`] per
/// template, in the same order.
#[derive(Clone, Debug)]
pub struct Inputs {
    /// The templates: the arguments', then standard input's, if any.
    pub templates: Vec<Template>,
    /// Whether the last template is standard input's.
    has_stdin: bool,
}

/// One generated command line and standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// The program's arguments.
    pub args: Vec<String>,
    /// Its standard input.
    pub stdin: Vec<u8>,
}

impl Inputs {
    /// Parses the argument templates and the standard input's, if any.
    pub fn parse(args: &[String], stdin: Option<&str>) -> Result<Inputs> {
        let mut templates = args
            .iter()
            .map(|a| Template::parse(a, false))
            .collect::<Result<Vec<_>>>()?;
        if let Some(s) = stdin {
            templates.push(Template::parse(s, true)?);
        }
        Ok(Inputs {
            templates,
            has_stdin: stdin.is_some(),
        })
    }

    /// The input of run `i` (0-based) of `runs`: small domains enumerated
    /// first (all their combinations if there are at most `runs`, else
    /// each domain's values in turn), every other value drawn from `rng`.
    pub fn generate(&self, i: u64, runs: u64, rng: &mut Rng) -> Vec<Value> {
        let sizes: Vec<Option<u64>> = self
            .templates
            .iter()
            .map(|t| t.small_domain(runs))
            .collect();
        let product = sizes
            .iter()
            .flatten()
            .try_fold(1u64, |acc, &s| acc.checked_mul(s).filter(|&p| p <= runs));
        let mut radix = 1;
        let mut out = Vec::with_capacity(self.templates.len());
        for (t, size) in self.templates.iter().zip(&sizes) {
            let drawn = t.draw(rng);
            out.push(match (size, product) {
                (Some(s), Some(p)) if i < p => {
                    let v = t.nth(i / radix % s);
                    radix *= s;
                    v
                }
                (Some(s), None) if i < *s => t.nth(i),
                _ => drawn,
            });
        }
        out
    }

    /// The command line and standard input of `values`.
    pub fn render(&self, values: &[Value]) -> Rendered {
        let mut rendered: Vec<Vec<u8>> = self
            .templates
            .iter()
            .zip(values)
            .map(|(t, v)| t.render(v))
            .collect();
        let stdin = if self.has_stdin {
            rendered.pop().unwrap_or_default()
        } else {
            Vec::new()
        };
        Rendered {
            args: rendered
                .into_iter()
                .map(|a| String::from_utf8_lossy(&a).into_owned())
                .collect(),
            stdin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(word: &str) -> String {
        Template::parse(word, false).unwrap_err().to_string()
    }

    #[test]
    fn templates_parse() {
        assert_eq!(
            Template::parse("-d", false).unwrap(),
            Template::Literal("-d".into())
        );
        assert_eq!(
            Template::parse("{int:-3..4}", false).unwrap(),
            Template::Int {
                lo: -3,
                hi: 4,
                any: false
            }
        );
        assert_eq!(
            Template::parse("{str:a:b:0..2}", false).unwrap(),
            Template::Str {
                alphabet: vec!['a', ':', 'b'],
                lo: 0,
                hi: 2
            }
        );
        assert_eq!(
            Template::parse("{bytes:1..9}", true).unwrap(),
            Template::Bytes { lo: 1, hi: 9 }
        );
    }

    #[test]
    fn bad_templates_say_why() {
        assert_eq!(
            error("{int:5..}"),
            "invalid template `{int:5..}`: missing upper bound in `5..`"
        );
        assert!(
            error("{int:9..2}").contains("empty range"),
            "{}",
            error("{int:9..2}")
        );
        assert!(error("{int:x..2}").contains("`x` is not a valid number"));
        assert!(error("{float}").contains("expected {int}"));
        assert!(error("{bytes:0..3}").contains("only for --stdin"));
        assert!(error("{str::0..3}").contains("alphabet is empty"));
        assert!(error("{str:ab}").contains("expected {str:ALPHABET:LO..HI}"));
    }

    /// Small domains are enumerated: all 3 x 4 combinations come first.
    #[test]
    fn small_domains_are_enumerated_first() {
        let args = [
            "{int:0..2}".to_owned(),
            "x".to_owned(),
            "{int:-1..2}".to_owned(),
        ];
        let inputs = Inputs::parse(&args, None).unwrap();
        let mut rng = Rng::new(1);
        let mut seen: Vec<Vec<Value>> = (0..12).map(|i| inputs.generate(i, 20, &mut rng)).collect();
        seen.sort_by_key(|v| format!("{v:?}"));
        seen.dedup();
        assert_eq!(seen.len(), 12);
    }

    /// Drawn values stay in their domains.
    #[test]
    fn draws_stay_in_range() {
        let mut rng = Rng::new(3);
        let t = Template::parse("{str:xy:2..4}", false).unwrap();
        let i = Template::parse("{int:-5..1000000}", false).unwrap();
        for _ in 0..500 {
            let s = t.render(&t.draw(&mut rng));
            assert!((2..=4).contains(&s.len()) && s.iter().all(|c| b"xy".contains(c)));
            let Value::Int(v) = i.draw(&mut rng) else {
                panic!()
            };
            assert!((-5..=1_000_000).contains(&v));
        }
    }
}
