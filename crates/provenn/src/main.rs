//! The `provenn` command-line interface.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use provenn::data::{catalog, split, FeatureKind, LoadOptions, Targets};
use provenn::nn::{io, Activation};
use provenn::train::ffn::{score, FfnParams};
use provenn::DataDir;

#[derive(Parser)]
#[command(
    name = "provenn",
    version,
    about = "Train, prove and explain neural networks with guarantees"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Datasets: list and describe.
    #[command(subcommand)]
    Data(DataCmd),
    /// Plain networks: train and inspect.
    #[command(subcommand)]
    Nn(NnCmd),
    /// Sound per-layer bounds of a saved network over an input box.
    Bounds(BoundsArgs),
    /// Parse and type-check a constraint file against a dataset and count violating rows.
    CheckConstraint {
        /// Constraint file (provenn constraint language).
        file: PathBuf,
        /// Dataset name (see `provenn data list`).
        #[arg(long)]
        dataset: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Abductive explanations (subset-minimal sufficient feature sets) of a classifier's
    /// predictions on dataset rows, computed with MILP.
    Explain(ExplainArgs),
    /// Certify constraints (or, with `--monotone`, monotonicity in chosen features) on a ReLU
    /// network over their whole domain with MILP: prints `certified`, `violated` (with a
    /// witness re-checked in f64) or `unknown`.
    Certify(CertifyArgs),
    /// Train a network that satisfies a constraint for every input (DeepSaDe; the inputs the
    /// constraint reads are skip-connected into the last layer; SaDe for linear models), or a
    /// baseline (unconstrained FFN, or the soft-constraint SL/SBR/REG), and certify the result
    /// with MILP over the whole domain. Exit code 2 when the model is not certified.
    Train(ConstrainedTrainArgs),
    /// Decide a VNN-LIB property of an ONNX network (VNN-COMP's question): prints `sat` with
    /// a witness re-validated in f64, `unsat`, or `unknown`, in VNN-COMP's result format; or
    /// runs a whole benchmark with `--batch instances.csv`.
    Verify(VerifyArgs),
}

#[derive(Args)]
struct ConstrainedTrainArgs {
    /// Dataset name.
    #[arg(long)]
    dataset: String,
    #[command(flatten)]
    data: DataArg,
    /// Constraint file (provenn constraint language); several constraints are conjoined.
    #[arg(long)]
    constraint: PathBuf,
    /// deepsade, sade (linear model), ffn, or a soft-constraint baseline: sl (semantic loss),
    /// sbr (semantic-based regularisation), reg (hinge penalties).
    #[arg(long, default_value = "deepsade")]
    method: String,
    /// Penalty weight α ∈ [0, 1] of sl/sbr/reg; without it, α is chosen from
    /// {0, .1, .2, .3, .5, .7, .9} by 3-fold inner cross-validation (fewest violations, then
    /// the best score).
    #[arg(long)]
    alpha: Option<f64>,
    /// DeepSaDe's last-layer encoding: milp (eliminated, HiGHS), eliminated (Z3, linear) or
    /// quantified (Z3, the papers' encoding).
    #[arg(long, default_value = "milp")]
    encoding: String,
    /// DeepSaDe: slack every output comparison must keep (needed to certify counting
    /// constraints such as `exactly(1, [y[i] > 0 …])` in floating point).
    #[arg(long, default_value_t = 0.0)]
    slack: f64,
    /// DeepSaDe: training rows the initial last layer is fitted to (0: any satisfying layer).
    #[arg(long, default_value_t = 0)]
    initial_fit_rows: usize,
    /// DeepSaDe: line search only, no MaxSMT steps (the reference's UC4/UC5 setting).
    #[arg(long)]
    no_maxsmt: bool,
    /// DeepSaDe: latent box from `interval` (IBP, the papers') or `crown` (CROWN ∩ IBP).
    #[arg(long, default_value = "interval")]
    latent_bounds: String,
    /// DeepSaDe: branch-and-bound nodes per MaxSMT step (default: solve each step to proven
    /// optimality or its time limit).
    #[arg(long)]
    step_node_limit: Option<u64>,
    /// Hidden widths, comma-separated.
    #[arg(long, default_value = "16,16", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Learning rate (DeepSaDe: SGD; FFN: Adam).
    #[arg(long, default_value_t = 0.05)]
    lr: f64,
    /// Seed (initialisation, shuffling, split).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of rows held out for testing.
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Fraction held out for validation (model selection).
    #[arg(long, default_value_t = 0.1)]
    validation_fraction: f64,
    /// Write the trained network here (binary format).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// Network (`.onnx`, `.nnet`, or provenn's binary format).
    #[arg(long, required_unless_present = "batch")]
    onnx: Option<PathBuf>,
    /// Property (VNN-LIB).
    #[arg(long, required_unless_present = "batch")]
    vnnlib: Option<PathBuf>,
    /// Time limit in seconds (per instance; `--batch` uses each row's own limit).
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
    /// A benchmark's `instances.csv` (`onnx,vnnlib,timeout` per row, paths relative to it).
    #[arg(long, conflicts_with_all = ["onnx", "vnnlib"])]
    batch: Option<PathBuf>,
    /// Where `--batch` writes its results CSV.
    #[arg(long, default_value = "results.csv")]
    results: PathBuf,
    /// Also write the single answer (VNN-COMP result file) here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Branch-and-bound nodes at this depth go to the MILP instead of being split.
    #[arg(long, default_value_t = 40)]
    milp_depth: usize,
    /// Choose splits by bounding both halves of every candidate input (fewer nodes, more time
    /// per node) instead of by the gradient rule.
    #[arg(long)]
    lookahead_split: bool,
}

