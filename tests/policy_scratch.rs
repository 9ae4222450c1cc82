#[test]
fn scratch() {
    let Ok(dir) = std::env::var("DIR") else { return };
    let mut out = Vec::new();
    let code = shieldops::policy::policy_test(std::path::Path::new(&dir), std::env::var("COV").is_ok(), &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    for l in s.lines().filter(|l| !l.contains(": PASS")) { println!("{l}"); }
    println!("code {code}");
}
