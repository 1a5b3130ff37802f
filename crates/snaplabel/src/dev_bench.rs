//! `snaplabel dev-bench`: latency from "upload complete" to "result visible to HEAD",
//! throughput and memory under load, and the gallery's answers (search, label counts, export)
//! for a guest with many uploads, against `snaplabel dev` started as a child process on free
//! ports (so its memory is measured apart from this client's).

use clap::Args;
use snaplabel_dev::client::{GuestClient, Polling};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct DevBenchArgs {
    /// The photo to upload (default: a generated 12 MP phone-size JPEG).
    #[arg(long)]
    pub photo: Option<PathBuf>,
    /// Sequential uploads for the latency figures.
    #[arg(long, default_value_t = 30)]
    pub sequential: usize,
    /// Uploads in flight at once for the load figures.
    #[arg(long, default_value_t = 200)]
    pub concurrent: usize,
    /// Uploads the guest has in all when its gallery is searched (topped up after the load
    /// figures; 0 skips the gallery figures).
    #[arg(long, default_value_t = 1000)]
    pub gallery: usize,
    #[arg(long, env = "SNAPLABEL_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[(((p / 100.0) * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)]
}

pub fn run(args: DevBenchArgs) -> anyhow::Result<ExitCode> {
    let photo = match &args.photo {
        Some(p) => std::fs::read(p)?,
        None => std::fs::read(
            crate::bench::phone_photos(1, crate::bench::Chroma::Half)?.join("phone-00.jpg"),
        )?,
    };
    let photo = bytes::Bytes::from(photo);
    let free_port = snaplabel_localaws::server::free_loopback_port;
    let (port, s3_port) = (free_port()?, free_port()?);
    let data = std::env::temp_dir().join(format!("snaplabel-dev-bench-{}", std::process::id()));
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([
            "dev",
            "--port",
            &port.to_string(),
            "--s3-port",
            &s3_port.to_string(),
            // One benchmark guest uploads far more than a person's hourly quota.
            "--uploads-per-hour",
            "1000000",
            "--data-dir",
        ])
        .arg(&data);
    if let Some(dir) = &args.model_dir {
        command.arg("--model-dir").arg(dir);
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = child.id();
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async move {
        let app_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{app_url}/healthz")).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "snaplabel dev did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let client = GuestClient::connect(&app_url).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        // One upload at a time is polled tightly (the latency figure); under load every client
        // polls like the browser app does.
        let upload = |name: String, polling: Polling| {
            let (client, photo) = (client.clone(), photo.clone());
            async move {
                let created = client.upload(&name, "image/jpeg", photo).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let put_done = Instant::now();
                client.wait_result(&created, polling).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let waited = put_done.elapsed().as_secs_f64() * 1e3;
                // Where the time went inside the label handler (read after the clock stopped).
                let doc = client.result(&created, Polling::tight(Duration::from_secs(10))).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let stage = |name: &str| doc["timings_ms"][name].as_f64().unwrap_or(f64::NAN);
                Ok::<(f64, [f64; 3]), anyhow::Error>((waited, [stage("download"), stage("label"), stage("total")]))
            }
        };
        println!("photo: {:.1} MB JPEG", photo.len() as f64 / 1e6);

        // Warm-up, then one upload at a time.
        let tight = Polling::tight(Duration::from_secs(600));
        upload("warm-up.jpg".into(), tight).await?;
        let mut latencies = Vec::new();
        let mut stages: [Vec<f64>; 3] = Default::default();
        for i in 0..args.sequential {
            let (waited, inside) = upload(format!("seq-{i}.jpg"), tight).await?;
            latencies.push(waited);
            for (all, one) in stages.iter_mut().zip(inside) {
                all.push(one);
            }
        }
        println!(
            "upload complete → result visible to HEAD (polled every 5 ms), one at a time ({} uploads): p50 {:.0} ms, p95 {:.0} ms",
            latencies.len(),
            percentile(&mut latencies, 50.0),
            percentile(&mut latencies, 95.0)
        );
        let [download, label, total] = &mut stages;
        println!(
            "  inside the label handler, p50: download {:.0} ms, label {:.0} ms, total {:.0} ms (the rest is notification, queue, result PUT and polling)",
            percentile(download, 50.0),
            percentile(label, 50.0),
            percentile(total, 50.0)
        );

        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..args.concurrent {
            tasks.push(tokio::spawn(upload(
                format!("load-{i}.jpg"),
                Polling::backoff(Duration::from_secs(600)),
            )));
        }
        let mut waits = Vec::new();
        for t in tasks {
            waits.push(t.await??.0);
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{} uploads in flight at once: all labeled in {secs:.1} s ({:.1} images/s); upload → result p50 {:.0} ms, p95 {:.0} ms",
            args.concurrent,
            args.concurrent as f64 / secs,
            percentile(&mut waits, 50.0),
            percentile(&mut waits, 95.0)
        );

        let uploaded = 1 + args.sequential + args.concurrent;
        if args.gallery > 0 {
            let top_up = args.gallery.saturating_sub(uploaded);
            let mut tasks = Vec::new();
            for i in 0..top_up {
                tasks.push(tokio::spawn(upload(
                    format!("gallery-{i}.jpg"),
                    Polling::backoff(Duration::from_secs(1200)),
                )));
                // At most 100 in flight: the rest wait for a slot, as the app's queue does.
                if tasks.len() >= 100 {
                    tasks.remove(0).await??;
                }
            }
            for t in tasks {
                t.await??;
            }
            gallery_figures(&client, uploaded.max(args.gallery)).await?;
        }
        Ok(())
    });
    // The gallery index as stored (the local S3 keeps objects as files).
    for entry in walkdir::WalkDir::new(&data).into_iter().flatten() {
        if entry.file_name() == "gallery.json"
            && let Ok(meta) = entry.metadata()
        {
            println!("gallery index: {:.0} KB", meta.len() as f64 / 1024.0);
        }
    }
    if let Some(mb) = crate::label::peak_rss_mb_at(&format!("/proc/{pid}/status")) {
        println!("peak resident memory of the whole `snaplabel dev` stack: {mb:.0} MB");
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&data);
    result.map(|()| ExitCode::SUCCESS)
}

