//! `snaplabel dev` killed with SIGKILL while uploads are queued loses none of them.

mod common;

use bytes::Bytes;
use common::Dev;
use snaplabel_dev::client::{GuestClient, Polling};
use std::time::Duration;

#[tokio::test]
async fn sigkill_mid_queue_then_restart_labels_every_upload() {
    let mut dev = Dev::start(&[]).await;
    let me = GuestClient::connect(&dev.app).await.unwrap();

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
    dev.kill();
    let labeled = created
        .iter()
        .filter(|c| {
            dev.data_dir()
                .join("s3/snaplabel")
                .join(c["result"]["key"].as_str().unwrap())
                .exists()
        })
        .count();
    eprintln!("{labeled} of 12 labeled before the kill");

    dev.restart().await;
    for c in &created {
        let doc = me
            .result(c, Polling::backoff(Duration::from_secs(120)))
            .await
            .unwrap_or_else(|e| panic!("an upload was lost ({}): {e}", c["id"]));
        assert_eq!(doc["status"], "ok", "{doc}");
    }
}
