//! The inference crate compiled host-native, for `cargo xtask bench` (not a test):
//!
//! - `native_inference count N`: N inferences on the reference inputs and nothing else, for callgrind: the
//!   difference between two counts is the instructions per inference, free of start-up and loading.
//! - `native_inference time N`: N timed inferences; prints `{"p50_ns": ..., "runs": N}`.
//!
//! Reads the plaintext weights (`model/ampoule-mlp.bpk`, committed) and inputs (`model/reference.json`).
//! With feature `guest-allocator`, every allocation goes to the guest's allocator instead of the system's.

use std::hint::black_box;
use std::time::Instant;

use inference::served::mlp::MODEL_ID;
use inference::{Graph, Input, WeightsBuffer};

#[cfg(feature = "guest-allocator")]
mod guest_allocator {
    //! linked_list_allocator over a static heap, as in the guest (kernel/src/heap.rs), set up on first use because
    //! the standard library allocates before `main`.
    use std::alloc::{GlobalAlloc, Layout};
    use std::sync::Once;

    use linked_list_allocator::LockedHeap;

    const HEAP_LEN: usize = 64 << 20;
    static HEAP: LockedHeap = LockedHeap::empty();
    static SET_UP: Once = Once::new();

    struct GuestAllocator;

    // SAFETY: allocation and deallocation go to one LockedHeap, which hands out disjoint blocks of its region.
    unsafe impl GlobalAlloc for GuestAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            SET_UP.call_once(|| {
                static mut REGION: [u8; HEAP_LEN] = [0; HEAP_LEN];
                let region = (&raw mut REGION).cast::<u8>();
                // SAFETY: REGION is used by nothing else, and `Once` runs this exactly once.
                unsafe { HEAP.lock().init(region, HEAP_LEN) };
            });
            // SAFETY: the caller's layout obligations pass through unchanged.
            unsafe { HEAP.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` came from `alloc` above with this layout.
            unsafe { HEAP.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: GuestAllocator = GuestAllocator;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, runs) = match args.as_slice() {
        [mode, n] if mode == "count" || mode == "time" => (mode.as_str(), n.parse::<usize>().expect("N is a count")),
        _ => {
            eprintln!("usage: native_inference count|time N");
            std::process::exit(2);
        }
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/model");
    let weights = std::fs::read(format!("{dir}/ampoule-mlp.bpk")).expect("the committed weights");
    let buffer = WeightsBuffer::copy_of(&weights).expect("memory for the weights");
    let classifier = Graph::load(MODEL_ID, buffer).expect("the committed weights load");
    let inputs = reference_inputs(&format!("{dir}/reference.json"));
    let mut samples = Vec::with_capacity(if mode == "time" { runs } else { 0 });
    for i in 0..runs {
        let input = &inputs[i % inputs.len()];
        let started = Instant::now();
        let output = classifier.run(Input::Values(black_box(input))).expect("a reference input is valid");
        black_box(&output);
        if mode == "time" {
            samples.push(started.elapsed().as_nanos() as u64);
        }
    }
    if mode == "time" {
        samples.sort_unstable();
        println!("{{\"p50_ns\": {}, \"runs\": {runs}}}", samples[samples.len() / 2]);
    }
}

fn reference_inputs(path: &str) -> Vec<Vec<f32>> {
    let text = std::fs::read_to_string(path).expect("the reference vectors");
    let value: serde_json::Value = serde_json::from_str(&text).expect("reference.json is JSON");
    value["cases"]
        .as_array()
        .expect("reference.json has cases")
        .iter()
        .map(|case| {
            let features = case["features"].as_array().expect("a case has features");
            features.iter().map(|v| v.as_f64().expect("a number") as f32).collect()
        })
        .collect()
}
