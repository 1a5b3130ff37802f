//! `snaplabel label`: files and folders in, labels out (a table, or NDJSON with `--json`).
//!
//! Decoding and inference overlap: worker threads read and decode the next images (decoding is
//! most of the work for big photos) while the main thread runs the networks on the current one.
//! Results are printed in input order as soon as they are ready.

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use snaplabel_core::detect::{DetectOptions, DominantColor, Feature};
use snaplabel_core::{ErrorBody, ErrorCode};
use snaplabel_imageio::{ImageError, Limits};
use snaplabel_vision::labeler::{LabelError, Labeled, Prepared};
use snaplabel_vision::{EngineKind, LoadOptions, LocalLabeler};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// Extensions picked up when walking folders (explicitly named files are always labeled).
const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "png", "webp", "gif", "bmp", "tif", "tiff",
];
/// Files bigger than this are refused unread.
const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Args, Debug, Clone)]
pub struct LabelArgs {
    /// Image files or folders (walked recursively for image extensions).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// One JSON object per image (NDJSON) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// At most this many labels per image (default: every label above --min-confidence, as
    /// Rekognition and the label function do).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_labels: Option<u32>,
    /// Drop labels below this confidence (0-100).
    #[arg(long, default_value_t = 55.0)]
    pub min_confidence: f32,
    /// Inference engine.
    #[arg(long, default_value = "ort", value_parser = EngineKind::from_str)]
    pub engine: EngineKind,
    /// Folder with the models (default: $SNAPLABEL_MODEL_DIR or ~/.cache/snaplabel/models).
    #[arg(long, env = "SNAPLABEL_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Refuse images with more pixels than this.
    #[arg(long, default_value_t = snaplabel_core::config::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Decoding threads (default: one per core).
    #[arg(long)]
    pub jobs: Option<usize>,
}

