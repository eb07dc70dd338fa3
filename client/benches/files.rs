//! 1 GiB over loopback: two real `kith daemon` processes (release build)
//! against a bare QUIC stream between two iroh endpoints moved in this
//! process, in the same run; plus the daemons' peak memory.
//! Run: `cargo bench -p kith --bench files` (`KITH_BENCH_MB=N` for another
//! size).
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use node_core::crypto::SigningKey;
use node_core::transport::Transport;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn size() -> usize {
    std::env::var("KITH_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024)
        << 20
}

/// A bare iroh stream: one endpoint writes `size` bytes, the other reads.
async fn bare(size: usize) -> f64 {
    let lo = vec!["127.0.0.1:0".parse().unwrap()];
    let a = Transport::bind(&SigningKey::generate(), &lo).await.unwrap();
    let bkey = SigningKey::generate();
    let bdev = node_core::DeviceId::from(bkey.verifying_key());
    let b = Transport::bind(&bkey, &lo).await.unwrap();
    let baddr = b.local_addrs();
    let reader = tokio::spawn(async move {
        let link = b.accept().await.unwrap().unwrap();
        let (_w, mut r) = link.accept().await.unwrap();
        let mut got = 0usize;
        while let Some(frame) = r.recv().await.unwrap() {
            got += frame.len();
        }
        got
    });
    let link = a.connect(bdev, &baddr).await.unwrap();
    let (mut w, _r) = link.open().await.unwrap();
    let piece = vec![7u8; 512 * 1024];
    let t = Instant::now();
    let mut sent = 0;
    while sent < size {
        w.send(&piece).await.unwrap();
        sent += piece.len();
    }
    w.finish();
    let got = reader.await.unwrap();
    assert_eq!(got, sent);
    sent as f64 / t.elapsed().as_secs_f64() / 1e6
}

fn kith(home: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kith {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn daemon(home: &Path) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--home")
        .arg(home)
        .args([
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--auto-fetch-up-to",
            "17179869184",
            "--max-file-size",
            "17179869184",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    kith(home, &["status", "--wait", "20", "--json"]);
    child
}

/// Peak resident memory of a process, in MB.
fn peak_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn make_file(path: &PathBuf, size: usize) {
    let mut f = std::fs::File::create(path).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for b in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        let n = left.min(buf.len());
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
}

fn main() {
    let size = size();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let bare_mb = rt.block_on(bare(size));
    println!("bare iroh stream: {} MiB at {bare_mb:.0} MB/s", size >> 20);

    let dir = tempfile::Builder::new()
        .prefix("kfb")
        .tempdir_in("/tmp")
        .unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    kith(&a, &["init", "--name", "alice", "--no-passphrase"]);
    kith(&b, &["init", "--name", "bob", "--no-passphrase"]);
    let mut da = daemon(&a);
    let mut db = daemon(&b);
    let bid = kith(&a, &["contact", "add", &kith(&b, &["card"])]);
    let aid = kith(&b, &["contact", "add", &kith(&a, &["card"])]);
    let src = dir.path().join("big.bin");
    make_file(&src, size);

    let t = Instant::now();
    let id = kith(&a, &["file", "send", &bid, src.to_str().unwrap()]);
    let prepared = t.elapsed();
    let t2 = Instant::now();
    loop {
        let list = kith(&b, &["file", "list", &aid, "--json"]);
        if list.contains("\"complete\"") {
            break;
        }
        assert!(t2.elapsed() < Duration::from_secs(1800), "transfer stalled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let moved = t2.elapsed();
    let total = t.elapsed();
    let mb = size as f64 / 1e6;
    println!(
        "kith: {} MiB offered in {:.2} s (hashed and encrypted at rest), moved in {:.2} s = {:.0} MB/s ({:.0}% of the bare stream); {:.0} MB/s from `file send` to complete",
        size >> 20,
        prepared.as_secs_f64(),
        moved.as_secs_f64(),
        mb / moved.as_secs_f64(),
        100.0 * (mb / moved.as_secs_f64()) / bare_mb,
        mb / total.as_secs_f64(),
    );
    println!(
        "peak memory: sender daemon {:.0} MB, receiver daemon {:.0} MB (file id {id})",
        peak_mb(da.id()),
        peak_mb(db.id())
    );
    for d in [&mut da, &mut db] {
        let _ = Command::new("kill").arg(d.id().to_string()).status();
        let _ = d.wait();
    }
}
