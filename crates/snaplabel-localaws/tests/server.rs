//! The local servers hang up on clients that stop sending mid-request (slowloris).

use snaplabel_localaws::server::{bind_loopback, serve_with_read_timeout};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_client_that_stops_sending_is_disconnected() {
    let router = axum::Router::new().route("/", axum::routing::get(|| async { "hello" }));
    let server = serve_with_read_timeout(
        bind_loopback(0).await.unwrap(),
        router,
        Duration::from_millis(300),
    )
    .unwrap();
    let address = server.addr();
    // A whole request is answered.
    let mut whole = tokio::net::TcpStream::connect(address).await.unwrap();
    whole
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    whole.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("hello"), "{answer}");
    // Half the headers, then silence: the connection is closed, without an answer.
    let mut slow = tokio::net::TcpStream::connect(address).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf))
        .await
        .expect("the server hung up within its read timeout");
    assert!(read.is_err() || buf.is_empty() || !String::from_utf8_lossy(&buf).contains("hello"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_not_waited_for() {
    let router = axum::Router::new().route(
        "/upload",
        axum::routing::post(|body: bytes::Bytes| async move { format!("got {}", body.len()) }),
    );
    let server = serve_with_read_timeout(
        bind_loopback(0).await.unwrap(),
        router,
        Duration::from_millis(300),
    )
    .unwrap();
    let mut stalled = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stalled
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\nonly a little",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut buf))
        .await
        .expect("the server hung up within its read timeout");
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        !answer.contains("got"),
        "the handler saw a whole body: {answer}"
    );
    assert!(
        (Duration::from_millis(250)..Duration::from_secs(2)).contains(&started.elapsed()),
        "closed after {:?}",
        started.elapsed()
    );
}
