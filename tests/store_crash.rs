//! SIGKILL the real binary mid-stress, again and again: every acknowledged
//! event must survive and the chain must stay intact.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shieldops::cli::log_dir;
use shieldops::store::EventLog;

const ITERATIONS: usize = 24;
const MAX_ACKS_BEFORE_KILL: u64 = 300;

fn stress(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shieldops"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["log", "stress", "--count", "1000000", "--writers", "4"]);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    // Fixed by default; STORE_CRASH_SEED explores other schedules.
    let seed = std::env::var("STORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0005_EED0_F10C);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut acked = BTreeSet::new();
    for iteration in 0..ITERATIONS {
        // 0 kills it before it can acknowledge anything (while it opens or recovers).
        let kill_after = if iteration % 6 == 5 {
            0
        } else {
            rng.random_range(1..=MAX_ACKS_BEFORE_KILL)
        };
        let mut child = stress(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while seen < kill_after {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            let seq: u64 = line
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("stress printed a non-seq line: {line:?}"));
            assert!(acked.insert(seq), "seq {seq} acknowledged twice");
            seen += 1;
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if seen < kill_after {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!(
                "seed {seed} iteration {iteration}: stress ended early ({status}) after {seen} acks: {err}"
            );
        }

        let log = EventLog::open(&log_dir(dir.path())).unwrap();
        let report = log.verify().unwrap();
        assert_eq!(report.first_bad, None, "seed {seed} iteration {iteration}");
        assert_eq!(report.checked, log.last_seq());
        let present: BTreeSet<u64> = log.scan(1).map(|e| e.unwrap().seq).collect();
        let lost: Vec<&u64> = acked.difference(&present).collect();
        assert!(
            lost.is_empty(),
            "seed {seed} iteration {iteration}: acknowledged seqs lost after SIGKILL: {lost:?}"
        );
        log.close().await.unwrap();
    }
    assert!(
        acked.len() as u64 > MAX_ACKS_BEFORE_KILL,
        "the runs acknowledged too little"
    );
}