#[derive(Args)]
struct ExplainArgs {
    /// Network file: provenn binary format, `.onnx`, or `.nnet`.
    #[arg(long)]
    net: PathBuf,
    /// Dataset whose rows are explained; the domain of each feature is its range over the data.
    #[arg(long)]
    dataset: String,
    #[command(flatten)]
    data: DataArg,
    /// Acceleration mode.
    #[arg(long, default_value = "box-simplify")]
    mode: String,
    /// Rows to explain (comma-separated indices); default: the first `--first` rows.
    #[arg(long, value_delimiter = ',')]
    rows: Vec<usize>,
    /// Number of leading rows to explain when `--rows` is not given.
    #[arg(long, default_value_t = 10)]
    first: usize,
    /// Global neuron bounds: none, lp, milp or milp-sign. In box-simplify mode each query also bounds its
    /// own box, so milp (two MILPs per unstable neuron, minutes on deep networks) made
    /// explanations at most ~10% faster where measured.
    #[arg(long, default_value = "lp")]
    tightening: String,
    /// Time limit per solver call, in seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Skip the independent check of each explanation (entailment by a different MILP
    /// encoding; each kept feature's counterexample re-checked in f64). A refuted explanation
    /// is an error.
    #[arg(long)]
    no_check: bool,
    /// Do not search for counterexamples by gradient ascent before each MILP.
    #[arg(long)]
    no_falsify: bool,
    /// Use interval bounds only in the Box modes (as the reference), not CROWN as well.
    #[arg(long)]
    no_crown: bool,
    /// Pieces input-splitting branch and bound may open per query before the MILP (0: off).
    #[arg(long, default_value_t = provenn::milp::DEFAULT_SPLIT_BUDGET)]
    split_budget: usize,
    /// Seconds input splitting may spend on one query (negative: no limit besides the piece
    /// budget).
    #[arg(long, default_value_t = provenn::milp::DEFAULT_SPLIT_TIME_LIMIT.as_secs_f64(), allow_negative_numbers = true)]
    split_time_limit: f64,
    /// Do not tighten neuron bounds on each query box by LP before its MILP (box-simplify).
    #[arg(long)]
    no_lp_tighten: bool,
    /// Seconds a query's MILP gets before its bounds are tightened by MILPs and it is solved
    /// again (box-simplify; 0: tighten first; negative: never).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    escalate_after: f64,
    /// Time limit of each of those tightening MILPs, in seconds.
    #[arg(long, default_value_t = 0.3)]
    tighten_limit: f64,
    /// How many of the last layers (output included) that tightening does by LP instead of
    /// MILP (0: MILPs on every hidden layer, the output layer left as it was).
    #[arg(long, default_value_t = 2)]
    tighten_lp_layers: usize,
    /// Solve a query after that tightening as the reference does (one MILP), not as one MILP
    /// per rival class.
    #[arg(long)]
    tightened_one_milp: bool,
    /// Give every query its MILP's trial before escalating, even after an earlier query of the
    /// same explanation escalated (by default later queries escalate at once).
    #[arg(long)]
    trial_every_query: bool,
    /// Tighten every escalated query's bounds anew, even where its box lies inside an earlier
    /// escalated query's box (by default it takes that query's bounds).
    #[arg(long)]
    tighten_every_escalation: bool,
    /// Free features the cheap checks leave open tentatively and prove them with one MILP per
    /// group of at most this many (0 or 1: one MILP per query, as in the reference).
    #[arg(long, default_value_t = provenn::milp::DEFAULT_SPECULATION)]
    speculation: usize,
    /// Ask each open query with one MILP per rival class instead of the reference's single
    /// MILP with one indicator binary per rival (faster where few classes stay in contention).
    #[arg(long)]
    per_rival: bool,
}

#[derive(Args)]
struct CertifyArgs {
    /// Network file: provenn binary format, `.onnx`, or `.nnet`.
    #[arg(long)]
    net: PathBuf,
    /// Constraint file (provenn constraint language).
    #[arg(
        long,
        required_unless_present = "monotone",
        conflicts_with = "monotone"
    )]
    constraint: Option<PathBuf>,
    /// Instead of a constraint file: every output monotone in the listed features, as
    /// `FEATURE:inc` or `FEATURE:dec`, comma-separated (FEATURE a column index, or a feature
    /// name with `--dataset`), certified over the box by the derivative MILP (one network copy
    /// with its phases; much faster than the two-copy MILP a constraint file would use).
    #[arg(long)]
    monotone: Option<String>,
    /// Dataset giving feature and output names and the domain; without it, inputs are `x[j]`
    /// on `--box` (default [0,1]^n) and outputs `y[k]`.
    #[arg(long)]
    dataset: Option<String>,
    #[command(flatten)]
    data: DataArg,
    /// Input box as `l1:u1,l2:u2,...` when no dataset is given.
    #[arg(long = "box")]
    input_box: Option<String>,
    /// Time limit per solver call, in seconds.
    #[arg(long, default_value_t = 300.0)]
    timeout: f64,
    /// Neuron-bound tightening before encoding: none, lp, milp or milp-sign.
    #[arg(long, default_value = "none")]
    tightening: String,
}

