//! The store conformance suite (feature `testing`): placeholder, filled in by the durable-stores work.
