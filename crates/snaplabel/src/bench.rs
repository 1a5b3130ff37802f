//! `snaplabel bench`: per-stage timings, images/s and peak memory for both engines, measured
//! against a straightforward Python + Pillow + ONNX Runtime labeler on the same folder.

use crate::label::{collect, label_files};
use anyhow::{Context, bail};
use clap::Args;
use image::{ImageEncoder, RgbImage};
use snaplabel_core::detect::{DetectOptions, Feature};
use snaplabel_vision::{EngineKind, LoadOptions, LocalLabeler};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Folder of photos to label (default: generated 12 MP phone-size JPEGs).
    #[arg(long)]
    pub folder: Option<PathBuf>,
    /// How many 12 MP photos to generate when no folder is given.
    #[arg(long, default_value_t = 16)]
    pub count: usize,
    /// Chroma subsampling of the generated photos: 420 (what phone cameras write) or 444 (full
    /// colour resolution: twice the blocks to decode, a harder case).
    #[arg(long, default_value = "420", value_parser = parse_chroma)]
    pub chroma: Chroma,
    /// Sequential passes over the folder for the per-stage figures.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Engines to measure (default: both).
    #[arg(long, value_parser = EngineKind::from_str)]
    pub engine: Vec<EngineKind>,
    /// A Python with Pillow and onnxruntime, to time tools/bench/yardstick.py on the same folder.
    #[arg(long)]
    pub yardstick_python: Option<PathBuf>,
    #[arg(long, env = "SNAPLABEL_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
}

/// Chroma subsampling of generated benchmark photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chroma {
    /// Colour at half the resolution both ways, as phone cameras write it.
    Half,
    /// Colour at full resolution.
    Full,
}

fn parse_chroma(s: &str) -> anyhow::Result<Chroma> {
    match s {
        "420" | "4:2:0" => Ok(Chroma::Half),
        "444" | "4:4:4" => Ok(Chroma::Full),
        other => anyhow::bail!("unknown chroma subsampling {other:?} (expected 420 or 444)"),
    }
}

/// The colour photos the benchmark set is made from, named so that a new fixture does not
/// change the set (and so the figures) on a fresh machine.
const BENCH_SOURCES: [&str; 6] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "grace_hopper.jpg",
    "motorcycle_left.png",
    "rocket.jpg",
];

/// Phone photos are 12 MP (4032×3024) JPEGs at high quality with sensor noise; made here from the
/// fixture photos, upscaled, with deterministic noise so they compress like real ones (about
/// 3 MB each, as phones write them).
pub fn phone_photos(count: usize, chroma: Chroma) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    let dir = home.join(match chroma {
        Chroma::Half => format!(".cache/snaplabel/bench-12mp-420-{count}"),
        Chroma::Full => format!(".cache/snaplabel/bench-12mp-{count}"),
    });
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    let sources: Vec<PathBuf> = BENCH_SOURCES
        .iter()
        .map(|name| snaplabel_fixtures::photos().join(name))
        .collect();
    if let Some(missing) = sources.iter().find(|s| !s.exists()) {
        bail!("fixture photo {} is missing", missing.display());
    }
    eprintln!("generating {count} 12 MP JPEGs in {} (once)", dir.display());
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..count {
        let source = &sources[i % sources.len()];
        let img = image::open(source)
            .with_context(|| source.display().to_string())?
            .into_rgb8();
        let mut big =
            image::imageops::resize(&img, 4032, 3024, image::imageops::FilterType::Triangle);
        for px in big.pixels_mut() {
            for c in px.0.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let noise = (seed % 13) as i32 - 6;
                *c = (*c as i32 + noise).clamp(0, 255) as u8;
            }
        }
        save_jpeg(&big, chroma, &dir.join(format!("phone-{i:02}.jpg")))?;
    }
    std::fs::write(dir.join(".complete"), b"")?;
    Ok(dir)
}

fn save_jpeg(img: &RgbImage, chroma: Chroma, path: &Path) -> anyhow::Result<()> {
    let mut out = Vec::new();
    match chroma {
        Chroma::Full => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92)
            .write_image(
                img.as_raw(),
                img.width(),
                img.height(),
                image::ExtendedColorType::Rgb8,
            )?,
        Chroma::Half => {
            let mut encoder = jpeg_encoder::Encoder::new(&mut out, 92);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
            encoder.encode(
                img.as_raw(),
                u16::try_from(img.width())?,
                u16::try_from(img.height())?,
                jpeg_encoder::ColorType::Rgb,
            )?;
        }
    }
    std::fs::write(path, out)?;
    Ok(())
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (values.len() - 1) as f64).round() as usize;
    values[rank.min(values.len() - 1)]
}

