//! `MemoryStore` passes the store conformance suite.

#[test]
fn memory_store_passes_the_conformance_suite() {
    apikeys::testing::conformance(apikeys::MemoryStore::new);
}
