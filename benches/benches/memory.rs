//! Bytes per key of a 1,000,000-key `MemoryStore`, counted by an instrumented
//! allocator: the bytes the store holds once every transient value is freed
//! (bytes asked of the allocator; the allocator's own bookkeeping is not included).
//!
//! `cargo bench -p apikeys-benches --bench memory`

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEYS: usize = 1_000_000;

fn main() {
    let hasher = apikeys::KeyHasher::sha256();
    let region = Region::new(GLOBAL);
    let store = apikeys::MemoryStore::new();
    for _ in 0..KEYS {
        // Key and record are made and handed over here; the key is dropped
        // (zeroized) at once, as the keyring does after showing it.
        let key = apikeys::KeyKind::General.generate().expect("randomness");
        apikeys::KeyStore::insert(&store, apikeys_benches::record_for(key.expose(), &hasher))
            .expect("fresh key");
    }
    let stats = region.change();
    // stats_alloc adds a `realloc`'s growth to `bytes_allocated` (and its
    // shrinking to `bytes_deallocated`) and reports it again in
    // `bytes_reallocated`: live bytes are allocated − deallocated. (Adding
    // `bytes_reallocated` counted every `Vec` growth twice: 33 bytes a key.)
    let live = stats.bytes_allocated as i64 - stats.bytes_deallocated as i64;
    println!("MemoryStore: {} keys, {live} bytes live", store.len());
    println!(
        "memory_per_key: {:.1} bytes (target: at most 250)",
        live as f64 / KEYS as f64
    );
    println!(
        "  (counted as before, with reallocations twice: {:.1} bytes a key)",
        (live + stats.bytes_reallocated as i64) as f64 / KEYS as f64
    );
    println!(
        "  (record: {} bytes inline + a 9-byte description; account and creator names interned)",
        std::mem::size_of::<apikeys::KeyRecord>()
    );
    std::hint::black_box(&store);
}
