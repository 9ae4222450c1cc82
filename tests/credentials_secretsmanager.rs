//! The Secrets Manager credential store against moto's server (the AWS
//! emulator): secrets listed with their rotation metadata, rotation by
//! `PutSecretValue` with a generated value, `RotateSecret` where rotation is
//! configured, and restore by moving `AWSCURRENT` back to the recorded
//! version, each read back from the emulator.

#[path = "aws_support/mod.rs"]
mod aws_support;

use std::sync::Arc;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::Tag;
use aws_support::Moto;
use chrono::Utc;
use shieldops::clock::{ManualClock, SharedClock};
use shieldops::connectors::credentials::{
    CredentialConnector, CredentialsConfig, SecretsManagerStore, secretsmanager_id,
};
use shieldops::connectors::{InfraConnector, Scope};
use shieldops::event::{Action, HealthStatus, Provider, ResourceId};

const REGION: &str = "us-east-1";

async fn setup(moto: &Moto) -> (Client, CredentialConnector) {
    let sdk = aws_support::sdk(&moto.url(), REGION).await;
    let client = Client::new(&sdk);
    let config = CredentialsConfig {
        max_age_days: Some(90),
        ..CredentialsConfig::default()
    };
    let store = SecretsManagerStore::new(client.clone(), &config.expiry_key);
    let clock: SharedClock = Arc::new(ManualClock::new(Utc::now()));
    let connector = CredentialConnector::new(secretsmanager_id(), Arc::new(store), config, clock);
    (client, connector)
}

/// The `AWSCURRENT` value. The stage is named although it is AWS's default:
/// moto answers an unstaged read from the version a secret was last written
/// with, not from the one `UpdateSecretVersionStage` made current.
async fn current_value(client: &Client, name: &str) -> String {
    client
        .get_secret_value()
        .secret_id(name)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_listed_across_pages_with_rotation_metadata() {
    let moto = Moto::start();
    let (client, c) = setup(&moto).await;
    // More secrets than one default ListSecrets page holds (100).
    for i in 0..105 {
        client
            .create_secret()
            .name(format!("svc/{i:03}"))
            .secret_string("x")
            .send()
            .await
            .unwrap();
    }
    client
        .create_secret()
        .name("app/db")
        .secret_string(r#"{"username":"app","password":"first-pass"}"#)
        .tags(
            Tag::builder()
                .key("expires_at")
                .value("2020-01-01T00:00:00Z")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let all = c.list_resources(&Scope::default()).await.unwrap();
    assert_eq!(all.len(), 106);
    let db = all
        .iter()
        .find(|r| r.id.as_str() == "secretsmanager/secret/app/db")
        .unwrap();
    assert_eq!(db.provider, Provider::Aws);
    let a = &db.attributes;
    assert_eq!(a["store"], "secretsmanager");
    assert_eq!(a["path"], "app/db");
    assert_eq!(a["rotation_enabled"], "false");
    assert_eq!(a["expires_at"], "2020-01-01T00:00:00+00:00");
    assert!(a["version"].len() >= 32, "{a:?}");
    chrono::DateTime::parse_from_rfc3339(&a["rotated_at"]).unwrap();
    assert_eq!(db.health.status, HealthStatus::Unhealthy);
    assert_eq!(db.health.reason, "CredentialExpired");
    // Without an expiry tag, the maximum age sets the expiry.
    let other = all
        .iter()
        .find(|r| r.id.as_str() == "secretsmanager/secret/svc/000")
        .unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(&other.attributes["expires_at"]).unwrap();
    assert!(expires > Utc::now() + chrono::Duration::days(89));
    assert_eq!(other.health.status, HealthStatus::Healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_rotation_and_restore_of_the_previous_version() {
    let moto = Moto::start();
    let (client, c) = setup(&moto).await;
    client
        .create_secret()
        .name("app/db")
        .secret_string(r#"{"username":"app","password":"first-pass"}"#)
        .send()
        .await
        .unwrap();
    client
        .create_secret()
        .name("plain")
        .secret_string("plain-first")
        .send()
        .await
        .unwrap();
    let id = ResourceId::new("secretsmanager/secret/app/db");
    let snapshot = c.snapshot(&id).await.unwrap();
    assert!(
        !serde_json::to_string(&snapshot)
            .unwrap()
            .contains("first-pass")
    );

    let outcome = c
        .execute(&Action::new("rotate_secret", id.clone()))
        .await
        .unwrap();
    assert!(outcome.success, "{outcome:?}");
    assert!(outcome.steps.iter().any(|s| s.contains("PutSecretValue")));
    let rotated: serde_json::Value =
        serde_json::from_str(&current_value(&client, "app/db").await).unwrap();
    assert_eq!(rotated["username"], "app", "other fields are kept");
    let password = rotated["password"].as_str().unwrap();
    assert_ne!(password, "first-pass");
    assert_eq!(password.len(), 32);
    assert!(!format!("{outcome:?}").contains(password));

    let restored = c.restore(&snapshot).await.unwrap();
    assert!(restored.success, "{restored:?}");
    let back: serde_json::Value =
        serde_json::from_str(&current_value(&client, "app/db").await).unwrap();
    assert_eq!(
        back["password"], "first-pass",
        "AWSCURRENT is the old version again"
    );
    let d = client
        .describe_secret()
        .secret_id("app/db")
        .send()
        .await
        .unwrap();
    let current = d
        .version_ids_to_stages()
        .unwrap()
        .iter()
        .find(|(_, s)| s.iter().any(|s| s == "AWSCURRENT"))
        .map(|(v, _)| v.clone())
        .unwrap();
    assert_eq!(snapshot.data["version"], current.as_str());

    // A plain-text secret is replaced whole.
    let plain = ResourceId::new("secretsmanager/secret/plain");
    c.execute(&Action::new("rotate_secret", plain))
        .await
        .unwrap();
    let v = current_value(&client, "plain").await;
    assert_ne!(v, "plain-first");
    assert_eq!(v.len(), 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_rotation_goes_through_rotate_secret() {
    let moto = Moto::start();
    let (client, c) = setup(&moto).await;
    client
        .create_secret()
        .name("app/api")
        .secret_string("api-first")
        .send()
        .await
        .unwrap();
    // Configure rotation. moto has no Lambda to run it, so this first call
    // fails, but the secret keeps its rotation function and schedule, as
    // DescribeSecret then shows.
    let _ = client
        .rotate_secret()
        .secret_id("app/api")
        .rotation_lambda_arn("arn:aws:lambda:us-east-1:123456789012:function:rotate")
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .send()
        .await;
    let id = ResourceId::new("secretsmanager/secret/app/api");
    let all = c.list_resources(&Scope::default()).await.unwrap();
    assert_eq!(all[0].attributes["rotation_enabled"], "true");
    let snapshot = c.snapshot(&id).await.unwrap();
    let before = snapshot.data["version"].as_str().unwrap().to_string();

    let outcome = c
        .execute(&Action::new("rotate_secret", id.clone()))
        .await
        .unwrap();
    assert!(
        outcome.steps.iter().any(|s| s.contains("RotateSecret")),
        "{outcome:?}"
    );
    let d = client
        .describe_secret()
        .secret_id("app/api")
        .send()
        .await
        .unwrap();
    assert!(d.last_rotated_date().is_some(), "RotateSecret ran");
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages[&before], vec!["AWSPREVIOUS".to_string()]);

    c.restore(&snapshot).await.unwrap();
    assert_eq!(current_value(&client, "app/api").await, "api-first");
}
