//! Harness for the browser tests: the built SPA served by a real `snaplabel dev` stack on
//! ephemeral loopback ports, and headless Chromium driven over WebDriver (chromedriver, which
//! only accepts local connections).
//!
//! `cargo xtask test` builds the app and installs Chromium, then passes their locations in
//! `SNAPLABEL_WEB_DIST`, `SNAPLABEL_CHROMIUM` and `SNAPLABEL_CHROMEDRIVER`; without them the
//! harness looks for `./dist` and the programs on PATH, and fails with a clear message otherwise.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use snaplabel_dev::{DevConfig, DevStack};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, MutexGuard};

pub use fantoccini;

/// The checkout under test: Cargo sets `CARGO_MANIFEST_DIR` when it runs the tests, which beats
/// the path compiled in when several checkouts share one build directory.
fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../..")
}

/// The built browser app.
pub fn dist() -> PathBuf {
    let dist = std::env::var_os("SNAPLABEL_WEB_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("dist"));
    assert!(
        dist.join("index.html").is_file() && dist.join("snaplabel_bg.wasm").is_file(),
        "the browser app is not built in {}: run `cargo xtask test` (or `cargo xtask web`)",
        dist.display()
    );
    dist
}

pub fn photo(name: &str) -> PathBuf {
    snaplabel_fixtures::photos()
        .join(name)
        .canonicalize()
        .expect("fixture photo")
}

/// One browser test at a time: each runs Chromium and a whole labeling stack, and two cores
/// are better spent finishing one than time-slicing several against their deadlines.
async fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// One browser test's world: its turn, a fresh `snaplabel dev` serving the built app, and
/// Chromium on the app's page.
pub struct Session {
    pub browser: Browser,
    pub stack: DevStack,
    data: tempfile::TempDir,
    turn: MutexGuard<'static, ()>,
}

impl Session {
    /// Opens the app in a fresh stack; `adjust` changes the stack's configuration first.
    pub async fn open(adjust: impl FnOnce(&mut DevConfig)) -> Session {
        let turn = one_at_a_time().await;
        let data = tempfile::tempdir().unwrap();
        let stack = start_stack(data.path(), adjust).await;
        let browser = Browser::launch().await;
        browser.client.goto(&stack.app_url).await.unwrap();
        Session {
            browser,
            stack,
            data,
            turn,
        }
    }

    /// The stack's data folder (`snaplabel dev --data-dir`).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// Ends the browser session, then the stack (the data folder and the turn go last).
    pub async fn close(self) {
        let Session {
            browser,
            stack,
            data,
            turn,
        } = self;
        browser.quit().await;
        stack.shutdown().await;
        drop((data, turn));
    }
}

/// `snaplabel dev` on ephemeral ports serving the built app, with its data in `data`.
async fn start_stack(data: &Path, adjust: impl FnOnce(&mut DevConfig)) -> DevStack {
    let mut config = DevConfig::new(data.to_path_buf());
    config.model = snaplabel_pipeline::wiring::model_settings_from_env();
    config.port = 0;
    config.s3_port = 0;
    config.static_dir = Some(dist());
    adjust(&mut config);
    DevStack::start(config)
        .await
        .expect("the dev stack starts (models come from `cargo xtask test`)")
}

/// Headless Chromium behind its own chromedriver.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: tempfile::TempDir,
    /// Where the browser saves downloads, without asking.
    pub downloads: tempfile::TempDir,
}

/// `$variable`, else `name` looked up on PATH (chromedriver wants an absolute browser path).
fn program(variable: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(variable).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is not installed: run `cargo xtask test`, which installs Chromium")
        })
}

