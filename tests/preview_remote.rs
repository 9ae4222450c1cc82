//! A remote console shows the same preview as the local one: it rides on the
//! `remediation_previewed` event, so an approver attached over `serve` sees the
//! change as current → new before approving. Runs the real binary serving the demo.

use shieldops::event::EventKind;
use shieldops::remote::auth::Role;

mod remote_support;
use remote_support::{Console, Server, WEEKDAY_START};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_approver_sees_the_change_before_approving() {
    let server = Server::start(
        &[("alice", Role::Approver)],
        &["--speed", "25", "--start", WEEKDAY_START],
    );
    let mut console = Console::attach(&server.opts("alice")).await.unwrap();
    console
        .until(60, "a remediation awaiting approval", |s| {
            !s.approval_queue().is_empty()
        })
        .await;
    let rem = console.state.approval_queue()[0].clone();
    let preview = rem
        .preview
        .as_ref()
        .expect("the preview reached the console");
    assert!(!preview.changes.is_empty());
    // The demo's OOM fix: the live 256Mi limit and the value the action sets.
    let new = &rem.action.params["memory_limit_mib"];
    assert_eq!(preview.lines(), [format!("memory limit: 256Mi → {new}Mi")]);
    assert_eq!(
        console.count(|k| matches!(k, EventKind::RemediationPreviewed { remediation, .. } if *remediation == rem.id)),
        1
    );
}
