//! snaplabel's AWS deployment as data.
//!
//! - [`Template::load`] reads `infra/template.yaml` (CloudFormation short-form tags such as `!Sub`
//!   become their long form, `{"Fn::Sub": …}`) so tests can reason about it as JSON.
//! - [`Template::violations`] lists every broken deployment invariant: the label trigger is
//!   limited to `uploads/`, buckets are private and encrypted, no IAM `Allow` uses wildcard
//!   actions or `Resource: "*"` on S3, only the presign function deletes and only under
//!   `uploads/` and `labels/`, guests get no S3 access, CORS is not open to any site,
//!   what a guest can cost is bounded (reserved concurrency, upload quota, decode memory), every
//!   response of the distribution carries the security headers, and failures raise alarms.
//! - [`browser_config`] turns the stack outputs into the app's `config.json`.

use serde_json::{Map, Value, json};
use snaplabel_core::api::BrowserConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `infra/template.yaml` of the checkout being built or tested: Cargo sets `CARGO_MANIFEST_DIR`
/// when it runs a test or binary, and that beats the path compiled in, which belongs to whichever
/// checkout compiled this crate first when several share one build directory.
pub fn template_path() -> PathBuf {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .iter()
        .flat_map(|dir| dir.ancestors())
        .map(|dir| dir.join("infra/template.yaml"))
        .find(|path| path.is_file())
        .unwrap_or(compiled)
}