impl Browser {
    pub async fn launch() -> Browser {
        let driver_path = program("SNAPLABEL_CHROMEDRIVER", "chromedriver");
        let chromium = program("SNAPLABEL_CHROMIUM", "chromium");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let port = snaplabel_localaws::server::free_loopback_port().expect("a free loopback port");
        let mut command = Command::new(&driver_path);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let driver = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): run `cargo xtask test`, which installs Chromium",
                driver_path.display()
            )
        });
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("chromedriver at {url} did not start Chromium: {e}"));
        Browser {
            client,
            driver,
            profile,
            downloads,
        }
    }

    /// Waits for a finished download named `name` and reads it.
    pub async fn downloaded(&self, name: &str, timeout: Duration) -> String {
        let path = self.downloads.path().join(name);
        let deadline = Instant::now() + timeout;
        loop {
            // Chromium writes `name.crdownload` and renames it when the download is complete.
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            if Instant::now() > deadline {
                let present: Vec<_> = std::fs::read_dir(self.downloads.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name())
                    .collect();
                panic!("no download {name} within {timeout:?}; the folder holds {present:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the first element matching `css`.
    pub async fn wait(&self, css: &str, timeout: Duration) -> Element {
        match self
            .client
            .wait()
            .at_most(timeout)
            .every(Duration::from_millis(50))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let page = self.client.source().await.unwrap_or_default();
                panic!("no {css:?} within {timeout:?} ({e}); the page was:\n{page}")
            }
        }
    }

    /// Waits until `count` elements match `css`.
    /// Waits until exactly `count` elements match `css` (none, for `0`).
    pub async fn wait_exactly(&self, css: &str, count: usize, timeout: Duration) -> Vec<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.all(css).await;
            if found.len() == count {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{} {css:?}, not {count}, after {timeout:?}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_count(&self, css: &str, count: usize, timeout: Duration) -> Vec<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.all(css).await;
            if found.len() >= count {
                return found;
            }
            if Instant::now() > deadline {
                let page = self.client.source().await.unwrap_or_default();
                panic!(
                    "{} of {count} {css:?} within {timeout:?}; the page was:\n{page}",
                    found.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_default()
    }

    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for element in self.all(css).await {
            out.push(element.text().await.unwrap_or_default());
        }
        out
    }

    /// Focuses the row of the label `name` in the first labeled card (as a keyboard user would;
    /// hovering does the same), which highlights its boxes, and waits until a box is highlighted.
    /// The focus event is also sent by hand: a headless window that does not have the system's
    /// focus moves `document.activeElement` without always firing it.
    pub async fn focus_label(&self, name: &str, timeout: Duration) -> Element {
        self.client
            .execute(
                "const row = [...document.querySelectorAll('.card.done .label.has-box')]
                     .find(r => r.querySelector('.label-name').textContent === arguments[0]);
                 row.focus();
                 row.dispatchEvent(new FocusEvent('focus'));",
                vec![serde_json::Value::from(name)],
            )
            .await
            .unwrap_or_else(|e| panic!("no boxed label {name:?} to focus: {e}"));
        self.wait(".card.done svg.boxes .box.active", timeout).await
    }

    /// Chooses files in the page's file input, as the file picker would.
    pub async fn choose_files(&self, files: &[PathBuf]) {
        let input = self.wait("#file-input", Duration::from_secs(20)).await;
        // The button is enabled once config.json has loaded; choosing earlier would be refused.
        self.wait(".drop button:not([disabled])", Duration::from_secs(20))
            .await;
        let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        input.send_keys(&paths.join("\n")).await.unwrap();
    }

    /// Saves a screenshot in `<build dir>/debug/e2e-screens` (for the record) and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        // The test binary lives in <build dir>/debug/deps.
        let exe = std::env::current_exe().unwrap();
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join("e2e-screens");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    pub async fn quit(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.driver.kill();
        // A test that panicked never closed its session: end the browser it left behind, found
        // by its unique profile folder (nothing else on the machine has that in its command line).
        let _ = Command::new("pkill")
            .args(["-KILL", "-f"])
            .arg(self.profile.path())
            .status();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}
