//! The SAM template's invariants, and proof that the checker catches each way of breaking them.

use serde_json::Value;
use snaplabel_infra::{Template, browser_config, strings, template_path};
use std::collections::BTreeMap;

fn text() -> String {
    std::fs::read_to_string(template_path()).unwrap()
}

fn template() -> Template {
    Template::load(&template_path()).unwrap()
}

/// The template with one edit; the edit must apply.
fn edited(from: &str, to: &str) -> Template {
    let original = text();
    assert!(
        original.contains(from),
        "the template no longer has {from:?}"
    );
    Template::parse(&original.replacen(from, to, 1)).unwrap()
}

#[test]
fn the_template_keeps_every_invariant() {
    let violations = template().violations();
    assert!(violations.is_empty(), "{violations:#?}");
}

fn s3_grants(template: &Template, resource: &str) -> Vec<(String, String)> {
    let mut grants = Vec::new();
    for statement in template.statements_of(resource) {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        for action in strings(&statement["Action"]) {
            if action.starts_with("s3:") {
                for target in strings(&statement["Resource"]) {
                    grants.push((action.clone(), target));
                }
            }
        }
    }
    grants.sort();
    grants
}

#[test]
fn the_label_function_reads_uploads_and_writes_only_results() {
    let t = template();
    let bucket = "arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}";
    let grants = s3_grants(&t, "LabelFunction");
    let expected: Vec<(String, String)> = [
        ("s3:GetObject", format!("{bucket}/labels/*")),
        ("s3:GetObject", format!("{bucket}/uploads/*")),
        ("s3:ListBucket", bucket.to_string()),
        ("s3:PutObject", format!("{bucket}/labels/*")),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_string(), r))
    .collect();
    assert_eq!(grants, expected);
    // Listing is limited to the two prefixes.
    let list = t
        .statements_of("LabelFunction")
        .into_iter()
        .find(|s| s["Action"][0] == "s3:ListBucket")
        .unwrap();
    assert_eq!(
        strings(&list["Condition"]["StringLike"]["s3:prefix"]),
        ["uploads/*", "labels/*"]
    );
    // Rekognition only when that labeler is chosen.
    let policies = &t.0["Resources"]["LabelFunction"]["Properties"]["Policies"][0]["Statement"];
    let conditional = policies
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.get("Fn::If").is_some())
        .expect("a conditional Rekognition statement");
    assert_eq!(conditional["Fn::If"][0], "UseRekognition");
    assert_eq!(
        conditional["Fn::If"][1]["Action"][0],
        "rekognition:DetectLabels"
    );
}

#[test]
fn the_presign_function_signs_only_for_its_prefixes() {
    let t = template();
    let grants = s3_grants(&t, "PresignFunction");
    let puts: Vec<&String> = grants
        .iter()
        .filter(|(a, _)| a == "s3:PutObject")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(puts, ["${ImageBucket.Arn}/uploads/*"]);
    assert!(
        grants
            .iter()
            .all(|(_, r)| r.ends_with("/uploads/*") || r.ends_with("/labels/*") || r.is_empty()),
        "{grants:?}"
    );
    let cognito = t
        .statements_of("PresignFunction")
        .into_iter()
        .find(|s| s["Action"][0] == "cognito-identity:DescribeIdentity")
        .expect("identity verification allowed");
    assert!(strings(&cognito["Resource"])[0].contains("identitypool/${GuestIdentityPool}"));
}

#[test]
fn parameters_choose_labeler_memory_architecture_size_origin_and_retention() {
    let t = template();
    let p = &t.0["Parameters"];
    assert_eq!(p["Architecture"]["Default"], "arm64");
    assert_eq!(
        p["Labeler"]["AllowedValues"],
        serde_json::json!(["local", "rekognition"])
    );
    for name in [
        "LabelMemoryMB",
        "MaxUploadBytes",
        "AllowedOrigin",
        "RetentionDays",
    ] {
        assert!(p.get(name).is_some(), "parameter {name}");
    }
    let rules = &t.0["Resources"]["ImageBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
    let expiring: Vec<&Value> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("ExpirationInDays") == Some(&serde_json::json!({"Ref": "RetentionDays"})))
        .map(|r| &r["Prefix"])
        .collect();
    assert_eq!(expiring, ["uploads/", "labels/"]);
    // The zips `cargo xtask lambda` writes next to the template.
    let code = |f: &str| t.0["Resources"][f]["Properties"]["CodeUri"].clone();
    assert_eq!(code("LabelFunction"), "build/snaplabel-label.zip");
    assert_eq!(code("PresignFunction"), "build/snaplabel-presign.zip");
}

