//! Input-splitting branch and bound for "does `class` win everywhere in this box?": bisect the
//! box until CROWN proves the class margins positive on every piece, or a piece's centre or
//! CROWN-guided corner is a counterexample, or a node budget runs out.
//!
//! Why: an explanation step frees one feature at a time, so most queries have a handful of free
//! features, where a few hundred CROWN calls decide what costs a MILP solver thousands of
//! branch-and-bound nodes over ReLU binaries. Both answers are exact when given — the pieces
//! cover the box and CROWN is sound under floating point; counterexamples are evaluated in f64
//! — and an undecided query goes to the MILP, so explanations do not change.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use nalgebra::DMatrix;
use provenn_bounds::{CrownBounds, InputBox};
use provenn_nn::Mlp;

use crate::explain::loses;
use crate::verify::bisect;
use crate::MilpError;

/// Answer of [`decide_by_splitting`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SplitAnswer {
    /// CROWN proved every other class below `class` on every piece of the box.
    Entailed,
    /// A point of the box where another class scores at least as high (checked in f64).
    Counterexample(Vec<f64>),
    /// The budget ran out first.
    Undecided,
}

/// One piece of the box still to decide, with the classes not yet ruled out on it and the
/// smallest CROWN margin lower bound of its parent (more negative first: pieces likelier to
/// hold a counterexample are opened first; proofs visit every piece anyway).
struct Piece {
    bx: InputBox,
    others: Vec<usize>,
    priority: f64,
}

impl PartialEq for Piece {
    fn eq(&self, o: &Self) -> bool {
        self.priority.total_cmp(&o.priority) == Ordering::Equal
    }
}
impl Eq for Piece {}
impl PartialOrd for Piece {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Piece {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap is a max-heap: the most negative margin must compare greatest.
        o.priority.total_cmp(&self.priority)
    }
}

