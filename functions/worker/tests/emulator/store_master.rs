//! The store master read from S3 (the emulator's), as the worker loads it at a cold start.

use worker::image::store_master::StoreMaster;

#[tokio::test]
async fn the_store_master_loads_from_s3_when_configured() {
    let t = local_bridge::testing::TestStack::new(None).await;
    let s3 = shared::aws::Clients::from_config(&shared::aws::sdk_config().await).s3;
    let bucket = t.var("UPLOADS_BUCKET");
    // Parsed like the bundled master: columns by name in any order, fields trimmed.
    let csv = "\u{feff}area_code,store_name,store_id\n560001,\"Corner, Store \",S42\n";
    s3.put_object()
        .bucket(bucket)
        .key("config/stores.csv")
        .body(csv.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let master = StoreMaster::from_s3(&s3, &format!("s3://{bucket}/config/stores.csv"))
        .await
        .unwrap();
    assert_eq!(master.len(), 1);
    assert_eq!(master.get("S42").unwrap().name, "Corner, Store");
    assert_eq!(master.get("S42").unwrap().area_code, "560001");
    let missing = StoreMaster::from_s3(&s3, &format!("s3://{bucket}/config/none.csv")).await;
    assert!(missing.is_err());
    assert!(StoreMaster::from_s3(&s3, "stores.csv").await.is_err());
}
