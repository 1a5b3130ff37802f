//! `snaplabel dev` killed with SIGKILL while uploads are queued loses none of them.

use bytes::Bytes;
use snaplabel_dev::client::{GuestClient, Polling};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(data: &std::path::Path, port: u16, s3_port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_snaplabel"))
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--s3-port",
            &s3_port.to_string(),
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(app: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("{app}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "snaplabel dev did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigkill_mid_queue_then_restart_labels_every_upload() {
    let dir = tempfile::tempdir().unwrap();
    let free_port = || snaplabel_localaws::server::free_loopback_port().unwrap();
    let (port, s3_port) = (free_port(), free_port());
    let app = format!("http://127.0.0.1:{port}");
    let mut child = start(dir.path(), port, s3_port);
    wait_ready(&app).await;
    let me = GuestClient::connect(&app).await.unwrap();

    let photo = Bytes::from(snaplabel_fixtures::photo("grace_hopper.jpg"));
    let mut created = Vec::new();
    for i in 0..12 {
        created.push(
            me.upload(&format!("hopper-{i}.jpg"), "image/jpeg", photo.clone())
                .await
                .unwrap(),
        );
    }
    // Killed while (most of) the queue is still waiting.
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let labeled = created
        .iter()
        .filter(|c| {
            dir.path()
                .join("s3/snaplabel")
                .join(c["result"]["key"].as_str().unwrap())
                .exists()
        })
        .count();
    eprintln!("{labeled} of 12 labeled before the kill");

    let mut child = start(dir.path(), port, s3_port);
    wait_ready(&app).await;
    for c in &created {
        let doc = me
            .result(c, Polling::backoff(Duration::from_secs(120)))
            .await
            .unwrap_or_else(|e| panic!("an upload was lost ({}): {e}", c["id"]));
        assert_eq!(doc["status"], "ok", "{doc}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