/// Decides whether `class` scores strictly highest on all of `qbox`, opening at most `budget`
/// pieces, and none after `deadline`. `others` are the classes that may still beat `class`
/// (the caller may have ruled some out on the whole box).
pub(crate) fn decide_by_splitting(
    net: &Mlp,
    qbox: &InputBox,
    class: usize,
    others: &[usize],
    budget: usize,
    deadline: Option<Instant>,
) -> Result<(SplitAnswer, usize), MilpError> {
    let mut opened = 0;
    let k = net.n_outputs();
    let mut heap = BinaryHeap::new();
    heap.push(Piece {
        bx: qbox.clone(),
        others: others.to_vec(),
        priority: f64::NEG_INFINITY,
    });
    while let Some(p) = heap.pop() {
        if opened >= budget || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok((SplitAnswer::Undecided, opened));
        }
        opened += 1;
        let (b, lower, upper) = (&p.bx, p.bx.lower(), p.bx.upper());
        // Rows o_class − o_j for the classes still open on this piece.
        let spec = DMatrix::from_fn(p.others.len(), k, |r, col| {
            if col == class {
                1.0
            } else if col == p.others[r] {
                -1.0
            } else {
                0.0
            }
        });
        let (crown, coefs) = CrownBounds.bounds_with_coefficients(net, b, Some(&spec))?;
        let margins = crown.spec().expect("a spec was given");
        // Rows (classes) CROWN cannot rule out on this piece; the least refuted first.
        let open: Vec<usize> = (0..p.others.len())
            .filter(|&r| margins.lower[r] <= 0.0)
            .collect();
        let Some(&worst_row) = open
            .iter()
            .min_by(|&&a, &&b| margins.lower[a].total_cmp(&margins.lower[b]))
        else {
            continue;
        };
        let (worst, worst_margin) = (p.others[worst_row], margins.lower[worst_row]);
        // Candidates: the centre, and the corner the gradient of o_worst − o_class at the
        // centre points to.
        let centre: Vec<f64> = lower
            .iter()
            .zip(upper)
            .map(|(l, u)| 0.5 * (l + u))
            .collect();
        if loses(net, &centre, class)? {
            return Ok((SplitAnswer::Counterexample(centre), opened));
        }
        let trace = net.trace(&DMatrix::from_row_slice(1, centre.len(), &centre))?;
        let mut g = DMatrix::zeros(1, k);
        g[(0, worst)] = 1.0;
        g[(0, class)] = -1.0;
        let (_, grad) = net.backward(&trace, &g)?;
        let corner: Vec<f64> = (0..centre.len())
            .map(|i| {
                if grad[(0, i)] > 0.0 {
                    upper[i]
                } else if grad[(0, i)] < 0.0 {
                    lower[i]
                } else {
                    centre[i]
                }
            })
            .collect();
        if loses(net, &corner, class)? {
            return Ok((SplitAnswer::Counterexample(corner), opened));
        }
        // And the corner minimising CROWN's linear lower bound of o_class − o_worst.
        if let Some(a) = &coefs {
            let corner: Vec<f64> = (0..centre.len())
                .map(|i| match a[(worst_row, i)] {
                    v if v > 0.0 => lower[i],
                    v if v < 0.0 => upper[i],
                    _ => centre[i],
                })
                .collect();
            if loses(net, &corner, class)? {
                return Ok((SplitAnswer::Counterexample(corner), opened));
            }
        }
        // Split the free feature with the largest width × |coefficient| in CROWN's bound of
        // the worst row (× |gradient| without coefficients; the widest when all vanish).
        let width = |i: usize| upper[i] - lower[i];
        let free = (0..centre.len()).filter(|&i| width(i) > 0.0);
        let score = |i: usize| match &coefs {
            Some(a) => width(i) * a[(worst_row, i)].abs(),
            None => width(i) * grad[(0, i)].abs(),
        };
        let dim = free
            .clone()
            .max_by(|&a, &b| score(a).total_cmp(&score(b)))
            .filter(|&i| score(i) > 0.0)
            .or_else(|| free.max_by(|&a, &b| width(a).total_cmp(&width(b))));
        let Some(dim) = dim else {
            // A point the CROWN bounds cannot decide and which does not lose: only the MILP
            // can settle it.
            return Ok((SplitAnswer::Undecided, opened));
        };
        let mid = centre[dim];
        // A piece too narrow to halve in floating point: only the MILP can settle it.
        let Some((left, right)) = bisect(b, dim).filter(|_| mid > lower[dim] && mid < upper[dim])
        else {
            return Ok((SplitAnswer::Undecided, opened));
        };
        let others: Vec<usize> = open.iter().map(|&r| p.others[r]).collect();
        heap.push(Piece {
            bx: left,
            others: others.clone(),
            priority: worst_margin,
        });
        heap.push(Piece {
            bx: right,
            others,
            priority: worst_margin,
        });
    }
    Ok((SplitAnswer::Entailed, opened))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{default_backend, SolveOptions};
    use crate::explain::{entailed_by_class_margins, predicted_class, Entailment, MarginBounds};
    use nalgebra::DVector;
    use proptest::prelude::*;
    use provenn_nn::{Activation, Dense};

    /// A random ReLU classifier: `n_in` inputs, one or two hidden layers, 2–3 outputs.
    fn net(n_in: usize, hidden: Vec<usize>, n_out: usize, w: &[f64]) -> Mlp {
        let mut it = w.iter().cycle().copied();
        let mut layers = Vec::new();
        let mut prev = n_in;
        for (l, &width) in hidden.iter().chain([n_out].iter()).enumerate() {
            let wm = DMatrix::from_fn(width, prev, |_, _| it.next().expect("cycle"));
            let b = DVector::from_fn(width, |_, _| 0.3 * it.next().expect("cycle"));
            let act = if l == hidden.len() {
                Activation::Identity
            } else {
                Activation::Relu
            };
            layers.push(Dense::new(wm, b, act).expect("shapes"));
            prev = width;
        }
        Mlp::from_layers(n_in, layers, vec![]).expect("layers")
    }

    /// A deadline already passed opens no piece: the query goes to the MILP undecided.
    #[test]
    fn a_passed_deadline_opens_nothing() {
        let net = net(2, vec![3], 2, &[0.7, -1.1, 0.4, 1.3, -0.6, 0.9, -1.4, 0.2]);
        let b = InputBox::unit(2);
        let (answer, opened) =
            decide_by_splitting(&net, &b, 0, &[1], 5_000, Some(Instant::now())).expect("split");
        assert_eq!((answer, opened), (SplitAnswer::Undecided, 0));
        // Without it the same query is decided.
        let (answer, _) = decide_by_splitting(&net, &b, 0, &[1], 5_000, None).expect("split");
        assert_ne!(answer, SplitAnswer::Undecided);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Splitting never proves what a point of the box refutes: "entailed" agrees with the
        /// MILP oracle and with sampling; every counterexample lies in the box and loses in
        /// f64; and with a small budget it may give up, never guess.
        #[test]
        fn splitting_agrees_with_the_milp_oracle(
            n_in in 1usize..=4,
            hidden in proptest::collection::vec(2usize..=5, 1..=2),
            n_out in 2usize..=3,
            w in proptest::collection::vec(-1.5f64..1.5, 97),
            x in proptest::collection::vec(0.0f64..=1.0, 4),
            free in proptest::collection::vec(any::<bool>(), 4),
            budget in prop_oneof![Just(3usize), Just(5_000usize)],
        ) {
            let net = net(n_in, hidden, n_out, &w);
            let x = &x[..n_in];
            let y = net.forward(&DVector::from_row_slice(x)).expect("forward");
            let class = predicted_class(y.as_slice());
            let mut b = InputBox::unit(n_in);
            for i in 0..n_in {
                if !free[i] {
                    b.fix(i, x[i]).expect("in the box");
                }
            }
            let others: Vec<usize> = (0..n_out).filter(|&j| j != class).collect();
            let (answer, opened) = decide_by_splitting(&net, &b, class, &others, budget, None)
                .expect("splitting");
            prop_assert!(opened <= budget);
            let oracle = entailed_by_class_margins(
                &net, &b, class, MarginBounds::Propagated, &*default_backend(), &SolveOptions::default(),
            ).expect("oracle");
            match answer {
                SplitAnswer::Entailed => {
                    prop_assert!(!matches!(oracle, Entailment::Counterexample(_)), "{oracle:?}");
                    // Sampling the box: no point may lose.
                    let mut s = 0x2545_f491_4f6c_dd1du64;
                    for _ in 0..2_000 {
                        let p: Vec<f64> = (0..n_in)
                            .map(|i| {
                                s ^= s << 13;
                                s ^= s >> 7;
                                s ^= s << 17;
                                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                                b.lower()[i] + u * (b.upper()[i] - b.lower()[i])
                            })
                            .collect();
                        prop_assert!(!loses(&net, &p, class).expect("forward"), "{p:?}");
                    }
                }
                SplitAnswer::Counterexample(c) => {
                    prop_assert!(b.contains(&c));
                    prop_assert!(loses(&net, &c, class).expect("forward"));
                    prop_assert!(oracle != Entailment::Entailed);
                }
                // Giving up is always allowed (the MILP then decides).
                SplitAnswer::Undecided => {}
            }
        }

        /// A counterexample region the first candidates miss: class 1 wins only on
        /// `|x − a| ≤ r`, a narrow window away from the centre and the corners of `[0, 1]`.
        /// Splitting must find a point in it (the pieces cover the box), and must prove the
        /// box without the window entailed.
        #[test]
        fn splitting_finds_a_narrow_window(a in 0.05f64..0.95, r in 1e-4f64..1e-2) {
            prop_assume!((a - 0.5).abs() > 2.0 * r);
            let k = 10.0;
            let hidden = Dense::new(
                DMatrix::from_row_slice(2, 1, &[1.0, -1.0]),
                DVector::from_row_slice(&[-a, a]),
                Activation::Relu,
            )
            .expect("shapes");
            // o0 = k·|x − a|, o1 = k·r.
            let out = Dense::new(
                DMatrix::from_row_slice(2, 2, &[k, k, 0.0, 0.0]),
                DVector::from_row_slice(&[0.0, k * r]),
                Activation::Identity,
            )
            .expect("shapes");
            let net = Mlp::from_layers(1, vec![hidden, out], vec![]).expect("layers");
            let whole = InputBox::unit(1);
            let (answer, _) = decide_by_splitting(&net, &whole, 0, &[1], 5_000, None).expect("split");
            match answer {
                SplitAnswer::Counterexample(c) => {
                    prop_assert!((c[0] - a).abs() <= r * (1.0 + 1e-9));
                    prop_assert!(loses(&net, &c, 0).expect("forward"));
                }
                other => prop_assert!(false, "expected a counterexample, got {other:?}"),
            }
            let left = InputBox::new(vec![0.0], vec![a - 2.0 * r]).expect("box");
            let (answer, _) = decide_by_splitting(&net, &left, 0, &[1], 5_000, None).expect("split");
            prop_assert_eq!(answer, SplitAnswer::Entailed);
        }
    }
}
