//! AWS SDK clients, optionally pointed at other endpoints (`snaplabel dev`, tests): see
//! [`snaplabel_core::config::Endpoints`].

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK configuration from the environment (Lambda role, profile, env credentials).
pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An S3 client. A custom endpoint gets path-style addressing (`http://host/bucket/key`), which
/// local servers need and real S3 accepts.
pub fn s3_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

pub fn rekognition_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_rekognition::Client {
    let mut builder = aws_sdk_rekognition::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_rekognition::Client::from_conf(builder.build())
}

/// A Cognito Identity client, for Rust code acting as a guest (`GetId`, `GetOpenIdToken`): the
/// dev client, dev-bench and the tests.
pub fn cognito_client(sdk: &SdkConfig, endpoint: Option<&str>) -> aws_sdk_cognitoidentity::Client {
    let mut builder = aws_sdk_cognitoidentity::config::Builder::from(sdk);
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_cognitoidentity::Client::from_conf(builder.build())
}

/// An SDK configuration with fixed credentials and region, for local endpoints.
pub fn static_sdk_config(access_key: &str, secret_key: &str, region: &str) -> SdkConfig {
    let credentials = aws_credential_types::Credentials::new(
        access_key,
        secret_key,
        None,
        None,
        "snaplabel-static",
    );
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .build()
}
