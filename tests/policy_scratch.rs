#[test]
fn scratch() {
    let q = std::env::var("Q").unwrap_or_default();
    if q.is_empty() { return; }
    let bundle = shieldops::policy::Bundle::from_dir(std::path::Path::new("policies"), true).unwrap();
    let mut engine = bundle.engine().unwrap();
    for q in q.split(";;") {
        if let Some(rule) = q.strip_prefix("RULE ") {
            println!("{rule} => {:?}", engine.eval_rule(rule.to_string()).map(|v| v.to_json_str().unwrap()));
            continue;
        }
        match engine.eval_query(q.to_string(), false) {
            Ok(r) => println!("{q}\n=> {}", serde_json::to_string(&r).unwrap()),
            Err(e) => println!("{q}\n=> ERROR {e:#}"),
        }
    }
}
