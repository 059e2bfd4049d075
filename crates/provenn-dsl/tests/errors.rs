//! Error messages for a dozen typical mistakes: position, offending text, expectation and a
//! suggestion where one makes sense. The expected texts are written by hand.
use provenn_data::{Feature, FeatureKind, OneHotGroup, Schema};
use provenn_dsl::{compile, Bindings};

fn bindings() -> Bindings {
    let f = |name: &str, kind: FeatureKind| Feature {
        name: name.into(),
        kind,
        raw_min: 0.0,
        raw_max: 10_000.0,
    };
    let schema = Schema {
        features: vec![
            f("ApplicantIncome", FeatureKind::Continuous),
            f("Credit_History", FeatureKind::Binary),
            f(
                "artist_Bowie",
                FeatureKind::OneHot {
                    group: "artist".into(),
                    category: "Bowie".into(),
                },
            ),
            f(
                "artist_The Beatles",
                FeatureKind::OneHot {
                    group: "artist".into(),
                    category: "The Beatles".into(),
                },
            ),
        ],
        groups: vec![OneHotGroup {
            name: "artist".into(),
            columns: vec![(2, "Bowie".into()), (3, "The Beatles".into())],
            dropped: None,
        }],
        target_names: vec!["reject".into(), "approve".into()],
    };
    Bindings::from_schema(&schema, None)
}

fn error(src: &str) -> String {
    compile(src, &bindings()).expect_err(src).to_string()
}

#[test]
fn typical_mistakes_have_clear_messages() {
    let cases = [
        ("forall x: x.ApplicantIncom <= 5000", "1:12: unknown input `ApplicantIncom` at `ApplicantIncom`; expected an input feature or a one-hot group of the schema; did you mean `ApplicantIncome`?"),
        ("forall x: y.rejct > y.approve", "1:12: unknown output `rejct` at `rejct`; expected an output (target) name; did you mean `reject`?"),
        ("forall x: x.Credit_History = 0", "1:28: `=` is not a comparison at `=`; expected `==` to compare"),
        ("forall x: y.reject * y.approve > 0", "1:20: product of two terms that both contain network outputs is not linear; expected at most one factor with outputs"),
        ("forall x: (y.reject > 0", "1:24: missing `)` at `end of input`; expected `)`"),
        ("forall x: x.artist == \"The Beatle\" => y.reject > 0", "1:20: `artist` has no category `The Beatle` at `The Beatle`; expected one of its categories; did you mean `The Beatles`?"),
        ("forall x: argmax(y) in {rejet}", "1:25: unknown name `rejet` at `rejet`; expected a variable, a constant or a class name; did you mean `reject`?"),
        ("forall x: 0 < y.reject < 1", "1:24: chained comparisons are ambiguous at `<`; expected `and` between two comparisons"),
        ("forall x: exactly(1, y.reject > 0, y.approve > 0)", "1:11: `exactly` takes 2 argument(s), got 3 at `exactly`; expected 2 argument(s)"),
        ("forall x: sin(y.reject) > 0", "1:16: `sin` of a network output is not linear; expected a term over inputs and constants only"),
        ("forall x in [ApplicantIncome: 5000 .. 100]: y.reject > 0", "1:14: empty domain at `ApplicantIncome`; expected lower bound ≤ upper bound"),
        ("forall x: y.reject > y.approve and", "1:35: expected a term or a formula at `end of input`; expected a number, a name, `(`, `[`, `if`, `not`"),
        ("forall x: y.reject / y.approve > 0", "1:20: division by a network output is not linear; expected a divisor over inputs and constants"),
        ("forall x: y[5] > 0", "1:12: index out of range at `5`; expected 0..2"),
        ("forall x: y.reject $ 0", "1:20: unexpected character at `$`; expected an operator, name, number or string"),
        ("forall x: softmax(y) > 0", "1:11: unknown function `softmax` at `softmax`; expected a known function"),
    ];
    for (src, expected) in cases {
        assert_eq!(error(src), expected, "for `{src}`");
    }
}

/// A class index beyond a short arg-max vector is an error, not a panic (found by the fuzz
/// test in CI).
#[test]
fn class_beyond_a_short_argmax_is_an_error() {
    let e = error("forall x: argmax([y.reject]) == approve");
    assert!(
        e.contains("class index out of range for this arg-max"),
        "{e}"
    );
}
