//! Exact conversions between `f64`, rationals and Z3 numerals.
use num_bigint::BigInt;
use num_traits::{ToPrimitive, Zero};
use z3::ast::Real;

use crate::{MaxSmtError, Q};

/// The exact rational value of a finite `f64` (every finite `f64` is dyadic).
pub fn q_from_f64(v: f64) -> Result<Q, MaxSmtError> {
    Q::from_float(v).ok_or_else(|| MaxSmtError::Parameter(format!("non-finite number {v}")))
}

/// The `f64` nearest to `q` (saturating to ±∞ outside the range).
pub fn q_to_f64(q: &Q) -> f64 {
    q.to_f64().unwrap_or(f64::NAN)
}

/// A Z3 numeral equal to `q`. Built from decimal strings: exact on every libz3 (the i64
/// constructors either truncate to C `int` or need `Z3_mk_real_int64`, absent in 4.8.12).
pub(crate) fn real(q: &Q) -> Real {
    Real::from_rational_str(&q.numer().to_string(), &q.denom().to_string())
        .expect("decimal integers are valid Z3 numerals")
}

/// The rational value of a Z3 real numeral, read from its SMT-LIB text (`2.0`, `(- 2.0)`,
/// `(/ 1.0 3.0)`, `(- (/ 1.0 3.0))`, `(/ (- 1.0) 3.0)`).
pub(crate) fn parse_real(text: &str) -> Option<Q> {
    let tokens: Vec<String> = text
        .replace('(', " ( ")
        .replace(')', " ) ")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut pos = 0;
    let q = parse_expr(&tokens, &mut pos)?;
    (pos == tokens.len()).then_some(q)
}

fn parse_expr(t: &[String], pos: &mut usize) -> Option<Q> {
    let tok = t.get(*pos)?;
    *pos += 1;
    if tok != "(" {
        return parse_decimal(tok);
    }
    let op = t.get(*pos)?.clone();
    *pos += 1;
    let mut args = Vec::new();
    while t.get(*pos)? != ")" {
        args.push(parse_expr(t, pos)?);
    }
    *pos += 1;
    match (op.as_str(), args.as_slice()) {
        ("-", [a]) => Some(-a.clone()),
        ("-", [a, b]) => Some(a - b),
        ("/", [a, b]) if !b.is_zero() => Some(a / b),
        ("+", _) => Some(args.iter().fold(Q::zero(), |s, a| s + a)),
        _ => None,
    }
}

fn parse_decimal(tok: &str) -> Option<Q> {
    let (int, frac) = tok.split_once('.').unwrap_or((tok, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits: BigInt = format!("{int}{frac}").parse().ok()?;
    let den = num_traits::pow(BigInt::from(10), frac.len());
    Some(Q::new(digits, den))
}

/// The rational value of a real term in a model (`None` when it is not a numeral, e.g. an
/// algebraic number, which linear arithmetic never produces).
pub(crate) fn model_value(model: &z3::Model, r: &Real) -> Option<Q> {
    let v = model.eval(r, true)?;
    parse_real(&v.to_string())
}

/// Rationals with big numerators and denominators (`i64 · 2^±shift / d`, `shift <
/// max_shift`), as products of `f64` values produce; for the crate's property tests.
#[cfg(test)]
pub(crate) fn big_q(max_shift: u32) -> impl proptest::strategy::Strategy<Value = Q> {
    use proptest::prelude::*;
    (any::<i64>(), 1u64.., 0..max_shift, any::<bool>()).prop_map(|(n, d, shift, up)| {
        let s = BigInt::from(1) << shift;
        if up {
            Q::new(BigInt::from(n) * s, BigInt::from(d))
        } else {
            Q::new(BigInt::from(n), BigInt::from(d) * s)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numerals_round_trip_through_z3() {
        for v in [
            0.0,
            1.5,
            -2.25,
            1e-300,
            -123456789.125,
            634909090909091.0 / 1e11,
        ] {
            let q = q_from_f64(v).unwrap();
            let r = real(&q);
            let back = parse_real(&r.to_string()).unwrap();
            assert_eq!(back, q, "{v} printed as {r}");
        }
        assert_eq!(
            parse_real("(/ (- 1.0) 3.0)"),
            Some(Q::new((-1).into(), 3.into()))
        );
        assert_eq!(
            parse_real("(- (/ 1.0 3.0))"),
            Some(Q::new((-1).into(), 3.into()))
        );
        assert_eq!(parse_real("(/ 1.0 0.0)"), None);
        assert_eq!(parse_real("x"), None);
    }
}
