//! A damaged log fails closed: the demo refuses to resume from it and says
//! what to do; `log salvage` copies the verified prefix into a new data
//! directory without touching the original; the runtime starts on the copy.

mod demo_support;
use demo_support::{headless_demo, shieldops};

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn damage_refusal_salvage_and_a_fresh_start_on_the_copy() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("site");
    let status = headless_demo(&dir, 25, "alice").status().unwrap();
    assert!(status.success());
    let log_dir = dir.join("data").join("log");

    // Lose the last records behind the log's back, as sled's recovery does
    // after damage to its last segment.
    let total = {
        let db = sled::open(&log_dir).unwrap();
        let events = db.open_tree("events").unwrap();
        let (last, _) = events.last().unwrap().unwrap();
        let last = u64::from_be_bytes(last.as_ref().try_into().unwrap());
        for seq in last - 4..=last {
            events.remove(seq.to_be_bytes()).unwrap();
        }
        db.flush().unwrap();
        last
    };

    let refused = headless_demo(&dir, 25, "alice").output().unwrap();
    let text = output_text(&refused);
    assert!(
        !refused.status.success(),
        "the demo resumed a damaged log: {text}"
    );
    assert!(text.contains("does not verify"), "{text}");
    assert!(text.contains(&format!("seq {}", total - 4)), "{text}");
    assert!(text.contains("log salvage"), "{text}");

    let before = std::fs::read(log_dir.join("db")).unwrap();
    // A new site directory whose data directory is the salvage target.
    let new_site = root.path().join("salvaged");
    let salvaged = new_site.join("data");
    let out = shieldops(&dir)
        .args(["log", "salvage", "--to"])
        .arg(&salvaged)
        .output()
        .unwrap();
    let text = output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("salvaged seqs 1..={}", total - 5)),
        "{text}"
    );
    assert_eq!(
        std::fs::read(log_dir.join("db")).unwrap(),
        before,
        "salvage modified the original"
    );

    // The salvaged data directory verifies and the runtime starts on it.
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_shieldops"))
        .arg("--data-dir")
        .arg(&salvaged)
        .args(["log", "verify"])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", output_text(&verify));
    let resumed = headless_demo(&new_site, 25, "alice").output().unwrap();
    assert!(resumed.status.success(), "{}", output_text(&resumed));
}
