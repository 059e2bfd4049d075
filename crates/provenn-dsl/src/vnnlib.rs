//! VNN-LIB (v1, as used in VNN-COMP) reading and writing.
//!
//! A VNN-LIB file declares inputs `X_i` and outputs `Y_j` and asserts a formula that describes
//! the **unsafe** set: a solver answers `sat` with a counterexample. Input-only assertions
//! become one or more input boxes (an input-level `(or (and …) …)` gives several, as in ACAS Xu
//! property 6); the rest is the output condition. Names in the early 4-D style `X_0_0_0_i`
//! are accepted when all but the last index are 0.
use num_traits::{One, ToPrimitive, Zero};

use crate::error::{DslError, Span};
use crate::ir::{Cmp, Expr, Formula, Linear, Side, Var, Q};
use crate::lower::parse_number;

/// A parsed VNN-LIB property.
#[derive(Debug, Clone, PartialEq)]
pub struct VnnLib {
    /// Number of inputs declared.
    pub n_inputs: usize,
    /// Number of outputs declared.
    pub n_outputs: usize,
    /// Input boxes (their union is the input region), each `(lower, upper)` per input.
    pub input_boxes: Vec<Vec<(f64, f64)>>,
    /// The output part of the unsafe set (inputs may occur too).
    pub unsafe_output: Formula,
}

#[derive(Debug, Clone, PartialEq)]
enum Sexp {
    Atom(String, Span),
    List(Vec<Sexp>, Span),
}

impl Sexp {
    fn span(&self) -> Span {
        match self {
            Sexp::Atom(_, s) | Sexp::List(_, s) => *s,
        }
    }
}

fn e(span: Span, msg: impl Into<String>, expected: &str, found: &str) -> DslError {
    DslError::new(span, msg, expected, found)
}

fn sexps(src: &str) -> Result<Vec<Sexp>, DslError> {
    let mut stack: Vec<(Vec<Sexp>, Span)> = vec![(vec![], Span::default())];
    let (mut line, mut col) = (1, 1);
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        let here = Span { line, col, len: 1 };
        match c {
            '\n' => {
                line += 1;
                col = 0;
            }
            ';' => {
                for c2 in chars.by_ref() {
                    if c2 == '\n' {
                        line += 1;
                        col = 0;
                        break;
                    }
                }
            }
            '(' => {
                if stack.len() > 200 {
                    return Err(e(here, "nested too deeply", "at most 200 levels", "("));
                }
                stack.push((vec![], here));
            }
            ')' => {
                if stack.len() == 1 {
                    return Err(e(here, "unbalanced `)`", "a matching `(`", ")"));
                }
                let (items, sp) = stack.pop().expect("more than one level");
                stack
                    .last_mut()
                    .expect("root remains")
                    .0
                    .push(Sexp::List(items, sp));
            }
            c if c.is_whitespace() => {}
            _ => {
                let mut s = String::from(c);
                let mut len = 1;
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == '(' || n == ')' || n == ';' {
                        break;
                    }
                    s.push(n);
                    chars.next();
                    len += 1;
                }
                stack
                    .last_mut()
                    .expect("stack never empty")
                    .0
                    .push(Sexp::Atom(s, Span { line, col, len }));
                col += len - 1;
            }
        }
        col += 1;
    }
    if stack.len() != 1 {
        let sp = stack.last().map_or(Span::default(), |s| s.1);
        return Err(e(sp, "unbalanced `(`", "a matching `)`", "("));
    }
    Ok(stack.pop().expect("one level").0)
}

struct Reader {
    inputs: usize,
    outputs: usize,
}

fn var_index(name: &str) -> Option<(char, usize)> {
    let (kind, rest) = (name.chars().next()?, name.get(2..)?);
    if !(name.starts_with("X_") || name.starts_with("Y_")) {
        return None;
    }
    let idx: Vec<usize> = rest
        .split('_')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (last, init) = idx.split_last()?;
    init.iter().all(|&i| i == 0).then_some((kind, *last))
}