#[test]
fn the_spa_is_served_privately_through_cloudfront() {
    let t = template();
    let distribution = &t.0["Resources"]["Distribution"]["Properties"]["DistributionConfig"];
    assert_eq!(
        distribution["DefaultCacheBehavior"]["ViewerProtocolPolicy"],
        "redirect-to-https"
    );
    assert!(distribution["Origins"][0]["OriginAccessControlId"].is_object());
    let errors = distribution["CustomErrorResponses"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e["ResponsePagePath"] == "/index.html")
    );
}

#[test]
fn each_way_of_breaking_an_invariant_is_caught() {
    let cases = [
        (
            "Value: uploads/",
            "Value: \"\"",
            "S3 trigger must filter on prefix",
        ),
        (
            "Action: [s3:PutObject]",
            "Action: [\"s3:*\"]",
            "wildcard action",
        ),
        (
            "Action: [s3:PutObject, s3:GetObject]\n              Resource: !Sub \"${ImageBucket.Arn}/uploads/*\"",
            "Action: [s3:PutObject, s3:GetObject]\n              Resource: \"*\"",
            "S3 Allow on resource \"*\"",
        ),
        (
            "BlockPublicPolicy: true",
            "BlockPublicPolicy: false",
            "BlockPublicPolicy must be true",
        ),
        (
            "              - Effect: Deny\n                Action: [\"s3:*\", \"rekognition:*\"]",
            "              - Effect: Allow\n                Action: [\"s3:GetObject\"]",
            "guests' role allows S3",
        ),
        (
            "- !If [OriginFromCloudFront, !Sub \"https://${Distribution.DomainName}\", !Ref AllowedOrigin]",
            "- \"*\"",
            "CORS allows any origin",
        ),
        (
            "AllowClassicFlow: false",
            "AllowClassicFlow: true",
            "classic (basic) auth flow",
        ),
    ];
    for (from, to, expected) in cases {
        let violations = edited(from, to).violations();
        assert!(
            violations.iter().any(|v| v.contains(expected)),
            "changing {from:?} to {to:?} should report {expected:?}, got {violations:#?}"
        );
    }
}

#[test]
fn config_json_comes_from_the_stack_outputs() {
    let outputs: BTreeMap<String, String> = [
        ("ApiBase", "https://abc.lambda-url.eu-west-1.on.aws/api"),
        ("Region", "eu-west-1"),
        ("IdentityPoolId", "eu-west-1:1111-2222"),
        ("MaxUploadBytes", "20000000"),
        ("Labeler", "local"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let config = browser_config(&outputs).unwrap();
    assert_eq!(
        config.api_url("uploads"),
        "https://abc.lambda-url.eu-west-1.on.aws/api/uploads"
    );
    assert_eq!(
        config.identity.endpoint,
        "https://cognito-identity.eu-west-1.amazonaws.com/"
    );
    assert_eq!(config.identity.pool_id, "eu-west-1:1111-2222");
    assert_eq!(config.identity.header, "x-snaplabel-identity");
    assert_eq!(config.limits.max_upload_bytes, 20_000_000);
    let mut missing = outputs.clone();
    missing.remove("IdentityPoolId");
    assert_eq!(
        browser_config(&missing).unwrap_err(),
        "the stack has no IdentityPoolId output"
    );
    // Every output the config needs exists in the template.
    let t = template();
    for key in [
        "ApiBase",
        "Region",
        "IdentityPoolId",
        "MaxUploadBytes",
        "Labeler",
    ] {
        assert!(t.0["Outputs"].get(key).is_some(), "output {key}");
    }
}