/// Why the template or the stack outputs could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the template is not valid YAML")]
    Yaml(#[from] serde_norway::Error),
    #[error("!GetAtt {0} names no attribute")]
    GetAtt(String),
    #[error("a number in the template cannot be represented")]
    Number(#[from] serde_json::Error),
    #[error("the stack has no {0} output")]
    MissingOutput(String),
    #[error("the stack output {0} is not a number")]
    NotANumber(String),
}

/// A CloudFormation template in long form.
#[derive(Debug, Clone)]
pub struct Template(pub Value);

impl Template {
    pub fn load(path: &Path) -> Result<Template, InfraError> {
        let text = std::fs::read_to_string(path).map_err(|source| InfraError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Template::parse(&text)
    }

    pub fn parse(yaml: &str) -> Result<Template, InfraError> {
        let value: serde_norway::Value = serde_norway::from_str(yaml)?;
        Ok(Template(long_form(value)?))
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0["Resources"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v)))
    }

    pub fn resources_of_type<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.resources().filter(move |(_, r)| r["Type"] == kind)
    }

    /// Every broken invariant, in words; empty when the template is safe to deploy.
    pub fn violations(&self) -> Vec<String> {
        let mut found = Vec::new();
        self.check_label_trigger(&mut found);
        self.check_buckets(&mut found);
        self.check_policies(&mut found);
        self.check_guest_role(&mut found);
        self.check_cors(&mut found);
        self.check_cost_bounds(&mut found);
        self.check_security_headers(&mut found);
        self.check_alarms(&mut found);
        found
    }

    /// Both functions have reserved concurrency from a parameter; guests have an upload quota;
    /// the label function's memory leaves room for a decode budget.
    fn check_cost_bounds(&self, found: &mut Vec<String>) {
        for (name, function) in self.resources_of_type("AWS::Serverless::Function") {
            let reserved = &function["Properties"]["ReservedConcurrentExecutions"];
            match reserved["Ref"].as_str() {
                Some(parameter) if self.0["Parameters"][parameter]["Default"].is_number() => {}
                _ => found.push(format!(
                    "{name}: no reserved concurrency (a parameter with a default)"
                )),
            }
        }
        let presign = &self.0["Resources"]["PresignFunction"]["Properties"];
        if presign["Environment"]["Variables"]["SNAPLABEL_UPLOADS_PER_HOUR"].is_null() {
            found.push("PresignFunction: no per-guest upload quota".into());
        }
        if presign["Environment"]["Variables"]["SNAPLABEL_OWNER_KEY"].is_null() {
            found.push("PresignFunction: no owner key (identity ids would end up in keys)".into());
        }
        if self.0["Parameters"]["LabelMemoryMB"]["MinValue"]
            .as_u64()
            .is_none_or(|m| m < 768)
        {
            found.push("LabelMemoryMB may go below 768 MB, too little for a decode budget".into());
        }
    }

    /// Every cache behaviour of every distribution sends a response headers policy with a CSP
    /// naming no wildcard and forbidding framing, HSTS, nosniff and `X-Frame-Options: DENY`.
    fn check_security_headers(&self, found: &mut Vec<String>) {
        for (name, distribution) in self.resources_of_type("AWS::CloudFront::Distribution") {
            let config = &distribution["Properties"]["DistributionConfig"];
            let behaviours = std::iter::once(&config["DefaultCacheBehavior"])
                .chain(config["CacheBehaviors"].as_array().into_iter().flatten());
            for behaviour in behaviours {
                let path = behaviour["PathPattern"].as_str().unwrap_or("default");
                let Some(policy) = behaviour["ResponseHeadersPolicyId"]["Ref"].as_str() else {
                    found.push(format!("{name} ({path}): no response headers policy"));
                    continue;
                };
                let headers = &self.0["Resources"][policy]["Properties"]["ResponseHeadersPolicyConfig"]
                    ["SecurityHeadersConfig"];
                let csp =
                    strings(&headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]).join(" ");
                if csp.is_empty() || csp.contains('*') || csp.contains("'unsafe-eval'") {
                    found.push(format!(
                        "{policy}: the CSP is missing or allows too much: {csp:?}"
                    ));
                }
                if !csp.contains("frame-ancestors 'none'") {
                    found.push(format!("{policy}: the CSP allows framing"));
                }
                if headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"]
                    .as_u64()
                    .is_none_or(|s| s < 31_536_000)
                {
                    found.push(format!("{policy}: no HSTS for at least a year"));
                }
                if headers["ContentTypeOptions"].is_null() {
                    found.push(format!("{policy}: no X-Content-Type-Options: nosniff"));
                }
                if headers["FrameOptions"]["FrameOption"] != "DENY" {
                    found.push(format!("{policy}: no X-Frame-Options: DENY"));
                }
            }
        }
    }

    /// Parked upload events, and errors and throttles of every function, alarm to an SNS topic.
    fn check_alarms(&self, found: &mut Vec<String>) {
        let alarms: Vec<&Value> = self
            .resources_of_type("AWS::CloudWatch::Alarm")
            .map(|(_, a)| &a["Properties"])
            .filter(|a| {
                a["AlarmActions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|action| {
                        action["Ref"]
                            .as_str()
                            .is_some_and(|t| self.0["Resources"][t]["Type"] == "AWS::SNS::Topic")
                    })
            })
            .collect();
        let watches = |metric: &str, dimension: &Value| {
            alarms.iter().any(|a| {
                a["MetricName"] == metric
                    && a["Dimensions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|d| &d["Value"] == dimension)
            })
        };
        for (name, _) in self.resources_of_type("AWS::Serverless::Function") {
            for metric in ["Errors", "Throttles"] {
                if !watches(metric, &json!({"Ref": name})) {
                    found.push(format!("{name}: no alarm on {metric}"));
                }
            }
        }
        for (name, _) in self.resources_of_type("AWS::SQS::Queue") {
            let queue = json!({"Fn::GetAtt": [name, "QueueName"]});
            if !watches("ApproximateNumberOfMessagesVisible", &queue) {
                found.push(format!("{name}: no alarm when events are parked"));
            }
        }
    }

    /// The label function runs for `uploads/` only, so its own results can never trigger it.
    fn check_label_trigger(&self, found: &mut Vec<String>) {
        let mut triggers = 0;
        for (name, function) in self.resources_of_type("AWS::Serverless::Function") {
            let events = function["Properties"]["Events"].as_object();
            for (event_name, event) in events.into_iter().flatten() {
                if event["Type"] != "S3" {
                    continue;
                }
                triggers += 1;
                let rules = &event["Properties"]["Filter"]["S3Key"]["Rules"];
                let prefix = rules.as_array().into_iter().flatten().find(|r| {
                    r["Name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case("prefix"))
                });
                match prefix.and_then(|p| p["Value"].as_str()) {
                    Some("uploads/") => {}
                    other => found.push(format!(
                        "{name}.{event_name}: S3 trigger must filter on prefix \"uploads/\", has {other:?}"
                    )),
                }
            }
        }
        for (name, bucket) in self.resources_of_type("AWS::S3::Bucket") {
            if !bucket["Properties"]["NotificationConfiguration"].is_null() {
                found.push(format!(
                    "{name}: notifications must come from the function's S3 event (with its prefix filter)"
                ));
            }
        }
        if triggers == 0 {
            found.push("no function is triggered by S3 uploads".into());
        }
    }

    fn check_buckets(&self, found: &mut Vec<String>) {
        for (name, bucket) in self.resources_of_type("AWS::S3::Bucket") {
            let block = &bucket["Properties"]["PublicAccessBlockConfiguration"];
            for setting in [
                "BlockPublicAcls",
                "BlockPublicPolicy",
                "IgnorePublicAcls",
                "RestrictPublicBuckets",
            ] {
                if block[setting] != true {
                    found.push(format!("{name}: {setting} must be true"));
                }
            }
            if bucket["Properties"]["BucketEncryption"].is_null() {
                found.push(format!("{name}: no default encryption"));
            }
        }
    }

    /// No `Allow` with a wildcard action, and no `Allow` of S3 actions on `Resource: "*"`.
    fn check_policies(&self, found: &mut Vec<String>) {
        for (name, statement) in self.statements() {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let actions = strings(&statement["Action"]);
            for action in &actions {
                if action.contains('*') {
                    found.push(format!("{name}: Allow of wildcard action {action:?}"));
                }
            }
            if statement.get("NotAction").is_some() || statement.get("NotResource").is_some() {
                found.push(format!("{name}: Allow with NotAction/NotResource"));
            }
            // Deleting is the owner's act through the presign API, on what guests own.
            if actions.iter().any(|a| a == "s3:DeleteObject") {
                if !name.starts_with("PresignFunction.") {
                    found.push(format!(
                        "{name}: s3:DeleteObject granted outside the presign function"
                    ));
                }
                for resource in strings(&statement["Resource"]) {
                    if !(resource.ends_with("/uploads/*") || resource.ends_with("/labels/*")) {
                        found.push(format!(
                            "{name}: s3:DeleteObject beyond the guest-owned prefixes: {resource:?}"
                        ));
                    }
                }
            }
            if names_s3(&actions) {
                for resource in strings(&statement["Resource"]) {
                    let bare = resource.trim_end_matches("/*");
                    if resource == "*" || bare.ends_with(":::*") || bare.ends_with(":s3:::") {
                        found.push(format!("{name}: S3 Allow on resource {resource:?}"));
                    }
                }
            }
        }
    }

    /// The role Cognito hands unauthenticated guests must not reach S3 at all.
    fn check_guest_role(&self, found: &mut Vec<String>) {
        let mut attached = false;
        for (_, attachment) in self.resources_of_type("AWS::Cognito::IdentityPoolRoleAttachment") {
            let role = &attachment["Properties"]["Roles"]["unauthenticated"];
            let Some(role_name) = role["Fn::GetAtt"][0].as_str() else {
                continue;
            };
            attached = true;
            let role = &self.0["Resources"][role_name];
            if !role["Properties"]["ManagedPolicyArns"].is_null() {
                found.push(format!("{role_name}: guests' role has managed policies"));
            }
            if self
                .statements_of(role_name)
                .iter()
                .any(|s| s["Effect"] == "Allow" && names_s3(&strings(&s["Action"])))
            {
                found.push(format!("{role_name}: guests' role allows S3"));
            }
        }
        for (name, pool) in self.resources_of_type("AWS::Cognito::IdentityPool") {
            if pool["Properties"]["AllowClassicFlow"] == true {
                found.push(format!("{name}: the classic (basic) auth flow is enabled"));
            }
        }
        if !attached {
            found.push("no unauthenticated role attached to an identity pool".into());
        }
    }

    /// CORS names the app's origin (a parameter whose default is not `*`), never a literal `*`.
    fn check_cors(&self, found: &mut Vec<String>) {
        for (name, bucket) in self.resources_of_type("AWS::S3::Bucket") {
            let rules = &bucket["Properties"]["CorsConfiguration"]["CorsRules"];
            for rule in rules.as_array().into_iter().flatten() {
                if strings(&rule["AllowedOrigins"]).iter().any(|o| o == "*") {
                    found.push(format!("{name}: CORS allows any origin"));
                }
            }
        }
        for (name, function) in self.resources_of_type("AWS::Serverless::Function") {
            let origins =
                &function["Properties"]["Environment"]["Variables"]["SNAPLABEL_ALLOWED_ORIGINS"];
            if origins == "*" {
                found.push(format!("{name}: the API allows any origin"));
            }
            let url_cors = &function["Properties"]["FunctionUrlConfig"]["Cors"]["AllowOrigins"];
            if strings(url_cors).iter().any(|o| o == "*") {
                found.push(format!("{name}: the function URL allows any origin"));
            }
        }
        if let Some(default) = self.0["Parameters"]["AllowedOrigin"]["Default"].as_str()
            && default.contains('*')
        {
            found.push("AllowedOrigin defaults to any origin".into());
        }
    }

    /// Every IAM statement in the template as `("Resource.where", statement)`: function
    /// policies, role policies, bucket policies. Statements inside `Fn::If` count both ways.
    pub fn statements(&self) -> Vec<(String, &Value)> {
        let mut out = Vec::new();
        for (name, resource) in self.resources() {
            let properties = &resource["Properties"];
            let mut documents: Vec<(String, &Value)> = Vec::new();
            for (i, policy) in properties["Policies"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                // SAM: a bare policy document; IAM role: {PolicyName, PolicyDocument}.
                let document = if policy.get("PolicyDocument").is_some() {
                    &policy["PolicyDocument"]
                } else {
                    policy
                };
                documents.push((format!("{name}.Policies[{i}]"), document));
            }
            if !properties["PolicyDocument"].is_null() {
                documents.push((
                    format!("{name}.PolicyDocument"),
                    &properties["PolicyDocument"],
                ));
            }
            for (place, document) in documents {
                for statement in document["Statement"].as_array().into_iter().flatten() {
                    for branch in conditional_branches(statement) {
                        out.push((place.clone(), branch));
                    }
                }
            }
        }
        out
    }

    /// Statements of one resource's policies.
    pub fn statements_of(&self, resource: &str) -> Vec<&Value> {
        self.statements()
            .into_iter()
            .filter(|(place, _)| place.starts_with(&format!("{resource}.")))
            .map(|(_, s)| s)
            .collect()
    }
}

