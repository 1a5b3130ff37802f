//! The browser app's build without Trunk (`cargo build` → `wasm-bindgen` → `wasm-opt`), and the
//! browser the end-to-end tests drive. Trunk does the same build for `trunk serve`; this path
//! needs only tools that install in minutes.

use crate::{Result, cargo, home, output, repo_root, run_cmd, say, target_dir};
use anyhow::{Context, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Must equal the `wasm-bindgen` crate pinned in frontend/Cargo.toml (the CLI refuses others).
const WASM_BINDGEN_VERSION: &str = "0.2.130";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// npm `binaryen`: Debian's binaryen 108 mangles wasm-bindgen's externref table (the app then
/// dies at start-up with "WebAssembly.Table.set(): Argument 1 is invalid").
const BINARYEN_VERSION: &str = "132";
/// Features the Rust wasm32 target emits by default; wasm-opt must be told.
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-reference-types",
    "--enable-multivalue",
    "--enable-mutable-globals",
];

pub struct WebBuild {
    pub dist: PathBuf,
}

fn on_path(program: &str) -> Option<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
}

/// `apt-get install` of the given packages (one `apt-get update` first).
fn apt_install(packages: &[&str]) -> Result {
    say(&format!("installing {} (Debian)", packages.join(" ")));
    run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// The wasm target, the wasm-bindgen CLI at the pinned version, and wasm-opt (returned).
fn ensure_tools() -> Result<PathBuf> {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    if !targets.lines().any(|t| t.trim() == WASM_TARGET) {
        say(&format!("adding the {WASM_TARGET} target"));
        run_cmd(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    }
    let version = Command::new("wasm-bindgen")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if !version.contains(WASM_BINDGEN_VERSION) {
        say(&format!(
            "installing wasm-bindgen-cli {WASM_BINDGEN_VERSION} (about 6 minutes, once)"
        ));
        // No --locked: its lock file wants a webpki-roots release the registry does not have.
        run_cmd(Command::new("cargo").args([
            "install",
            "wasm-bindgen-cli",
            "--version",
            WASM_BINDGEN_VERSION,
        ]))?;
    }
    wasm_opt()
}

/// `wasm-opt` from npm `binaryen@132`, installed under `~/.cache/snaplabel/tools` (put its
/// `node_modules/.bin` on PATH for Trunk, whose Trunk.toml asks for `version_132`).
fn wasm_opt() -> Result<PathBuf> {
    let tools = home().join("tools");
    let bin = tools.join("node_modules/.bin/wasm-opt");
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if !version.contains(&format!("version_{BINARYEN_VERSION}")) {
        say(&format!(
            "installing wasm-opt (npm binaryen@{BINARYEN_VERSION})"
        ));
        fs::create_dir_all(&tools)?;
        run_cmd(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&tools)
                .arg(format!("binaryen@{BINARYEN_VERSION}")),
        )?;
    }
    Ok(bin)
}

/// Headless Chromium and its driver for the browser tests: `(chromium, chromedriver)`.
pub fn ensure_browser() -> Result<(PathBuf, PathBuf)> {
    if on_path("chromium").is_none() || on_path("chromedriver").is_none() {
        apt_install(&["chromium", "chromium-driver"])?;
    }
    let chromium = on_path("chromium").context("chromium is not on PATH after installing it")?;
    let driver =
        on_path("chromedriver").context("chromedriver is not on PATH after installing it")?;
    Ok((chromium, driver))
}

/// Builds the SPA into `<repo>/dist`: what `snaplabel dev` serves and what deploys to S3.
pub fn build() -> Result<WebBuild> {
    let wasm_opt = ensure_tools()?;
    let root = repo_root();
    let dist = root.join("dist");
    say("building the browser app (wasm32, profile `web`; about four minutes the first time)");
    run_cmd(cargo().args([
        "build",
        "--profile",
        "web",
        "--target",
        WASM_TARGET,
        "--package",
        "snaplabel-web",
        "--bin",
        "snaplabel-web",
    ]))?;
    let wasm = target_dir()
        .join(WASM_TARGET)
        .join("web/snaplabel-web.wasm");

    // Assemble in a fresh folder and swap it in, so a running `snaplabel dev` never serves a
    // half-written app.
    let staging = root.join("dist.partial");
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging)?;
    run_cmd(
        Command::new("wasm-bindgen")
            .args([
                "--target",
                "web",
                "--no-typescript",
                "--out-name",
                "snaplabel",
            ])
            .arg("--out-dir")
            .arg(&staging)
            .arg(&wasm),
    )?;
    let bg = staging.join("snaplabel_bg.wasm");
    run_cmd(
        Command::new(&wasm_opt)
            .arg("-Oz")
            .args(WASM_OPT_FEATURES)
            .arg(&bg)
            .arg("-o")
            .arg(&bg),
    )?;
    let frontend = root.join("frontend");
    fs::copy(frontend.join("style.css"), staging.join("style.css"))?;
    let html = fs::read_to_string(frontend.join("index.html"))?;
    fs::write(staging.join("index.html"), without_trunk(&html)?)?;
    // Started from a file, not an inline script: the app's Content-Security-Policy allows
    // scripts from its own origin only.
    fs::write(staging.join("boot.js"), BOOT_JS)?;
    let _ = fs::remove_dir_all(&dist);
    fs::rename(&staging, &dist)?;

    let bg = dist.join("snaplabel_bg.wasm");
    let wasm_bytes = fs::metadata(&bg)?.len();
    let wasm_gzip_bytes = gzip_size(&bg)?;
    say(&format!(
        "browser app in {}: snaplabel_bg.wasm {:.0} kB ({:.0} kB gzipped)",
        dist.display(),
        wasm_bytes as f64 / 1000.0,
        wasm_gzip_bytes as f64 / 1000.0
    ));
    Ok(WebBuild { dist })
}

const BOOT_JS: &str =
    "import init from \"./snaplabel.js\";\ninit({ module_or_path: \"./snaplabel_bg.wasm\" });\n";

/// Replaces Trunk's two asset links with what Trunk would emit for them (the start-up script as a
/// file, `boot.js`). Paths stay relative, so the app works under any prefix (S3 website,
/// CloudFront, `snaplabel dev`).
fn without_trunk(html: &str) -> Result<String> {
    let mut out = String::with_capacity(html.len());
    let mut replaced = 0;
    for line in html.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if trimmed.starts_with("<link data-trunk rel=\"rust\"") {
            out.push_str(&format!(
                "{indent}<link rel=\"modulepreload\" href=\"./snaplabel.js\" />\n\
                 {indent}<link rel=\"preload\" href=\"./snaplabel_bg.wasm\" as=\"fetch\" type=\"application/wasm\" crossorigin />\n\
                 {indent}<script type=\"module\" src=\"./boot.js\"></script>\n"
            ));
            replaced += 1;
        } else if trimmed.starts_with("<link data-trunk rel=\"css\"") {
            out.push_str(&format!(
                "{indent}<link rel=\"stylesheet\" href=\"./style.css\" />\n"
            ));
            replaced += 1;
        } else if trimmed.starts_with("<!-- Trunk builds") {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if replaced != 2 {
        bail!("frontend/index.html must have exactly one data-trunk rust link and one css link");
    }
    Ok(out)
}

fn gzip_size(path: &Path) -> Result<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .context("cannot run gzip")?;
    Ok(out.stdout.len() as u64)
}
