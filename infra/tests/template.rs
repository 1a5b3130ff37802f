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
        ("s3:GetObject", format!("{bucket}/index/*")),
        ("s3:GetObject", format!("{bucket}/labels/*")),
        ("s3:GetObject", format!("{bucket}/uploads/*")),
        ("s3:ListBucket", bucket.to_string()),
        ("s3:PutObject", format!("{bucket}/index/*")),
        ("s3:PutObject", format!("{bucket}/labels/*")),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_string(), r))
    .collect();
    assert_eq!(grants, expected);
    // Listing is limited to its prefixes.
    let list = t
        .statements_of("LabelFunction")
        .into_iter()
        .find(|s| s["Action"][0] == "s3:ListBucket")
        .unwrap();
    assert_eq!(
        strings(&list["Condition"]["StringLike"]["s3:prefix"]),
        ["uploads/*", "labels/*", "index/*"]
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
fn the_presign_function_signs_only_for_its_prefixes_and_never_calls_cognito() {
    let t = template();
    let bucket = "arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}";
    let grants = s3_grants(&t, "PresignFunction");
    let expected: Vec<(String, String)> = [
        ("s3:DeleteObject", format!("{bucket}/labels/*")),
        ("s3:DeleteObject", format!("{bucket}/uploads/*")),
        ("s3:GetObject", format!("{bucket}/exports/*")),
        ("s3:GetObject", format!("{bucket}/index/*")),
        ("s3:GetObject", format!("{bucket}/labels/*")),
        ("s3:GetObject", format!("{bucket}/uploads/*")),
        ("s3:ListBucket", bucket.to_string()),
        ("s3:PutObject", format!("{bucket}/exports/*")),
        ("s3:PutObject", format!("{bucket}/index/*")),
        ("s3:PutObject", format!("{bucket}/quota/*")),
        ("s3:PutObject", format!("{bucket}/uploads/*")),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_string(), r))
    .collect();
    assert_eq!(grants, expected);
    // Guests prove themselves with tokens checked against Cognito's public keys: no Cognito
    // control-plane call per upload, so no Cognito permission at all.
    assert!(
        t.statements_of("PresignFunction")
            .iter()
            .all(|s| strings(&s["Action"])
                .iter()
                .all(|a| !a.starts_with("cognito"))),
        "the presign function may call no Cognito API"
    );
    let env = &t.0["Resources"]["PresignFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        strings(&env["SNAPLABEL_OWNER_KEY"]),
        ["{{resolve:secretsmanager:${OwnerKeySecret}:SecretString}}"]
    );
    assert_eq!(
        t.0["Resources"]["OwnerKeySecret"]["Properties"]["GenerateSecretString"]["PasswordLength"],
        64
    );
}

#[test]
fn what_a_guest_can_cost_is_bounded_by_parameters_with_defaults() {
    let t = template();
    let p = &t.0["Parameters"];
    for (function, parameter, default) in [
        ("LabelFunction", "LabelReservedConcurrency", 5),
        ("PresignFunction", "PresignReservedConcurrency", 10),
    ] {
        assert_eq!(
            t.0["Resources"][function]["Properties"]["ReservedConcurrentExecutions"]["Ref"],
            parameter
        );
        assert_eq!(p[parameter]["Default"], default, "{parameter}");
    }
    let env = &t.0["Resources"]["PresignFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(
        env["SNAPLABEL_UPLOADS_PER_HOUR"]["Ref"],
        "GuestUploadsPerHour"
    );
    assert_eq!(p["GuestUploadsPerHour"]["Default"], 100);
    // The label function's decode budget comes from its memory (AWS_LAMBDA_FUNCTION_MEMORY_SIZE):
    // at the smallest memory allowed, the budget plus everything else still fits.
    let smallest = p["LabelMemoryMB"]["MinValue"].as_u64().unwrap();
    let budget = snaplabel_core::config::decode_budget_for_memory_mb(smallest);
    assert!(
        budget + snaplabel_core::config::LABEL_FUNCTION_BASE_BYTES <= smallest * 1024 * 1024,
        "{smallest} MB"
    );
    assert!(budget >= snaplabel_core::config::MIN_DECODE_BUDGET_BYTES);
    // Quota markers expire; the uploads they count are long gone from the window by then.
    let rules = &t.0["Resources"]["ImageBucket"]["Properties"]["LifecycleConfiguration"]["Rules"];
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["Prefix"] == "quota/" && r["ExpirationInDays"] == 1)
    );
    // Browsers must be allowed to send the If-None-Match the upload URLs sign.
    let cors = &t.0["Resources"]["ImageBucket"]["Properties"]["CorsConfiguration"]["CorsRules"][0];
    assert!(strings(&cors["AllowedHeaders"]).contains(&"if-none-match".to_string()));
}

