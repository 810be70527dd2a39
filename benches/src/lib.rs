//! Criterion benchmarks of `apikeys` live in `benches/`.
