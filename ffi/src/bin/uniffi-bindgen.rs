//! `uniffi-bindgen`: writes the Kotlin, Swift or Python bindings of the
//! built `kith_ffi` library (`generate --library PATH --language python
//! --out-dir DIR`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
