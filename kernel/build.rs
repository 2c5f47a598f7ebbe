//! Generates `layout.ld` from `ovmf::layout` (the one memory map) and links with `linker/ampoule.ld`.

use std::{env, fs, path::PathBuf};

fn main() {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let mut symbols = String::new();
    ovmf::layout::write_linker_symbols(&mut symbols).expect("formatting into a String cannot fail");
    fs::write(out_dir.join("layout.ld"), symbols).expect("write layout.ld");
    let script = manifest_dir.join("../linker/ampoule.ld");
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-search=native={}", out_dir.display());
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
}
