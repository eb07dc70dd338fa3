//! The documentation keeps up with the code: ARCHITECTURE.md's "Every
//! module" lists each source file of the workspace, and nothing that is
//! gone.

use std::path::{Path, PathBuf};

const ROOTS: [&str; 11] = [
    "node-core/src",
    "media/src",
    "bridge/src",
    "client/src",
    "client-api/src",
    "mailboxd/src",
    "pushd/src",
    "named/src",
    "service-kit/src",
    "tests/src",
    "ffi/src",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("reading a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).expect("under the workspace");
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

#[test]
fn architecture_lists_every_module() {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let section = text
        .split("## Every module")
        .nth(1)
        .expect("ARCHITECTURE.md has an \"Every module\" section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut files = Vec::new();
    for r in ROOTS {
        sources(&root.join(r), &root, &mut files);
    }
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !section.contains(&format!("`{f}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's \"Every module\" lacks: {missing:?}"
    );
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("- `")?.split('`').next())
        .collect();
    let gone: Vec<&&str> = listed
        .iter()
        .filter(|l| !files.iter().any(|f| f == *l))
        .collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md lists files that are gone: {gone:?}"
    );
}