/// Times the gallery's answers for a guest with `uploads` labeled photos, one request at a time
/// (each from request to the whole answer read): the search a person types, a chip, the label
/// counts, an export.
async fn gallery_figures(client: &GuestClient, uploads: usize) -> anyhow::Result<()> {
    let err = |e: snaplabel_dev::client::ClientError| anyhow::anyhow!("{e}");
    let (_, labels) = client
        .api(reqwest::Method::GET, "/api/labels", &[], None)
        .await
        .map_err(err)?;
    anyhow::ensure!(
        labels["uploads"].as_u64() == Some(uploads as u64),
        "the gallery holds {} uploads, not {uploads}",
        labels["uploads"]
    );
    let top = labels["labels"][0]["name"]
        .as_str()
        .unwrap_or("Sky")
        .to_string();
    let typed = top.to_lowercase();
    let prefix: String = typed.chars().take(3).collect();
    let timed = |path: &'static str, query: Vec<(&'static str, String)>| async move {
        let mut ms = Vec::new();
        let mut found = 0;
        for _ in 0..20 {
            let started = Instant::now();
            let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, answer) = client
                .api(reqwest::Method::GET, path, &query, None)
                .await
                .map_err(err)?;
            ms.push(started.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(status == 200, "{path} answered {status}: {answer}");
            found = answer["total"]
                .as_u64()
                .unwrap_or(answer["uploads"].as_u64().unwrap_or(0));
        }
        Ok::<(f64, f64, u64), anyhow::Error>((
            percentile(&mut ms, 50.0),
            percentile(&mut ms, 95.0),
            found,
        ))
    };
    println!(
        "a guest with {uploads} labeled uploads (each request timed to its whole answer, 20 times):"
    );
    for (what, path, query) in [
        (
            format!("search {typed:?}"),
            "/api/search",
            vec![("q", typed.clone())],
        ),
        (
            format!("search {prefix:?} (typing)"),
            "/api/search",
            vec![("q", prefix.clone())],
        ),
        (
            format!("chip {top:?}"),
            "/api/search",
            vec![("label", top.clone())],
        ),
        ("label counts".to_string(), "/api/labels", vec![]),
    ] {
        let (p50, p95, found) = timed(path, query).await?;
        println!(
            "  {what}: p50 {p50:.0} ms, p95 {p95:.0} ms ({found} found, first page of 20 with URLs)"
        );
    }
    for format in ["csv", "ndjson"] {
        let started = Instant::now();
        let (status, export) = client
            .api(
                reqwest::Method::POST,
                "/api/exports",
                &[],
                Some(serde_json::json!({ "format": format })),
            )
            .await
            .map_err(err)?;
        anyhow::ensure!(status == 201, "export answered {status}: {export}");
        let made = started.elapsed().as_secs_f64() * 1e3;
        let body = client
            .http
            .get(export["url"].as_str().unwrap_or_default())
            .send()
            .await?
            .bytes()
            .await?;
        println!(
            "  export {format}: made in {made:.0} ms, {:.1} MB for {} uploads",
            body.len() as f64 / 1e6,
            export["uploads"]
        );
    }
    Ok(())
}
