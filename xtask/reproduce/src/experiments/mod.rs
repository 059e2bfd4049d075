//! The experiment registry. Each issue that reproduces a paper adds its experiments here.
use std::path::PathBuf;

use anyhow::Result;
use provenn::DataDir;

mod acasxu_vnncomp;
mod bounds_tightness;
mod cbf;
mod deepsade;
mod deepsade_uc1;
mod deepsade_uc4;
mod deepsade_uc5;
mod hardnet_acas;
mod hardnet_opt;
mod hardnet_pwc;
mod nn_sanity;
mod sade_tables;
mod smile;
mod xai_table1;

/// How much of each protocol to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tiny sizes: exercises every code path (< 2 min for the registry).
    Smoke,
    /// Reduced protocols (< 15 min for the registry on 2 cores).
    Quick,
    /// The papers' full protocols.
    Full,
}

/// What an experiment gets.
pub struct Ctx {
    /// Protocol size.
    pub mode: Mode,
    /// Where the data is.
    pub data: DataDir,
    /// Where plots go (REPORT.md links them relatively).
    pub out: PathBuf,
    /// `--seeds`: cap on repetitions over seeds or cross-validation folds.
    pub max_seeds: Option<usize>,
    /// `--instances`: cap on instances explained per network.
    pub max_instances: Option<usize>,
    /// `--network`: only these networks (`dataset:nL-mN`); empty means the protocol's own.
    pub networks: Vec<String>,
    /// `--provenn-only`: xai-table1 runs provenn's default explainer alone.
    pub provenn_only: bool,
}

impl Ctx {
    /// The number of seeds to run when the protocol asks for `protocol`.
    pub fn seeds(&self, protocol: usize) -> usize {
        self.max_seeds
            .map_or(protocol, |m| m.clamp(1, protocol.max(1)))
    }
}

/// One reproducible experiment.
pub trait Experiment {
    /// Name used by `--only`.
    fn name(&self) -> &'static str;
    /// One-line title.
    fn title(&self) -> &'static str;
    /// Data files it reads; missing ones make the runner skip it with the reason.
    fn required_files(&self) -> &'static [&'static str];
    /// Runs it and returns the report section (markdown, paper's numbers beside ours).
    fn run(&self, ctx: &Ctx) -> Result<String>;
}

/// Mean and (population) standard deviation; `(0, 0)` for no values.
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len().max(1) as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

/// Every experiment, in report order.
pub fn registry() -> Vec<Box<dyn Experiment>> {
    vec![
        Box::new(nn_sanity::NnSanity),
        Box::new(bounds_tightness::BoundsTightness),
        Box::new(xai_table1::XaiTable1),
        Box::new(hardnet_pwc::HardnetPwc {
            variant: hardnet_pwc::Variant::Pwc,
        }),
        Box::new(hardnet_pwc::HardnetPwc {
            variant: hardnet_pwc::Variant::PwcFull,
        }),
        Box::new(hardnet_pwc::HardnetPwc {
            variant: hardnet_pwc::Variant::PwcBox,
        }),
        Box::new(hardnet_opt::HardnetOpt),
        Box::new(cbf::HardnetCbf),
        Box::new(acasxu_vnncomp::AcasxuVnncomp),
        Box::new(hardnet_acas::HardnetAcas),
        Box::new(sade_tables::SadeTables),
        Box::new(deepsade_uc1::DeepsadeUc1),
        Box::new(deepsade_uc4::DeepsadeUc4),
        Box::new(deepsade_uc5::DeepsadeUc5),
        Box::new(deepsade::Deepsade {
            uc: deepsade::UseCaseId::Uc2,
        }),
        Box::new(deepsade::Deepsade {
            uc: deepsade::UseCaseId::Uc3,
        }),
        Box::new(smile::Smile {
            kind: smile::Kind::Monotonic,
        }),
        Box::new(smile::Smile {
            kind: smile::Kind::Robust,
        }),
        Box::new(smile::Smile {
            kind: smile::Kind::Fair,
        }),
    ]
}
