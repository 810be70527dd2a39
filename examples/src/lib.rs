//! Runnable examples of `apikeys`: see the `[[example]]` entries.
