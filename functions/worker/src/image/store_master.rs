//! Retail Pulse's store master: one row per store (id, name, area code), loaded once per cold
//! start and kept in memory for the worker's per-image store check.
//!
//! From S3 when `STORE_MASTER_KEY` names an object in the uploads bucket (the template's
//! `StoreMasterKey`; the worker's policy lets it read exactly that object), or, as before,
//! `STORE_MASTER_S3` names one as `s3://bucket/key`; else the assignment's master (4,944 stores)
//! compiled into the binary from `functions/worker/data/store_master.csv`, parsed once per process.
//!
//! Copies of the master circulate with their columns in different orders and spellings
//! (`AreaCode,StoreName,StoreID`, `StoreID,StoreName,AreaCode`, `area_code,store_name,store_id`):
//! columns are found by their header name, compared without case, `_`, `-` or spaces. Fields are
//! trimmed (some names carry trailing spaces). A row without a store id, or an id given twice, is
//! an error naming the row.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use shared::error::{Error, Result};

/// The assignment's store master, compiled into the binary.
pub const BUNDLED_CSV: &str = include_str!("../../data/store_master.csv");

/// [`BUNDLED_CSV`], parsed the first time it is asked for.
static BUNDLED: LazyLock<Arc<StoreMaster>> =
    LazyLock::new(|| Arc::new(StoreMaster::from_csv(BUNDLED_CSV).expect("the bundled store master parses")));

/// One row of the store master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    pub store_id: String,
    pub name: String,
    pub area_code: String,
}

/// Stores by id.
#[derive(Debug, Clone, Default)]
pub struct StoreMaster {
    stores: HashMap<String, Store>,
}

/// The columns a store master has, each under any of these names (after [`column_key`]).
const ID: &[&str] = &["storeid", "id"];
const NAME: &[&str] = &["storename", "name"];
const AREA: &[&str] = &["areacode", "area"];

