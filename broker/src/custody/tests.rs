//! Against SoftHSM2 (Debian's `softhsm2`, which `cargo xtask test` installs). SoftHSM2 reads its configuration's
//! path from the environment once per process, so each test runs itself again in a child process whose
//! environment names a fresh installation of the test's own under `target/softhsm-tests/`; the parent passes when
//! the child does.

use std::path::PathBuf;
use std::process::Command;

use super::softhsm::{CONF_ENV, SoftHsm};
use super::*;

const KEY: [u8; 32] = [0x5a; 32];
const KEY_ID: KeyId = [0x1d; 16];

/// The test's SoftHSM2 installation, in the child; `None` in the parent, once the child has passed.
fn in_token_process(test: &str) -> Option<SoftHsm> {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "target", "softhsm-tests", test].iter().collect();
    let softhsm = SoftHsm::ensure(&dir).expect("a SoftHSM2 configuration");
    if softhsm.is_this_process_configured() {
        return Some(softhsm);
    }
    // Every run starts without tokens.
    std::fs::remove_dir_all(&dir).unwrap();
    let softhsm = SoftHsm::ensure(&dir).unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([&format!("custody::tests::{test}"), "--exact", "--nocapture", "--test-threads=1"])
        .env(CONF_ENV, softhsm.conf())
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&output.stderr));
    None
}

#[test]
fn a_wrapped_key_opens_only_as_itself() {
    let Some(softhsm) = in_token_process("a_wrapped_key_opens_only_as_itself") else { return };
    let custody = KeyCustody::open_or_create_kek(&softhsm.ensure_token("wrap").unwrap()).unwrap();
    let wrapped = custody.wrap(&KEY_ID, 1, &KEY).unwrap();
    assert_eq!(wrapped.len(), WRAPPED_LEN);
    assert!(!wrapped.windows(8).any(|w| w == &KEY[..8]), "the key is not in the wrapped bytes");
    assert_eq!(*custody.unwrap(&KEY_ID, 1, &wrapped).unwrap(), KEY);
    // Two wraps of the same key differ (a fresh IV each).
    assert_ne!(custody.wrap(&KEY_ID, 1, &KEY).unwrap(), wrapped);
    // Another id or version: the additional data differs.
    assert_eq!(custody.unwrap(&[0x1e; 16], 1, &wrapped), Err(UnwrapError::Refused));
    assert_eq!(custody.unwrap(&KEY_ID, 2, &wrapped), Err(UnwrapError::Refused));
    // Any changed bit, anywhere: IV, ciphertext, tag.
    for index in [0, IV_LEN, IV_LEN + 31, WRAPPED_LEN - 1] {
        let mut tampered = wrapped.clone();
        tampered[index] ^= 1;
        assert_eq!(custody.unwrap(&KEY_ID, 1, &tampered), Err(UnwrapError::Refused), "bit flipped at {index}");
    }
    assert_eq!(custody.unwrap(&KEY_ID, 1, &wrapped[1..]), Err(UnwrapError::Malformed));
    assert_eq!(custody.unwrap(&KEY_ID, 1, &[wrapped.as_slice(), &[0]].concat()), Err(UnwrapError::Malformed));
}

#[test]
fn the_kek_cannot_be_read_out_and_another_tokens_kek_opens_nothing() {
    let Some(softhsm) = in_token_process("the_kek_cannot_be_read_out_and_another_tokens_kek_opens_nothing") else {
        return;
    };
    // SoftHSM2 lists its tokens when a process first loads it: both exist before either is opened.
    let (first_config, second_config) =
        (softhsm.ensure_token("first").unwrap(), softhsm.ensure_token("second").unwrap());
    let first = KeyCustody::open_or_create_kek(&first_config).unwrap();
    assert_eq!(first.try_read_kek(), None, "the token handed out its KEK");
    let wrapped = first.wrap(&KEY_ID, 1, &KEY).unwrap();
    drop(first);
    // The same token again: the same KEK, found by its label.
    let again = KeyCustody::open(&first_config).unwrap();
    assert_eq!(*again.unwrap(&KEY_ID, 1, &wrapped).unwrap(), KEY);
    drop(again);
    // A second token has a KEK of its own: the first one's wrapped key does not open there.
    assert!(KeyCustody::open(&second_config).is_err(), "a token without a KEK is refused, not given one");
    let second = KeyCustody::open_or_create_kek(&second_config).unwrap();
    assert_eq!(second.unwrap(&KEY_ID, 1, &wrapped), Err(UnwrapError::Refused));
}

#[test]
fn a_pin_file_others_can_read_is_refused_and_a_wrong_pin_logs_nothing_in() {
    use std::os::unix::fs::PermissionsExt;
    let Some(softhsm) = in_token_process("a_pin_file_others_can_read_is_refused_and_a_wrong_pin_logs_nothing_in")
    else {
        return;
    };
    let config = softhsm.ensure_token("pins").unwrap();
    let pin_file = config.pin_file.clone().unwrap();
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = KeyCustody::open_or_create_kek(&config).err().unwrap().to_string();
    assert!(error.contains("0600"), "{error}");
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong = pin_file.with_extension("wrong");
    std::fs::write(&wrong, "0000\n").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wrong_config = TokenConfig { pin_file: Some(wrong), ..config.clone() };
    assert!(KeyCustody::open_or_create_kek(&wrong_config).is_err());
    let unknown = TokenConfig { token: "no-such-token".into(), ..config };
    assert!(KeyCustody::open_or_create_kek(&unknown).is_err());
}
