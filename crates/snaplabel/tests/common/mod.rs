//! A `snaplabel dev` in its own process, for the tests that attack it over HTTP.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MB: u64 = 1024 * 1024;

/// A `snaplabel dev` in its own process and data folder, its log captured; killed when dropped.
pub struct Dev {
    pub child: Child,
    pub app: String,
    pub s3: String,
    pub data: tempfile::TempDir,
    pub log: PathBuf,
    ports: (u16, u16),
    extra: Vec<String>,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    data: &std::path::Path,
    (port, s3_port): (u16, u16),
    extra: &[String],
    log: &PathBuf,
) -> Child {
    Command::new(env!("CARGO_BIN_EXE_snaplabel"))
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--s3-port",
            &s3_port.to_string(),
        ])
        .arg("--data-dir")
        .arg(data.join("data"))
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap(),
        )
        .spawn()
        .unwrap()
}

impl Dev {
    pub async fn start(extra: &[&str]) -> Dev {
        let data = tempfile::tempdir().unwrap();
        let free = || snaplabel_localaws::server::free_loopback_port().unwrap();
        let ports = (free(), free());
        let log = data.path().join("dev.log");
        let extra: Vec<String> = extra.iter().map(|a| a.to_string()).collect();
        let child = spawn(data.path(), ports, &extra, &log);
        let dev = Dev {
            child,
            app: format!("http://127.0.0.1:{}", ports.0),
            s3: format!("http://127.0.0.1:{}", ports.1),
            data,
            log,
            ports,
            extra,
        };
        dev.wait_ready().await;
        dev
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{}/healthz", self.app)).await.is_err() {
            assert!(Instant::now() < deadline, "snaplabel dev did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process outright (SIGKILL, no chance to clean up).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts the process again, on the same data folder and ports.
    pub async fn restart(&mut self) {
        self.child = spawn(self.data.path(), self.ports, &self.extra, &self.log);
        self.wait_ready().await;
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    /// A field of /proc/PID/status in bytes (`VmRSS`, `VmHWM`).
    pub fn memory(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// Starts measuring the peak resident memory from now.
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }

    /// The data folder `snaplabel dev` keeps its state in.
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// The key pair `snaplabel dev` made for its data folder.
    pub fn credentials(&self) -> snaplabel_localaws::Credentials {
        snaplabel_localaws::Credentials::for_data_dir(&self.data_dir()).unwrap()
    }

    /// An SDK configuration signing with the stack's credentials.
    pub fn sdk(&self) -> aws_config::SdkConfig {
        let credentials = self.credentials();
        snaplabel_pipeline::aws::static_sdk_config(
            &credentials.access_key,
            &credentials.secret_key,
            snaplabel_dev::REGION,
        )
    }
}
