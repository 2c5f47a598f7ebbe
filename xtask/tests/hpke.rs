//! Ampoule's HPKE suite (protocol::seal: X25519, HKDF-SHA256, AES-256-GCM) against pyhpke, an independent
//! implementation (PyPI, installed by xtask into target/venv), in both directions.

use std::process::Command;

use protocol::seal::{EphemeralKeyPair, KEY_RELEASE_INFO, key_release_aad, seal};
use xtask::python::{PYHPKE, ensure_tool};

fn pyhpke(args: &[String]) -> Vec<Vec<u8>> {
    let python = ensure_tool(&xtask::paths::repo_root(), PYHPKE).expect("pyhpke installs");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyhpke_interop.py");
    let out = Command::new(python).arg(script).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().map(|h| hex::decode(h).unwrap()).collect()
}

/// The system's randomness, as the `rand_core` generator HPKE takes.
fn system_rng() -> protocol::seal::rand_core::UnwrapErr<getrandom::SysRng> {
    protocol::seal::rand_core::UnwrapErr(getrandom::SysRng)
}

#[test]
fn what_ampoule_seals_pyhpke_opens() {
    let keys = pyhpke(&["keygen".into()]);
    let (sk, pk): (&[u8], [u8; 32]) = (&keys[0], keys[1].clone().try_into().unwrap());
    let aad = key_release_aad(&[3; 16], 1_800_000_000);
    let plaintext = [0x42u8; 32];
    let (enc, ct) = seal(&pk, &plaintext, KEY_RELEASE_INFO, &aad, &mut system_rng()).unwrap();
    let opened = pyhpke(&[
        "open".into(),
        hex::encode(sk),
        hex::encode(enc),
        hex::encode(&ct),
        hex::encode(KEY_RELEASE_INFO),
        hex::encode(aad),
    ]);
    assert_eq!(opened[0], plaintext);
}

#[test]
fn what_pyhpke_seals_ampoule_opens() {
    let guest = EphemeralKeyPair::generate(&mut system_rng());
    let aad = key_release_aad(&[4; 16], 1_800_000_001);
    let plaintext = b"a model key, thirty-two bytes!!!".to_vec();
    let sealed = pyhpke(&[
        "seal".into(),
        hex::encode(guest.public_key()),
        hex::encode(&plaintext),
        hex::encode(KEY_RELEASE_INFO),
        hex::encode(aad),
    ]);
    let enc: [u8; 32] = sealed[0].clone().try_into().unwrap();
    let opened = guest.open(&enc, &sealed[1], KEY_RELEASE_INFO, &aad).unwrap();
    assert_eq!(&opened[..], &plaintext[..]);
    // And a wrong AAD is refused, as in every direction.
    assert!(guest.open(&enc, &sealed[1], KEY_RELEASE_INFO, &key_release_aad(&[4; 16], 0)).is_err());
}
