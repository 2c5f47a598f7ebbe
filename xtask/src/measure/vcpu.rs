//! QEMU's AMD vCPU models and the CPUID signature each reports (family, model, stepping from QEMU's
//! `target/i386/cpu.c` builtin definitions). Under SNP the signature is in RDX of every initial VMSA, so it enters
//! the launch digest: `measure` and `run-qemu --tee snp` must agree on the model.

use anyhow::{Result, bail};

/// A vCPU model by name and its (family, model, stepping).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuType {
    /// The QEMU `-cpu` name.
    pub name: &'static str,
    family: u32,
    model: u32,
    stepping: u32,
}

const fn model(name: &'static str, family: u32, model: u32, stepping: u32) -> VcpuType {
    VcpuType { name, family, model, stepping }
}

/// The models with SNP support in QEMU, by name.
pub const VCPU_TYPES: [VcpuType; 18] = [
    model("EPYC", 23, 1, 2),
    model("EPYC-v1", 23, 1, 2),
    model("EPYC-v2", 23, 1, 2),
    model("EPYC-v3", 23, 1, 2),
    model("EPYC-v4", 23, 1, 2),
    model("EPYC-IBPB", 23, 1, 2),
    model("EPYC-Rome", 23, 49, 0),
    model("EPYC-Rome-v1", 23, 49, 0),
    model("EPYC-Rome-v2", 23, 49, 0),
    model("EPYC-Rome-v3", 23, 49, 0),
    model("EPYC-Rome-v4", 23, 49, 0),
    model("EPYC-Milan", 25, 1, 1),
    model("EPYC-Milan-v1", 25, 1, 1),
    model("EPYC-Milan-v2", 25, 1, 1),
    model("EPYC-Genoa", 25, 17, 0),
    model("EPYC-Genoa-v1", 25, 17, 0),
    model("EPYC-Turin", 26, 0, 0),
    model("EPYC-Turin-v1", 26, 0, 0),
];

/// The model `run-qemu --tee snp` uses and `measure` assumes unless told otherwise: generic enough for Milan,
/// Genoa and Turin hosts.
pub const DEFAULT_VCPU_TYPE: &str = "EPYC-v4";

impl VcpuType {
    /// The model called `name`.
    pub fn by_name(name: &str) -> Result<VcpuType> {
        match VCPU_TYPES.iter().find(|t| t.name == name) {
            Some(t) => Ok(*t),
            None => {
                let known: Vec<&str> = VCPU_TYPES.iter().map(|t| t.name).collect();
                bail!("unknown vCPU type {name:?}; known: {}", known.join(", "))
            }
        }
    }

    /// CPUID Fn0000_0001_EAX (AMD CPUID specification #25481): stepping[3:0], base model[7:4], base family[11:8],
    /// extended model[19:16], extended family[27:20]. A family above 0xF is split into base 0xF + extended.
    pub fn signature(&self) -> u32 {
        let (base_family, extended_family) =
            if self.family > 0xf { (0xf, (self.family - 0xf) & 0xff) } else { (self.family, 0) };
        extended_family << 20
            | (self.model >> 4 & 0xf) << 16
            | base_family << 8
            | (self.model & 0xf) << 4
            | (self.stepping & 0xf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_what_these_cpus_report() {
        // Published CPUID(1).EAX values: Naples 0x00800F12, Rome 0x00830F10, Milan 0x00A00F11, Genoa 0x00A10F10.
        assert_eq!(VcpuType::by_name("EPYC-v4").unwrap().signature(), 0x0080_0f12);
        assert_eq!(VcpuType::by_name("EPYC-Rome").unwrap().signature(), 0x0083_0f10);
        assert_eq!(VcpuType::by_name("EPYC-Milan").unwrap().signature(), 0x00a0_0f11);
        assert_eq!(VcpuType::by_name("EPYC-Genoa").unwrap().signature(), 0x00a1_0f10);
        assert_eq!(VcpuType::by_name("EPYC-Turin").unwrap().signature(), 0x00b0_0f00);
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        let err = VcpuType::by_name("EPYC-v9").unwrap_err().to_string();
        assert!(err.contains("EPYC-v9") && err.contains("EPYC-Milan"));
    }
}
