//! AWS clients, built once per cold start from one `SdkConfig`.
//!
//! Endpoints come only from the environment, as the SDK reads them: `AWS_ENDPOINT_URL` and the
//! per-service `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_DYNAMODB`,
//! `AWS_ENDPOINT_URL_SNS`, `AWS_ENDPOINT_URL_SES`. The one
//! extra knob is `S3_FORCE_PATH_STYLE=true`, which emulators need (no virtual-host buckets there).

use aws_config::{BehaviorVersion, SdkConfig};

/// The clients a function may use. Cheap to clone (each is an `Arc` inside).
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub sns: aws_sdk_sns::Client,
    pub ses: aws_sdk_ses::Client,
}

/// Loads the shared `SdkConfig` from the environment.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

impl Clients {
    /// Loads the configuration once and builds every client from it.
    pub async fn from_env() -> Self {
        Self::from_config(&sdk_config().await)
    }

    pub fn from_config(config: &SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(force_path_style())
            .build();
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sns: aws_sdk_sns::Client::new(config),
            ses: aws_sdk_ses::Client::new(config),
        }
    }
}

/// `S3_FORCE_PATH_STYLE=true|1` selects path-style S3 addressing.
pub fn force_path_style() -> bool {
    std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "TRUE" | "yes"))
}
