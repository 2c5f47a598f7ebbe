//! `ampoule-client evidence | infer | embed | health | gateway --guest 127.0.0.1:PORT --policy policy.toml
//! [--model NAME]`.
//!
//! The policy file is in the broker configuration's format (its `allow_simulated`, `allow_debug` and `[[allow]]`
//! entries, and an `[snp]` or `[tdx]` verifier): what the client pins. The
//! guest's evidence must pass it before anything is sent. `--model` names the model the guest serves (one of
//! `inference::served::SERVED`, from the manifests in `inference/models/`): its input names and output labels.
//! `infer` (a model that reads values) reads inputs from its arguments or, when none are given, from stdin: JSON
//! (`[v, ...]`, `{"features": [v, ...]}`, or a list of either) or CSV (one input a line, an optional header line of
//! the model's input names). Outputs are JSON lines (with the best label when the model's outputs are labelled),
//! or CSV with `--format csv`. `embed` (a model that reads token ids) tokenizes each sentence (its arguments, or
//! stdin's lines) on this side with the model's `tokenizer.json`, sends only the token ids, sealed, and prints one
//! JSON line per sentence: the token count, whether the text was cut at the model's length, and the embedding.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use broker::config::Config;
use broker::policy::Policy;
use clap::{Parser, Subcommand, ValueEnum};
use client::GuestClient;
use client::tokenizer::SentenceTokenizer;
use inference::{InputKind, ServedModel};

