//! Serving a router on a bound loopback listener with `axum::serve`, stopped when its handle is
//! dropped.
//!
//! Connections whose client stops sending (a request's headers or body trickling in, the
//! "slowloris" way of holding connections open) are closed after [`READ_TIMEOUT`] of silence:
//! every read of the socket has that deadline (`tokio-io-timeout`), which hyper's own header
//! timeout would need a timer that `axum::serve` does not give it.

use axum::Router;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_io_timeout::TimeoutStream;

/// How long a connection may send nothing while a request is being read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server. Dropping the handle stops accepting connections.
pub struct ServerHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets requests in progress finish (for up to five seconds) and waits.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A listener whose connections time out reads after `READ_TIMEOUT`.
struct ReadTimeoutListener(TcpListener, Duration);

impl axum::serve::Listener for ReadTimeoutListener {
    type Io = Pin<Box<TimeoutStream<TcpStream>>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let mut stream = TimeoutStream::new(stream);
                    stream.set_read_timeout(Some(self.1));
                    return (Box::pin(stream), addr);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Serves `router` on `listener` until the returned handle is dropped or shut down.
pub fn serve(listener: TcpListener, router: Router) -> std::io::Result<ServerHandle> {
    serve_with_read_timeout(listener, router, READ_TIMEOUT)
}

/// [`serve`] with another read timeout (tests use a short one).
pub fn serve_with_read_timeout(
    listener: TcpListener,
    router: Router,
    read_timeout: Duration,
) -> std::io::Result<ServerHandle> {
    let addr = listener.local_addr()?;
    let (shutdown, mut stopped) = watch::channel(false);
    let listener = ReadTimeoutListener(listener, read_timeout);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.changed().await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "server stopped");
        }
    });
    Ok(ServerHandle {
        addr,
        shutdown,
        task: Some(task),
    })
}

/// Binds 127.0.0.1 on `port` (0 for any free port).
pub async fn bind_loopback(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await
}

/// A loopback port that was free a moment ago, for a server in another process (which may lose
/// the race for it; callers start that process right away).
pub fn free_loopback_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}
