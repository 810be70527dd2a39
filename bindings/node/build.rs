//! Build script: napi-rs link settings.

fn main() {
    napi_build::setup();
}