#[derive(Parser)]
#[command(name = "ampoule-client", about = "Verify an Ampoule guest, send it sealed inputs, open its results")]
struct Cli {
    /// The guest's service address.
    #[arg(long, global = true, default_value = "127.0.0.1:8000")]
    guest: SocketAddr,
    /// The policy: what to pin (`policy.toml`, written by `cargo xtask seal` and run-qemu: allowlist, allow_simulated,
    /// allow_debug, the SNP or TDX verifier).
    #[arg(long, global = true, default_value = "target/ampoule/broker/policy.toml")]
    policy: PathBuf,
    /// Seconds to wait for the guest at each step.
    #[arg(long, global = true, default_value_t = 30)]
    timeout: u64,
    /// The model the guest serves (a manifest's name): `infer` takes its input names and output labels from it.
    #[arg(long, global = true, default_value = "mlp")]
    model: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify the guest's evidence and print what it says.
    Evidence,
    /// Classify inputs: JSON or CSV values as arguments, or on stdin.
    Infer {
        /// Output format.
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        /// Input values (JSON or comma-separated); read from stdin when absent.
        values: Vec<String>,
    },
    /// Embed sentences (a guest serving paraphrase-MiniLM-L3-v2): arguments, or one a line on stdin.
    Embed {
        /// The model's tokenizer.json (`cargo xtask codegen` fetches it).
        #[arg(long, default_value = "target/models/minilm/tokenizer.json")]
        tokenizer: PathBuf,
        /// The sentences; read from stdin, one a line, when absent.
        sentences: Vec<String>,
    },
    /// Ask whether the guest is attested and has its model.
    Health,
    /// Serve a local REST gateway in front of the guest (client::gateway; client/openapi.json describes it).
    Gateway {
        /// Where to listen (keep it on loopback: callers send plaintext to it).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Verify the guest's evidence again at least this often, in seconds (1..=86400).
        #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        reverify_secs: u64,
        /// The model's tokenizer.json, for a model that reads token ids (`POST /v1/embed`).
        #[arg(long, default_value = "target/models/minilm/tokenizer.json")]
        tokenizer: PathBuf,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Json,
    Csv,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ampoule-client: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let Some(model) = inference::served::SERVED.iter().find(|m| m.name == cli.model) else {
        let names: Vec<&str> = inference::served::SERVED.iter().map(|m| m.name).collect();
        bail!("no model {:?}; this build knows {}", cli.model, names.join(", "))
    };
    let feature_names = match (&cli.command, model.input) {
        (Command::Infer { .. }, InputKind::Values { names, .. }) => names,
        (Command::Infer { .. }, InputKind::Tokens { .. }) => bail!("model {} reads token ids: use embed", model.name),
        (Command::Embed { .. }, InputKind::Values { .. }) => bail!("model {} reads values: use infer", model.name),
        _ => &[],
    };
    // The tokenizer is read before anything is sent: a missing file is not the guest's fault.
    let tokenizer = match &cli.command {
        Command::Embed { tokenizer, .. } => Some(SentenceTokenizer::from_file(tokenizer)?),
        _ => None,
    };
    let config = Config::load(&cli.policy).with_context(|| format!("loading the policy {}", cli.policy.display()))?;
    let policy = Policy::from_config(&config)?;
    if let Command::Gateway { listen, reverify_secs, tokenizer } = &cli.command {
        let tokenizer = match model.input {
            InputKind::Tokens { .. } => Some(SentenceTokenizer::from_file(tokenizer)?),
            InputKind::Values { .. } => None,
        };
        let config = client::gateway::GatewayConfig {
            guest: cli.guest,
            policy,
            model,
            tokenizer,
            reverify: Duration::from_secs(*reverify_secs),
            timeout: Duration::from_secs(cli.timeout),
        };
        let gateway = client::gateway::Gateway::start(config, listen)?;
        eprintln!(
            "ampoule-client: gateway on http://{} for the guest at {} (model {})",
            gateway.addr, cli.guest, model.name
        );
        gateway.wait();
        return Ok(ExitCode::SUCCESS);
    }
    let mut guest = GuestClient::connect(cli.guest, &policy, Duration::from_secs(cli.timeout))?;
    match cli.command {
        Command::Evidence => {
            let v = guest.verified();
            let value = serde_json::json!({
                "tee": v.tee.as_str(), "measurement": hex::encode(&v.measurement), "debug": v.debug,
                "policy": "passed",
            });
            println!("{value}");
        }
        Command::Health => {
            let (attested, model_loaded) = guest.health()?;
            println!("{}", serde_json::json!({ "attested": attested, "model_loaded": model_loaded }));
        }
        Command::Infer { format, values } => {
            let text = if values.is_empty() {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text
            } else {
                values.join(if values.len() > 1 && !values[0].contains(',') { "," } else { "\n" })
            };
            let inputs = parse_inputs(&text, feature_names)?;
            if format == Format::Csv {
                print_csv_header(model);
            }
            let mut refused = 0;
            for input in &inputs {
                match guest.infer(input)? {
                    Ok(output) => print_result(format, model, &output),
                    Err(code) => {
                        refused += 1;
                        match format {
                            Format::Json => println!("{}", serde_json::json!({ "error": code.as_str() })),
                            Format::Csv => println!("error:{}{}", code.as_str(), ",".repeat(model.output_len)),
                        }
                    }
                }
            }
            if refused > 0 {
                return Ok(ExitCode::from(2));
            }
        }
        Command::Gateway { .. } => unreachable!("served above"),
        Command::Embed { sentences, .. } => {
            let tokenizer = tokenizer.expect("read above for embed");
            let sentences = if sentences.is_empty() {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text)?;
                text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
            } else {
                sentences
            };
            anyhow::ensure!(!sentences.is_empty(), "no sentences given");
            let mut refused = 0;
            for sentence in &sentences {
                let tokens = tokenizer.encode(sentence)?;
                match guest.embed(&tokens.ids)? {
                    Ok(embedding) => println!(
                        "{}",
                        serde_json::json!({ "tokens": tokens.ids.len(), "truncated": tokens.truncated, "embedding": *embedding })
                    ),
                    Err(code) => {
                        refused += 1;
                        println!("{}", serde_json::json!({ "error": code.as_str() }));
                    }
                }
            }
            if refused > 0 {
                return Ok(ExitCode::from(2));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// CSV's header: the best label and one column per labelled output value, or one per output value.
fn print_csv_header(model: &ServedModel) {
    match model.output_labels {
        [] => println!("{}", (0..model.output_len).map(|i| format!("v{i}")).collect::<Vec<_>>().join(",")),
        labels => println!("class,{}", labels.iter().map(|c| format!("p_{c}")).collect::<Vec<_>>().join(",")),
    }
}

/// One output: with the best label when the model's outputs are labelled (one value per class).
fn print_result(format: Format, model: &ServedModel, output: &[f32]) {
    let values: Vec<String> = output.iter().map(|p| p.to_string()).collect();
    if model.output_labels.is_empty() {
        match format {
            Format::Json => println!("{}", serde_json::json!({ "output": output })),
            Format::Csv => println!("{}", values.join(",")),
        }
        return;
    }
    let best = (0..output.len()).max_by(|&a, &b| output[a].total_cmp(&output[b]));
    let class = best.and_then(|i| model.output_labels.get(i)).copied().unwrap_or("?");
    match format {
        Format::Json => println!("{}", serde_json::json!({ "class": class, "probabilities": output })),
        Format::Csv => println!("{class},{}", values.join(",")),
    }
}

/// Parses JSON (one input or a list) or CSV (one input a line, an optional header of `feature_names`).
pub fn parse_inputs(text: &str, feature_names: &[&str]) -> Result<Vec<Vec<f32>>> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(trimmed).context("the input is not valid JSON")?;
        return match &value {
            serde_json::Value::Array(items) if items.iter().all(|i| i.is_number()) => Ok(vec![json_values(&value)?]),
            serde_json::Value::Array(items) => items.iter().map(json_values).collect(),
            _ => Ok(vec![json_values(&value)?]),
        };
    }
    let mut inputs = Vec::new();
    for (n, line) in trimmed.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
        if n == 0 && line.split(',').next().is_some_and(|f| feature_names.contains(&f.trim())) {
            continue;
        }
        let values: Result<Vec<f32>, _> = line.split(',').map(|v| v.trim().parse::<f32>()).collect();
        inputs.push(values.with_context(|| format!("line {}: not comma-separated numbers", n + 1))?);
    }
    if inputs.is_empty() {
        bail!("no input values given");
    }
    Ok(inputs)
}

fn json_values(value: &serde_json::Value) -> Result<Vec<f32>> {
    let array = match value {
        serde_json::Value::Object(map) => map.get("features").context("a JSON object input needs \"features\"")?,
        other => other,
    };
    let items = array.as_array().context("an input is a JSON array of numbers")?;
    items.iter().map(|v| v.as_f64().map(|f| f as f32).context("an input value is not a number")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 2] = ["mean radius", "mean texture"];

    #[test]
    fn inputs_parse_from_json_and_csv() {
        assert_eq!(parse_inputs("[1, 2.5, 3]", &NAMES).unwrap(), vec![vec![1.0, 2.5, 3.0]]);
        assert_eq!(parse_inputs(r#"{"features": [1, 2]}"#, &NAMES).unwrap(), vec![vec![1.0, 2.0]]);
        let list = parse_inputs(r#"[[1, 2], {"features": [3]}]"#, &NAMES).unwrap();
        assert_eq!(list, vec![vec![1.0, 2.0], vec![3.0]]);
        let csv = format!("{},{}\n1,2\n\n3, 4\n", NAMES[0], NAMES[1]);
        assert_eq!(parse_inputs(&csv, &NAMES).unwrap(), vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    }

    #[test]
    fn bad_inputs_are_clear_errors() {
        for bad in ["", "  \n", "1,two,3", "[1, \"x\"]", r#"{"values": [1]}"#, "[1, 2"] {
            assert!(parse_inputs(bad, &NAMES).is_err(), "{bad:?}");
        }
        let error = parse_inputs("1,2\n3,x", &NAMES).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        // A header of another model's names is not a header.
        assert!(parse_inputs("radius,texture\n1,2", &NAMES).is_err());
    }
}
