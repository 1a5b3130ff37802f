//! `cargo xtask lint-infra | deploy | destroy`: the AWS side. Only `deploy` and `destroy` talk to
//! AWS (with your credentials, through the AWS SAM and AWS CLIs from PyPI); `--dry-run` prints
//! what they would run.

use crate::{Result, repo_root, run_cmd, say, venv};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const CFN_LINT: &str = "cfn-lint==1.51.0";
const AWS_TOOLS: &[&str] = &["aws-sam-cli==1.170.0", "awscli==1.46.3"];

fn template() -> PathBuf {
    repo_root().join("infra/template.yaml")
}

/// cfn-lint on the template: any error or warning fails.
pub fn lint() -> Result {
    let python = venv("lint-venv", "cfn-lint", &[CFN_LINT])?;
    say("cfn-lint infra/template.yaml");
    run_cmd(
        Command::new(python.with_file_name("cfn-lint"))
            .arg("--")
            .arg(template()),
    )?;
    say("cfn-lint: no errors, no warnings");
    Ok(())
}

/// Which stack, where, and whether to only print the commands.
#[derive(clap::Args, Debug)]
pub struct StackArgs {
    /// The CloudFormation stack's name.
    #[arg(long, default_value = "snaplabel")]
    stack: String,
    /// The AWS region (default: your AWS configuration's).
    #[arg(long)]
    region: Option<String>,
    /// Print every command instead of running it.
    #[arg(long)]
    dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    #[command(flatten)]
    stack: StackArgs,
    /// Build for x86_64 instead of arm64 (Graviton).
    #[arg(long = "x86_64")]
    x86_64: bool,
    /// `local` (the embedded model) or `rekognition`.
    #[arg(long)]
    labeler: Option<String>,
    /// The browser origin allowed by CORS, when the app is hosted elsewhere than this stack's
    /// CloudFront distribution.
    #[arg(long)]
    origin: Option<String>,
    /// Who is e-mailed by the stack's alarms.
    #[arg(long)]
    alarm_email: Option<String>,
}

/// Runs (or with `--dry-run`, prints) a command from the AWS tools venv.
fn aws_tool(o: &StackArgs, program: &str, args: &[String]) -> Result<String> {
    let shown = format!("{program} {}", args.join(" "));
    if o.dry_run {
        println!("would run: {shown}");
        return Ok(String::new());
    }
    let python = venv("aws-venv", "AWS SAM CLI and AWS CLI", AWS_TOOLS)?;
    let mut cmd = Command::new(python.with_file_name(program));
    cmd.args(args).current_dir(repo_root().join("infra"));
    if let Some(region) = &o.region {
        cmd.env("AWS_REGION", region)
            .env("AWS_DEFAULT_REGION", region);
    }
    say(&shown);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("{shown} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Build both zips and the app, deploy the stack, then publish the app with its config.json.
pub fn deploy(args: &DeployArgs) -> Result {
    let o = &args.stack;
    let arm64 = !args.x86_64;
    if !o.dry_run {
        crate::lambda(arm64)?;
        crate::web::build()?;
    }
    let mut overrides = vec![format!(
        "Architecture={}",
        if arm64 { "arm64" } else { "x86_64" }
    )];
    if let Some(l) = &args.labeler {
        overrides.push(format!("Labeler={l}"));
    }
    if let Some(origin) = &args.origin {
        overrides.push(format!("AllowedOrigin={origin}"));
    }
    if let Some(email) = &args.alarm_email {
        overrides.push(format!("AlarmEmail={email}"));
    }
    let mut sam = strings(&[
        "deploy",
        "--template-file",
        "template.yaml",
        "--stack-name",
        &o.stack,
        "--capabilities",
        "CAPABILITY_IAM",
        "--resolve-s3",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
    ]);
    sam.extend(overrides);
    aws_tool(o, "sam", &sam)?;

    let outputs = stack_outputs(o)?;
    let config = snaplabel_infra::browser_config(&outputs);
    let output = |key: &str| {
        outputs
            .get(key)
            .cloned()
            .unwrap_or_else(|| format!("<{key}>"))
    };
    let (web_bucket, distribution) = (output("WebBucketName"), output("DistributionId"));
    if o.dry_run {
        println!(
            "would write dist/config.json from the outputs ApiBase, Region, IdentityPoolId, MaxUploadBytes, Labeler"
        );
    } else {
        let config = config?;
        let json = serde_json::to_string_pretty(&config)?;
        std::fs::write(repo_root().join("dist/config.json"), json)?;
    }
    let dist = repo_root().join("dist").display().to_string();
    aws_tool(
        o,
        "aws",
        &strings(&[
            "s3",
            "sync",
            &dist,
            &format!("s3://{web_bucket}/"),
            "--delete",
            "--exclude",
            "config.json",
        ]),
    )?;
    // The configuration must never be cached: it changes with every deploy.
    aws_tool(
        o,
        "aws",
        &strings(&[
            "s3",
            "cp",
            &format!("{dist}/config.json"),
            &format!("s3://{web_bucket}/config.json"),
            "--cache-control",
            "no-store",
            "--content-type",
            "application/json",
        ]),
    )?;
    aws_tool(
        o,
        "aws",
        &strings(&[
            "cloudfront",
            "create-invalidation",
            "--distribution-id",
            &distribution,
            "--paths",
            "/*",
        ]),
    )?;
    if let Some(url) = outputs.get("AppUrl") {
        say(&format!("snaplabel is live at {url}"));
    }
    Ok(())
}

fn stack_outputs(o: &StackArgs) -> Result<BTreeMap<String, String>> {
    let json = aws_tool(
        o,
        "aws",
        &strings(&[
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            &o.stack,
            "--query",
            "Stacks[0].Outputs",
            "--output",
            "json",
        ]),
    )?;
    if o.dry_run {
        return Ok(BTreeMap::new());
    }
    let outputs: Vec<serde_json::Value> =
        serde_json::from_str(&json).context("unexpected describe-stacks output")?;
    Ok(outputs
        .iter()
        .filter_map(|o| {
            Some((
                o["OutputKey"].as_str()?.to_string(),
                o["OutputValue"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// Empties both buckets (CloudFormation cannot delete non-empty ones) and deletes the stack.
pub fn destroy(o: &StackArgs) -> Result {
    let outputs = stack_outputs(o)?;
    for key in ["ImageBucketName", "WebBucketName"] {
        let bucket = outputs
            .get(key)
            .cloned()
            .unwrap_or_else(|| format!("<{key}>"));
        aws_tool(
            o,
            "aws",
            &strings(&["s3", "rm", &format!("s3://{bucket}/"), "--recursive"]),
        )?;
    }
    aws_tool(
        o,
        "sam",
        &strings(&["delete", "--stack-name", &o.stack, "--no-prompts"]),
    )?;
    if !o.dry_run {
        say(&format!("stack {} deleted", o.stack));
    }
    Ok(())
}
