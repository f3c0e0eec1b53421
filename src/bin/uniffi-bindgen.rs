//! The in-crate `uniffi-bindgen`: generates the Kotlin, Swift and Python
//! bindings from the built `libwxpay` cdylib in library mode, with the exact
//! uniffi version the library links against.
//!
//! Built with `--features bindgen`; `scripts/gen-bindings.sh` runs it.

fn main() {
    uniffi::uniffi_bindgen_main()
}
