//! `AWS_ENDPOINT_URL` is honoured: with no `endpoint_url` in `[aws]`, the
//! standard chain's endpoint variable points the connector at moto. (Its own
//! test binary: it is the only test that sets process environment.)

mod aws_support;

use shieldops::clock::SharedClock;
use shieldops::connectors::{InfraConnector, Listing, Scope};

#[tokio::test]
async fn aws_endpoint_url_from_the_environment_is_used() {
    let moto = aws_support::Moto::start();
    let region = "eu-west-3";
    let ec2 = aws_sdk_ec2::Client::new(&aws_support::sdk(&moto.url(), region).await);
    ec2.run_instances()
        .image_id("ami-12c6146b")
        .min_count(2)
        .max_count(2)
        .send()
        .await
        .unwrap();
    // SAFETY: the only test in this binary, set before any SDK client reads the environment.
    unsafe { std::env::set_var("AWS_ENDPOINT_URL", moto.url()) };
    let mut config = aws_support::config(&moto.url(), region);
    config.endpoint_url = None;
    let c = aws_support::connector(&config, aws_support::manual_clock() as SharedClock).await;
    match c.refresh(&Scope::default()).await.unwrap() {
        Listing::Fresh(r) => assert_eq!(r.len(), 2),
        Listing::Unchanged => panic!("expected a fresh listing"),
    }
}
