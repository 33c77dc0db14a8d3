//! Minimizing a generated input that shows a difference: each integer
//! shrinks toward 0 (or the in-range value nearest it), each string or byte
//! sequence toward shorter and simpler, while the difference stays.

use anyhow::Result;

use super::template::{Template, Value};

/// Values simpler than `value` of template `t`, simplest first: for an
/// integer the target (0, or the bound nearest it), then halfway, then one
/// step closer; for a sequence the shortest length, each half dropped,
/// each element dropped, then all elements, then each one, made the
/// simplest (index 0).
fn candidates(t: &Template, value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match (t, value) {
        (Template::Int { lo, hi, .. }, Value::Int(v)) => {
            let target = 0.clamp(*lo, *hi);
            if *v != target {
                let half = target + (v - target) / 2;
                let step = v - (v - target).signum();
                for c in [target, half, step] {
                    out.push(Value::Int(c));
                }
            }
        }
        (_, Value::Seq(items)) => {
            let min = t.min_len();
            let n = items.len();
            if n > min {
                out.push(Value::Seq(items[..min].to_vec()));
                let keep = n.div_ceil(2).max(min);
                out.push(Value::Seq(items[..keep].to_vec()));
                out.push(Value::Seq(items[n - keep..].to_vec()));
                for i in 0..n.min(64) {
                    let mut fewer = items.clone();
                    fewer.remove(i);
                    out.push(Value::Seq(fewer));
                }
            }
            if items.iter().any(|&x| x != 0) {
                out.push(Value::Seq(vec![0; n]));
                for i in (0..n.min(64)).filter(|&i| items[i] != 0) {
                    let mut simpler = items.clone();
                    simpler[i] = 0;
                    out.push(Value::Seq(simpler));
                }
            }
        }
        _ => {}
    }
    out.dedup();
    out.retain(|c| c != value);
    out
}

/// Shrinks `values` (one per template) while `differs` holds, greedily,
/// one value at a time, trying at most `budget` candidates; returns the
/// smallest input found (`values` itself if nothing smaller differs).
pub fn minimize(
    templates: &[Template],
    values: Vec<Value>,
    budget: usize,
    mut differs: impl FnMut(&[Value]) -> Result<bool>,
) -> Result<Vec<Value>> {
    let mut best = values;
    let mut tries = 0;
    loop {
        let mut improved = false;
        for k in 0..templates.len() {
            for c in candidates(&templates[k], &best[k]) {
                if tries == budget {
                    return Ok(best);
                }
                tries += 1;
                let mut next = best.clone();
                next[k] = c;
                if differs(&next)? {
                    best = next;
                    improved = true;
                    break;
                }
            }
        }
        if !improved {
            return Ok(best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A difference whenever the first integer is at least 37 and the
    /// string holds a `b`: the minimum is 37 and `b`.
    #[test]
    fn shrinks_to_the_smallest_difference() {
        let templates = [
            Template::parse("{int}", false).unwrap(),
            Template::parse("{str:ab:0..40}", false).unwrap(),
        ];
        let start = vec![Value::Int(1_000_003), Value::Seq(vec![1, 0, 1, 1, 0, 1, 0])];
        let small = minimize(&templates, start, 10_000, |v| {
            Ok(matches!(v[0], Value::Int(x) if x >= 37)
                && matches!(&v[1], Value::Seq(s) if s.contains(&1)))
        })
        .unwrap();
        assert_eq!(small, vec![Value::Int(37), Value::Seq(vec![1])]);
    }

    /// Ranged integers shrink toward the bound nearest 0.
    #[test]
    fn ranged_integers_shrink_toward_their_range() {
        let t = [Template::parse("{int:5..90}", false).unwrap()];
        let small = minimize(&t, vec![Value::Int(80)], 1000, |_| Ok(true)).unwrap();
        assert_eq!(small, vec![Value::Int(5)]);
    }
}
