//! Seed 000's media-asset archive: an S3 copy to the archive prefix.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};
use crate::limits::{self, check_bytes, check_len};

/// Copy `source` (`s3://bucket/key`) to the archive prefix with an archival storage class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ArchivePayload {
    pub asset_id: String,
    pub source: String,
}

impl ArchivePayload {
    pub fn validate(&self) -> Result<()> {
        if self.asset_id.trim().is_empty() {
            return Err(invalid("payload.asset_id", "must not be empty"));
        }
        check_len("payload.asset_id", &self.asset_id, limits::ASSET_ID)?;
        if !self
            .asset_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "payload.asset_id",
                "may hold only letters, digits, '-', '_' and '.'",
            ));
        }
        self.source_location().map(|_| ())
    }

    /// `(bucket, key)` of the source object.
    pub fn source_location(&self) -> Result<(&str, &str)> {
        let rest = self
            .source
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("payload.source", "must look like s3://bucket/key"))?;
        match rest.split_once('/') {
            Some((b, k)) if !b.is_empty() && !k.is_empty() => {
                check_len("payload.source", b, limits::BUCKET)?;
                check_bytes("payload.source", k, limits::S3_KEY)?;
                Ok((b, k))
            }
            _ => Err(invalid("payload.source", "must look like s3://bucket/key")),
        }
    }
}