/// A header name as compared: lower case, without `_`, `-`, spaces or a byte-order mark.
fn column_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '\u{feff}'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl StoreMaster {
    /// Parses a store master CSV: a header row naming the columns (store id, store name, area
    /// code, in any order; others are ignored), quoted fields allowed, every field trimmed.
    pub fn from_csv(text: &str) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let header = reader
            .headers()
            .map_err(|e| Error::Invalid(format!("store master header: {e}")))?
            .clone();
        let keys: Vec<String> = header.iter().map(column_key).collect();
        let column = |names: &[&str], what: &str| {
            keys.iter().position(|k| names.contains(&k.as_str())).ok_or_else(|| {
                Error::Invalid(format!(
                    "store master has no {what} column (header: {})",
                    header.iter().collect::<Vec<_>>().join(",")
                ))
            })
        };
        let (id, name, area) = (
            column(ID, "StoreID")?,
            column(NAME, "StoreName")?,
            column(AREA, "AreaCode")?,
        );
        let mut stores: HashMap<String, Store> = HashMap::new();
        let mut rows: HashMap<String, u64> = HashMap::new();
        let mut record = csv::StringRecord::new();
        loop {
            // The row's line in the file (the header is line 1), for the errors.
            let row = reader.position().line();
            match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(Error::Invalid(format!("store master row {row}: {e}"))),
            }
            if record.iter().all(str::is_empty) {
                continue; // a blank line, e.g. a trailing one
            }
            let field = |i: usize| record.get(i).unwrap_or_default().to_string();
            let store = Store {
                store_id: field(id),
                name: field(name),
                area_code: field(area),
            };
            if store.store_id.is_empty() {
                return Err(Error::Invalid(format!("store master row {row} has no store id")));
            }
            if let Some(first) = rows.insert(store.store_id.clone(), row) {
                return Err(Error::Invalid(format!(
                    "store master rows {first} and {row} both have store id {}",
                    store.store_id
                )));
            }
            stores.insert(store.store_id.clone(), store);
        }
        if stores.is_empty() {
            return Err(Error::Invalid("store master has no rows".into()));
        }
        Ok(StoreMaster { stores })
    }

    /// The assignment's store master built into the binary, parsed on first use (once per
    /// process, so once per cold start) and shared after.
    pub fn bundled() -> Arc<StoreMaster> {
        BUNDLED.clone()
    }

    /// The configured store master: from S3 when [`location`] names an object, else the bundled one.
    pub async fn from_env(s3: &aws_sdk_s3::Client) -> Result<Arc<Self>> {
        match location(|name| std::env::var(name).ok())? {
            Some(location) => Ok(Arc::new(Self::from_s3(s3, &location).await?)),
            None => Ok(Self::bundled()),
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
        Self::from_csv(text)
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
        // Neither set, or set empty (the template's default): the bundled master.
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
    fn the_bundled_master_is_the_assignments_with_every_store() {
        let master = StoreMaster::bundled();
        assert_eq!(master.len(), 4_944);
        // The seed's ids and others from the file; names trimmed, quoted commas kept.
        let bharat = master.get("S00339218").unwrap();
        assert_eq!(
            (bharat.name.as_str(), bharat.area_code.as_str()),
            ("BHARAT STORE", "710006")
        );
        assert_eq!(master.get("S01408764").unwrap().name, "Asha Communication");
        assert_eq!(master.get("S01302075").unwrap().area_code, "700029");
        assert_eq!(master.get("S00839486").unwrap().name, "A.A ENTP,");
        assert!(
            master
                .stores
                .values()
                .all(|s| s.name == s.name.trim() && !s.store_id.is_empty())
        );
        assert!(
            BUNDLED_CSV.lines().any(|l| l.contains(" ,S")),
            "the file has names with trailing spaces, which the test above sees trimmed"
        );
        // The invented sample ids of earlier versions are not stores.
        assert!(master.get("S00001001").is_none());
        assert!(master.get("S99999999").is_none());
        assert!(
            Arc::ptr_eq(&master, &StoreMaster::bundled()),
            "parsed once, then shared"
        );
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_spelling() {
        let expected = Store {
            store_id: "S00339218".into(),
            name: "BHARAT STORE".into(),
            area_code: "710006".into(),
        };
        for csv in [
            "AreaCode,StoreName,StoreID\n710006,BHARAT STORE ,S00339218\n",
            "StoreID,StoreName,AreaCode\nS00339218,\"BHARAT STORE  \",710006\n",
            "area_code,store_name,store_id\n710006,BHARAT STORE,S00339218\n",
            "\u{feff}Store_ID , STORE NAME,area-code\r\n S00339218 ,  BHARAT STORE ,710006\r\n\r\n",
            "store_id,city,store_name,area_code\nS00339218,Kolkata,BHARAT STORE,710006\n",
        ] {
            let master = StoreMaster::from_csv(csv).unwrap_or_else(|e| panic!("{csv:?}: {e}"));
            assert_eq!(master.len(), 1, "{csv:?}");
            assert_eq!(master.get("S00339218"), Some(&expected), "{csv:?}");
        }
    }

    #[test]
    fn a_bad_row_or_header_is_named() {
        // GIVEN a short row, or a row whose id is empty, THEN its line is named
        let err = StoreMaster::from_csv("StoreID,StoreName,AreaCode\nS1,One,1\nS2,Two\n").unwrap_err();
        assert!(err.to_string().contains("row 3"), "{err}");
        let err = StoreMaster::from_csv("AreaCode,StoreName,StoreID\n1,One,S1\n2,Two,\n").unwrap_err();
        assert_eq!(err.to_string(), "store master row 3 has no store id");
        let err = StoreMaster::from_csv("AreaCode,StoreName,StoreID\n1,One,S1\n2,Two,  \n").unwrap_err();
        assert!(err.to_string().contains("row 3 has no store id"), "{err}");
        // A quoted name over two lines does not shift the numbers.
        let err = StoreMaster::from_csv("AreaCode,StoreName,StoreID\n1,\"One\nand a half\",S1\n2,Two,\n").unwrap_err();
        assert!(err.to_string().contains("row 4 has no store id"), "{err}");
        let err = StoreMaster::from_csv("StoreID,StoreName,AreaCode\nS1,One,1\nS1,Again,2\n").unwrap_err();
        assert!(err.to_string().contains("rows 2 and 3 both have store id S1"), "{err}");
        let err = StoreMaster::from_csv("Store,Name,Area Code\nS1,One,1\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("no StoreID column (header: Store,Name,Area Code)"),
            "{err}"
        );
        assert!(StoreMaster::from_csv("StoreID,StoreName,AreaCode\n").is_err());
    }

    #[test]
    fn the_bundled_master_parses_quickly() {
        // Measured, not just asserted: `cargo test -p worker --lib parses_quickly -- --nocapture`.
        let start = std::time::Instant::now();
        let master = StoreMaster::from_csv(BUNDLED_CSV).unwrap();
        let took = start.elapsed();
        println!("store master: {} stores parsed in {took:?}", master.len());
        // Generous for a debug build on a loaded machine; optimized it takes 4-8 ms
        // (`infra/bench/images` prints it).
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
    }
}