impl Reader {
    fn term(&self, s: &Sexp) -> Result<Linear, DslError> {
        match s {
            Sexp::Atom(a, sp) => {
                if let Some(q) = parse_number(a) {
                    return Ok(Linear::constant(Expr::Const(q)));
                }
                match var_index(a) {
                    Some(('X', i)) if i < self.inputs => Ok(Linear::var(
                        Var::Input(Side::First, i),
                        Expr::Const(Q::one()),
                    )),
                    Some(('Y', i)) if i < self.outputs => Ok(Linear::var(
                        Var::Output(Side::First, i),
                        Expr::Const(Q::one()),
                    )),
                    _ => Err(e(
                        *sp,
                        format!("undeclared or malformed name `{a}`"),
                        "a declared X_i / Y_j or a number",
                        a,
                    )),
                }
            }
            Sexp::List(items, sp) => {
                let (op, args) = match items.split_first() {
                    Some((Sexp::Atom(op, _), args)) => (op.as_str(), args),
                    _ => {
                        return Err(e(
                            *sp,
                            "expected an arithmetic term",
                            "(+ …), (- …), (* …), a name or a number",
                            "(",
                        ))
                    }
                };
                let ts = args
                    .iter()
                    .map(|a| self.term(a))
                    .collect::<Result<Vec<_>, _>>()?;
                match (op, ts.len()) {
                    ("+", n) if n >= 1 => {
                        Ok(ts.into_iter().reduce(Linear::plus).expect("non-empty"))
                    }
                    ("-", 1) => Ok(ts.into_iter().next().expect("one").negated()),
                    ("-", n) if n >= 2 => {
                        let mut it = ts.into_iter();
                        let first = it.next().expect("non-empty");
                        Ok(it.fold(first, |a, b| a.plus(b.negated())))
                    }
                    ("*", 2) => {
                        let (a, b) = (&ts[0], &ts[1]);
                        let k = |l: &Linear| {
                            if l.terms.is_empty() {
                                l.constant.as_const().cloned()
                            } else {
                                None
                            }
                        };
                        match (k(a), k(b)) {
                            (Some(c), _) => Ok(b.clone().scale(&Expr::Const(c))),
                            (_, Some(c)) => Ok(a.clone().scale(&Expr::Const(c))),
                            _ => Err(e(
                                *sp,
                                "non-linear product",
                                "a product with a constant factor",
                                "*",
                            )),
                        }
                    }
                    ("/", 2) => match ts[1]
                        .constant
                        .as_const()
                        .filter(|c| ts[1].terms.is_empty() && !c.is_zero())
                    {
                        Some(c) => Ok(ts[0].clone().scale(&Expr::Const(c.recip()))),
                        None => Err(e(
                            *sp,
                            "division by a variable or zero",
                            "a non-zero constant divisor",
                            "/",
                        )),
                    },
                    _ => Err(e(
                        *sp,
                        format!(
                            "unsupported term operator `{op}` with {} arguments",
                            ts.len()
                        ),
                        "+, -, *, / with constants",
                        op,
                    )),
                }
            }
        }
    }

    fn formula(&self, s: &Sexp) -> Result<Formula, DslError> {
        let Sexp::List(items, sp) = s else {
            return match s {
                Sexp::Atom(a, _) if a == "true" => Ok(Formula::True),
                Sexp::Atom(a, _) if a == "false" => Ok(Formula::False),
                other => Err(e(
                    other.span(),
                    "expected a formula",
                    "(<= a b), (and …), (or …)",
                    "",
                )),
            };
        };
        let (op, args) = match items.split_first() {
            Some((Sexp::Atom(op, _), args)) => (op.as_str(), args),
            _ => {
                return Err(e(
                    *sp,
                    "expected a formula",
                    "(<= a b), (and …), (or …)",
                    "(",
                ))
            }
        };
        match op {
            "and" | "or" => {
                let fs = args
                    .iter()
                    .map(|a| self.formula(a))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if op == "and" {
                    Formula::and(fs)
                } else {
                    Formula::or(fs)
                })
            }
            "not" if args.len() == 1 => Ok(self.formula(&args[0])?.negate()),
            "<=" | ">=" | "<" | ">" | "=" if args.len() == 2 => {
                let d = self.term(&args[0])?.plus(self.term(&args[1])?.negated());
                let cmp = match op {
                    "<=" => Cmp::Le,
                    ">=" => Cmp::Ge,
                    "<" => Cmp::Lt,
                    ">" => Cmp::Gt,
                    _ => Cmp::Eq,
                };
                Ok(Formula::atom(d, cmp))
            }
            _ => Err(e(
                *sp,
                format!("unsupported formula operator `{op}`"),
                "and, or, not, <=, >=, <, >, =",
                op,
            )),
        }
    }
}

fn is_input_only(f: &Formula) -> bool {
    match f {
        Formula::True | Formula::False => true,
        Formula::Atom(a) => a.expr.is_input_only(),
        Formula::And(v) | Formula::Or(v) => v.iter().all(is_input_only),
        Formula::Count { .. } => false,
    }
}

