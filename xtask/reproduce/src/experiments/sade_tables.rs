//! `sade-tables`: SaDe's Tables 1–3 (AdI, accuracy/MSE, runtime) on its three use cases —
//! loan approval, music genre (our synthetic stand-in) and household expenses (first 1,000
//! rows) — against the linear SBR and SL baselines, every model through the MILP certifier.
use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;
use provenn::data::split::k_fold;
use provenn::data::usecase::{self, LoanVariant};
use provenn::data::Dataset;
use provenn::dsl::ir::Constraint;
use provenn::dsl::{compile, Bindings};
use provenn::train::regularised::{select_alpha, Penalty, RegularisedParams};
use provenn::train::sade::{select_sade, SadeParams};
use provenn::Mlp;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{deepsade, deepsade_uc1, mean_sd, Ctx, Experiment, Mode};

pub struct SadeTables;

const LOAN: &str =
    "forall x: x.ApplicantIncome <= 5000 and x.Credit_History == 0 => y.reject > y.approve";
const MUSIC: &str = r#"forall x: x.artist == "The Beatles" => (y.Pop > 0 or y.Rock > 0) and y.Classical < 0 and y.Electronic < 0 and y.Metal < 0"#;
const EXPENSE: &str = r#"forall x: sum(y) <= x."Total Household Income" and y.Going_Out_Expenses <= 0.05 * x."Total Household Income""#;

/// Penalty weights for the baselines, `(1 − α)·loss + α·penalty` (the reference's unbounded
/// grids `loss + α·penalty` map into [0, 1)).
const GRID: [f64; 7] = [0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99];

/// One model's evaluation, whatever the task.
struct Eval {
    metric: f64,
    violations: usize,
    certified: bool,
    certificate: String,
    adi: [f64; 2],
    seconds: f64,
    alpha: Option<f64>,
}

fn evaluate(
    net: &Mlp,
    test: &Dataset,
    points: &[Vec<f64>],
    c: &Constraint,
    seconds: f64,
    regression: bool,
) -> Result<Eval> {
    Ok(if regression {
        let r = deepsade_uc1::evaluate(net, test, points, c, seconds)?;
        Eval {
            metric: r.corrected_mse,
            violations: r.test_violations,
            certified: r.certified,
            certificate: r.certificate,
            adi: r.adi,
            seconds,
            alpha: None,
        }
    } else {
        let r = deepsade::evaluate(net, test, points, c, seconds)?;
        Eval {
            metric: r.corrected_acc,
            violations: r.test_violations,
            certified: r.certified,
            certificate: r.certificate,
            adi: r.adi,
            seconds,
            alpha: None,
        }
    })
}

/// Published SaDe numbers (metric / AdI(0.1), AdI(0.01) / time s), from our notes.
fn paper(case: &str, method: &str) -> &'static str {
    match (case, method) {
        ("loan", "SaDe") => "78.03 ± 4.91 / 0, 0 / 134 ± 66",
        ("loan", "SBR") => "78.36 / 0, 0 / 85",
        ("loan", "SL") => "78.32 / 0, 0 / 86",
        ("music", "SaDe") => "80.76 ± 5.15 / 0, 0 / 3,146 ± 962 (real data)",
        ("music", "SBR") => "82.94 / .089, .007 / 519 (real data)",
        ("music", "SL") => "82.96 / .024, .007 / 513 (real data)",
        ("expense", "SaDe") => "MSE 192.14 ± 102.96 / 0, 0 / 3,297 ± 514",
        ("expense", "SBR") => "MSE 243.49 ± 107.51 / .775, .056 / 123",
        _ => "—",
    }
}

