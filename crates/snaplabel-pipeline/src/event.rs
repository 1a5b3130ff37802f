//! S3 event notifications in AWS's JSON format, for emitters other than S3 itself
//! (`snaplabel dev`'s notifications, tests).

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use snaplabel_core::keys::encode_event_key;

/// One `ObjectCreated:Put` (or another `event_name`) record, exactly as S3 would send it: key
/// form-encoded, all fields S3 fills present.
pub fn object_created_record(
    bucket: &str,
    key: &str,
    size: u64,
    etag: Option<&str>,
    event_name: &str,
) -> S3EventRecord {
    let now = time::OffsetDateTime::now_utc();
    let event_time = now
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let record = serde_json::json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": { "principalId": "snaplabel-local" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": { "x-amz-request-id": "0", "x-amz-id-2": "0" },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "snaplabel-uploads",
            "bucket": {
                "name": bucket,
                "ownerIdentity": { "principalId": "snaplabel-local" },
                "arn": format!("arn:aws:s3:::{bucket}")
            },
            "object": {
                "key": encode_event_key(key),
                "size": size,
                "eTag": etag.map(|e| e.trim_matches('"')).unwrap_or_default(),
                "sequencer": format!("{:016X}", now.unix_timestamp_nanos() as u64)
            }
        }
    });
    serde_json::from_value(record).expect("the record template matches aws_lambda_events")
}

/// An event holding the given records.
pub fn event(records: Vec<S3EventRecord>) -> S3Event {
    let mut event = S3Event::default();
    event.records = records;
    event
}