#[test]
fn the_csp_allows_exactly_the_app_the_bucket_and_cognito() {
    let t = template();
    let policy = &t.0["Resources"]["SecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]
        ["SecurityHeadersConfig"];
    let csp = strings(&policy["ContentSecurityPolicy"]["ContentSecurityPolicy"]);
    assert_eq!(
        csp,
        [snaplabel_core::api::content_security_policy(
            "https://${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}.s3.${AWS::Region}.amazonaws.com",
            "https://cognito-identity.${AWS::Region}.amazonaws.com",
        )],
        "the template's CSP is the one snaplabel dev serves (and the browser tests run under)"
    );
    assert_eq!(
        policy["StrictTransportSecurity"]["AccessControlMaxAgeSec"],
        63_072_000
    );
    assert_eq!(policy["FrameOptions"]["FrameOption"], "DENY");
    assert_eq!(policy["ContentTypeOptions"]["Override"], true);
}

#[test]
fn parked_events_errors_and_throttles_alarm_to_a_topic_with_an_optional_email() {
    let t = template();
    let alarms: Vec<&Value> = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .map(|(_, a)| &a["Properties"])
        .collect();
    assert_eq!(alarms.len(), 5);
    assert!(
        alarms
            .iter()
            .all(|a| a["AlarmActions"] == serde_json::json!([{"Ref": "AlarmTopic"}]))
    );
    assert!(
        alarms
            .iter()
            .all(|a| a["TreatMissingData"] == "notBreaching")
    );
    let subscription = &t.0["Resources"]["AlarmEmailSubscription"];
    assert_eq!(subscription["Condition"], "HasAlarmEmail");
    assert_eq!(subscription["Properties"]["Endpoint"]["Ref"], "AlarmEmail");
    assert_eq!(t.0["Parameters"]["AlarmEmail"]["Default"], "");
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
    assert_eq!(expiring, ["uploads/", "labels/", "index/"]);
    // The zips `cargo xtask lambda` writes next to the template.
    let code = |f: &str| t.0["Resources"][f]["Properties"]["CodeUri"].clone();
    assert_eq!(code("LabelFunction"), "build/snaplabel-label.zip");
    assert_eq!(code("PresignFunction"), "build/snaplabel-presign.zip");
}

#[test]
fn the_spa_and_the_api_are_served_through_cloudfront() {
    let t = template();
    let distribution = &t.0["Resources"]["Distribution"]["Properties"]["DistributionConfig"];
    let default = &distribution["DefaultCacheBehavior"];
    assert_eq!(default["ViewerProtocolPolicy"], "redirect-to-https");
    assert!(distribution["Origins"][0]["OriginAccessControlId"].is_object());
    // Client-side routes by a viewer-request function, not a distribution-wide error page (which
    // would turn the API's own 403 and 404 answers into the app).
    assert!(distribution.get("CustomErrorResponses").is_none());
    assert_eq!(
        default["FunctionAssociations"][0]["FunctionARN"]["Fn::GetAtt"][0],
        "SpaRoutes"
    );
    // The API on the same origin: the token and the query reach the function, nothing is cached.
    let api = &distribution["CacheBehaviors"][0];
    assert_eq!(api["PathPattern"], "/api/*");
    assert_eq!(api["TargetOriginId"], "api");
    let cache = &t.0["Resources"]["ApiCachePolicy"]["Properties"]["CachePolicyConfig"];
    assert_eq!(cache["DefaultTTL"], 0);
    assert_eq!(
        cache["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"],
        serde_json::json!(["Authorization"])
    );
    assert_eq!(
        strings(&t.0["Outputs"]["ApiBase"]["Value"]),
        ["https://${Distribution.DomainName}/api"]
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
            "Action: [s3:PutObject, s3:GetObject]\n              Resource: !Sub \"arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}/uploads/*\"",
            "Action: [s3:PutObject, s3:GetObject]\n              Resource: \"*\"",
            "S3 Allow on resource \"*\"",
        ),
        (
            "Action: [s3:GetObject, s3:PutObject]\n              Resource: !Sub \"arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}/index/*\"\n            # Lets",
            "Action: [s3:GetObject, s3:PutObject, s3:DeleteObject]\n              Resource: !Sub \"arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}/index/*\"\n            # Lets",
            "LabelFunction.Policies[0]: s3:DeleteObject granted outside the presign function",
        ),
        (
            "                - !Sub \"arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}/labels/*\"\n",
            "                - !Sub \"arn:${AWS::Partition}:s3:::${NamePrefix}-images-${AWS::AccountId}-${AWS::Region}/quota/*\"\n",
            "s3:DeleteObject beyond the guest-owned prefixes",
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
        (
            "      ReservedConcurrentExecutions: !Ref LabelReservedConcurrency\n",
            "",
            "LabelFunction: no reserved concurrency",
        ),
        (
            "          SNAPLABEL_UPLOADS_PER_HOUR: !Ref GuestUploadsPerHour\n",
            "",
            "no per-guest upload quota",
        ),
        (
            "          SNAPLABEL_OWNER_KEY:",
            "          SNAPLABEL_OWNER_KEX:",
            "no owner key",
        ),
        (
            "    MinValue: 768",
            "    MinValue: 512",
            "too little for a decode budget",
        ),
        (
            "            ResponseHeadersPolicyId: !Ref SecurityHeaders\n\n",
            "\n",
            "(/api/*): no response headers policy",
        ),
        (
            "FrameOption: DENY",
            "FrameOption: SAMEORIGIN",
            "X-Frame-Options: DENY",
        ),
        (
            "frame-ancestors 'none'",
            "frame-ancestors *",
            "the CSP is missing or allows too much",
        ),
        (
            "AccessControlMaxAgeSec: 63072000",
            "AccessControlMaxAgeSec: 300",
            "no HSTS",
        ),
        (
            "      MetricName: Throttles\n      Dimensions:\n        - Name: FunctionName\n          Value: !Ref LabelFunction",
            "      MetricName: Throttles\n      Dimensions:\n        - Name: FunctionName\n          Value: !Ref Nothing",
            "LabelFunction: no alarm on Throttles",
        ),
        (
            "          Value: !GetAtt FailedEventsQueue.QueueName",
            "          Value: other-queue",
            "FailedEventsQueue: no alarm when events are parked",
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
        ("ApiBase", "https://d111.cloudfront.net/api"),
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
        "https://d111.cloudfront.net/api/uploads"
    );
    assert_eq!(
        config.identity.endpoint,
        "https://cognito-identity.eu-west-1.amazonaws.com/"
    );
    assert_eq!(config.identity.pool_id, "eu-west-1:1111-2222");
    assert_eq!(config.limits.max_upload_bytes, 20_000_000);
    let mut missing = outputs.clone();
    missing.remove("IdentityPoolId");
    assert_eq!(
        browser_config(&missing).unwrap_err().to_string(),
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
