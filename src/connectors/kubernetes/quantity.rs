//! Kubernetes resource quantities (`12345n`, `250m`, `1.5`, `128Mi`, `1Gi`,
//! `1k`, `5e3`, `2E-3`), read as the API machinery's grammar defines them:
//! a signed decimal number, then a binary suffix (`Ki`…`Ei`), a decimal
//! suffix (`n u m k M G T P E`) or a decimal exponent (`e`/`E` and an
//! integer). `E` alone is exa; `E` followed by a number is an exponent.

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// A quantity's value in base units (cores, bytes); `None` when it does not parse.
pub fn parse(q: &str) -> Option<f64> {
    let s = q.trim();
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1.0, &s[1..]),
        b'-' => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    if !number.bytes().any(|b| b.is_ascii_digit()) || number.matches('.').count() > 1 {
        return None;
    }
    let n: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => MIB,
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            // A signed integer only (`e3`, `E-3`, `e+2`); nothing after it.
            if exp.is_empty()
                || !exp
                    .trim_start_matches(['+', '-'])
                    .bytes()
                    .all(|b| b.is_ascii_digit())
            {
                return None;
            }
            10f64.powi(exp.parse::<i32>().ok()?)
        }
    };
    let v = sign * n * factor;
    v.is_finite().then_some(v)
}

/// A CPU quantity in millicores (not negative).
pub fn millicores(q: &str) -> Option<f64> {
    parse(q).map(|cores| cores * 1000.0).filter(|v| *v >= 0.0)
}

/// A memory quantity in MiB (not negative).
pub fn mib(q: &str) -> Option<f64> {
    parse(q).map(|bytes| bytes / MIB).filter(|v| *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
    }

    #[test]
    fn every_suffix_form_is_read() {
        // What metrics-server and the API server write.
        assert!(close(millicores("12345n"), 0.012345));
        assert!(close(millicores("250m"), 250.0));
        assert!(close(millicores("1"), 1000.0));
        assert!(close(millicores("1.5"), 1500.0));
        assert!(close(millicores("1500u"), 1.5));
        assert!(close(mib("128Mi"), 128.0));
        assert!(close(mib("1Gi"), 1024.0));
        assert!(close(mib("131072Ki"), 128.0));
        assert!(close(mib("2Ti"), 2.0 * 1024.0 * 1024.0));
        assert!(close(parse("1Pi"), 1024f64.powi(5)));
        assert!(close(parse("1Ei"), 1024f64.powi(6)));
        // Decimal suffixes: `k` is lower case, the others upper.
        assert!(close(parse("1k"), 1e3));
        assert!(close(parse("1M"), 1e6));
        assert!(close(parse("1G"), 1e9));
        assert!(close(parse("1T"), 1e12));
        assert!(close(parse("1P"), 1e15));
        assert!(close(parse("1E"), 1e18));
        assert!(close(mib("1048576"), 1.0));
        assert!(close(mib("0.5Gi"), 512.0));
        assert!(close(parse(".5"), 0.5));
        assert!(close(parse("+2"), 2.0));
    }

    #[test]
    fn exponents_are_not_taken_for_exa() {
        assert!(close(parse("5e3"), 5000.0));
        assert!(close(parse("5E3"), 5000.0));
        assert!(close(parse("2E-3"), 0.002));
        assert!(close(parse("1e+2"), 100.0));
        assert!(close(millicores("1e-3"), 1.0));
        assert!(close(mib("1e9"), 1e9 / MIB));
    }

    #[test]
    fn malformed_and_negative_quantities_are_refused() {
        for bad in [
            "", " ", "m", "Mi", "1KB", "1K", "1mi", "1.2.3", "1e", "1e3.5", "1ee3", "abc", "1 Gi",
            "--1", "1e99999", "NaN", "inf",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(millicores("-100m"), None);
        assert_eq!(mib("-1Gi"), None);
        assert!(close(parse("-100m"), -0.1));
    }
}
