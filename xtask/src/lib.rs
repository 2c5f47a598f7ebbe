//! `cargo xtask`: Ampoule's build logic, in Rust. The binary (main.rs) is the CLI; this library is what the CLI and
//! the integration tests (xtask/tests/) share.

pub mod bench;
pub mod broker_state;
pub mod codegen;
pub mod dance;
pub mod fuzz;
pub mod hypervisor;
pub mod igvm;
pub mod image;
pub mod install;
pub mod manifest;
pub mod measure;
pub mod minilm;
pub mod model;
pub mod model_delivery;
pub mod paths;
pub mod procfs;
pub mod pypi_file;
pub mod python;
pub mod qemu;
pub mod repro;
pub mod sealing;
pub mod serve;
pub mod simulated_psp;
pub mod storm;