impl Experiment for SadeTables {
    fn name(&self) -> &'static str {
        "sade-tables"
    }
    fn title(&self) -> &'static str {
        "SaDe Tables 1–3 (loan, music stand-in, expenses 1,000 rows): certified linear models vs SBR/SL"
    }
    fn required_files(&self) -> &'static [&'static str] {
        &["loan.csv", "expenses.csv"]
    }
    fn run(&self, ctx: &Ctx) -> Result<String> {
        let (folds_run, epochs, inner) = match ctx.mode {
            Mode::Smoke => (1, 1, 2),
            Mode::Quick => (1, 10, 3),
            Mode::Full => (5, 10, 5),
        };
        // `--seeds` caps the folds run (the CV repetitions).
        let folds_run = ctx.seeds(folds_run);
        // SaDe's inner CV (by held-out loss): the paper's α grid always (not in smoke), the
        // paper's margin/tolerance grids in --full only; inner models train for `cv_epochs`.
        let (sade_cv, cv_epochs) = match ctx.mode {
            Mode::Smoke => (None, 1),
            Mode::Quick => (Some(2), 2),
            Mode::Full => (Some(5), 10),
        };
        let cases = [
            (
                "loan",
                usecase::uc2_loan(&ctx.data, LoanVariant::SaDe, true, 1)?,
                LOAN,
            ),
            ("music", usecase::uc3_music_synthetic(true, 1)?, MUSIC),
            (
                "expense",
                usecase::uc1_expenses(&ctx.data, Some(1000))?,
                EXPENSE,
            ),
        ];
        let mut md = String::new();
        let _ = writeln!(md, "SaDe's protocol: 10 epochs of sequential batches of 5, max step α = 1, margins [0, 1, 2] (classification) or tolerance 0.1 × the batch's largest target (regression), 5 s per MaxSMT step, the iterate with the lowest training loss (highest training accuracy for the 5-class music task, ties by loss, as the reference). SaDe's hyper-parameters by inner CV on held-out loss as the reference: α ∈ {{0.5, 1, 2}} with the default margins/tolerance and 2-epoch inner models on 2 folds in --quick; α × the paper's margin grids ([0,1], [0,1,2], [1,2]; regression [0.1], [0.1,0.2], [0.1,0.2,0.3]) with 10-epoch inner models on 5 folds in --full; none in --smoke (α = 1). The training time column excludes the inner CV (reported below) and the certification. Baselines: the same linear model (one logit per class, one output per target) trained by Adam (lr 0.01, batch 16, up to 200 epochs, patience 30 on a 25% validation split) on (1 − α)·loss + α·penalty — SBR (Gödel, or the hinge for the regression task, as the reference's regression \"SBR\") and SL (exact semantic loss) — α from {GRID:?} by {inner}-fold inner cross-validation (fewest violations, then best score). 5-fold CV (seed 1), {folds_run} fold(s) run. AdI over the training instances, as the reference. Metric: accuracy (or MSE averaged over the targets) on the test rows whose labels satisfy the constraint.\n");
        let _ = writeln!(md, "| task | method | α | test metric | test violations | certificate | AdI(0.1) / AdI(0.01) | train time per model (s) | paper: metric / AdI(0.1), AdI(0.01) / time (s) |\n|---|---|---|---|---|---|---|---|---|");
        let mut notes = String::new();
        for (case, uc, src) in &cases {
            let d = &uc.dataset;
            let regression = d.targets.labels().is_none();
            let c = compile(src, &Bindings::from_dataset(d))?.remove(0);
            let labels = d.targets.labels();
            let folds = k_fold(d.n_rows(), 5, labels, 1)?;
            let methods: &[(&str, Option<Penalty>)] = if regression {
                &[("SaDe", None), ("SBR", Some(Penalty::Hinge))]
            } else {
                &[
                    ("SaDe", None),
                    ("SBR", Some(Penalty::Sbr)),
                    ("SL", Some(Penalty::SemanticLoss)),
                ]
            };
            let mut evals: Vec<Vec<Eval>> = methods.iter().map(|_| Vec::new()).collect();
            for (f, fold) in folds.iter().take(folds_run).enumerate() {
                let mut train_idx = fold.train.clone();
                if *case == "music" {
                    // Our generator writes the songs artist by artist, and SaDe's batches are
                    // sequential: one shuffle undoes the artefact (the real files are not
                    // grouped by label).
                    train_idx.shuffle(&mut ChaCha8Rng::seed_from_u64(f as u64));
                }
                let (train, test) = (d.select(&train_idx), d.select(&fold.test));
                let points: Vec<Vec<f64>> = (0..train.n_rows())
                    .map(|i| train.x.row(i).iter().copied().collect())
                    .collect();
                for (m, (_, penalty)) in methods.iter().enumerate() {
                    let e = match penalty {
                        None => {
                            let base = SadeParams {
                                epochs,
                                ..SadeParams::default()
                            };
                            let tc = Instant::now();
                            let chosen = match sade_cv {
                                None => base,
                                Some(k) => {
                                    let levels: Vec<Vec<f64>> = match (ctx.mode, regression) {
                                        (Mode::Full, false) => {
                                            vec![
                                                vec![0.0, 1.0],
                                                vec![0.0, 1.0, 2.0],
                                                vec![1.0, 2.0],
                                            ]
                                        }
                                        (Mode::Full, true) => {
                                            vec![vec![0.1], vec![0.1, 0.2], vec![0.1, 0.2, 0.3]]
                                        }
                                        (_, false) => vec![base.margins.clone()],
                                        (_, true) => vec![base.tolerances.clone()],
                                    };
                                    let inner_base = SadeParams {
                                        epochs: cv_epochs,
                                        ..base.clone()
                                    };
                                    let (p, _) = select_sade(
                                        &inner_base,
                                        &[0.5, 1.0, 2.0],
                                        &levels,
                                        &train,
                                        &c,
                                        k,
                                        f as u64,
                                    )?;
                                    SadeParams { epochs, ..p }
                                }
                            };
                            let cv_secs = tc.elapsed().as_secs_f64();
                            let levels = if regression {
                                &chosen.tolerances
                            } else {
                                &chosen.margins
                            };
                            let chosen_desc = format!("α = {}, levels {levels:?}", chosen.max_step);
                            let t0 = Instant::now();
                            let sade = chosen.build()?.fit(&train, &c)?;
                            let secs =
                                t0.elapsed().as_secs_f64() - sade.stats.certify_time.as_secs_f64();
                            deepsade::require_certified(
                                &sade.guarantee,
                                format_args!("SaDe model ({case}, fold {f})"),
                            )?;
                            if f == 0 {
                                let _ = writeln!(notes, "- {case}: SaDe chose {chosen_desc} (inner CV {cv_secs:.1} s), accepted {} of {} MaxSMT steps.", sade.stats.accepted, sade.stats.steps);
                            }
                            evaluate(&sade.net, &test, &points, &c, secs, regression)?
                        }
                        Some(p) => {
                            let params = RegularisedParams {
                                hidden: vec![],
                                epochs: 200,
                                batch_size: 16,
                                learning_rate: 0.01,
                                patience: 30,
                                penalty: *p,
                                seed: f as u64,
                                ..Default::default()
                            };
                            let choice = select_alpha(&params, &GRID, &train, &c, inner, f as u64)?;
                            let mut idx: Vec<usize> = (0..train.n_rows()).collect();
                            idx.shuffle(&mut ChaCha8Rng::seed_from_u64(f as u64));
                            let (val_idx, fit_idx) = idx.split_at(train.n_rows() / 4);
                            let t0 = Instant::now();
                            let fitted = RegularisedParams {
                                alpha: choice.alpha,
                                ..params
                            }
                            .build()?
                            .fit(
                                &train.select(fit_idx),
                                Some(&train.select(val_idx)),
                                &c,
                            )?;
                            let secs = t0.elapsed().as_secs_f64();
                            let mut e =
                                evaluate(&fitted.net, &test, &points, &c, secs, regression)?;
                            e.alpha = Some(choice.alpha);
                            e
                        }
                    };
                    evals[m].push(e);
                }
            }
            for ((name, _), r) in methods.iter().zip(&evals) {
                let (mm, msd) = mean_sd(&r.iter().map(|x| x.metric).collect::<Vec<_>>());
                let (tm, _) = mean_sd(&r.iter().map(|x| x.seconds).collect::<Vec<_>>());
                let (a1, _) = mean_sd(&r.iter().map(|x| x.adi[0]).collect::<Vec<_>>());
                let (a2, _) = mean_sd(&r.iter().map(|x| x.adi[1]).collect::<Vec<_>>());
                let viol = r.iter().map(|x| x.violations).sum::<usize>() as f64 / r.len() as f64;
                let cert = deepsade::certificate_cell(
                    &r.iter()
                        .map(|x| (x.certified, x.certificate.as_str()))
                        .collect::<Vec<_>>(),
                );
                let alpha = r
                    .iter()
                    .filter_map(|x| x.alpha.map(|a| a.to_string()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let metric = if regression {
                    format!("MSE {mm:.2} ± {msd:.2}")
                } else {
                    format!("{:.2} ± {:.2}", 100.0 * mm, 100.0 * msd)
                };
                let _ = writeln!(md, "| {case} | {name} | {alpha} | {metric} | {viol:.1} | {cert} | {a1:.3} / {a2:.3} | {tm:.2} | {} |", paper(case, name));
            }
        }
        let _ = writeln!(md, "\nData: loan is SaDe's preparation (480 rows, 14 features, Gender kept, 35 approvals injected among Credit_History = 0); music is our **synthetic stand-in** (793 songs, the real schema, 40 Beatles songs relabelled — SaDe relabelled 60 of the real data); expense is the first 1,000 rows of DeepSaDe's file (SaDe's own file has 126 more high-income households; 863 of our 1,000 rows violate the constraint, the paper says 862). Our expense MSE averages the squared error over the five targets; the paper's `custom_metric_test_2` may be defined differently (not confirmed), so compare the two methods' ratio rather than the raw values. SL is not defined for the regression task (the reference has none either). A certificate's margin is the certifier's proven slack; SaDe's steps end on the constraint's boundary, so a margin of about −2e-6 is HiGHS's feasibility tolerance (within the certifier's 1e-5), not a violation. The music songs of each training fold are shuffled once before SaDe's sequential batches (our generator writes them artist by artist). PP (post-processing) is not reproduced: it is not a network and guarantees only what its rule says.\n\n{notes}");
        Ok(md)
    }
}
