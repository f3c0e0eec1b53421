//! Build script: writes `include/wxpay.h` from `src/ffi/` with cbindgen (which
//! starts at `src/ffi/mod.rs` and follows its `mod` declarations), but only
//! when `WXPAY_WRITE_HEADER=1` is set. A normal build (and `cargo
//! package`) writes nothing; `tests/c_abi.rs` checks that the checked-in
//! header is the one cbindgen would write.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=WXPAY_WRITE_HEADER");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    if env::var("WXPAY_WRITE_HEADER").as_deref() != Ok("1") {
        return;
    }
    let root = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR for build scripts"),
    );
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let header = root.join("include").join("wxpay.h");
    let changed = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src").join("ffi").join("mod.rs"))
        .generate()
        .expect("cbindgen can read src/ffi/")
        .write_to_file(&header);
    if changed {
        println!("cargo:warning=wrote {}", header.display());
    }
}
