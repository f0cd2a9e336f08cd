//! Retail Pulse's store master: `StoreID,StoreName,AreaCode` rows, loaded once per cold start and
//! kept in memory for the worker's per-image store check.
//!
//! From S3 when `STORE_MASTER_KEY` names an object in the uploads bucket (the template's
//! `StoreMasterKey`; the worker's policy lets it read exactly that object), or, as before,
//! `STORE_MASTER_S3` names one as `s3://bucket/key`; else the sample shipped in
//! `shared/data/store_master.csv` (it includes the seed's store ids).

use std::collections::HashMap;

use serde::Deserialize;

use shared::error::{Error, Result};

/// The sample store master compiled into the binary.
pub const SAMPLE_CSV: &str = include_str!("../../../../shared/data/store_master.csv");

/// One row of the store master.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Store {
    #[serde(rename = "StoreID")]
    pub store_id: String,
    #[serde(rename = "StoreName")]
    pub name: String,
    #[serde(rename = "AreaCode")]
    pub area_code: String,
}

/// Stores by id.
#[derive(Debug, Clone, Default)]
pub struct StoreMaster {
    stores: HashMap<String, Store>,
}

impl StoreMaster {
    /// Parses the CSV (header `StoreID,StoreName,AreaCode`, quoted fields allowed).
    pub fn from_csv(text: &str) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let mut stores = HashMap::new();
        for (i, row) in reader.deserialize::<Store>().enumerate() {
            let store = row.map_err(|e| Error::Invalid(format!("store master row {}: {e}", i + 2)))?;
            stores.insert(store.store_id.clone(), store);
        }
        if stores.is_empty() {
            return Err(Error::Invalid("store master has no rows".into()));
        }
        Ok(StoreMaster { stores })
    }

    /// The sample shipped with the repository.
    pub fn sample() -> Self {
        Self::from_csv(SAMPLE_CSV).expect("the sample store master parses")
    }

    /// The configured store master: from S3 when [`location`] names an object, else the sample.
    pub async fn from_env(s3: &aws_sdk_s3::Client) -> Result<Self> {
        match location(|name| std::env::var(name).ok())? {
            Some(location) => Self::from_s3(s3, &location).await,
            None => Ok(Self::sample()),
        }
    }

    /// Reads the store master from `s3://bucket/key`.
    pub async fn from_s3(s3: &aws_sdk_s3::Client, location: &str) -> Result<Self> {
        let (bucket, key) = parse_location(location)?;
        let object = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::aws("GetObject", e))?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| Error::Internal(format!("reading {location}: {e}")))?
            .into_bytes();
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::Invalid(format!("{location} is not UTF-8: {e}")))?;
        Self::from_csv(text.trim_start_matches('\u{feff}'))
    }

    pub fn get(&self, store_id: &str) -> Option<&Store> {
        self.stores.get(store_id)
    }

    pub fn len(&self) -> usize {
        self.stores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stores.is_empty()
    }
}

/// Where the store master is, as `s3://bucket/key`, from the environment `var` reads:
/// `STORE_MASTER_KEY`, a key in `UPLOADS_BUCKET` (what `template.yaml` sets), else
/// `STORE_MASTER_S3`, a whole location (the older setting). `None`: neither is set.
pub fn location(var: impl Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let set = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(key) = set("STORE_MASTER_KEY") {
        let bucket = set("UPLOADS_BUCKET")
            .ok_or_else(|| Error::Internal("STORE_MASTER_KEY is set but UPLOADS_BUCKET is not".into()))?;
        let key = key.trim_start_matches('/');
        if key.is_empty() {
            return Err(Error::Internal(
                "STORE_MASTER_KEY must name an object, not \"/\"".into(),
            ));
        }
        return Ok(Some(format!("s3://{bucket}/{key}")));
    }
    match set("STORE_MASTER_S3") {
        Some(location) => {
            parse_location(&location)?;
            Ok(Some(location))
        }
        None => Ok(None),
    }
}

fn parse_location(location: &str) -> Result<(&str, &str)> {
    location
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .ok_or_else(|| {
            Error::Internal(format!(
                "STORE_MASTER_S3 must look like s3://bucket/key, not {location:?}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location_with(vars: &[(&str, &str)]) -> Result<Option<String>> {
        location(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn the_store_master_is_a_key_in_the_uploads_bucket_or_an_older_s3_location() {
        let bucket = ("UPLOADS_BUCKET", "jobs-uploads-1");
        // GIVEN the template's setting, a key in the uploads bucket
        assert_eq!(
            location_with(&[bucket, ("STORE_MASTER_KEY", "config/stores.csv")]).unwrap(),
            Some("s3://jobs-uploads-1/config/stores.csv".into())
        );
        // The older setting still works, and the key wins when both are set.
        assert_eq!(
            location_with(&[("STORE_MASTER_S3", "s3://other/stores.csv")]).unwrap(),
            Some("s3://other/stores.csv".into())
        );
        assert_eq!(
            location_with(&[
                bucket,
                ("STORE_MASTER_KEY", "a.csv"),
                ("STORE_MASTER_S3", "s3://other/b.csv")
            ])
            .unwrap(),
            Some("s3://jobs-uploads-1/a.csv".into())
        );
        // Neither set, or set empty (the template's default): the sample.
        assert_eq!(location_with(&[bucket]).unwrap(), None);
        assert_eq!(
            location_with(&[bucket, ("STORE_MASTER_KEY", " "), ("STORE_MASTER_S3", "")]).unwrap(),
            None
        );
        // Garbage is refused at the cold start, not read as "no store master".
        assert!(location_with(&[("STORE_MASTER_KEY", "a.csv")]).is_err(), "no bucket");
        assert!(location_with(&[bucket, ("STORE_MASTER_KEY", "/")]).is_err());
        assert!(location_with(&[("STORE_MASTER_S3", "stores.csv")]).is_err());
        assert!(location_with(&[("STORE_MASTER_S3", "s3://bucket/")]).is_err());
    }

    #[test]
    fn the_sample_holds_the_seed_store_ids() {
        let master = StoreMaster::sample();
        assert!(master.get("S00339218").is_some());
        assert_eq!(master.get("S01408764").unwrap().area_code, "7100025");
        assert_eq!(master.get("S00001008").unwrap().name, "Royal Mart, Sector 5");
        assert!(master.get("S99999999").is_none());
    }

    #[test]
    fn a_bad_row_is_named() {
        let err = StoreMaster::from_csv("StoreID,StoreName,AreaCode\nS1,One,1\nS2,Two\n").unwrap_err();
        assert!(err.to_string().contains("row 3"), "{err}");
        assert!(StoreMaster::from_csv("StoreID,StoreName,AreaCode\n").is_err());
    }
}