/// Whether any of `actions` is an S3 action.
fn names_s3(actions: &[String]) -> bool {
    actions
        .iter()
        .any(|a| a.to_ascii_lowercase().starts_with("s3:"))
}

/// `{"Fn::If": [cond, a, b]}` stands for both `a` and `b` (minus `AWS::NoValue`).
fn conditional_branches(value: &Value) -> Vec<&Value> {
    match value.get("Fn::If").and_then(Value::as_array) {
        Some(parts) if parts.len() == 3 => parts[1..]
            .iter()
            .filter(|v| v.get("Ref") != Some(&json!("AWS::NoValue")))
            .flat_map(conditional_branches)
            .collect(),
        _ => vec![value],
    }
}

/// A string or list of strings as written (intrinsics such as `!Sub` contribute their pattern).
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(m) => match m.get("Fn::Sub") {
            Some(Value::String(pattern)) => vec![pattern.clone()],
            Some(Value::Array(parts)) => parts.first().map(strings).unwrap_or_default(),
            _ => m
                .get("Fn::If")
                .and_then(Value::as_array)
                .map(|p| p.iter().skip(1).flat_map(strings).collect())
                .unwrap_or_default(),
        },
        _ => Vec::new(),
    }
}

/// YAML with CloudFormation's short-form tags → long-form JSON.
fn long_form(value: serde_norway::Value) -> Result<Value, InfraError> {
    use serde_norway::Value as Y;
    Ok(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n)?,
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(long_form).collect::<Result<_, _>>()?)
        }
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)?.trim().to_string(),
                };
                out.insert(key, long_form(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value)?;
            match name {
                "Ref" | "Condition" => json!({ name: inner }),
                // `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`.
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s
                            .split_once('.')
                            .ok_or_else(|| InfraError::GetAtt(s.clone()))?;
                        json!({ "Fn::GetAtt": [resource, attribute] })
                    }
                    other => json!({ "Fn::GetAtt": other }),
                },
                _ => json!({ format!("Fn::{name}"): inner }),
            }
        }
    })
}

/// The app's `config.json` from the stack outputs (`ApiBase`, `Region`, `IdentityPoolId`,
/// `MaxUploadBytes`, `Labeler`).
pub fn browser_config(outputs: &BTreeMap<String, String>) -> Result<BrowserConfig, InfraError> {
    let get = |key: &str| {
        outputs
            .get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| InfraError::MissingOutput(key.to_string()))
    };
    let region = get("Region")?;
    let max_upload_bytes = get("MaxUploadBytes")?
        .parse()
        .map_err(|_| InfraError::NotANumber("MaxUploadBytes".into()))?;
    Ok(BrowserConfig::new(
        get("ApiBase")?.clone(),
        region.clone(),
        BrowserConfig::cognito_endpoint(region),
        get("IdentityPoolId")?.clone(),
        max_upload_bytes,
        outputs.get("Labeler").cloned().unwrap_or_default(),
    ))
}
