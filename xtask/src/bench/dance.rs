//! The guest's side of the key dance under TCG: from the connection's establishment (the guest sends Hello right
//! after) to the released key, read from the guest's own records (TSC-timed), over several boots.

use anyhow::{Context, Result};

use super::{Figure, median, round};
use crate::dance::{BrokerOptions, attach, start_broker};
use crate::qemu::RunConfig;

pub(super) fn figures(root: &std::path::Path, image: &[u8], runs: usize) -> Result<Vec<Figure>> {
    let image_path = crate::paths::image_dir(root).join("ampoule.bin");
    let mut hello_to_key = Vec::new();
    for _ in 0..runs {
        let dir = crate::paths::target_dir(root).join("bench-broker");
        let broker = start_broker(&dir, image, &BrokerOptions::for_checkout(root))?;
        let mut config = RunConfig::new(&image_path);
        attach(&mut config, broker.port, crate::dance::free_port()?, broker.model.as_ref());
        // The guest serves after its key: the run ends once it says so (the "client" does nothing).
        let (report, _) = crate::serve::run_serving(&config, || ())?;
        broker.stop();
        let ms = |msg: &str| -> Result<f64> {
            let (record, _) = report.record(msg).with_context(|| format!("no {msg:?} record: {:?}", report.outcome))?;
            record.field("ms").and_then(|v| v.parse().ok()).context("record without ms")
        };
        hello_to_key.push(ms("key released")? - ms("connected")?);
    }
    let value = median(hello_to_key.clone());
    Ok(vec![Figure {
        name: "dance.guest_hello_to_key_ms",
        value: round(value, 1),
        unit: "ms",
        goal: Some("< 20"),
        meets_goal: Some(value < 20.0),
        how: format!(
            "median of {runs} TCG boots, guest TSC from connection established (Hello follows) to key opened; \
             min {:.1} ms; includes X25519 key generation, the simulated report, HPKE open",
            hello_to_key.iter().copied().fold(f64::INFINITY, f64::min)
        ),
    }])
}
