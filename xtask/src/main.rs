//! `cargo xtask build | run-qemu | test | repro`: see the README.

mod cmd;

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use cmd::step;
use xtask::paths;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test the Ampoule guest")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build ampoule.bin and print its path, size and SHA-256.
    Build(cmd::build::BuildArgs),
    /// Build the image (unless --image is given), boot it under QEMU and stream its records.
    RunQemu(cmd::run::RunArgs),
    /// Print the SEV-SNP launch digest and the TDX MRTD of the image (built unless --image is given).
    Measure(cmd::measure::MeasureArgs),
    /// Build the image from two different checkout paths and fail unless the bytes are identical.
    Repro {
        /// Show cargo's output.
        #[arg(long, short)]
        verbose: bool,
    },
    /// Measure boot time against OVMF, guest instructions to boot, and image size (not a test).
    Bench {
        /// Print one JSON object: {"figures": [...]}.
        #[arg(long)]
        json: bool,
        /// Run one area only (boot, image, broker, dance, inference, batching, minilm, snp_sim, tdx_sim).
        #[arg(long)]
        only: Option<String>,
        /// Runs per side for timed figures (1..=1000).
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..=1000))]
        runs: u64,
    },
    /// Seal a model's weights into target/ampoule/models/NAME.sealed under a fresh key made in the development
    /// broker's registry (target/ampoule/broker/; wrapped by its SoftHSM2 token, never on disk in plaintext) and
    /// bound to the release image's measurement and the blob's digest. Sealing again rotates that model's key and
    /// retires the old version. The image does not change.
    Seal {
        /// The model to seal (its manifest: inference/models/NAME.toml).
        #[arg(long, default_value = xtask::manifest::DEFAULT_MODEL)]
        model: String,
        /// The plaintext weights (a burnpack) [default: the model's own].
        #[arg(long)]
        weights: Option<std::path::PathBuf>,
        /// Where to write the sealed blob.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// The registry to make the key in: sqlite (target/ampoule/broker/registry.db) or postgres (a private
        /// cluster in target/ampoule/broker/postgres/, started for the sealing).
        #[arg(long, value_enum, default_value = "sqlite")]
        store: xtask::broker_state::StoreKind,
    },
    /// Compute paraphrase-MiniLM-L3-v2's reference outputs with onnxruntime (Python, in target/venv) on the ONNX
    /// file as shipped, and write inference/model/minilm-reference.json (token ids and embeddings).
    MinilmReference,
    /// Train the MLP (Python, in target/venv) and write inference/model/: ONNX, reference vectors, limits; and the
    /// bring-your-own-model example in examples/own-model/.
    Train,
    /// Generate every model's graph and weights from its ONNX file (burn-onnx, inference/codegen) and
    /// inference/src/served.rs from the manifests in inference/models/; with --check, write nothing and fail if a
    /// committed file differs.
    Codegen {
        /// Compare with the committed files instead of writing them.
        #[arg(long)]
        check: bool,
        /// Generate only this model's graph and weights (the served table always covers every manifest).
        #[arg(long, value_name = "NAME")]
        model: Option<String>,
    },
    /// Run the cargo-fuzz targets (nightly; installs cargo-fuzz when missing).
    Fuzz {
        /// One target (metadata); all when omitted.
        #[arg(long)]
        target: Option<String>,
        /// Seconds per target (1..=86400).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        seconds: u64,
    },
    /// Run every test: host unit tests and the QEMU integration tests.
    Test(cmd::test::TestArgs),
    /// Storm the broker and a serving guest with hostile clients (loopback only) beside valid work; fail if valid
    /// work fails after it, if either exits, or if memory grows without bound.
    Storm {
        /// How long the storm lasts (1..=86400 s).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = paths::repo_root();
    match cli.command {
        Cmd::Build(args) => cmd::build::run(&root, args),
        Cmd::Seal { model, weights, out, store } => {
            let model = xtask::manifest::named(&root, &model)?;
            let weights = match weights {
                Some(weights) => weights,
                None => xtask::codegen::ensure_weights(&root, &model)?,
            };
            let out = out.unwrap_or_else(|| xtask::sealing::default_sealed_model(&root, &model.name));
            let state = xtask::broker_state::BrokerState::for_checkout(&root, store);
            let sealing = step("seal", || xtask::sealing::seal_and_register(&root, &model, &weights, &out, &state))?;
            println!("sealed      {}", sealing.sealed_model.display());
            println!("digest      {}", hex::encode(sealing.digest));
            println!("key_id      {} version {}", hex::encode(sealing.key_id), sealing.version);
            println!("measurement {}", hex::encode(sealing.measurement));
            println!("broker      {}", state.dir.join("broker.toml").display());
            println!("policy      {}", state.dir.join("policy.toml").display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::RunQemu(args) => cmd::run::run(&root, args),
        Cmd::Measure(args) => cmd::measure::run(&root, args),
        Cmd::Repro { verbose } => {
            let report = step("repro: two builds from two paths", || xtask::repro::run(&root, verbose))?;
            for ((path, sha), (snp, mrtd)) in report.builds.iter().zip(&report.measurements) {
                println!("{}", path.display());
                println!("  sha256             {sha}");
                println!("  snp launch digest  {snp}");
                println!("  tdx mrtd           {mrtd}");
            }
            if report.identical {
                println!("identical: yes");
                Ok(ExitCode::SUCCESS)
            } else {
                bail!(
                    "the two builds differ (first differing byte at offset {:?}); both checkouts are kept under target/repro",
                    report.first_difference
                )
            }
        }
        Cmd::Bench { json, only, runs } => {
            // In range (1..=1000): the cast cannot truncate.
            let figures = xtask::bench::run(&root, only.as_deref(), runs as usize)?;
            if json {
                let figures: Vec<_> = figures.iter().map(|f| f.to_json()).collect();
                println!("{}", serde_json::json!({ "figures": figures }));
            } else {
                for f in &figures {
                    let goal = f
                        .goal
                        .map(|g| format!("  goal {g}: {}", if f.meets_goal == Some(true) { "met" } else { "NOT met" }));
                    println!("{:<32} {:>14} {:<12}{}", f.name, f.value, f.unit, goal.unwrap_or_default());
                    println!("{:<32} {}", "", f.how);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Fuzz { target, seconds } => {
            let targets: Vec<String> = match target {
                Some(t) => vec![t],
                None => xtask::fuzz::TARGETS.iter().map(|t| t.to_string()).collect(),
            };
            for target in targets {
                let report = xtask::fuzz::run(&root, &target, seconds)?;
                println!(
                    "fuzz {}: {} executions in {:.0} s, no crash",
                    report.target, report.executions, report.seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Train => {
            for script in xtask::model::SCRIPTS {
                script.train(&root, &script.committed_dir(&root))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::MinilmReference => {
            step("minilm-reference", || xtask::minilm::write_reference(&root))?;
            println!("wrote {}", xtask::minilm::REFERENCE);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Codegen { check, model } => {
            let generated = step("codegen (burn-onnx)", || xtask::codegen::generate(&root, model.as_deref()))?;
            if check {
                let drift = xtask::codegen::drift(&root, &generated)?;
                anyhow::ensure!(
                    drift.is_empty(),
                    "committed files differ from what codegen makes: {}",
                    drift.join(", ")
                );
                let mut files: Vec<String> = generated.graphs.iter().map(|g| g.manifest.graph()).collect();
                files.extend([xtask::codegen::MODEL_INDEX.to_string(), xtask::codegen::SERVED.to_string()]);
                println!("no drift: {}", files.join(", "));
            } else {
                let written = xtask::codegen::write(&root, &generated)?;
                match written.as_slice() {
                    [] => println!("unchanged (the burnpack's random parameter ids aside)"),
                    files => files.iter().for_each(|f| println!("wrote {f}")),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Test(args) => cmd::test::run(&root, args),
        Cmd::Storm { seconds } => {
            cmd::storm::run(&root, seconds, |line| println!("{line}"))?;
            println!("storm: passed");
            Ok(ExitCode::SUCCESS)
        }
    }
}
