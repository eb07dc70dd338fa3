//! The bindings, generated and used: Kotlin, Swift and Python are
//! generated from the built library, and a Python program drives two
//! nodes through the Python binding (`tests/two_nodes.py`). Needs
//! python3.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The built `kith_ffi` shared library: `cargo test` leaves it in
/// `deps/` beside the bindgen binary, `cargo build` also beside it; the
/// newer is this build's.
fn library() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_uniffi-bindgen"));
    let dir = bin.parent().unwrap();
    let candidates = [dir.join("deps/libkith_ffi.so"), dir.join("libkith_ffi.so")];
    candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p.clone())
        .unwrap_or_else(|| panic!("no kith_ffi library in {}", dir.display()))
}

fn generate(language: &str, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_uniffi-bindgen"))
        .args(["generate", "--no-format", "--library"])
        .arg(library())
        .args(["--language", language, "--out-dir"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "generating the {language} binding failed");
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn kotlin_and_swift_bindings_are_generated() {
    let out = tempfile::tempdir().unwrap();
    generate("kotlin", &out.path().join("kotlin"));
    generate("swift", &out.path().join("swift"));
    let all = files(out.path());
    let has = |ext: &str, text: &str| {
        all.iter().any(|p| {
            p.extension().is_some_and(|e| e == ext)
                && std::fs::read_to_string(p).unwrap().contains(text)
        })
    };
    assert!(
        has("kt", "fun `startNode`") || has("kt", "fun startNode"),
        "{all:?}"
    );
    assert!(has("swift", "func startNode"), "{all:?}");
    assert!(
        has("h", "uniffi_kith_ffi"),
        "no C header for Swift: {all:?}"
    );
}

#[test]
fn python_drives_two_nodes_through_the_binding() {
    let out = tempfile::tempdir().unwrap();
    generate("python", out.path());
    std::fs::copy(library(), out.path().join("libkith_ffi.so")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/two_nodes.py");
    let run = Command::new("python3")
        .arg(&script)
        .arg(out.path())
        .env_remove("KITH_HOME")
        .env_remove("KITH_PASSPHRASE")
        .output()
        .expect("python3 is needed for this test");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert!(
        run.status.success(),
        "the Python program failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("two nodes through the binding: ok"),
        "{stdout}"
    );
}