/// Bounds `(i, lower?, upper?)` of a single-variable input atom, if it is one.
fn bound_of(f: &Formula) -> Option<(usize, Option<f64>, Option<f64>)> {
    let Formula::Atom(a) = f else { return None };
    if a.expr.terms.len() != 1 {
        return None;
    }
    let (v, c) = a.expr.terms.iter().next()?;
    let Var::Input(Side::First, i) = v else {
        return None;
    };
    let (c, k) = (c.as_const()?, a.expr.constant.as_const()?);
    if c.is_zero() {
        return None;
    }
    // c·x + k ⋈ 0  ⇔  x ⋈' −k/c
    let bound = (-k / c).to_f64()?;
    let flip = c < &Q::zero();
    let upper = matches!(
        (a.cmp, flip),
        (Cmp::Le | Cmp::Lt, false) | (Cmp::Ge | Cmp::Gt, true)
    );
    match a.cmp {
        Cmp::Eq => Some((*i, Some(bound), Some(bound))),
        _ if upper => Some((*i, None, Some(bound))),
        _ => Some((*i, Some(bound), None)),
    }
}

/// Intersects a conjunction of single-variable bounds into `b`; false if it is not one.
fn apply_bounds(f: &Formula, b: &mut [(f64, f64)]) -> bool {
    let parts: Vec<&Formula> = match f {
        Formula::And(v) => v.iter().collect(),
        Formula::True => vec![],
        other => vec![other],
    };
    for p in parts {
        match bound_of(p) {
            Some((i, lo, hi)) => {
                if let Some(l) = lo {
                    b[i].0 = b[i].0.max(l);
                }
                if let Some(h) = hi {
                    b[i].1 = b[i].1.min(h);
                }
            }
            None => return false,
        }
    }
    true
}

/// Reads VNN-LIB text.
pub fn read_vnnlib(src: &str) -> Result<VnnLib, DslError> {
    let stmts = sexps(src)?;
    let mut r = Reader {
        inputs: 0,
        outputs: 0,
    };
    let mut asserts = Vec::new();
    for s in &stmts {
        let Sexp::List(items, sp) = s else {
            return Err(e(
                s.span(),
                "expected a command",
                "(declare-const …) or (assert …)",
                "",
            ));
        };
        match items.as_slice() {
            [Sexp::Atom(cmd, _), Sexp::Atom(name, nsp), Sexp::Atom(_ty, _)]
                if cmd == "declare-const" =>
            {
                match var_index(name) {
                    Some(('X', i)) if i == r.inputs => r.inputs += 1,
                    Some(('Y', i)) if i == r.outputs => r.outputs += 1,
                    _ => {
                        return Err(e(
                            *nsp,
                            format!("unexpected declaration `{name}`"),
                            "X_0, X_1, … then Y_0, Y_1, … in order",
                            name,
                        ))
                    }
                }
            }
            [Sexp::Atom(cmd, _), body] if cmd == "assert" => asserts.push(body),
            _ => {
                return Err(e(
                    *sp,
                    "unsupported command",
                    "(declare-const NAME Real) or (assert FORMULA)",
                    "",
                ))
            }
        }
    }
    if r.inputs == 0 || r.outputs == 0 {
        return Err(e(
            Span::default(),
            "no inputs or no outputs declared",
            "declare-const X_i and Y_j",
            "",
        ));
    }
    let mut base = vec![(f64::NEG_INFINITY, f64::INFINITY); r.inputs];
    let mut alternatives: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut output = Vec::new();
    for a in asserts {
        let f = r.formula(a)?;
        if !is_input_only(&f) {
            output.push(f);
            continue;
        }
        if apply_bounds(&f, &mut base) {
            continue;
        }
        if let Formula::Or(alts) = &f {
            if alternatives.is_empty() {
                let mut boxes = Vec::new();
                let mut ok = true;
                for alt in alts {
                    let mut b = vec![(f64::NEG_INFINITY, f64::INFINITY); r.inputs];
                    ok &= apply_bounds(alt, &mut b);
                    boxes.push(b);
                }
                if ok {
                    alternatives = boxes;
                    continue;
                }
            }
        }
        output.push(f); // general input constraint: keep it in the condition
    }
    let boxes: Vec<Vec<(f64, f64)>> = if alternatives.is_empty() {
        vec![base]
    } else {
        alternatives
            .into_iter()
            .map(|b| {
                b.iter()
                    .zip(&base)
                    .map(|(x, y)| (x.0.max(y.0), x.1.min(y.1)))
                    .collect()
            })
            .collect()
    };
    for b in &boxes {
        for (i, (l, h)) in b.iter().enumerate() {
            if !l.is_finite() || !h.is_finite() {
                return Err(e(
                    Span::default(),
                    format!("input X_{i} is not bounded on both sides"),
                    "a lower and an upper bound for every input",
                    "",
                ));
            }
        }
    }
    Ok(VnnLib {
        n_inputs: r.inputs,
        n_outputs: r.outputs,
        input_boxes: boxes,
        unsafe_output: Formula::and(output),
    })
}

