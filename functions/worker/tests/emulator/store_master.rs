//! The store master read from S3 (the emulator's), as the worker loads it at a cold start.

use worker::image::store_master::StoreMaster;

#[tokio::test]
async fn the_store_master_loads_from_s3_when_configured() {
    let t = local_bridge::testing::TestStack::new(None).await;
    let s3 = shared::aws::Clients::from_config(&shared::aws::sdk_config().await).s3;
    let bucket = t.var("UPLOADS_BUCKET");
    let csv = "\u{feff}StoreID,StoreName,AreaCode\nS42,\"Corner, Store\",560001\n";
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
    let missing = StoreMaster::from_s3(&s3, &format!("s3://{bucket}/config/none.csv")).await;
    assert!(missing.is_err());
    assert!(StoreMaster::from_s3(&s3, "stores.csv").await.is_err());
}
