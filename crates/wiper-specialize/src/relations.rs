//! Offset relations between dynamic locations: "`edi` holds the value of
//! the stack word at `s` plus 12". The specializer does not know either
//! value, but it knows their difference, which decides the zero flag of a
//! compare between them: a pointer loop whose end is its start plus a
//! static length (`for (p = out; p != out + n; p++)` with `n` static, as gcc
//! writes counted loops at -O1 and -O2) is under static control.
//!
//! Locations are the eight registers and the aligned 4-byte words of the
//! stack frame. Locations whose values differ by a static amount form a
//! group; a group is stored as its members with their offsets from the
//! first member (its smallest location), so that equal relations have one
//! form. A location alone in its group relates nothing and is left out.

use wiper_sem::Reg;

/// A location an offset relation can be about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelLoc {
    /// A register.
    Reg(Reg),
    /// The 4 bytes of the stack frame at this offset from the entry stack
    /// pointer ([`crate::state::Base::Stack`]).
    Word(u32),
}

/// The offset relations of a store: per related location, its group and its
/// value minus the value of the group's first member. Sorted by location;
/// groups are numbered in the order of their first members, and each has
/// at least two members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Relations {
    members: Vec<(RelLoc, u32, u32)>,
}

impl Relations {
    /// The group and offset of `loc`, if it is related to anything.
    pub fn get(&self, loc: RelLoc) -> Option<(u32, u32)> {
        self.members
            .binary_search_by(|m| m.0.cmp(&loc))
            .ok()
            .map(|i| (self.members[i].1, self.members[i].2))
    }

    /// Whether nothing is related.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// `a - b` when the two are related.
    pub fn difference(&self, a: RelLoc, b: RelLoc) -> Option<u32> {
        let (ga, da) = self.get(a)?;
        let (gb, db) = self.get(b)?;
        (ga == gb).then(|| da.wrapping_sub(db))
    }

    /// Forgets what is known about `loc` (its value changed).
    pub fn forget(&mut self, loc: RelLoc) {
        self.members.retain(|m| m.0 != loc);
        self.normalize();
    }

    /// Forgets every location `drop` selects.
    pub fn forget_where(&mut self, mut drop: impl FnMut(RelLoc) -> bool) {
        self.members.retain(|m| !drop(m.0));
        self.normalize();
    }

    /// Records that `loc` now holds `from`'s value plus `delta` (`from`'s
    /// value as it was before; `loc`'s old relations are dropped). `from`
    /// may be `loc` itself (`add r, 4`).
    pub fn derive(&mut self, loc: RelLoc, from: RelLoc, delta: u32) {
        let (group, base) = match self.get(from) {
            Some(g) => g,
            None => {
                // `from` starts a group of its own.
                let fresh = self.members.iter().map(|m| m.1 + 1).max().unwrap_or(0);
                self.members.push((from, fresh, 0));
                (fresh, 0)
            }
        };
        self.members.retain(|m| m.0 != loc);
        self.members.push((loc, group, base.wrapping_add(delta)));
        self.normalize();
    }

    /// Whether every relation of `self` holds in `other`.
    pub fn implied_by(&self, other: &Relations) -> bool {
        self.members.iter().all(|&(loc, group, delta)| {
            let first = self.first_of(group);
            other.difference(loc, first.0) == Some(delta.wrapping_sub(first.2))
        })
    }

    /// The relations that hold in both.
    pub fn intersect(&self, other: &Relations) -> Relations {
        // Two locations stay related when both stores relate them with the
        // same difference: group by (group here, difference there).
        let mut members = Vec::new();
        for &(loc, group, delta) in &self.members {
            let Some((og, od)) = other.get(loc) else {
                continue;
            };
            // The key of the joint group: this group, the other's group,
            // and the gap between the two offsets (the same for all its
            // members exactly when their differences agree).
            let key = group as u64 * (1 << 32) + og as u64;
            members.push((loc, key, od.wrapping_sub(delta), delta));
        }
        let mut out = Relations::default();
        let mut keys: Vec<(u64, u32)> = members.iter().map(|m| (m.1, m.2)).collect();
        keys.sort_unstable();
        keys.dedup();
        for (loc, key, gap, delta) in members {
            let id = keys.binary_search(&(key, gap)).expect("a key") as u32;
            out.members.push((loc, id, delta));
        }
        out.normalize();
        out
    }

