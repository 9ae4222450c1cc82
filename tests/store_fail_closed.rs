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

/// Start-up trusts the records before the newest state snapshot because the
/// snapshot stands for them. When that snapshot's file is damaged, start-up
/// must fold those records itself, so it verifies them first: an edited old
/// record behind a damaged snapshot is refused, never resumed from.
#[test]
fn a_damaged_snapshot_file_makes_start_up_verify_the_records_it_stood_for() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("site");
    let status = headless_demo(&dir, 25, "alice").status().unwrap();
    assert!(status.success());
    let log_dir = dir.join("data").join("log");
    let snapshot = std::fs::read_dir(log_dir.join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "state"))
        .expect("the demo saved a state snapshot file");

    // An intact snapshot: the edit to an old record is not looked at, because
    // what start-up resumes from does not depend on it.
    {
        let db = sled::open(&log_dir).unwrap();
        let events = db.open_tree("events").unwrap();
        let old = events.get(3u64.to_be_bytes()).unwrap().unwrap().to_vec();
        let body = String::from_utf8(old[32..].to_vec()).unwrap();
        let edited = body.replacen("\"seq\":3", "\"seq\": 3", 1);
        assert_ne!(edited, body, "record 3 has no seq field to edit: {body}");
        let mut record = old[..32].to_vec();
        record.extend_from_slice(edited.as_bytes());
        events.insert(3u64.to_be_bytes(), record).unwrap();
        db.flush().unwrap();
    }
    // Same length, one byte different: only the snapshot's digest can tell.
    let mut bytes = std::fs::read(&snapshot).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&snapshot, &bytes).unwrap();

    let refused = headless_demo(&dir, 25, "alice").output().unwrap();
    let text = output_text(&refused);
    assert!(
        !refused.status.success(),
        "start-up folded an edited record behind a damaged snapshot: {text}"
    );
    assert!(text.contains("does not verify at seq 3"), "{text}");
    assert!(text.contains("log salvage"), "{text}");
}
