//! Powers by squaring: `mov a,b` followed by `imul a,b` repeated makes
//! `a = b^k` in `k` instructions (with `imul a,a` among them, some other
//! power); square-and-multiply needs one `mov`, a
//! squaring per bit of `k` after the first and a multiplication per further
//! set bit (`b^6`: `mov a,b; imul a,a; imul a,b; imul a,a`). Products
//! modulo 2^32 associate, so the result is the same; only the flags of the
//! last `imul` differ, so they must be dead. Specializing `pow(x, n)` for a
//! static `n` unrolls its loop or recursion into such a chain.

use iced_x86::{Code, Instruction, OpKind, Register};
use wiper_residual::{Item, Origin, Residual};

use crate::effects::{EffectsOf, ALL_FLAGS};
use crate::liveness::liveness;

/// `(dst, src)` of a register-to-register instruction with code in `codes`.
fn reg_reg(item: &Item, codes: &[Code]) -> Option<(Register, Register)> {
    let Item::Instr(ins, _) = item else {
        return None;
    };
    (codes.contains(&ins.code())
        && ins.op_count() == 2
        && ins.op0_kind() == OpKind::Register
        && ins.op1_kind() == OpKind::Register)
        .then(|| (ins.op0_register(), ins.op1_register()))
}

/// `a = b^k` by square-and-multiply, starting from `mov a,b`.
fn square_and_multiply(a: Register, b: Register, k: u32, origin: Origin) -> Vec<Item> {
    let op = |code: Code, x: Register, y: Register| {
        Item::Instr(
            Instruction::with2(code, x, y).expect("register forms are encodable"),
            origin,
        )
    };
    let mut out = vec![op(Code::Mov_r32_rm32, a, b)];
    for bit in (0..31 - k.leading_zeros()).rev() {
        out.push(op(Code::Imul_r32_rm32, a, a));
        if k & (1 << bit) != 0 {
            out.push(op(Code::Imul_r32_rm32, a, b));
        }
    }
    out
}

/// Rewrites every chain that gets shorter; returns whether any did.
pub fn shorten_power_chains(residual: &mut Residual, calc: &mut EffectsOf) -> bool {
    let fx = calc.residual(residual);
    let live = liveness(residual, &fx);
    let mut changed = false;
    for (bi, block) in residual.blocks.iter_mut().enumerate() {
        let items = std::mem::take(&mut block.items);
        let mut keep = Vec::with_capacity(items.len());
        let mut k = 0;
        while k < items.len() {
            let chain = reg_reg(&items[k], &[Code::Mov_r32_rm32, Code::Mov_rm32_r32])
                .filter(|(a, b)| a != b && a.is_gpr32())
                .map(|(a, b)| {
                    // Products by b and squarings of a, with the power.
                    let (mut power, mut products) = (1u32, 0);
                    for item in &items[k + 1..] {
                        let next = match reg_reg(item, &[Code::Imul_r32_rm32]) {
                            Some((d, s)) if d == a && s == b => power.checked_add(1),
                            Some((d, s)) if d == a && s == a => power.checked_mul(2),
                            _ => None,
                        };
                        let Some(p) = next else { break };
                        power = p;
                        products += 1;
                    }
                    (a, b, products, power)
                });
            if let Some((a, b, products, power)) = chain {
                let last = k + products;
                let flags_dead = live.live_out[bi][last] & ALL_FLAGS == 0;
                let shorter = square_and_multiply(a, b, power, items[k].origin());
                if products >= 2 && flags_dead && shorter.len() < products + 1 {
                    keep.extend(shorter);
                    changed = true;
                    k = last + 1;
                    continue;
                }
            }
            keep.push(items[k].clone());
            k += 1;
        }
        block.items = keep;
    }
    changed
}

#[cfg(test)]
mod tests {
    use iced_x86::code_asm::*;

    use crate::testutil::{after, function};

    /// `ebx^6` by five products becomes square-and-multiply.
    #[test]
    fn a_chain_of_products_is_squared() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            for _ in 0..5 {
                a.imul_2(eax, ebx)?;
            }
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::shorten_power_chains), @"
        L0:
          mov eax,ebx
          imul eax,eax
          imul eax,ebx
          imul eax,eax
          ret
          exit
        ");
    }

    /// Near miss: `adc` reads the last product's carry, which the
    /// squares would make differently.
    #[test]
    fn a_chain_whose_flags_are_read_stays() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            for _ in 0..5 {
                a.imul_2(eax, ebx)?;
            }
            a.adc(edx, 0)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::shorten_power_chains), @"
        L0:
          mov eax,ebx
          imul eax,ebx
          imul eax,ebx
          imul eax,ebx
          imul eax,ebx
          imul eax,ebx
          adc edx,0
          ret
          exit
        ");
    }

    /// Near misses: a product by a third register, and a product of
    /// another register by the chain's, end the chain (neither is a
    /// squaring): `b^6` before them is squared, the product after stays.
    /// Near miss: after `mov eax,eax` each `imul eax,eax` squares; it is
    /// no product by a base that stays (`eax^16`, not `eax^5`).
    #[test]
    fn a_move_of_a_register_onto_itself_starts_no_chain() {
        let f = function(|a| {
            a.mov(eax, eax)?;
            for _ in 0..4 {
                a.imul_2(eax, eax)?;
            }
            a.ret()
        });
        crate::testutil::assert_unchanged(f, super::shorten_power_chains);
    }

    #[test]
    fn a_product_by_another_register_ends_the_chain() {
        let chain_then = |other: fn(&mut CodeAssembler) -> Result<(), iced_x86::IcedError>| {
            function(|a| {
                a.mov(eax, ebx)?;
                for _ in 0..5 {
                    a.imul_2(eax, ebx)?;
                }
                other(a)?;
                a.imul_2(eax, ebx)?;
                a.mov(edx, ecx)?;
                a.ret()
            })
        };
        let out = after(
            chain_then(|a| a.imul_2(eax, ecx)),
            super::shorten_power_chains,
        ) + &after(
            chain_then(|a| a.imul_2(ecx, eax)),
            super::shorten_power_chains,
        );
        insta::assert_snapshot!(out, @"
        L0:
          mov eax,ebx
          imul eax,eax
          imul eax,ebx
          imul eax,eax
          imul eax,ecx
          imul eax,ebx
          mov edx,ecx
          ret
          exit
        L0:
          mov eax,ebx
          imul eax,eax
          imul eax,ebx
          imul eax,eax
          imul ecx,eax
          imul eax,ebx
          mov edx,ecx
          ret
          exit
        ");
    }

    /// A chain with a squaring in it: `((b^2)^2 * b) * b` is `b^6`.
    #[test]
    fn a_chain_with_squarings_is_squared_anew() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.imul_2(eax, ebx)?;
            a.imul_2(eax, eax)?;
            a.imul_2(eax, ebx)?;
            a.imul_2(eax, ebx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::shorten_power_chains), @"
        L0:
          mov eax,ebx
          imul eax,eax
          imul eax,ebx
          imul eax,eax
          ret
          exit
        ");
    }

    /// Near miss: `b^3` by square-and-multiply is as long as the chain.
    #[test]
    fn a_chain_no_longer_than_its_square_stays() {
        let f = function(|a| {
            a.mov(eax, ebx)?;
            a.imul_2(eax, ebx)?;
            a.imul_2(eax, ebx)?;
            a.ret()
        });
        insta::assert_snapshot!(after(f, super::shorten_power_chains), @"
        L0:
          mov eax,ebx
          imul eax,ebx
          imul eax,ebx
          ret
          exit
        ");
    }
}