/// Exact decimal text of `q` when its denominator is `2^a·5^b`, else `(/ p q)`.
fn write_q(q: &Q) -> String {
    let (mut d, mut k) = (q.denom().clone(), 0u32);
    let (two, five) = (num_bigint::BigInt::from(2), num_bigint::BigInt::from(5));
    let mut scale = num_bigint::BigInt::one();
    while (&d % &two).is_zero() || (&d % &five).is_zero() {
        // multiply numerator and denominator up to the next power of ten
        if (&d % &two).is_zero() {
            d /= &two;
            scale *= &five;
        } else {
            d /= &five;
            scale *= &two;
        }
        k += 1;
        if k > 2000 {
            break;
        }
    }
    if !d.is_one() {
        return format!("(/ {} {})", q.numer(), q.denom());
    }
    // q = numer·scale / 10^k
    let n = q.numer() * scale;
    let neg = n < num_bigint::BigInt::zero();
    let digits = n.magnitude().to_string();
    let k = k as usize;
    let body = if k == 0 {
        digits
    } else if digits.len() > k {
        format!(
            "{}.{}",
            &digits[..digits.len() - k],
            &digits[digits.len() - k..]
        )
    } else {
        format!("0.{}{}", "0".repeat(k - digits.len()), digits)
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn write_linear(l: &Linear) -> Option<String> {
    let mut parts = Vec::new();
    for (v, c) in &l.terms {
        let name = match v {
            Var::Input(Side::First, i) => format!("X_{i}"),
            Var::Output(Side::First, j) => format!("Y_{j}"),
            _ => return None,
        };
        let c = c.as_const()?;
        parts.push(if c.is_one() {
            name
        } else {
            format!("(* {} {name})", write_q(c))
        });
    }
    let k = l.constant.as_const()?;
    if !k.is_zero() || parts.is_empty() {
        parts.push(write_q(k));
    }
    Some(if parts.len() == 1 {
        parts.pop().expect("one")
    } else {
        format!("(+ {})", parts.join(" "))
    })
}

fn write_formula(f: &Formula) -> Option<String> {
    Some(match f {
        Formula::True => "(<= 0 1)".into(),
        Formula::False => "(<= 1 0)".into(),
        Formula::Atom(a) => {
            let op = match a.cmp {
                Cmp::Lt => "<",
                Cmp::Le => "<=",
                Cmp::Eq => "=",
                Cmp::Ge => ">=",
                Cmp::Gt => ">",
            };
            // `y_i − y_j ⋈ 0` in the common two-variable form
            let unit: Vec<(&Var, &Q)> = a
                .expr
                .terms
                .iter()
                .filter_map(|(v, c)| c.as_const().map(|c| (v, c)))
                .collect();
            if unit.len() == 2
                && a.expr.constant.is_zero()
                && unit[0].1 == &(-unit[1].1.clone())
                && unit[0].1.is_one()
            {
                let l = write_linear(&Linear::var(*unit[0].0, Expr::Const(Q::one())))?;
                let r = write_linear(&Linear::var(*unit[1].0, Expr::Const(Q::one())))?;
                return Some(format!("({op} {l} {r})"));
            }
            let mut lhs = a.expr.clone();
            let k = lhs.constant.as_const()?.clone();
            lhs.constant = Expr::zero();
            format!("({op} {} {})", write_linear(&lhs)?, write_q(&-k))
        }
        Formula::And(v) | Formula::Or(v) => {
            let op = if matches!(f, Formula::And(_)) {
                "and"
            } else {
                "or"
            };
            let parts = v.iter().map(write_formula).collect::<Option<Vec<_>>>()?;
            format!("({op} {})", parts.join(" "))
        }
        Formula::Count { .. } => return None,
    })
}

/// Writes VNN-LIB text; `None` if the condition uses counting atoms or non-constant
/// coefficients, which VNN-LIB v1 cannot express.
pub fn write_vnnlib(p: &VnnLib) -> Option<String> {
    let mut s = String::new();
    for i in 0..p.n_inputs {
        s.push_str(&format!("(declare-const X_{i} Real)\n"));
    }
    for j in 0..p.n_outputs {
        s.push_str(&format!("(declare-const Y_{j} Real)\n"));
    }
    let bx = |b: &Vec<(f64, f64)>| {
        b.iter()
            .enumerate()
            .map(|(i, (l, h))| format!("(<= X_{i} {h:?}) (>= X_{i} {l:?})"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if p.input_boxes.len() == 1 {
        for (i, (l, h)) in p.input_boxes[0].iter().enumerate() {
            s.push_str(&format!(
                "(assert (<= X_{i} {h:?}))\n(assert (>= X_{i} {l:?}))\n"
            ));
        }
    } else {
        let alts: Vec<String> = p
            .input_boxes
            .iter()
            .map(|b| format!("(and {})", bx(b)))
            .collect();
        s.push_str(&format!("(assert (or {}))\n", alts.join(" ")));
    }
    s.push_str(&format!("(assert {})\n", write_formula(&p.unsafe_output)?));
    Some(s)
}
