//! Key rotation: every `cargo xtask seal` makes a fresh key and registers it for the image built with that blob
//! only. Two sealings A and B, each with its own broker state, as the broker serves it (its own broker.toml and
//! keys.toml): the image with blob A cannot get B's key and the image with blob B cannot get A's; each gets its
//! own, and a key opens only its own blob. The guest side is the loader's real dance with the simulated attester
//! over loopback (QEMU is not needed for what is tested here).

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};

use broker::config::Config;
use broker::keys::KeyStore;
use common::image;
use loader::{LoaderError, ReleasedKey, SimulatedAttester, StreamTransport, obtain_key};
use protocol::refusal::RefusalCode;
use protocol::sealed_model::SealedModel;
use xtask::dance::{plain_measurement, serve_in_process};
use xtask::image::{Variant, insert_sealed_model, sealed_model_range};
use xtask::sealing::{default_weights, key_id_of_image, load_keys, seal_and_register_with};

/// The release image with `blob` in its slot instead of its own.
fn image_with(base: &[u8], blob: &Path) -> Vec<u8> {
    let mut image = base.to_vec();
    image[sealed_model_range()].fill(0);
    insert_sealed_model(&mut image, &std::fs::read(blob).unwrap()).unwrap();
    image
}

/// Runs the dance for `image` against the broker that `state` describes.
fn dance(dir: &Path, image: &[u8], state: &Path) -> Result<ReleasedKey, LoaderError<std::io::Error>> {
    let config = Config::load(&state.join("broker.toml")).unwrap();
    let keys = KeyStore::load(&state.join("keys.toml")).unwrap();
    let key_id = key_id_of_image(image).unwrap();
    let broker = serve_in_process(dir, config, keys, key_id).unwrap();
    let stream = TcpStream::connect(("127.0.0.1", broker.port)).unwrap();
    let mut attester = SimulatedAttester::new(plain_measurement(image));
    let mut rng = protocol::seal::rand_core::UnwrapErr(getrandom::SysRng);
    let result = obtain_key(&mut StreamTransport(stream), &mut attester, &mut rng, key_id, |_| ());
    broker.stop();
    result
}

#[test]
fn sealing_again_rotates_the_key_and_neither_image_gets_the_others_key() {
    let base = std::fs::read(image(Variant::Release)).unwrap();
    let dir = xtask::paths::target_dir(&xtask::paths::repo_root()).join("test-rotation");
    let _ = std::fs::remove_dir_all(&dir);
    let weights = default_weights(&xtask::paths::repo_root());
    let seal = |name: &str| -> (PathBuf, PathBuf) {
        let (blob, state) = (dir.join(format!("{name}.sealed")), dir.join(format!("state-{name}")));
        let sealing =
            seal_and_register_with(&weights, &blob, &state, |blob| Ok(plain_measurement(&image_with(&base, blob))))
                .unwrap();
        assert_eq!(key_id_of_image(&image_with(&base, &blob)).unwrap(), sealing.key_id);
        (blob, state)
    };
    let (blob_a, state_a) = seal("a");
    let (blob_b, state_b) = seal("b");
    let (image_a, image_b) = (image_with(&base, &blob_a), image_with(&base, &blob_b));
    assert_ne!(plain_measurement(&image_a), plain_measurement(&image_b));

    // Each image gets its own key from its own sealing's broker, and the key opens its own blob only.
    let key_a = dance(&dir.join("a-a"), &image_a, &state_a).unwrap();
    let key_b = dance(&dir.join("b-b"), &image_b, &state_b).unwrap();
    let (blob_a, blob_b) = (std::fs::read(blob_a).unwrap(), std::fs::read(blob_b).unwrap());
    let (sealed_a, sealed_b) = (SealedModel::parse(&blob_a).unwrap(), SealedModel::parse(&blob_b).unwrap());
    assert!(sealed_a.open(&key_a.key).is_ok() && sealed_b.open(&key_b.key).is_ok());
    assert!(sealed_a.open(&key_b.key).is_err() && sealed_b.open(&key_a.key).is_err());
    assert_ne!(key_a.key_id, key_b.key_id);

    // The old image against the new sealing's broker, and the new image against the old one: nothing.
    for (name, image, state) in [("a-b", &image_a, &state_b), ("b-a", &image_b, &state_a)] {
        let refused = dance(&dir.join(name), image, state).err();
        assert!(matches!(refused, Some(LoaderError::Refused(RefusalCode::UnknownMeasurement))), "{name}: {refused:?}");
    }
    // And each state holds exactly its own key: the other sealing's key is not there to be released.
    assert!(load_keys(&state_b).unwrap().get(&key_a.key_id).is_none());
    assert!(load_keys(&state_a).unwrap().get(&key_b.key_id).is_none());
}