/// Lists the images to label: named files as given, folders walked in name order.
pub fn collect(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        // Sorted, so the output order is the same on every run and machine.
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            match entry {
                Ok(entry) if entry.file_type().is_file() && has_image_extension(entry.path()) => {
                    out.push(entry.into_path())
                }
                Ok(_) => {}
                // An unreadable folder is reported as such when labeled.
                Err(e) => out.extend(e.path().map(Path::to_path_buf)),
            }
        }
    }
    out
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn read_image(path: &Path) -> Result<Vec<u8>, ImageError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if meta.is_dir() {
        return Err(ImageError::new(
            ErrorCode::UnsupportedFormat,
            format!("{} is a folder that cannot be read", path.display()),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ImageError::new(
            ErrorCode::TooLarge,
            format!(
                "the file is {} bytes; at most {MAX_FILE_BYTES} are read",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, e: std::io::Error) -> ImageError {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        ErrorCode::ObjectMissing
    } else {
        ErrorCode::StorageFailed
    };
    ImageError::new(code, format!("cannot read {}: {e}", path.display()))
}

/// One image's outcome.
pub struct Outcome {
    pub path: PathBuf,
    pub result: Result<Labeled, ErrorBody>,
}

/// Labels `files` with overlapping decode and inference, calling `emit` in input order.
pub fn label_files(
    labeler: &LocalLabeler,
    files: &[PathBuf],
    options: &DetectOptions,
    jobs: usize,
    mut emit: impl FnMut(Outcome),
) {
    let limits = labeler.limits();
    let next = AtomicUsize::new(0);
    // Bounded: decoded images wait here for the networks, never more than a couple per worker.
    let (tx, rx) = mpsc::sync_channel::<(usize, Result<Prepared, ImageError>)>(jobs * 2);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let prepared =
                        read_image(path).and_then(|bytes| LocalLabeler::prepare(&bytes, &limits));
                    if tx.send((i, prepared)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, Result<Labeled, ErrorBody>> = BTreeMap::new();
        let mut next_out = 0;
        for (i, prepared) in rx {
            let result = prepared.map_err(ErrorBody::from).and_then(|prepared| {
                labeler
                    .infer_and_describe(prepared, options)
                    .map_err(|e| LabelError::from(e).into())
            });
            pending.insert(i, result);
            while let Some(result) = pending.remove(&next_out) {
                emit(Outcome {
                    path: files[next_out].clone(),
                    result,
                });
                next_out += 1;
            }
        }
    });
}

pub fn run(args: LabelArgs) -> anyhow::Result<ExitCode> {
    let files = collect(&args.paths);
    let model = snaplabel_pipeline::wiring::model_settings_from_env();
    let model_dir = args.model_dir.clone().unwrap_or(model.dir);
    let mut load = LoadOptions::new(model_dir, args.engine);
    load.ort_library = model.ort_library;
    load.limits = Limits::new(args.max_pixels);
    let labeler = LocalLabeler::load(&load).context("loading the model")?;
    let options = DetectOptions {
        max_labels: args.max_labels,
        min_confidence: Some(args.min_confidence),
        features: vec![Feature::GeneralLabels, Feature::ImageProperties],
        settings: None,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
        .max(1);

    let bar = if files.len() > 1 {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} images, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut failed = 0usize;
    let stdout = std::io::stdout();
    label_files(&labeler, &files, &options, jobs, |outcome| {
        if outcome.result.is_err() {
            failed += 1;
        }
        let text = if args.json {
            json_line(&outcome)
        } else {
            table(&outcome)
        };
        bar.suspend(|| {
            let mut out = stdout.lock();
            let _ = writeln!(out, "{text}");
        });
        bar.inc(1);
    });
    bar.finish_and_clear();
    if files.len() > 1 {
        let secs = started.elapsed().as_secs_f64();
        let peak = peak_rss_mb()
            .map(|mb| format!(", peak memory {mb:.0} MB"))
            .unwrap_or_default();
        eprintln!(
            "{} images in {secs:.2} s ({:.1} images/s), {failed} failed{peak}",
            files.len(),
            files.len() as f64 / secs.max(1e-9)
        );
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn json_line(outcome: &Outcome) -> String {
    let file = outcome.path.display().to_string();
    let value = match &outcome.result {
        Ok(labeled) => {
            let mut v = json!({
                "file": file,
                "status": "ok",
                "image": {"width": labeled.probe.width, "height": labeled.probe.height, "format": labeled.probe.format},
                "timings_ms": {
                    "decode": labeled.timings.decode,
                    "preprocess": labeled.timings.preprocess,
                    "inference": labeled.timings.inference,
                    "postprocess": labeled.timings.postprocess,
                },
            });
            if let (Some(obj), Ok(serde_json::Value::Object(response))) =
                (v.as_object_mut(), serde_json::to_value(&labeled.response))
            {
                obj.extend(response);
            }
            v
        }
        Err(error) => json!({"file": file, "status": "error", "error": error}),
    };
    value.to_string()
}

fn table(outcome: &Outcome) -> String {
    let file = outcome.path.display();
    match &outcome.result {
        Err(e) => format!("{file}\n  error {}: {}\n", e.code, e.message),
        Ok(labeled) => {
            let p = &labeled.probe;
            let mut out = format!(
                "{file}  ({}×{} {}, {:.0} ms)\n",
                p.width,
                p.height,
                p.format,
                labeled.timings.total()
            );
            if labeled.response.labels.is_empty() {
                out.push_str("  (no label above the confidence threshold)\n");
            }
            for label in &labeled.response.labels {
                let parents: Vec<&str> = label.parents.iter().map(|p| p.name.as_str()).collect();
                let boxes = match label.instances.len() {
                    0 => String::new(),
                    1 => "  [1 box]".into(),
                    n => format!("  [{n} boxes]"),
                };
                let parents = if parents.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", parents.join(", "))
                };
                out.push_str(&format!(
                    "  {:>5.1}%  {}{parents}{boxes}\n",
                    label.confidence, label.name
                ));
            }
            if let Some(colors) = labeled
                .response
                .image_properties
                .as_ref()
                .map(|p| &p.dominant_colors)
                .filter(|c| !c.is_empty())
            {
                out.push_str(&format!("  colours: {}\n", colour_summary(colors)));
            }
            out
        }
    }
}

/// The three largest colours by simple name: shades that simplify to one name read as one colour
/// ("grey 50%", not three greys); the JSON keeps every shade.
fn colour_summary(colors: &[DominantColor]) -> String {
    let mut shares: Vec<(&str, f32)> = Vec::new();
    for c in colors {
        match shares
            .iter_mut()
            .find(|(name, _)| *name == c.simplified_color)
        {
            Some((_, share)) => *share += c.pixel_percent,
            None => shares.push((&c.simplified_color, c.pixel_percent)),
        }
    }
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    let names: Vec<String> = shares
        .iter()
        .take(3)
        .map(|(name, share)| format!("{name} {share:.0}%"))
        .collect();
    names.join(", ")
}

/// This process's peak resident memory (VmHWM), in MB, where /proc tells it.
pub fn peak_rss_mb() -> Option<f64> {
    peak_rss_mb_at("/proc/self/status")
}

/// Peak resident memory (VmHWM) from a `/proc/<pid>/status` file, in MB.
pub fn peak_rss_mb_at(status_file: &str) -> Option<f64> {
    let status = std::fs::read_to_string(status_file).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colour(simplified: &str, percent: f32) -> DominantColor {
        DominantColor {
            red: 0,
            blue: 0,
            green: 0,
            hex_code: "#000000".into(),
            css_color: "black".into(),
            simplified_color: simplified.into(),
            pixel_percent: percent,
        }
    }

    #[test]
    fn shades_of_one_colour_are_summed_and_the_largest_three_shown() {
        let colors = [
            colour("grey", 22.0),
            colour("blue", 30.0),
            colour("grey", 14.0),
            colour("white", 5.0),
            colour("grey", 14.0),
            colour("red", 6.0),
        ];
        assert_eq!(colour_summary(&colors), "grey 50%, blue 30%, red 6%");
        assert_eq!(colour_summary(&[]), "");
    }
}
