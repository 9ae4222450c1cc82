//! Debian package version ordering, as `dpkg --compare-versions` defines it:
//! `[epoch:]upstream[-revision]`, compared epoch first, then upstream, then
//! revision, each by alternating non-digit and digit runs, where `~` sorts
//! before everything (even the end of the string) and letters sort before
//! other characters.

use std::cmp::Ordering;

/// Compares two Debian version strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| compare_part(ua, ub))
        .then_with(|| compare_part(ra, rb))
}

fn split(v: &str) -> (u64, &str, &str) {
    let v = v.trim();
    let (epoch, rest) = match v.split_once(':') {
        Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) && !e.is_empty() => {
            (e.parse().unwrap_or(0), r)
        }
        _ => (0, v),
    };
    match rest.rsplit_once('-') {
        Some((u, r)) => (epoch, u, r),
        None => (epoch, rest, ""),
    }
}

fn order(c: Option<char>) -> i32 {
    match c {
        Some('~') => -1,
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => c as i32,
        Some(c) => c as i32 + 256,
    }
}

fn compare_part(a: &str, b: &str) -> Ordering {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ca = a.get(i).copied().filter(|c| !c.is_ascii_digit());
            let cb = b.get(j).copied().filter(|c| !c.is_ascii_digit());
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            if ca.is_some() {
                i += 1;
            }
            if cb.is_some() {
                j += 1;
            }
        }
        // Digit run, compared numerically.
        let start_i = i;
        while i < a.len() && a[i].is_ascii_digit() {
            i += 1;
        }
        let start_j = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let na = digits(&a[start_i..i]);
        let nb = digits(&b[start_j..j]);
        match na.len().cmp(&nb.len()).then_with(|| na.cmp(nb)) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

fn digits(run: &[char]) -> &[char] {
    let first = run.iter().position(|c| *c != '0').unwrap_or(run.len());
    &run[first..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn dpkg_ordering_rules() {
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0~~", "1.0~", Less),
            ("1:1.0", "2.0", Greater),
            ("1.0-1", "1.0-2", Less),
            ("1.0-1", "1.0", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0a", "1.0+", Less),
            ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3", Less),
            ("3.0.15-1~deb12u1", "3.0.14-1~deb12u1", Greater),
            ("2.36-9+deb12u9", "2.36-9+deb12u10", Less),
            ("001", "1", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(a, b), want, "{a} vs {b}");
            assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    /// Cross-checks against the real dpkg where it is installed.
    #[test]
    fn agrees_with_dpkg_compare_versions() {
        let pairs = [
            ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3"),
            ("1.0~rc1", "1.0"),
            ("2.0-1~bpo12+1", "2.0-1"),
            ("1.2.3a-1", "1.2.3-1"),
            ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12"),
        ];
        if std::process::Command::new("dpkg")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        for (a, b) in pairs {
            let lt = std::process::Command::new("dpkg")
                .args(["--compare-versions", a, "lt", b])
                .status()
                .unwrap()
                .success();
            assert_eq!(compare(a, b) == Less, lt, "{a} vs {b}");
        }
    }

    /// What `dpkg --compare-versions` says about `a` and `b`.
    fn dpkg_order(a: &str, b: &str) -> Ordering {
        let holds = |op: &str| {
            std::process::Command::new("dpkg")
                .args(["--compare-versions", a, op, b])
                .status()
                .expect("dpkg runs (this test compares against the real dpkg)")
                .success()
        };
        if holds("lt") {
            Less
        } else if holds("gt") {
            Greater
        } else {
            Equal
        }
    }

    /// Every version installed on this machine, sorted by our ordering, and
    /// each beside variants that differ only in the rules' corners (tilde,
    /// binNMU suffix, epoch, revision): dpkg must agree on every pair.
    #[test]
    fn agrees_with_dpkg_on_this_machines_versions_and_their_neighbours() {
        let text = std::fs::read_to_string("/var/lib/dpkg/status")
            .expect("this test reads the machine's real dpkg status database");
        let mut versions: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Version: "))
            .map(str::to_string)
            .collect();
        versions.sort();
        versions.dedup();
        assert!(versions.len() > 50, "only {} versions", versions.len());
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut sorted = versions.clone();
        sorted.sort_by(|a, b| compare(a, b));
        for w in sorted.windows(2) {
            pairs.push((w[0].clone(), w[1].clone()));
        }
        for v in versions.iter().step_by(3) {
            pairs.push((v.clone(), format!("{v}~rc1")));
            pairs.push((v.clone(), format!("{v}+b1")));
            pairs.push((format!("{v}~"), format!("{v}~~")));
            if !v.contains(':') {
                pairs.push((v.clone(), format!("1:{v}")));
            }
            if !v.contains('-') {
                pairs.push((v.clone(), format!("{v}-0")));
                pairs.push((v.clone(), format!("{v}-1")));
            }
        }
        let mut disagreements = Vec::new();
        for (a, b) in &pairs {
            let ours = compare(a, b);
            if ours != dpkg_order(a, b) {
                disagreements.push(format!("{a} vs {b}: ours {ours:?}"));
            }
        }
        assert!(
            disagreements.is_empty(),
            "{} of {} pairs disagree with dpkg: {disagreements:#?}",
            disagreements.len(),
            pairs.len()
        );
    }
}