#[derive(Args)]
struct BoundsArgs {
    /// Network file: provenn binary format, `.onnx`, or `.nnet`.
    #[arg(long)]
    net: PathBuf,
    /// Input box as `l1:u1,l2:u2,...` (a bare number fixes a feature); default [0,1]^n.
    #[arg(long = "box")]
    input_box: Option<String>,
    /// Propagation method.
    #[arg(long, value_enum, default_value_t = BoundsMethod::Crown)]
    method: BoundsMethod,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BoundsMethod {
    /// Interval bound propagation.
    Ibp,
    /// CROWN intersected with IBP.
    Crown,
}

#[derive(Args)]
struct DataArg {
    /// Data directory (default: $PROVENN_DATA, else ./data).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum DataCmd {
    /// List the datasets provenn knows.
    List,
    /// Schema, sizes and ranges of a dataset.
    Describe {
        /// Dataset name (see `provenn data list`).
        name: String,
        #[command(flatten)]
        data: DataArg,
        /// Seed for injection / synthetic generation.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum NnCmd {
    /// Train a plain MLP on a dataset and report held-out performance.
    Train(TrainArgs),
    /// Print a saved network's architecture.
    Describe {
        /// Network file written by `provenn nn train --out`.
        file: PathBuf,
    },
    /// Write a network (provenn format, `.onnx` or `.nnet`) as ONNX.
    Export {
        /// Network to read.
        file: PathBuf,
        /// ONNX file to write.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Dataset name.
    #[arg(long)]
    dataset: String,
    #[command(flatten)]
    data: DataArg,
    /// Hidden widths, comma-separated.
    #[arg(long, default_value = "16,16", value_delimiter = ',')]
    hidden: Vec<usize>,
    /// Hidden activation: relu, leaky_relu(0.01), sigmoid, tanh, identity.
    #[arg(long, default_value = "relu")]
    activation: String,
    /// Maximum epochs.
    #[arg(long, default_value_t = 200)]
    epochs: usize,
    /// Mini-batch size.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.01)]
    lr: f64,
    /// Seed (initialisation, shuffling, split).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of rows held out for testing (stratified for classes).
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Fraction held out for validation / early stopping.
    #[arg(long, default_value_t = 0.1)]
    validation_fraction: f64,
    /// Write the trained network here (binary format).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write a JSON export here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Data(DataCmd::List) => {
            for e in catalog::CATALOG {
                println!("{:<14} {}", e.name, e.description);
            }
            Ok(())
        }
        Command::Data(DataCmd::Describe { name, data, seed }) => describe(&name, &data, seed),
        Command::Nn(NnCmd::Train(a)) => train(a),
        Command::Bounds(a) => bounds(a),
        Command::CheckConstraint {
            file,
            dataset,
            data,
        } => check_constraint(&file, &dataset, &data),
        Command::Explain(a) => explain(a),
        Command::Certify(a) => certify(a),
        Command::Verify(a) => verify(a),
        Command::Train(a) => constrained_train(a),
        Command::Nn(NnCmd::Export { file, out }) => {
            let net = load_network(&file)?;
            let bytes = provenn::nn::onnx::export_onnx(&net)?;
            std::fs::write(&out, bytes).with_context(|| format!("writing {}", out.display()))?;
            println!("wrote {}", out.display());
            Ok(())
        }
        Command::Nn(NnCmd::Describe { file }) => {
            let net = load_network(&file)?;
            println!("{}", net.summary());
            println!("parameters: {}", net.n_parameters());
            Ok(())
        }
    }
}

fn describe(name: &str, data: &DataArg, seed: u64) -> Result<()> {
    let dir = DataDir::resolve(data.data.as_deref());
    let opts = LoadOptions {
        seed,
        ..Default::default()
    };
    let uc = catalog::load(name, &dir, &opts)?;
    let d = &uc.dataset;
    println!(
        "dataset {name}: {} rows × {} features",
        d.n_rows(),
        d.n_features()
    );
    if let Some(e) = catalog::entry(name) {
        println!("  {}", e.description);
    }
    for n in &d.notes {
        println!("  note: {n}");
    }
    println!(
        "  scaled to [0,1]: {}",
        if d.scaler.is_some() {
            "yes (raw ranges below)"
        } else {
            "no"
        }
    );
    if !uc.skip_features.is_empty() {
        let names: Vec<&str> = uc
            .skip_features
            .iter()
            .map(|&j| d.schema.features[j].name.as_str())
            .collect();
        println!("  skip features: {names:?}");
    }
    if !uc.injected_rows.is_empty() {
        println!("  injected violations: {} rows", uc.injected_rows.len());
    }
    println!("features:");
    let shown = d.schema.features.len().min(40);
    for (j, f) in d.schema.features.iter().take(shown).enumerate() {
        let kind = match &f.kind {
            FeatureKind::Continuous => "continuous".to_string(),
            FeatureKind::Binary => "binary".to_string(),
            FeatureKind::OneHot { group, category } => format!("one-hot {group}={category}"),
        };
        println!(
            "  {j:>4} {:<40} {kind:<28} [{}, {}]",
            f.name, f.raw_min, f.raw_max
        );
    }
    if d.schema.features.len() > shown {
        println!("  ... {} more", d.schema.features.len() - shown);
    }
    match &d.targets {
        Targets::Classes { labels, n_classes } => {
            let mut counts = vec![0usize; *n_classes];
            for &l in labels {
                counts[l] += 1;
            }
            println!("targets: {n_classes} classes");
            for (k, c) in counts.iter().enumerate() {
                println!("  {:<20} {c}", d.schema.target_names[k]);
            }
        }
        Targets::MultiLabel(y) => println!(
            "targets: {} binary labels {:?}",
            y.ncols(),
            d.schema.target_names
        ),
        Targets::Regression(y) => {
            println!("targets: {} real values", y.ncols());
            for (k, n) in d.schema.target_names.iter().enumerate() {
                println!("  {:<28} [{}, {}]", n, y.column(k).min(), y.column(k).max());
            }
        }
    }
    Ok(())
}

fn train(a: TrainArgs) -> Result<()> {
    let dir = DataDir::resolve(a.data.data.as_deref());
    let uc = catalog::load(
        &a.dataset,
        &dir,
        &LoadOptions {
            seed: a.seed,
            ..Default::default()
        },
    )?;
    let d = uc.dataset;
    let Some(activation) = Activation::parse(&a.activation) else {
        bail!("unknown activation `{}`", a.activation);
    };
    let s = split::train_val_test(
        d.n_rows(),
        a.validation_fraction,
        a.test_fraction,
        d.targets.labels(),
        a.seed,
    )?;
    let (tr, va, te) = (
        d.select(&s.train),
        d.select(&s.validation),
        d.select(&s.test),
    );
    let params = FfnParams {
        hidden: a.hidden,
        activation,
        skip_features: uc.skip_features.clone(),
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.lr,
        seed: a.seed,
        ..Default::default()
    };
    let bar = ProgressBar::new(a.epochs as u64);
    bar.set_style(ProgressStyle::with_template(
        "{bar:40} epoch {pos}/{len} {msg} [{elapsed}]",
    )?);
    let fitted = params
        .build()?
        .fit(&tr, (!va.x.is_empty()).then_some(&va), &mut |r| {
            bar.set_position(r.epoch as u64 + 1);
            bar.set_message(format!("loss {:.4}", r.train_loss));
        })?;
    bar.finish_and_clear();
    println!("network: {}", fitted.net.summary());
    println!(
        "epochs run: {} (final training loss {:.5})",
        fitted.epochs_run, fitted.train_loss
    );
    println!("train: {}", score(&fitted.net, &tr)?);
    if !te.x.is_empty() {
        println!("test ({} rows): {}", te.n_rows(), score(&fitted.net, &te)?);
    }
    if let Some(p) = &a.out {
        io::save(&fitted.net, p)?;
        println!("saved {}", p.display());
    }
    if let Some(p) = &a.json {
        std::fs::write(p, io::to_json(&fitted.net))
            .with_context(|| format!("writing {}", p.display()))?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

fn bounds(a: BoundsArgs) -> Result<()> {
    use provenn::bounds::{BoundPropagator, CrownBounds, InputBox, IntervalBounds};
    let net = load_network(&a.net)?;
    let domain = match &a.input_box {
        Some(s) => InputBox::parse(s)?,
        None => InputBox::unit(net.n_inputs()),
    };
    let b = match a.method {
        BoundsMethod::Ibp => IntervalBounds.bounds(&net, &domain, None)?,
        BoundsMethod::Crown => CrownBounds.bounds(&net, &domain, None)?,
    };
    println!(
        "network {} over a box of {} features",
        net.summary(),
        domain.dim()
    );
    for (l, (lb, st)) in b.layers().iter().zip(b.stability()).enumerate() {
        let act = net.layers()[l].activation().name();
        println!(
            "layer {l} ({} {act}): mean pre-activation width {:.6}; stably active {}, stably inactive {}, unstable {}",
            lb.pre.len(),
            lb.pre.mean_width(),
            st.active,
            st.inactive,
            st.unstable
        );
    }
    let o = b.output();
    for j in 0..o.len() {
        println!("output {j}: [{:.17e}, {:.17e}]", o.lower[j], o.upper[j]);
    }
    Ok(())
}

fn parse_update(encoding: &str) -> Result<provenn::maxsmt::UpdateMethod> {
    use provenn::maxsmt::{EliminationOptions, UpdateMethod};
    Ok(match encoding {
        "milp" => UpdateMethod::Milp(EliminationOptions::default()),
        "eliminated" => UpdateMethod::Eliminated(EliminationOptions::default()),
        "quantified" => UpdateMethod::Quantified,
        other => bail!("unknown encoding `{other}` (milp, eliminated, quantified)"),
    })
}

/// Prints a trainer's certificate; whether it is one.
fn report_guarantee(g: &provenn::train::deepsade::Guarantee) -> bool {
    use provenn::train::deepsade::Guarantee;
    match g {
        Guarantee::Certified { margin } => {
            println!("guarantee: certified over the whole domain (margin {margin:.3e})");
            true
        }
        Guarantee::NotCertified { reason } => {
            println!("guarantee: NONE — not certified ({reason})");
            false
        }
    }
}

fn constrained_train(a: ConstrainedTrainArgs) -> Result<()> {
    use provenn::dsl::ir::{Constraint, Formula};
    use provenn::dsl::{check_rows, compile, Bindings};
    use provenn::milp::{Certificate, CertifyOptions, ConstraintCertifier};
    use provenn::train::deepsade::{constraint_inputs, DeepSadeParams, LatentBounds};

    let dir = DataDir::resolve(a.data.data.as_deref());
    let opts = LoadOptions {
        seed: a.seed,
        ..Default::default()
    };
    let d = catalog::load(&a.dataset, &dir, &opts)?.dataset;
    let src = std::fs::read_to_string(&a.constraint)
        .with_context(|| format!("reading {}", a.constraint.display()))?;
    let cs = compile(&src, &Bindings::from_dataset(&d))
        .map_err(|e| anyhow::anyhow!("{}:{e}", a.constraint.display()))?;
    let Some(first) = cs.first() else {
        bail!("{} holds no constraint", a.constraint.display());
    };
    if cs.iter().any(|c| c.two_copy || c.domain != first.domain) {
        bail!("DeepSaDe takes single-copy constraints over one domain (relational properties are not supported here)");
    }
    let c = Constraint {
        two_copy: false,
        domain: first.domain.clone(),
        formula: Formula::and(cs.iter().map(|c| c.formula.clone()).collect()),
    };
    let s = split::train_val_test(
        d.n_rows(),
        a.validation_fraction,
        a.test_fraction,
        d.targets.labels(),
        a.seed,
    )?;
    let (tr, va, te) = (
        d.select(&s.train),
        d.select(&s.validation),
        d.select(&s.test),
    );
    let val = (!va.x.is_empty()).then_some(&va);
    let skip = constraint_inputs(&c);
    let net = match a.method.as_str() {
        "deepsade" => {
            let update = parse_update(&a.encoding)?;
            let params = DeepSadeParams {
                hidden: a.hidden,
                epochs: a.epochs,
                batch_size: a.batch_size,
                learning_rate: a.lr,
                update,
                slack: a.slack,
                initial_fit_rows: a.initial_fit_rows,
                maxsmt: !a.no_maxsmt,
                latent_bounds: match a.latent_bounds.as_str() {
                    "interval" => LatentBounds::Interval,
                    "crown" => LatentBounds::Crown,
                    other => bail!("unknown --latent-bounds {other}: use interval or crown"),
                },
                step_node_limit: a.step_node_limit,
                seed: a.seed,
                ..Default::default()
            };
            let n_batches = a.epochs * tr.n_rows().div_ceil(a.batch_size.max(1));
            let bar = ProgressBar::new(n_batches as u64);
            bar.set_style(ProgressStyle::with_template(
                "{bar:40} batch {pos}/{len} {msg} [{elapsed}]",
            )?);
            let fitted = params.build()?.fit(&tr, val, &c, &skip, &mut |p| {
                bar.inc(1);
                bar.set_message(format!(
                    "epoch {} accepted {} restarts {} best loss {:.4}",
                    p.epoch + 1,
                    p.accepted,
                    p.restarts,
                    p.best_loss
                ));
            })?;
            bar.finish_and_clear();
            let st = &fitted.stats;
            println!(
                "DeepSaDe: {} batches, {} line-search and {} MaxSMT steps ({} not proven optimal), {} restarts; {:.2} s training ({:.2} s MaxSMT), {:.2} s certification",
                st.batches,
                st.line_search_steps,
                st.maxsmt_steps,
                st.maxsmt_unproven,
                st.failed_steps,
                st.train_time.as_secs_f64(),
                st.maxsmt_time.as_secs_f64(),
                st.certify_time.as_secs_f64()
            );
            let certified = report_guarantee(&fitted.guarantee);
            (fitted.net, Some(certified))
        }
        "sade" => {
            let fitted = provenn::train::sade::SadeParams {
                epochs: a.epochs,
                batch_size: a.batch_size,
                update: parse_update(&a.encoding)?,
                ..Default::default()
            }
            .build()?
            .fit(&tr, &c)?;
            let st = &fitted.stats;
            println!(
                "SaDe: {} of {} steps accepted; {:.2} s training, {:.2} s certification",
                st.accepted,
                st.steps,
                st.train_time.as_secs_f64(),
                st.certify_time.as_secs_f64()
            );
            let certified = report_guarantee(&fitted.guarantee);
            (fitted.net, Some(certified))
        }
        "ffn" => {
            let fitted = FfnParams {
                hidden: a.hidden,
                epochs: a.epochs,
                batch_size: a.batch_size,
                learning_rate: a.lr,
                seed: a.seed,
                ..Default::default()
            }
            .build()?
            .fit(&tr, val, &mut |_| {})?;
            (fitted.net, None)
        }
        "sl" | "sbr" | "reg" => {
            use provenn::train::regularised::{select_alpha, Penalty, RegularisedParams};
            let penalty = match a.method.as_str() {
                "sl" => Penalty::SemanticLoss,
                "sbr" => Penalty::Sbr,
                _ => Penalty::Hinge,
            };
            let params = RegularisedParams {
                hidden: a.hidden,
                skip_features: skip.clone(),
                epochs: a.epochs,
                batch_size: a.batch_size,
                learning_rate: a.lr,
                penalty,
                seed: a.seed,
                ..Default::default()
            };
            let alpha = match a.alpha {
                Some(al) => al,
                None => {
                    let grid = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
                    let choice = select_alpha(&params, &grid, &tr, &c, 3, a.seed)?;
                    for t in &choice.trials {
                        println!(
                            "α {:.2}: {:.1} validation violations, score {:.4}",
                            t.alpha, t.violations, t.score
                        );
                    }
                    choice.alpha
                }
            };
            println!("{} with α = {alpha}", penalty.name());
            let fitted = RegularisedParams { alpha, ..params }
                .build()?
                .fit(&tr, val, &c)?;
            println!(
                "{} epochs, best objective {:.4} (soft constraint: nothing is guaranteed until certified below)",
                fitted.epochs_run, fitted.best_objective
            );
            (fitted.net, None)
        }
        other => bail!("unknown method `{other}` (deepsade, sade, ffn, sl, sbr, reg)"),
    };
    let (net, certified) = net;
    println!("test: {}", score(&net, &te)?);
    // The trained model's own outputs on the test rows, and its certificate.
    let mut te_pred = te.clone();
    te_pred.targets = Targets::Regression(net.forward_batch(&te.x)?);
    if let Some(r) = check_rows(&c, &te_pred) {
        println!(
            "test rows whose predictions violate the constraint: {} of {}",
            r.violating, r.rows
        );
    }
    if let Some(out) = &a.out {
        io::save(&net, out)?;
        println!("wrote {}", out.display());
    }
    if let Some(ok) = certified {
        // DeepSaDe's model was certified (or not) by the trainer already.
        if !ok {
            std::process::exit(2);
        }
        return Ok(());
    }
    // The test rows are tried first: a soft-constraint model the data refutes is "violated"
    // at once, even where the MILP would run out of time.
    let rows: Vec<Vec<f64>> = (0..te.n_rows())
        .map(|i| te.x.row(i).iter().copied().collect())
        .collect();
    let report = ConstraintCertifier::new(CertifyOptions::default())?.certify_with_candidates(
        &net,
        &c,
        if c.two_copy { &[] } else { &rows },
    )?;
    match report.certificate {
        Certificate::Certified { margin } => {
            println!("certificate: certified (margin {margin:.3e})");
            Ok(())
        }
        Certificate::Violated(w) => {
            println!(
                "certificate: violated by {:.6} at x = {:?}",
                w.violation, w.x
            );
            std::process::exit(2)
        }
        Certificate::Unknown { reason } => {
            println!("certificate: unknown ({reason})");
            std::process::exit(2)
        }
    }
}

fn check_constraint(file: &std::path::Path, dataset: &str, data: &DataArg) -> Result<()> {
    use provenn::dsl::{check_rows, compile, Bindings};
    let src =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let dir = DataDir::resolve(data.data.as_deref());
    let d = catalog::load(dataset, &dir, &LoadOptions::default())?.dataset;
    let constraints = compile(&src, &Bindings::from_dataset(&d))
        .map_err(|e| anyhow::anyhow!("{}:{e}", file.display()))?;
    if !matches!(d.targets, Targets::Regression(_)) {
        println!("outputs are evaluated as the labels' logits: +1 for a true label, -1 otherwise");
    }
    for (n, c) in constraints.iter().enumerate() {
        println!(
            "constraint {n} ({} atoms{}):",
            c.formula.n_atoms(),
            if c.two_copy { ", relational" } else { "" }
        );
        println!("  {c}");
        match check_rows(c, &d) {
            None => println!("  relational constraints are not evaluated row by row"),
            Some(r) => println!(
                "  violated by {} of {} rows ({:.2}%), largest violation {:.6}",
                r.violating,
                r.rows,
                100.0 * r.violating as f64 / r.rows.max(1) as f64,
                r.worst
            ),
        }
    }
    Ok(())
}

fn parse_tightening(s: &str) -> Result<provenn::milp::Tightening> {
    use provenn::milp::Tightening;
    Ok(match s {
        "none" => Tightening::None,
        "lp" => Tightening::Lp,
        "milp" => Tightening::Milp,
        "milp-sign" => Tightening::MilpSign,
        other => bail!("unknown tightening `{other}` (expected none, lp, milp or milp-sign)"),
    })
}

fn explain(a: ExplainArgs) -> Result<()> {
    use provenn::bounds::InputBox;
    use provenn::milp::{
        check_explanation, default_backend, AbductiveExplainer, ExplainMode, ExplainOptions,
        ExplainStats, QueryTightening, SolveOptions,
    };
    let net = load_network(&a.net)?;
    let dir = DataDir::resolve(a.data.data.as_deref());
    let d = catalog::load(&a.dataset, &dir, &LoadOptions::default())?.dataset;
    if d.n_features() != net.n_inputs() {
        bail!(
            "dataset {} has {} features, the network {} inputs",
            a.dataset,
            d.n_features(),
            net.n_inputs()
        );
    }
    let mode: ExplainMode = a.mode.parse()?;
    let secs = |v: f64, flag: &str| {
        std::time::Duration::try_from_secs_f64(v).map_err(|_| {
            anyhow::anyhow!("--{flag} must be a non-negative number of seconds, got {v}")
        })
    };
    let time_limit = Some(secs(a.timeout, "timeout")?);
    let milp_tighten = if a.escalate_after < 0.0 {
        None
    } else {
        Some(QueryTightening {
            after: secs(a.escalate_after, "escalate-after")?,
            per_solve: secs(a.tighten_limit, "tighten-limit")?,
            lp_layers: a.tighten_lp_layers,
            trial_once: !a.trial_every_query,
            per_rival: !a.tightened_one_milp,
            reuse_inside: !a.tighten_every_escalation,
        })
    };
    let lo: Vec<f64> = d.x.column_iter().map(|c| c.min()).collect();
    let hi: Vec<f64> = d.x.column_iter().map(|c| c.max()).collect();
    let domain = InputBox::new(lo, hi)?;
    let rows: Vec<usize> = if a.rows.is_empty() {
        (0..a.first.min(d.n_rows())).collect()
    } else {
        a.rows.clone()
    };
    if let Some(&r) = rows.iter().find(|&&r| r >= d.n_rows()) {
        bail!("row {r} out of range ({} rows)", d.n_rows());
    }
    let t0 = std::time::Instant::now();
    let explainer = AbductiveExplainer::new(
        &net,
        domain.clone(),
        ExplainOptions {
            mode,
            tightening: parse_tightening(&a.tightening)?,
            time_limit,
            falsify: !a.no_falsify,
            crown: !a.no_crown,
            split_budget: a.split_budget,
            split_time_limit: if a.split_time_limit < 0.0 {
                None
            } else {
                Some(secs(a.split_time_limit, "split-time-limit")?)
            },
            lp_tighten: !a.no_lp_tighten,
            milp_tighten,
            speculation: a.speculation,
            per_rival: a.per_rival,
        },
    )?;
    let g = explainer.global_bounds();
    println!(
        "global bounds: {} solver calls, {} neurons tightened, {:.1}% of ReLUs stable, {:.2?}",
        g.solves,
        g.improved,
        100.0 * explainer.global_stats().stable_fraction(),
        g.time
    );
    let xs: Vec<Vec<f64>> = rows
        .iter()
        .map(|&r| d.x.row(r).iter().copied().collect())
        .collect();
    let results = explainer.explain_many(&xs);
    let explain_time = t0.elapsed();
    let names = |k: usize| {
        d.schema
            .target_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    };
    let mut all = Vec::new();
    let mut refuted = Vec::new();
    for ((r, x), e) in rows.iter().zip(&xs).zip(results) {
        let e = e?;
        let feats: Vec<&str> = e
            .features
            .iter()
            .map(|&j| d.schema.features[j].name.as_str())
            .collect();
        println!(
            "row {r}: class {} explained by {} of {} features {:?} ({} solver calls, {} freed by Box, {} constant in the domain, {} decided by input splitting, {:.2?})",
            names(e.class),
            e.features.len(),
            x.len(),
            feats,
            e.stats.solver_calls,
            e.stats.box_frees,
            e.stats.constant_frees,
            e.stats.split_decided,
            e.stats.time
        );
        if e.stats.unvalidated + e.stats.timeouts > 0 {
            println!(
                "  note: {} undecided queries kept their features (explanation entails the class but may not be minimal)",
                e.stats.unvalidated + e.stats.timeouts
            );
        }
        if !a.no_check {
            let c = check_explanation(
                &net,
                &domain,
                x,
                &e,
                &*default_backend(),
                &SolveOptions {
                    time_limit,
                    ..Default::default()
                },
            )?;
            let show = |d: Option<bool>| match d {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "undecided",
            };
            let shown = c.necessary.iter().filter(|n| **n == Some(true)).count();
            println!(
                "  check: entailed {}; {shown} of {} kept features shown necessary ({} by the explainer's witness, re-checked in f64)",
                show(c.entailed),
                c.necessary.len(),
                c.by_witness
            );
            if c.is_refuted() {
                refuted.push(*r);
            }
        }
        all.push(e.stats);
    }
    let s = ExplainStats::total(&all);
    println!(
        "{} explanations in {:.2?} ({} mode): {} solver calls, solver time {:.2?}, {} features freed by Box, {} constant in the domain, {} queries decided by input splitting, {} LPs tightening query bounds, {} queries escalated to {} tightening solves ({} more took an earlier escalation's bounds)",
        all.len(),
        explain_time,
        mode.name(),
        s.solver_calls,
        s.solver_time,
        s.box_frees,
        s.constant_frees,
        s.split_decided,
        s.lp_solves,
        s.escalations,
        s.tightening_solves,
        s.reused
    );
    if !refuted.is_empty() {
        bail!("the independent check refuted the explanations of rows {refuted:?}");
    }
    Ok(())
}

/// The certifier limits `provenn certify` takes from its arguments (both of its paths).
fn certify_options(a: &CertifyArgs) -> Result<provenn::milp::CertifyOptions> {
    Ok(provenn::milp::CertifyOptions {
        time_limit: Some(std::time::Duration::from_secs_f64(a.timeout)),
        tightening: parse_tightening(&a.tightening)?,
        ..provenn::milp::CertifyOptions::default()
    })
}

fn certify(a: CertifyArgs) -> Result<()> {
    use provenn::bounds::InputBox;
    use provenn::dsl::{compile, Bindings};
    use provenn::milp::ConstraintCertifier;
    let net = load_network(&a.net)?;
    if let Some(spec) = &a.monotone {
        return certify_monotone(&a, &net, spec);
    }
    let path = a
        .constraint
        .as_ref()
        .context("--constraint or --monotone is required")?;
    let src =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // With a dataset, its rows are tried as counterexamples before the solver.
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let bindings = match &a.dataset {
        Some(name) => {
            let dir = DataDir::resolve(a.data.data.as_deref());
            let d = catalog::load(name, &dir, &LoadOptions::default())?.dataset;
            rows = (0..d.n_rows())
                .map(|i| d.x.row(i).iter().copied().collect())
                .collect();
            Bindings::from_dataset(&d)
        }
        None => {
            let b = match &a.input_box {
                Some(s) => InputBox::parse(s)?,
                None => InputBox::unit(net.n_inputs()),
            };
            let dom: Vec<(f64, f64)> = b.intervals();
            Bindings::anonymous(&dom, net.n_outputs())
        }
    };
    let constraints =
        compile(&src, &bindings).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    let certifier = ConstraintCertifier::new(certify_options(&a)?)?;
    let mut any_violated = false;
    for (n, c) in constraints.iter().enumerate() {
        let r = if c.two_copy {
            certifier.certify(&net, c)?
        } else {
            certifier.certify_with_candidates(&net, c, &rows)?
        };
        print!("constraint {n}: ");
        any_violated |= print_report(&r, certifier.options().tolerance, c.two_copy);
    }
    if any_violated {
        std::process::exit(2);
    }
    Ok(())
}

/// `provenn certify --monotone`: one derivative MILP per feature and output over the box (the
/// dataset's scaled domain, `--box`, or [0,1]^n).
fn certify_monotone(a: &CertifyArgs, net: &provenn::Mlp, spec: &str) -> Result<()> {
    use provenn::bounds::InputBox;
    use provenn::milp::MonotonicityCertifier;
    let names: Option<Vec<String>> = match &a.dataset {
        Some(name) => {
            let dir = DataDir::resolve(a.data.data.as_deref());
            let d = catalog::load(name, &dir, &LoadOptions::default())?.dataset;
            Some(d.schema.features.iter().map(|f| f.name.clone()).collect())
        }
        None => None,
    };
    let b = match (&a.input_box, &names) {
        (Some(s), _) => InputBox::parse(s)?,
        _ => InputBox::unit(net.n_inputs()),
    };
    anyhow::ensure!(
        b.dim() == net.n_inputs(),
        "the box has {} features, the network {} inputs",
        b.dim(),
        net.n_inputs()
    );
    let mut features = Vec::new();
    for part in spec.split(',') {
        let (f, dir) = part
            .trim()
            .rsplit_once(':')
            .with_context(|| format!("--monotone: `{part}` is not FEATURE:inc or FEATURE:dec"))?;
        let increasing = match dir {
            "inc" => true,
            "dec" => false,
            other => anyhow::bail!("--monotone: direction `{other}` is not inc or dec"),
        };
        let index = match (&names, f.parse::<usize>()) {
            (_, Ok(j)) => j,
            (Some(names), Err(_)) => names
                .iter()
                .position(|n| n == f)
                .with_context(|| format!("--monotone: no feature `{f}` (features: {names:?})"))?,
            (None, Err(_)) => anyhow::bail!("--monotone: `{f}` is not a column index"),
        };
        anyhow::ensure!(
            index < net.n_inputs(),
            "--monotone: feature {index} is out of range ({} inputs)",
            net.n_inputs()
        );
        features.push((f.to_string(), index, increasing));
    }
    let certifier = MonotonicityCertifier::new(certify_options(a)?)?;
    let mut any_violated = false;
    for (name, j, increasing) in features {
        let r = certifier.certify_on(net, j, increasing, &b)?;
        let dir = if increasing {
            "increasing"
        } else {
            "decreasing"
        };
        print!("{dir} in {name}: ");
        any_violated |= print_report(&r, certifier.options().tolerance, true);
    }
    if any_violated {
        std::process::exit(2);
    }
    Ok(())
}

/// Prints a certification report (status, why, the work it took); `true` when violated.
fn print_report(r: &provenn::milp::CertifyReport, tolerance: f64, two_copy: bool) -> bool {
    use provenn::milp::Certificate;
    print!("{}", r.certificate.status());
    match &r.certificate {
        Certificate::Certified { margin } if margin.is_infinite() => {
            println!(" (no admissible input reaches the conclusion)")
        }
        Certificate::Certified { margin } => println!(
            " (holds with margin {margin:.3e}; violations below {tolerance:.0e} are within solver \
             tolerance)"
        ),
        Certificate::Violated(w) => {
            println!(" (violation {:.6e}, re-checked in f64)", w.violation);
            println!("  x  = {:?}", w.x);
            println!("  y  = {:?}", w.y);
            if two_copy {
                println!("  x2 = {:?}", w.x2);
                println!("  y2 = {:?}", w.y2);
            }
        }
        Certificate::Unknown { reason } => println!(" ({reason})"),
    }
    println!(
        "  {} solver calls, {} neuron binaries, solver {:.2?}, total {:.2?}",
        r.solves, r.neuron_binaries, r.solver_time, r.time
    );
    matches!(r.certificate, Certificate::Violated(_))
}

fn verify(a: VerifyArgs) -> Result<()> {
    use provenn::dsl::vnnlib::read_vnnlib;
    use provenn::milp::{PropertyVerifier, VerifyOptions};
    use std::time::Duration;
    let run = |net: &std::path::Path, prop: &std::path::Path, timeout: f64| -> Result<_> {
        let model = load_network(net)?;
        let text =
            std::fs::read_to_string(prop).with_context(|| format!("reading {}", prop.display()))?;
        let p = read_vnnlib(&text).map_err(|e| anyhow::anyhow!("{}:{e}", prop.display()))?;
        let verifier = PropertyVerifier::new(VerifyOptions {
            time_limit: Duration::from_secs_f64(timeout),
            milp_depth: a.milp_depth,
            lookahead: a.lookahead_split,
            ..VerifyOptions::default()
        })?;
        Ok(verifier.verify(&model, &p)?)
    };
    if let Some(csv) = &a.batch {
        let base = csv.parent().unwrap_or(std::path::Path::new("."));
        let text =
            std::fs::read_to_string(csv).with_context(|| format!("reading {}", csv.display()))?;
        let rows: Vec<Vec<String>> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split(',').map(|f| f.trim().to_string()).collect())
            .collect();
        if let Some(bad) = rows.iter().find(|r| r.len() != 3) {
            anyhow::bail!(
                "{}: expected `onnx,vnnlib,timeout`, got {bad:?}",
                csv.display()
            );
        }
        let bar = ProgressBar::new(rows.len() as u64);
        bar.set_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {msg} [{elapsed}]",
        )?);
        let mut out = String::from("onnx,vnnlib,result,time_s\n");
        let mut counts = [0usize; 3];
        for r in &rows {
            let timeout: f64 = r[2]
                .parse()
                .with_context(|| format!("timeout `{}`", r[2]))?;
            let rep = run(&base.join(&r[0]), &base.join(&r[1]), timeout)?;
            let w = rep.verdict.word();
            counts[match w {
                "sat" => 0,
                "unsat" => 1,
                _ => 2,
            }] += 1;
            out.push_str(&format!(
                "{},{},{w},{:.3}\n",
                r[0],
                r[1],
                rep.time.as_secs_f64()
            ));
            bar.set_message(format!(
                "sat {} unsat {} unknown {}",
                counts[0], counts[1], counts[2]
            ));
            bar.inc(1);
        }
        bar.finish();
        std::fs::write(&a.results, out)
            .with_context(|| format!("writing {}", a.results.display()))?;
        println!(
            "sat {} unsat {} unknown {} — results in {}",
            counts[0],
            counts[1],
            counts[2],
            a.results.display()
        );
        return Ok(());
    }
    let (net, prop) = (
        a.onnx.as_deref().expect("required without --batch"),
        a.vnnlib.as_deref().expect("required without --batch"),
    );
    let rep = run(net, prop, a.timeout)?;
    let text = rep.verdict.vnncomp();
    print!("{text}");
    if let Some(path) = &a.out {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let provenn::milp::Verdict::Unknown { reason } = &rep.verdict {
        eprintln!("unknown: {reason}");
    }
    eprintln!(
        "{} nodes, {} MILP leaves, {:.2?}",
        rep.nodes, rep.milp_leaves, rep.time
    );
    Ok(())
}

/// Loads a network by file extension: `.onnx`, `.nnet`, else the provenn binary format.
fn load_network(path: &std::path::Path) -> Result<provenn::Mlp> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let ctx = || format!("loading {}", path.display());
    Ok(match ext {
        "onnx" => provenn::nn::onnx::import_onnx(&std::fs::read(path).with_context(ctx)?)
            .with_context(ctx)?,
        "nnet" => {
            provenn::nn::nnet::read_nnet(&std::fs::read_to_string(path).with_context(ctx)?)
                .with_context(ctx)?
                .net
        }
        _ => io::load(path).with_context(ctx)?,
    })
}