pub fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    let folder = match &args.folder {
        Some(f) => f.clone(),
        None => phone_photos(args.count, args.chroma)?,
    };
    let files = collect(std::slice::from_ref(&folder));
    if files.is_empty() {
        bail!("no images in {}", folder.display());
    }
    let bytes: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let mean_mb = bytes.iter().map(|b| b.len()).sum::<usize>() as f64 / bytes.len() as f64 / 1e6;
    println!(
        "benchmark folder: {} ({} images, {mean_mb:.1} MB each on average)",
        folder.display(),
        files.len()
    );
    let model = snaplabel_pipeline::wiring::model_settings_from_env();
    let model_dir = args.model_dir.clone().unwrap_or(model.dir);
    let engines = if args.engine.is_empty() {
        vec![EngineKind::Ort, EngineKind::Tract]
    } else {
        args.engine.clone()
    };
    let options = DetectOptions {
        features: vec![Feature::GeneralLabels, Feature::ImageProperties],
        ..Default::default()
    };
    let mut snaplabel_rate = None;

    for engine in engines {
        let labeler = LocalLabeler::load(&LoadOptions::new(model_dir.clone(), engine))
            .context("loading the model")?;
        labeler.label(&bytes[0], &options).context("warm-up")?;
        let (mut decode, mut preprocess, mut inference, mut post, mut total) =
            (vec![], vec![], vec![], vec![], vec![]);
        // Per inference job, in the order the labeler first ran them.
        let mut jobs_ms: Vec<(&'static str, Vec<f64>)> = Vec::new();
        for _ in 0..args.rounds.max(1) {
            for b in &bytes {
                let started = Instant::now();
                let labeled = labeler.label(b, &options)?;
                total.push(started.elapsed().as_secs_f64() * 1e3);
                decode.push(labeled.timings.decode);
                preprocess.push(labeled.timings.preprocess);
                inference.push(labeled.timings.inference);
                post.push(labeled.timings.postprocess);
                for (name, ms) in labeled.jobs_ms {
                    match jobs_ms.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, values)) => values.push(ms),
                        None => jobs_ms.push((name, vec![ms])),
                    }
                }
            }
        }
        println!(
            "\n{engine}: one image at a time, bytes → labels ({} runs)",
            total.len()
        );
        println!("  stage          p50 ms   p95 ms");
        for (name, values) in [
            ("decode", &mut decode),
            ("resize", &mut preprocess),
            ("inference", &mut inference),
            ("postprocess", &mut post),
            ("total", &mut total),
        ] {
            println!(
                "  {name:<12} {:>8.1} {:>8.1}",
                percentile(values, 50.0),
                percentile(values, 95.0)
            );
        }
        println!("  inference jobs, each alone on its lane (p50 ms, per run):");
        for (name, values) in &mut jobs_ms {
            println!("    {name:<26} {:>6.1}", percentile(values, 50.0));
        }
        let jobs = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let started = Instant::now();
        let mut failed = 0;
        label_files(&labeler, &files, &options, jobs, |o| {
            failed += o.result.is_err() as usize
        });
        let secs = started.elapsed().as_secs_f64();
        let rate = files.len() as f64 / secs;
        println!("  folder, decode overlapping inference: {rate:.1} images/s ({failed} failed)");
        if engine == EngineKind::Ort {
            snaplabel_rate = Some(rate);
        }
    }

    // Peak memory of the real command on the same folder.
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["label", "--json"])
        .arg(&folder)
        .arg("--model-dir")
        .arg(&model_dir)
        .output()?;
    let summary = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = summary.lines().rev().find(|l| l.contains("images in")) {
        println!("\n`snaplabel label --json` on the folder: {line}");
    }

    if let Some(python) = &args.yardstick_python {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tools/bench/yardstick.py");
        let out = Command::new(python)
            .arg(script)
            .arg(model_dir.join(snaplabel_vision::CLASSIFIER_FILE))
            .arg(&folder)
            .output()?;
        if !out.status.success() {
            bail!(
                "the yardstick failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let result: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let rate = result["images"].as_f64().unwrap_or(0.0)
            / result["seconds"].as_f64().unwrap_or(f64::MAX);
        println!(
            "\nyardstick (Python + Pillow + onnxruntime, classification only): {rate:.1} images/s"
        );
        if let Some(ours) = snaplabel_rate {
            println!(
                "snaplabel (ort, full labels + faces + properties) is {:.1}× as fast",
                ours / rate
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