    /// Each related location but the first of its group, as a `(location,
    /// relation)` pair (`("edi", "= [esp0+0x10] + 0xc")`), with locations
    /// named by `name`.
    pub fn describe(&self, name: impl Fn(RelLoc) -> String) -> Vec<(String, String)> {
        self.members
            .iter()
            .filter(|m| m.2 != 0 || self.first_of(m.1).0 != m.0)
            .map(|&(loc, group, delta)| {
                let first = name(self.first_of(group).0);
                let rel = match delta as i32 {
                    0 => format!("= {first}"),
                    d if d < 0 => format!("= {first} - {:#x}", d.unsigned_abs()),
                    d => format!("= {first} + {d:#x}"),
                };
                (name(loc), rel)
            })
            .collect()
    }

    /// The first member of `group`: its location, group and offset.
    fn first_of(&self, group: u32) -> (RelLoc, u32, u32) {
        *self
            .members
            .iter()
            .find(|m| m.1 == group)
            .expect("a group has members")
    }

    /// Restores the one form: sorted, singletons dropped, offsets from each
    /// group's first member, groups numbered in order of first members.
    fn normalize(&mut self) {
        self.members.sort_unstable();
        let mut count: std::collections::HashMap<u32, (usize, u32)> = Default::default();
        for m in &self.members {
            let e = count.entry(m.1).or_insert((0, m.2));
            e.0 += 1;
        }
        self.members.retain(|m| count[&m.1].0 > 1);
        let mut renumber: Vec<u32> = Vec::new();
        for m in &mut self.members {
            let base = count[&m.1].1;
            let id = match renumber.iter().position(|&g| g == m.1) {
                Some(i) => i,
                None => {
                    renumber.push(m.1);
                    renumber.len() - 1
                }
            };
            m.1 = id as u32;
            m.2 = m.2.wrapping_sub(base);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDI: RelLoc = RelLoc::Reg(Reg::Edi);
    const EAX: RelLoc = RelLoc::Reg(Reg::Eax);
    const END: RelLoc = RelLoc::Word(0xffff_fff8);

    #[test]
    fn derived_locations_know_their_difference() {
        let mut r = Relations::default();
        r.derive(END, EDI, 12); // end = p + 12
        r.derive(EDI, EDI, 4); // p += 4
        assert_eq!(r.difference(END, EDI), Some(8));
        r.derive(EAX, END, 0); // eax = end
        assert_eq!(r.difference(EDI, EAX), Some(-8i32 as u32));
        r.forget(END);
        assert_eq!(r.difference(EDI, EAX), Some(-8i32 as u32));
        r.forget(EDI);
        assert!(r.is_empty(), "a location alone relates nothing");
    }

    #[test]
    fn one_form_for_equal_relations() {
        let mut a = Relations::default();
        a.derive(END, EDI, 12);
        let mut b = Relations::default();
        b.derive(EDI, END, -12i32 as u32);
        assert_eq!(a, b);
        assert!(a.implied_by(&b) && b.implied_by(&a));
    }

    #[test]
    fn the_intersection_keeps_what_both_agree_on() {
        let mut a = Relations::default();
        a.derive(END, EDI, 12);
        a.derive(EAX, EDI, 0);
        let mut b = Relations::default();
        b.derive(END, EDI, 8);
        b.derive(EAX, EDI, 0);
        let both = a.intersect(&b);
        assert_eq!(both.difference(EAX, EDI), Some(0));
        assert_eq!(both.difference(END, EDI), None);
        assert!(both.implied_by(&a) && both.implied_by(&b));
        assert!(!a.implied_by(&b));
    }
}
